//go:build !linux

package stream

import (
	"net"
	"time"
)

// peerClosed cannot tell without TCP_INFO: a failed copy is the client's.
// spliceable is false: no splice, no TCP_INFO (see copyBody).
const spliceable = false

func peerClosed(*net.TCPConn) bool { return false }

// sinceLastData cannot tell without TCP_INFO.
func sinceLastData(*net.TCPConn) (time.Duration, bool) { return 0, false }

func idleClean(*net.TCPConn) bool { return true }

func queued(*net.TCPConn) int { return 0 }
