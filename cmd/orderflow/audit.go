package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/pg"
)

// runAudit is `orderflow audit`: the log of admin actions, newest first,
// one bounded page at a time.
func runAudit(ctx context.Context, args []string) error {
	var (
		c      common
		f      = newFlags("audit", "Lists admin actions (projection rebuilds, dead letters replayed or discarded, personal data erased), newest first: who, what, why and when.")
		filter audit.Filter
		before int
		asJSON bool
	)
	c.register(f)
	f.StringVar(&filter.Action, "action", "", "only this action (e.g. "+audit.ProjectionRebuilt+")")
	f.StringVar(&filter.Target, "target", "", "only this target (a projection, a dead letter id, a customer id)")
	f.IntVar(&filter.Limit, "limit", 50, fmt.Sprintf("entries per page, 1 to %d", audit.MaxLimit))
	f.IntVar(&before, "before", 0, "only entries with an id below this one: the next page")
	f.BoolVar(&asJSON, "json", false, "print JSON, one entry a line")
	if err := f.parse(args, func() {
		c.validate(f, false, pg.Query)
		f.check(filter.Limit < 1 || filter.Limit > audit.MaxLimit, "--limit %d: want 1 to %d", filter.Limit, audit.MaxLimit)
		f.check(before < 0, "--before %d: want an entry id", before)
	}); err != nil {
		return err
	}
	filter.Before = int64(before)
	pool, err := pg.Connect(ctx, c.login(pg.Query), pg.Options{MaxConns: 1, ApplicationName: "orderflow audit"})
	if err != nil {
		return err
	}
	defer pool.Close()
	entries, err := audit.List(ctx, pool, filter)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tACTOR\tDB USER\tACTION\tTARGET\tREASON\tDETAIL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.RFC3339), e.Actor, e.DBUser,
			e.Action, e.Target, e.Reason, e.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(entries) == filter.Limit {
		fmt.Fprintf(os.Stderr, "more: orderflow audit --before %d\n", entries[len(entries)-1].ID)
	}
	return nil
}

// adminActor is who runs an admin command, for the audit log: the
// operating system user. The database login the command authenticates with
// is recorded beside it by the server (audit_log.db_user).
func adminActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "os:" + u.Username
	}
	return "os:uid-" + fmt.Sprint(os.Getuid())
}
