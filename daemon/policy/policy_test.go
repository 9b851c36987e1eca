package policy

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
)

func TestParseExpiry(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
	}{
		// A date: the rule applies through that whole day, in UTC.
		{"2026-12-31", time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{" 2024-02-29 ", time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)},
		{"2026-12-31T18:00:00Z", time.Date(2026, 12, 31, 18, 0, 0, 0, time.UTC)},
		{"2026-12-31T18:00:00+02:00", time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		got, err := ParseExpiry(c.in)
		if err != nil {
			t.Errorf("ParseExpiry(%q): %v", c.in, err)
			continue
		}
		if !got.Equal(c.want) {
			t.Errorf("ParseExpiry(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "31/12/2026", "2026-13-01", "2025-02-29", "2026-12-31 18:00", "tomorrow"} {
		if _, err := ParseExpiry(bad); err == nil {
			t.Errorf("ParseExpiry(%q) accepted a value that is neither a date nor an RFC 3339 time", bad)
		} else if !strings.Contains(err.Error(), "2026-12-31") {
			t.Errorf("ParseExpiry(%q): error %q does not show the accepted forms", bad, err)
		}
	}
}

// A scan request's policy, as the API decodes it.
func TestPolicyJSON(t *testing.T) {
	body := `{
	  "min_severity": "high",
	  "only_fixed": true,
	  "ignore": [
	    {"id": "CVE-2026-57432", "reason": "accepted until the next rebuild", "expires": "2027-01-31"},
	    {"package": "pkg:deb/debian/libpcre2-8-0", "path": "/var/lib/dpkg/**", "reason": "no regex from users", "expires": "2027-01-31T12:00:00+01:00"},
	    {"package": "Debian/apt", "reason": "apt is not run in production", "expires": null}
	  ],
	  "vex": ["/etc/assay/vex/debian.openvex.json"]
	}`
	var p Policy
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.MinSeverity != report.High || !p.OnlyFixed || len(p.Ignore) != 3 || len(p.VEX) != 1 {
		t.Fatalf("decoded %+v", p)
	}
	if e := p.Ignore[0].Expires; e == nil || !e.Equal(time.Date(2027, 1, 31, 23, 59, 59, 999999999, time.UTC)) {
		t.Errorf("date expiry decoded as %v", e)
	}
	if e := p.Ignore[1].Expires; e == nil || !e.Equal(time.Date(2027, 1, 31, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("RFC 3339 expiry decoded as %v", e)
	}
	if p.Ignore[2].Expires != nil {
		t.Errorf("null expiry decoded as %v", p.Ignore[2].Expires)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// What the daemon stores and returns decodes to the same policy.
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var again Policy
	if err := json.Unmarshal(out, &again); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	if !reflect.DeepEqual(normalise(again), normalise(p)) {
		t.Errorf("round trip changed the policy:\n got %+v\nwant %+v", again, p)
	}

	for name, bad := range map[string]string{
		"misspelt key":        `{"ignore":[{"id":"CVE-2026-57432","reason":"r","expire":"2027-01-31"}]}`,
		"bad expiry":          `{"ignore":[{"id":"CVE-2026-57432","reason":"r","expires":"next week"}]}`,
		"expiry not a string": `{"ignore":[{"id":"CVE-2026-57432","reason":"r","expires":20270131}]}`,
	} {
		var p Policy
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: decoded %s without error", name, bad)
		}
	}
}

// normalise makes times comparable with reflect.DeepEqual.
func normalise(p Policy) Policy {
	for i, r := range p.Ignore {
		if r.Expires != nil {
			u := r.Expires.UTC()
			p.Ignore[i].Expires = &u
		}
	}
	return p
}

// The configuration layer decodes the policy section with mapstructure,
// as viper does; the expiry needs its hook, built on ParseExpiry.
func TestPolicyMapstructure(t *testing.T) {
	in := map[string]any{
		"min_severity": "medium",
		"only_fixed":   true,
		"ignore": []any{
			map[string]any{"id": "CVE-2026-57432", "package": "perl-base", "path": "/var/lib/dpkg/status", "reason": "r", "expires": "2027-01-31"},
		},
		"vex": []any{"/etc/assay/a.openvex.json"},
	}
	var p Policy
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      &p,
		ErrorUnused: true,
		DecodeHook: func(from, to reflect.Type, v any) (any, error) {
			if to == reflect.TypeOf(time.Time{}) && from.Kind() == reflect.String {
				return ParseExpiry(v.(string))
			}
			return v, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(in); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2027, 1, 31, 23, 59, 59, 999999999, time.UTC)
	r := p.Ignore[0]
	if p.MinSeverity != report.Medium || !p.OnlyFixed || p.VEX[0] != "/etc/assay/a.openvex.json" ||
		r.ID != "CVE-2026-57432" || r.Package != "perl-base" || r.Path != "/var/lib/dpkg/status" || r.Reason != "r" ||
		r.Expires == nil || !r.Expires.Equal(want) {
		t.Errorf("decoded %+v (rule %+v)", p, r)
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{ID: "CVE-2026-57432", Reason: "accepted"}
	cases := []struct {
		name string
		p    Policy
		want []string // every one must appear in the error
	}{
		{"rule without reason", Policy{Ignore: []Rule{ok, {ID: "CVE-2025-15649"}}},
			[]string{"ignore rule 2 (id CVE-2025-15649)", "needs a reason"}},
		{"blank reason", Policy{Ignore: []Rule{{Package: "perl-base", Reason: "  "}}},
			[]string{"ignore rule 1 (package perl-base)", "needs a reason"}},
		{"rule matching everything", Policy{Ignore: []Rule{ok, ok, {Reason: "too noisy"}}},
			[]string{"ignore rule 3", "needs at least one of id, package or path"}},
		{"bad glob", Policy{Ignore: []Rule{{Path: "/usr/lib/[python3", Reason: "r"}}},
			[]string{"ignore rule 1 (path /usr/lib/[python3)", "not a valid glob"}},
		{"bad purl", Policy{Ignore: []Rule{{Package: "pkg:perl-base", Reason: "r"}}},
			[]string{"ignore rule 1", `"pkg:perl-base" is not a valid purl`}},
		{"bad severity", Policy{MinSeverity: "severe"},
			[]string{"min_severity", `"severe"`}},
		{"empty VEX path", Policy{VEX: []string{"/etc/assay/a.openvex.json", ""}},
			[]string{"vex document 2", "empty"}},
		{"several mistakes", Policy{MinSeverity: "severe", Ignore: []Rule{{ID: "CVE-2025-15649"}}},
			[]string{"min_severity", "ignore rule 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not errdefs.ErrInvalid", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, cerr := c.p.Compile(context.Background()); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Compile: %v, want the Validate error", cerr)
			}
		})
	}

	good := Policy{MinSeverity: "HIGH", OnlyFixed: true, Ignore: []Rule{
		ok,
		{Package: "pkg:deb/debian/perl-base@5.36.0-7%2Bdeb12u3?arch=amd64", Reason: "r"},
		{Path: "/usr/lib/**/*.so", Reason: "r"},
	}}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v): %v", good, err)
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("the empty policy: %v", err)
	}
}

func TestMerge(t *testing.T) {
	exp := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	base := Policy{
		MinSeverity: report.High,
		Ignore:      []Rule{{ID: "CVE-2026-57432", Reason: "configured", Expires: &exp}},
		VEX:         []string{"/etc/assay/a.openvex.json"},
	}
	req := Policy{
		OnlyFixed: true,
		Ignore:    []Rule{{Package: "perl-base", Reason: "requested"}},
		VEX:       []string{"/srv/b.openvex.json", "/etc/assay/a.openvex.json"},
	}
	got := base.Merge(req)
	want := Policy{
		MinSeverity: report.High,
		OnlyFixed:   true,
		Ignore:      []Rule{base.Ignore[0], req.Ignore[0]},
		VEX:         []string{"/etc/assay/a.openvex.json", "/srv/b.openvex.json"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge:\n got %+v\nwant %+v", got, want)
	}
	if got := base.Merge(Policy{MinSeverity: report.Low}); got.MinSeverity != report.Low || got.OnlyFixed {
		t.Errorf("the request's min_severity must win: %+v", got)
	}
	if got := (Policy{OnlyFixed: true}).Merge(Policy{}); !got.OnlyFixed {
		t.Error("a request cannot turn only_fixed off")
	}
	// Merge must not write into the configured policy's slices, which every
	// request shares.
	shared := Policy{Ignore: make([]Rule, 1, 4), VEX: make([]string, 1, 4)}
	shared.Ignore[0] = Rule{ID: "A", Reason: "r"}
	shared.VEX[0] = "/a"
	_ = shared.Merge(Policy{Ignore: []Rule{{ID: "B", Reason: "r"}}, VEX: []string{"/b"}})
	if extra := shared.Ignore[:2][1]; extra.ID != "" {
		t.Errorf("Merge wrote %+v into the configured policy's rules", extra)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/var/lib/dpkg/status", "/var/lib/dpkg/status", true},
		{"var/lib/dpkg/status", "/var/lib/dpkg/status", true},
		{"/var/lib/dpkg/*", "/var/lib/dpkg/status", true},
		{"/var/lib/*", "/var/lib/dpkg/status", false},
		{"/var/lib/**", "/var/lib/dpkg/status", true},
		{"/var/lib/dpkg/**", "/var/lib/dpkg", true}, // ** may stand for nothing
		{"**/status", "/var/lib/dpkg/status", true},
		{"**", "/usr/local/bin/prog", true},
		{"/usr/**/bin/prog", "/usr/local/bin/prog", true},
		{"/usr/**/bin/prog", "/usr/bin/prog", true},
		{"/usr/**/lib/**/*.egg-info", "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info", true},
		{"/usr/**/lib/**/*.dist-info", "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info", false},
		{"/app/node_modules/**/package.json", "/app/node_modules/@babel/core/package.json", true},
		{"/app/node_modules/*/package.json", "/app/node_modules/@babel/core/package.json", false},
		{"/usr/local/bin/p?og", "/usr/local/bin/prog", true},
		{"/usr/local/bin/[a-o]*", "/usr/local/bin/prog", false},
		{"/**/**/**/**/**/**/**/x", "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/y", false},
	}
	for _, c := range cases {
		if got := globMatch(splitPath(c.pattern), splitPath(c.path)); got != c.want {
			t.Errorf("%q on %q = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
