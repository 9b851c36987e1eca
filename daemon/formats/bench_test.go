package formats

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/assayhq/assay/daemon/report"
)

// BenchmarkWrite writes the fixture report (93 packages, 8 findings) and a
// large one made of 40 copies of it (3,720 packages, 320 findings) in each
// format, reporting the document size.
func BenchmarkWrite(b *testing.B) {
	small := unhealthyReport(b)
	large := *small
	large.Packages, large.Findings = nil, nil
	for i := range 40 {
		for _, p := range small.Packages {
			p.Locations = []string{fmt.Sprintf("/layer%d%s", i, p.Locations[0])}
			large.Packages = append(large.Packages, p)
		}
		for _, f := range small.Findings {
			f.Locations = []string{fmt.Sprintf("/layer%d%s", i, f.Locations[0])}
			large.Findings = append(large.Findings, f)
		}
	}
	for name, r := range map[string]*report.Report{"fixture": small, "x40": &large} {
		for _, format := range Names() {
			b.Run(name+"/"+format, func(b *testing.B) {
				var buf bytes.Buffer
				for b.Loop() {
					buf.Reset()
					if err := Write(&buf, format, r, fixtureOptions()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len()), "bytes/doc")
				b.ReportMetric(float64(len(r.Packages)), "packages")
			})
		}
	}
}
