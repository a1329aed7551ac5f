package seed

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// Actor is the metadata actor of every seeded event.
const Actor = "seed"

// Row is one event in the events table's column form. position and
// recorded_at are left to the table's defaults: positions are drawn under
// the append lock, and clock_timestamp() in position order keeps recorded_at
// non-decreasing with the position, which time-range reads rely on. The
// order's own times (created_at, paid_at, ...) are in Data.
type Row struct {
	StreamID      ulid.ULID
	Version       int64
	EventID       ulid.ULID
	Type          string
	SchemaVersion int32
	Data          json.RawMessage
	Metadata      json.RawMessage
}

// Life is the share of orders ending in each status. The cumulative
// thresholds give: placed 80%, paid 65%, shipped 45%, delivered 30%,
// cancelled 12% (4% from draft, 4% placed, 4% paid, refunded).
var life = []struct {
	upTo float64
	path lifePath
}{
	{0.16, lifeDraft},
	{0.20, lifeDraftCancelled},
	{0.31, lifePlaced},
	{0.35, lifePlacedCancelled},
	{0.51, lifePaid},
	{0.55, lifePaidCancelled},
	{0.70, lifeShipped},
	{1.00, lifeDelivered},
}

type lifePath int

const (
	lifeDraft lifePath = iota
	lifeDraftCancelled
	lifePlaced
	lifePlacedCancelled
	lifePaid
	lifePaidCancelled
	lifeShipped
	lifeDelivered
)

var (
	currencies    = []string{"USD", "EUR", "GBP", "JPY"}
	currencyShare = []float64{0.50, 0.80, 0.95, 1.00} // cumulative
	carriers      = []string{"UPS", "DHL", "FedEx", "USPS"}
	cancelReasons = []string{"customer request", "out of stock", "payment failed", "address invalid"}
)

// catalog is the number of distinct SKUs.
const catalog = 5000

// Generator produces a Config's orders, oldest first, as event rows. It is
// deterministic for a Config (Now and Seed included). Not safe for
// concurrent use.
type Generator struct {
	cfg     Config
	reg     *order.Registry
	rng     *rand.Rand
	zipf    *rand.Zipf
	stride  uint64
	created []int64 // creation times in ms, ascending
	next    int
	stats   Stats
}

// Stats describes what a generator produced so far.
type Stats struct {
	Orders, Events int64
	ByStatus       map[order.Status]int64
	// PerCustomer[i] counts the orders of customer i (CustomerID(i)).
	PerCustomer []int32
}

// NewGenerator returns a generator for cfg.
func NewGenerator(reg *order.Registry, cfg Config) (*Generator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6f72646572666c77)) // #nosec G404 -- synthetic benchmark data must be reproducible from --seed; nothing here is secret
	g := &Generator{
		cfg: cfg, reg: reg, rng: rng,
		// 30% of orders come from a Zipf(1.2) draw over the customers (the
		// heavy buyers: at 1M orders and 100k customers the first has a few
		// thousand orders), 70% uniformly (a handful each).
		zipf:    rand.NewZipf(rng, 1.2, 10, uint64(cfg.Customers-1)), // #nosec G115 -- Customers is validated ≥ 1 by the seed Config
		stride:  coprimeStride(uint64(cfg.Customers)),                // #nosec G115 -- Customers is validated ≥ 1 by the seed Config
		created: make([]int64, cfg.Orders),
		stats:   Stats{ByStatus: map[order.Status]int64{}, PerCustomer: make([]int32, cfg.Customers)},
	}
	from, to := cfg.Window()
	span := to.Sub(from).Milliseconds()
	for i := range g.created {
		g.created[i] = from.UnixMilli() + rng.Int64N(span)
	}
	// Oldest first: stream ids (ULIDs of the creation time) then arrive in
	// roughly index order, as they do when orders are created live.
	slices.Sort(g.created)
	return g, nil
}

// coprimeStride spreads the Zipf ranks over the customer ids, so the heavy
// buyers are not simply the first ids.
func coprimeStride(n uint64) uint64 {
	for _, p := range []uint64{1000003, 999983, 7919} {
		if n%p != 0 {
			return p
		}
	}
	return 1
}

// CustomerID names customer i.
func CustomerID(i int) string { return fmt.Sprintf("cust-%07d", i) }

// Stats returns what was generated so far.
func (g *Generator) Stats() Stats { return g.stats }

// Next returns the rows of the next orders, at least Batch rows unless the
// orders run out; nil when done.
func (g *Generator) Next() ([]Row, error) {
	if g.next >= len(g.created) {
		return nil, nil
	}
	rows := make([]Row, 0, g.cfg.Batch+16)
	for len(rows) < g.cfg.Batch && g.next < len(g.created) {
		var err error
		if rows, err = g.order(g.next, rows); err != nil {
			return nil, err
		}
		g.next++
	}
	return rows, nil
}

// pending is an event with the command (correlation) it came from.
type pending struct {
	e     order.Event
	group int
	at    time.Time
}

