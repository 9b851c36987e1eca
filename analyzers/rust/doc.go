// Package rust is the extractor of Rust crates in an image's layers: the
// packages locked in Cargo.lock files, and the dependencies that
// cargo-auditable embedded in the binaries it built.
//
// # What is read
//
// Required offers the extractor, in each layer:
//
//   - every regular file named Cargo.lock, anywhere. Its [[package]]
//     entries (name, version, source) are read with
//     github.com/BurntSushi/toml; all lockfile formats (v1 with its
//     [metadata] checksums, v2, v3, v4) have them;
//   - every regular file with an execute bit and at least 256 bytes.
//     One that does not start with the ELF magic is left after four
//     bytes. An ELF is read into memory (its section headers are at its
//     end): if it has a .dep-v0 section (or rust-audit 0.1's
//     .rust-deps-v0), the zlib-compressed JSON dependency tree that
//     cargo-auditable embeds, it is read with
//     github.com/rust-secure-code/go-rustaudit. PE, Mach-O and
//     WebAssembly files are not looked at.
//
// Symbolic links are never offered nor followed, a link named Cargo.lock
// included: its target, if it is a regular Cargo.lock of some layer, is
// offered on its own, and a link to /etc/shadow reads nothing.
//
// # What is reported
//
// One package per crate and file: Ecosystem "crates.io", Name, Version,
// PURL pkg:cargo/<name>@<version>, Locations the Cargo.lock's or the
// binary's image path. The same name and version is reported once per
// file. Which crates are reported depends on their source:
//
//   - crates.io (in a Cargo.lock "registry+https://github.com/rust-lang/crates.io-index"
//     or "sparse+https://index.crates.io/"; in a binary "crates.io"):
//     always;
//   - git ("git+https://...#<commit>"; "git"): only if the version is a
//     SemVer release (1.2.3, not 1.2.3-alpha): a git checkout has no
//     crates.io version of its own, and the crate's version at that
//     commit, matched as the crates.io release of that version, is the
//     best there is (a commit between two releases may already hold a
//     fix). A git crate with a pre-release version is not reported;
//   - none in a Cargo.lock, "local" in a binary: path dependencies and
//     the workspace's own members (the binary's root crate, unless it
//     came from crates.io, as with cargo install). They are the project's
//     own code, have no published version and are not reported, and not
//     warned about;
//   - another registry ("registry+..." or "sparse+..." of another index;
//     "registry"), or a source this analyzer does not know: not
//     reported, since a crates.io crate of the same name may be another
//     crate.
//
// What a file held but was not reported (other registries, git
// pre-releases, entries without a valid name or version) is counted in
// one warning for the file. A binary's build dependencies (kind "build":
// build scripts and what they use) are not reported either, and not
// warned about: their code ran when the binary was built and is not in it
// (osv-scalibr does the same by default).
//
// # Safety and limits
//
// MaxFileBytes is DefaultMaxFileBytes (512 MB): the framework skips a
// larger file with a warning; it bounds the memory one binary takes. A
// Cargo.lock over MaxLockfileBytes (4 MB) is not read, with a warning.
// Of a binary only its ELF headers and the dependency section are parsed;
// that section must inflate to at most MaxDepInfoBytes, checked here
// before go-rustaudit (which inflates without a bound) is given the file.
// The TOML decoder's time is quadratic in the depth of keys, so a
// Cargo.lock that nests deeper or has longer dotted keys than a real one
// ever does is refused before it is decoded. Malformed files are warnings
// that never quote the file's content; only cancellation, a failure to
// send and a broken stream stop the layer. Owner is left to the image
// merge.
//
// This package imports only plugins/sdk, the standard library,
// packageurl-go, BurntSushi/toml and go-rustaudit; never the daemon, the
// plugin host, the sandbox, containerd or runc (a test in analyzers/
// checks it).
package rust
