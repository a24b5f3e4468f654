package listing

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// File lists a file source: a walk of its tree under the prefix, in the
// byte order of the keys, following no symlinks.
//
// fs.WalkDir visits each directory's entries in name order, which is not
// the byte order of the keys: "a-c" sorts before "a/b" ('-' is 0x2d, '/'
// 0x2f) but the walk gives "a/b" first (it sorts "a" before "a-c"). File
// sorts each directory's entries by name with "/" appended to directories,
// the key every file below them starts with; since no name holds a '/',
// that order is the global byte order. Memory is that of the deepest
// chain of open directories (each read whole), not of the object count.
//
// Symlinks and other non-regular files are not listed: the walk never
// leaves the tree through a link. Names that are not valid UTF-8 cannot be
// written as JSON strings without changing them, so they are skipped and
// counted (Skipped).
type File struct {
	FS     fs.FS  // the source's tree (signer.File's FS: an os.Root)
	Prefix string // the source's prefix, a slash-separated path prefix

	skipped atomic.Int64
}

// Skipped is the number of entries the last List left out because their
// names were not valid UTF-8.
func (f *File) Skipped() int64 { return f.skipped.Load() }

// List implements Lister.
func (f *File) List(ctx context.Context, yield func(Object) error) error {
	f.skipped.Store(0)
	dir, namePrefix := ".", f.Prefix
	if i := strings.LastIndexByte(f.Prefix, '/'); i >= 0 {
		dir, namePrefix = f.Prefix[:i], f.Prefix[i+1:]
	}
	if dir != "." && !fs.ValidPath(dir) {
		return errors.New("list: the prefix is not a clean slash-separated path, so no file key can have it")
	}
	keyBase := ""
	if dir != "." {
		keyBase = dir + "/"
	}
	err := f.walk(ctx, dir, keyBase, namePrefix, yield)
	if errors.Is(err, fs.ErrNotExist) && dir != "." {
		// A prefix no directory holds lists nothing, as a bucket would.
		if _, serr := fs.Stat(f.FS, dir); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
	}
	return err
}

// walk lists dir, whose keys start with keyBase; at the top level only
// names starting with namePrefix belong to the prefix.
func (f *File) walk(ctx context.Context, dir, keyBase, namePrefix string, yield func(Object) error) error {
	entries, err := fs.ReadDir(f.FS, dir)
	if err != nil {
		return err
	}
	type entry struct {
		sortKey string
		e       fs.DirEntry
	}
	list := make([]entry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, namePrefix) {
			continue
		}
		if !utf8.ValidString(name) {
			f.skipped.Add(1)
			continue
		}
		switch t := e.Type(); {
		case t.IsDir():
			list = append(list, entry{name + "/", e})
		case t.IsRegular():
			list = append(list, entry{name, e})
		}
		// Symlinks, devices, pipes and sockets are not objects.
	}
	entries = nil
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, en := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := en.e.Name()
		p := name
		if dir != "." {
			p = dir + "/" + name
		}
		if en.e.IsDir() {
			if err := f.walk(ctx, p, keyBase+name+"/", "", yield); err != nil {
				return err
			}
			continue
		}
		// Stat through f.FS, not DirEntry.Info: the file signer's directory
		// handles carry names relative to its root, which Info would lstat
		// relative to the working directory. Opening follows no link.
		info, err := fs.Stat(f.FS, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed (or replaced by a link) since the directory was read
		}
		if err != nil {
			return err
		}
		key := keyBase + name
		if key == f.Prefix {
			continue // the prefix itself: /v1/s cannot name it
		}
		o := Object{
			Key:          strings.TrimPrefix(key, f.Prefix),
			StorageKey:   key,
			Size:         info.Size(),
			ETag:         FileETag(info),
			LastModified: info.ModTime().UTC(),
		}
		if err := yield(o); err != nil {
			return err
		}
	}
	return nil
}

// FileETag is the ETag the edge answers for a file (internal/edge
// handler.go writes the same): its modification time in nanoseconds and
// its size, base 36, quoted.
func FileETag(fi fs.FileInfo) string {
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 36)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 36)
	b = append(b, '"')
	return string(b)
}
