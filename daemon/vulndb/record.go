package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/assayhq/assay/daemon/match"
	"strings"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
)

// maxKeyPart bounds an id, ecosystem, package name or alias: they become
// parts of bbolt keys, and no real one comes near this.
const maxKeyPart = 1024

// unmarshalOSV parses OSV JSON. Unknown fields and enum values are
// discarded: newer schema versions add them, and a record we can partly
// understand is better than none.
var unmarshalOSV = protojson.UnmarshalOptions{DiscardUnknown: true}

// record is one verified OSV record, ready to be stored.
type record struct {
	id        string
	raw       []byte // the record as received, compacted
	modified  time.Time
	withdrawn bool
	packages  []pkgKey // distinct (ecosystem, normalized name)
	aliases   []string // distinct aliases and upstream ids, the record's own id excluded
	seq       int      // position in the input, set by batch.collect
}

// pkgKey is one index entry's package.
type pkgKey struct {
	Ecosystem string `json:"e"`
	Name      string `json:"n"` // normalized
}

// parseRecord verifies raw as one OSV record and extracts what the indexes
// need. Its errors say what is wrong with the record, for the import report.
func parseRecord(raw []byte) (*record, error) {
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	compact := buf.Bytes()
	if len(compact) == 0 || compact[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	v := &osvschema.Vulnerability{}
	if err := unmarshalOSV.Unmarshal(compact, v); err != nil {
		return nil, fmt.Errorf("not an OSV record: %w", err)
	}
	id := v.GetId()
	if id == "" {
		return nil, errors.New("OSV record without an id")
	}
	if err := checkKeyPart("id", id); err != nil {
		return nil, err
	}
	r := &record{id: id, raw: compact, withdrawn: v.GetWithdrawn() != nil}
	if m := v.GetModified(); m != nil && m.IsValid() {
		r.modified = m.AsTime()
	}
	seenPkg := map[pkgKey]bool{}
	for _, a := range v.GetAffected() {
		eco, name := a.GetPackage().GetEcosystem(), a.GetPackage().GetName()
		if eco == "" || name == "" {
			continue // e.g. an affected entry with only GIT ranges
		}
		if err := checkKeyPart("ecosystem", eco); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if err := checkKeyPart("package name", name); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		k := pkgKey{eco, match.NormalizeName(eco, name)}
		if !seenPkg[k] {
			seenPkg[k] = true
			r.packages = append(r.packages, k)
		}
	}
	seenAlias := map[string]bool{id: true}
	for _, list := range [][]string{v.GetAliases(), v.GetUpstream()} {
		for _, a := range list {
			if a == "" || seenAlias[a] {
				continue
			}
			if err := checkKeyPart("alias", a); err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			seenAlias[a] = true
			r.aliases = append(r.aliases, a)
		}
	}
	return r, nil
}

func checkKeyPart(what, s string) error {
	if len(s) > maxKeyPart {
		return fmt.Errorf("%s of %d bytes is longer than %d", what, len(s), maxKeyPart)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q contains a NUL character", what, s)
	}
	return nil
}

// decodeRecord parses a stored record for callers.
func decodeRecord(id string, raw []byte) (*osvschema.Vulnerability, error) {
	v := &osvschema.Vulnerability{}
	if err := unmarshalOSV.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("vulndb: stored record %s is unreadable (database damaged?): %w", id, err)
	}
	return v, nil
}
