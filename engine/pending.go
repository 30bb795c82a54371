package engine

import (
	"sync"

	"epsproxy/proxy/wire"
)

// pending maps tokens to clients waiting for their private side. It is the only structure the
// loops share: removing a token is how a loop claims the client (for pairing, expiry or
// cancellation), so exactly one of them acts on it.
type pending struct {
	mu  sync.Mutex
	m   map[wire.Token]*conn
	max int // MaxPending; a reload may change it (setMax)
}

func newPending(max int) *pending {
	return &pending{m: make(map[wire.Token]*conn), max: max}
}

// setMax changes the cap; clients already filed beyond a lowered one stay.
func (p *pending) setMax(n int) {
	p.mu.Lock()
	p.max = n
	p.mu.Unlock()
}

// put files s under its token; false when the table is full or the token is taken (a crypto/rand
// collision would be news, but it must not overwrite a client).
func (p *pending) put(s *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= p.max {
		return false
	}
	if _, dup := p.m[s.token]; dup {
		return false
	}
	p.m[s.token] = s
	return true
}

// take removes and returns the client filed under tok, or nil.
func (p *pending) take(tok wire.Token) *conn {
	p.mu.Lock()
	s := p.m[tok]
	if s != nil {
		delete(p.m, tok)
	}
	p.mu.Unlock()
	return s
}

// drop removes tok if it still names s; it reports whether it did.
func (p *pending) drop(s *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[s.token] == s {
		delete(p.m, s.token)
		return true
	}
	return false
}

func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
