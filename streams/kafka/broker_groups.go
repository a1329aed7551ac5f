package kafka

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memberReaper expires the consumer-group members of the embedded broker
// that it no longer hears from, which kfake fails to do for one kind of
// member: one whose process died while its JoinGroup waited for a
// rebalance.
//
// kfake starts a member's session timer only when it has delivered a
// response to that member. A member whose JoinGroup is parked while the
// group waits for the others to rejoin, and whose process dies meanwhile
// (kill -9 of one serve process while another one starts, what the fault
// tests do and what a laptop does), is part of the next generation all the
// same: the join response to its closed connection is dropped (kfake's
// writer picks at random between the dropped connection and its response
// queue), so no session timer starts; and when the live leader's SyncGroup
// makes the group stable, kfake also stops the pending-sync timer that would
// have removed a member that never synced. The dead member then keeps the
// partitions the leader assigned it, heartbeats never, and expires never:
// nobody reads those partitions until the broker restarts, and the
// projection whose group it was stops short while the others converge.
//
// Apache Kafka schedules every member's session expiry when a join
// completes, whatever happens to the response. The reaper does the same
// from outside kfake: it notes when the broker last heard from each member
// (JoinGroup, SyncGroup, Heartbeat, OffsetCommit: a kfake Fault that
// observes and never fails), and a member of a stable group that has been
// silent for the group's session timeout since then, or since the
// generation began, is removed with a LeaveGroup on its behalf; the group
// rebalances and the live members take its partitions. A member kfake does
// time out itself is gone before the reaper would act.
type memberReaper struct {
	cluster *kfake.Cluster
	addr    string
	client  *kafkago.Client
	log     *slog.Logger

	mu     sync.Mutex
	groups map[string]*watchedGroup

	cancel context.CancelFunc
	done   chan struct{}
}

// watchedGroup is what the reaper knows of one group.
type watchedGroup struct {
	// session is the longest session timeout the group's members asked
	// for when they joined: members of a group share a configuration, and
	// a dead member's own join cannot be told apart (its id is made up in
	// the response it never read).
	session time.Duration
	// generation is the last one the reaper saw; every member is heard
	// from when a new one begins.
	generation int32
	heard      map[string]time.Time // member id → when the broker last heard from it
}

// reapEvery is how often the reaper looks at the groups: a dead member is
// expired within its session timeout and this much.
const reapEvery = 250 * time.Millisecond

func startMemberReaper(cluster *kfake.Cluster, addr string, log *slog.Logger) *memberReaper {
	ctx, cancel := context.WithCancel(context.Background())
	r := &memberReaper{
		cluster: cluster,
		addr:    addr,
		client:  &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 5 * time.Second, Transport: &kafkago.Transport{}},
		log:     log,
		groups:  map[string]*watchedGroup{},
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	// When runs on kfake's cluster goroutine: heard takes one short lock,
	// which the reaper never holds while it asks the cluster anything.
	cluster.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit},
		Count: -1,
		When: func(req kmsg.Request) bool {
			r.heard(req)
			return false // observed, never faulted
		},
	})
	go r.run(ctx)
	return r
}

// stop ends the reaper and waits for it; call it before closing the
// cluster (GroupInfo waits for a live cluster).
func (r *memberReaper) stop() {
	r.cancel()
	<-r.done
	if t, ok := r.client.Transport.(*kafkago.Transport); ok {
		t.CloseIdleConnections()
	}
}

func (r *memberReaper) heard(req kmsg.Request) {
	var group, member string
	var session time.Duration
	switch req := req.(type) {
	case *kmsg.JoinGroupRequest:
		group, member = req.Group, req.MemberID
		session = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	case *kmsg.SyncGroupRequest:
		group, member = req.Group, req.MemberID
	case *kmsg.HeartbeatRequest:
		group, member = req.Group, req.MemberID
	case *kmsg.OffsetCommitRequest:
		group, member = req.Group, req.MemberID
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[group]
	if g == nil {
		g = &watchedGroup{generation: -1, heard: map[string]time.Time{}}
		r.groups[group] = g
	}
	g.session = max(g.session, session)
	if member != "" {
		g.heard[member] = time.Now()
	}
}

func (r *memberReaper) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(reapEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.reap(ctx)
	}
}

// reap expires, in every stable group, the members silent for the group's
// session timeout.
func (r *memberReaper) reap(ctx context.Context) {
	r.mu.Lock()
	names := make([]string, 0, len(r.groups))
	for name := range r.groups {
		names = append(names, name)
	}
	r.mu.Unlock()
	for _, name := range names {
		info := r.cluster.GroupInfo(name)
		if silent, session := r.silent(name, info, time.Now()); len(silent) > 0 {
			r.expire(ctx, name, silent, session)
		}
	}
}

// silent updates what the reaper knows of group from info and returns the
// members to expire, with the session timeout they exceeded.
func (r *memberReaper) silent(group string, info *kfake.GroupInfo, now time.Time) ([]string, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[group]
	if g == nil {
		return nil, 0
	}
	if info == nil || len(info.Members) == 0 {
		delete(r.groups, group) // a join creates it again
		return nil, 0
	}
	present := make(map[string]bool, len(info.Members))
	for _, m := range info.Members {
		present[m.MemberID] = true
	}
	for id := range g.heard {
		if !present[id] {
			delete(g.heard, id)
		}
	}
	if info.State != "Stable" {
		// Joining or syncing: kfake's rebalance and pending-sync timers
		// remove who does not answer.
		return nil, 0
	}
	if info.Epoch != g.generation {
		// The join completed: from now on every member must be heard
		// from within its session.
		g.generation = info.Epoch
		for _, m := range info.Members {
			g.heard[m.MemberID] = now
		}
		return nil, 0
	}
	if g.session <= 0 {
		return nil, 0
	}
	var silent []string
	for _, m := range info.Members {
		if last, ok := g.heard[m.MemberID]; !ok {
			g.heard[m.MemberID] = now
		} else if now.Sub(last) > g.session {
			silent = append(silent, m.MemberID)
		}
	}
	return silent, g.session
}

// expire removes members from group with a LeaveGroup on their behalf. A
// failure (the broker paused, say) is retried on the next look.
func (r *memberReaper) expire(ctx context.Context, group string, members []string, session time.Duration) {
	req := &kafkago.LeaveGroupRequest{GroupID: group}
	for _, id := range members {
		// Logged first: from the response on, the live members are
		// rebalancing onto this member's partitions.
		r.log.Warn("embedded kafka: expiring a consumer-group member the broker has not heard from for its session timeout (kfake started no session timer for it)",
			"group", group, "member", id, "session_timeout", session)
		req.Members = append(req.Members, kafkago.LeaveGroupRequestMember{ID: id})
	}
	res, err := r.client.LeaveGroup(ctx, req)
	if err == nil {
		err = res.Error
	}
	if err == nil {
		for _, m := range res.Members {
			if m.Error != nil && !errors.Is(m.Error, kafkago.UnknownMemberId) {
				err = errors.Join(err, m.Error)
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("embedded kafka: expiring consumer-group members failed; will retry", "group", group, "err", err)
	}
}
