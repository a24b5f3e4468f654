package cache

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTableAgainstMap runs random puts, deletes and finds on one shard
// table against a map. Hashes are chosen so that homes crowd into a few
// slots at the end of the table: long probe runs that wrap around, which
// is where backward-shift deletion can go wrong.
func TestTableAgainstMap(t *testing.T) {
	for _, tt := range []struct {
		name  string
		slots int
		homes int // distinct home slots used
		ops   int
	}{
		{"one home", 16, 1, 20_000},
		{"wrapping", 64, 6, 20_000},
		{"spread", 64, 64, 20_000},
		{"large", 1024, 40, 2_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tt.slots*tt.homes)))
			tab := newTable[int, int](tt.slots)
			hash := func(k int) uint64 {
				// Homes at the table's end; the same home for keys
				// k and k+homes, different full hashes.
				home := uint64(tt.slots-1-k%tt.homes) & tab.mask
				return uint64(k)<<40 | home<<shardBits | uint64(k&(1<<shardBits-1))
			}
			in := map[int]*node[int, int]{}
			keys := 3 * tt.slots / 4 // more keys than fit: puts of new keys stop at half full
			for op := range tt.ops {
				k := rng.IntN(keys)
				switch rng.IntN(3) {
				case 0: // put
					if _, ok := in[k]; !ok && 2*(len(in)+1) > tt.slots {
						continue
					}
					n := &node[int, int]{key: k, v: op, hash: hash(k)}
					old := tab.put(n)
					if old != in[k] {
						t.Fatalf("op %d: put(%d) replaced %p, want %p", op, k, old, in[k])
					}
					in[k] = n
				case 1: // delete
					n, ok := in[k]
					if !ok {
						n = &node[int, int]{key: k, hash: hash(k)}
					}
					if got := tab.del(n); got != ok {
						t.Fatalf("op %d: del(%d) = %v, want %v", op, k, got, ok)
					}
					delete(in, k)
				case 2: // a stale node (replaced since) is not deleted
					if n, ok := in[k]; ok {
						if tab.del(&node[int, int]{key: k, hash: n.hash}) {
							t.Fatalf("op %d: del of a node not in the table succeeded", op)
						}
					}
				}
				for k := range keys {
					if got := tab.find(hash(k), k); got != in[k] {
						t.Fatalf("op %d: find(%d) = %p, want %p", op, k, got, in[k])
					}
				}
			}
			used := 0
			for i := range tab.slots {
				if tab.slots[i].Load() != nil {
					used++
				}
			}
			if used != len(in) {
				t.Errorf("%d slots used, want %d", used, len(in))
			}
		})
	}
}

// TestShardTableGrows: a shard's table doubles as it fills and stays at
// most half full, every entry findable, up to the shard's bound.
func TestShardTableGrows(t *testing.T) {
	c, _ := newExpiring[string, int](5000, 1)
	s := &c.shards[0]
	for i := range 5000 {
		c.Add("k"+strconv.Itoa(i), i, t0.Add(1e9), t0)
		if tab := s.tab.Load(); 2*len(s.ring) > len(tab.slots) {
			t.Fatalf("%d entries in %d slots", len(s.ring), len(tab.slots))
		}
	}
	if got, want := len(s.tab.Load().slots), 16384; got != want {
		t.Errorf("%d slots for 5000 entries, want %d", got, want)
	}
	for i := range 5000 {
		if v, ok := c.Get("k"+strconv.Itoa(i), t0); !ok || v != i {
			t.Fatalf("k%d: %d, %v", i, v, ok)
		}
	}
}

// TestFlightsChained: calls in flight whose keys share a hash are chained
// under it; each is found by its own key and lands without losing the
// others, whatever the order.
func TestFlightsChained(t *testing.T) {
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {1, 2, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			s := &shard[string, int]{calls: map[uint64]*call[string, int]{}}
			const h = 42
			keys := []string{"a", "b", "c"}
			calls := make([]*call[string, int], len(keys))
			for i, k := range keys {
				calls[i] = &call[string, int]{key: k, next: s.calls[h]}
				s.calls[h] = calls[i]
			}
			landed := map[int]bool{}
			for _, i := range order {
				s.land(h, calls[i])
				landed[i] = true
				for j, k := range keys {
					want := calls[j]
					if landed[j] {
						want = nil
					}
					if got := s.flight(h, k); got != want {
						t.Fatalf("after landing %v: flight(%q) = %p, want %p", order, k, got, want)
					}
				}
			}
			if len(s.calls) != 0 {
				t.Errorf("%d hashes left in flight", len(s.calls))
			}
		})
	}
}

// TestReadsDuringChurn reads stable entries without a lock while a writer
// adds, replaces and removes others in the same shard (deletes shift
// probe runs, growth swaps tables): a read answers the right value or,
// while a node it looks for is being moved, a miss; never another key's
// value or an expired one. Run it under -race too.
func TestReadsDuringChurn(t *testing.T) {
	c, _ := newExpiring[int, int](8192, 1)
	const stable = 256
	far := t0.Add(time.Hour)
	for k := range stable {
		c.Add(k, k, far, t0)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var misses, reads atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := i % stable
				v, ok := c.Get(k, t0)
				reads.Add(1)
				if !ok {
					misses.Add(1)
					continue
				}
				if v != k {
					t.Errorf("Get(%d) = %d", k, v)
					return
				}
				// A churned key is never served past its until.
				if _, ok := c.Get(stable+i%4000, t0.Add(2*time.Second)); ok {
					t.Errorf("an expired churned key was served")
					return
				}
			}
		}()
	}
	for round := range 20 {
		for k := stable; k < stable+4000; k++ {
			c.Add(k, -k, t0.Add(time.Second), t0) // until t0+1s
		}
		for k := stable; k < stable+4000; k++ {
			if round%2 == 0 {
				c.Get(k, t0.Add(time.Minute)) // expired: removed
			}
		}
		if round%2 == 1 {
			c.RemoveFunc(func(k int) bool { return k >= stable })
		}
	}
	close(stop)
	wg.Wait()
	for k := range stable {
		if v, ok := c.Get(k, t0); !ok || v != k {
			t.Errorf("stable %d: %d, %v after the churn", k, v, ok)
		}
	}
	t.Logf("%d of %d reads of stable entries missed while nodes moved", misses.Load(), reads.Load())
}
