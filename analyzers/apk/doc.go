// Package apk is the extractor of Alpine layers: from apk-tools' installed
// database /lib/apk/db/installed it reports each package apk installed,
// with its origin (the source package Alpine's advisories name), and the
// files each package owns.
//
// # What it reads
//
// Only a regular file at /lib/apk/db/installed (InstalledFile) of a layer:
// the framework streams it once (plugins/sdk); a link there is never
// followed, and nothing else is opened. os-release is not read: the image
// merge names the release.
//
// # What it emits
//
// The database is apk-tools' index format: paragraphs separated by empty
// lines, one field a line as "K:value" with a one-letter key (P: name,
// V: version, A: architecture, o: origin, F:/R: directories and files, and
// others that are ignored here). Every paragraph is an installed package:
// apk keeps no other state in this file. A paragraph is reported when it
// has P: and V:, as an sdk.Package with OS "apk", Ecosystem "Alpine" (the
// family), Name, Version, Arch, SourceName o: (the name when o: is absent),
// SourceVersion V: (an origin package and its subpackages share one
// version), Locations the database and no PURL: distro.Finish, in the
// image merge, sets the release's ecosystem ("Alpine:v3.20", from
// os-release's VERSION_ID 3.20.3) and the purl
// (pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3).
//
// Each package is followed by sdk.OwnedFiles: the paths of its R: lines,
// "/" + the F: directory before + "/" + the R: name, so the merge can tell
// which language packages belong to it. A package with many files has
// several such messages (each under 1 MiB).
//
// Malformed paragraphs (no P: or V:, a line that is not "K:value", one of
// P:, V:, A:, o: twice or with a value that is not printable ASCII without
// blanks, a line over MaxLineBytes) are skipped with one warning that
// counts them; R: lines that name no file (before any F:, after an F:
// with "." or "..", a "/" in the name, control characters, invalid UTF-8,
// a path over MaxPathBytes) are counted in another. Warnings never quote
// the file.
//
// # Bounds
//
// A database over DefaultMaxFileBytes is not read (the framework warns).
// The parser holds one paragraph's four fields, its file list and one line
// of at most MaxLineBytes; packages are emitted as they are read and ctx
// is checked at every paragraph. The file lists of one layer are cut at
// MaxOwnedPaths paths or MaxOwnedBytes bytes, with a warning that counts
// what was left out.
//
// # Why a parser of our own
//
// The format is a few lines of code (ParseInstalled, ParseInstalledFiles)
// and the maintained alternatives (trivy's and osv-scalibr's apk
// extractors) come with their scanners' frameworks, as the dpkg analyzer's
// documentation explains for scalibr. The parser is checked against an
// independent awk reading of a real database and fuzzed
// (FuzzParseInstalled, FuzzParseInstalledFiles).
//
// This package imports only plugins/sdk, the standard library and the
// analyzers' own distro; never the daemon, the plugin host, the sandbox,
// containerd or runc (a test in analyzers/ checks it).
package apk
