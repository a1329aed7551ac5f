package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/testenv"
)

// BenchmarkHub10kSubscribers: 10 000 WebSocket subscribers on one hub
// (9 990 on order:<id>, 10 on orders), 1 000 appends/s to those orders
// through store → relay → kfake → hub. The clients run in a child process
// (this test binary, TestHelperBenchClients) so that the hub's memory and
// CPU are measured alone and each process stays within its file limit.
//
//	go test -run '^$' -bench Hub10kSubscribers -benchtime 1x -timeout 20m ./streams/hub/
//
// Reports: bytes of HeapInuse+StackInuse per idle subscribed connection;
// CPU of the hub process (hub, relay, kfake, load generator; PostgreSQL is
// another process) and of the client process; latency from Append's return
// to the frame at the subscriber, p50/p95/p99.
func BenchmarkHub10kSubscribers(b *testing.B) {
	const (
		nOrders  = 9990
		nAll     = 10
		rate     = 1000 // appends per second
		duration = 20 * time.Second
	)
	raiseFileLimit(b)
	for b.Loop() {
		e := newEnv(b)
		th := e.startHub(b, nil)
		ctx := context.Background()

		orders := newOrders(nOrders)
		for lo := 0; lo < nOrders; lo += 500 {
			var reqs []eventstore.AppendRequest
			for i := lo; i < min(lo+500, nOrders); i++ {
				reqs = append(reqs, eventstore.AppendRequest{Stream: eventstore.Stream{ID: orders[i], Type: "order"},
					Expected: eventstore.NoStream(), Events: []eventstore.EventData{orderEvent(orders[i], fmt.Sprintf("c%d", i%100), 1, 0)}})
			}
			res, err := e.store.AppendBatch(ctx, reqs)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		head, _ := e.store.HeadPosition(ctx)
		waitFor(b, 60*time.Second, "the hub to reach the store's head", func() bool { return th.metric("hub_head_position") >= float64(head) })

		f, err := os.CreateTemp(b.TempDir(), "channels")
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range orders {
			fmt.Fprintf(f, "order:%s\n", o)
		}
		for range nAll {
			fmt.Fprintln(f, "orders")
		}
		_ = f.Close()

		base := inuse()
		child := exec.Command(os.Args[0], "-test.run=^TestHelperBenchClients$", "-test.timeout=20m")
		child.Env = append(os.Environ(), "HUB_BENCH_URL="+th.url, "HUB_BENCH_CHANNELS="+f.Name(),
			"HUB_BENCH_AUTHORIZATION="+testenv.Bearer(b, testenv.StaffSubject, auth.Staff)) // the child's own test key would not verify here
		child.Stderr = os.Stderr
		stdin, _ := child.StdinPipe()
		stdout, _ := child.StdoutPipe()
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		out := bufio.NewScanner(stdout)
		out.Buffer(make([]byte, 1<<20), 1<<20)
		line := func() string {
			if !out.Scan() {
				b.Fatalf("client process ended: %v", out.Err())
			}
			return out.Text()
		}
		for l := line(); l != "READY"; l = line() {
			b.Logf("client: %s", l)
		}
		waitFor(b, 30*time.Second, "10 000 connections", func() bool { return th.metric("hub_subscriptions") >= nOrders+nAll })
		time.Sleep(2 * time.Second)
		perConn := float64(inuse()-base) / float64(nOrders+nAll)

		// Load: rate appends/s, round-robin over the orders (one order is
		// hit every ~10s, so its appends never race).
		var appendedAt sync.Map // "streamID/version" → time Append returned
		var sent, failed atomic.Int64
		sem := make(chan struct{}, 256)
		var wg sync.WaitGroup
		ru0 := rusage()
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		next := make([]int64, nOrders)
		for i := 0; time.Since(start) < duration; {
			<-tick.C
			due := int(time.Since(start).Seconds()*rate) - i
			for ; due > 0; due-- {
				idx := i % nOrders
				next[idx]++
				v := next[idx] + 1
				i++
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					st := eventstore.Stream{ID: orders[idx], Type: "order"}
					_, err := e.store.Append(ctx, st, eventstore.Exact(v-1), []eventstore.EventData{orderEvent(orders[idx], "", v, 0)})
					if err != nil {
						failed.Add(1)
						return
					}
					appendedAt.Store(orders[idx].String()+"/"+strconv.FormatInt(v, 10), time.Now())
					sent.Add(1)
				})
			}
		}
		tick.Stop()
		wg.Wait()
		elapsed := time.Since(start)
		head, _ = e.store.HeadPosition(ctx)
		waitFor(b, 60*time.Second, "the hub to fan out the last event", func() bool { return th.metric("hub_head_position") >= float64(head) })
		time.Sleep(2 * time.Second) // let the last frames reach the clients
		ru1 := rusage()
		_ = stdin.Close()

		lat := benchstat.New()
		var frames, unmatched int64
		var childCPU string
		for l := line(); l != "DONE"; l = line() {
			fs := strings.Fields(l)
			switch fs[0] {
			case "E":
				ns, _ := strconv.ParseInt(fs[2], 10, 64)
				frames++
				v, ok := appendedAt.Load(fs[1])
				if !ok {
					unmatched++ // the pre-created version 1 never shows up here; a frame for an append that failed would
					continue
				}
				lat.Record(max(time.Unix(0, ns).Sub(v.(time.Time)), 0))
			case "CPU":
				childCPU = strings.Join(fs[1:], " ")
			default:
				b.Logf("client: %s", l)
			}
		}
		_ = child.Wait()
		cpu := (ru1 - ru0).Seconds()
		wantFrames := sent.Load() * (1 + nAll)
		b.Logf("%d connections: %.0f B (%.1f KiB) HeapInuse+StackInuse per idle subscribed connection", nOrders+nAll, perConn, perConn/1024)
		b.Logf("load: %d appends in %s (%.0f/s), %d failed; frames received %d (want %d), unmatched %d",
			sent.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds(), failed.Load(), frames, wantFrames, unmatched)
		b.Logf("hub process CPU (hub+relay+kfake+load generator) %.1fs over %s = %.2f cores; client process: %s",
			cpu, elapsed.Round(time.Millisecond), cpu/elapsed.Seconds(), childCPU)
		b.Logf("append return → frame at subscriber: %s", lat.Summary(elapsed, "frames"))
		b.Logf("sequencer store fills %v (%v events), slow disconnects %v",
			th.metric("hub_sequencer_store_fills_total"), th.metric("hub_sequencer_filled_events_total"), th.metric("hub_slow_disconnects_total"))
		if frames != wantFrames {
			b.Errorf("clients got %d frames, want %d", frames, wantFrames)
		}
		b.ReportMetric(perConn, "B/conn")
		b.ReportMetric(cpu/elapsed.Seconds(), "hub_cores")
		lat.Report(b, float64(sent.Load())/elapsed.Seconds(), "appends")
	}
}

