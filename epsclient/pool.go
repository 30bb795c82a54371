package epsclient

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// ErrQueueFull is returned by Submit when the pool's queue is full; the caller refuses whatever
// needed the call (the public proxy closes the waiting client) instead of stalling.
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

// Pool runs calls on a fixed number of workers from a bounded queue.
type Pool struct {
	c      *Client
	jobs   chan Job
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
}

// NewPool starts workers goroutines serving a queue of queue jobs.
func NewPool(c *Client, workers, queue int) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{c: c, jobs: make(chan Job, queue), ctx: ctx, cancel: cancel}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// Submit queues j without blocking. Safe from any goroutine, including event loops.
func (p *Pool) Submit(j Job) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPoolClosed
	}
	select {
	case p.jobs <- j:
		return nil
	default:
		return ErrQueueFull
	}
}

// Queued is the number of jobs waiting for a worker.
func (p *Pool) Queued() int { return len(p.jobs) }

func (p *Pool) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		raw, err := p.c.CallRaw(p.ctx, j.Operator, j.Method, j.Params)
		if j.Done != nil {
			j.Done(raw, err)
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
	close(p.jobs)
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}
