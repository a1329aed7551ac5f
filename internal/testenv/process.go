package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process of a test that the test can kill, pause,
// terminate and start again: the fault tests' handle on `orderflow serve`
// and `orderflow kafka`. Every run appends to one log file.
type Process struct {
	Name    string
	LogPath string

	path string
	args []string
	env  []string

	mu  sync.Mutex
	run *run // the current (or last) run; nil before the first Start
}

// run is one execution; done is closed when it has exited, err is then its
// exit error.
type run struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NewProcess prepares (does not start) path with args and env added to the
// test's environment (later "K=V" entries win), logging to a file in the
// test's temporary directory. When the test ends the process gets SIGTERM,
// then SIGKILL if it has not exited within Patience; if the test failed,
// the tail of the log is shown.
func NewProcess(t testing.TB, name, path string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, LogPath: filepath.Join(t.TempDir(), name+".log"), path: path, args: args,
		env: append(os.Environ(), env...)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(p.LogTail(80))
		}
		if p.Running() {
			_ = p.signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
			if _, err := p.stop(syscall.SIGTERM); err != nil {
				_ = p.signal(syscall.SIGKILL)
				_ = p.wait(Patience)
			}
		}
	})
	return p
}

// Start runs the process (again, after it exited).
func (p *Process) Start(t testing.TB) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil && !p.run.exitedNow() {
		return errors.New("already running")
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "---- %s: start %s %v\n", time.Now().Format(time.RFC3339Nano), filepath.Base(p.path), p.args)
	cmd := exec.Command(p.path, p.args...) // #nosec G204 -- test support: the binary this package built, the test's arguments
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return err
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() { r.err = cmd.Wait(); _ = logFile.Close(); close(r.done) }()
	p.run = r
	return nil
}

func (r *run) exitedNow() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (p *Process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// Running reports whether the current run has not exited.
func (p *Process) Running() bool {
	r := p.current()
	return r != nil && !r.exitedNow()
}

// Pid is the current run's process id.
func (p *Process) Pid() int {
	if r := p.current(); r != nil {
		return r.cmd.Process.Pid
	}
	return 0
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: kill: %v", p.Name, err)
	}
	if err := p.wait(Patience); errors.Is(err, errStillRunning) {
		t.Fatalf("%s: %v after SIGKILL", p.Name, err)
	}
}

// Terminate sends SIGTERM and waits (Patience at most) for the process to
// exit. It returns how long the exit took and the exit error (nil: status
// 0).
func (p *Process) Terminate(t testing.TB) (time.Duration, error) {
	t.Helper()
	took, err := p.stop(syscall.SIGTERM)
	if errors.Is(err, errStillRunning) {
		t.Fatalf("%s: still running %s after SIGTERM\n%s", p.Name, Patience, p.LogTail(40))
	}
	return took, err
}

// Pause stops the process with SIGSTOP: it keeps its sockets but answers
// nothing, like a frozen host. Resume continues it.
func (p *Process) Pause(t testing.TB) {
	t.Helper()
	if err := p.signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("%s: SIGSTOP: %v", p.Name, err)
	}
}

// Resume sends SIGCONT.
func (p *Process) Resume(t testing.TB) {
	t.Helper()
	if err := p.signal(syscall.SIGCONT); err != nil {
		t.Fatalf("%s: SIGCONT: %v", p.Name, err)
	}
}

// Exited returns the current run's exit error once it has exited, without
// waiting: ok is false while it runs.
func (p *Process) Exited() (err error, ok bool) {
	r := p.current()
	if r == nil || !r.exitedNow() {
		return nil, false
	}
	return r.err, true
}

// LogTail returns the last lines of the process's log.
func (p *Process) LogTail(lines int) string {
	b, _ := os.ReadFile(p.LogPath)
	return fmt.Sprintf("%s log (%s):\n%s", p.Name, p.LogPath, tail(string(b), lines))
}

var errStillRunning = errors.New("still running")

func (p *Process) signal(sig syscall.Signal) error {
	r := p.current()
	if r == nil || r.exitedNow() {
		return errors.New("not running")
	}
	return r.cmd.Process.Signal(sig)
}

func (p *Process) stop(sig syscall.Signal) (time.Duration, error) {
	start := time.Now()
	if err := p.signal(sig); err != nil {
		return 0, err
	}
	err := p.wait(Patience)
	return time.Since(start), err
}

// wait waits up to d for the current run to exit and returns its exit
// error, or errStillRunning.
func (p *Process) wait(d time.Duration) error {
	r := p.current()
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		return errStillRunning
	}
}
