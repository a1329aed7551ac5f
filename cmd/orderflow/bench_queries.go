package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

func runBenchQueries(ctx context.Context, args []string) error {
	var (
		c                 common
		clients, sample   int
		dbMaxConns        int
		duration, warmup  time.Duration
		listLimit         int
		workloadNames     string
		customersByOrders bool
		cpuProfile        string
	)
	f := newFlags("bench queries", "Serves the query API in-process on a real TCP listener (the real handlers and middleware) and drives it with concurrent keep-alive HTTP clients: GET /v1/orders/{id} for random seeded orders, then the first page of a random customer's orders.")
	c.register(f)
	f.int(&clients, "clients", "ORDERFLOW_BENCH_CLIENTS", 16, "concurrent HTTP clients")
	f.duration(&duration, "duration", "ORDERFLOW_BENCH_DURATION", 30*time.Second, "measured time per workload")
	f.duration(&warmup, "warmup", "ORDERFLOW_BENCH_WARMUP", 3*time.Second, "unmeasured time before each workload")
	f.int(&sample, "sample", "ORDERFLOW_BENCH_SAMPLE", 100000, "order ids and customer ids sampled at start")
	f.int(&dbMaxConns, "db-max-conns", "ORDERFLOW_DB_MAX_CONNS", 20, "PostgreSQL pool size of the API (serve's default)")
	f.int(&listLimit, "limit", "ORDERFLOW_BENCH_LIMIT", 50, "page size of the list workload")
	f.bool(&customersByOrders, "customers-by-orders", "ORDERFLOW_BENCH_CUSTOMERS_BY_ORDERS", false, "draw customers in proportion to their orders (busy customers more often) instead of uniformly")
	f.string(&cpuProfile, "cpuprofile", "ORDERFLOW_BENCH_CPUPROFILE", "", "write a Go CPU profile (clients and server: one process) of the measured runs to this file")
	f.string(&workloadNames, "workloads", "ORDERFLOW_BENCH_WORKLOADS", "get,list", "workloads to run: get, list or get,list")
	if err := f.parse(args, func() {
		c.validate(f, false, pg.Query)
		f.check(clients < 1, "--clients must be at least 1")
		f.check(duration <= 0, "--duration must be positive")
		f.check(sample < 1, "--sample must be at least 1")
		f.check(dbMaxConns < 1, "--db-max-conns must be at least 1")
		f.check(workloadNames != "get" && workloadNames != "list" && workloadNames != "get,list", "--workloads: want get, list or get,list")
	}); err != nil {
		return err
	}
	log := c.logger(os.Stderr)
	pool, err := pg.Connect(ctx, c.login(pg.Query), pg.Options{MaxConns: poolSize(dbMaxConns), ApplicationName: "orderflow bench queries"})
	if err != nil {
		return err
	}
	defer pool.Close()
	info, err := serverInfo(ctx, pool)
	if err != nil {
		return err
	}

	ids, err := sampleStrings(ctx, pool, `SELECT order_id FROM order_summaries ORDER BY random() LIMIT $1`, sample, func(r pgx.Rows) (string, error) {
		var id pgtype.UUID
		err := r.Scan(&id)
		return ulid.ULID(id.Bytes).String(), err
	})
	if err != nil {
		return err
	}
	customerSQL := `SELECT customer_id FROM customer_stats ORDER BY random() LIMIT $1`
	if customersByOrders {
		customerSQL = `SELECT customer_id FROM order_summaries ORDER BY random() LIMIT $1`
	}
	customers, err := sampleStrings(ctx, pool, customerSQL, sample, func(r pgx.Rows) (string, error) {
		var s string
		return s, r.Scan(&s)
	})
	if err != nil {
		return err
	}
	if len(ids) == 0 || len(customers) == 0 {
		return fmt.Errorf("no orders to read: run `orderflow bench seed` and `orderflow bench rebuild` first")
	}
	var orders, customersTotal int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM order_summaries), (SELECT count(*) FROM customer_stats)`).Scan(&orders, &customersTotal); err != nil {
		return err
	}

	mux := http.NewServeMux()
	qapi, err := queries.NewAPI(pool, eventstore.New(pool), order.NewRegistry(), queries.Options{Logger: log})
	if err != nil {
		return err
	}
	qapi.Register(mux)
	srv := httptest.NewServer(httpx.Middleware(log, mux))
	defer srv.Close()
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()

	fmt.Printf("bench queries: clients=%d duration=%s (after %s warm-up) API pool=%d conns, %d orders, %d customers; sampled %d order ids, %d customers (%s)\n%s\nserver %s (in-process, httptest over TCP, httpx.Middleware, log level %s)\n",
		clients, duration, warmup, dbMaxConns, orders, customersTotal, len(ids), len(customers),
		map[bool]string{true: "by orders", false: "uniformly"}[customersByOrders], info, srv.URL, c.logLevel)

	type workload struct {
		key  string
		name string
		path func(r *rand.Rand) string
	}
	all := []workload{
		{"get", "GET /v1/orders/{id}", func(r *rand.Rand) string { return "/v1/orders/" + ids[r.IntN(len(ids))] }},
		{"list", fmt.Sprintf("GET /v1/orders?customer_id=…&limit=%d", listLimit), func(r *rand.Rand) string {
			return "/v1/orders?customer_id=" + url.QueryEscape(customers[r.IntN(len(customers))]) + fmt.Sprintf("&limit=%d", listLimit)
		}},
	}
	var chosen []workload
	switch workloadNames {
	case "get":
		chosen = all[:1]
	case "list":
		chosen = all[1:]
	default:
		chosen = all
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WORKLOAD\tREQUESTS\tERRORS\tREQ/S\tp50\tp95\tp99\tmax\tBYTES/RESP\t")
	for _, w := range chosen {
		if warmup > 0 {
			if _, err := drive(ctx, client, srv.URL, clients, warmup, w.path); err != nil {
				return err
			}
		}
		if cpuProfile != "" {
			pf, err := os.Create(cpuProfile + "." + w.key) // #nosec G304 -- the operator names the profile file (--cpuprofile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
		}
		res, err := drive(ctx, client, srv.URL, clients, duration, w.path)
		pprof.StopCPUProfile()
		if err != nil {
			return err
		}
		h := res.rec
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", w.name, h.Count(), res.errors, rate(h.Count(), res.elapsed.Seconds()),
			h.Quantile(50), h.Quantile(95), h.Quantile(99), h.Quantile(100), res.bytes/max(h.Count(), 1))
		fmt.Fprintf(os.Stderr, "%s: %s\n", w.name, h.Summary(res.elapsed, "requests"))
	}
	return tw.Flush()
}

type driveResult struct {
	rec           *benchstat.Recorder
	errors, bytes int64
	elapsed       time.Duration
}

// drive runs clients goroutines, each issuing requests one after the other
// (keep-alive) for d, and records every answered request's latency. A
// non-200 answer counts as an error, and its latency is recorded too.
func drive(ctx context.Context, client *http.Client, base string, clients int, d time.Duration, path func(*rand.Rand) string) (driveResult, error) {
	res := driveResult{rec: benchstat.New()}
	var (
		wg       sync.WaitGroup
		errs     atomic.Int64
		bytes    atomic.Int64
		firstErr atomic.Value
	)
	// Requests are not cancelled at the end: each client stops after its
	// request in flight, so no request is cut (and none logged as failed).
	start := time.Now()
	end := start.Add(d)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))) // #nosec G404 G115 -- load-generator choices, not secrets; i is a small worker index
			for ctx.Err() == nil && time.Now().Before(end) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path(r), nil)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					var n int64
					n, err = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					bytes.Add(n)
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				res.rec.Since(t0)
				if resp.StatusCode != http.StatusOK {
					if errs.Add(1) == 1 {
						fmt.Fprintf(os.Stderr, "first error: %s %s\n", req.URL.Path, resp.Status)
					}
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.errors, res.bytes = errs.Load(), bytes.Load()
	if err, _ := firstErr.Load().(error); err != nil && res.rec.Count() == 0 {
		return res, err
	}
	return res, ctx.Err()
}

func sampleStrings(ctx context.Context, pool interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, sql string, n int, scan func(pgx.Rows) (string, error)) ([]string, error) {
	rows, err := pool.Query(ctx, sql, n)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) { return scan(r.(pgx.Rows)) })
}
