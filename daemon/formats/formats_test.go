package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/daemon/report"
)

func TestNames(t *testing.T) {
	want := []string{"json", "sarif", "cyclonedx", "spdx"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	Names()[0] = "changed"
	if Names()[0] != "json" {
		t.Fatal("Names returns a shared slice that callers can change")
	}
}

func TestContentType(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{"json", "application/json"},
		{"sarif", "application/sarif+json"},
		{"cyclonedx", "application/vnd.cyclonedx+json; version=1.6"},
		{"spdx", "application/spdx+json"},
		{"SARIF", "application/sarif+json"},
		{"table", "text/plain; charset=utf-8"},
		{"xml", ""},
		{"", ""},
	} {
		if got := ContentType(c.format); got != c.want {
			t.Errorf("ContentType(%q) = %q, want %q", c.format, got, c.want)
		}
	}
	// Every machine format's content type leads back to it.
	for _, f := range Names() {
		if got, ok := FromAccept(ContentType(f)); !ok || got != f {
			t.Errorf("FromAccept(ContentType(%q)) = %q, %v", f, got, ok)
		}
	}
}

func TestFromAccept(t *testing.T) {
	for _, c := range []struct {
		accept string
		want   string
		ok     bool
	}{
		{"", "json", true},
		{"   ", "json", true},
		{"*/*", "json", true},
		{"application/*", "json", true},
		{"application/json", "json", true},
		{"application/sarif+json", "sarif", true},
		{"Application/SARIF+JSON", "sarif", true},
		{"application/vnd.cyclonedx+json", "cyclonedx", true},
		{"application/vnd.cyclonedx+json; version=1.6", "cyclonedx", true},
		{"application/vnd.cyclonedx+json; version=1.5", "", false},
		{"application/vnd.cyclonedx+json; version=1.5, application/json;q=0.1", "json", true},
		{"application/spdx+json", "spdx", true},
		// curl's default and browsers' headers.
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json", true},
		// q-values decide; an exact type beats a wildcard of the same q.
		{"application/json;q=0.5, application/sarif+json", "sarif", true},
		{"application/sarif+json;q=0.4, application/spdx+json;q=0.9", "spdx", true},
		{"*/*, application/spdx+json", "spdx", true},
		{"application/spdx+json, application/sarif+json", "spdx", true},
		{"*/*;q=0.1, application/xml", "json", true},
		// q=0 means "not this".
		{"application/sarif+json;q=0", "", false},
		{"application/json;q=0, */*", "json", true},
		{"text/plain", "", false},
		{"application/xml, text/csv", "", false},
		{"application/sarif+json;q=2", "", false},
		{"application/sarif+json;q=abc, application/spdx+json", "spdx", true},
		{";;;, application/json", "json", true},
	} {
		got, ok := FromAccept(c.accept)
		if got != c.want || ok != c.ok {
			t.Errorf("FromAccept(%q) = %q, %v; want %q, %v", c.accept, got, ok, c.want, c.ok)
		}
	}
}

func TestWriteJSONIsTheReport(t *testing.T) {
	r := unhealthyReport(t)
	out := write(t, JSON, r)
	if !bytes.Contains(out, []byte("\n  \"image\"")) {
		t.Errorf("the JSON is not indented:\n%.200s", out)
	}
	var back report.Report
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	// The round trip through JSON gives the same report (times compare
	// with Equal, so re-marshal both).
	want, _ := json.Marshal(r)
	got, _ := json.Marshal(&back)
	if !bytes.Equal(want, got) {
		t.Errorf("the JSON format is not the report:\nwant %.300s\ngot  %.300s", want, got)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	r := unhealthyReport(t)
	var buf bytes.Buffer
	for _, c := range []struct {
		format string
		r      *report.Report
		want   string
	}{
		{"xml", r, `unknown output format "xml"`},
		{"table", r, "rendered by the assay CLI"},
		{"json", nil, "no report"},
	} {
		err := Write(&buf, c.format, c.r, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Write(%q) error = %v, want one saying %q", c.format, err, c.want)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("failed writes wrote %d bytes", buf.Len())
	}
	for _, f := range Names() {
		err := Write(failingWriter{}, f, r, Options{})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Write(%s) to a failing writer: %v", f, err)
		}
	}
}

// TestWriteDefaults: without options the documents still name a tool and
// a creation time, and stay valid.
func TestWriteDefaults(t *testing.T) {
	r := unhealthyReport(t)
	for _, f := range []string{SARIF, CycloneDX, SPDX} {
		var buf bytes.Buffer
		if err := Write(&buf, f, r, Options{}); err != nil {
			t.Fatal(err)
		}
		validate(t, f, buf.Bytes())
		if !bytes.Contains(buf.Bytes(), []byte(`"assay`)) && !bytes.Contains(buf.Bytes(), []byte(`Tool: assay`)) {
			t.Errorf("%s names no tool", f)
		}
	}
}

// TestWriteIsDeterministic: with a fixed clock the same report gives the
// same bytes (golden-file friendly, and no map order leaks out).
func TestWriteIsDeterministic(t *testing.T) {
	r := unhealthyReport(t)
	for _, f := range Names() {
		a, b := write(t, f, r), write(t, f, r)
		if !bytes.Equal(a, b) {
			t.Errorf("%s output differs between two writes of the same report", f)
		}
	}
}

func TestParseImage(t *testing.T) {
	for _, c := range []struct {
		ref  string
		want imageRef
	}{
		{"127.0.0.1:5000/library/debian:12", imageRef{"127.0.0.1:5000/library/debian", "debian", "12"}},
		{"127.0.0.1:5000/library/debian", imageRef{"127.0.0.1:5000/library/debian", "debian", ""}},
		{"docker.io/library/alpine@sha256:abcd", imageRef{"docker.io/library/alpine", "alpine", ""}},
		{"ghcr.io/Org/App:v1@sha256:abcd", imageRef{"ghcr.io/Org/App", "app", "v1"}},
		{"busybox", imageRef{"busybox", "busybox", ""}},
		{"", imageRef{}},
	} {
		if got := parseImage(c.ref); !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseImage(%q) = %+v, want %+v", c.ref, got, c.want)
		}
	}
}

func TestImagePURL(t *testing.T) {
	r := &report.Report{Image: "127.0.0.1:5000/library/debian:12", Digest: "sha256:abc", Platform: "linux/arm64/v8"}
	got := imagePURL(r)
	p, err := packageurl.FromString(got)
	if err != nil {
		t.Fatalf("imagePURL = %q: %v", got, err)
	}
	want := map[string]string{"repository_url": "127.0.0.1:5000/library/debian", "tag": "12", "arch": "arm64"}
	if p.Type != "oci" || p.Namespace != "" || p.Name != "debian" || p.Version != "sha256:abc" || !maps.Equal(p.Qualifiers.Map(), want) {
		t.Errorf("imagePURL = %s, parsed %+v", got, p)
	}
	if got := imagePURL(&report.Report{Image: "debian:12"}); got != "" {
		t.Errorf("imagePURL without a digest = %q, want none", got)
	}
}

func TestRelativeURI(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/var/lib/dpkg/status", "var/lib/dpkg/status"},
		{"usr/local/bin/app", "usr/local/bin/app"},
		{"/opt/my app/lib/a b.jar", "opt/my%20app/lib/a%20b.jar"},
		{"/c:/odd", "./c:/odd"},
		{"/", ""},
	} {
		if got := relativeURI(c.in); got != c.want {
			t.Errorf("relativeURI(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
