package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/assayhq/assay/daemon/scans"
)

// event is the part of a distribution notification (notifications/event.go)
// the webhook reads. Other fields (timestamp, size, actor, source, ...) are
// not decoded, so their shape cannot make an event invalid.
type event struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// parseEnvelope checks the envelope shape {"events":[...]} and returns the
// events undecoded, so that one bad event does not fail the envelope.
func parseEnvelope(b []byte) ([]json.RawMessage, error) {
	var env struct {
		Events *[]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("webhook: decode envelope: %w", err)
	}
	if env.Events == nil {
		return nil, errors.New(`webhook: decode envelope: want {"events":[...]}`)
	}
	return *env.Events, nil
}

func parseEvent(raw json.RawMessage) (*event, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("webhook: event is not a JSON object")
	}
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("webhook: decode event: %w", err)
	}
	return &ev, nil
}

type kind int

const (
	kindOther kind = iota
	kindManifest
	kindSchema1
)

// manifestKind sorts a target media type. Only pushes of these manifests and
// indexes become scans; an index is scanned for the daemon's default
// platform.
func manifestKind(mediaType string) kind {
	mt, _, _ := strings.Cut(mediaType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json":
		return kindManifest
	case "application/vnd.docker.distribution.manifest.v1+prettyjws",
		"application/vnd.docker.distribution.manifest.v1+json":
		return kindSchema1
	}
	return kindOther
}

func validDigest(d string) bool { return scans.CheckDigest(d) == nil }

// repositoryRE is distribution's repository path grammar (reference/regexp.go):
// lowercase alphanumeric components joined by ".", "_", "__" or dashes,
// separated by "/". go-containerregistry only checks the characters, which
// lets "..", "a//b" or a leading "/" through.
var repositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// validRepository checks that <addr>/<repo> names repository repo on
// registry addr: a first component of repo that looks like a host stays part
// of the path, and nothing is rewritten.
func validRepository(addr, repo string) error {
	if !repositoryRE.MatchString(repo) {
		return fmt.Errorf("webhook: repository %q is not a valid repository path", clip(repo))
	}
	r, err := name.NewRepository(addr+"/"+repo, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("webhook: repository %q: %w", clip(repo), err)
	}
	if r.RepositoryStr() != repo {
		return fmt.Errorf("webhook: repository %q on %s reads as %q", clip(repo), addr, r.RepositoryStr())
	}
	return nil
}

// validAuthority reports whether s is a bare host[:port].
func validAuthority(s string) bool {
	if s == "" {
		return false
	}
	u, err := url.Parse("//" + s)
	return err == nil && u.Host == s && u.User == nil
}

// validPullAddress checks a mapped address: a host[:port] that image
// reference parsers take as a registry, i.e. "localhost" or a name with a
// "." or ":" (otherwise "<addr>/<repo>" would read as a Docker Hub path).
func validPullAddress(addr string) error {
	if !validAuthority(addr) {
		return fmt.Errorf("pull address %q is not host[:port]", addr)
	}
	if addr != "localhost" && !strings.ContainsAny(addr, ".:") {
		return fmt.Errorf("pull address %q does not read as a registry in a reference: add a domain or a port", addr)
	}
	if _, err := name.NewRegistry(addr, name.StrictValidation); err != nil {
		return fmt.Errorf("pull address %q: %w", addr, err)
	}
	return nil
}
