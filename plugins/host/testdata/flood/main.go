// Command flood is a hostile test plugin: it sends packages until it has
// sent options["bytes"] bytes of names (or one package that large when
// options["single"] is set), whatever the host's cap.
package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/assayhq/assay/plugins/sdk"
)

type flood struct{}

func (flood) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "flood", Version: "1", Kinds: []string{sdk.KindPackage}}, nil
}

func (flood) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	total, _ := strconv.Atoi(req.Options["bytes"])
	if req.Options["single"] != "" {
		return emit.Package(sdk.Package{Ecosystem: "Go", Name: strings.Repeat("x", total)})
	}
	name := strings.Repeat("x", 1000)
	for sent := 0; sent < total; sent += len(name) {
		if err := emit.Package(sdk.Package{Ecosystem: "Go", Name: fmt.Sprintf("%s%d", name, sent)}); err != nil {
			return err
		}
	}
	return nil
}

func main() { sdk.Serve(flood{}) }
