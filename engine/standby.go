package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"epsproxy/engine/relay"
	"epsproxy/proxy/wire"
	"golang.org/x/sys/unix"
)

// Standby connections take the EPS round trip off a client's path. A private proxy reserves
// tokens ahead of time (Engine.Reserve, reached through the EPS method reserveConnections), dials
// the internal port with one of them and then waits: the socket is parked under the operator that
// reserved the token. A client whose name that operator announced is relayed to a parked socket at
// once, on its own loop, with its buffered hello replayed first, exactly as on a dial-back; the
// private proxy learns the name from the hello's SNI. With no parked socket the client takes the
// signaled path (token, Notifier, dial-back).
//
// Tokens are known by their SHA-256 (HashToken), so they may also come as hashes alone: instances
// of one public proxy share their standby reservations, and the instance a private proxy asked
// mints tokens for another (Engine.Mint), which files only their hashes (Engine.AcceptTokens).
// A token presented for an accepted hash parks its socket exactly as a reserved one does; every
// token works once, and an operator's cap counts both kinds.
//
// A parked socket lives outside gnet (dup'ed out like a handed-off one) so that any loop can take
// it without waking another. Every parked socket is watched: a socket whose private side closes
// or resets it (the private proxy was stopped or killed) or sends a byte is closed and dropped at
// once (Stats.StandbyGone), so the counts and the pool are what the private proxies really hold.
// A socket parked on its first dial is watched by the standby table's own epoll instance and one
// goroutine blocked in epoll_wait (standby_watch_linux.go); a framed socket parked again after a
// client stays in the epoll set of the relay loop that served it (relay.Hold), which reports its
// events to the table and pairs it with the next client on that loop, so its trip back to the
// pool costs two epoll_ctl calls instead of four. Its liveness is checked again when it is
// taken, and it is closed after StandbyTTL unused, so a private side that vanished without a FIN
// or RST (its host gone) cannot hold a dead socket for long; the private side dials a fresh one.

// A token's wire.SocketMode marks the socket that presents it. ClientAddress: a client relayed to
// that socket is preceded by the address header carrying its addresses (wire.AppendAddressHeader),
// written with the replayed hello in one go; sockets of tokens reserved without it get the
// client's bytes alone, as before. Framed: the client's bytes go in frames (relay.AddFramed), and
// once an end frame went each way the socket is parked again under the same operator and mode
// (Stats.StandbyReused), so a private proxy's socket serves one client after another.

// ErrStandbyOff is returned by Reserve, Mint and AcceptTokens when standby connections are
// disabled.
var ErrStandbyOff = errors.New("engine: standby connections are disabled")

// parked is a standby socket waiting for a client.
type parked struct {
	fd    int
	id    uint64 // its registration, never reused
	loop  int    // the relay loop that holds it (relay.Hold), or -1: the watcher's
	until time.Time
	mode  wire.SocketMode
}

// filed is what the standby table knows of an outstanding token: who reserved it, and how its
// socket carries clients.
type filed struct {
	operator string
	mode     wire.SocketMode
}

// reserved is a standby token not presented yet, known by its hash.
type reserved struct {
	hash  wire.TokenHash
	until time.Time
}

// operatorStandby is one operator's share: its outstanding tokens in the order they expire and
// its parked sockets in the order they were parked, so the oldest is at the front for expiry and
// eviction.
type operatorStandby struct {
	tokens []reserved
	parked []parked
}

// standby holds every operator's reserved tokens and parked sockets, and watches the parked
// sockets (standby_watch_linux.go). Any loop, the EPS side and the watcher use it; one mutex
// guards it and nothing under it blocks (close(2) and epoll_ctl on an idle socket aside).
type standby struct {
	mu        sync.Mutex
	tokens    map[wire.TokenHash]filed // token's hash → who reserved it, and how
	ops       map[string]*operatorStandby
	parkedN   atomic.Int64  // written under mu, read without it
	goneCount *atomic.Int64 // Stats.StandbyGone
	maxPerOp  atomic.Int64  // MaxStandby, 0: off; a reload may change it (setMax)
	maxOps    int
	tokenTTL  time.Duration
	parkTTL   time.Duration

	// The watcher's: its epoll instance and stop eventfd (-1 before start and after stop), the
	// last id given to a parked socket, each parked socket's operator by id. relay holds the
	// sockets parked again after a client (nil: the watcher watches them too).
	relay     *relay.Relay
	epfd      int
	evfd      int
	watchDone chan struct{}
	lastID    uint64
	watched   map[uint64]string
}

