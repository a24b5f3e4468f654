package assets

import (
	"context"
)

// Result is the outcome of checking one Object: a Check, or Err when the
// store could not be read (see Checker.Check).
type Result struct {
	Object    Object
	Check     *Check
	BytesRead int64
	Err       error
}

// Stream checks the objects received from in, at most Config.MaxConcurrent at
// once, and sends one Result per object on the returned channel in the order
// the objects came (a slow object holds back the ones after it, never more
// than MaxConcurrent of them, so memory stays flat). The channel closes after
// in closes and every Result is sent, or soon after ctx ends (the objects not
// yet started are dropped). The caller must drain the channel or cancel ctx.
func (c *Checker) Stream(ctx context.Context, in <-chan Object) <-chan Result {
	out := make(chan Result)
	// pending holds one slot per started check, in input order; with the one
	// slot the sender waits on, its capacity bounds the checks in flight.
	pending := make(chan chan Result, c.cfg.MaxConcurrent-1)
	go func() {
		defer close(pending)
		for {
			var obj Object
			var ok bool
			select {
			case <-ctx.Done():
				return
			case obj, ok = <-in:
				if !ok {
					return
				}
			}
			slot := make(chan Result, 1)
			select {
			case pending <- slot:
			case <-ctx.Done():
				return
			}
			go func() {
				ck, n, err := c.Check(ctx, obj)
				slot <- Result{Object: obj, Check: ck, BytesRead: n, Err: err}
			}()
		}
	}()
	go func() {
		defer close(out)
		for slot := range pending {
			r := <-slot
			select {
			case out <- r:
			case <-ctx.Done():
				for range pending { // let the producer finish
				}
				return
			}
		}
	}()
	return out
}
