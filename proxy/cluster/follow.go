package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"epsproxy/matcher"
	"epsproxy/proxy"
)

// The follower keeps the mirror equal to the shared table: it subscribes to the change channel
// (and this instance's token channel), reads the whole table once subscribed, then applies each
// published change in revision order.

const (
	// followPing: with no message for this long the follower pings Redis; with no answer by the
	// next period the session is over (a Redis that vanished without closing the connection).
	followPing = 15 * time.Second
	// scanCount is how many fields one HSCAN step asks for.
	scanCount = 1000
	// firstRetry and maxRetry bound the follower's backoff while Redis is unreachable.
	firstRetry = 100 * time.Millisecond
	maxRetry   = 2 * time.Second
)

func (st *Store) follow() {
	defer st.wg.Done()
	ctx, cancel := proxy.StopContext(st.stop)
	defer cancel()
	wait := firstRetry
	for {
		began := time.Now()
		err := st.session(ctx)
		if ctx.Err() != nil {
			return
		}
		st.setDown(err)
		if time.Since(began) > time.Minute {
			wait = firstRetry
		}
		select {
		case <-st.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetry)
	}
}

// session is one subscription: it returns when the connection fails.
func (st *Store) session(ctx context.Context) error {
	ps := st.rdb.Subscribe(ctx, st.k.changes, st.k.tokens+st.self)
	defer ps.Close()
	// A blocked read does not watch ctx: Close closes the subscription to end it.
	st.mu.Lock()
	st.ps = ps
	st.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for confirmed := 0; confirmed < 2; {
		m, err := ps.ReceiveTimeout(ctx, st.s.Timeout.D())
		if err != nil {
			return err
		}
		if _, ok := m.(*redis.Subscription); ok {
			confirmed++
		}
	}
	if err := st.resync(ctx); err != nil {
		return err
	}
	st.setUp()
	pinged := false
	for {
		m, err := ps.ReceiveTimeout(ctx, followPing)
		if err != nil {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if pinged {
				return errors.New("no answer to a ping")
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := m.(type) {
		case *redis.Message:
			if m.Channel == st.k.changes {
				err = st.change(ctx, m.Payload)
			} else {
				st.tokensFor(m.Payload)
			}
			if err != nil {
				return err
			}
		case *redis.Pong, *redis.Subscription:
		}
	}
}

// change applies one published change, or resyncs if one was missed.
func (st *Store) change(ctx context.Context, payload string) error {
	head, body, _ := strings.Cut(payload, "\n")
	rev, err := strconv.ParseInt(head, 10, 64)
	if err != nil {
		st.log.Warn("ignoring a malformed change message", "err", err)
		return st.resync(ctx)
	}
	st.mu.Lock()
	have := st.rev
	st.mu.Unlock()
	switch {
	case rev <= have:
		return nil // already read by the last resync
	case rev > have+1:
		return st.resync(ctx) // a message was lost
	}
	set, del, err := parseChanges(body)
	if err != nil {
		st.log.Warn("ignoring a malformed change message", "rev", rev, "err", err)
		return st.resync(ctx)
	}
	if n := st.table.Mirror(set, del); n > 0 {
		st.log.Warn("shared announcements skipped: invalid names", "count", n)
	}
	st.applied.Add(1)
	st.advance(rev, "")
	return nil
}

// parseChanges reads the lines of a change message.
func parseChanges(body string) (set []matcher.Announcement, del []string, err error) {
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "-":
			del = append(del, f[1])
		case len(f) == 4 && f[0] == "+":
			a, err := announcement(f[1], f[2]+" "+f[3])
			if err != nil {
				return nil, nil, err
			}
			set = append(set, a)
		default:
			return nil, nil, fmt.Errorf("bad line %q", line)
		}
	}
	return set, del, nil
}

// announcement decodes one stored value, "EXPIRES_MS OPERATOR".
func announcement(name, value string) (matcher.Announcement, error) {
	e, op, ok := strings.Cut(value, " ")
	ms, err := strconv.ParseInt(e, 10, 64)
	if !ok || err != nil || ms < 0 || op == "" {
		return matcher.Announcement{}, fmt.Errorf("bad value %q for %q", value, name)
	}
	a := matcher.Announcement{Domain: name, Operator: op}
	if ms > 0 {
		a.ExpiresAt = time.UnixMilli(ms).UTC()
	}
	return a, nil
}

