// Package sdktest helps analyzer authors test a plugin in one process over
// the real gRPC path (go-plugin's TestPluginGRPCConn), and holds the
// conformance checks every analyzer should pass. Import it from tests only.
package sdktest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/assayhq/assay/plugins/sdk"
)

// Connect serves a over an in-process go-plugin gRPC connection (with
// broker multiplexing, as in assayd) and returns the host side's Client.
// Both ends are closed when the test ends.
func Connect(t testing.TB, a sdk.Analyzer) sdk.Client {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, true, plugin.PluginSet{sdk.PluginName: &sdk.GRPCPlugin{Impl: a}})
	t.Cleanup(func() {
		// Close asks the server to stop through go-plugin's controller,
		// as the host does; stopping it here too would race with that.
		_ = client.Close()
		select {
		case <-server.DoneCh:
		case <-time.After(10 * time.Second):
			t.Error("sdktest: the plugin server did not stop after the client closed")
		}
	})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispense: %v", err)
	}
	c, ok := raw.(sdk.Client)
	if !ok {
		t.Fatalf("sdktest: dispensed %T, not an sdk.Client", raw)
	}
	return c
}

// Collect runs one analysis and returns every item, in order.
func Collect(ctx context.Context, c sdk.Client, req sdk.Request) ([]sdk.Item, error) {
	var items []sdk.Item
	err := c.Analyze(ctx, req, func(it sdk.Item) error {
		items = append(items, it)
		return nil
	})
	return items, err
}

// Conformance checks what assayd expects of every analyzer, over gRPC:
// a valid description; an analysis of an empty root that succeeds and
// emits only valid items of the kinds described; and an analysis with a
// cancelled context that returns promptly with an error.
func Conformance(t *testing.T, a sdk.Analyzer) {
	c := Connect(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	d, err := c.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	t.Run("Describe", func(t *testing.T) {
		if err := d.Validate(); err != nil {
			t.Error(err)
		}
	})
	t.Run("EmptyRoot", func(t *testing.T) {
		items, err := Collect(ctx, c, sdk.Request{Root: t.TempDir(), MaxFiles: 100, MaxFileBytes: 1 << 20})
		if err != nil {
			t.Fatalf("Analyze of an empty root: %v", err)
		}
		for _, it := range items {
			if err := it.Validate(); err != nil {
				t.Errorf("invalid item: %v", err)
			}
			if k := it.Kind(); k != sdk.KindWarning && !d.Produces(k) {
				t.Errorf("emitted a %s, but the description lists only %q", k, d.Kinds)
			}
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		start := time.Now()
		_, err := Collect(cctx, c, sdk.Request{Root: t.TempDir()})
		if err == nil {
			t.Fatal("Analyze with a cancelled context succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Analyze with a cancelled context: %v, want context.Canceled in the chain", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Analyze with a cancelled context took %v", d)
		}
	})
}
