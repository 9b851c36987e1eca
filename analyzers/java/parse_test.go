package java

import (
	"archive/zip"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// readZipEntry returns one entry of a zip file of the test data, read
// with archive/zip.
func readZipEntry(t testing.TB, file, entry string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := zr.Open(entry)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func javaJar(name string) string { return filepath.Join(imageDir, "usr", "share", "java", name) }

// The pom.properties of real Debian jars: the values unzip -p shows.
func TestParsePomPropertiesReal(t *testing.T) {
	for _, tc := range []struct {
		jar, entry string
		want       Coordinates
	}{
		{"slf4j-api.jar", "META-INF/maven/org.slf4j/slf4j-api/pom.properties", Coordinates{"org.slf4j", "slf4j-api", "1.7.32"}},
		{"log4j-jcl.jar", "META-INF/maven/org.apache.logging.log4j/log4j-jcl/pom.properties", Coordinates{"org.apache.logging.log4j", "log4j-jcl", "2.19.0"}},
	} {
		c, err := ParsePomProperties(readZipEntry(t, javaJar(tc.jar), tc.entry))
		if err != nil || c != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.jar, c, err, tc.want)
		}
	}
}

// java.util.Properties.load's syntax; the expected values follow its
// documentation.
func TestParsePomProperties(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Coordinates
		bad  bool
	}{
		{in: "groupId=g\nartifactId=a\nversion=1\n", want: Coordinates{"g", "a", "1"}},
		{in: "#c\n!c\n\n  groupId : g\r\nartifactId a\rversion\t=\t1.0 \n", want: Coordinates{"g", "a", "1.0"}},
		// Continuations: the next line's leading blanks are dropped.
		{in: "groupId=org.\\\n    apache\nartifactId=a\\\n\nversion=2\n", want: Coordinates{"org.apache", "a", "2"}},
		// An even number of backslashes does not continue.
		{in: "groupId=g\\\\\nartifactId=a\nversion=1\n", bad: true},
		// Escapes in keys and values; \u0031 is "1".
		{in: "group\\u0049d=g\nartifact\\Id=a\nversion=\\u0031.0\n", want: Coordinates{"g", "a", "1.0"}},
		// A comment line does not continue, even ending in a backslash.
		{in: "# x \\\ngroupId=g\nartifactId=a\nversion=1", want: Coordinates{"g", "a", "1"}},
		// The last value wins.
		{in: "groupId=x\ngroupId=g\nartifactId=a\nversion=1\n", want: Coordinates{"g", "a", "1"}},
		// A backslash at the end of the file is dropped.
		{in: "groupId=g\nartifactId=a\nversion=1\\", want: Coordinates{"g", "a", "1"}},
		{in: "groupId=g\nartifactId=a\n", bad: true},
		{in: "groupId=g\nversion=1\n", bad: true},
		{in: "artifactId=a\nversion=1\n", bad: true},
		{in: "groupId=g g\nartifactId=a\nversion=1\n", bad: true},
		{in: "groupId=g\nartifactId=a/b\nversion=1\n", bad: true},
		{in: "groupId=g\nartifactId=a\nversion=${project.version}\n", bad: true},
		{in: "groupId=g\nartifactId=a\nversion=1 2\n", bad: true},
		{in: "groupId=g\nartifactId=a\nversion=1\\u00\n", bad: true},
		{in: "groupId=g\nartifactId=a\nversion=1\\uZZZZ\n", bad: true},
		{in: "groupId=g\nartifactId=a\nversion=\xe9\n", want: Coordinates{"g", "a", "é"}}, // ISO 8859-1
		{in: "groupId=g\nartifactId=a\nversion=\\u0001\n", bad: true},
		{in: "root:$6$TOPSECRET:19000:0:99999:7:::\n", bad: true},
		{in: "", bad: true},
		{in: "groupId=" + strings.Repeat("g", 300) + "\nartifactId=a\nversion=1\n", bad: true},
	} {
		c, err := ParsePomProperties([]byte(tc.in))
		if tc.bad {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParsePomProperties(%q) = %+v, %v; want ErrMalformed", tc.in, c, err)
			}
			if err != nil && strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("error quotes the content: %v", err)
			}
			continue
		}
		if err != nil || c != tc.want {
			t.Errorf("ParsePomProperties(%q) = %+v, %v; want %+v", tc.in, c, err, tc.want)
		}
	}
}

