// Command assay-example is the example analyzer plugin. assayd starts it;
// run by hand it only explains that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-example ./plugins/example/cmd/assay-example
package main

import (
	"github.com/assayhq/assay/plugins/example"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(example.Analyzer{}) }
