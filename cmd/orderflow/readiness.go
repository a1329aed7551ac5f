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
	"github.com/orderflow/orderflow/streams/kafka"
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
	return cachedCheck(migrationsCheckTTL, true, func(ctx context.Context) (string, error) {
		if err := pendingMigrations(ctx, db); err != nil {
			return "", err
		}
		return "current", nil
	})
}

// cachedCheck answers with check's last answer for ttl, and asks again
// after it; with recheckFailures, a failed answer is not kept but asked
// again at the next probe (a failure is what an operator is fixing).
func cachedCheck(ttl time.Duration, recheckFailures bool, check health.Check) health.Check {
	var (
		mu      sync.Mutex
		checked time.Time
		detail  string
		last    error
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if checked.IsZero() || time.Since(checked) > ttl || (recheckFailures && last != nil) {
			detail, last = check(ctx)
			checked = time.Now()
		}
		return detail, last
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

// topicsCheck reports the topics that differ from the configuration
// (another partition count, fewer replicas, a lower min.insync.replicas)
// or cannot be checked, as degraded: the relay publishes to them all the
// same, and an operator fixes them (README, "A topic is under-replicated").
// Topics change rarely and a check costs two requests to the cluster: the
// answer is kept for topicsCheckTTL.
func topicsCheck(cfg kafka.Config, specs []kafka.TopicSpec) health.Check {
	return cachedCheck(topicsCheckTTL, false, func(ctx context.Context) (string, error) {
		if err := kafka.CheckTopics(ctx, cfg, specs...); err != nil {
			return "", health.Degraded(err)
		}
		return fmt.Sprintf("%d topics as configured (replication factor %d, min.insync.replicas %d)",
			len(specs), specs[0].ReplicationFactor, specs[0].MinInsyncReplicas), nil
	})
}

const topicsCheckTTL = 30 * time.Second
