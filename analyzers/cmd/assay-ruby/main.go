// Command assay-ruby is the Ruby analyzer plugin: the gems installed in an
// image, from their specifications/*.gemspec files. assayd starts it in a
// sandbox; run by hand it only explains that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-ruby ./analyzers/cmd/assay-ruby
package main

import (
	"github.com/assayhq/assay/analyzers/ruby"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(ruby.Analyzer{}) }
