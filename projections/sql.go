package projections

import (
	"strconv"
	"strings"
	"time"
)

func join(cols []string) string { return strings.Join(cols, ", ") }

func placeholders(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i))
	}
	return b.String()
}

// optTime maps the zero time to NULL.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// optText maps "" to NULL.
func optText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
