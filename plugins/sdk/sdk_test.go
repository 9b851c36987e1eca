package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// fake is a hand-written analyzer whose Analyze is the test's function.
type fake struct {
	desc    sdk.Description
	analyze func(ctx context.Context, req sdk.Request, emit sdk.Emitter) error
}

func (f fake) Describe(context.Context) (sdk.Description, error) { return f.desc, nil }

func (f fake) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	return f.analyze(ctx, req, emit)
}

var desc = sdk.Description{
	Name:       "fake",
	Version:    "1.2.3",
	Kinds:      []string{sdk.KindPackage, sdk.KindFinding},
	Ecosystems: []string{"Debian", "Go"},
	Resources:  sdk.Resources{MemoryBytes: 256 << 20, Pids: 32, Timeout: 90 * time.Second},
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestDescribe(t *testing.T) {
	c := sdktest.Connect(t, fake{desc: desc})
	got, err := c.Describe(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(desc) {
		t.Errorf("Describe = %+v, want %+v", got, desc)
	}
}

func TestDescribeInvalid(t *testing.T) {
	c := sdktest.Connect(t, fake{desc: sdk.Description{Name: "x"}})
	if _, err := c.Describe(testCtx(t)); err == nil || !strings.Contains(err.Error(), "without a version") {
		t.Fatalf("Describe of an invalid description: %v", err)
	}
}

func TestAnalyzeStreamsManyItems(t *testing.T) {
	const n = 10000
	want := sdk.Request{
		Root:         "/target",
		ImageConfig:  []byte(`{"architecture":"amd64"}`),
		Options:      map[string]string{"a": "b"},
		MaxFileBytes: 1 << 20,
		MaxFiles:     5000,
	}
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
		if fmt.Sprint(req) != fmt.Sprint(want) {
			return fmt.Errorf("request = %+v, want %+v", req, want)
		}
		for i := range n {
			var err error
			switch i % 3 {
			case 0:
				err = emit.Package(sdk.Package{
					Ecosystem: "Debian", Name: fmt.Sprintf("pkg%d", i), Version: "1.0-1",
					PURL: "pkg:deb/debian/pkg", SourceName: "src", SourceVersion: "1.0-1",
					Owner: "owner", Locations: []string{"/var/lib/dpkg/status"},
				})
			case 1:
				err = emit.Finding(sdk.Finding{ID: fmt.Sprintf("F%d", i), Severity: "high", Summary: "s", Location: "/etc/x", Details: map[string]string{"k": "v"}})
			case 2:
				err = emit.Warning(sdk.Warning{Message: fmt.Sprintf("w%d", i), Path: "/p"})
			}
			if err != nil {
				return err
			}
		}
		return nil
	}})
	items, err := sdktest.Collect(testCtx(t), c, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n {
		t.Fatalf("got %d items, want %d", len(items), n)
	}
	for i, it := range items {
		if err := it.Validate(); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if it.Size <= 0 {
			t.Fatalf("item %d: size %d", i, it.Size)
		}
		switch i % 3 {
		case 0:
			p := it.Package
			if p == nil || p.Name != fmt.Sprintf("pkg%d", i) || p.Owner != "owner" || p.SourceName != "src" || len(p.Locations) != 1 || p.PURL == "" {
				t.Fatalf("item %d = %+v", i, it)
			}
		case 1:
			if f := it.Finding; f == nil || f.ID != fmt.Sprintf("F%d", i) || f.Details["k"] != "v" {
				t.Fatalf("item %d = %+v", i, it)
			}
		case 2:
			if w := it.Warning; w == nil || w.Message != fmt.Sprintf("w%d", i) || w.Path != "/p" {
				t.Fatalf("item %d = %+v", i, it)
			}
		}
	}
}

