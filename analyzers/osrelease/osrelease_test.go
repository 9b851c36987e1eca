package osrelease_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/analyzers/osrelease"
)

// The os-release of Ubuntu 22.04.4 and 24.10 and of Debian testing, as
// their base-files packages ship them (transcribed: no Ubuntu image is
// available offline). Debian 12's is a real file under testdata/.
const (
	ubuntu2204 = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
`
	ubuntu2410 = `PRETTY_NAME="Ubuntu 24.10"
NAME="Ubuntu"
VERSION_ID="24.10"
VERSION="24.10 (Oracular Oriole)"
VERSION_CODENAME=oracular
ID=ubuntu
ID_LIKE=debian
`
	debianTesting = `PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
`
	mint = `NAME="Linux Mint"
VERSION="21.3 (Virginia)"
ID=linuxmint
ID_LIKE="ubuntu debian"
VERSION_ID="21.3"
`
)

func realDebian12(t testing.TB) string {
	b, err := os.ReadFile("testdata/debian-12-minbase/os-release")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEcosystem(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"debian 12 (real)", realDebian12(t), "Debian:12"},
		{"debian testing", debianTesting, "Debian"},
		{"ubuntu 22.04", ubuntu2204, "Ubuntu:22.04:LTS"},
		{"ubuntu 24.10", ubuntu2410, "Ubuntu:24.10"},
		{"ubuntu 24.04 without VERSION", "ID=ubuntu\nVERSION_ID=24.04\n", "Ubuntu:24.04:LTS"},
		{"ubuntu 23.04 without VERSION", "ID=ubuntu\nVERSION_ID=23.04\n", "Ubuntu:23.04"},
		{"ubuntu without a release", "ID=ubuntu\n", "Ubuntu"},
		{"another distribution", mint, "Linuxmint:21.3"},
		{"upper-case ID", "ID=Debian\nVERSION_ID=11\n", "Debian:11"},
		{"no ID", "NAME=Nothing\n", ""},
	} {
		kv, err := osrelease.Parse(strings.NewReader(tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := osrelease.FromFields(kv).Ecosystem(); got != tc.want {
			t.Errorf("%s: Ecosystem() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	in := `# a comment
  # an indented comment

ID=debian
VERSION_ID="12"
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
SINGLE='it is $HOME "quoted"'
ESCAPED="a \"quote\", a \\ and a \$"
BARE=word\ with\ escapes
TRAILING=bare # comment
UNCLOSED="no end
EMPTY=
NO_EQUALS
9BAD=x
BAD-NAME=x
 SPACED = x
INVALID_UTF8="` + "\xff" + `"
ID=later-wins
`
	kv, err := osrelease.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ID":           "later-wins",
		"VERSION_ID":   "12",
		"PRETTY_NAME":  "Debian GNU/Linux 12 (bookworm)",
		"SINGLE":       `it is $HOME "quoted"`,
		"ESCAPED":      `a "quote", a \ and a $`,
		"BARE":         "word with escapes",
		"TRAILING":     "bare",
		"UNCLOSED":     "no end",
		"EMPTY":        "",
		"INVALID_UTF8": "\uFFFD",
	}
	if !maps.Equal(kv, want) {
		t.Errorf("Parse =\n%q\nwant\n%q", kv, want)
	}
}

// FuzzParseOSRelease checks that Parse never fails on a short input, that
// names are valid and values valid UTF-8, and that what it returns, written
// back as os-release, parses to the same.
func FuzzParseOSRelease(f *testing.F) {
	f.Add(realDebian12(f))
	for _, s := range []string{ubuntu2204, ubuntu2410, debianTesting, mint, "A='x\n", `B="\`, "C=\\", "=x\n#\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		kv, err := osrelease.Parse(strings.NewReader(in))
		if err != nil {
			if len(in) < 64<<10 {
				t.Fatalf("Parse of %d bytes: %v", len(in), err)
			}
			return
		}
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(kv)) {
			v := kv[k]
			if k == "" || strings.ContainsAny(k, "= \t\n\"'#") {
				t.Fatalf("invalid name %q", k)
			}
			if !strings.Contains(in, k+"=") {
				t.Fatalf("name %q is not in the input", k)
			}
			if strings.ContainsRune(v, '\n') || !utf8Valid(v) {
				t.Fatalf("value %q of %s", v, k)
			}
			r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
			b.WriteString(k + `="` + r.Replace(v) + "\"\n")
		}
		again, err := osrelease.Parse(strings.NewReader(b.String()))
		if err != nil || !maps.Equal(kv, again) {
			t.Fatalf("round trip: %q → %q → %q, %v", in, kv, again, err)
		}
		_ = osrelease.FromFields(kv).Ecosystem()
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
