package images

import (
	"testing"
	"time"
)

func TestNextUnpackPoll(t *testing.T) {
	for _, tt := range []struct {
		headroom int64
		want     time.Duration
	}{
		{16 << 30, time.Second},            // far from the default limit: rarely
		{1 << 30, 500 * time.Millisecond},  // 1 GiB at 2 GiB/s
		{64 << 20, 100 * time.Millisecond}, // close: the minimum
		{-5, 100 * time.Millisecond},       // over (a failed measurement): the minimum
	} {
		if got := nextUnpackPoll(tt.headroom, 100*time.Millisecond); got != tt.want {
			t.Errorf("nextUnpackPoll(%d) = %s, want %s", tt.headroom, got, tt.want)
		}
	}
}
