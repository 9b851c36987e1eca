// Command assay-npm is the npm analyzer plugin: the npm packages installed
// in an image's node_modules trees and listed in its package-lock.json
// files. assayd starts it in a sandbox; run by hand it only explains that.
// Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-npm ./analyzers/cmd/assay-npm
package main

import (
	"github.com/assayhq/assay/analyzers/npm"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(npm.Analyzer{}) }
