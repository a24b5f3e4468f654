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
func (f *File) openNoFollow(name string) (fs.File, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH,
	}
	var (
		fd  int
		err error
	)
	for {
		fd, err = unix.Openat2(int(f.dir.Fd()), name, &how)
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), name), nil
	case errors.Is(err, unix.ENOSYS):
		return f.openNoFollowWalk(name)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR),
		errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		// ELOOP: a link on the way; EXDEV: a path out of the root.
		return nil, notExist(name)
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: err}
}
