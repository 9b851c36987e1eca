package ruby

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// imageRoot is the real test image (see testdata/README.md).
var imageRoot = filepath.Join("testdata", "image")

// collect runs the analyzer over gRPC in this process, as assayd would
// over its socket.
func collect(t *testing.T, req sdk.Request) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	c := sdktest.Connect(t, Analyzer{})
	items, err := sdktest.Collect(t.Context(), c, req)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	for _, it := range items {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		switch {
		case it.Package != nil:
			pkgs = append(pkgs, *it.Package)
		case it.Warning != nil:
			warnings = append(warnings, *it.Warning)
		default:
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return pkgs, warnings
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, Analyzer{})
}

func TestDescribe(t *testing.T) {
	d, err := sdktest.Connect(t, Analyzer{}).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "ruby" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"RubyGems"}) ||
		d.Resources != (sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: 5 * time.Minute}) {
		t.Errorf("Describe = %+v", d)
	}
}

// readLines reads a testdata file of space-separated fields, one record a
// line.
func readLines(t *testing.T, name string, fields int) [][]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != fields {
			t.Fatalf("%s: bad line %q", name, sc.Text())
		}
		out = append(out, fs)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("%s has only %d lines", name, len(out))
	}
	return out
}

// The specifications of real Debian packages (ruby-rack, rake,
// libruby3.1's default and bundled gems, ...) and of gems that RubyGems
// itself installed (one built for a platform, one prerelease): exactly
// what RubyGems' Gem::Specification.load finds in each file, each owned by
// the Debian package whose contents list it (dpkg-deb), if any.
func TestImage(t *testing.T) {
	var want []string
	for _, l := range readLines(t, filepath.Join("testdata", "want.txt"), 4) {
		want = append(want, strings.Join(l, " "))
	}
	owners := map[string]string{}
	for _, l := range readLines(t, filepath.Join("testdata", "owners.txt"), 2) {
		owners[l[0]] = l[1]
	}

	pkgs, warnings := collect(t, sdk.Request{Root: imageRoot, MaxFiles: 10_000, MaxFileBytes: 1 << 20})
	if len(warnings) > 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	var got []string
	for _, p := range pkgs {
		if len(p.Locations) != 1 {
			t.Fatalf("%s: locations %q", p.Name, p.Locations)
		}
		loc := p.Locations[0]
		platform := "ruby"
		if _, q, ok := strings.Cut(p.PURL, "?platform="); ok {
			platform = q
		}
		got = append(got, loc+" "+p.Name+" "+p.Version+" "+platform)
		if p.Ecosystem != "RubyGems" {
			t.Errorf("%s: ecosystem %q", loc, p.Ecosystem)
		}
		if w := owners[loc]; p.Owner != w {
			t.Errorf("%s: owner %q, want %q", loc, p.Owner, w)
		}
		wantPURL := "pkg:gem/" + p.Name + "@" + p.Version
		if platform != "ruby" {
			wantPURL += "?platform=" + platform
		}
		if p.PURL != wantPURL {
			t.Errorf("%s: purl %q, want %q", loc, p.PURL, wantPURL)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant (Gem::Specification.load)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A check of the data itself: the owners cover the Debian gems, the
	// default gems belong to libruby3.1, the platform gem is there.
	if owners["/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec"] != "ruby-rack" ||
		owners["/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec"] != "libruby3.1" ||
		!slices.Contains(got, "/usr/local/bundle/specifications/demo_native-0.1.0-x86_64-linux.gemspec demo_native 0.1.0 x86_64-linux") {
		t.Error("the test data lacks what this test is about")
	}
}

func TestIsSpecification(t *testing.T) {
	for name, want := range map[string]bool{
		"usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec":         true,
		"/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec": true,
		"usr/local/bundle/specifications/rack-3.1.8.gemspec":                 true,
		"usr/local/bundle/specifications/.gemspec":                           false,
		"usr/local/bundle/gems/rack-3.1.8/rack.gemspec":                      false,
		"srv/app/rack.gemspec":                                               false,
		"usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec.bak":     false,
		"usr/lib/ruby/gems/3.1.0/specifications/default/x/y.gemspec":         false,
		"specifications/a.gemspec":                                           true,
	} {
		if got := IsSpecification(name); got != want {
			t.Errorf("IsSpecification(%q) = %v", name, got)
		}
	}
}

func TestPURL(t *testing.T) {
	for _, tc := range []struct {
		g    Gemspec
		want string
	}{
		{Gemspec{"rack", "2.2.22", "ruby"}, "pkg:gem/rack@2.2.22"},
		{Gemspec{"nokogiri", "1.16.0", "x86_64-linux"}, "pkg:gem/nokogiri@1.16.0?platform=x86_64-linux"},
		{Gemspec{"demo-pre", "2.0.0.rc1", "ruby"}, "pkg:gem/demo-pre@2.0.0.rc1"},
	} {
		if got := purl(tc.g); got != tc.want {
			t.Errorf("purl(%+v) = %q, want %q", tc.g, got, tc.want)
		}
	}
}

func TestParseGemspec(t *testing.T) {
	const enc = "# -*- encoding: utf-8 -*-\n"
	for _, tc := range []struct {
		name string
		in   string
		want Gemspec
		bad  bool
	}{
		{name: "stub", in: enc + "# stub: rack 2.2.22 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"other\".freeze\n",
			want: Gemspec{"rack", "2.2.22", "ruby"}},
		{name: "stub with platform and extensions", in: enc + "# stub: nokogiri 1.13.10 x86_64-linux lib\n# stub: ext/nokogiri/extconf.rb\n",
			want: Gemspec{"nokogiri", "1.13.10", "x86_64-linux"}},
		{name: "stub with CRLF", in: enc + "# stub: a 1.0 ruby lib\r\n", want: Gemspec{"a", "1.0", "ruby"}},
		// The RubyGems 1.3 layout: no stub line, %q{} strings.
		{name: "legacy", in: enc + "\nGem::Specification.new do |s|\n  s.name = %q{oldgem}\n  s.version = \"1.0.4.20101015113653\"\n\n  s.required_rubygems_version = Gem::Requirement.new(\">= 0\") if s.respond_to? :required_rubygems_version=\n  s.date = %q{2010-10-15}\nend\n",
			want: Gemspec{"oldgem", "1.0.4.20101015113653", "ruby"}},
		{name: "legacy without encoding line", in: "Gem::Specification.new do |s|\n  s.name = %q{keyed}\n  s.version = %q{0.4.0}\n  s.platform = %q{java}\nend\n",
			want: Gemspec{"keyed", "0.4.0", "java"}},
		{name: "block form", in: "Gem::Specification.new { |spec|\n  spec.name    = 'a_b-c.d'\n  spec.version = Gem::Version.new(\"3.0.0.pre.1\")\n  spec.platform = Gem::Platform::RUBY\n}\n",
			want: Gemspec{"a_b-c.d", "3.0.0.pre.1", "ruby"}},
		{name: "first assignment counts", in: "Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = \"1\"\n  s.name = \"b\"\n  s.version = VERSION\nend\n",
			want: Gemspec{"a", "1", "ruby"}},
		{name: "invalid stub falls back", in: enc + "# stub: a not-a-version ruby lib\nGem::Specification.new do |s|\n  s.name = \"a\".freeze\n  s.version = \"2.0\"\n",
			want: Gemspec{"a", "2.0", "ruby"}},
		{name: "other variable", in: "Gem::Specification.new do |s|\n  t.name = \"a\"\n  t.version = \"1\"\nend\n", bad: true},
		{name: "constant version", in: "Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = Foo::VERSION\nend\n", bad: true},
		{name: "interpolation", in: "Gem::Specification.new do |s|\n  s.name = \"a#{`id`}\"\n  s.version = \"1\"\nend\n", bad: true},
		{name: "escape", in: "Gem::Specification.new do |s|\n  s.name = \"a\\x00\"\n  s.version = \"1\"\nend\n", bad: true},
		{name: "invalid name", in: "Gem::Specification.new do |s|\n  s.name = \"a b\"\n  s.version = \"1\"\nend\n", bad: true},
		{name: "invalid version", in: enc + "# stub: a 1.0;rm ruby lib\n", bad: true},
		{name: "no version", in: "Gem::Specification.new do |s|\n  s.name = \"a\"\nend\n", bad: true},
		{name: "assignments outside the block", in: "s.name = \"a\"\ns.version = \"1\"\n", bad: true},
		{name: "empty", in: "", bad: true},
		{name: "shadow", in: "root:$6$secret:19000:0:99999:7:::\n", bad: true},
		{name: "long line", in: "Gem::Specification.new do |s|\n  s.name = \"" + strings.Repeat("a", 5000) + "\"\n  s.version = \"1\"\nend\n", bad: true},
		{name: "long name", in: enc + "# stub: " + strings.Repeat("a", 300) + " 1 ruby lib\n", bad: true},
	} {
		g, err := ParseGemspec(strings.NewReader(tc.in))
		if tc.bad {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: ParseGemspec = %+v, %v; want ErrMalformed", tc.name, g, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: error quotes the content: %v", tc.name, err)
			}
			continue
		}
		if err != nil || g != tc.want {
			t.Errorf("%s: ParseGemspec = %+v, %v; want %+v", tc.name, g, err, tc.want)
		}
	}
}

