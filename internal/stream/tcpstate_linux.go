package stream

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether c's TCP connection is no longer established
// (the peer reset or closed it): after a splice fails it tells storage's
// side from the client's.
// spliceable: the body copy may splice (see copyBody).
const spliceable = true

func peerClosed(c *net.TCPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		closed = err != nil || info.State == unix.BPF_TCP_CLOSE // reset (a FIN is CLOSE_WAIT: storage done, the failure is the client's)
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

// idleClean reports whether an idle connection has nothing to read and is
// not closed by its peer (a non-blocking MSG_PEEK).
func idleClean(c *net.TCPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	clean := false
	var b [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		clean = err == unix.EAGAIN
		return true
	})
	return clean
}

// queued is how many received bytes wait to be read on c (SIOCINQ).
func queued(c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}
