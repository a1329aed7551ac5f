package httpapi_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	commandsmig "github.com/orderflow/orderflow/commands/migrations"
	"github.com/orderflow/orderflow/eventstore"
	eventstoremig "github.com/orderflow/orderflow/eventstore/migrations"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/schema"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
)

// nodeOn is another API process on a's database: its own store (group
// commit), service and state cache.
func (a *api) nodeOn() *api {
	a.t.Helper()
	return serveOn(a.t, a.db)
}

func serveOn(t *testing.T, db *pgtest.DB) *api {
	t.Helper()
	mux := http.NewServeMux()
	register(t, mux, db, eventstore.New(db.Command))
	srv := httptest.NewServer(httpx.Middleware(testenv.Logger(t), mux))
	t.Cleanup(srv.Close)
	return &api{t: t, db: db, srv: srv}
}

var payment = map[string]any{"amount_minor": 2500, "currency": "EUR", "reference": "psp-1"}

func TestIdempotencyKeysAreScopedToTheirOrder(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	first, second := a.create(mug), a.create(mug)
	one := a.post("/v1/orders/"+first+"/items", plate, "Idempotency-Key", "shared")
	one.want(t, http.StatusOK, "")

	t.Run("the same key on another order is another order's key", func(t *testing.T) {
		before := a.rows()
		r := a.post("/v1/orders/"+second+"/items", plate, "Idempotency-Key", "shared")
		r.want(t, http.StatusOK, "")
		if r.Header.Get("Idempotent-Replayed") != "" || r.outcome(t).OrderID != second {
			t.Fatalf("answered %s %v", r.Body, r.Header)
		}
		if after := a.rows(); after != (rows{Events: before.Events + 1, Keys: before.Keys + 1}) {
			t.Fatalf("rows %+v → %+v, want one event and one key more", before, after)
		}
	})
	t.Run("each order's key still replays its own answer", func(t *testing.T) {
		before := a.rows()
		r := a.post("/v1/orders/"+first+"/items", plate, "Idempotency-Key", "shared")
		r.want(t, http.StatusOK, "")
		if string(r.Body) != string(one.Body) || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %s, first %s", r.Body, one.Body)
		}
		a.unchanged(before)
	})
	t.Run("creations share one scope: the key with another creation is 422", func(t *testing.T) {
		a.post("/v1/orders", createBody(mug), "Idempotency-Key", "checkout-1").want(t, http.StatusCreated, "")
		before := a.rows()
		a.post("/v1/orders", createBody(plate), "Idempotency-Key", "checkout-1").want(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
		a.unchanged(before)
	})
}

// Once authentication records a subject (httpx.WithActor, here from a test
// header), keys belong to the subject: the same key on another order is
// the subject's key reused, and two subjects' keys never meet.
func TestIdempotencyKeysOfAnAuthenticatedSubjectAreTheSubjects(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	mux := http.NewServeMux()
	register(t, mux, e.DB, e.Store)
	authenticated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sub := r.Header.Get("X-Test-Subject"); sub != "" {
			r = r.WithContext(httpx.WithActor(r.Context(), sub))
		}
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(httpx.Middleware(testenv.Logger(t), authenticated))
	t.Cleanup(srv.Close)
	a := &api{t: t, db: e.DB, srv: srv}
	first, second := a.create(mug), a.create(mug)

	a.post("/v1/orders/"+first+"/items", plate, "Idempotency-Key", "k", "X-Test-Subject", "alice").want(t, http.StatusOK, "")
	before := a.rows()
	a.post("/v1/orders/"+second+"/items", plate, "Idempotency-Key", "k", "X-Test-Subject", "alice").
		want(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
	a.unchanged(before)
	r := a.post("/v1/orders/"+first+"/items", plate, "Idempotency-Key", "k", "X-Test-Subject", "bob")
	r.want(t, http.StatusOK, "")
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("another subject's request replayed alice's answer")
	}
}