// A long line before the stub and the block (an s.files list thousands
// of entries long) is skipped, not a reason to give up.
func TestParseGemspecLongLines(t *testing.T) {
	in := "Gem::Specification.new do |s|\n  s.files = [" + strings.Repeat("\"lib/x.rb\".freeze, ", 20_000) + "]\n  s.name = \"a\"\n  s.version = \"1\"\nend\n"
	g, err := ParseGemspec(strings.NewReader(in))
	if err != nil || g != (Gemspec{"a", "1", "ruby"}) {
		t.Errorf("ParseGemspec = %+v, %v", g, err)
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// A hostile image: links out and in loops, garbage, oversize files. Only
// the good gems are reported, each of the others is a warning, and no
// warning quotes what a link led to.
func TestHostile(t *testing.T) {
	root := t.TempDir()
	specs := filepath.Join(root, "usr/local/bundle/specifications")
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	rack, err := os.ReadFile(filepath.Join(imageRoot, "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "etc/shadow"), secret)
	write(t, filepath.Join(specs, "rack-2.2.22.gemspec"), string(rack))
	symlink(t, "/etc/shadow", filepath.Join(specs, "shadow-1.gemspec"))
	symlink(t, "../../../../../../../../etc/shadow", filepath.Join(specs, "shadow2-1.gemspec"))
	symlink(t, "loop-1.gemspec", filepath.Join(specs, "loop-1.gemspec"))
	symlink(t, "/", filepath.Join(specs, "rootlink")) // a link: not followed
	symlink(t, "..", filepath.Join(specs, "dirloop"))
	write(t, filepath.Join(specs, "garbage-1.gemspec"), "\x00\x01\x02garbage\xff\n\n")
	write(t, filepath.Join(specs, "big-1.gemspec"), string(rack)+strings.Repeat("#", 8192))
	if err := os.MkdirAll(filepath.Join(specs, "dir-1.gemspec"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(specs, "fifo-1.gemspec"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A dpkg file list too large to read: rack gets no owner.
	write(t, filepath.Join(root, "var/lib/dpkg/info/ruby-rack.list"),
		"/usr/local/bundle/specifications/rack-2.2.22.gemspec\n"+strings.Repeat("/x\n", 4096))

	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFiles: 1000, MaxFileBytes: int64(len(rack)) + 100})
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+p.PURL+" "+p.Owner+" "+strings.Join(p.Locations, ","))
	}
	want := []string{"rack 2.2.22 pkg:gem/rack@2.2.22  /usr/local/bundle/specifications/rack-2.2.22.gemspec"}
	if !slices.Equal(got, want) {
		t.Errorf("packages\n%q\nwant\n%q", got, want)
	}
	warned := map[string]bool{}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
			t.Errorf("warning quotes a file: %+v", w)
		}
		warned[w.Path] = true
	}
	for _, p := range []string{"shadow-1", "shadow2-1", "loop-1", "garbage-1", "big-1", "fifo-1"} {
		if !warned["/usr/local/bundle/specifications/"+p+".gemspec"] {
			t.Errorf("no warning about %s; warnings %+v", p, warnings)
		}
	}
	if !warned["/var/lib/dpkg/info/ruby-rack.list"] {
		t.Errorf("no warning about the oversize file list; warnings %+v", warnings)
	}
	if warned["/usr/local/bundle/specifications/dir-1.gemspec"] {
		t.Errorf("a warning about a directory; warnings %+v", warnings)
	}
}

// A specification that is a link to another file of the image (absolute,
// or climbing above the root) is read there, and owned by the package
// whose list names the link; a Multi-Arch: same package's list
// (name:arch.list) gives its plain name.
func TestLinkInsideImageAndArchQualifiedList(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "usr/share/specs/x"), "# -*- encoding: utf-8 -*-\n# stub: x 3.0 ruby lib\n")
	symlink(t, "/usr/share/specs/x", filepath.Join(root, "usr/lib/ruby/gems/3.1.0/specifications/default/x-3.0.gemspec"))
	symlink(t, "../../../../../../../../../usr/share/specs/x", filepath.Join(root, "var/lib/gems/3.1.0/specifications/x-3.0.gemspec"))
	write(t, filepath.Join(root, "var/lib/dpkg/info/libruby3.1:amd64.list"), "/.\n/usr/lib/ruby/gems/3.1.0/specifications/default/x-3.0.gemspec\n")
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+p.Owner+" "+strings.Join(p.Locations, ","))
	}
	want := []string{
		"x 3.0 libruby3.1 /usr/lib/ruby/gems/3.1.0/specifications/default/x-3.0.gemspec",
		"x 3.0  /var/lib/gems/3.1.0/specifications/x-3.0.gemspec",
	}
	if len(warnings) != 0 || !slices.Equal(got, want) {
		t.Errorf("packages %q, warnings %+v; want %q", got, warnings, want)
	}
}

func TestMaxFiles(t *testing.T) {
	root := t.TempDir()
	specs := filepath.Join(root, "var/lib/gems/3.1.0/specifications")
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		write(t, filepath.Join(specs, n+"-1.gemspec"), "#\n# stub: "+n+" 1 ruby lib\n")
	}
	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFiles: 7})
	if len(pkgs) >= 5 || len(pkgs) == 0 || len(warnings) != 1 || !strings.Contains(warnings[0].Message, "more than 7 entries") {
		t.Errorf("packages %+v, warnings %+v", pkgs, warnings)
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Analyzer{}.Analyze(ctx, sdk.Request{Root: imageRoot}, discard{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
}

type discard struct{}

func (discard) Package(sdk.Package) error { return nil }
func (discard) Finding(sdk.Finding) error { return nil }
func (discard) Warning(sdk.Warning) error { return nil }
