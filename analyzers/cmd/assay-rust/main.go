// Command assay-rust is the Rust analyzer plugin: the crates locked in an
// image's Cargo.lock files and embedded by cargo-auditable in its
// binaries. assayd starts it in a sandbox; run by hand it only explains
// that. Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-rust ./analyzers/cmd/assay-rust
package main

import (
	"github.com/assayhq/assay/analyzers/rust"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(rust.Analyzer{}) }
