package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/projections"
)

// TestAPoisonEventParksItsOrderWhileTheOthersFlowAndReplayAfterTheFixEqualsARebuild
// makes one order's shipment poison for the order summaries (a constraint
// the read model refuses its row with: a bug an event's content triggers)
// under a steady command load on `orderflow serve`: the shipment is
// dead-lettered, the order's delivery is parked behind it, and every other
// order keeps flowing (their lag is printed). Then the fix (the constraint
// dropped, as a migration would) and `orderflow dlq replay`: the live read
// models equal a rebuild from the store, row by row; a second replay changes
// nothing; the audit log says who replayed and why.
func TestAPoisonEventParksItsOrderWhileTheOthersFlowAndReplayAfterTheFixEqualsARebuild(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	if _, err := e.DB.Owner.Exec(context.Background(),
		`ALTER TABLE order_summaries ADD CONSTRAINT poison CHECK (carrier IS DISTINCT FROM 'POISON')`); err != nil {
		t.Fatal(err)
	}
	broker := testenv.StartKafka(t)
	srv := serve(t, e.DB.URL, broker, allRoles)
	l := startLoad(t, 4, 100, srv.URL)
	l.waitAcked(t, 100, "commands before the poison")

	staff := testenv.Bearer(t, "c-poison", auth.Customer, auth.Staff)
	created := post(t, srv.URL+"/v1/orders", staff, `{"customer_id":"c-poison","currency":"EUR",
		"items":[{"sku":"S","name":"N","quantity":1,"unit_price_minor":100}]}`)
	order := "/v1/orders/" + created.OrderID
	post(t, srv.URL+order+"/place", staff, ``)
	paid := post(t, srv.URL+order+"/payments", staff, `{"amount_minor":100,"currency":"EUR","reference":"r"}`)
	// The order summaries' lag, sampled from the shipment on: while the
	// projection retries the poison event (its retry budget), and after.
	lag := startLagSampler(t, srv.OpsURL, "order_summary")
	post(t, srv.URL+order+"/ship", staff, `{"carrier":"POISON","tracking_number":"T"}`)
	post(t, srv.URL+order+"/deliver", staff, ``)
	id := ulid.MustParse(created.OrderID)
	parkedAfter := waitFor(t, "the shipment dead-lettered and the delivery parked behind it", func() bool {
		letters, err := projections.ListDeadLetters(context.Background(), e.DB.Query, projections.DeadLetterFilter{OrderID: &id})
		if err != nil {
			t.Fatal(err)
		}
		return len(letters) == 2
	})

	// The other orders keep flowing while the poisoned order stays parked
	// and the load goes on.
	retrying := lag.max()
	if n := scrape(t, srv.OpsURL)["projection_dead_letters"]; n != 2 { // summed over projections: order_summary's
		t.Errorf("projection_dead_letters = %v, want 2", n)
	}
	l.waitAcked(t, 300, "commands while the order is parked")
	parked := lag.stop()
	l.stop()
	var applied int64
	if err := e.DB.Owner.QueryRow(context.Background(), `SELECT version FROM order_summary_versions WHERE stream_id = $1`,
		pgtype.UUID{Bytes: id, Valid: true}).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != paid.Version {
		t.Fatalf("the poisoned order's summary is at version %d, want %d: the events after the poison one must wait", applied, paid.Version)
	}
	letters := dlqList(t, e.DB, "--order", created.OrderID)
	ship, deliver := letters[1], letters[0]
	if ship.EventType != "OrderShipped" || !strings.Contains(ship.Reason, "poison") || deliver.Version != ship.Version+1 ||
		!strings.Contains(deliver.Reason, "parked behind") || ship.Projection != "order_summary" {
		t.Fatalf("dead letters: %+v", letters)
	}

	// The fix, then the replay; and the replay again.
	if _, err := e.DB.Owner.Exec(context.Background(), `ALTER TABLE order_summaries DROP CONSTRAINT poison`); err != nil {
		t.Fatal(err)
	}
	out := orderflowCLI(t, e.DB, true, "dlq", "replay", fmt.Sprint(ship.ID), "--reason", "constraint fixed")
	again := orderflowCLI(t, e.DB, true, "dlq", "replay", fmt.Sprint(ship.ID))
	if !strings.Contains(again, "replayed already: nothing changed") {
		t.Fatalf("second replay said %q", again)
	}
	converged := waitConverged(t, e.DB.Owner)
	if _, err := srv.Terminate(t); err != nil {
		t.Errorf("orderflow serve exited with %v after SIGTERM", err)
	}
	v := checkEverything(t, e.DB, broker.Addr, l)
	if v.rowsDiffering != 0 {
		t.Errorf("after the replay, %d read-model rows differ from a rebuild", v.rowsDiffering)
	}
	entries := orderflowCLI(t, e.DB, true, "audit", "--json", "--action", "dead_letter.replayed")
	if strings.Count(entries, "\n") != 1 || !strings.Contains(entries, `"reason":"constraint fixed"`) || !strings.Contains(entries, `"actor":"os:`) {
		t.Errorf("audit log after two replays: %s", entries)
	}
	t.Logf("injected: an OrderShipped the order summaries refuse (a CHECK constraint), under %s", l.summary())
	t.Logf("dead-lettered and its delivery parked %s after the delivery's 2xx; order_summary lag (projection_lag_seconds, every 100 ms): max %.2f s until parked (the poison event's retries), max %.2f s while parked over %d samples",
		parkedAfter.Round(time.Millisecond), retrying, parked.worst, parked.samples)
	t.Logf("replay: %s; converged %s later", strings.TrimSpace(out), converged.Round(time.Millisecond))
	t.Logf("lost: %s", v)
}

