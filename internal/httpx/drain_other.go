//go:build !unix

package httpx

import "net"

// acceptQueued has no portable way to accept without waiting: where the
// runtime gives no Unix file descriptor, connections the kernel queued when
// the drain began are refused with the socket.
func acceptQueued(net.Listener) ([]net.Conn, error) { return nil, nil }
