package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
)

const dlqUsage = `Usage: orderflow dlq <subcommand> [flags]

  list                       dead letters: reason, projection, order, age (newest first, paged)
  show <id>                  one dead letter whole, its event envelope included
  replay <id> [--reason R]   after a fix, apply the letter and its order's later parked events,
                             in version order; all or nothing; a second replay changes nothing
  discard <id> --reason R    give a letter up for good (who and why go to the audit log)

Dead letters are the events a projection could not apply, and the later events of their
order parked behind them (README, Operations: Dead letters).`

func runDLQ(ctx context.Context, args []string) error {
	return dispatch(ctx, "dlq", dlqUsage, args, map[string]func(context.Context, []string) error{
		"list":    runDLQList,
		"show":    runDLQShow,
		"replay":  runDLQReplay,
		"discard": runDLQDiscard,
	})
}

func runDLQList(ctx context.Context, args []string) error {
	var (
		c      common
		f      = newFlags("dlq list", "Lists dead letters, newest first: id, projection, order, version, event type, age, state, reason.")
		filter projections.DeadLetterFilter
		order  string
		before int
		asJSON bool
		now    = time.Now()
	)
	c.register(f)
	f.StringVar(&filter.Projection, "projection", "", "only this projection's")
	f.StringVar(&order, "order", "", "only this order's (its id)")
	f.StringVar(&filter.State, "state", projections.Parked, "parked, replayed, discarded or all")
	f.IntVar(&filter.Limit, "limit", 50, fmt.Sprintf("letters per page, 1 to %d", projections.MaxDeadLetters))
	f.IntVar(&before, "before", 0, "only letters with an id below this one: the next page")
	f.BoolVar(&asJSON, "json", false, "print JSON, one letter a line")
	if err := f.parse(args, func() {
		c.validate(f, false, pg.Query)
		if filter.Projection != "" {
			_, err := projections.ByName(filter.Projection)
			f.check(err != nil, "--projection: %v", err)
		}
		if order != "" {
			id, err := ulid.ParseStrict(order)
			f.check(err != nil, "--order %q: not an order id (a ULID)", order)
			filter.OrderID = &id
		}
		f.check(filter.State != "all" && filter.State != projections.Parked && filter.State != projections.Replayed && filter.State != projections.Discarded,
			"--state %q: want parked, replayed, discarded or all", filter.State)
		f.check(filter.Limit < 1 || filter.Limit > projections.MaxDeadLetters, "--limit %d: want 1 to %d", filter.Limit, projections.MaxDeadLetters)
		f.check(before < 0, "--before %d: want a dead letter id", before)
	}); err != nil {
		return err
	}
	filter.Before = int64(before)
	pool, err := pg.Connect(ctx, c.login(pg.Query), pg.Options{MaxConns: 1, ApplicationName: "orderflow dlq list"})
	if err != nil {
		return err
	}
	defer pool.Close()
	letters, err := projections.ListDeadLetters(ctx, pool, filter)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, l := range letters {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROJECTION\tORDER\tVERSION\tEVENT\tAGE\tSTATE\tREASON")
	for _, l := range letters {
		id := "-"
		if l.OrderID != nil {
			id = l.OrderID.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.ID, l.Projection, id, l.Version, l.EventType,
			now.Sub(l.ParkedAt).Round(time.Second), l.State, oneLine(l.Reason, 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(letters) == filter.Limit {
		fmt.Fprintf(os.Stderr, "more: orderflow dlq list --before %d\n", letters[len(letters)-1].ID)
	}
	return nil
}

// oneLine shortens s to n bytes on one line, for a table cell.
func oneLine(s string, n int) string {
	b := []rune(s)
	for i, r := range b {
		if r == '\n' || r == '\t' {
			b[i] = ' '
		}
	}
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// dlqID parses the <id> argument of show, replay and discard, leaving the
// flags after it in *args.
func dlqID(f *flags, args *[]string) func() int64 {
	var raw string
	if len(*args) > 0 && (*args)[0] != "" && (*args)[0][0] != '-' {
		raw, *args = (*args)[0], (*args)[1:]
	}
	return func() int64 {
		id, err := strconv.ParseInt(raw, 10, 64)
		f.check(raw == "", "name a dead letter by its id (orderflow dlq list)")
		f.check(raw != "" && (err != nil || id < 1), "%q: a dead letter id is a positive integer (orderflow dlq list)", raw)
		return id
	}
}

func runDLQShow(ctx context.Context, args []string) error {
	var c common
	f := newFlags("dlq show <id>", "Prints one dead letter whole, as JSON, its event envelope included.")
	c.register(f)
	parseID := dlqID(f, &args)
	var id int64
	if err := f.parse(args, func() { c.validate(f, false, pg.Query); id = parseID() }); err != nil {
		return err
	}
	pool, err := pg.Connect(ctx, c.login(pg.Query), pg.Options{MaxConns: 1, ApplicationName: "orderflow dlq show"})
	if err != nil {
		return err
	}
	defer pool.Close()
	l, err := projections.GetDeadLetter(ctx, pool, id)
	if err != nil {
		return err
	}
	out := struct {
		projections.DeadLetter
		Envelope json.RawMessage `json:"envelope,omitempty"`
		Raw      string          `json:"raw,omitempty"` // a value that is not JSON, as text
	}{DeadLetter: l}
	if json.Valid(l.Envelope) {
		out.Envelope = l.Envelope
	} else {
		out.Raw = string(l.Envelope)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runDLQReplay(ctx context.Context, args []string) error {
	return resolveDLQ(ctx, "replay", audit.DeadLetterReplayed, args)
}

func runDLQDiscard(ctx context.Context, args []string) error {
	return resolveDLQ(ctx, "discard", audit.DeadLetterDiscarded, args)
}

// resolveDLQ replays or discards a dead letter, logged in as the projector
// (it writes the read model and the letters), and records who and why in
// the audit log in the same transaction: the entry exists exactly when the
// letters changed.
func resolveDLQ(ctx context.Context, verb, action string, args []string) error {
	var (
		c      common
		reason string
	)
	help := map[string]string{
		"replay":  "Applies a dead letter, and every later letter parked for its order in its projection, in version order, once the cause is fixed. All or nothing: if an event still fails, nothing changes. Replaying a letter already replayed changes nothing.",
		"discard": "Gives a dead letter up: it is never applied, and its order stays at the version it reached (as a rebuild leaves it). Who and why go to the audit log.",
	}[verb]
	f := newFlags("dlq "+verb+" <id>", help)
	c.register(f)
	f.StringVar(&reason, "reason", "", "why, for the audit log (required by discard)")
	parseID := dlqID(f, &args)
	var id int64
	if err := f.parse(args, func() {
		c.validate(f, false, pg.Projector)
		id = parseID()
		f.check(verb == "discard" && reason == "", "--reason is required: say why the letter is given up")
		f.check(len(reason) > 2000, "--reason: at most 2000 bytes")
	}); err != nil {
		return err
	}
	pool, err := pg.Connect(ctx, c.login(pg.Projector), pg.Options{MaxConns: 2, ApplicationName: "orderflow dlq " + verb})
	if err != nil {
		return err
	}
	defer pool.Close()
	rt, err := projections.NewRuntime(pool, eventstore.New(pool), order.NewRegistry(), nil, c.logger(os.Stderr))
	if err != nil {
		return err
	}
	var res projections.Resolved
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if verb == "replay" {
			res, err = rt.Replay(ctx, tx, id)
		} else {
			res, err = projections.Discard(ctx, tx, id)
		}
		if err != nil || len(res.Letters) == 0 {
			return err
		}
		versions := make([]int64, len(res.Letters))
		for i, l := range res.Letters {
			versions[i] = l.Version
		}
		first := res.Letters[0]
		detail := map[string]any{"projection": first.Projection, "versions": versions, "applied": res.Applied}
		if first.OrderID != nil {
			detail["order_id"] = first.OrderID.String()
		}
		return audit.Record(ctx, tx, audit.Entry{Actor: adminActor(), Action: action, Target: strconv.FormatInt(id, 10), Reason: reason, Detail: detail})
	})
	switch {
	case errors.Is(err, projections.ErrStillFails):
		return fmt.Errorf("%w\nnothing changed; fix the cause (orderflow dlq show %d) and replay again", err, id)
	case err != nil:
		return err
	case res.Already != "":
		fmt.Printf("dead letter %d was %s already: nothing changed\n", id, res.Already)
	case verb == "replay":
		fmt.Printf("replayed %d dead letters of order %s in %s (versions %d to %d): %d events applied\n", len(res.Letters),
			res.Letters[0].OrderID, res.Letters[0].Projection, res.Letters[0].Version, res.Letters[len(res.Letters)-1].Version, res.Applied)
	default:
		fmt.Printf("discarded dead letter %d (%s); recorded in the audit log\n", id, res.Letters[0].Projection)
	}
	return nil
}
