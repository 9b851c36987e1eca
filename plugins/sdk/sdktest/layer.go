package sdktest

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
)

// TarDir returns a tar of dir's files, directories and symbolic links, as
// a layer holding them would be (names relative to dir).
func TarDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatalf("sdktest: tar of %s: %v", dir, err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Extract streams layer (a tar, gzip or zstd blob) as layer 1 through the
// extractors with the default limits and returns every item, in order.
// The stream's own error fails the test.
func Extract(t testing.TB, layer []byte, exs ...sdk.Extractor) []sdk.Item {
	t.Helper()
	items, err := ExtractErr(context.Background(), layer, sdk.LayerLimits{}, exs...)
	if err != nil {
		t.Fatalf("sdktest: extract: %v", err)
	}
	return items
}

// ExtractErr is Extract returning the stream's error, for tests of limits
// and hostile layers.
func ExtractErr(ctx context.Context, layer []byte, lim sdk.LayerLimits, exs ...sdk.Extractor) ([]sdk.Item, error) {
	var items []sdk.Item
	err := sdk.ExtractLayer(ctx, bytes.NewReader(layer), sdk.Layer{Index: 1, Digest: "sha256:test"}, exs, lim, func(it sdk.Item) error {
		if err := it.Validate(); err != nil {
			return err
		}
		items = append(items, it)
		return nil
	})
	return items, err
}

// ExtractDir is Extract of TarDir(dir).
func ExtractDir(t testing.TB, dir string, exs ...sdk.Extractor) []sdk.Item {
	t.Helper()
	return Extract(t, TarDir(t, dir), exs...)
}

// Packages returns the packages among items.
func Packages(items []sdk.Item) []sdk.Package {
	var out []sdk.Package
	for _, it := range items {
		if it.Package != nil {
			out = append(out, *it.Package)
		}
	}
	return out
}

// Warnings returns the warnings among items.
func Warnings(items []sdk.Item) []sdk.Warning {
	var out []sdk.Warning
	for _, it := range items {
		if it.Warning != nil {
			out = append(out, *it.Warning)
		}
	}
	return out
}

// ExtractorConformance checks what the framework expects of every
// extractor: a name and version, a positive file size cap, a Required
// that offers nothing of an empty layer, an extraction of a layer holding
// only unrelated files that sends only valid items, and a cancelled
// context that stops the layer promptly.
func ExtractorConformance(t *testing.T, e sdk.Extractor) {
	t.Helper()
	if e.Name() == "" || e.Version() == "" {
		t.Errorf("sdktest: extractor %q version %q: both are required", e.Name(), e.Version())
	}
	if e.MaxFileBytes() <= 0 {
		t.Errorf("sdktest: %s: MaxFileBytes = %d, want > 0", e.Name(), e.MaxFileBytes())
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, name := range []string{"README", "srv/data.bin", "home/user/notes.txt"} {
		body := bytes.Repeat([]byte{byte('a' + i)}, 100*(i+1))
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	items, err := ExtractErr(context.Background(), buf.Bytes(), sdk.LayerLimits{}, e)
	if err != nil {
		t.Fatalf("sdktest: %s: unrelated layer: %v", e.Name(), err)
	}
	for _, it := range items {
		if err := it.Validate(); err != nil {
			t.Errorf("sdktest: %s: invalid item %+v: %v", e.Name(), it, err)
		}
		if it.Package != nil || it.Finding != nil {
			t.Errorf("sdktest: %s: found something in unrelated files: %+v", e.Name(), it)
		}
	}
	if last := items[len(items)-1]; last.LayerEnd == nil {
		t.Errorf("sdktest: %s: the layer did not end with a LayerEnd: %+v", e.Name(), last)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ExtractErr(ctx, buf.Bytes(), sdk.LayerLimits{}, e); err == nil {
		t.Errorf("sdktest: %s: a cancelled extraction succeeded", e.Name())
	}
}
