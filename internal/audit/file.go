package audit

import (
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// fileSink appends to a file rotated by lumberjack. It decides rotations
// itself, to the byte, before each write, so that a batch is split only
// between lines and no line ever straddles two files; lumberjack's own
// size check (whole MiB) is set above ours and never fires first.
type fileSink struct {
	lj         *lumberjack.Logger
	max        int64 // max_size in bytes
	hardMax    int64 // lumberjack's limit: a write longer than this fails
	size       int64 // bytes in the current file
	lastRotate time.Time
}

func newFileSink(path string, maxSize int64, maxFiles int) (*fileSink, error) {
	if err := checkWritable(path); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit.file: %w", err)
	}
	const mib = 1 << 20
	// Room above max_size for one oversized line in a fresh file.
	ljMB := int((maxSize+mib-1)/mib) + 2
	return &fileSink{
		lj: &lumberjack.Logger{
			Filename:   path,
			MaxSize:    ljMB,
			MaxBackups: maxFiles - 1, // the current file is the other one
		},
		max:     maxSize,
		hardMax: int64(ljMB) * mib,
		size:    st.Size(),
	}, nil
}

// errLineTooLong is a record bigger than the file may grow.
var errLineTooLong = errors.New("a record is longer than the file's size limit allows")

func (f *fileSink) write(buf []byte, ends []int) (int, error) {
	written := 0
	start, i := 0, 0
	var firstErr error
	for i < len(ends) {
		// Take as many whole lines as fit in the current file.
		j := i
		for j < len(ends) && f.size+int64(ends[j]-start) <= f.max {
			j++
		}
		if j == i {
			if f.size > 0 {
				err := f.rotate()
				if err == nil {
					continue
				}
				// Lumberjack could not move the file: keep the lines,
				// in the file we have; the next batch tries again.
				firstErr = cmpErr(firstErr, err)
				j = len(ends)
			} else {
				// One line alone is longer than max_size: it gets a
				// file of its own, up to lumberjack's limit.
				j = i + 1
				if int64(ends[i]-start) > f.hardMax {
					firstErr = cmpErr(firstErr, errLineTooLong)
					start, i = ends[i], j
					continue
				}
			}
		}
		n, err := f.lj.Write(buf[start:ends[j-1]])
		f.size += int64(n)
		if err != nil {
			for k := i; k < j && ends[k]-start <= n; k++ {
				written++
			}
			firstErr = cmpErr(firstErr, err)
		} else {
			written += j - i
		}
		start, i = ends[j-1], j
	}
	return written, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// rotate moves the current file aside. Lumberjack names rotated files by
// the millisecond: two rotations within one would give both the same
// name and the second rename would replace the first file, so a rotation
// waits for the next millisecond if it must.
func (f *fileSink) rotate() error {
	if d := 2*time.Millisecond - time.Since(f.lastRotate); d > 0 {
		time.Sleep(d)
	}
	err := f.lj.Rotate()
	f.lastRotate = time.Now()
	if err == nil {
		f.size = 0
	}
	return err
}

func (f *fileSink) close() error { return f.lj.Close() }
