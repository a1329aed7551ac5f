package kafka

// HasConnFrom reports whether the broker still holds a client connection
// from addr (the client's local address): once it does not, kfake's side
// of the connection is closed.
func (b *Broker) HasConnFrom(addr string) bool {
	b.ln.mu.Lock()
	defer b.ln.mu.Unlock()
	for c := range b.ln.conns {
		if c.RemoteAddr().String() == addr {
			return true
		}
	}
	return false
}
