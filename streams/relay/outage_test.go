package relay_test

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderflow/orderflow/internal/faultproxy"
	"github.com/orderflow/orderflow/streams/relay"
)

// advertised makes kfake tell clients (in metadata) to connect to the proxy
// rather than to the port it really listens on; otherwise a client
// bootstrapped through the proxy would bypass it after its first metadata
// request and never see the outage.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

// brokerBehindProxy starts kfake behind a fault proxy and returns the proxy.
func brokerBehindProxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	real, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(real.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr, err := net.ResolveTCPAddr("tcp", proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return advertised{real, proxyAddr}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close(); cluster.Close() })
	return proxy
}

func TestKafkaOutageAppendsSucceedAndRelayCatchesUp(t *testing.T) {
	t.Parallel()
	proxy := brokerBehindProxy(t)
	e := newEnv(t, []string{proxy.Addr()})
	r, _ := e.newRelay(t, nil)
	start(t, r)

	before := appendConcurrently(t, e.store, 10, 5, 0)
	e.waitCaughtUp(t, 30*time.Second)

	proxy.Cut()
	cutAt := time.Now()
	// 50 orders × 20 events over ~8 s, all while Kafka is cut off: commands
	// never touch Kafka, so every append must succeed.
	streams := appendConcurrently(t, e.store, 50, 20, 400*time.Millisecond)
	appendTook := time.Since(cutAt)
	// The relay must notice the cut; on a busy machine that may take longer
	// than the appends did, so wait for it (a hang guard, not a target).
	waitStatus(t, r, time.Minute, "kafka down", func(s relay.Status) bool { return !s.KafkaUp })
	st := r.Status()
	if cp := e.checkpoint(t); cp > 50 {
		t.Fatalf("checkpoint moved to %d while Kafka was cut off", cp)
	}
	t.Logf("outage: 1000 appends succeeded in %s with Kafka cut; status: kafka down since %s, lag %d events / %.1fs, last error %q",
		appendTook.Round(time.Millisecond), st.KafkaSince.Sub(cutAt).Round(time.Millisecond), st.LagEvents, st.LagSeconds, st.LastError)

	proxy.Restore()
	restored := time.Now()
	e.waitCaughtUp(t, time.Minute)
	waitStatus(t, r, time.Minute, "kafka up", func(s relay.Status) bool { return s.KafkaUp })
	t.Logf("caught up %s after Kafka came back", time.Since(restored).Round(time.Millisecond))

	got := consumeAll(t, []string{proxy.Addr()}, testTopic)
	want := map[string]int{}
	for _, st := range before {
		want[st.ID.String()] = 5
	}
	for _, st := range streams {
		want[st.ID.String()] = 20
	}
	dups := got.checkCounts(t, want, false)
	t.Logf("after the outage: all events present, %d duplicates", dups)
}
