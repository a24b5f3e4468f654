//go:build !linux

package stream

import (
	"net"
	"time"
)

// peerClosed cannot tell without TCP_INFO: a failed copy is the client's.
func peerClosed(*net.TCPConn) bool { return false }

// sinceLastData cannot tell without TCP_INFO.
func sinceLastData(*net.TCPConn) (time.Duration, bool) { return 0, false }
