package queries

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// cursor is the position after the last order of a page: its sort key and
// id (the tie-breaker), and the fingerprint of the list it belongs to. It
// travels as base64url(JSON); it is opaque to clients, and nothing in it is
// secret or trusted: a forged cursor can only move within the same filters.
type cursor struct {
	Key         string `json:"k"` // the sort column's value: RFC 3339 with ns, or an integer
	OrderID     string `json:"id"`
	Fingerprint string `json:"f"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // three strings cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor checks a cursor fully against the list asking for it, so a
// bad cursor is a 400 rather than a wrong page. The key is returned as the
// value to bind for the sort column.
func decodeCursor(s string, l *listParams, errs *paramErrors) (key any, id ulid.ULID, ok bool) {
	bad := func(why string) (any, ulid.ULID, bool) {
		errs.add("cursor", "%s; use next_cursor exactly as a previous page returned it", why)
		return nil, ulid.ULID{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("not a cursor")
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return bad("not a cursor")
	}
	if c.Fingerprint != l.fingerprint() {
		errs.add("cursor", "this cursor belongs to a list with other filters or another sort; start again without cursor")
		return nil, ulid.ULID{}, false
	}
	if id, err = ulid.ParseStrict(c.OrderID); err != nil {
		return bad("not a cursor")
	}
	if l.sort.column == "total_minor" {
		n, err := strconv.ParseInt(c.Key, 10, 64)
		if err != nil {
			return bad("not a cursor")
		}
		return n, id, true
	}
	t, err := time.Parse(time.RFC3339Nano, c.Key)
	if err != nil {
		return bad("not a cursor")
	}
	return t, id, true
}

// nextCursor is the cursor after s in list l.
func nextCursor(s Summary, l *listParams) string {
	var key string
	switch l.sort.column {
	case "total_minor":
		key = strconv.FormatInt(s.TotalMinor, 10)
	case "updated_at":
		key = s.UpdatedAt.Format(time.RFC3339Nano)
	default:
		key = s.CreatedAt.Format(time.RFC3339Nano)
	}
	return cursor{Key: key, OrderID: s.OrderID, Fingerprint: l.fingerprint()}.encode()
}

// fingerprint identifies the list (sort and filters, not the page size): a
// cursor continues only the list it came from, since its key means nothing
// in another order or another filtered set. Times are normalised to UTC so
// that equal instants spelled differently are the same list.
func (l *listParams) fingerprint() string {
	var b strings.Builder
	b.WriteString("sort=" + l.sortName)
	b.WriteString("\x00customer=" + l.customerID)
	b.WriteString("\x00status=" + strings.Join(l.statuses, ","))
	for _, t := range []*time.Time{l.createdFrom, l.createdTo} {
		b.WriteString("\x00t=")
		if t != nil {
			b.WriteString(t.UTC().Format(time.RFC3339Nano))
		}
	}
	for _, n := range []*int64{l.minTotal, l.maxTotal} {
		b.WriteString("\x00n=")
		if n != nil {
			b.WriteString(strconv.FormatInt(*n, 10))
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
