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