// TestHelperBenchClients is the client process of BenchmarkHub10kSubscribers;
// it does nothing unless started by it (HUB_BENCH_URL set).
func TestHelperBenchClients(t *testing.T) {
	url := os.Getenv("HUB_BENCH_URL")
	if url == "" {
		return // not a test: the benchmark's child process
	}
	raiseFileLimit(t)
	raw, err := os.ReadFile(os.Getenv("HUB_BENCH_CHANNELS"))
	if err != nil {
		t.Fatal(err)
	}
	channels := strings.Fields(string(raw))
	staffHeader := http.Header{"Authorization": {os.Getenv("HUB_BENCH_AUTHORIZATION")}}
	type rec struct {
		key string
		ns  int64
	}
	var mu sync.Mutex
	var recs []rec
	var ready sync.WaitGroup
	sem := make(chan struct{}, 64)
	conns := make([]*websocket.Conn, len(channels))
	for i, ch := range channels {
		sem <- struct{}{}
		ready.Add(1)
		go func() {
			var once sync.Once
			release := func() { once.Do(func() { <-sem; ready.Done() }) } // once subscribed (or failed)
			d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
			var ws *websocket.Conn
			var err error
			for try := 0; try < 5; try++ {
				if ws, _, err = d.Dial(url, staffHeader); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				fmt.Println("dial failed:", err)
				release()
				return
			}
			conns[i] = ws
			_ = ws.WriteJSON(map[string]string{"type": "subscribe", "channel": ch})
			for {
				_, b, err := ws.ReadMessage()
				now := time.Now().UnixNano()
				if err != nil {
					release()
					return
				}
				var f struct {
					Type     string `json:"type"`
					StreamID string `json:"stream_id"`
					Version  int64  `json:"version"`
				}
				_ = json.Unmarshal(b, &f)
				switch f.Type {
				case "subscribed":
					release()
				case "event":
					mu.Lock()
					recs = append(recs, rec{f.StreamID + "/" + strconv.FormatInt(f.Version, 10), now})
					mu.Unlock()
				}
			}
		}()
	}
	ready.Wait()
	fmt.Println("READY")
	ru0 := rusage()
	start := time.Now()
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin when done
	cpu := (rusage() - ru0).Seconds()
	w := bufio.NewWriter(os.Stdout)
	mu.Lock()
	for _, r := range recs {
		fmt.Fprintf(w, "E %s %d\n", r.key, r.ns)
	}
	mu.Unlock()
	fmt.Fprintf(w, "CPU %.1fs over %s = %.2f cores\n", cpu, time.Since(start).Round(time.Millisecond), cpu/time.Since(start).Seconds())
	fmt.Fprintln(w, "DONE")
	_ = w.Flush()
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

func raiseFileLimit(tb testing.TB) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			tb.Fatal(err)
		}
	}
	if l.Cur < 12000 {
		tb.Fatalf("RLIMIT_NOFILE %d: 10 000 connections need more", l.Cur)
	}
}

func inuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// rusage is this process's user+sys CPU time.
func rusage() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitFor(tb testing.TB, timeout time.Duration, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = ulid.Make
