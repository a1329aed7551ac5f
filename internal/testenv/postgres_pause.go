package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Pause freezes the cluster with SIGSTOP — the postmaster and every
// process it started, so that neither new connections nor open sessions
// get an answer: a database that hangs (a frozen host, a network cut)
// rather than one that refuses. Resume thaws it; the test's end does too.
func (p *Postgres) Pause(t testing.TB) {
	t.Helper()
	pids, err := p.processes()
	if err != nil {
		t.Fatalf("testenv: pause postgres: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("testenv: pause postgres: SIGSTOP %d: %v", pid, err)
		}
	}
	p.paused = pids
	t.Cleanup(func() { _ = p.resume() }) // a frozen cluster would hang the cleanup that stops it
}

// Resume sends SIGCONT to what Pause stopped.
func (p *Postgres) Resume(t testing.TB) {
	t.Helper()
	if err := p.resume(); err != nil {
		t.Fatalf("testenv: resume postgres: %v", err)
	}
}

func (p *Postgres) resume() error {
	var first error
	for _, pid := range p.paused {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && first == nil {
			first = fmt.Errorf("SIGCONT %d: %w", pid, err)
		}
	}
	p.paused = nil
	return first
}

// processes are the postmaster (the first line of postmaster.pid) and its
// children.
func (p *Postgres) processes() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(p.data(), "postmaster.pid")) // #nosec G304 -- test support: the cluster's own pid file
	if err != nil {
		return nil, err
	}
	postmaster, err := strconv.Atoi(strings.TrimSpace(string(bytes.SplitN(b, []byte("\n"), 2)[0])))
	if err != nil {
		return nil, fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := []int{postmaster}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if parent(pid) == postmaster {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// parent is pid's parent from /proc/<pid>/stat (-1 once it is gone): the
// fourth field, after the command name in parentheses.
func parent(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")) // #nosec G304 -- test support: /proc
	i := bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return n
}
