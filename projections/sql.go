package projections

import (
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// column is a table column with its SQL type. Live batches pass a table's
// rows column by column, one array parameter per column, to
// INSERT ... SELECT FROM unnest(...): one statement writes any number of
// rows, where one INSERT per row would cost a statement execution each.
type column struct{ name, typ string }

func colNames(cols []column) []string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.name
	}
	return n
}

// unnest is "unnest($1::t1[], $2::t2[], ...)" for cols: unnest with several
// arrays zips them into rows, in array order.
func unnest(cols []column) string {
	var b strings.Builder
	b.WriteString("unnest(")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1) + "::" + c.typ + "[]")
	}
	b.WriteString(")")
	return b.String()
}

// insertUnnest is the INSERT of cols' arrays into table, followed by tail
// (an ON CONFLICT clause, or nothing).
func insertUnnest(table string, cols []column, tail string) string {
	return "INSERT INTO " + table + " (" + join(colNames(cols)) + ") SELECT * FROM " + unnest(cols) + " " + tail
}

// setExcluded is "c = excluded.c, ..." for every column but the key ones.
func setExcluded(cols []column, keys int) string {
	set := make([]string, 0, len(cols)-keys)
	for _, c := range cols[keys:] {
		set = append(set, c.name+" = excluded."+c.name)
	}
	return join(set)
}

func join(cols []string) string { return strings.Join(cols, ", ") }

// optTime maps the zero time to NULL.
func optTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// optText maps "" to NULL.
func optText(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: s != ""}
}