// Each Emit is one message that the host sees before the next is made: the
// analyzer waits for the host to acknowledge item i before emitting i+1.
func TestEmitIsNotBuffered(t *testing.T) {
	ack := make(chan int)
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(ctx context.Context, _ sdk.Request, emit sdk.Emitter) error {
		for i := range 5 {
			if err := emit.Warning(sdk.Warning{Message: fmt.Sprint(i)}); err != nil {
				return err
			}
			select {
			case got := <-ack:
				if got != i {
					return fmt.Errorf("ack %d for item %d", got, i)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}})
	n := 0
	err := c.Analyze(testCtx(t), sdk.Request{}, func(it sdk.Item) error {
		ack <- n
		n++
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("Analyze: %v after %d items", err, n)
	}
}

func TestCancellationReachesAnalyze(t *testing.T) {
	seen := make(chan error, 1)
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(ctx context.Context, _ sdk.Request, emit sdk.Emitter) error {
		if err := emit.Warning(sdk.Warning{Message: "started"}); err != nil {
			return err
		}
		<-ctx.Done()
		seen <- ctx.Err()
		return ctx.Err()
	}})
	ctx, cancel := context.WithCancel(testCtx(t))
	err := c.Analyze(ctx, sdk.Request{}, func(sdk.Item) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
	select {
	case err := <-seen:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the plugin's ctx ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancellation did not reach the plugin's Analyze")
	}
}

func TestDeadlinePropagates(t *testing.T) {
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(ctx context.Context, _ sdk.Request, emit sdk.Emitter) error {
		dl, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		if err := emit.Warning(sdk.Warning{Message: time.Until(dl).String()}); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}})
	ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	var left time.Duration
	err := c.Analyze(ctx, sdk.Request{}, func(it sdk.Item) error {
		var perr error
		left, perr = time.ParseDuration(it.Warning.Message)
		return perr
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Analyze = %v, want context.DeadlineExceeded", err)
	}
	if left <= 0 || left > 2*time.Second {
		t.Errorf("the plugin saw a deadline %v away, want (0, 2s]", left)
	}
}

func TestCallbackErrorStopsStream(t *testing.T) {
	stopped := make(chan error, 1)
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(ctx context.Context, _ sdk.Request, emit sdk.Emitter) error {
		for {
			if err := emit.Warning(sdk.Warning{Message: "again"}); err != nil {
				stopped <- err
				return err
			}
		}
	}})
	errStop := errors.New("enough")
	n := 0
	err := c.Analyze(testCtx(t), sdk.Request{}, func(sdk.Item) error {
		n++
		if n == 5 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Analyze = %v, want the callback's error", err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin's emitter kept working after the host stopped reading")
	}
}

func TestAnalyzeError(t *testing.T) {
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(context.Context, sdk.Request, sdk.Emitter) error {
		return errors.New("dpkg status unreadable")
	}})
	_, err := sdktest.Collect(testCtx(t), c, sdk.Request{})
	if status.Code(errors.Unwrap(err)) != codes.Unknown || !strings.Contains(err.Error(), "dpkg status unreadable") {
		t.Fatalf("Analyze = %v", err)
	}
}

func TestEmitterValidatesAndIsConcurrencySafe(t *testing.T) {
	c := sdktest.Connect(t, fake{desc: desc, analyze: func(ctx context.Context, _ sdk.Request, emit sdk.Emitter) error {
		if err := emit.Package(sdk.Package{Name: "no-ecosystem"}); err == nil {
			return errors.New("a package without ecosystem was accepted")
		}
		if err := emit.Finding(sdk.Finding{}); err == nil {
			return errors.New("a finding without id was accepted")
		}
		if err := emit.Warning(sdk.Warning{}); err == nil {
			return errors.New("an empty warning was accepted")
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 100 {
					if err := emit.Package(sdk.Package{Ecosystem: "Go", Name: fmt.Sprintf("g%d/%d", g, i)}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}})
	items, err := sdktest.Collect(testCtx(t), c, sdk.Request{})
	if err != nil || len(items) != 800 {
		t.Fatalf("Analyze: %v, %d items", err, len(items))
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, fake{desc: desc, analyze: func(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return emit.Warning(sdk.Warning{Message: "nothing here", Path: req.Root})
	}})
}

func TestItemValidate(t *testing.T) {
	for _, it := range []sdk.Item{
		{},
		{Package: &sdk.Package{Ecosystem: "Go", Name: "x"}, Warning: &sdk.Warning{Message: "m"}},
		{Package: &sdk.Package{Name: "x"}},
	} {
		if it.Validate() == nil {
			t.Errorf("%+v validated", it)
		}
	}
}
