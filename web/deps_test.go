package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium, which `make browser-deps` installs.
const chromiumPath = "/usr/bin/chromium"

const depsHint = "run `make browser-deps` (installs Debian's chromium with apt-get and runs npm ci in web/e2e)"

// browserDeps fails the test, never skips it, when something the browser
// test needs is missing, and returns the node binary.
func browserDeps(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("browser test: node is not on PATH; install Node.js 20+ and %s", depsHint)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("browser test: %s is missing; %s", chromiumPath, depsHint)
	}
	if _, err := os.Stat(filepath.Join("e2e", "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("browser test: playwright-core is not installed in web/e2e; %s", depsHint)
	}
	return node
}

// TestDashboardModules runs the unit tests of the page's JavaScript modules
// (model, stream, money) under node --test.
func TestDashboardModules(t *testing.T) {
	node := browserDeps(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", filepath.Join("e2e", "modules.test.mjs")).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test e2e/modules.test.mjs: %v\n%s", err, out)
	}
}