// A retried command whose first attempt succeeded finds the order moved
// past the state it can be decided in; the key's answer stands, on every
// step of the life cycle, and on another process too.
func TestARetryAfterTheOrderMovedOnReplays(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	other := a.nodeOn()
	id := a.create(mug)
	steps := []struct {
		path string
		body any
	}{
		{"/place", ""}, {"/payments", payment},
		{"/ship", map[string]any{"carrier": "DHL", "tracking_number": "T1"}}, {"/deliver", ""},
	}
	for i, s := range steps {
		key := fmt.Sprintf("step-%d", i)
		first := a.post("/v1/orders/"+id+s.path, s.body, "Idempotency-Key", key)
		first.want(t, http.StatusOK, "")
		before := a.rows()
		for _, node := range []*api{a, other} {
			r := node.post("/v1/orders/"+id+s.path, s.body, "Idempotency-Key", key)
			r.want(t, http.StatusOK, "")
			if string(r.Body) != string(first.Body) || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("%s replay %s, first %s", s.path, r.Body, first.Body)
			}
			sameExceptPerRequest(t, first.Header, r.Header)
		}
		a.unchanged(before)
	}
}

// Many goroutines send one keyed request at once, to two processes: some
// decide before the first append commits (and meet the key in the batch),
// others after it (and meet it on the refusal). One appends; every answer
// is the first one's.
func TestOneKeyRacedFromManyGoroutinesOnTwoProcessesAppendsOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	nodes := []*api{a, a.nodeOn()}
	cases := []struct {
		name, path string
		body       any
		status     int
		events     int
	}{
		{"a creation", "/v1/orders", createBody(mug), http.StatusCreated, 2},
		{"a placement", "/v1/orders/" + a.create(mug) + "/place", "", http.StatusOK, 1},
		{"an item addition (which a second decision would accept too)", "/v1/orders/" + a.create(mug) + "/items", plate, http.StatusOK, 1},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := a.rows()
			const senders = 24
			replies := make([]reply, senders)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					replies[i] = nodes[i%2].post(c.path, c.body, "Idempotency-Key", fmt.Sprint("race-", ci))
				}()
			}
			close(start)
			wg.Wait()
			fresh := 0
			for _, r := range replies {
				r.want(t, c.status, "")
				if string(r.Body) != string(replies[0].Body) {
					t.Fatalf("answers differ: %s and %s", r.Body, replies[0].Body)
				}
				if r.Header.Get("Idempotent-Replayed") == "" {
					fresh++
				}
			}
			if fresh != 1 {
				t.Errorf("%d answers were not replays, want 1", fresh)
			}
			if after := a.rows(); after != (rows{Events: before.Events + c.events, Keys: before.Keys + 1}) {
				t.Errorf("rows %+v → %+v, want %d events and one key more", before, after, c.events)
			}
		})
	}
}

// Two processes serve one order, so each one's cached state goes stale when
// the other writes. No stale state decides: a lost race decides again on
// the store's state, a refusal is checked on it, and If-Match is compared
// with the store's version.
func TestAStaleCachedStateNeverDecides(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	b := a.nodeOn()

	t.Run("an append on a stale state decides again on fresh state", func(t *testing.T) {
		id := a.create(mug)                                                 // a caches version 2
		b.post("/v1/orders/"+id+"/items", plate).want(t, http.StatusOK, "") // the store is at 3
		r := a.post("/v1/orders/"+id+"/place", "")
		r.want(t, http.StatusOK, "")
		evs := a.envelopes(id)
		var placed order.OrderPlaced
		if err := jsonUnmarshal(evs[len(evs)-1].Data, &placed); err != nil {
			t.Fatal(err)
		}
		if placed.ItemCount != 2 || placed.TotalMinor != 2*1250+900 {
			t.Fatalf("placed on a stale state: %+v", placed)
		}
	})
	t.Run("a refusal on a stale state is checked on fresh state", func(t *testing.T) {
		id := a.create(mug)                                              // a caches a draft
		b.post("/v1/orders/"+id+"/place", "").want(t, http.StatusOK, "") // the store has it placed
		a.post("/v1/orders/"+id+"/payments", payment).want(t, http.StatusOK, "")
	})
	t.Run("If-Match is compared with the store's version, not a stale one", func(t *testing.T) {
		id := a.create(mug)
		b.post("/v1/orders/"+id+"/items", plate).want(t, http.StatusOK, "")
		a.post("/v1/orders/"+id+"/place", "", "If-Match", `"3"`).want(t, http.StatusOK, "")
		a.post("/v1/orders/"+id+"/place", "", "If-Match", `"3"`).want(t, http.StatusPreconditionFailed, "stale-version")
	})
	t.Run("a keyed command on a stale state stores its key once", func(t *testing.T) {
		id := a.create(mug)
		b.post("/v1/orders/"+id+"/items", plate).want(t, http.StatusOK, "")
		before := a.rows()
		first := a.post("/v1/orders/"+id+"/place", "", "Idempotency-Key", "stale-place")
		first.want(t, http.StatusOK, "")
		if after := a.rows(); after != (rows{Events: before.Events + 1, Keys: before.Keys + 1}) {
			t.Fatalf("rows %+v → %+v", before, after)
		}
		again := b.post("/v1/orders/"+id+"/place", "", "Idempotency-Key", "stale-place")
		if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %s, first %s", again.Body, first.Body)
		}
	})
}

