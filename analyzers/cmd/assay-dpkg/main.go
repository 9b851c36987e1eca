// Command assay-dpkg is the dpkg analyzer plugin: the installed Debian and
// Ubuntu packages of an image. assayd starts it in a sandbox; run by hand
// it only explains that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-dpkg ./analyzers/cmd/assay-dpkg
package main

import (
	"github.com/assayhq/assay/analyzers/dpkg"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(dpkg.Analyzer{}) }
