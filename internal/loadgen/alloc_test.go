package loadgen

import (
	"bufio"
	"bytes"
	"net"
	"testing"
)

// cannedServer answers every request on its connections with the same
// command response, reading requests with fixed buffers: it allocates
// nothing per request, so what a test measures is the client's.
func cannedServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	resp := []byte("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConsistency-Token: 01JDXXXXXXXXXXXXXXXXXXXXXX:3:42\r\n" +
		"Etag: \"3\"\r\nContent-Length: 60\r\n\r\n" + `{"order_id":"01JDXXXXXXXXXXXXXXXXXXXXXX","version":3,"position":42}`[:60])
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 64<<10)
				for {
					// Headers up to the blank line, then the Content-Length body.
					length := 0
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
							length, _ = digits(bytes.TrimRight(v, "\r\n"))
						}
						if len(line) == 2 {
							break
						}
					}
					if _, err := br.Discard(length); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestASteadyCommandAllocatesNothing(t *testing.T) {
	c := NewConn(cannedServer(t))
	defer c.Close()
	var (
		o Order
		r Request
	)
	o.Start([]byte("bench-c1"), 1)
	send := func() {
		o.Build(&r)
		if s, err := c.Do(&r); err != nil || s != 201 {
			t.Fatalf("status %d, %v", s, err)
		}
		if o.Advance(201, c.Token()) {
			o.Start([]byte("bench-c1"), 2)
		}
	}
	for range 20 { // buffers grow to their steady size
		send()
	}
	if n := testing.AllocsPerRun(200, send); n != 0 {
		t.Fatalf("%v allocations per command, want 0", n)
	}
}

func BenchmarkConnDo(b *testing.B) {
	c := NewConn(cannedServer(b))
	defer c.Close()
	r := Request{Method: "POST", Path: []byte("/v1/orders/01JD/place")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(&r); err != nil {
			b.Fatal(err)
		}
	}
}
