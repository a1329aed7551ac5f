package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/schema"
	"github.com/orderflow/orderflow/streams/relay"
)

// relayCheck is ready while this process is a follower or a leader that
// reaches Kafka; a leader cut off from Kafka is reported, with since when.
// Commands keep succeeding meanwhile: the detail is for operators.
func relayCheck(rl *relay.Relay) health.Check {
	return func(context.Context) (string, error) {
		st := rl.Status()
		if !st.Leader {
			return "follower", nil
		}
		if !st.KafkaUp && !st.KafkaSince.IsZero() {
			return "", fmt.Errorf("leader, Kafka unreachable since %s: %s", st.KafkaSince.UTC().Format(time.RFC3339), st.LastError)
		}
		return fmt.Sprintf("leader, checkpoint %d, lag %d events", st.Checkpoint, st.LagEvents), nil
	}
}

// migrationsCheck reports whether the schema is current, reading the goose
// version tables through db (a serving pool: every serving role may read
// them). Probes come every few seconds and migrations change only on
// deploys: the answer is cached for migrationsCheckTTL.
func migrationsCheck(db *sql.DB) health.Check {
	var (
		mu      sync.Mutex
		checked time.Time
		last    error
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) > migrationsCheckTTL || last != nil {
			last = pendingMigrations(ctx, db)
			checked = time.Now()
		}
		if last != nil {
			return "", last
		}
		return "current", nil
	}
}

const migrationsCheckTTL = time.Minute

func pendingMigrations(ctx context.Context, db *sql.DB) error {
	pending, err := migrate.Pending(ctx, db, schema.Sets()...)
	if err != nil {
		return err
	}
	if pending {
		return errors.New("migrations pending: run orderflow migrate up")
	}
	return nil
}
