package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/assayhq/assay/daemon/errdefs"
)

// Peer is the process at the other end of a Unix socket connection, as the
// kernel recorded it when the connection was made (SO_PEERCRED).
type Peer struct {
	UID, GID uint32
	PID      int32
}

type peerKey struct{}

// ConnContext is meant for http.Server.ConnContext. For a *net.UnixConn it
// reads the peer's credentials and stores a Peer in the context; for other
// connections, or when the credentials cannot be read, it stores nothing and
// every request on that connection is then refused.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	p, err := peerCred(uc)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFrom returns the peer stored by ConnContext.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// withPeer stores p as ConnContext would; for tests.
func withPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// Authorizer decides from peer credentials whether a caller may use the API.
// It returns nil to allow, or an error saying why not.
type Authorizer interface {
	Allow(p Peer) error
}

// GroupAuthorizer allows root, the daemon's own uid, and, when HasGroup is
// set, members of the group GID: by primary gid, or by a supplementary group
// of the peer process read from /proc/<pid>/status.
type GroupAuthorizer struct {
	GID      uint32
	HasGroup bool
	SelfUID  uint32
	// GroupName, if set, names the group in denial messages.
	GroupName string
	// Proc is the proc file system to read; nil means /proc.
	Proc fs.FS
}

var _ Authorizer = GroupAuthorizer{}

// Allow implements Authorizer.
func (a GroupAuthorizer) Allow(p Peer) error {
	if p.UID == 0 || p.UID == a.SelfUID {
		return nil
	}
	if !a.HasGroup {
		return fmt.Errorf("%w: uid %d may not use the assay API: only root and uid %d may", errdefs.ErrDenied, p.UID, a.SelfUID)
	}
	if p.GID == a.GID {
		return nil
	}
	if groups, err := a.supplementaryGroups(p); err == nil && slices.Contains(groups, a.GID) {
		return nil
	}
	group := fmt.Sprintf("gid %d", a.GID)
	if a.GroupName != "" {
		group = fmt.Sprintf("%s (gid %d)", a.GroupName, a.GID)
	}
	return fmt.Errorf("%w: uid %d may not use the assay API: it must be root, uid %d or a member of group %s", errdefs.ErrDenied, p.UID, a.SelfUID, group)
}

// supplementaryGroups reads the Groups: line of /proc/<pid>/status. The
// Uid: line must show the peer's uid as effective uid, so that a pid reused
// by another user's process since the connection was made is not trusted.
func (a GroupAuthorizer) supplementaryGroups(p Peer) ([]uint32, error) {
	if p.PID <= 0 {
		// The peer is in a pid namespace we cannot see.
		return nil, fmt.Errorf("api: peer pid %d unknown", p.PID)
	}
	proc := a.Proc
	if proc == nil {
		proc = os.DirFS("/proc")
	}
	b, err := fs.ReadFile(proc, strconv.Itoa(int(p.PID))+"/status")
	if err != nil {
		return nil, fmt.Errorf("api: read peer status: %w", err)
	}
	var (
		groups  []uint32
		uidSeen bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		switch key {
		case "Uid":
			// real, effective, saved, file system
			if len(fields) < 2 || fields[1] != strconv.FormatUint(uint64(p.UID), 10) {
				return nil, fmt.Errorf("api: pid %d no longer runs as uid %d", p.PID, p.UID)
			}
			uidSeen = true
		case "Groups":
			for _, f := range fields {
				g, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("api: pid %d status: bad group %q", p.PID, f)
				}
				groups = append(groups, uint32(g))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api: pid %d status: %w", p.PID, err)
	}
	if !uidSeen {
		return nil, fmt.Errorf("api: pid %d status has no Uid line", p.PID)
	}
	return groups, nil
}
