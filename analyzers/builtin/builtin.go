// Package builtin assembles the built-in extractors into the one set the
// built-in plugin serves (analyzers/cmd/assay-builtin).
package builtin

import (
	"time"

	"github.com/assayhq/assay/analyzers"
	"github.com/assayhq/assay/analyzers/apk"
	"github.com/assayhq/assay/analyzers/dpkg"
	"github.com/assayhq/assay/analyzers/gobinary"
	"github.com/assayhq/assay/analyzers/java"
	"github.com/assayhq/assay/analyzers/npm"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/analyzers/python"
	"github.com/assayhq/assay/analyzers/rpm"
	"github.com/assayhq/assay/analyzers/ruby"
	"github.com/assayhq/assay/analyzers/rust"
	"github.com/assayhq/assay/plugins/sdk"
)

// Version is the set's version; each extractor has its own too.
const Version = "0.2.0"

// Set returns the built-in extractor set, in the order of analyzers.Names.
func Set() sdk.ExtractorSet {
	return sdk.ExtractorSet{
		Name:    analyzers.Plugin,
		Version: Version,
		// What the hungriest extractors need: java and rpm hold an
		// archive or database in memory, rpm's reader is a process.
		Resources: sdk.Resources{MemoryBytes: 512 << 20, Pids: 64, Timeout: 10 * time.Minute},
		New: func() []sdk.Extractor {
			return []sdk.Extractor{
				apk.NewExtractor(),
				dpkg.NewExtractor(),
				gobinary.NewExtractor(),
				java.NewExtractor(),
				npm.NewExtractor(),
				osrelease.NewExtractor(),
				python.NewExtractor(),
				rpm.NewExtractor(),
				ruby.NewExtractor(),
				rust.NewExtractor(),
			}
		},
	}
}
