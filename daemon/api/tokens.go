package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/policy"
)

// Tokens are the bearer tokens of the TCP API, each with a role and
// maybe an expiry. Only their SHA-256 is kept.
type Tokens struct {
	entries []tokenEntry
	// Now is the clock expiries are checked against; time.Now when nil.
	Now func() time.Time
}

type tokenEntry struct {
	sum     [sha256.Size]byte
	role    Role
	expires time.Time // zero: never
	line    int
}

// minTokenLen is the shortest token accepted.
const minTokenLen = 16

// LoadTokens reads a tokens file (ParseTokens).
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api: tokens: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("api: tokens %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads one token a line: ROLE TOKEN [EXPIRES], ROLE read,
// scan or admin, TOKEN at least 16 characters, EXPIRES a date
// (2006-01-02, the end of that day UTC) or an RFC 3339 time. Blank lines
// and lines starting with # are skipped.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("line %d: want ROLE TOKEN [EXPIRES]", n)
		}
		role, err := ParseRole(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(f[1]) < minTokenLen {
			return nil, fmt.Errorf("line %d: the token is shorter than %d characters", n, minTokenLen)
		}
		e := tokenEntry{sum: sha256.Sum256([]byte(f[1])), role: role, line: n}
		if len(f) == 3 {
			if e.expires, err = policy.ParseExpiry(f[2]); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		}
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.entries) == 0 {
		return nil, fmt.Errorf("no token in it")
	}
	return t, nil
}

// Role is the role of a bearer token; an unknown or expired one is
// errdefs.ErrDenied. Every entry is compared, in constant time.
func (t *Tokens) Role(token string) (Role, error) {
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	var found *tokenEntry
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) == 1 {
			found = &t.entries[i]
		}
	}
	switch {
	case found == nil:
		return 0, fmt.Errorf("%w: unknown token", errdefs.ErrDenied)
	case !found.expires.IsZero() && now.After(found.expires):
		return 0, fmt.Errorf("%w: the token (line %d of the tokens file) expired at %s", errdefs.ErrDenied, found.line, found.expires.UTC().Format(time.RFC3339))
	}
	return found.role, nil
}

type tcpKey struct{}

// TCPConnContext marks requests of a TCP listener, which authenticate with
// a bearer token instead of peer credentials (http.Server.ConnContext).
func TCPConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, tcpKey{}, true)
}

func overTCP(ctx context.Context) bool { v, _ := ctx.Value(tcpKey{}).(bool); return v }
