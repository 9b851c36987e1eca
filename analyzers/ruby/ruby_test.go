package ruby

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// imageRoot is the real test image (see testdata/README.md).
var imageRoot = filepath.Join("testdata", "image")

// file is one entry of a hand-built layer: a regular file, or a link when
// link is set, or a directory when dir is set, or a FIFO.
type file struct {
	name, body, link string
	dir, fifo        bool
}

// layer returns a tar of files, as a layer holding them would be.
func layer(t *testing.T, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		case f.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case f.fifo:
			h.Typeflag, h.Size = tar.TypeFifo, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// items checks that every item is valid and that only packages and
// warnings come besides the framework's entries and layer end.
func items(t *testing.T, its []sdk.Item) ([]sdk.Package, []sdk.Warning) {
	t.Helper()
	for _, it := range its {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		if it.Finding != nil || it.Owned != nil || it.OSRelease != nil {
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return sdktest.Packages(its), sdktest.Warnings(its)
}

func TestConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, NewExtractor())
	e := NewExtractor()
	if e.Name() != "ruby" || e.Version() != "0.2.0" || e.MaxFileBytes() != DefaultMaxFileBytes {
		t.Errorf("extractor %s %s %d", e.Name(), e.Version(), e.MaxFileBytes())
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
// itself installed (one built for a platform, one prerelease), streamed
// as one layer: exactly what RubyGems' Gem::Specification.load finds in
// each file. No Owner: the image merge sets it from the dpkg file lists
// the layer also holds, which this extractor does not read.
func TestImage(t *testing.T) {
	var want []string
	for _, l := range readLines(t, filepath.Join("testdata", "want.txt"), 4) {
		want = append(want, strings.Join(l, " "))
	}
	pkgs, warnings := items(t, sdktest.ExtractDir(t, imageRoot, NewExtractor()))
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
		if p.Ecosystem != "RubyGems" || p.Owner != "" {
			t.Errorf("%s: ecosystem %q, owner %q", loc, p.Ecosystem, p.Owner)
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
	// A check of the data itself: default gems, Debian's gems and the
	// platform gem are there.
	for _, w := range []string{
		"/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec rack 2.2.22 ruby",
		"/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec json 2.6.1 ruby",
		"/usr/local/bundle/specifications/demo_native-0.1.0-x86_64-linux.gemspec demo_native 0.1.0 x86_64-linux",
	} {
		if !slices.Contains(want, w) {
			t.Errorf("the test data lacks %q", w)
		}
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

// A hostile layer: links to /etc/shadow (with one in the layer), loops,
// a FIFO, a directory named like a specification, garbage, an oversize
// file, gemspecs in the wrong places. Only the good gem is reported, each
// bad file is one warning, no warning quotes a file, and nothing is read
// through a link.
func TestHostile(t *testing.T) {
	const specs = "usr/local/bundle/specifications/"
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	rack, err := os.ReadFile(filepath.Join(imageRoot, "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec"))
	if err != nil {
		t.Fatal(err)
	}
	l := layer(t,
		file{name: "etc/shadow", body: secret},
		file{name: specs + "rack-2.2.22.gemspec", body: string(rack)},
		file{name: specs + "shadow-1.gemspec", link: "/etc/shadow"},
		file{name: specs + "shadow2-1.gemspec", link: "../../../../../../../../etc/shadow"},
		file{name: specs + "loop-1.gemspec", link: "loop-1.gemspec"},
		file{name: specs + "rootlink", link: "/"},
		file{name: specs + "dirloop", link: ".."},
		file{name: specs + "fifo-1.gemspec", fifo: true},
		file{name: specs + "dir-1.gemspec/", dir: true},
		file{name: specs + "secret-1.gemspec", body: secret},
		file{name: specs + "garbage-1.gemspec", body: "\x00\x01\x02garbage\xff\n\n"},
		file{name: specs + "big-1.gemspec", body: string(rack) + strings.Repeat("#", 8192)},
		file{name: specs + "default/x/y-1.gemspec", body: string(rack)},
		file{name: "usr/local/bundle/gems/rack-2.2.22/rack.gemspec", body: string(rack)},
		file{name: "var/lib/dpkg/info/ruby-rack.list", body: "/" + specs + "rack-2.2.22.gemspec\n"},
	)
	its, err := sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: int64(len(rack)) + 100}}, NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := items(t, its)
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+p.PURL+" "+p.Owner+" "+strings.Join(p.Locations, ","))
	}
	want := []string{"rack 2.2.22 pkg:gem/rack@2.2.22  /usr/local/bundle/specifications/rack-2.2.22.gemspec"}
	if !slices.Equal(got, want) {
		t.Errorf("packages\n%q\nwant\n%q", got, want)
	}
	wantWarn := map[string]bool{"secret-1": false, "garbage-1": false, "big-1": false}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
			t.Errorf("warning quotes a file: %+v", w)
		}
		rel, _ := strings.CutPrefix(w.Path, "/"+specs)
		rel, ok := strings.CutSuffix(rel, ".gemspec")
		if seen, expected := wantWarn[rel]; !ok || !expected || seen {
			t.Errorf("unexpected warning %+v", w)
		}
		wantWarn[rel] = true
	}
	for p, seen := range wantWarn {
		if !seen {
			t.Errorf("no warning about %s; warnings %+v", p, warnings)
		}
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sdktest.ExtractErr(ctx, sdktest.TarDir(t, imageRoot), sdk.LayerLimits{}, NewExtractor()); err == nil {
		t.Error("a cancelled extraction succeeded")
	}
	err := NewExtractor().Extract(ctx, sdk.FileInfo{Path: "/specifications/a-1.gemspec", Size: 21}, strings.NewReader("#\n# stub: a 1 ruby lib\n"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v, want context.Canceled", err)
	}
}
