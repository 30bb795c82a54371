package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"epsproxy/matcher"
	"epsproxy/proxy/wire"
)

// ErrUnavailable is wrapped by every error of a call that could not reach Redis.
var ErrUnavailable = errors.New("the shared announcement store is unreachable")

// mirrorWait bounds how long a call that changed the table waits for the instance's own mirror
// to hold the change (the follower applies it from the published message, in order).
const mirrorWait = time.Second

// Hooks are what the store calls back; any may be nil. They run on the follower's goroutine and
// must not block.
type Hooks struct {
	// Tokens files standby tokens another instance minted for this one (their SHA-256 hashes),
	// with how their sockets carry clients (wire.SocketMode).
	Tokens func(operator string, hashes [][32]byte, until time.Time, mode wire.SocketMode)
	// Changed runs after the mirror changed (to save a local copy, say).
	Changed func()
}

// keys are the Redis keys and channels of one operator's cluster.
type keys struct {
	ann, exp, ops, rev, epoch, instances, changes, tokens string
}

func newKeys(prefix string) keys {
	return keys{
		ann: prefix + "announcements", exp: prefix + "expiry", ops: prefix + "operators",
		rev: prefix + "rev", epoch: prefix + "epoch", instances: prefix + "instances",
		changes: prefix + "changes", tokens: prefix + "tokens:",
	}
}

func (k keys) script() []string { return []string{k.ann, k.exp, k.ops, k.rev} }

