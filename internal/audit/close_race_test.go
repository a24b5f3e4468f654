package audit

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEnqueueDuringClose: a record enqueued while Close runs is written or
// counted as dropped, never lost without a trace (Enqueue saw the trail
// open, Close drained the queue, then the record landed in it).
func TestEnqueueDuringClose(t *testing.T) {
	for round := 0; round < 200; round++ {
		h := newHarness()
		out := &syncBuffer{}
		o := h.opts()
		o.Stdout = out
		a, err := New(Config{File: "-", MaxSize: minMaxSize, MaxFiles: 2, Queue: 64, WebhookBuffer: 1}, o)
		if err != nil {
			t.Fatal(err)
		}
		var sent atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rec(g)
				for !stop.Load() {
					a.Enqueue(&r)
					sent.Add(1)
				}
			}()
		}
		time.Sleep(200 * time.Microsecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		stop.Store(true)
		wg.Wait()
		written := bytes.Count(out.Bytes(), []byte("\n"))
		dropped := h.count(t, h.m.dropped)
		if int64(written+dropped) != sent.Load() {
			t.Fatalf("round %d: %d enqueued, %d written + %d dropped: %d records lost uncounted",
				round, sent.Load(), written, dropped, sent.Load()-int64(written+dropped))
		}
	}
}
