package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

// TestBrokerExpiresAGroupMemberThatDiedWhileItsJoinWaitedForARebalance is
// what one kill -9 of the fault tests did to a projection: a member joins
// while the group waits for its live member to rejoin, and dies before the
// rebalance completes. kfake drops the join response to the closed
// connection about half the time (its writer picks at random between the
// dead connection and its response queue) and then never times that member
// out; the live leader assigns it partitions, which nobody reads.
//
// Each round kills such a joiner and then needs a message on every
// partition handled by the live member. Rounds repeat until the broker has
// expired a member kfake kept (it logs that before the member's partitions
// move); a joiner whose response got through has a session timer, and kfake
// expires it on its own.
func TestBrokerExpiresAGroupMemberThatDiedWhileItsJoinWaitedForARebalance(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b, err := kafka.NewBroker("127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	brokers := b.Addrs()
	const topic, group, partitions = "groups.dead-joiner", "dead-joiner", 4
	// The chance that kfake delivers every dead joiner's response is one
	// in 2^maxRounds.
	const maxRounds = 20
	testenv.CreateTopics(t, brokers, partitions, topic)

	var (
		// While set, the handler waits for the channel to close, deaf to
		// its context: its member cannot rejoin (kafka-go rejoins once the
		// generation's work has returned).
		gate    atomic.Pointer[chan struct{}]
		entered = make(chan struct{}, 1)
		mu      sync.Mutex
		handled = map[string]bool{}
	)
	cfg := batchConfig(brokers, group, topic)
	cfg.SessionTimeout = 3 * time.Second // what the broker waits before it expires the joiner
	runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		mu.Lock()
		for _, m := range msgs {
			handled[string(m.Value)] = true
		}
		mu.Unlock()
		if g := gate.Load(); g != nil {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-*g
		}
		return nil
	})
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, RequiredAcks: kafkago.RequireAll,
		Balancer: kafkago.BalancerFunc(func(m kafkago.Message, _ ...int) int { p, _ := strconv.Atoi(string(m.Key)); return p })}
	t.Cleanup(func() { _ = w.Close() })
	publish := func(partition int, value string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := w.WriteMessages(ctx, kafkago.Message{Key: []byte(strconv.Itoa(partition)), Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the live member to hold every partition", func() bool {
		info := b.Cluster().GroupInfo(group)
		return info != nil && info.State == "Stable" && len(info.Members) == 1 && info.NumAssigned() == partitions
	})

	for round := 1; ; round++ {
		// The live member is busy: it will not rejoin until released.
		g := make(chan struct{})
		gate.Store(&g)
		publish(0, fmt.Sprintf("hold-%d", round))
		select {
		case <-entered:
		case <-time.After(hangGuard):
			t.Fatal("the handler never took the held batch")
		}
		// A member joins, which starts a rebalance that waits for the
		// live one, and dies before it completes.
		joiner := joinGroup(t, brokers[0], group, topic)
		waitFor(t, "the joiner in the group", func() bool {
			info := b.Cluster().GroupInfo(group)
			return info != nil && len(info.Members) == 2
		})
		from := joiner.LocalAddr().String()
		_ = joiner.Close()
		waitFor(t, "the broker to drop the joiner's connection", func() bool { return !b.HasConnFrom(from) })
		// The live member rejoins and, as the leader, hands the dead one
		// its share of the partitions.
		gate.Store(nil)
		close(g)

		for p := range partitions {
			publish(p, fmt.Sprintf("round-%d-partition-%d", round, p))
		}
		waitFor(t, fmt.Sprintf("round %d: a message on every partition handled", round), func() bool {
			mu.Lock()
			defer mu.Unlock()
			for p := range partitions {
				if !handled[fmt.Sprintf("round-%d-partition-%d", round, p)] {
					return false
				}
			}
			return true
		})
		if strings.Contains(logs.String(), "expiring a consumer-group member") {
			t.Logf("kfake kept a dead joiner in round %d; the broker expired it", round)
			return
		}
		if round == maxRounds {
			t.Fatalf("in %d rounds kfake delivered every dead joiner's response (or the broker never expired one): %s", round, logs.String())
		}
	}
}

// joinGroup sends a JoinGroup (v1, as kafka-go does: the member is in the
// group from this request on) for topic with kafka-go's protocols, and
// returns the connection without reading the answer.
func joinGroup(t *testing.T, addr, group, topic string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 1
	req.Group = group
	req.SessionTimeoutMillis = 1000 // below the live member's: kfake, when it got the response through, expires it first
	req.RebalanceTimeoutMillis = 10_000
	req.ProtocolType = "consumer"
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{topic}}
	for _, name := range []string{"range", "roundrobin"} {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = name, meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
	}
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("dead-joiner")).AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	return conn
}
