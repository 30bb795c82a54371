package epsclient

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// ErrQueueFull is returned by Submit when the pool's queue, or the operator's share of it, is
// full; the caller refuses whatever needed the call (the public proxy closes the waiting client)
// instead of stalling.
var ErrQueueFull = errors.New("eps call queue is full")

// ErrPoolClosed is returned by Submit after Close.
var ErrPoolClosed = errors.New("eps call pool is closed")

// Job is one call for the pool. Done runs on a pool worker with the raw result or the error; it
// must be quick and must not block (hand work back to an event loop instead).
type Job struct {
	Operator string
	Method   string
	Params   any
	Done     func(result json.RawMessage, err error)
}

// Shares of the pool one operator may hold, so that one whose node is slow or down delays only
// its own calls: at most a quarter of the workers (at least one) call it at once, and at most a
// quarter of the queue (at least one) waits for it.
const operatorShare = 4

// Pool runs calls on a fixed number of workers. Jobs wait in one queue per operator, and the
// workers take them round robin across operators, each operator within its share of workers and
// of the queue: calls to an operator that does not answer pile up in its own queue, and another
// operator's calls go past them.
type Pool struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	share, queueShare, queueCap int

	mu     sync.Mutex
	wake   *sync.Cond
	ops    map[string]*opQueue
	ready  []string // operators with jobs queued, in the order the workers serve them
	queued int
	closed bool
}

// opQueue is one operator's waiting jobs and how many of its calls are in flight.
type opQueue struct {
	jobs   []Job
	busy   int
	inRing bool
}

// NewPool starts workers goroutines serving a queue of at most queue jobs.
func NewPool(c *Client, workers, queue int) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{c: c, ctx: ctx, cancel: cancel, ops: map[string]*opQueue{},
		share: max(1, workers/operatorShare), queueShare: max(1, queue/operatorShare), queueCap: queue}
	p.wake = sync.NewCond(&p.mu)
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// Submit queues j without blocking. Safe from any goroutine, including event loops.
func (p *Pool) Submit(j Job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrPoolClosed
	}
	q := p.ops[j.Operator]
	if q == nil {
		q = &opQueue{}
		p.ops[j.Operator] = q
	}
	if p.queued >= p.queueCap || len(q.jobs) >= p.queueShare {
		return ErrQueueFull
	}
	q.jobs = append(q.jobs, j)
	p.queued++
	if !q.inRing {
		q.inRing = true
		p.ready = append(p.ready, j.Operator)
	}
	p.wake.Signal()
	return nil
}

// Queued is the number of jobs waiting for a worker.
func (p *Pool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// next takes the next job a worker may run: the first operator in the ring with a job waiting
// and a free share of workers. Called with mu held; ok is false when there is none.
func (p *Pool) next() (Job, *opQueue, bool) {
	for i, op := range p.ready {
		q := p.ops[op]
		if q.busy >= p.share {
			continue
		}
		j := q.jobs[0]
		q.jobs[0] = Job{}
		q.jobs = q.jobs[1:]
		q.busy++
		p.queued--
		// The operator goes to the back of the ring, or leaves it when it has nothing left.
		p.ready = append(p.ready[:i], p.ready[i+1:]...)
		if len(q.jobs) > 0 {
			p.ready = append(p.ready, op)
		} else {
			q.inRing = false
		}
		return j, q, true
	}
	return Job{}, nil, false
}

func (p *Pool) work() {
	defer p.wg.Done()
	p.mu.Lock()
	for {
		j, q, ok := p.next()
		if !ok {
			if p.closed && p.queued == 0 {
				p.mu.Unlock()
				return
			}
			p.wake.Wait()
			continue
		}
		p.mu.Unlock()
		raw, err := p.c.CallRaw(p.ctx, j.Operator, j.Method, j.Params)
		if j.Done != nil {
			j.Done(raw, err)
		}
		p.mu.Lock()
		q.busy--
		if q.busy == 0 && len(q.jobs) == 0 {
			delete(p.ops, j.Operator) // the map holds only operators with work
		}
		// The share just freed makes at most one more job runnable, and this worker takes it
		// itself at the top of the loop: no other worker needs waking, except at Close, when
		// the idle ones must see the queue drained and return.
		if p.closed {
			p.wake.Broadcast()
		}
	}
}

// Close stops accepting jobs, cancels calls in flight and waits for the workers; jobs still
// queued complete with an error.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}
