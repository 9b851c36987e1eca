// Package apk is the analyzer of Alpine images: it reports each package
// that apk installed, from apk-tools' installed database
// /lib/apk/db/installed, with its origin (the source package Alpine's
// advisories name), the OSV ecosystem of the release ("Alpine:v3.20",
// from os-release's VERSION_ID 3.20.3), a purl
// (pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3) and the
// database file.
//
// # What is reported
//
// The database is apk-tools' index format: paragraphs separated by empty
// lines, one field a line as "K:value" with a one-letter key (P: name,
// V: version, A: architecture, o: origin, F:/R: directories and files, and
// others that are ignored here). Every paragraph is an installed package:
// apk keeps no other state in this file. A paragraph is reported when it
// has P: and V:; its SourceName is o: (the name when o: is absent) and
// its SourceVersion is V:, since an origin package and its subpackages
// share one version. Malformed paragraphs (no P: or V:, a line that is not
// "K:value", one of P:, V:, A:, o: twice or with a value that is not
// printable ASCII without blanks, a line over MaxLineBytes) are skipped
// with one warning that counts them. Warnings never quote the file.
//
// # Bounds
//
// The file is opened only through imageroot, on an os.Root of the
// request's root: links resolve inside the image, never out of it, and
// loops stop with ELOOP. A file over MaxFileBytes (DefaultMaxFileBytes
// when the request sets none) is not read at all (a warning names it and
// the limit); one that grows past it while being read is cut short with a
// warning. The parser holds one paragraph's four fields and one line of at
// most MaxLineBytes; packages are emitted as they are read and ctx is
// checked at every paragraph.
//
// # Why a parser of our own
//
// The format is a few lines of code (ParseInstalled) and the maintained
// alternatives (trivy's and osv-scalibr's apk extractors) come with their
// scanners' frameworks, as the dpkg analyzer's documentation explains for
// scalibr. The parser is checked against an independent awk reading of a
// real database and fuzzed (FuzzParseInstalled).
//
// This package imports only plugins/sdk, the standard library,
// packageurl-go and the analyzers' own imageroot and osrelease; never the
// daemon, the plugin host, the sandbox, containerd or runc (a test in
// analyzers/ checks it).
package apk
