package cache

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// R7 (sanity): lock-free reads during growth, eviction, expiry removal
// and RemoveFunc never return another key's value or an expired one.
func TestStressWrongValue(t *testing.T) {
	for round := range 30 {
		c, _ := newExpiring[int, int](700, 2) // 350 per shard: grows to 1024 slots, then evicts
		var stop atomic.Bool
		var wg sync.WaitGroup
		var hits atomic.Int64
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; !stop.Load(); i += 7 {
					k := i % 3000
					now := t0.Add(time.Duration(k%3) * time.Second)
					if v, ok := c.Get(k, now); ok {
						hits.Add(1)
						if v != k*10+k%3 {
							t.Errorf("Get(%d) = %d", k, v)
							return
						}
						if k%3 == 2 { // stored until t0+2s: expired at now
							t.Errorf("Get(%d) served past its until", k)
							return
						}
					}
				}
			}()
		}
		for i := range 20000 {
			k := (i * 37) % 3000
			c.Add(k, k*10+k%3, t0.Add(time.Duration(k%3)*time.Second+time.Nanosecond*0+2*time.Second*time.Duration(boolInt(k%3 != 2))), t0)
			if i%5000 == 4999 {
				c.RemoveFunc(func(k int) bool { return k%5 == round%5 })
			}
			if c.Len() > 700 {
				t.Fatalf("Len %d > 700", c.Len())
			}
		}
		stop.Store(true)
		wg.Wait()
		_ = hits.Load()
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