func (g *Generator) order(i int, rows []Row) ([]Row, error) {
	now := g.cfg.Now
	at := func(t time.Time) time.Time { // a life never runs past now
		if t.After(now) {
			return now
		}
		return t
	}
	created := time.UnixMilli(g.created[i]).UTC()
	id := g.newID(created)

	c := g.customer()
	g.stats.PerCustomer[c]++
	customer := CustomerID(c)
	currency := currencyOf(c)

	evs := make([]pending, 0, 12)
	evs = append(evs, pending{e: order.OrderCreated{OrderID: id, CustomerID: customer, Currency: currency, CreatedAt: created}, at: created})
	var (
		total int64
		skus  [5]int
	)
	n := 1 + g.rng.IntN(5)
	for k := range n {
		sku := g.rng.IntN(catalog)
		for slices.Contains(skus[:k], sku) {
			sku = g.rng.IntN(catalog)
		}
		skus[k] = sku // #nosec G602 -- k < n ≤ 5 = len(skus)
		qty := int64(1 + g.rng.IntN(3))
		price := priceOf(sku)
		total += qty * price
		// Created with its items in one command, as the API does.
		evs = append(evs, pending{e: order.ItemAdded{
			SKU: fmt.Sprintf("SKU-%05d", sku), Name: fmt.Sprintf("Product %d", sku),
			Quantity: qty, UnitPriceMinor: price,
		}, at: created})
	}

	u := g.rng.Float64()
	path := lifeDelivered
	for _, l := range life {
		if u < l.upTo {
			path = l.path
			break
		}
	}
	status := order.StatusDraft
	t := created
	step := func(lo, hi time.Duration) time.Time {
		t = at(t.Add(lo + time.Duration(g.rng.Int64N(int64(hi-lo)))))
		return t
	}
	add := func(e order.Event) { evs = append(evs, pending{e: e, group: evs[len(evs)-1].group + 1, at: t}) }
	cancel := func(refund bool) {
		reason := cancelReasons[g.rng.IntN(len(cancelReasons))]
		when := step(time.Hour, 48*time.Hour)
		add(order.OrderCancelled{Reason: reason, CancelledAt: when})
		if refund {
			// Same append as the cancellation.
			evs = append(evs, pending{e: order.RefundRecorded{AmountMinor: total, Currency: currency, Reason: reason, RefundedAt: when},
				group: evs[len(evs)-1].group, at: when})
		}
		status = order.StatusCancelled
	}
	switch path {
	case lifeDraftCancelled:
		cancel(false)
	case lifeDraft:
	default:
		add(order.OrderPlaced{TotalMinor: total, ItemCount: n, PlacedAt: step(time.Minute, 30*time.Minute)})
		status = order.StatusPlaced
		if path == lifePlacedCancelled {
			cancel(false)
			break
		}
		if path == lifePlaced {
			break
		}
		add(order.PaymentRecorded{AmountMinor: total, Currency: currency,
			Reference: fmt.Sprintf("pay_%016x", g.rng.Uint64()), PaidAt: step(time.Minute, 2*time.Hour)})
		status = order.StatusPaid
		switch path {
		case lifePaidCancelled:
			cancel(true)
		case lifeShipped, lifeDelivered:
			add(order.OrderShipped{Carrier: carriers[g.rng.IntN(len(carriers))],
				TrackingNumber: fmt.Sprintf("TRK%016X", g.rng.Uint64()), ShippedAt: step(12*time.Hour, 72*time.Hour)})
			status = order.StatusShipped
			if path == lifeDelivered {
				add(order.OrderDelivered{DeliveredAt: step(24*time.Hour, 120*time.Hour)})
				status = order.StatusDelivered
			}
		}
	}
	g.stats.ByStatus[status]++
	g.stats.Orders++

	var (
		meta      json.RawMessage
		metaGroup = -1
	)
	for v, p := range evs {
		name, schema, data, err := g.reg.Encode(p.e)
		if err != nil {
			return nil, fmt.Errorf("seed order %s: %w", id, err)
		}
		if p.group != metaGroup {
			// One correlation id per command, as the API gives them.
			if meta, err = json.Marshal(eventstore.Metadata{CorrelationID: g.newID(p.at).String(), Actor: Actor}); err != nil {
				return nil, err
			}
			metaGroup = p.group
		}
		rows = append(rows, Row{
			StreamID: id, Version: int64(v + 1), EventID: g.newID(p.at), Type: name,
			SchemaVersion: int32(schema), Data: data, Metadata: meta, // #nosec G115 -- schema versions are the codecs' small constants
		})
	}
	g.stats.Events += int64(len(evs))
	return rows, nil
}

// customer draws a customer index: skewed, see NewGenerator.
func (g *Generator) customer() int {
	m := uint64(g.cfg.Customers) // #nosec G115 -- Customers is validated ≥ 1 by the seed Config
	if g.rng.Float64() < 0.3 {
		return int((g.zipf.Uint64() * g.stride) % m) // #nosec G115 -- the value is below m, which came from an int
	}
	return int(g.rng.Uint64N(m)) // #nosec G115 -- the value is below m, which came from an int
}

// currencyOf gives each customer one currency (most buy in one).
func currencyOf(customer int) string {
	h := float64(uint32(uint64(customer)*2654435761)) / (1 << 32) // #nosec G115 -- a multiplicative hash: wrapping is the point
	i, _ := slices.BinarySearch(currencyShare, h)
	return currencies[min(i, len(currencies)-1)]
}

// priceOf is the fixed unit price of a SKU: 1.99 to 499.99.
func priceOf(sku int) int64 { return 199 + int64(uint32(sku)*2654435761%49801) } // #nosec G115 -- a multiplicative hash: wrapping is the point

// newID is a ULID of time t with random entropy (fast: no crypto source;
// seeded ids need to be unique, not unpredictable).
func (g *Generator) newID(t time.Time) ulid.ULID {
	var id ulid.ULID
	_ = id.SetTime(uint64(t.UnixMilli()))
	binary.BigEndian.PutUint64(id[6:14], g.rng.Uint64())
	binary.BigEndian.PutUint16(id[14:16], uint16(g.rng.Uint32())) // #nosec G115 -- random bits: truncation is the point
	return id
}
