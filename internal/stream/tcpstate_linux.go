package stream

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether c's TCP connection is no longer established
// (the peer reset or closed it): after a splice fails it tells storage's
// side from the client's.
func peerClosed(c *net.TCPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		closed = err != nil || info.State != unix.BPF_TCP_ESTABLISHED
	})
	return closed
}
