package relay

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderflow/orderflow/internal/pg"
)

// lockSQL takes the relay's session lock without waiting. The key is derived
// from the topic so that relays of different topics do not exclude each
// other; the eventstore's append lock is a constant that no hash of this
// prefix is expected to hit (and a collision would only serialise, never
// break, the two).
const lockSQL = `SELECT pg_try_advisory_lock(hashtextextended('orderflow.relay/' || $1, 0))`

// sessions is the session loop of DESIGN.md: follower until the
// lock is won, then leader until the connection fails or ctx ends.
func (r *Relay) sessions(ctx context.Context) {
	for ctx.Err() == nil {
		conn, err := r.connect(ctx)
		if err != nil {
			r.setError("connect to postgres", err)
			sleep(ctx, r.cfg.FollowerRetry)
			continue
		}
		led := r.follow(ctx, conn)
		_ = conn.Close(context.Background())
		if led {
			// A leader that just lost its session waits a follower's
			// interval, so a healthy follower can take over rather than
			// the process whose connection just failed.
			sleep(ctx, r.cfg.FollowerRetry)
		}
	}
}

func (r *Relay) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pg.Conn(cctx, r.cfg.Login, "orderflow-relay")
}

// follow retries the lock on conn until it wins (then leads) or conn fails.
// It reports whether it led.
func (r *Relay) follow(ctx context.Context, conn *pgx.Conn) bool {
	for ctx.Err() == nil {
		var won bool
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := conn.QueryRow(qctx, lockSQL, r.cfg.Topic).Scan(&won)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.setError("try leader lock", err)
			}
			return false // reconnect
		}
		if won {
			r.lead(ctx, conn)
			return true // the lock dies with the connection, which the caller closes
		}
		sleep(ctx, r.cfg.FollowerRetry)
	}
	return false
}

// lead runs the publisher while conn (holding the lock) stays healthy.
func (r *Relay) lead(ctx context.Context, conn *pgx.Conn) {
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		if ctx.Err() == nil {
			r.setError("listen", err)
		}
		return
	}
	r.setLeader(true)
	defer r.setLeader(false)

	// leadCtx ends with the leadership (the connection failed: fence the
	// publisher at once) or, on shutdown, once the publisher has drained.
	leadCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	// Capacity 1, overflow dropped: one pending wake-up already makes the
	// publisher read everything committed so far.
	wake := make(chan struct{}, 1)
	// drain is closed when Run's ctx ends: the publisher finishes the write
	// in flight, records its checkpoint and returns, so that what Kafka
	// acknowledged is not sent again by the next leader. WriteTimeout
	// bounds the wait (Kafka may be unreachable).
	drain := make(chan struct{})
	published := make(chan struct{})
	go func() { defer close(published); r.publish(leadCtx, wake, drain) }()
	defer func() {
		if ctx.Err() != nil {
			close(drain)
			select {
			case <-published:
			case <-time.After(r.cfg.WriteTimeout):
			}
		}
		stop()
		<-published
	}()

	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if p, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil {
				r.seeHead(p)
			}
			poke()
		case ctx.Err() != nil:
			return
		case isTimeout(err) && !conn.IsClosed():
			// The slow poll: covers a lost notification, and proves the
			// connection (hence the lock) is still alive.
			pctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval+5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					r.setError("leader connection lost", err)
				}
				return
			}
			poke()
		default:
			r.setError("leader connection lost", err)
			return
		}
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
