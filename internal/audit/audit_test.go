package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/pgtest"
)

func TestAnEntryCommitsWithItsActionOrNotAtAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	tx, err := db.Projector.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{Actor: "alice", Action: audit.DeadLetterDiscarded, Target: "1", Reason: "rolled back"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err = db.Projector.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := audit.Entry{Actor: "alice", Action: audit.DeadLetterDiscarded, Target: "2", Reason: "bad data", Detail: map[string]any{"version": 3}}
	if err := audit.Record(ctx, tx, e); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := audit.List(ctx, db.Query, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("want only the committed entry, got %+v", got)
	}
	g := got[0]
	var owner string
	if err := db.Owner.QueryRow(ctx, `SELECT session_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if g.Actor != "alice" || g.Action != audit.DeadLetterDiscarded || g.Target != "2" || g.Reason != "bad data" ||
		string(g.Detail) != `{"version": 3}` || g.DBUser != owner || g.At.IsZero() {
		t.Fatalf("entry %+v (db user want %s)", g, owner)
	}
}

func TestListPagesNewestFirstAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	for _, target := range []string{"a", "b", "a", "c", "a"} {
		if err := audit.Record(ctx, db.Command, audit.Entry{Actor: "op", Action: audit.ProjectionRebuilt, Target: target}); err != nil {
			t.Fatal(err)
		}
	}
	if err := audit.Record(ctx, db.Command, audit.Entry{Actor: "op", Action: audit.DeadLetterReplayed, Target: "a"}); err != nil {
		t.Fatal(err)
	}
	page1, err := audit.List(ctx, db.Query, audit.Filter{Action: audit.ProjectionRebuilt, Target: "a", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	page2, err := audit.List(ctx, db.Query, audit.Filter{Action: audit.ProjectionRebuilt, Target: "a", Limit: 2, Before: page1[len(page1)-1].ID})
	if err != nil {
		t.Fatal(err)
	}
	all := append(page1, page2...)
	if len(page1) != 2 || len(page2) != 1 || !(all[0].ID > all[1].ID && all[1].ID > all[2].ID) {
		t.Fatalf("pages %+v then %+v", page1, page2)
	}
	for _, l := range all {
		if l.Target != "a" || l.Action != audit.ProjectionRebuilt {
			t.Fatalf("filtered out entry listed: %+v", l)
		}
	}
}

func TestBadEntriesAndFiltersAreRefusedAndWriteNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	long := strings.Repeat("x", 2001)
	for name, e := range map[string]audit.Entry{
		"no actor":      {Action: audit.ProjectionRebuilt},
		"no action":     {Actor: "op"},
		"a long actor":  {Actor: long, Action: audit.ProjectionRebuilt},
		"a long target": {Actor: "op", Action: audit.ProjectionRebuilt, Target: long},
		"a long reason": {Actor: "op", Action: audit.ProjectionRebuilt, Reason: long + long},
		"a long action": {Actor: "op", Action: long},
	} {
		if err := audit.Record(ctx, db.Command, e); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	for _, f := range []audit.Filter{{Limit: -1}, {Limit: audit.MaxLimit + 1}, {Before: -1}} {
		if _, err := audit.List(ctx, db.Query, f); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("filter %+v: want ErrInvalid, got %v", f, err)
		}
	}
	if got, err := audit.List(ctx, db.Query, audit.Filter{}); err != nil || len(got) != 0 {
		t.Fatalf("log after refusals: %v %v", got, err)
	}
}
