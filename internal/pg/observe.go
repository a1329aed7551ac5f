package pg

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Observer is told of every call a pool makes to the server (queries,
// batches): Allow before it, done with its outcome after; and of every
// acquire that failed (a connection the server refused or never
// answered). An acquire that succeeds is no evidence: it may have taken an
// idle connection without a word to the server. A call the observer does
// not allow (a circuit breaker that is open) still runs: an observer
// counts, it does not gate. internal/breaker is one.
type Observer interface {
	Allow() (done func(error), err error)
}

// observer is the pgx tracer that reports a pool's calls to an Observer.
// Each call's done travels in its context from Start to End.
type observer struct{ o Observer }

type doneKey struct{}

func (t observer) start(ctx context.Context) context.Context {
	done, err := t.o.Allow()
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, doneKey{}, done)
}

func end(ctx context.Context, err error) {
	if done, ok := ctx.Value(doneKey{}).(func(error)); ok {
		done(err)
	}
}

func (observer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

func (t observer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	if d.Err != nil {
		end(t.start(ctx), d.Err)
	}
}

func (t observer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return t.start(ctx)
}

func (t observer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	end(ctx, d.Err)
}

func (t observer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx)
}

func (observer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t observer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	end(ctx, d.Err)
}
