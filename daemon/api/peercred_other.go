//go:build !linux

package api

import (
	"errors"
	"net"
)

// The daemon runs on Linux only; elsewhere no peer is ever allowed.
func peerCred(*net.UnixConn) (Peer, error) {
	return Peer{}, errors.New("api: peer credentials are only read on linux")
}
