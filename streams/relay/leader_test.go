package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/relay"
)

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestTwoRelaysOnlyTheLeaderPublishesAndTheFollowerTakesOver(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	e := newEnv(t, brokers)
	r1, reg1 := e.newRelay(t, nil)
	r2, reg2 := e.newRelay(t, nil)
	stop1 := start(t, r1)
	waitStatus(t, r1, time.Minute, "r1 leads", func(s relay.Status) bool { return s.Leader })
	start(t, r2)

	done := make(chan []eventstore.Stream, 1)
	go func() { done <- appendConcurrently(t, e.store, 40, 25, 100*time.Millisecond) }()
	waitStatus(t, r1, time.Minute, "the leader publishes", func(s relay.Status) bool { return s.Published > 0 })

	if s := r2.Status(); s.Leader || s.Published != 0 {
		t.Fatalf("follower publishes while the leader lives: %+v", s)
	}
	if p := counter(t, reg2, "relay_published_total"); p != 0 {
		t.Fatalf("follower relay_published_total = %v", p)
	}
	if counter(t, reg1, "relay_leader") != 1 || counter(t, reg2, "relay_leader") != 0 {
		t.Fatal("relay_leader gauges wrong")
	}
	p1 := r1.Status().Published
	if p1 == 0 {
		t.Fatal("leader published nothing")
	}

	stopped := time.Now()
	stop1()
	waitStatus(t, r2, time.Minute, "r2 takes over", func(s relay.Status) bool { return s.Leader })
	handover := time.Since(stopped)

	streams := <-done
	e.waitCaughtUp(t, 30*time.Second)
	p2 := r2.Status().Published
	dups := consumeAll(t, brokers, testTopic).check(t, streams, 25, false)
	t.Logf("leader published %d, follower published %d after a hand-over of %s; %d duplicates",
		p1, p2, handover.Round(time.Millisecond), dups)
}

// When the leader's Postgres session dies (here: terminated by an
// operator), it must stop publishing at once and leadership moves.
func TestLeaderWhoseConnectionDiesStopsPublishing(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	e := newEnv(t, brokers)
	r1, _ := e.newRelay(t, nil)
	r2, _ := e.newRelay(t, nil)
	start(t, r1)
	waitStatus(t, r1, time.Minute, "r1 leads", func(s relay.Status) bool { return s.Leader })
	start(t, r2)

	done := make(chan []eventstore.Stream, 1)
	go func() { done <- appendConcurrently(t, e.store, 20, 20, 50*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)

	var killed int
	err := e.db.Owner.QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
		JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'orderflow-relay'
		  AND a.datname = current_database()`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate leader session: killed %d, %v", killed, err)
	}
	killedAt := time.Now()
	waitStatus(t, r1, time.Minute, "r1 steps down", func(s relay.Status) bool {
		return !s.Leader || s.LeaderSince.After(killedAt)
	})
	stepDown := time.Since(killedAt)
	deadline := time.Now().Add(time.Minute)
	for {
		s1, s2 := r1.Status(), r2.Status()
		if (s1.Leader && s1.LeaderSince.After(killedAt)) || (s2.Leader && s2.LeaderSince.After(killedAt)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody took over within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("leader stepped down %s after its session was terminated; new leader (r2: %t) after %s",
		stepDown.Round(time.Millisecond), r2.Status().Leader, time.Since(killedAt).Round(time.Millisecond))

	streams := <-done
	e.waitCaughtUp(t, 30*time.Second)
	dups := consumeAll(t, brokers, testTopic).check(t, streams, 20, false)
	t.Logf("all 400 events present, %d duplicates", dups)
}