// Keys stored before they moved into the event store (commands migration
// 00003) still replay, scoped as the API scopes them now.
func TestKeysFromBeforeTheMoveStillReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A database migrated as the previous release left it: every set up to
	// the commands' 00002.
	before := fstest.MapFS{}
	for _, name := range []string{"00001_idempotency.sql", "00002_roles.sql"} {
		b, err := fs.ReadFile(commandsmig.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	url := createDatabase(t)
	sqlDB, err := pg.OpenSQL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sqlDB.Close() }()
	if err := migrate.Up(ctx, sqlDB, migrate.Set{Name: "eventstore", FS: eventstoremig.FS()}, migrate.Set{Name: "commands", FS: before}); err != nil {
		t.Fatal(err)
	}
	db := pgtest.Open(t, url)
	store := eventstore.New(db.Command)
	if err := store.EnsureAhead(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// An order created and given an item, keyed, as the previous release
	// stored it.
	id := ulid.Make()
	reg := order.NewRegistry()
	var data []eventstore.EventData
	for _, e := range []order.Event{order.OrderCreated{OrderID: id, CustomerID: "cust-42", Currency: "EUR", CreatedAt: time.Now().UTC()},
		order.ItemAdded{SKU: mug.SKU, Name: mug.Name, Quantity: mug.Quantity, UnitPriceMinor: mug.UnitPriceMinor}} {
		name, schema, raw, err := reg.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: ulid.Make(), Type: name, SchemaVersion: schema, Data: raw})
	}
	created, err := store.Append(ctx, eventstore.Stream{ID: id, Type: order.StreamType}, eventstore.NoStream(), data)
	if err != nil {
		t.Fatal(err)
	}
	createJSON := jsonOf(t, createBody(mug))
	itemJSON := jsonOf(t, plate)
	fp := func(method, path, body string) []byte {
		h := sha256.Sum256([]byte(method + " " + path + "\n" + body))
		return h[:]
	}
	for _, k := range []struct {
		key     string
		fp      []byte
		outcome string
	}{
		{"legacy-create", fp("POST", "/v1/orders", createJSON), fmt.Sprintf(`{"status":201,"order_id":"%s","version":2,"position":%d}`, id, created.Position)},
		{"legacy-item", fp("POST", "/v1/orders/"+id.String()+"/items", itemJSON), fmt.Sprintf(`{"status":200,"order_id":"%s","version":3,"position":%d}`, id, created.Position+1)},
	} {
		if _, err := db.Owner.Exec(ctx, `INSERT INTO idempotency_keys (key, fingerprint, outcome) VALUES ($1, $2, $3)`, k.key, k.fp, k.outcome); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrate.Up(ctx, sqlDB, schema.Sets()...); err != nil {
		t.Fatal(err)
	}

	a := serveOn(t, db)
	rowsBefore := a.rows()
	r := a.post("/v1/orders", createJSON, "Idempotency-Key", "legacy-create")
	r.want(t, http.StatusCreated, "")
	if o := r.outcome(t); o.OrderID != id.String() || o.Version != 2 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("legacy creation replay: %s", r.Body)
	}
	if got := r.Header.Get("Location"); got != "/v1/orders/"+id.String() {
		t.Errorf("Location = %q", got)
	}
	r = a.post("/v1/orders/"+id.String()+"/items", itemJSON, "Idempotency-Key", "legacy-item")
	r.want(t, http.StatusOK, "")
	if o := r.outcome(t); o.Version != 3 || o.Position != created.Position+1 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("legacy item replay: %s", r.Body)
	}
	a.unchanged(rowsBefore)
}

// createDatabase creates an empty database on DATABASE_URL's server,
// dropped when the test ends, and returns its owner's URL.
func createDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := pgtest.AdminURL(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	name := "orderflow_test_" + strings.ToLower(ulid.Make().String()[16:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = c.Close(context.Background()) }()
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	u, err := neturl.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
