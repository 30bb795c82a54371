package cluster

import (
	"context"
	"slices"
	"strconv"
	"time"

	"epsproxy/proxy"
)

// Each instance records its internal endpoint with the time it was last seen, every heartbeat,
// and reads the others' back: Instances is the list of the live ones. An instance not seen for
// liveFor heartbeats is left out; one not seen for forgetAfter is removed from the hash.

const (
	liveFor     = 3
	forgetAfter = time.Hour
)

func (st *Store) heartbeat() {
	defer st.wg.Done()
	proxy.Every(st.stop, st.s.Heartbeat.D(), st.beat)
}

// beat records this instance and reads the live list. A failure leaves the last list in place:
// the follower reports the outage.
func (st *Store) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*st.s.Timeout.D())
	defer cancel()
	now := time.Now()
	pipe := st.rdb.Pipeline()
	pipe.HSet(ctx, st.k.instances, st.self, now.UnixMilli())
	all := pipe.HGetAll(ctx, st.k.instances)
	if _, err := pipe.Exec(ctx); err != nil {
		st.log.Debug("heartbeat failed", "err", err)
		return
	}
	st.note(ctx, all.Val(), now)
}

// ReadInstances reads the live instances from Redis now (one round trip), so that an instance
// that joined since the last heartbeat is listed; on failure it returns the last list.
func (st *Store) ReadInstances(ctx context.Context) []string {
	all, err := st.rdb.HGetAll(ctx, st.k.instances).Result()
	if err == nil {
		st.note(ctx, all, time.Now())
	}
	return st.Instances()
}

// note keeps the live instances out of the registry's contents, and forgets long-gone ones.
func (st *Store) note(ctx context.Context, all map[string]string, now time.Time) {
	cutoff := now.Add(-liveFor * st.s.Heartbeat.D()).UnixMilli()
	var live, gone []string
	for ep, seen := range all {
		ms, err := strconv.ParseInt(seen, 10, 64)
		switch {
		case err != nil || now.Add(-forgetAfter).UnixMilli() > ms:
			gone = append(gone, ep)
		case ms >= cutoff || ep == st.self:
			live = append(live, ep)
		}
	}
	slices.Sort(live)
	if len(gone) > 0 {
		_ = st.rdb.HDel(ctx, st.k.instances, gone...).Err()
	}
	st.mu.Lock()
	changed := !slices.Equal(st.live, live)
	st.live = live
	st.mu.Unlock()
	if changed {
		st.log.Info("public proxy instances", "live", live)
	}
}

// Instances returns the internal endpoints of the live instances, this one included, sorted.
func (st *Store) Instances() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.live) == 0 {
		return []string{st.self}
	}
	return slices.Clone(st.live)
}

// Self returns this instance's internal endpoint.
func (st *Store) Self() string { return st.self }
