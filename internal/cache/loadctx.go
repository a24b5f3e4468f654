package cache

import (
	"context"
	"sync"
	"time"
)

// loadCtx is the context a load runs under: the caller's values without
// its cancellation (as context.WithoutCancel), ending at a deadline (as
// context.WithTimeout). Unlike those two, it costs nothing until someone
// asks for Done: a presign with credentials in hand never does, and
// WithoutCancel+WithTimeout cost five allocations on every miss. It lives
// inside the flight's call.
type loadCtx struct {
	parent   context.Context
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{}
	timer *time.Timer
	err   error
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *loadCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *loadCtx) Value(key any) any { return c.parent.Value(key) }

// Done makes the channel, and the timer that closes it, on first use.
func (c *loadCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	if c.err == nil {
		if d := time.Until(c.deadline); d > 0 {
			c.done = make(chan struct{})
			c.timer = time.AfterFunc(d, func() { c.end(context.DeadlineExceeded) })
			return c.done
		}
		c.err = context.DeadlineExceeded
	}
	c.done = closedChan
	return c.done
}

func (c *loadCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

// end ends the context with err unless it has ended.
func (c *loadCtx) end(err error) {
	c.mu.Lock()
	c.endLocked(err)
	c.mu.Unlock()
}

func (c *loadCtx) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.done != nil && c.done != closedChan {
		close(c.done)
	}
}

func (c *loadCtx) String() string { return "cache.loadCtx" }
