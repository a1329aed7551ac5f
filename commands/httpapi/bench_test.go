package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/commands/httpapi"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/order"
)

// The command path's benchmarks, from the inside out:
//
//	go test ./commands/httpapi -run '^$' -bench Decide -benchmem
//	go test ./commands/httpapi -run '^$' -bench Handler -benchtime 6000x
//	go test ./commands/httpapi -run '^$' -bench Lifecycle -benchtime 30000x
//
// BenchmarkDecide is the pure decisions. BenchmarkHandler is one request
// through the production middleware, mux, handler, service and store (group
// commit) on a real database, in the benchmark's goroutine: its allocs/op
// is the whole command path's, client excluded. BenchmarkLifecycle is the
// load the issue measures, 64 HTTP clients over loopback each taking orders
// through create → add item → place → pay → ship → deliver, with and without
// an Idempotency-Key, plus an open-loop run at 1 000 commands/s whose
// latencies count from each request's scheduled start (no coordinated
// omission). Run them without -race.

// lifecycle is one order's life as six requests. The order id is filled in
// after the create.
var lifecycle = []struct {
	method, path, body string
}{
	{http.MethodPost, "/v1/orders", `{"customer_id":"c-42","currency":"EUR","items":[{"sku":"BOOK-1","name":"A book","quantity":2,"unit_price_minor":1250}]}`},
	{http.MethodPost, "/v1/orders/%s/items", `{"sku":"PEN-9","name":"A pen","quantity":1,"unit_price_minor":300}`},
	{http.MethodPost, "/v1/orders/%s/place", ``},
	{http.MethodPost, "/v1/orders/%s/payments", `{"amount_minor":2800,"currency":"EUR","reference":"psp-123"}`},
	{http.MethodPost, "/v1/orders/%s/ship", `{"carrier":"DHL","tracking_number":"00340434161094042557"}`},
	{http.MethodPost, "/v1/orders/%s/deliver", ``},
}

