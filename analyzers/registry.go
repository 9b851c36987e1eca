// Package analyzers lists the analyzer plugins built from this tree.
//
// Each analyzer is a package of its own, one per ecosystem
// (analyzers/dpkg/), with real files and the expected output in its
// testdata/, and each is served as a separate, static go-plugin binary by
// analyzers/cmd/assay-<name>/. Analyzers run inside the sandbox: they
// import plugins/sdk and nothing of the daemon, the plugin host, the
// sandbox, containerd or runc (deps_test.go checks it). This package
// imports nothing, so that build tooling can read the list cheaply.
package analyzers

// Names lists the analyzers, sorted and unique (a test checks both). A
// name is what the analyzer's Describe returns, its manifest's name
// (<name>.plugin.json), and its command, analyzers/cmd/assay-<name>.
var Names = []string{
	"apk",
	"dpkg",
	"gobinary",
	"java",
	"npm",
	"python",
	"rpm",
	"ruby",
	"rust",
}
