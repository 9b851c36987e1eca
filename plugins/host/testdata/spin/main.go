// Command spin is a hostile test plugin: its Analyze spins forever and
// ignores its context.
package main

import (
	"context"

	"github.com/assayhq/assay/plugins/sdk"
)

type spin struct{}

func (spin) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "spin", Version: "1"}, nil
}

var sink int

func (spin) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := emit.Warning(sdk.Warning{Message: "spinning"}); err != nil {
		return err
	}
	for i := 0; ; i++ {
		sink = i
	}
}

func main() { sdk.Serve(spin{}) }
