// Package gobinary is the analyzer of Go binaries: for each Go executable
// of an image it reports the modules that the Go toolchain recorded in it
// (its build information, as `go version -m` prints it): the main module,
// each dependency, and the toolchain itself as "stdlib", all in the OSV
// ecosystem "Go", with a purl (pkg:golang/github.com/google/uuid@v1.4.0)
// and the binary's path in the image.
//
// # What is reported
//
// The main module is reported unless its version is "(devel)" (built from
// a checkout, it has no version to match advisories against). A
// dependency that go.mod replaced by another module version is reported as
// the replacement, its path and version, since that is the code in the
// binary; one replaced by a directory (no version) is reported as
// required. The toolchain is "stdlib" with the version of `go version`
// without its "go" prefix ("go1.21.3" → "1.21.3", "go1.22rc1" → "1.22rc1"),
// as OSV's Go advisories name it.
//
// # Which files
//
// The image root is walked through an os.Root, without following symbolic
// links: a link's target, if it is inside the image, is a regular file
// that the walk visits on its own, and one that points out of the image
// (an absolute link resolves inside the image, never on the host) is
// never read. A regular file is looked at if one of its execute bits is
// set and its first four bytes are the ELF magic; only then is
// debug/buildinfo.Read given the open file (an io.ReaderAt bounded by the
// size the file had when it was checked). An ELF that is not a Go binary
// is skipped silently; one debug/buildinfo cannot read (truncated,
// corrupt) is skipped with a warning.
//
// # Bounds
//
// At most MaxFiles entries of the image are walked (a warning says when
// the walk stopped); an ELF executable over MaxFileBytes is not read (a
// warning names it and the limit). When the request sets no limit,
// DefaultMaxFiles and DefaultMaxFileBytes apply. ctx is checked at every
// entry. At most 100 warnings are sent, then one that counts the rest.
//
// # Why debug/buildinfo
//
// It is the standard library's reader of exactly this data, maintained
// with the toolchain that writes it, and `go version -m` itself uses it;
// the tests compare the analyzer's output with `go version -m` on a binary
// they build, and fuzz the ELF check and buildinfo.Read (FuzzBuildInfo).
//
// This package imports only plugins/sdk, the standard library,
// packageurl-go and the analyzers' own imageroot; never the daemon, the
// plugin host, the sandbox, containerd or runc (a test in analyzers/
// checks it).
package gobinary
