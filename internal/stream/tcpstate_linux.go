package stream

import (
	"net"
	"time"

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

// sinceLastData is how long ago c last received data (TCP_INFO's
// last_data_recv, in milliseconds).
func sinceLastData(c *net.TCPConn) (time.Duration, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var d time.Duration
	ok := false
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			d, ok = time.Duration(info.Last_data_recv)*time.Millisecond, true
		}
	})
	return d, ok
}
