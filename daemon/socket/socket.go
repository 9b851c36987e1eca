// Package socket opens the daemon's local Unix socket: from systemd socket
// activation when LISTEN_FDS is set, else by binding the path itself. It
// never steals a live socket and removes a dead one; a bound socket is
// created with the configured mode and group and no wider access at any
// moment.
package socket

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/assayhq/assay/daemon/errdefs"
)

// Listener is an open socket.
type Listener struct {
	net.Listener
	// Activated is true when systemd passed the socket; the daemon then
	// neither chmods nor removes it.
	Activated bool
	Path      string
}

// Activated returns the first Unix listener systemd passed, or nil when the
// daemon was not socket-activated. It clears LISTEN_* from the environment
// so no child inherits them.
func Activated() (*Listener, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return nil, nil
	}
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket: systemd activation: %w", err)
	}
	var found *Listener
	for _, l := range ls {
		if l == nil {
			continue
		}
		if ul, ok := l.(*net.UnixListener); ok && found == nil {
			found = &Listener{Listener: ul, Activated: true, Path: ul.Addr().String()}
			continue
		}
		l.Close()
	}
	if found == nil {
		return nil, fmt.Errorf("socket: LISTEN_FDS is set but no Unix stream socket was passed: %w", errdefs.ErrInvalid)
	}
	return found, nil
}

// Listen binds path with mode and group gid (-1: leave the group). A live
// socket at path (another daemon answers) is an error; a dead one is
// removed; anything that is not a socket is left alone and is an error.
func Listen(path string, mode fs.FileMode, gid int) (*Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("socket: %s exists and is not a socket; refusing to replace it: %w", path, errdefs.ErrConflict)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket: %s is in use by a running process (another assayd?): %w", path, errdefs.ErrConflict)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket: removing stale %s: %w", path, err)
		}
	}
	// Create the socket with no access for anyone but the owner, then widen
	// to the configured mode once the group is right.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("socket: listen %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ul.Close()
			return nil, fmt.Errorf("socket: chown %s to group %d: %w", path, gid, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ul.Close()
		return nil, fmt.Errorf("socket: chmod %s: %w", path, err)
	}
	return &Listener{Listener: ul, Path: path}, nil
}