func newStandby(cfg Config, gone *atomic.Int64) *standby {
	sb := &standby{
		tokens:    map[wire.TokenHash]filed{},
		ops:       map[string]*operatorStandby{},
		goneCount: gone,
		maxOps:    cfg.MaxStandbyOperators,
		tokenTTL:  cfg.StandbyTokenTTL,
		parkTTL:   cfg.StandbyTTL,
		epfd:      -1,
		evfd:      -1,
		watched:   map[uint64]string{},
	}
	sb.maxPerOp.Store(int64(cfg.MaxStandby))
	return sb
}

// max is MaxStandby in force: an operator's tokens and parked sockets together (0: off).
func (sb *standby) max() int { return int(sb.maxPerOp.Load()) }

// reserve makes n tokens for operator and files them with mode. Past the operator's cap the oldest outstanding tokens are forgotten (a private
// proxy that restarted lost them anyway); parked sockets count toward the cap and are never
// evicted for tokens.
func (sb *standby) reserve(operator string, n int, mode wire.SocketMode, now time.Time) ([]wire.Token, time.Time, error) {
	if sb.max() <= 0 {
		return nil, time.Time{}, ErrStandbyOff
	}
	if n <= 0 {
		return nil, time.Time{}, errors.New("engine: reserve at least one token")
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	op, n, err := sb.admit(operator, n)
	if err != nil {
		return nil, time.Time{}, err
	}
	until := now.Add(sb.tokenTTL)
	out := make([]wire.Token, 0, n)
	rs := make([]reserved, 0, n)
	for len(out) < n {
		tok, err := newToken()
		if err != nil {
			return nil, time.Time{}, err
		}
		r := reserved{hash: HashToken(tok), until: until}
		if _, dup := sb.tokens[r.hash]; dup {
			continue
		}
		sb.tokens[r.hash] = filed{operator, mode}
		rs = append(rs, r)
		out = append(out, tok)
	}
	op.add(rs)
	return out, until, nil
}

// accept files hashes, tokens another instance minted, as operator's outstanding tokens until
// the given time, with mode as in reserve, under the caps and eviction of reserve. Hashes already outstanding are skipped
// (a batch delivered twice files nothing new); those beyond the room left beside the operator's
// parked sockets are not filed. An until later than now+StandbyTokenTTL is brought down to it, so
// another instance's clock or settings cannot make this one hold hashes longer than its own
// tokens; an until that is not after now files nothing.
func (sb *standby) accept(operator string, hashes []wire.TokenHash, mode wire.SocketMode, until, now time.Time) error {
	if sb.max() <= 0 {
		return ErrStandbyOff
	}
	if len(hashes) == 0 {
		return errors.New("engine: accept at least one token")
	}
	if !now.Before(until) {
		return errors.New("engine: the tokens have expired")
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if limit := now.Add(sb.tokenTTL); until.After(limit) {
		until = limit
	}
	// No more than the cap can be filed, so no more are looked at.
	fresh := make([]reserved, 0, min(len(hashes), sb.max()))
	seen := make(map[wire.TokenHash]struct{}, cap(fresh))
	for _, h := range hashes {
		if len(fresh) == cap(fresh) {
			break
		}
		_, known := sb.tokens[h]
		if _, twice := seen[h]; known || twice {
			continue
		}
		seen[h] = struct{}{}
		fresh = append(fresh, reserved{hash: h, until: until})
	}
	if len(fresh) == 0 {
		return nil
	}
	op, n, err := sb.admit(operator, len(fresh))
	if err != nil {
		return err
	}
	fresh = fresh[:n]
	for _, r := range fresh {
		sb.tokens[r.hash] = filed{operator, mode}
	}
	op.add(fresh)
	return nil
}

// admit makes room for n more tokens of operator: it returns the operator's entry (made if need
// be, within MaxStandbyOperators) and how many of the n fit beside its parked sockets, having
// forgotten the oldest outstanding tokens so that they do. Callers hold mu.
func (sb *standby) admit(operator string, n int) (*operatorStandby, int, error) {
	op := sb.ops[operator]
	if op == nil {
		if len(sb.ops) >= sb.maxOps {
			return nil, 0, errors.New("engine: too many operators hold standby connections")
		}
		op = &operatorStandby{}
		sb.ops[operator] = op
	}
	limit := sb.max()
	n = min(n, limit-len(op.parked))
	if n <= 0 {
		return nil, 0, errors.New("engine: the operator's standby connections are at their cap")
	}
	for len(op.tokens)+len(op.parked)+n > limit {
		delete(sb.tokens, op.tokens[0].hash)
		op.tokens = op.tokens[1:]
	}
	return op, n, nil
}

// add files rs, which share one expiry, keeping op.tokens in expiry order (accepted tokens may
// expire before the ones reserved here earlier). The tokens are usually the latest to expire, so
// the place is sought from the back.
func (op *operatorStandby) add(rs []reserved) {
	i := len(op.tokens)
	for i > 0 && op.tokens[i-1].until.After(rs[0].until) {
		i--
	}
	op.tokens = slices.Insert(op.tokens, i, rs...)
}

// mint makes n tokens (at most MaxStandby) and files none: another instance of the public proxy
// files their hashes (accept), and the tokens are valid there until the returned time, which this
// instance's StandbyTokenTTL sets.
func (sb *standby) mint(n int, now time.Time) ([]wire.Token, time.Time, error) {
	if sb.max() <= 0 {
		return nil, time.Time{}, ErrStandbyOff
	}
	if n <= 0 {
		return nil, time.Time{}, errors.New("engine: mint at least one token")
	}
	out := make([]wire.Token, min(n, sb.max()))
	for i := range out {
		tok, err := newToken()
		if err != nil {
			return nil, time.Time{}, err
		}
		out[i] = tok
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return out, now.Add(sb.tokenTTL), nil
}

// setMax changes MaxStandby (0: off) for the tokens reserved and sockets parked from now on; what
// is held beyond a lowered cap stays until it is used or expires.
// It takes mu so that no caller holding mu sees the cap change.
func (sb *standby) setMax(n int) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.maxPerOp.Store(int64(n))
}

// setTTLs changes how long a parked socket waits unused and how long a token reserved from now on
// is valid (a reload); sockets parked and tokens reserved before keep their times.
func (sb *standby) setTTLs(park, token time.Duration) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.parkTTL, sb.tokenTTL = park, token
}

// newToken is a fresh random token.
func newToken() (wire.Token, error) {
	var tok wire.Token
	_, err := rand.Read(tok[:])
	return tok, err
}

// HashToken is the SHA-256 of a standby token: the standby table knows its tokens by hash, so that
// an instance can file tokens another instance of the same public proxy minted (AcceptTokens)
// without the tokens themselves travelling between the instances. Hashing costs a standby dial about
// a tenth of a microsecond, once (BenchmarkHashToken); a client's bytes are never hashed.
func HashToken(t wire.Token) wire.TokenHash { return sha256.Sum256(t[:]) }

// claim removes tok if it is an outstanding standby token and returns how it was filed.
func (sb *standby) claim(tok wire.Token, now time.Time) (filed, bool) {
	h := HashToken(tok)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	f, ok := sb.tokens[h]
	if !ok {
		return filed{}, false
	}
	delete(sb.tokens, h)
	op := sb.ops[f.operator]
	for i := range op.tokens {
		if op.tokens[i].hash == h {
			ok = now.Before(op.tokens[i].until)
			op.tokens = append(op.tokens[:i], op.tokens[i+1:]...)
			break
		}
	}
	return f, ok
}

// park files fd for the operator that reserved its token and watches it; false (fd not taken)
// when the operator's cap is reached or the watcher is not running. kept: fd is a framed socket
// a relay loop is handing back (inside Keep), which that loop can go on watching (relay.Hold).
func (sb *standby) park(f filed, fd int, now time.Time, kept bool) bool {
	operator := f.operator
	sb.mu.Lock()
	defer sb.mu.Unlock()
	op := sb.ops[operator]
	if op == nil {
		// A sweep dropped the operator's empty entry between claim and now.
		if len(sb.ops) >= sb.maxOps {
			return false
		}
		op = &operatorStandby{}
		sb.ops[operator] = op
	}
	if len(op.parked) >= sb.max() {
		return false
	}
	id, loop, ok := sb.watchFD(operator, fd, kept)
	if !ok {
		return false
	}
	op.parked = append(op.parked, parked{fd: fd, id: id, loop: loop, until: now.Add(sb.parkTTL), mode: f.mode})
	return true
}

// keeper parks a framed standby socket again once its client is done (relay.Keeper): under the
// operator and mode its token was reserved with, as long as the operator's cap has room and the
// engine is not stopping; otherwise it is closed, which the private side sees as the end of the
// socket.
type keeper struct {
	e *Engine
	f filed
}

// Keep runs on a relay loop: park takes the table's mutex and one epoll_ctl, nothing that waits.
// The socket stays in that loop's epoll set (relay.Hold), which watches it while it waits and
// pairs it again with one EPOLL_CTL_MOD.
func (k *keeper) Keep(fd int) {
	e := k.e
	if fd < 0 {
		return // the pair ended otherwise; the relay closed the socket
	}
	if e.isStopping() || !e.standby.park(k.f, fd, time.Now(), true) {
		_ = unix.Close(fd)
		return
	}
	e.stats.StandbyReused.Add(1)
}

// take returns a live parked socket of operator, closing the dead ones it meets; the oldest
// first, so sockets do not sit until they expire while newer ones serve. The watcher closes a
// socket whose private side went away as soon as the kernel knows; the check here covers the
// moment between the two. mode says how the socket carries its client; loop is the relay loop
// that holds it (relay.AddFramedHeld pairs it there), or -1.
func (sb *standby) take(operator string, now time.Time) (fd int, mode wire.SocketMode, loop int, ok bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	op := sb.ops[operator]
	if op == nil {
		return -1, wire.SocketMode{}, -1, false
	}
	for len(op.parked) > 0 {
		p := op.parked[0]
		op.parked = op.parked[1:]
		sb.unwatch(p)
		if !now.Before(p.until) {
			_ = unix.Close(p.fd)
			continue
		}
		if idle(p.fd) {
			return p.fd, p.mode, p.loop, true
		}
		_ = unix.Close(p.fd)
		sb.goneCount.Add(1)
	}
	return -1, wire.SocketMode{}, -1, false
}

// idle reports whether a parked socket is still open and silent: the private side sends nothing
// until the client's hello arrives, so a byte or an end of stream both mean it is unusable.
func idle(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return n < 0 && errors.Is(err, unix.EAGAIN)
}

// sweep closes expired parked sockets and forgets expired tokens; it returns how many sockets it
// closed. Dead sockets are the watcher's.
func (sb *standby) sweep(now time.Time) int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	closed := 0
	for name, op := range sb.ops {
		for len(op.tokens) > 0 && !now.Before(op.tokens[0].until) {
			delete(sb.tokens, op.tokens[0].hash)
			op.tokens = op.tokens[1:]
		}
		for len(op.parked) > 0 && !now.Before(op.parked[0].until) {
			sb.unwatch(op.parked[0])
			_ = unix.Close(op.parked[0].fd)
			op.parked = op.parked[1:]
			closed++
		}
		if len(op.tokens) == 0 && len(op.parked) == 0 {
			delete(sb.ops, name)
		}
	}
	return closed
}

// counts returns the parked sockets and outstanding tokens over all operators.
func (sb *standby) counts() (parkedN, tokens int) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return int(sb.parkedN.Load()), len(sb.tokens)
}

// byOperator returns each operator's parked sockets and outstanding tokens, sorted by operator.
func (sb *standby) byOperator() []OperatorStandby {
	sb.mu.Lock()
	out := make([]OperatorStandby, 0, len(sb.ops))
	for name, op := range sb.ops {
		out = append(out, OperatorStandby{Operator: name, Parked: len(op.parked), Tokens: len(op.tokens)})
	}
	sb.mu.Unlock()
	slices.SortFunc(out, func(a, b OperatorStandby) int { return strings.Compare(a.Operator, b.Operator) })
	return out
}
