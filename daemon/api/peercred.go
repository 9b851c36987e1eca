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

// Role is what a caller may do; each role may do what the ones below it
// may.
type Role int

// Roles.
const (
	// RoleRead: reports, scans, events, queries, health, metrics.
	RoleRead Role = iota + 1
	// RoleScan: submit scans (without a policy of their own) and cancel
	// the scans one submitted.
	RoleScan
	// RoleAdmin: import advisories, prune the cache, cancel any scan,
	// submit scans with a policy of their own (which may suppress).
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleScan:
		return "scan"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole reads "read", "scan" or "admin".
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{RoleRead, RoleScan, RoleAdmin} {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (read, scan, admin)", s)
}

// Authorizer decides from peer credentials what a caller may do. It
// returns the caller's role, or an error saying why it may do nothing.
type Authorizer interface {
	Role(p Peer) (Role, error)
}

// RoleGroup gives the members of a group (primary or supplementary) a
// role.
type RoleGroup struct {
	GID  uint32
	Name string // for messages; may be empty
	Role Role
}

// GroupAuthorizer makes root and the daemon's own uid admins, and members
// of Groups what their groups give (the highest, for a member of several):
// by primary gid, or by a supplementary group of the peer process read
// from /proc/<pid>/status.
type GroupAuthorizer struct {
	Groups  []RoleGroup
	SelfUID uint32
	// Proc is the proc file system to read; nil means /proc.
	Proc fs.FS
}

var _ Authorizer = GroupAuthorizer{}

// Role implements Authorizer.
func (a GroupAuthorizer) Role(p Peer) (Role, error) {
	if p.UID == 0 || p.UID == a.SelfUID {
		return RoleAdmin, nil
	}
	if len(a.Groups) == 0 {
		return 0, fmt.Errorf("%w: uid %d may not use the assay API: only root and uid %d may", errdefs.ErrDenied, p.UID, a.SelfUID)
	}
	var role Role
	var supp []uint32
	var suppRead bool
	for _, g := range a.Groups {
		member := p.GID == g.GID
		if !member {
			if !suppRead {
				supp, _ = a.supplementaryGroups(p)
				suppRead = true
			}
			member = slices.Contains(supp, g.GID)
		}
		if member && g.Role > role {
			role = g.Role
		}
	}
	if role > 0 {
		return role, nil
	}
	var names []string
	for _, g := range a.Groups {
		n := fmt.Sprintf("gid %d", g.GID)
		if g.Name != "" {
			n = fmt.Sprintf("%s (gid %d)", g.Name, g.GID)
		}
		names = append(names, n+" for "+g.Role.String())
	}
	return 0, fmt.Errorf("%w: uid %d may not use the assay API: it must be root, uid %d or a member of group %s", errdefs.ErrDenied, p.UID, a.SelfUID, strings.Join(names, ", "))
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
