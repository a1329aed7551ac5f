package loadgen

import (
	"bytes"
	"net/http"
	"strconv"
)

// Step is one command of an order's life, in the order a shop sends them.
type Step uint8

const (
	Create  Step = iota // POST /v1/orders with two items
	AddItem             // POST /v1/orders/{id}/items
	Place               // POST /v1/orders/{id}/place
	Pay                 // POST /v1/orders/{id}/payments, the exact total
	Ship                // POST /v1/orders/{id}/ship
	Deliver             // POST /v1/orders/{id}/deliver
	Steps               // how many steps a life has
)

var stepNames = [Steps]string{"create", "add item", "place", "pay", "ship", "deliver"}

func (s Step) String() string {
	if s < Steps {
		return stepNames[s]
	}
	return "step(" + strconv.Itoa(int(s)) + ")"
}

// The items of every order: two at creation, one added. Prices are fixed so
// that the payment is known without reading anything back.
const (
	currency = "EUR"
	item1    = `{"sku":"BENCH-1","name":"Bench book","quantity":1,"unit_price_minor":1250}`
	item2    = `{"sku":"BENCH-2","name":"Bench pen","quantity":2,"unit_price_minor":300}`
	item3    = `{"sku":"BENCH-3","name":"Bench lamp","quantity":1,"unit_price_minor":999}`
	// Total is what an order costs once its third item is added.
	Total = 1250 + 2*300 + 999
)

// payPrefix is the payment body up to the reference number.
var payPrefix = `{"amount_minor":` + strconv.Itoa(Total) + `,"currency":"` + currency + `","reference":"bench-`

// Order is the state of one order's life as its client drives it: which
// command comes next, and the order's id once created. Not safe for
// concurrent use; each client owns one.
type Order struct {
	Next     Step
	ID       []byte // set from the Consistency-Token of Create
	Customer []byte
	seq      int64 // the client's order number: references and tracking numbers
}

// Start makes o a new order of customer, numbered seq by its client.
func (o *Order) Start(customer []byte, seq int64) {
	o.Next, o.ID, o.seq = Create, o.ID[:0], seq
	o.Customer = append(o.Customer[:0], customer...)
}

// Build writes o's next command into r, reusing r's buffers.
func (o *Order) Build(r *Request) {
	r.Method = http.MethodPost
	r.Body = r.Body[:0]
	if o.Next == Create {
		r.Path = append(r.Path[:0], "/v1/orders"...)
		r.Body = append(r.Body, `{"customer_id":"`...)
		r.Body = append(r.Body, o.Customer...)
		r.Body = append(r.Body, `","currency":"`+currency+`","items":[`+item1+`,`+item2+`]}`...)
		return
	}
	r.Path = append(append(r.Path[:0], "/v1/orders/"...), o.ID...)
	switch o.Next {
	case AddItem:
		r.Path = append(r.Path, "/items"...)
		r.Body = append(r.Body, item3...)
	case Place:
		r.Path = append(r.Path, "/place"...)
	case Pay:
		r.Path = append(r.Path, "/payments"...)
		r.Body = append(r.Body, payPrefix...)
		r.Body = strconv.AppendInt(r.Body, o.seq, 10)
		r.Body = append(r.Body, `"}`...)
	case Ship:
		r.Path = append(r.Path, "/ship"...)
		r.Body = append(r.Body, `{"carrier":"DHL","tracking_number":"TRK`...)
		r.Body = strconv.AppendInt(r.Body, o.seq, 10)
		r.Body = append(r.Body, `"}`...)
	case Deliver:
		r.Path = append(r.Path, "/deliver"...)
	}
}

// Advance records the answer to the command Build wrote. A 2xx moves to the
// next command (Create takes the order id from its Consistency-Token); the
// answer to Deliver completes the life. Anything else abandons the order:
// its state is unknown, so the client starts another. It reports whether
// o's life ended (completed or abandoned): call Start before the next Build.
func (o *Order) Advance(status int, token []byte) (ended bool) {
	if status < 200 || status > 299 {
		return true
	}
	if o.Next == Create {
		id, _, _, ok := ParseToken(token)
		if !ok {
			return true
		}
		o.ID = append(o.ID[:0], id...)
	}
	o.Next++
	return o.Next == Steps
}

// ParseToken splits a Consistency-Token, "<order_id>:<version>:<position>".
// id aliases token.
func ParseToken(token []byte) (id []byte, version, position int64, ok bool) {
	id, rest, ok1 := bytes.Cut(token, []byte{':'})
	v, p, ok2 := bytes.Cut(rest, []byte{':'})
	vn, ok3 := digits(v)
	pn, ok4 := digits(p)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(id) == 0 {
		return nil, 0, 0, false
	}
	return id, int64(vn), int64(pn), true
}
