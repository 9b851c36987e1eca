// Package events fans scan and report events out to subscribers such as the
// /v1/events stream. Publishing never blocks: a subscriber that falls behind
// is dropped rather than allowed to slow the daemon down. The package keeps
// no history; a subscriber sees only what is published after it subscribed.
package events

import (
	"sync"
	"sync/atomic"

	"github.com/assayhq/assay/daemon/scans"
)

// DefaultBuffer is the channel size Subscribe uses when asked for less than 1.
const DefaultBuffer = 64

// Broker delivers every published event to every current subscriber. The
// zero value is not usable; call NewBroker.
type Broker struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// NewBroker returns a broker with no subscribers.
func NewBroker() *Broker {
	return &Broker{subs: make(map[*Subscription]struct{})}
}

// Publish hands e to every subscriber without blocking. A subscriber whose
// buffer is full is dropped: its channel is closed and Dropped reports true.
// Publish is safe for concurrent use; events published by one goroutine reach
// each subscriber in order.
func (b *Broker) Publish(e scans.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Store(true)
			b.removeLocked(s)
		}
	}
}

// Subscribe registers a subscriber with a channel of the given capacity
// (DefaultBuffer when buffer < 1). After Close, it returns a subscription
// that is already closed.
func (b *Broker) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = DefaultBuffer
	}
	s := &Subscription{b: b, ch: make(chan scans.Event, buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Subscribers is the number of live subscriptions.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends every subscription (not as dropped) and refuses new ones, so
// that streams end when the daemon shuts down. Publish after Close is a
// no-op. Close is idempotent.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.removeLocked(s)
	}
}

// removeLocked forgets s and closes its channel. Closing only under b.mu, and
// only for a member of b.subs, is what makes sends and closes never race.
func (b *Broker) removeLocked(s *Subscription) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
}

// Subscription is one subscriber's view of a Broker.
type Subscription struct {
	b       *Broker
	ch      chan scans.Event
	dropped atomic.Bool
}

// C is the event channel. It is closed when the subscription is dropped or
// closed; events buffered before that can still be received.
func (s *Subscription) C() <-chan scans.Event { return s.ch }

// Dropped reports whether the subscription was closed because it fell behind.
// Once C is seen closed, Dropped gives the final answer.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Close ends the subscription. It is idempotent and safe to call
// concurrently with Publish.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.removeLocked(s)
}
