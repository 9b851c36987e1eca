// Command crash is a hostile test plugin: it emits a few packages, then
// exits with status 3 (options["mode"] = "exit") or panics ("panic").
package main

import (
	"context"
	"os"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
)

type crash struct{}

func (crash) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "crash", Version: "1", Kinds: []string{sdk.KindPackage}}, nil
}

func (crash) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	for range 10 {
		if err := emit.Package(sdk.Package{Ecosystem: "Debian", Name: "libc6", Version: "2.36-9"}); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond) // let the packages reach the host
	switch req.Options["mode"] {
	case "exit":
		os.Exit(3)
	case "panic":
		panic("crash plugin: boom")
	case "undeclared":
		return emit.Finding(sdk.Finding{ID: "F1"})
	}
	return nil
}

func main() { sdk.Serve(crash{}) }
