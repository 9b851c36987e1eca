package events

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/scans"
)

func event(i int) scans.Event {
	return scans.Event{Type: "scan", Time: time.Unix(int64(i), 0), Scan: &scans.Scan{ID: fmt.Sprint(i)}}
}

// receive reads n events from s or fails after a generous deadline.
func receive(t *testing.T, s *Subscription, n int) []scans.Event {
	t.Helper()
	var got []scans.Event
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case e, ok := <-s.C():
			if !ok {
				t.Fatalf("channel closed after %d of %d events (dropped=%v)", len(got), n, s.Dropped())
			}
			got = append(got, e)
		case <-deadline:
			t.Fatalf("timed out after %d of %d events", len(got), n)
		}
	}
	return got
}

func TestFanOut(t *testing.T) {
	b := NewBroker()
	subs := []*Subscription{b.Subscribe(8), b.Subscribe(8), b.Subscribe(8)}
	if got := b.Subscribers(); got != 3 {
		t.Fatalf("Subscribers() = %d, want 3", got)
	}
	for i := range 5 {
		b.Publish(event(i))
	}
	for n, s := range subs {
		got := receive(t, s, 5)
		for i, e := range got {
			if e.Scan.ID != fmt.Sprint(i) {
				t.Errorf("subscriber %d: event %d has scan %q, want %q (order kept)", n, i, e.Scan.ID, fmt.Sprint(i))
			}
		}
		if s.Dropped() {
			t.Errorf("subscriber %d dropped", n)
		}
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := NewBroker()
	slow := b.Subscribe(2) // never read until the end
	fast := b.Subscribe(1)

	const total = 1000
	published := make(chan struct{})
	received := make(chan int)
	go func() {
		n := 0
		for range fast.C() {
			n++
			if n == total {
				break
			}
		}
		received <- n
	}()
	go func() {
		defer close(published)
		for i := range total {
			// The fast reader has a buffer of one: wait until it has taken
			// the previous event, so that only the slow one falls behind.
			for len(fast.ch) > 0 {
				time.Sleep(time.Microsecond)
			}
			b.Publish(event(i))
		}
	}()
	// Publish must never block on the slow subscriber: all of it finishes
	// well within the deadline. (A deadline, not a speed assertion.)
	select {
	case <-published:
	case <-time.After(20 * time.Second):
		t.Fatal("Publish blocked")
	}
	select {
	case n := <-received:
		if n != total {
			t.Fatalf("fast subscriber got %d events, want %d", n, total)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fast subscriber did not receive every event")
	}
	if fast.Dropped() {
		t.Error("fast subscriber dropped")
	}
	if !slow.Dropped() {
		t.Fatal("slow subscriber not dropped")
	}
	// The slow subscriber still gets what was buffered, then a closed channel.
	got := receive(t, slow, 2)
	if got[0].Scan.ID != "0" || got[1].Scan.ID != "1" {
		t.Errorf("slow subscriber buffered %q, %q; want 0, 1", got[0].Scan.ID, got[1].Scan.ID)
	}
	if _, ok := <-slow.C(); ok {
		t.Error("dropped subscriber's channel not closed")
	}
	if got := b.Subscribers(); got != 1 {
		t.Errorf("Subscribers() = %d, want 1", got)
	}
	fast.Close()
	if got := b.Subscribers(); got != 0 {
		t.Errorf("Subscribers() = %d after Close, want 0", got)
	}
}

func TestPublishWithoutReadersNeverBlocks(t *testing.T) {
	b := NewBroker()
	subs := make([]*Subscription, 10)
	for i := range subs {
		subs[i] = b.Subscribe(1)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			b.Publish(event(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked")
	}
	for i, s := range subs {
		if !s.Dropped() {
			t.Errorf("subscriber %d not dropped", i)
		}
	}
	if got := b.Subscribers(); got != 0 {
		t.Errorf("Subscribers() = %d, want 0", got)
	}
}

func TestCloseIdempotent(t *testing.T) {
	b := NewBroker()
	s := b.Subscribe(4)
	s.Close()
	s.Close()
	if _, ok := <-s.C(); ok {
		t.Error("channel open after Close")
	}
	if s.Dropped() {
		t.Error("Dropped() = true after Close")
	}
	if got := b.Subscribers(); got != 0 {
		t.Errorf("Subscribers() = %d, want 0", got)
	}
	b.Publish(event(1)) // must not panic on a closed channel

	// Close after being dropped is a no-op too.
	d := b.Subscribe(1)
	b.Publish(event(1))
	b.Publish(event(2))
	if !d.Dropped() {
		t.Fatal("not dropped")
	}
	d.Close()
	d.Close()
	if !d.Dropped() {
		t.Error("Close cleared Dropped")
	}
}

func TestDefaultBuffer(t *testing.T) {
	b := NewBroker()
	s := b.Subscribe(0)
	defer s.Close()
	if got := cap(s.ch); got != DefaultBuffer {
		t.Errorf("buffer = %d, want %d", got, DefaultBuffer)
	}
}

func TestBrokerClose(t *testing.T) {
	b := NewBroker()
	s := b.Subscribe(4)
	b.Publish(event(1))
	b.Close()
	b.Close()
	got := receive(t, s, 1)
	if got[0].Scan.ID != "1" {
		t.Errorf("got %q", got[0].Scan.ID)
	}
	if _, ok := <-s.C(); ok {
		t.Error("channel open after broker Close")
	}
	if s.Dropped() {
		t.Error("Dropped() = true after broker Close")
	}
	late := b.Subscribe(4)
	if _, ok := <-late.C(); ok {
		t.Error("subscription after Close is open")
	}
	late.Close()
	b.Publish(event(2))
}

// TestConcurrent exercises every method at once; run with -race.
func TestConcurrent(t *testing.T) {
	b := NewBroker()
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 200 {
				b.Publish(event(p*1000 + i))
			}
		})
	}
	for range 8 {
		wg.Go(func() {
			for range 20 {
				s := b.Subscribe(2)
				for range 3 {
					select {
					case <-s.C():
					default:
					}
				}
				_ = s.Dropped()
				_ = b.Subscribers()
				s.Close()
				s.Close()
			}
		})
	}
	wg.Wait()
	if got := b.Subscribers(); got != 0 {
		t.Errorf("Subscribers() = %d, want 0", got)
	}
}
