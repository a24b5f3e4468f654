package signer

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openNoFollow opens name beneath the root with openat2, following no
// symbolic link in any component (RESOLVE_NO_SYMLINKS) and never leaving
// the root (RESOLVE_BENEATH): the kernel checks what the walk would, with
// no window between check and open. Kernels before 5.6 lack openat2; the
// Lstat walk serves there.
//
// The open is O_NONBLOCK and anything but a regular file or a directory
// is refused: opening a FIFO planted under the root would otherwise block
// the request (and its stream slot) until a writer comes. The root's
// descriptor is used inside SyscallConn().Control, which holds it open
// for the call: a File closed meanwhile (a source replaced on reload)
// fails the open instead of letting openat2 use a reused descriptor
// number, which could name another directory.
func (f *File) openNoFollow(name string) (fs.File, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH,
	}
	rc, err := f.dir.SyscallConn()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrClosed}
	}
	fd := -1
	cerr := rc.Control(func(dir uintptr) {
		for {
			fd, err = unix.Openat2(int(dir), name, &how)
			if err != unix.EINTR && err != unix.EAGAIN {
				return
			}
		}
	})
	if cerr != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrClosed}
	}
	switch {
	case err == nil:
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return nil, notExist(name)
		}
		return os.NewFile(uintptr(fd), name), nil
	case errors.Is(err, unix.ENOSYS):
		return f.openNoFollowWalk(name)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR),
		errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENXIO):
		// ELOOP: a link on the way; EXDEV: a path out of the root;
		// ENXIO: a socket or a FIFO with no writer.
		return nil, notExist(name)
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: err}
}
