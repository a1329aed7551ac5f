package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
)

// orderflow runs the built binary against db's database and returns its
// standard output and error, and whether it exited 0.
func orderflow(t *testing.T, db *pgtest.DB, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...) // #nosec G204 -- test: the binary just built
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.URL, testenv.MasterKeysVar+"="+testenv.MasterKey(t))
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("orderflow %v: %v", args, err)
	}
	return out.String(), errOut.String(), err == nil
}

func TestARebuildIsInTheAuditLogWithWhoWhyAndWhen(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	if _, stderr, ok := orderflow(t, db, "projections", "rebuild", "status_counts", "--reason", "fix 42 deployed"); !ok {
		t.Fatalf("rebuild: %s", stderr)
	}
	out, stderr, ok := orderflow(t, db, "audit", "--json", "--action", audit.ProjectionRebuilt)
	if !ok {
		t.Fatalf("audit: %s", stderr)
	}
	var e audit.Logged
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("audit --json printed %q: %v", out, err)
	}
	if !strings.HasPrefix(e.Actor, "os:") || e.Target != "status_counts" || e.Reason != "fix 42 deployed" || e.DBUser == "" || e.At.IsZero() {
		t.Fatalf("entry %+v", e)
	}
	t.Logf("audit entry: %s", strings.TrimSpace(out))
}

func TestAuditRefusesBadFlagsWithAClearMessage(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	for _, tc := range []struct{ args, want string }{
		{"--limit 0", "--limit 0: want 1 to 1000"},
		{"--limit 1001", "--limit 1001: want 1 to 1000"},
		{"--before -3", "--before -3: want an entry id"},
		{"extra", "unexpected arguments: extra"},
	} {
		_, stderr, ok := orderflow(t, db, append([]string{"audit"}, strings.Fields(tc.args)...)...)
		if ok || !strings.Contains(stderr, tc.want) {
			t.Errorf("audit %s: ok=%v, stderr %q, want it to say %q", tc.args, ok, stderr, tc.want)
		}
	}
}
