package match

import (
	"fmt"
	"slices"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
)

// eventKind orders events of equal version: an introduced before the
// fixed or last_affected at the same version, so that [1.0, 1.0) is empty
// and [1.0, 1.0] holds 1.0.
type eventKind int

const (
	introduced eventKind = iota
	lastAffected
	fixed
	limit
)

// event is one parsed event of a range. zero is the "0" of introduced
// (before every version), infinite the "*" of limit.
type event struct {
	kind     eventKind
	raw      string
	v        Version
	zero     bool
	infinite bool
}

// parsedRange is a SEMVER or ECOSYSTEM range whose events all parsed,
// sorted as the OSV evaluation algorithm wants them.
type parsedRange struct {
	ordering string // ordering its versions were parsed under
	events   []event
	limits   bool
}

// parseRange reads one range's events under ordering o. An event the
// ordering refuses, or an event that is not exactly one of introduced,
// fixed, last_affected and limit, makes the range unusable: the error
// says why.
func parseRange(o string, parse func(string) (Version, error), r *osvschema.Range) (parsedRange, error) {
	pr := parsedRange{ordering: o, events: make([]event, 0, len(r.GetEvents()))}
	hasIntroduced := false
	for i, e := range r.GetEvents() {
		var ev event
		n := 0
		for _, c := range []struct {
			k eventKind
			s string
		}{{introduced, e.GetIntroduced()}, {fixed, e.GetFixed()}, {lastAffected, e.GetLastAffected()}, {limit, e.GetLimit()}} {
			if c.s != "" {
				ev.kind, ev.raw = c.k, c.s
				n++
			}
		}
		if n != 1 {
			return parsedRange{}, fmt.Errorf("event %d is not exactly one of introduced, fixed, last_affected and limit", i+1)
		}
		switch {
		case ev.kind == introduced && ev.raw == "0":
			ev.zero = true
			hasIntroduced = true
		case ev.kind == limit && ev.raw == "*":
			ev.infinite = true
		default:
			v, err := parse(ev.raw)
			if err != nil {
				return parsedRange{}, err
			}
			ev.v = v
		}
		if ev.kind == introduced {
			hasIntroduced = true
		}
		if ev.kind == limit {
			pr.limits = true
		}
		pr.events = append(pr.events, ev)
	}
	if !hasIntroduced {
		return parsedRange{}, fmt.Errorf("no introduced event")
	}
	var sortErr error
	slices.SortStableFunc(pr.events, func(a, b event) int {
		c, err := compareEvents(a, b)
		if err != nil && sortErr == nil {
			sortErr = err
		}
		if c != 0 {
			return c
		}
		return int(a.kind) - int(b.kind)
	})
	if sortErr != nil {
		return parsedRange{}, sortErr
	}
	return pr, nil
}

// compareEvents orders events by version: "0" first, "*" last.
func compareEvents(a, b event) (int, error) {
	switch {
	case a.zero && b.zero, a.infinite && b.infinite:
		return 0, nil
	case a.zero, b.infinite:
		return -1, nil
	case b.zero, a.infinite:
		return 1, nil
	}
	return a.v.Compare(b.v)
}

// contains evaluates the range for v as the OSV specification's
// IncludedInRanges does for one range, and returns the lowest fixed
// version above v ("" when there is none: last_affected only, or no fix).
func (pr parsedRange) contains(v Version) (affected bool, fix string, err error) {
	cmp := func(e event) (int, error) { // v compared with e
		switch {
		case e.zero:
			return 1, nil
		case e.infinite:
			return -1, nil
		}
		return v.Compare(e.v)
	}
	if pr.limits {
		before := false
		for _, e := range pr.events {
			if e.kind != limit {
				continue
			}
			c, err := cmp(e)
			if err != nil {
				return false, "", err
			}
			if c < 0 {
				before = true
				break
			}
		}
		if !before {
			return false, "", nil
		}
	}
	for _, e := range pr.events {
		c, err := cmp(e)
		if err != nil {
			return false, "", err
		}
		switch e.kind {
		case introduced:
			if c >= 0 {
				affected = true
			}
		case fixed:
			if c >= 0 {
				affected = false
			}
		case lastAffected:
			if c > 0 {
				affected = false
			}
		}
	}
	if !affected {
		return false, "", nil
	}
	// Events are sorted: the first fixed event above v is the lowest.
	for _, e := range pr.events {
		if e.kind != fixed {
			continue
		}
		c, err := cmp(e)
		if err != nil {
			return false, "", err
		}
		if c < 0 {
			return true, e.raw, nil
		}
	}
	return true, "", nil
}
