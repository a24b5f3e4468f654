package assets

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// errBudget: the object needs more bytes than Config.MaxBytes allows.
var errBudget = errors.New("needs more bytes than max_bytes allows")

// errPastEnd: a structure points outside the object.
var errPastEnd = errors.New("points past the end of the object")

// ioError is a failure of the RangeReader itself (network, permissions),
// as opposed to bytes that do not parse. Check returns it instead of a problem.
type ioError struct{ err error }

func (e *ioError) Error() string { return "read: " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// objReader serves byte ranges of one object through a single growing
// window, counts every byte fetched, and refuses to fetch past the budget or
// past the object's size. Every parser in this package reads through it.
type objReader struct {
	ctx    context.Context
	r      RangeReader
	size   int64
	budget int64
	read   int64 // bytes fetched from r

	win    []byte
	winOff int64
	// minFetch, when set, makes a fetch outside the window read at least
	// this much (clipped to the object and the budget): walks that jump
	// from header to header get the next few headers in the same request.
	minFetch int64
}

// at returns exactly n bytes at off, fetching what the window lacks. The
// returned slice is only valid until the next call.
func (o *objReader) at(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > o.size || n > o.size-off {
		return nil, errPastEnd
	}
	if n == 0 {
		return nil, nil
	}
	winEnd := o.winOff + int64(len(o.win))
	if off >= o.winOff && off+n <= winEnd {
		return o.win[off-o.winOff : off-o.winOff+n], nil
	}
	if off >= o.winOff && off <= winEnd && len(o.win) > 0 {
		// Extend the window: fetch only the missing tail.
		if err := o.fetch(winEnd, off+n-winEnd, true); err != nil {
			return nil, err
		}
	} else {
		k := n
		if o.minFetch > n {
			k = min(o.minFetch, o.size-off, max(n, o.budget-o.read))
		}
		if err := o.fetch(off, k, false); err != nil {
			return nil, err
		}
	}
	return o.win[off-o.winOff : off-o.winOff+n], nil
}

func (o *objReader) fetch(off, n int64, extend bool) error {
	if o.read+n > o.budget {
		return errBudget
	}
	b, err := o.r.ReadRange(o.ctx, off, n)
	if err != nil {
		return &ioError{err}
	}
	if int64(len(b)) > n {
		b = b[:n]
	}
	o.read += int64(len(b))
	if int64(len(b)) < n {
		return &ioError{fmt.Errorf("short read: got %d of %d bytes at offset %d (object changed or size wrong)", len(b), n, off)}
	}
	if extend {
		o.win = append(o.win, b...)
	} else {
		o.win, o.winOff = b, off
	}
	return nil
}

// stream is an io.Reader (and io.ReaderAt) over the object, for decoders
// that want one: it grows the window in steps that double, so a header of
// k bytes costs O(log k) range requests and at most ~2k bytes.
type stream struct {
	o    *objReader
	pos  int64
	step int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.pos >= s.o.size {
		return 0, io.EOF
	}
	winEnd := s.o.winOff + int64(len(s.o.win))
	if s.pos < s.o.winOff || s.pos >= winEnd {
		// Need more: grow the window by step (doubling), at least len(p).
		want := max(s.step, int64(len(p)))
		s.step *= 2
		if s.pos+want > s.o.size {
			want = s.o.size - s.pos
		}
		if _, err := s.o.at(s.pos, want); err != nil {
			return 0, err
		}
		winEnd = s.o.winOff + int64(len(s.o.win))
	}
	k := copy(p, s.o.win[s.pos-s.o.winOff:winEnd-s.o.winOff])
	s.pos += int64(k)
	return k, nil
}

func (s *stream) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	var err error
	if off+n > s.o.size {
		n, err = s.o.size-off, io.EOF
		if n < 0 {
			return 0, io.EOF
		}
	}
	b, e := s.o.at(off, n)
	if e != nil {
		return 0, e
	}
	return copy(p, b), err
}
