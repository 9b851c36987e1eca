// Package rpm is the analyzer of RPM-based images (RHEL and UBI, CentOS,
// Rocky Linux, AlmaLinux, Fedora, SUSE and openSUSE, Azure Linux, ...): it
// reports each package of the image's rpm database, read with
// github.com/knqyf263/go-rpmdb, with its source package, an ecosystem
// named as OSV names the distribution, a purl and the database file.
//
// # What is read
//
// The databases of Databases: rpmdb.sqlite (SQLite, rpm 4.16 and later),
// Packages.db (ndb, SUSE) and Packages (Berkeley DB hash, rpm 4.15 and
// older) in /usr/lib/sysimage/rpm and /var/lib/rpm. Paths are resolved
// inside the image (package imageroot), and a file two paths lead to
// (/var/lib/rpm is often a link to /usr/lib/sysimage/rpm) is read once.
// The format is told by the file's first bytes, not its name. Nothing is
// walked: at most six files and the write-ahead log of a SQLite database
// are opened, so MaxFiles does not apply.
//
// # What is reported
//
// One package per installed package: Name; Version "<version>-<release>",
// with "<epoch>:" in front when the epoch is not zero and the ecosystem's
// OSV records carry epochs (the Red Hat family, and distributions OSV does
// not know; see Distro.Epoch); SourceName and SourceVersion from the
// package's SOURCERPM ("openssl-3.0.7-27.el9.src.rpm" is openssl,
// 3.0.7-27.el9: the file name has no epoch; see ParseSourceRPM); PURL
// pkg:rpm/<vendor>/<name>@<version>-<release>?arch=<arch>&epoch=<epoch>&distro=<id>-<version-id>
// (epoch only when not zero); Ecosystem from os-release (DistroOf, which
// follows osv-scalibr's mapping: "Red Hat:enterprise_linux:9::baseos",
// "AlmaLinux:9", "Rocky Linux", "SUSE:15.3", "openSUSE:Leap 15.5", ...;
// a distribution OSV does not know, such as Fedora or CentOS, gets
// osrelease's "Fedora:42", and an image without a usable os-release
// UnknownEcosystem, "RPM", each with a warning); Locations the database's
// image path (links resolved), or the paths of each database that holds
// the same package.
//
// The entries rpm makes for the OpenPGP keys it trusts (name gpg-pubkey,
// no architecture, no source) are not packages and are skipped; so are,
// with one warning per database that counts them, entries whose name,
// version, release or architecture is empty, too long, holds white space
// or control characters, or whose version or release holds a "-".
//
// # The reader process
//
// go-rpmdb is not safe on hostile input: its Berkeley DB and ndb readers
// run in goroutines of their own, where a malformed file makes them panic
// (out-of-range slices), loop for ever (an overflow page of the wrong
// type) or allocate without bound (a cyclic page chain), and a panic in a
// goroutine cannot be recovered. So each database is read by a separate
// process: the plugin starts itself again (/proc/self/exe) with the
// arguments "assay-rpm-read-database <path>", which this package's init
// recognises before anything else of the program runs. That process reads
// the database with go-rpmdb, writes one JSON record per package to
// stdout and exits. Its address space may grow by at most 384 MiB (no
// limit under the race detector); it gets at most Analyzer.ReadTimeout,
// and at most half of the time left before the analysis's deadline; it
// reports success only once go-rpmdb's goroutines have ended (a panicking
// goroutine closes go-rpmdb's channel before it ends the process, which
// would otherwise pass for a complete, possibly empty, listing) and, for
// a SQLite database, only if a count of the Packages table matches the
// listing (go-rpmdb ignores SQLite's errors while it steps through the
// rows, so it would list a truncated database as a shorter or empty one).
// A reader that crashes, times out, runs out of memory or says anything
// but its protocol costs that database, with a warning; the plugin
// carries on. The reader inherits nothing of the plugin but the database:
// a Berkeley DB or ndb file is passed as its file descriptor 3 (it opens
// /proc/self/fd/3), so those are read in place.
//
// A SQLite database is read from a copy: SQLite needs a writable
// directory beside the database for the shared-memory index of its
// write-ahead log. The database and its write-ahead log (rpmdb.sqlite-wal,
// which holds the latest changes until they are checkpointed) are copied
// into a private directory of the plugin's temporary directory (/tmp in
// the sandbox, a tmpfs of sandbox.tmpfs_bytes: 16 MiB by default, enough
// for the SQLite databases of minimal images, not for a large one; a copy
// that does not fit is a warning) and removed when the analysis ends.
//
// # Safety and limits
//
// Every file of the image is opened through an os.Root, with links
// resolved inside the image: a database that is a link to /etc/shadow
// reads the image's /etc/shadow, which is not a database (a warning).
// Warnings never quote a file: go-rpmdb's own error messages, which may
// hold bytes of the file, go to the debug log only; of a crashed reader a
// warning gives the Go runtime's one-line reason ("panic: runtime error:
// slice bounds out of range [:8218] with capacity 4096"), whose numbers
// may come from the file, and of os-release only a valid ID is quoted. A file over
// MaxFileBytes (DefaultMaxFileBytes when the request sets none) is not
// read. Cancellation stops the reader process and the analysis.
//
// This package imports plugins/sdk, the analyzers' imageroot, osrelease
// and warncap, packageurl-go, go-rpmdb and modernc.org/sqlite (pure Go,
// so the plugin stays a static binary); never the daemon, the plugin
// host, the sandbox, containerd or runc.
package rpm
