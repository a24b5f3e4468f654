package load

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits linear sub-buckets per
// power of two, so a recorded value is off by at most 1/64 (1.6%), the way
// HdrHistogram trades precision for bounded memory.
const (
	subBits  = 6
	subCount = 1 << subBits
	// maxExp bounds the histogram at 2^(maxExp+subBits+1) ns, about 2.4 hours.
	maxExp  = 36
	nBucket = (maxExp + 2) * subCount
)

// Hist is a log-linear latency histogram of nanosecond values with fixed,
// small memory (about 20 KB), safe for one goroutine; merge per-worker
// histograms with Merge.
type Hist struct {
	counts [nBucket]uint64
	n      uint64
	sum    uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	i := (e+1)*subCount + int(v>>uint(e)) - subCount
	if i >= nBucket {
		return nBucket - 1
	}
	return i
}

// upperOf is the largest value that lands in bucket i.
func upperOf(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	e := i/subCount - 1
	sub := uint64(i%subCount) + subCount
	return (sub+1)<<uint(e) - 1
}

// Record adds one latency.
func (h *Hist) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	v := uint64(d)
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Count is the number of recorded values.
func (h *Hist) Count() uint64 { return h.n }

// Max is the largest recorded value, exactly.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average recorded value.
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value below which a fraction q of the recorded
// values lie, as the upper edge of its bucket (never above Max).
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			v := upperOf(i)
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
