package connections

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// dirStore follows a directory of connection files. It watches the
// directory itself, not the files, and re-reads the whole directory after
// any event (debounced): that is what survives Kubernetes' ConfigMap and
// Secret volumes, whose files are symlinks NAME.yaml -> ..data/NAME.yaml
// into a timestamped directory that is swapped by renaming a new ..data
// symlink over the old one (the event is on ..data, a dot-file, which
// still triggers the re-read). Dot-files are never read as connections.
type dirStore struct {
	w        *Watcher
	dir      string
	rescanCh chan struct{}
}

func newDirStore(w *Watcher, dir string) *dirStore {
	return &dirStore{w: w, dir: filepath.Clean(dir), rescanCh: make(chan struct{}, 1)}
}

func (d *dirStore) origin() string { return OriginDir }

func (d *dirStore) rescan() {
	select {
	case d.rescanCh <- struct{}{}:
	default:
	}
}

func (d *dirStore) run(ctx context.Context, out chan<- storeUpdate) {
	log := d.w.log.With(zap.String("store", OriginDir))
	var fw *fsnotify.Watcher
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	defer func() {
		if fw != nil {
			fw.Close()
		}
	}()
	watching := false
	// ensureWatch (re)adds the directory watch: it is lost when the
	// directory itself is removed and created again.
	ensureWatch := func() {
		if fw == nil {
			var err error
			if fw, err = fsnotify.NewWatcher(); err != nil {
				log.Warn("cannot create a file watcher; relying on resync", zap.Error(err))
				fw = nil
				return
			}
			events, watchErrs = fw.Events, fw.Errors
		}
		if !watching {
			if err := fw.Add(d.dir); err != nil {
				log.Warn("cannot watch the connections directory; relying on resync and retries", zap.Error(err))
				return
			}
			watching = true
		}
	}
	bo := backoff{min: d.w.opts.MinBackoff, max: d.w.opts.MaxBackoff}
	resync := time.NewTimer(0) // the first read
	defer resync.Stop()
	var debounce <-chan time.Time
	var debounceTimer *time.Timer
	var burstStart time.Time
	quiet := d.w.opts.Debounce
	maxWait := 10 * quiet
	wasUp := false
	read := func() {
		ensureWatch()
		entries, err := d.read()
		d.w.m.result(OriginDir, err)
		if err != nil {
			d.w.m.up.WithLabelValues(OriginDir).Set(0)
			delay := bo.next()
			log.Warn("cannot read the connections directory; the last connections read stay in force", zap.Error(err), zap.Duration("retry_in", delay))
			wasUp = false
			resync.Reset(delay)
			watching = false // re-add once it reads again
			return
		}
		bo.reset()
		if !wasUp {
			log.Info("connections directory read", zap.Int("entries", len(entries)))
		}
		wasUp = true
		d.w.m.up.WithLabelValues(OriginDir).Set(1)
		d.w.m.entries.WithLabelValues(OriginDir).Set(float64(len(entries)))
		resync.Reset(d.w.opts.Config.Resync)
		d.w.publish(ctx, out, OriginDir, entries)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
			read()
		case <-d.rescanCh:
			read()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Name == d.dir && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
				watching = false
			}
			now := time.Now()
			if debounceTimer == nil {
				burstStart = now
				debounceTimer = time.NewTimer(quiet)
				debounce = debounceTimer.C
			} else if now.Sub(burstStart) < maxWait {
				debounceTimer.Reset(quiet)
			}
		case <-debounce:
			debounceTimer, debounce = nil, nil
			read()
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			// An overflow loses events: read everything now.
			log.Warn("file watch error; re-reading the directory", zap.Error(err))
			read()
		}
	}
}

// read reads every connection file in the directory. A file that cannot
// be read becomes an entry with a Problem; a symlink whose target is gone
// (a file being removed from a ConfigMap) is skipped as absent.
func (d *dirStore) read() ([]Entry, error) {
	des, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(des))
	for _, de := range des {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	entries := make([]Entry, 0, len(names))
	for _, file := range names {
		name, format, ok := ParseFileName(file)
		if !ok {
			continue
		}
		path := filepath.Join(d.dir, file)
		fi, err := os.Stat(path) // follows the ..data symlinks
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			entries = append(entries, problemEntry(OriginDir, file, name, problem(ProblemUnreadable, "the file cannot be read")))
			continue
		}
		if fi.IsDir() || !fi.Mode().IsRegular() {
			continue
		}
		data, err := readLimited(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, errTooLarge) {
			entries = append(entries, problemEntry(OriginDir, file, name, problem(ProblemTooLarge, "the spec is larger than %d bytes", MaxSpecBytes)))
			continue
		}
		if err != nil {
			entries = append(entries, problemEntry(OriginDir, file, name, problem(ProblemUnreadable, "the file cannot be read")))
			continue
		}
		entries = append(entries, newEntry(OriginDir, file, name, format, data))
	}
	return entries, nil
}

var errTooLarge = errors.New("too large")

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSpecBytes {
		return nil, errTooLarge
	}
	return data, nil
}
