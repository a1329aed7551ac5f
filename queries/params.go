package queries

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/orderflow/orderflow/order"
)

// query reads a request's query parameters strictly: a parameter not in
// allowed, or a single-valued one given twice, is recorded in errs. The
// raw query must parse; a malformed escape names no parameter, so it is
// reported under "query".
type query struct {
	values url.Values
	errs   paramErrors
}

func parseQuery(r *http.Request, allowed ...string) *query {
	q := &query{}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		q.errs.add("query", "malformed query string: %v", err)
	}
	q.values = v
	// Sorted so that the problem lists parameters in a stable order.
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			q.errs.add(name, "unknown query parameter; this endpoint accepts %s", strings.Join(allowed, ", "))
		}
	}
	return q
}

// one returns the single value of name, "" when absent. Present but empty
// is an error: "?status=" is more likely a bug than a wish for no filter.
func (q *query) one(name string) (string, bool) {
	vs, ok := q.values[name]
	switch {
	case !ok:
		return "", false
	case len(vs) > 1:
		q.errs.add(name, "given %d times; give it at most once", len(vs))
		return "", false
	case vs[0] == "":
		q.errs.add(name, "is empty; omit it or give a value")
		return "", false
	}
	return vs[0], true
}

// many returns every value of a repeatable parameter; each must be non-empty.
func (q *query) many(name string) []string {
	vs := q.values[name]
	for _, v := range vs {
		if v == "" {
			q.errs.add(name, "is empty; omit it or give a value")
			return nil
		}
	}
	return vs
}

func (q *query) time(name string) *time.Time {
	v, ok := q.one(name)
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.errs.add(name, "must be an RFC 3339 time such as 2025-01-31T12:00:00Z")
		return nil
	}
	return &t
}

func (q *query) int64(name string, min, max int64) *int64 {
	v, ok := q.one(name)
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		q.errs.add(name, "must be an integer from %d to %d", min, max)
		return nil
	}
	return &n
}

func (q *query) err() error { return q.errs.err() }

// pathOrderID parses the {id} segment.
func pathOrderID(r *http.Request) (ulid.ULID, error) {
	id, err := ulid.ParseStrict(r.PathValue("id"))
	if err != nil {
		return ulid.ULID{}, invalidOrderID(r.PathValue("id"))
	}
	return id, nil
}

// checkCustomerID applies the command API's rule for customer ids.
func checkCustomerID(errs *paramErrors, field, v string) {
	switch {
	case strings.TrimSpace(v) == "":
		errs.add(field, "is required")
	case !utf8.ValidString(v):
		errs.add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(v) > order.MaxCustomerIDLen:
		errs.add(field, "must be at most %d characters", order.MaxCustomerIDLen)
	case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		errs.add(field, "must contain only printable characters")
	}
}
