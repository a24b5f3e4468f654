package stream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// spliceBody copies a Content-Length body fetched by the h1 client: the
// bytes the header read brought along, then the rest straight from
// storage's socket through w's ReadFrom. net/http's ReadFrom on a plain
// TCP connection splices from a *net.TCPConn, so the body never passes
// through the edge's memory (no copy buffer is held either). It goes out
// buffer_size at a time; before each chunk the write deadline moves
// (write_timeout, as in copyBody) and storage's read deadline too
// (response_header_timeout): a chunk that times out on storage's side
// after some bytes came is not yet a stall: the kernel says how long
// storage has been silent (TCP_INFO), and the copy goes on with what is
// left of the timeout, so storage silent for response_header_timeout is
// aborted then, as in copyBody (within twice that where TCP_INFO is
// missing).
// Failures after the status are aborts, as in copyBody: the client's
// (gone, too slow) quietly, storage's (closed early, silent, reset)
// counted and logged.
func (p *Proxy) spliceBody(w http.ResponseWriter, rf io.ReaderFrom, r *http.Request, source string, resp *http.Response, hb *h1Body, cancel context.CancelCauseFunc) error {
	hc := hb.hc
	fetch := resp.Request.Context()
	idle := p.cfg.ResponseHeaderTimeout
	cl := resp.ContentLength
	if hc.br.Buffered() == 0 {
		// The status goes out once storage has sent a first byte.
		_ = hc.setDeadline(time.Now().Add(idle), true)
		if _, err := hc.br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // closed before its Content-Length
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() && fetch.Err() == nil {
				cancel(errStalled)
			}
			return p.bodyError(r.Context(), fetch, err)
		}
	}
	first := min(int64(hc.br.Buffered()), cl)
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	deadlines := p.writeTimeout > 0
	var wdl time.Time
	moveDeadlines := func(read time.Duration) {
		now := time.Now()
		if deadlines {
			wdl = now.Add(p.writeTimeout)
			if rc.SetWriteDeadline(wdl) != nil {
				deadlines, wdl = false, time.Time{}
			}
		}
		_ = hc.setDeadline(now.Add(read), true)
	}
	moveDeadlines(idle)
	var sent int64
	if first > 0 {
		b, _ := hc.br.Peek(int(first))
		nw, err := w.Write(b)
		sent += int64(nw)
		p.bytes.Add(float64(nw))
		if err == nil {
			// The status line and the first bytes go out now, whatever
			// comes next (ReadFrom would flush them too, but not a
			// body that breaks before its first splice).
			err = rc.Flush()
		}
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		_, _ = hc.br.Discard(int(first))
	}
	if sent == cl && hc.br.Buffered() == 0 {
		hb.eof = true
		hc.detach()
		return nil
	}
	lr := &io.LimitedReader{R: hc.c}
	chunk := int64(p.cfg.BufferSize)
	read := idle // the next chunk's wait for storage
	for sent < cl {
		if hc.br.Buffered() != 0 {
			// More than the body came with the headers (never from a
			// sane server): not a connection to read on.
			p.abort(r.Context(), fetch, source, sent, errShortBody)
		}
		if sent > first {
			moveDeadlines(read)
			read = idle
		}
		lr.N = min(cl-sent, chunk)
		want := lr.N
		n, err := rf.ReadFrom(lr)
		sent += n
		p.bytes.Add(float64(n))
		if err == nil {
			if n < want {
				// Storage closed before its Content-Length.
				p.abort(r.Context(), fetch, source, sent, errShortBody)
			}
			continue
		}
		if r.Context().Err() != nil || fetch.Err() != nil {
			p.abort(r.Context(), fetch, source, sent, err)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if !wdl.IsZero() && !time.Now().Before(wdl) {
				// The client stopped reading: nothing worth a warning.
				panic(http.ErrAbortHandler)
			}
			if n > 0 {
				// Storage sent within this chunk (the deadline also ran
				// while the client took the bytes): silent for how long?
				quiet, ok := sinceLastData(hc.c)
				if !ok {
					continue // cannot tell: one more window (twice the timeout at most)
				}
				if quiet < idle {
					read = idle - quiet
					continue
				}
				if queued(hc.c) > 0 {
					// Bytes wait in the socket: the edge was waiting for
					// the client, not for storage.
					continue
				}
			}
			cancel(errStalled)
			p.abort(r.Context(), fetch, source, sent, errStalled)
		}
		if peerClosed(hc.c) {
			p.abort(r.Context(), fetch, source, sent, err) // storage reset the connection
		}
		panic(http.ErrAbortHandler) // the client's side failed
	}
	hb.eof = true
	hc.detach()
	return nil
}
