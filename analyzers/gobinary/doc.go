// Package gobinary is the extractor of Go binaries: for each Go executable
// of a layer it reports the modules that the Go toolchain recorded in it
// (its build information, as `go version -m` prints it): the main module,
// each dependency, and the toolchain itself as "stdlib", all in the OSV
// ecosystem "Go", with a purl (pkg:golang/github.com/google/uuid@v1.4.0)
// and the binary's path in the image as its location.
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
// as OSV's Go advisories name it. Owner is left to the image merge.
//
// # Which files
//
// Required offers the extractor every regular file of a layer with an
// execute bit and at least 256 bytes; symbolic links are never offered
// (their target, a regular file of some layer, is offered on its own).
// Extract reads the file as a stream, never holding it: a file whose
// first four bytes are not the ELF magic is left at once (other formats
// are not looked at, as before); in an ELF the stream is searched, 256 KB
// at a time, for the 32-byte build information header at a 16-byte
// aligned offset, checked beyond its magic (pointer size, flags, zero
// padding). Go 1.18 and later write the Go version and the module
// information inline after it: they are read (bounded: 4 KB and 16 MB),
// unframed and parsed with runtime/debug.ParseBuildInfo, as
// debug/buildinfo does, and the rest of the file is not read. An ELF
// without a header is skipped silently; one whose build information is
// cut short or malformed is skipped with a warning. A binary of Go before
// 1.18 keeps pointers into its data segment instead, which need the
// segments' addresses: it is reported as such in a warning, its modules
// are not read (see readBuildInfo for why the file offset stands in for
// the address).
//
// # Bounds
//
// MaxFileBytes is DefaultMaxFileBytes (512 MB): the framework skips a
// larger executable with a warning. The scan holds 256 KB; ctx is checked
// at each chunk. Warnings never quote the file (ParseBuildInfo's errors do,
// so they are not passed on).
//
// # Tests
//
// The tests build a program with the local toolchain and compare the
// extractor's output over a layer with `go version -m`, and with
// debug/buildinfo on binaries of other architectures (32-bit, big-endian,
// PIE) and on the test binary itself, which holds the magic as data. The
// fuzz target FuzzBuildInfo feeds bytes through the stream reader.
//
// This package imports only plugins/sdk, the standard library and
// packageurl-go; never the daemon, the plugin host, the sandbox,
// containerd or runc (a test in analyzers/ checks it).
package gobinary
