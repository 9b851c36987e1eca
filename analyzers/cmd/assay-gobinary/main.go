// Command assay-gobinary is the Go binary analyzer plugin: the modules and
// toolchain recorded in an image's Go executables. assayd starts it in a
// sandbox; run by hand it only explains that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-gobinary ./analyzers/cmd/assay-gobinary
package main

import (
	"github.com/assayhq/assay/analyzers/gobinary"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(gobinary.Analyzer{}) }
