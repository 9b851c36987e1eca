// Command assay-builtin is the built-in analyzer plugin: every extractor
// of analyzers/builtin over image layers. assayd starts it in a sandbox
// with the layer blobs as read-only descriptors; run by hand it only
// explains that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-builtin ./analyzers/cmd/assay-builtin
package main

import (
	"github.com/assayhq/assay/analyzers/builtin"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.ServeExtractors(builtin.Set()) }