// Store is one instance's view of the shared state: the Redis client, the follower that keeps
// the mirror, and the heartbeat.
type Store struct {
	s     Settings
	self  string // this instance's internal endpoint
	table *matcher.Table
	hooks Hooks
	log   *slog.Logger
	rdb   *redis.Client
	k     keys
	opts  matcher.Options

	mu       sync.Mutex
	rev      int64         // the last revision the mirror holds
	revCh    chan struct{} // closed and replaced whenever rev advances
	epoch    string        // the store's epoch the mirror was read from
	up       bool
	downSaid bool // the log said the store is unreachable since it was last up
	lastErr  string
	live     []string      // live instances' endpoints, from the last heartbeat
	ps       *redis.PubSub // the follower's subscription; Close closes it to end a blocked read

	resyncs, reseeded, applied atomic.Int64

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// redisLog routes go-redis's own messages (a pool that cannot dial, say) to slog at debug
// level: the store reports the state that matters once, in its own words.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

var setLogger sync.Once

// New returns a store for the instance whose internal endpoint is self, mirroring into table.
// Nothing connects before Start.
func New(s Settings, name, self string, table *matcher.Table, opts matcher.Options, hooks Hooks, log *slog.Logger) (*Store, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults(name)
	setLogger.Do(func() { redis.SetLogger(redisLog{}) })
	pw, err := s.password()
	if err != nil {
		return nil, fmt.Errorf("redis.password_file: %w", err)
	}
	opts.MaxEntries = cmp.Or(opts.MaxEntries, matcher.DefaultMaxEntries)
	opts.MaxPerOperator = cmp.Or(opts.MaxPerOperator, matcher.DefaultMaxPerOperator)
	t := s.Timeout.D()
	rdb := redis.NewClient(&redis.Options{
		Addr: s.Addr, Username: s.Username, Password: pw, DB: s.DB,
		Protocol:        2,
		DialTimeout:     t,
		ReadTimeout:     t,
		WriteTimeout:    t,
		PoolSize:        8,
		MaxRetries:      -1, // a script may have run when its reply was lost: the caller decides
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	return &Store{
		s: s, self: self, table: table, hooks: hooks, log: log.With("redis", s.Addr), rdb: rdb,
		k: newKeys(s.Prefix), opts: opts, revCh: make(chan struct{}), stop: make(chan struct{}),
	}, nil
}

// Start starts the follower and the heartbeat. It does not wait for Redis: an instance starts
// and serves its mirror (a local copy loaded by the caller) while Redis is down.
func (st *Store) Start() {
	st.wg.Add(2)
	go st.follow()
	go st.heartbeat()
}

// Close stops the follower and the heartbeat, removes this instance from the live list (best
// effort) and closes the connections.
func (st *Store) Close() error {
	first := false
	st.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	close(st.stop)
	st.mu.Lock()
	if st.ps != nil {
		_ = st.ps.Close()
	}
	st.mu.Unlock()
	st.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), st.s.Timeout.D())
	defer cancel()
	_ = st.rdb.HDel(ctx, st.k.instances, st.self).Err()
	return st.rdb.Close()
}

// unavailable wraps a Redis error as ErrUnavailable.
func (st *Store) unavailable(err error) error {
	return fmt.Errorf("%w (redis %s: %v); names already announced are still served", ErrUnavailable, st.s.Addr, err)
}

// Announce files operator's batch in the shared table by matcher.Table.Announce's rules and
// returns one result per item. The error is ErrUnavailable (nothing was decided) or a reply
// Redis should not give.
func (st *Store) Announce(ctx context.Context, operator string, allowed []string, items []matcher.Item, now time.Time) ([]error, error) {
	names, errs := matcher.Check(operator, allowed, items, now)
	args := []any{st.k.changes, now.UnixMilli(), operator, st.opts.MaxEntries, st.opts.MaxPerOperator}
	var asked []int
	for i, it := range items {
		if errs[i] != nil {
			continue
		}
		var e int64
		switch {
		case it.ExpiresAt.IsZero():
		case !it.ExpiresAt.After(now):
			e = -1
		default:
			e = max(it.ExpiresAt.UnixMilli(), 1)
		}
		args = append(args, names[i], e)
		asked = append(asked, i)
	}
	if len(asked) == 0 {
		return errs, nil
	}
	res, err := announceScript.Run(ctx, st.rdb, st.k.script(), args...).Slice()
	if err != nil {
		return nil, st.unavailable(err)
	}
	rev, reply, err := scriptReply(res)
	if err != nil {
		return nil, err
	}
	out, _ := reply.([]any)
	if len(out) != len(asked) {
		return nil, fmt.Errorf("redis: the announce script gave %d results for %d names", len(out), len(asked))
	}
	for j, i := range asked {
		r, _ := out[j].(string)
		switch {
		case r == "ok":
		case r == "taken":
			errs[i] = matcher.Refusal(matcher.ErrTaken, items[i].Domain, "announced by another operator")
		case strings.HasPrefix(r, "full "):
			errs[i] = matcher.Refusal(matcher.ErrFull, items[i].Domain, strings.TrimPrefix(r, "full "))
		default:
			return nil, fmt.Errorf("redis: the announce script gave %q", r)
		}
	}
	st.waitMirror(ctx, rev)
	return errs, nil
}

// Withdraw removes operator's announcement of domain from the shared table (matcher.ErrNotFound
// if it holds none).
func (st *Store) Withdraw(ctx context.Context, operator, domain string) error {
	name, err := matcher.Normalize(domain)
	if err != nil {
		return err
	}
	res, err := withdrawScript.Run(ctx, st.rdb, st.k.script(), st.k.changes, time.Now().UnixMilli(), operator, name).Slice()
	if err != nil {
		return st.unavailable(err)
	}
	rev, n, err := scriptReply(res)
	if err != nil {
		return err
	}
	if done, _ := n.(int64); done == 0 {
		return matcher.Refusal(matcher.ErrNotFound, domain, "no announcement by operator "+strconv.Quote(operator))
	}
	st.waitMirror(ctx, rev)
	return nil
}

// Purge drops the announcements expired at now from the shared table, a bounded number per
// script run, and returns how many it dropped.
func (st *Store) Purge(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for range 1000 {
		res, err := purgeScript.Run(ctx, st.rdb, st.k.script(), st.k.changes, now.UnixMilli()).Slice()
		if err != nil {
			return total, st.unavailable(err)
		}
		_, n, err := scriptReply(res)
		if err != nil {
			return total, err
		}
		k, _ := n.(int64)
		total += int(k)
		if k < 1000 {
			break
		}
	}
	return total, nil
}

// scriptReply splits a script's {REV, rest} reply.
func scriptReply(res []any) (int64, any, error) {
	if len(res) != 2 {
		return 0, nil, fmt.Errorf("redis: a script replied with %d values, want 2", len(res))
	}
	rev, ok := res[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("redis: a script replied with revision %v", res[0])
	}
	return rev, res[1], nil
}

// waitMirror waits until the mirror holds revision rev, at most mirrorWait: the follower may be
// reconnecting, and the change is in Redis either way.
func (st *Store) waitMirror(ctx context.Context, rev int64) {
	t := time.NewTimer(mirrorWait)
	defer t.Stop()
	for {
		st.mu.Lock()
		ch, have := st.revCh, st.rev
		st.mu.Unlock()
		if have >= rev {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			st.log.Debug("the mirror did not catch up with a change in time", "rev", rev, "have", have)
			return
		case <-ctx.Done():
			return
		}
	}
}

// Stats are the store's figures for /debug/stats.
type Stats struct {
	Up        bool   `json:"up"`
	Rev       int64  `json:"rev"`
	Instances int    `json:"instances"`
	Resyncs   int64  `json:"resyncs"`
	Reseeded  int64  `json:"reseeded"`
	Applied   int64  `json:"applied"`
	LastError string `json:"last_error,omitempty"`
}

// Stats returns the store's state. Safe from any goroutine.
func (st *Store) Stats() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return Stats{Up: st.up, Rev: st.rev, Instances: len(st.live), Resyncs: st.resyncs.Load(),
		Reseeded: st.reseeded.Load(), Applied: st.applied.Load(), LastError: st.lastErr}
}

// Up reports whether the follower is connected and the mirror current.
func (st *Store) Up() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.up
}
