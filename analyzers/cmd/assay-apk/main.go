// Command assay-apk is the apk analyzer plugin: the installed Alpine
// packages of an image. assayd starts it in a sandbox; run by hand it only
// explains that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-apk ./analyzers/cmd/assay-apk
package main

import (
	"github.com/assayhq/assay/analyzers/apk"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(apk.Analyzer{}) }
