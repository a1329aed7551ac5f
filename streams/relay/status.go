package relay

import (
	"log/slog"
	"time"
)

// Status is the relay's state for readiness details and operators.
type Status struct {
	Leader      bool
	LeaderSince time.Time // when Leader last changed
	// KafkaUp is false after a failed Kafka call until one succeeds; it
	// starts true-unknown (KafkaSince zero) until the first call.
	KafkaUp    bool
	KafkaSince time.Time // when KafkaUp last changed
	LastError  string
	LastErrAt  time.Time
	// Checkpoint: every event at or below it is acknowledged by Kafka.
	Checkpoint int64
	// Head is the highest committed position the relay knows of.
	Head       int64
	LagEvents  int64
	LagSeconds float64
	// Published counts messages acknowledged by Kafka in this process,
	// duplicates included.
	Published int64
	// Resets counts fresh-topic checkpoint resets in this process.
	Resets int64
}

// Status returns a snapshot. Safe for concurrent use.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Relay) setLeader(on bool) {
	r.mu.Lock()
	changed := r.status.Leader != on
	r.status.Leader = on
	if changed {
		r.status.LeaderSince = time.Now()
	}
	r.mu.Unlock()
	r.metrics.leader.Set(b2f(on))
	if changed {
		if on {
			if r.cfg.Signer != nil {
				r.log.Info("relay: became leader", "signing_key", r.cfg.Signer.KeyID())
			} else {
				r.log.Warn("relay: became leader; publishing UNSIGNED messages (a trusted topic)")
			}
		} else {
			r.log.Info("relay: no longer leader")
		}
	}
}

// setKafka records Kafka's reachability and logs only state changes, never
// each retry.
func (r *Relay) setKafka(up bool, err error) {
	r.mu.Lock()
	changed := r.status.KafkaUp != up || r.status.KafkaSince.IsZero()
	r.status.KafkaUp = up
	if changed {
		r.status.KafkaSince = time.Now()
	}
	if err != nil {
		r.status.LastError, r.status.LastErrAt = err.Error(), time.Now()
	}
	r.mu.Unlock()
	r.metrics.kafkaUp.Set(b2f(up))
	if changed {
		if up {
			r.log.Info("relay: kafka reachable")
		} else {
			r.log.Warn("relay: kafka unreachable, backing off", "err", err)
		}
	}
}

// setError records a non-Kafka error (Postgres) and logs it: these are rare
// and each is followed by a pause, so one line each is not a flood.
func (r *Relay) setError(what string, err error) {
	r.mu.Lock()
	r.status.LastError, r.status.LastErrAt = what+": "+err.Error(), time.Now()
	r.mu.Unlock()
	r.log.Warn("relay: "+what, "err", err)
}

// seeHead raises the known head position (from a notification or a read).
func (r *Relay) seeHead(p int64) {
	r.mu.Lock()
	if p > r.status.Head {
		r.status.Head = p
	}
	r.status.LagEvents = max(r.status.Head-r.status.Checkpoint, 0)
	lag := r.status.LagEvents
	r.mu.Unlock()
	r.metrics.lagEvents.Set(float64(lag))
}

// setProgress records the checkpoint and the age of the oldest unpublished
// event (zero time: caught up).
func (r *Relay) setProgress(checkpoint int64, oldest time.Time) {
	r.mu.Lock()
	r.status.Checkpoint = checkpoint
	r.status.Head = max(r.status.Head, checkpoint)
	r.status.LagEvents = r.status.Head - checkpoint
	r.status.LagSeconds = 0
	if !oldest.IsZero() {
		r.status.LagSeconds = max(time.Since(oldest).Seconds(), 0)
	}
	lagE, lagS := r.status.LagEvents, r.status.LagSeconds
	r.mu.Unlock()
	r.metrics.lagEvents.Set(float64(lagE))
	r.metrics.lagSeconds.Set(lagS)
}

// addPublished counts messages Kafka acknowledged.
func (r *Relay) addPublished(n int) {
	r.mu.Lock()
	r.status.Published += int64(n)
	r.mu.Unlock()
	r.metrics.published.Add(float64(n))
}

func (r *Relay) countReset() {
	r.mu.Lock()
	r.status.Resets++
	r.mu.Unlock()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ slog.LogValuer = Status{}

// LogValue renders the status compactly for logs.
func (s Status) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("leader", s.Leader), slog.Bool("kafka_up", s.KafkaUp),
		slog.Int64("checkpoint", s.Checkpoint), slog.Int64("lag_events", s.LagEvents),
		slog.Float64("lag_seconds", s.LagSeconds), slog.String("last_error", s.LastError))
}