// benchServer is the api role's HTTP stack on a fresh database, with the
// pool size serve uses by default.
func benchServer(b *testing.B) (http.Handler, *eventstore.Store) {
	b.Helper()
	db := pgtest.New(b)
	ctx := context.Background()
	pool, err := pg.Connect(ctx, db.Login(pg.Command), pg.Options{MaxConns: 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	store := eventstore.New(pool)
	if err := store.EnsureAhead(ctx, time.Now()); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	svc, err := commands.NewService(commands.Config{Store: store, Registry: order.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	httpapi.NewAPI(svc, nil).Register(mux)
	return httpx.Middleware(slog.New(slog.DiscardHandler), mux), store
}

func BenchmarkDecide(b *testing.B) {
	now := time.Now()
	id := ulid.Make()
	draft := order.Fold(
		order.OrderCreated{OrderID: id, CustomerID: "c-42", Currency: "EUR", CreatedAt: now},
		order.ItemAdded{SKU: "BOOK-1", Name: "A book", Quantity: 2, UnitPriceMinor: 1250})
	evolve := func(s order.State, e order.Event) order.State { s.Apply(e); return s }
	placed := evolve(draft, order.OrderPlaced{TotalMinor: 2500, ItemCount: 1, PlacedAt: now})
	paid := evolve(placed, order.PaymentRecorded{AmountMinor: 2500, Currency: "EUR", Reference: "psp-1", PaidAt: now})
	shipped := evolve(paid, order.OrderShipped{Carrier: "DHL", TrackingNumber: "1", ShippedAt: now})
	cases := []struct {
		name  string
		state order.State
		cmd   commands.Command
	}{
		{"create", order.State{}, commands.CreateOrder{OrderID: id, CustomerID: "c-42", Currency: "EUR",
			Items: []commands.ItemInput{{SKU: "BOOK-1", Name: "A book", Quantity: 2, UnitPriceMinor: 1250}}}},
		{"add-item", draft, commands.AddItem{SKU: "PEN-9", Name: "A pen", Quantity: 1, UnitPriceMinor: 300}},
		{"place", draft, commands.PlaceOrder{}},
		{"pay", placed, commands.RecordPayment{AmountMinor: 2500, Currency: "EUR", Reference: "psp-1"}},
		{"ship", paid, commands.ShipOrder{Carrier: "DHL", TrackingNumber: "1"}},
		{"deliver", shipped, commands.DeliverOrder{}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.cmd.Decide(c.state, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler sends lifecycle requests through the whole server stack
// (no network); an op is one command. in-flight=1 sends them one after
// another (every batch holds one request: the per-transaction costs are all
// its own); in-flight=64 keeps 64 in flight, so batches form as under load
// and allocs/op is a command's share at production batch sizes.
func BenchmarkHandler(b *testing.B) {
	for _, inFlight := range []int{1, 64} {
		for _, keyed := range []bool{false, true} {
			b.Run(fmt.Sprintf("in-flight=%d/keyed=%t", inFlight, keyed), func(b *testing.B) {
				h, _ := benchServer(b)
				var keys atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(max(inFlight/runtime.GOMAXPROCS(0), 1))
				if inFlight == 1 {
					b.SetParallelism(1)
				}
				b.ResetTimer()
				var runErr atomic.Value
				run := func(next func() bool) {
					var id string
					for n := 0; next(); n++ {
						step := lifecycle[n%len(lifecycle)]
						path := step.path
						if n%len(lifecycle) != 0 {
							path = fmt.Sprintf(step.path, id)
						}
						req := httptest.NewRequest(step.method, path, strings.NewReader(step.body))
						if step.body != "" {
							req.Header.Set("Content-Type", "application/json")
						}
						if keyed {
							req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatInt(keys.Add(1), 10))
						}
						w := httptest.NewRecorder()
						h.ServeHTTP(w, req)
						if w.Code != http.StatusOK && w.Code != http.StatusCreated {
							runErr.Store(fmt.Errorf("%s %s: %d %s", step.method, path, w.Code, w.Body))
							return
						}
						if n%len(lifecycle) == 0 {
							id = strings.TrimPrefix(w.Header().Get("Location"), "/v1/orders/")
						}
					}
				}
				if inFlight == 1 {
					run(b.Loop)
				} else {
					b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
				}
				if err, ok := runErr.Load().(error); ok {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkLifecycle: b.N commands from 64 HTTP clients (closed loop), and
// an open-loop run at 1 000 commands/s.
func BenchmarkLifecycle(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(fmt.Sprintf("clients=64/keyed=%t", keyed), func(b *testing.B) {
			h, store := benchServer(b)
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := newBenchClient(srv, 64)
			rec := benchstat.New()
			perClient := max(b.N/64, len(lifecycle))
			var cmds atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var id string
					for i := range perClient {
						t0 := time.Now()
						if err := c.step(i%len(lifecycle), &id, keyed); err != nil {
							b.Error(err)
							return
						}
						rec.Since(t0)
						cmds.Add(1)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			rec.Report(b, float64(cmds.Load())/elapsed.Seconds(), "commands")
			st := store.Stats()
			b.Logf("64 clients, keyed=%t: %s | %d transactions, %.1f appends each",
				keyed, rec.Summary(elapsed, "commands"), st.Batches, float64(st.Requests)/float64(max(st.Batches, 1)))
		})
	}
	for _, keyed := range []bool{false, true} {
		b.Run(fmt.Sprintf("open-loop=1000/s/keyed=%t", keyed), func(b *testing.B) {
			h, _ := benchServer(b)
			srv := httptest.NewServer(h)
			defer srv.Close()
			const lanes = 64
			c := newBenchClient(srv, lanes)
			rec := benchstat.New()
			interval := time.Second / 1000
			// Each lane is one order's life; request i goes to lane i%lanes
			// and waits for that lane's previous request, which counts in
			// its latency.
			laneMu := make([]sync.Mutex, lanes)
			ids := make([]string, lanes)
			steps := make([]int, lanes)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				due := start.Add(time.Duration(i) * interval)
				time.Sleep(time.Until(due))
				wg.Add(1)
				go func(lane int) {
					defer wg.Done()
					laneMu[lane].Lock()
					defer laneMu[lane].Unlock()
					if err := c.step(steps[lane]%len(lifecycle), &ids[lane], keyed); err != nil {
						b.Error(err)
						return
					}
					steps[lane]++
					rec.Since(due)
				}(i % lanes)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			rec.Report(b, float64(rec.Count())/elapsed.Seconds(), "commands")
			b.Logf("open loop 1000/s, keyed=%t: %s", keyed, rec.Summary(elapsed, "commands"))
		})
	}
}

type benchClient struct {
	base string
	http *http.Client
	keys atomic.Int64
}

func newBenchClient(srv *httptest.Server, conns int) *benchClient {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &benchClient{base: srv.URL, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// step sends lifecycle step i for the order *id (set by the create).
func (c *benchClient) step(i int, id *string, keyed bool) error {
	s := lifecycle[i]
	path := s.path
	if i > 0 {
		path = fmt.Sprintf(s.path, *id)
	}
	req, err := http.NewRequest(s.method, c.base+path, strings.NewReader(s.body))
	if err != nil {
		return err
	}
	if s.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if keyed {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", c.keys.Add(1)))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s %s: %d %s", s.method, path, resp.StatusCode, body)
	}
	if i == 0 {
		*id = strings.TrimPrefix(resp.Header.Get("Location"), "/v1/orders/")
	}
	return nil
}
