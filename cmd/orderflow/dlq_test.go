package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
)

// A dead letter discarded with `orderflow dlq discard` is never applied, the
// audit log says who gave it up and why, and a second discard changes
// nothing.
func TestDiscardRecordsWhoAndWhyOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rt, err := projections.NewRuntime(db.Projector, eventstore.New(db.Projector), order.NewRegistry(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Park(context.Background(), projections.StatusCounts{}, []byte("not an envelope"), "decode envelope: invalid"); err != nil {
		t.Fatal(err)
	}
	out, stderr, ok := orderflow(t, db, "dlq", "list", "--json", "--projection", "status_counts")
	var d projections.DeadLetter
	if !ok || json.Unmarshal([]byte(out), &d) != nil || d.State != projections.Parked {
		t.Fatalf("dlq list: %q %s", out, stderr)
	}
	if out, stderr, ok := orderflow(t, db, "dlq", "show", "1"); !ok || !strings.Contains(out, `"raw": "not an envelope"`) {
		t.Fatalf("dlq show: %q %s", out, stderr)
	}
	if _, stderr, ok := orderflow(t, db, "dlq", "replay", "1"); ok || !strings.Contains(stderr, "not an event") {
		t.Fatalf("replay of a message that is not an event: ok=%v %s", ok, stderr)
	}
	for _, want := range []string{"discarded dead letter 1", "was discarded already: nothing changed"} {
		if out, stderr, ok := orderflow(t, db, "dlq", "discard", "1", "--reason", "garbage from a test producer"); !ok || !strings.Contains(out, want) {
			t.Fatalf("dlq discard: ok=%v %q %s, want %q", ok, out, stderr, want)
		}
	}
	out, _, _ = orderflow(t, db, "audit", "--json", "--action", audit.DeadLetterDiscarded)
	var e audit.Logged
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &e) != nil ||
		e.Target != "1" || e.Reason != "garbage from a test producer" || !strings.HasPrefix(e.Actor, "os:") {
		t.Fatalf("audit after two discards: %s", out)
	}
	if out, _, _ := orderflow(t, db, "dlq", "list", "--json"); out != "" {
		t.Fatalf("still parked after the discard: %s", out)
	}
}

func TestDLQRefusesBadInputWithAClearMessageAndChangesNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	for _, tc := range []struct{ args, want string }{
		{"dlq", "Usage: orderflow dlq"},
		{"dlq purge", `unknown subcommand "purge"`},
		{"dlq list --projection nope", `unknown projection "nope"`},
		{"dlq list --order 42", `--order "42": not an order id`},
		{"dlq list --state lost", `--state "lost": want parked, replayed, discarded or all`},
		{"dlq list --limit 0", "--limit 0: want 1 to 1000"},
		{"dlq list --before -1", "--before -1: want a dead letter id"},
		{"dlq show", "name a dead letter by its id"},
		{"dlq show x1", `"x1": a dead letter id is a positive integer`},
		{"dlq show 0", `"0": a dead letter id is a positive integer`},
		{"dlq show 99", "dead letter 99: no such dead letter"},
		{"dlq replay 99", "dead letter 99: no such dead letter"},
		{"dlq discard 99", "--reason is required"},
		{"dlq discard 99 --reason r", "dead letter 99: no such dead letter"},
		{"dlq replay 1 2", "unexpected arguments: 2"},
	} {
		_, stderr, ok := orderflow(t, db, strings.Fields(tc.args)...)
		if ok || !strings.Contains(stderr, tc.want) {
			t.Errorf("orderflow %s: ok=%v, stderr %q, want it to say %q", tc.args, ok, stderr, tc.want)
		}
	}
	if entries, err := audit.List(context.Background(), db.Query, audit.Filter{}); err != nil || len(entries) != 0 {
		t.Fatalf("audit log after refusals: %v %v", entries, err)
	}
}
