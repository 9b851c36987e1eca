// Command assay-rpm is the rpm analyzer plugin: the packages of an image's
// rpm database (RHEL, CentOS, Fedora, Rocky, AlmaLinux, SUSE, ...). assayd
// starts it in a sandbox; run by hand it only explains that. The plugin
// starts itself again, as a separate process, to read each database (see
// package rpm). Build it statically:
//
//	CGO_ENABLED=0 go build -trimpath -o assay-rpm ./analyzers/cmd/assay-rpm
package main

import (
	"github.com/assayhq/assay/analyzers/rpm"
	"github.com/assayhq/assay/plugins/sdk"
)

func main() { sdk.Serve(rpm.Analyzer{}) }