// The manifests of real Debian jars (hamcrest's Export-Package runs over
// many continuation lines): the values unzip -p shows.
func TestParseManifestReal(t *testing.T) {
	for _, tc := range []struct {
		jar  string
		want Manifest
		c    Coordinates
	}{
		{"hamcrest-2.2.jar", Manifest{ImplementationTitle: "hamcrest", ImplementationVersion: "2.2",
			BundleSymbolicName: "org.hamcrest", BundleVersion: "2.2"}, Coordinates{"org.hamcrest", "hamcrest", "2.2"}},
		{"commons-logging-adapters-1.2.jar", Manifest{ImplementationTitle: "Commons Logging", ImplementationVersion: "1.2",
			ImplementationVendorID: "org.apache", BundleSymbolicName: "org.apache.commons.logging", BundleVersion: "1.2.0"},
			Coordinates{"org.apache", "logging", "1.2"}},
		{"slf4j-api.jar", Manifest{ImplementationTitle: "slf4j-api", ImplementationVersion: "1.7.32",
			BundleSymbolicName: "slf4j.api", BundleVersion: "1.7.32"}, Coordinates{"slf4j.api", "slf4j-api", "1.7.32"}},
	} {
		m, err := ParseManifest(readZipEntry(t, javaJar(tc.jar), "META-INF/MANIFEST.MF"))
		if err != nil || m != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.jar, m, err, tc.want)
			continue
		}
		if c, err := m.Coordinates(); err != nil || c != tc.c {
			t.Errorf("%s: coordinates %+v, %v; want %+v", tc.jar, c, err, tc.c)
		}
	}
	m, err := ParseManifest(readZipEntry(t, javaJar("hamcrest-integration-1.3.1-SNAPSHOT.jar"), "META-INF/MANIFEST.MF"))
	if err != nil || m != (Manifest{}) {
		t.Errorf("hamcrest-integration: %+v, %v", m, err)
	}
	if _, err := m.Coordinates(); !errors.Is(err, ErrNoCoordinates) {
		t.Errorf("hamcrest-integration: coordinates: %v", err)
	}
}

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Manifest
		bad  bool
	}{
		// Names without regard to case; values continued; only the main
		// section; directives cut.
		{in: "Manifest-Version: 1.0\r\nimplementation-TITLE: foo-\r\n bar\r\nBundle-SymbolicName: a.b.c; singleton:=true\r\n\r\nName: x/\r\nImplementation-Version: 9\r\n",
			want: Manifest{ImplementationTitle: "foo-bar", BundleSymbolicName: "a.b.c"}},
		{in: "Implementation-Version: 1\nImplementation-Version: 2\n", want: Manifest{ImplementationVersion: "2"}},
		{in: "Implementation-Version: 1", want: Manifest{ImplementationVersion: "1"}}, // no final newline
		{in: "\nImplementation-Version: 1\n", want: Manifest{}},                       // an empty main section
		{in: "Implementation-Version:1\n", bad: true},
		{in: " continued\n", bad: true},
		{in: "No colon\n", bad: true},
		{in: "Bad Name: x\n", bad: true},
		{in: "Implementation-Title: \xff\n", bad: true},
		{in: "Implementation-Title: " + strings.Repeat("x", 5000) + "\n", want: Manifest{ImplementationTitle: strings.Repeat("x", 5000)}},
		{in: "Implementation-Title: x\n" + strings.Repeat(" yyyyyyyy\n", 600), bad: true},
		{in: "root:$6$TOPSECRET:19000:0:99999:7:::\n", bad: true},
	} {
		m, err := ParseManifest([]byte(tc.in))
		if tc.bad {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseManifest(%q) = %+v, %v; want ErrMalformed", tc.in, m, err)
			}
			if err != nil && strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("error quotes the content: %v", err)
			}
			continue
		}
		if err != nil || m != tc.want {
			t.Errorf("ParseManifest(%q) = %+v, %v; want %+v", tc.in, m, err, tc.want)
		}
	}
}

func TestManifestCoordinates(t *testing.T) {
	for _, tc := range []struct {
		m    Manifest
		want Coordinates
	}{
		{Manifest{ImplementationVendorID: "junit", ImplementationTitle: "JUnit", ImplementationVersion: "4.13.2", BundleVersion: "4.12"},
			Coordinates{"junit", "JUnit", "4.13.2"}},
		{Manifest{BundleSymbolicName: "com.google.guava.failureaccess", BundleVersion: "1.0.1"},
			Coordinates{"com.google.guava.failureaccess", "failureaccess", "1.0.1"}},
		{Manifest{ImplementationVendorID: "org.x", BundleSymbolicName: "org.x.y", ImplementationVersion: "1.4 1855 April 22 2006"},
			Coordinates{"org.x", "y", "1.4"}},
		{Manifest{ImplementationTitle: "t", ImplementationVersion: "1"}, Coordinates{}},                                 // no group
		{Manifest{ImplementationVendorID: "g", ImplementationVersion: "1"}, Coordinates{}},                              // no artifact
		{Manifest{ImplementationVendorID: "g", ImplementationTitle: "a"}, Coordinates{}},                                // no version
		{Manifest{BundleSymbolicName: "org.x.", BundleVersion: "1"}, Coordinates{}},                                     // empty last part
		{Manifest{ImplementationVendorID: "g", ImplementationTitle: "a", ImplementationVersion: "${v}"}, Coordinates{}}, // unresolved
	} {
		c, err := tc.m.Coordinates()
		if tc.want == (Coordinates{}) {
			if !errors.Is(err, ErrNoCoordinates) {
				t.Errorf("%+v: %+v, %v; want ErrNoCoordinates", tc.m, c, err)
			}
			continue
		}
		if err != nil || c != tc.want {
			t.Errorf("%+v: %+v, %v; want %+v", tc.m, c, err, tc.want)
		}
	}
}