// resync reads the whole shared table into the mirror. If the store lost its data (no epoch, or
// another one than the mirror was read from), the live announcements of the mirror are put back
// first.
func (st *Store) resync(ctx context.Context) error {
	st.resyncs.Add(1)
	fresh := make([]byte, 16)
	_, _ = rand.Read(fresh)
	created, err := st.rdb.SetNX(ctx, st.k.epoch, hex.EncodeToString(fresh), 0).Result()
	if err != nil {
		return err
	}
	epoch, err := st.rdb.Get(ctx, st.k.epoch).Result()
	if err != nil {
		return err
	}
	st.mu.Lock()
	known := st.epoch
	st.mu.Unlock()
	if created || (known != "" && known != epoch) {
		if err := st.reseed(ctx); err != nil {
			return err
		}
	}
	rev, err := st.rdb.Get(ctx, st.k.rev).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	var all []matcher.Announcement
	bad := 0
	var cursor uint64
	for {
		kv, next, err := st.rdb.HScan(ctx, st.k.ann, cursor, "", scanCount).Result()
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			a, err := announcement(kv[i], kv[i+1])
			if err != nil {
				bad++
				continue
			}
			all = append(all, a)
		}
		if cursor = next; cursor == 0 {
			break
		}
		if len(all) > st.opts.MaxEntries+scanCount {
			return fmt.Errorf("the shared table holds more than %d announcements", st.opts.MaxEntries)
		}
	}
	bad += st.table.Replace(all)
	if bad > 0 {
		st.log.Warn("shared announcements skipped: invalid entries", "count", bad)
	}
	st.mu.Lock()
	st.epoch = epoch
	st.mu.Unlock()
	st.advance(rev, "resync")
	return nil
}

// reseed puts the mirror's live announcements back into a store that lost them, operator by
// operator, through the announce script (a name another operator took meanwhile stays theirs).
func (st *Store) reseed(ctx context.Context) error {
	now := time.Now()
	byOp := map[string][]matcher.Item{}
	for _, a := range st.table.List(now) {
		byOp[a.Operator] = append(byOp[a.Operator], matcher.Item{Domain: a.Domain, ExpiresAt: a.ExpiresAt})
	}
	put := 0
	for op, items := range byOp {
		for len(items) > 0 {
			n := min(len(items), scanCount)
			args := []any{st.k.changes, now.UnixMilli(), op, st.opts.MaxEntries, st.opts.MaxPerOperator}
			for _, it := range items[:n] {
				var e int64
				if !it.ExpiresAt.IsZero() {
					e = max(it.ExpiresAt.UnixMilli(), 1)
				}
				args = append(args, it.Domain, e)
			}
			if err := announceScript.Run(ctx, st.rdb, st.k.script(), args...).Err(); err != nil {
				return err
			}
			put += n
			items = items[n:]
		}
	}
	if put > 0 {
		st.reseeded.Add(int64(put))
		st.log.Warn("the shared store had lost its announcements; put back the ones this instance held", "count", put)
	}
	return nil
}

// advance records that the mirror holds revision rev and wakes the callers waiting for it.
func (st *Store) advance(rev int64, why string) {
	st.mu.Lock()
	st.rev = rev
	close(st.revCh)
	st.revCh = make(chan struct{})
	st.mu.Unlock()
	if st.hooks.Changed != nil {
		st.hooks.Changed()
	}
	if why != "" {
		st.log.Debug("mirror read from the shared store", "rev", rev, "announcements", st.table.Len())
	}
}

func (st *Store) setUp() {
	st.mu.Lock()
	was := st.up
	st.up, st.lastErr, st.downSaid = true, "", false
	st.mu.Unlock()
	if !was {
		st.log.Info("shared announcement store reachable; mirror current", "announcements", st.table.Len())
	}
}

func (st *Store) setDown(err error) {
	st.mu.Lock()
	say := !st.downSaid
	st.up, st.lastErr, st.downSaid = false, err.Error(), true
	st.mu.Unlock()
	if say {
		st.log.Warn("shared announcement store unreachable: serving the names already known, refusing new announcements until it is back", "err", err)
	} else {
		st.log.Debug("shared announcement store still unreachable", "err", err)
	}
}
