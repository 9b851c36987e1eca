package vulndb

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkImportAll imports all of the shared OSV test data into a new
// database per iteration.
func BenchmarkImportAll(b *testing.B) {
	ctx := context.Background()
	records, size := 0, int64(0)
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		db, err := Open(ctx, filepath.Join(b.TempDir(), "vulndb.db"), Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := db.Import(ctx, "", osvDir)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		records += res.Records
		info, err := db.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		size = info.SizeBytes
		db.Close()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(size), "file_bytes")
}

// BenchmarkQuery asks for one package per sub-benchmark: Go's stdlib has
// hundreds of records, most packages have none.
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	db := allDB(b)
	for _, q := range [][2]string{
		{"Go", "stdlib"},
		{"Go", "github.com/gin-gonic/gin"},
		{"PyPI", "Django"},
		{"Debian:12", "perl"},
		{"npm", "left-pad"},
	} {
		b.Run(q[0]+"/"+q[1], func(b *testing.B) {
			found := 0
			for i := 0; i < b.N; i++ {
				got, err := db.Query(ctx, q[0], q[1])
				if err != nil {
					b.Fatal(err)
				}
				found += len(got)
			}
			b.ReportMetric(float64(found)/float64(b.N), "records/query")
		})
	}
}
