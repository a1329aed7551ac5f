package relay_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
)

// TestKcatReadsTheTopicAsTheREADMEShows runs the README's kcat command,
// pointed at a real broker the relay fills: the documented way for analysts
// to read the topic keeps working.
func TestKcatReadsTheTopicAsTheREADMEShows(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: `make test` installs it (apt-get install kcat)")
	}
	cmdline := readmeKcatCommand(t)
	e := newEnv(t, testenv.Broker(t).Addrs())
	r, _ := e.newRelay(t, nil)
	start(t, r)
	stream := newStream()
	evs := eventsN(0, 5)
	if _, err := e.store.Append(context.Background(), stream, eventstore.NoStream(), evs); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(t, 30*time.Second)

	args := splitArgs(t, strings.Replace(cmdline, "127.0.0.1:9092", e.brokers[0], 1))
	if args[0] != "kcat" {
		t.Fatalf("README example does not start with kcat: %q", cmdline)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	for _, ev := range evs {
		if !strings.Contains(string(out), ev.ID.String()) {
			t.Fatalf("kcat output lacks event %s:\n%s", ev.ID, out)
		}
	}
	if !strings.Contains(string(out), "key="+stream.ID.String()) {
		t.Fatalf("kcat output lacks the order id as key:\n%s", out)
	}
}

// readmeKcatCommand returns the command in the code block after the
// "kcat-example" marker of the README.
func readmeKcatCommand(t *testing.T) string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	marked := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "kcat-example") {
			marked = true
			continue
		}
		if marked && strings.HasPrefix(line, "kcat ") {
			return line
		}
	}
	t.Fatal("README.md has no kcat example after a kcat-example marker")
	return ""
}

// splitArgs splits a shell command line with single-quoted arguments, as
// the README writes it.
func splitArgs(t *testing.T, s string) []string {
	t.Helper()
	var (
		args   []string
		cur    strings.Builder
		quoted bool
		inArg  bool
	)
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inArg = !quoted, true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inArg {
		args = append(args, cur.String())
	}
	// Inside single quotes the shell keeps \n as two characters; kcat's
	// format string understands them.
	return args
}
