package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/streams/export"
)

func runExport(ctx context.Context, args []string) error {
	var (
		c                    common
		personal             personalConfig
		from, to, types, out string
		stream, format       string
	)
	f := newFlags("events export", "Writes events in global (position) order, upcast to their current schema, streaming with constant memory.")
	c.register(f)
	personal.register(f)
	f.StringVar(&from, "from", "", "start: an RFC 3339 time (inclusive) or a position (exclusive: events after it)")
	f.StringVar(&to, "to", "", "end: an RFC 3339 time (exclusive) or a position (inclusive)")
	f.StringVar(&types, "type", "", "only these event types, comma-separated (e.g. OrderPlaced,PaymentRecorded)")
	f.StringVar(&stream, "stream", "", "only this stream (order id)")
	f.StringVar(&format, "format", "ndjson", "ndjson (one envelope per line) or csv")
	f.StringVar(&out, "output", "", "file to write (default: standard output)")
	var filter eventstore.Filter
	if err := f.parse(args, func() {
		c.validate(f, false, pg.Query)
		personal.validate(f)
		f.check(format != export.FormatNDJSON && format != export.FormatCSV, "--format=%q: want ndjson or csv", format)
		if from != "" {
			if t, err := time.Parse(time.RFC3339Nano, from); err == nil {
				filter.From = t
			} else if p, err := strconv.ParseInt(from, 10, 64); err == nil && p >= 0 {
				filter.AfterPosition = p
			} else {
				f.check(true, "--from=%q: want an RFC 3339 time or a position", from)
			}
		}
		if to != "" {
			if t, err := time.Parse(time.RFC3339Nano, to); err == nil {
				filter.To = t
			} else if p, err := strconv.ParseInt(to, 10, 64); err == nil && p > 0 {
				filter.UpToPosition = p
			} else {
				f.check(true, "--to=%q: want an RFC 3339 time or a position", to)
			}
		}
		if stream != "" {
			id, err := ulid.ParseStrict(stream)
			f.check(err != nil, "--stream=%q: not an order id (ULID)", stream)
			filter.Stream = &id
		}
		filter.Types = splitList(types)
	}); err != nil {
		return err
	}
	pool, err := pg.Connect(ctx, c.login(pg.Query), pg.Options{MaxConns: 2, ApplicationName: "orderflow export"})
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)

	w := os.Stdout
	var progress func(int64)
	if out != "" {
		file, err := os.Create(out) // #nosec G304 -- the operator names the output file (--output)
		if err != nil {
			return err
		}
		defer func() { _ = file.Close() }()
		w = file
		if isatty.IsTerminal(os.Stderr.Fd()) {
			after, upTo, err := store.Bounds(ctx, filter)
			if err != nil {
				return err
			}
			progress = func(p int64) { fmt.Fprintf(os.Stderr, "\rexport: %s", bar(p-after, upTo-after)) }
		}
	}
	if personal.ring == nil {
		fmt.Fprintln(os.Stderr, "export: no master key configured (ORDERFLOW_PII_MASTER_KEYS): personal data is exported sealed")
	}
	n, err := export.Export(ctx, store, order.NewRegistry(), personal.keys(pool), filter, format, w, progress)
	if progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	if out != "" {
		fmt.Fprintf(os.Stderr, "exported %d events to %s\n", n, out)
		return w.Sync()
	}
	return nil
}
