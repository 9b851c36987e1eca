// Command assay-java is the Java analyzer plugin: the Maven artifacts in
// an image's jar, war and ear files, nested archives included. assayd
// starts it in a sandbox; run by hand it only explains that. Build it
// statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-java ./analyzers/cmd/assay-java
package main

import (
	"github.com/assayhq/assay/analyzers/java"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(java.Analyzer{}) }
