package osrelease_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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

func mkroot(t *testing.T, files map[string]string) *os.Root {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func TestRead(t *testing.T) {
	debian := realDebian12(t)
	for _, tc := range []struct {
		name     string
		files    map[string]string
		wantEco  string
		wantPath string
		wantErr  error
	}{
		{"relative link, as in Debian's image", map[string]string{"etc/os-release": "->../usr/lib/os-release", "usr/lib/os-release": debian}, "Debian:12", "/etc/os-release", nil},
		{"absolute link", map[string]string{"etc/os-release": "->/usr/lib/os-release", "usr/lib/os-release": ubuntu2204}, "Ubuntu:22.04:LTS", "/etc/os-release", nil},
		{"/etc wins over /usr/lib", map[string]string{"etc/os-release": ubuntu2410, "usr/lib/os-release": debian}, "Ubuntu:24.10", "/etc/os-release", nil},
		{"only /usr/lib", map[string]string{"usr/lib/os-release": debian}, "Debian:12", "/usr/lib/os-release", nil},
		{"dangling /etc link falls back", map[string]string{"etc/os-release": "->/nowhere", "usr/lib/os-release": debian}, "Debian:12", "/usr/lib/os-release", nil},
		{"a link out of the image finds nothing", map[string]string{"etc/os-release": "->../../../../../../etc/passwd"}, "", "", fs.ErrNotExist},
		{"a link out of the image stays in it, here a loop", map[string]string{"etc/os-release": "->../../../../../../etc/os-release"}, "", "/etc/os-release", syscall.ELOOP},
		{"neither", map[string]string{"etc/hostname": "x"}, "", "", fs.ErrNotExist},
		{"loop", map[string]string{"etc/os-release": "->os-release", "usr/lib/os-release": debian}, "", "/etc/os-release", syscall.ELOOP},
		{"too large", map[string]string{"etc/os-release": debian + strings.Repeat("#", osrelease.MaxBytes)}, "", "/etc/os-release", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := osrelease.Read(mkroot(t, tc.files), 0)
			if tc.name == "too large" {
				if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
					t.Errorf("Read = %+v, %v", r, err)
				}
				return
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || r.Path != tc.wantPath {
					t.Errorf("Read = %+v, %v; want %v at %q", r, err, tc.wantErr, tc.wantPath)
				}
				return
			}
			if err != nil || r.Ecosystem() != tc.wantEco || r.Path != tc.wantPath {
				t.Errorf("Read = %q at %q, %v; want %q at %q", r.Ecosystem(), r.Path, err, tc.wantEco, tc.wantPath)
			}
		})
	}
}

func TestReadHonoursASmallerLimit(t *testing.T) {
	root := mkroot(t, map[string]string{"etc/os-release": realDebian12(t)})
	if _, err := osrelease.Read(root, 10); err == nil {
		t.Error("a 267-byte os-release was read with a limit of 10 bytes")
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
