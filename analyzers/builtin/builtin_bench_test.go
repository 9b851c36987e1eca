package builtin_test

import (
	"os"
	"testing"

	"github.com/assayhq/assay/analyzers/builtin"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// BenchmarkDebianLayer streams the Debian 12 base layer (ASSAY_BENCH_LAYER,
// a gzip blob) through every built-in extractor, outside any sandbox: the
// in-process floor of a cold scan's biggest step.
//
//	ASSAY_BENCH_LAYER=/path/to/blob go test -bench DebianLayer ./analyzers/builtin/
func BenchmarkDebianLayer(b *testing.B) {
	path := os.Getenv("ASSAY_BENCH_LAYER")
	if path == "" {
		b.Skip("ASSAY_BENCH_LAYER names no layer blob")
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		items := sdktest.Extract(b, blob, builtin.Set().New()...)
		b.ReportMetric(float64(len(sdktest.Packages(items))), "packages")
	}
	_ = sdk.Item{}
}
