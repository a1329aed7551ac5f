//go:build unix

package httpx

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// acceptQueued accepts every connection the kernel has queued on ln, and
// returns at once when there are no more: Go's listening sockets are
// non-blocking, so accept(2) says EAGAIN instead of waiting. Listeners
// without a file descriptor have no kernel queue.
func acceptQueued(ln net.Listener) ([]net.Conn, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var conns []net.Conn
	var aerr error
	err = raw.Control(func(fd uintptr) {
		for {
			// Under ForkLock until close-on-exec is set, as net does
			// where accept4 is missing: a child must not inherit it.
			syscall.ForkLock.RLock()
			nfd, _, err := syscall.Accept(int(fd)) // #nosec G115 -- a file descriptor the runtime handed over
			if err == nil {
				syscall.CloseOnExec(nfd)
			}
			syscall.ForkLock.RUnlock()
			switch {
			case err == nil:
			case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.ECONNABORTED):
				continue
			case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
				return
			default:
				aerr = err
				return
			}
			f := os.NewFile(uintptr(nfd), "accepted")
			c, err := net.FileConn(f) // a non-blocking duplicate the runtime polls
			_ = f.Close()
			if err != nil {
				aerr = err
				return
			}
			conns = append(conns, c)
		}
	})
	return conns, errors.Join(err, aerr)
}
