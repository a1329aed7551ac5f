package auth_test

import (
	"os"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/auth"
)

// readmeRows are the rows of the README's access table, as the rule table
// says they are.
func readmeRows() []string {
	var rows []string
	for _, p := range auth.RoutePatterns() {
		r, _ := auth.RouteRule(p)
		rows = append(rows, "| `"+p+"` | "+r.String()+" |")
	}
	for _, k := range auth.ChannelKinds() {
		r, _ := auth.ChannelRule(k)
		name := k
		if k != auth.ChannelOrders {
			name += ":<id>"
		}
		rows = append(rows, "| channel `"+name+"` | "+r.String()+" |")
	}
	return rows
}

// TestTheREADMETableIsTheRuleTable: the README lists every route and
// channel with the roles the rule table gives them, and nothing else.
func TestTheREADMETableIsTheRuleTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	want := map[string]bool{}
	for _, row := range readmeRows() {
		want[row] = true
		if !strings.Contains(readme, row+"\n") {
			t.Errorf("README lacks the row\n%s", row)
		}
	}
	_, table, found := strings.Cut(readme, "| route or channel | who")
	if !found {
		t.Fatal(`README has no table headed "| route or channel | who …"`)
	}
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if !want[line] {
			t.Errorf("README's table has a row the rule table does not:\n%s", line)
		}
	}
	if t.Failed() {
		t.Logf("the table, as the rules say:\n%s", strings.Join(readmeRows(), "\n"))
	}
}
