// Package analyzers lists the built-in extractors.
//
// Each extractor is a package of its own, one per ecosystem
// (analyzers/dpkg/), with real files and the expected output in its
// testdata/. All of them are served by one static go-plugin binary,
// analyzers/cmd/assay-builtin (analyzers/builtin assembles the set), which
// reads image layers: the sdk's framework streams each layer once and
// hands every file to the extractors that want it. Extractors run inside
// the sandbox: they import plugins/sdk and nothing of the daemon, the
// plugin host, the sandbox, containerd or runc (deps_test.go checks it).
// This package imports nothing, so that build tooling can read the list
// cheaply (the Makefile writes it into the plugin's manifest).
package analyzers

// Plugin is the name of the built-in plugin (its manifest,
// builtin.plugin.json, and its command, analyzers/cmd/assay-builtin).
const Plugin = "builtin"

// Names lists the built-in extractors, sorted and unique (a test checks
// both, and that it is exactly the set analyzers/builtin serves). A name
// is what the extractor's Name returns; plugins.enabled may name it.
var Names = []string{
	"apk",
	"dpkg",
	"gobinary",
	"java",
	"npm",
	"os-release",
	"python",
	"rpm",
	"ruby",
	"rust",
}