// post sends a command and returns its acknowledgement; anything but 2xx
// fails the test.
func post(t testing.TB, url, authz, body string) ack {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authz)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := (&http.Client{Timeout: requestDeadline}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	var a ack
	if res.StatusCode/100 != 2 || json.Unmarshal(b, &a) != nil {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, b)
	}
	return a
}

// orderflowCLI runs the built binary against db and returns its standard
// output; it fails the test unless the exit status is as ok says.
func orderflowCLI(t testing.TB, db *pgtest.DB, ok bool, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...) // #nosec G204 -- test: the binary just built
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.URL)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); (err == nil) != ok {
		t.Fatalf("orderflow %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), stderr.String())
	}
	return out.String()
}

// dlqList is `orderflow dlq list --json` with args.
func dlqList(t testing.TB, db *pgtest.DB, args ...string) []projections.DeadLetter {
	t.Helper()
	var out []projections.DeadLetter
	dec := json.NewDecoder(strings.NewReader(orderflowCLI(t, db, true, append([]string{"dlq", "list", "--json"}, args...)...)))
	for dec.More() {
		var d projections.DeadLetter
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// lagSampler scrapes a projection's projection_lag_seconds every 100 ms.
type lagSampler struct {
	done    chan struct{}
	result  chan lagSamples
	current chan float64
}

type lagSamples struct {
	worst   float64
	samples int
}

func startLagSampler(t testing.TB, opsURL, projection string) *lagSampler {
	s := &lagSampler{done: make(chan struct{}), result: make(chan lagSamples, 1), current: make(chan float64)}
	name := `projection_lag_seconds{projection="` + projection + `"}`
	go func() {
		var r lagSamples
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				s.result <- r
				return
			case s.current <- r.worst:
				r = lagSamples{} // a new window
			case <-tick.C:
				res, err := http.Get(opsURL + "/metrics")
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(res.Body)
				_ = res.Body.Close()
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, name+" "); ok {
						var f float64
						if _, err := fmt.Sscan(v, &f); err == nil {
							r.worst, r.samples = max(r.worst, f), r.samples+1
						}
					}
				}
			}
		}
	}()
	return s
}

// max returns the worst lag so far and starts a new window.
func (s *lagSampler) max() float64 { return <-s.current }

// stop ends the sampling and returns the last window.
func (s *lagSampler) stop() lagSamples {
	close(s.done)
	return <-s.result
}
