package httpx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Drainer gives an http.Server's graceful shutdown the requests that
// Shutdown alone drops: those a client had sent when shutdown began but the
// server had not read yet.
//
// http.Server.Shutdown closes the listeners, so a connection the kernel
// had accepted but the server had not is reset, and it drops every request
// it reads after it was called: net/http checks for shutdown between
// reading a request and handling it, and closes the connection (the client
// gets EOF), which is right for a keep-alive connection that was idle but
// not for a new one whose first request was on the wire. Under load, or on
// a starved machine, both happen to requests sent before SIGTERM.
//
// Drain, called before Shutdown, closes that window:
//
//  1. Keep-alives go off: idle connections close now and busy ones after
//     their response, so clients move elsewhere.
//  2. The listener stops: first every connection the kernel has queued is
//     accepted, without waiting, and handed to the server; then the socket
//     is closed. A connection that arrives later is refused: it was not in
//     flight.
//  3. It waits until every connection the server accepted has had its
//     first request handed to a handler, or has closed, or was hijacked (a
//     WebSocket). A connection that never sends a request is closed by the
//     server at ReadHeaderTimeout, so the wait is bounded by it as well as
//     by ctx.
//
// Shutdown then waits for the handlers. NewDrainer wraps srv.Handler and
// chains srv.ConnContext and srv.ConnState; call it before Serve.
type Drainer struct {
	srv *http.Server
	ln  *drainListener

	mu      sync.Mutex
	pending int           // connections handed to the server whose first request no handler has yet
	changed chan struct{} // closed and replaced when pending or the queue shrinks
	conns   map[net.Conn]*tracked
}

// tracked is one connection the server serves; done is set once it no
// longer holds up the drain.
type tracked struct{ done atomic.Bool }

type trackedKey struct{}

// NewDrainer prepares srv to be served on ln with Serve or ServeTLS of
// Listener.
func NewDrainer(srv *http.Server, ln net.Listener) *Drainer {
	d := &Drainer{srv: srv, changed: make(chan struct{}), conns: map[net.Conn]*tracked{}}
	d.ln = &drainListener{Listener: ln, d: d, stopped: make(chan struct{}), closed: make(chan struct{})}

	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := r.Context().Value(trackedKey{}).(*tracked); ok {
			d.release(t)
		}
		next.ServeHTTP(w, r)
	})
	connContext := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		t := &tracked{}
		d.mu.Lock()
		d.conns[c] = t
		d.mu.Unlock()
		return context.WithValue(ctx, trackedKey{}, t)
	}
	connState := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateIdle: // after a response; HTTP/2 connections start so
			d.mu.Lock()
			t := d.conns[c]
			d.mu.Unlock()
			d.release(t)
		case http.StateHijacked, http.StateClosed:
			d.mu.Lock()
			t := d.conns[c]
			delete(d.conns, c)
			d.mu.Unlock()
			d.release(t)
		}
		if connState != nil {
			connState(c, s)
		}
	}
	return d
}

// Listener is what to serve: ln, as Drain stops it.
func (d *Drainer) Listener() net.Listener { return d.ln }

// Drain stops accepting, turns keep-alives off and waits until no
// connection's first request is still unread (see Drainer), or ctx ends.
// Call Shutdown next, with what is left of the same deadline. An error
// from accepting the queued connections is returned after the wait.
func (d *Drainer) Drain(ctx context.Context) error {
	d.srv.SetKeepAlivesEnabled(false)
	err := d.ln.stop()
	if werr := d.wait(ctx); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

func (d *Drainer) wait(ctx context.Context) error {
	for {
		d.mu.Lock()
		idle, changed := d.pending == 0 && d.ln.queuedLen() == 0, d.changed
		d.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// accepted counts a connection handed to the server.
func (d *Drainer) accepted() {
	d.mu.Lock()
	d.pending++
	d.signal()
	d.mu.Unlock()
}

// release says t no longer holds up the drain: its first request reached a
// handler (from then on Shutdown waits for it), or it ended.
func (d *Drainer) release(t *tracked) {
	if t == nil || !t.done.CompareAndSwap(false, true) {
		return
	}
	d.mu.Lock()
	d.pending--
	d.signal()
	d.mu.Unlock()
}

// signal wakes wait; d.mu is held.
func (d *Drainer) signal() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// drainListener is the server's listener. Until stop it is ln; stop
// takes what the kernel has queued and closes ln, and Accept then hands out
// the queued connections and blocks until the server closes it.
type drainListener struct {
	net.Listener
	d *Drainer

	stopOnce sync.Once
	stopped  chan struct{} // closed by stop once queue is final, just before ln closes
	queue    []net.Conn    // guarded by d.mu

	closeOnce sync.Once
	closed    chan struct{} // closed by Close (Shutdown)
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.d.accepted()
		return c, nil
	}
	select {
	case <-l.stopped:
	case <-l.closed:
		return nil, net.ErrClosed
	default:
		return nil, err // not stopping: the server retries what is temporary
	}
	l.d.mu.Lock()
	if len(l.queue) > 0 {
		c = l.queue[0]
		l.queue = l.queue[1:]
		l.d.pending++ // with the pop, so that wait never sees neither
		l.d.signal()
		l.d.mu.Unlock()
		return c, nil
	}
	l.d.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

// stop accepts, without waiting, what the kernel has queued, then closes
// the socket.
func (l *drainListener) stop() error {
	var err error
	l.stopOnce.Do(func() {
		var queued []net.Conn
		queued, err = acceptQueued(l.Listener)
		l.d.mu.Lock()
		l.queue = append(l.queue, queued...)
		l.d.mu.Unlock()
		// The queue is final before the socket closes: Accept, failing on
		// the closed socket, must find it.
		close(l.stopped)
		if cerr := l.Listener.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	})
	return err
}

// queuedLen is how many stopped-queue connections the server has not taken
// yet; d.mu is held.
func (l *drainListener) queuedLen() int { return len(l.queue) }

// Close is the server's (Shutdown, Close): it stops ln if Drain did not,
// dropping what is queued.
func (l *drainListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	err := l.Listener.Close()
	l.d.mu.Lock()
	queued := l.queue
	l.queue = nil
	l.d.mu.Unlock()
	for _, c := range queued {
		_ = c.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
