//go:build !linux

package signer

import "io/fs"

// openNoFollow opens name beneath the root, following no symbolic link:
// without openat2, a component-by-component Lstat walk, os.Root keeping
// the open inside the root.
func (f *File) openNoFollow(name string) (fs.File, error) { return f.openNoFollowWalk(name) }
