package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"time"
)

// Request is one HTTP request as a client builds it, into buffers it keeps
// from one request to the next.
type Request struct {
	Method         string
	Path           []byte
	Body           []byte // JSON; empty means no body
	IdempotencyKey []byte // empty means none
	Authorization  []byte // the Authorization header's value ("Bearer …"); empty means none
}

// Conn is one keep-alive HTTP/1.1 connection, for one goroutine. It
// (re)dials on the first request after a failure or a "Connection: close",
// writes requests from the caller's buffers and reads responses into its
// own, so a steady run allocates nothing per request. Responses may use
// Content-Length or chunked encoding.
type Conn struct {
	addr  string // host:port to dial
	host  string // Host header
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	req   []byte // the request being written, reused
	token []byte
	body  []byte
	dials int
}

// NewConn returns a connection to addr (host:port) that is dialled on first
// use.
func NewConn(addr string) *Conn { return &Conn{addr: addr, host: addr} }

// keptBody bounds how much of a non-2xx body is kept for the error report.
const keptBody = 2048

// dialTimeout and ioTimeout bound a dial and one request's round trip: a
// server that stops answering fails the request instead of the run.
const (
	dialTimeout = 5 * time.Second
	ioTimeout   = 30 * time.Second
)

// Token is the Consistency-Token header of the last response (empty if it
// had none). Valid until the next Do.
func (c *Conn) Token() []byte { return c.token }

// Body is the start of the last response's body when its status was not
// 2xx (empty otherwise). Valid until the next Do.
func (c *Conn) Body() []byte { return c.body }

// Dials is how many TCP connections this Conn opened.
func (c *Conn) Dials() int { return c.dials }

// Close closes the TCP connection, if open.
func (c *Conn) Close() error {
	if c.nc == nil {
		return nil
	}
	err := c.nc.Close()
	c.nc = nil
	return err
}

// Do sends r and reads the whole response, returning its status. A failed
// round trip closes the connection and returns the error (and status 0);
// nothing is retried: the caller counts it.
func (c *Conn) Do(r *Request) (int, error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, dialTimeout)
		if err != nil {
			return 0, err
		}
		c.dials++
		c.nc = nc
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 16<<10)
			c.bw = bufio.NewWriterSize(nc, 16<<10)
		} else {
			c.br.Reset(nc)
			c.bw.Reset(nc)
		}
	}
	_ = c.nc.SetDeadline(time.Now().Add(ioTimeout))
	status, keep, err := c.roundTrip(r)
	if err != nil || !keep {
		_ = c.Close()
	}
	return status, err
}

func (c *Conn) roundTrip(r *Request) (status int, keepAlive bool, err error) {
	b := append(c.req[:0], r.Method...)
	b = append(b, ' ')
	b = append(b, r.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nUser-Agent: orderflow-bench\r\n"...)
	if len(r.Body) > 0 {
		b = append(b, "Content-Type: application/json\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.Body)), 10)
	if len(r.IdempotencyKey) > 0 {
		b = append(b, "\r\nIdempotency-Key: "...)
		b = append(b, r.IdempotencyKey...)
	}
	if len(r.Authorization) > 0 {
		b = append(b, "\r\nAuthorization: "...)
		b = append(b, r.Authorization...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, r.Body...)
	c.req = b
	if _, err := c.bw.Write(b); err != nil {
		return 0, false, err
	}
	if err := c.bw.Flush(); err != nil {
		return 0, false, err
	}
	return c.readResponse()
}

var (
	hdrContentLength    = []byte("Content-Length")
	hdrTransferEncoding = []byte("Transfer-Encoding")
	hdrConnection       = []byte("Connection")
	hdrToken            = []byte("Consistency-Token")
)

// errMalformed is a response this client cannot parse.
var errMalformed = errors.New("malformed HTTP response")

func (c *Conn) readResponse() (int, bool, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 201 Created\r\n"
	status, ok := digits(line[min(9, len(line)):min(12, len(line))])
	if !ok || len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep := line[7] == '1' // HTTP/1.0 closes unless told otherwise; the server speaks 1.1
	length, chunked := int64(-1), false
	c.token = c.token[:0]
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte{':'})
		if !ok {
			return 0, false, fmt.Errorf("%w: header %q", errMalformed, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			n, ok := digits(value)
			if !ok {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = int64(n)
		case bytes.EqualFold(name, hdrTransferEncoding):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, hdrConnection):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		case bytes.EqualFold(name, hdrToken):
			c.token = append(c.token, value...)
		}
	}
	c.body = c.body[:0]
	success := status >= 200 && status <= 299
	var body io.Reader
	switch {
	case status < 200 || status == 204 || status == 304:
		return status, keep, nil
	case chunked:
		body = httputil.NewChunkedReader(c.br) // rare: the API sets Content-Length
	case length >= 0 && success:
		_, err := c.br.Discard(int(length)) // the steady path: nothing allocated
		return status, keep, err
	case length >= 0:
		body = io.LimitReader(c.br, length)
	default: // delimited by the end of the connection
		body, keep = c.br, false
	}
	if !success {
		if c.body, err = readUpTo(c.body, body, keptBody); err != nil {
			return 0, false, err
		}
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return 0, false, err
	}
	if chunked { // the chunked reader stops at the last chunk: the trailer follows
		for {
			l, err := c.br.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			if len(bytes.TrimRight(l, "\r\n")) == 0 {
				break
			}
		}
	}
	return status, keep, nil
}

// digits parses a non-negative decimal of at most 18 digits.
func digits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// readUpTo appends at most n bytes of r to buf.
func readUpTo(buf []byte, r io.Reader, n int) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	m, err := io.ReadFull(r, buf[len(buf):n])
	buf = buf[:len(buf)+m]
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return buf, err
}
