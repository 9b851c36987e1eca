package images

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Pull + unpack + mount of the shared Debian image from a loopback
// registry. Cold: every iteration starts with an empty content store (the
// previous iteration's release let containerd collect everything). Warm:
// the image is already present (as after a node pulled it). Prints the
// median; asserts nothing about time. Run with ASSAY_INTEGRATION=1 as root.
func BenchmarkAcquireDebian(b *testing.B) {
	for _, warm := range []bool{false, true} {
		name := "cold"
		if warm {
			name = "warm"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, Limits{})
			reg := newRegistry(b)
			ref, _ := reg.push(b, "library/debian:12", debianImage(b))
			ctx := context.Background()
			if warm {
				if _, err := e.im.c.Pull(e.im.ctx(ctx), ref, client.WithPullUnpack, client.WithPullSnapshotter(Snapshotter)); err != nil {
					b.Fatal(err)
				}
			}
			var took []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				img, err := e.im.Acquire(ctx, fmt.Sprintf("bench%d", i), ref, "linux/amd64")
				if err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				b.StopTimer()
				if err := img.Release(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
		})
	}
}
