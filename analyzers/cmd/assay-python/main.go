// Command assay-python is the Python analyzer plugin: the distributions
// installed in an image's site-packages and dist-packages directories.
// assayd starts it in a sandbox; run by hand it only explains that. Build
// it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-python ./analyzers/cmd/assay-python
package main

import (
	"github.com/assayhq/assay/analyzers/python"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(python.Analyzer{}) }
