// Package rpm is the extractor of RPM-based layers (RHEL and UBI, CentOS,
// Rocky Linux, AlmaLinux, Fedora, SUSE and openSUSE, Azure Linux, ...): it
// reports each package of a layer's rpm databases, read with
// github.com/knqyf263/go-rpmdb, with its source package, and the files
// each package owns.
//
// # What is read
//
// The regular files of a layer at the paths of Databases: rpmdb.sqlite
// (SQLite, rpm 4.16 and later), Packages.db (ndb, SUSE) and Packages
// (Berkeley DB hash, rpm 4.15 and older) in /usr/lib/sysimage/rpm and
// /var/lib/rpm, and each one's write-ahead log ("-wal": SQLite's, which
// holds the latest changes until they are checkpointed). The framework
// streams them (plugins/sdk); a link at one of these paths is never
// followed (/var/lib/rpm is often a link to /usr/lib/sysimage/rpm: the
// database is then read where it is), and nothing else is opened. The
// format is told by the file's first bytes, not its name. os-release is
// not read: the image merge names the distribution.
//
// # What is reported
//
// Once the layer's last entry is seen (Finish: a write-ahead log may come
// before or after its database in the tar), one sdk.Package per installed
// package: OS "rpm"; Ecosystem "RPM" (UnknownEcosystem, the family);
// Name; Version "<version>-<release>", without the epoch; Epoch; Arch;
// SourceName and SourceVersion from the package's SOURCERPM
// ("openssl-3.0.7-27.el9.src.rpm" is openssl, 3.0.7-27.el9: the file name
// has no epoch; see ParseSourceRPM); Locations the database's image path,
// or the paths of each database of the layer that holds the same package,
// in the order of Databases; no PURL. distro.Finish, in the image merge,
// sets the ecosystem from os-release ("Red Hat:enterprise_linux:9::baseos",
// "SUSE:15.3", ...), the epoch into Version where the distribution's OSV
// records carry it, and the purl
// pkg:rpm/<vendor>/<name>@<version>-<release>?arch=<arch>&epoch=<epoch>&distro=<id>-<version-id>.
//
// After the packages, sdk.OwnedFiles: for each database and package, the
// absolute paths of the files (and directories) rpm installed for it, from
// its BASENAMES, DIRINDEXES and DIRNAMES tags; a long list comes in
// several messages of at most 1 MiB. Entries that make no absolute, clean
// path of valid UTF-8 without control characters are counted in a
// warning. The lists of one layer stop at MaxOwnedPaths paths or
// MaxOwnedBytes bytes, with a warning that counts what was left out.
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
// the database with go-rpmdb, writes one JSON record per package (and
// lines of its file paths, at most MaxOwnedPaths and MaxOwnedBytes of
// them per database) to stdout and exits. Its address space may grow by
// at most 384 MiB (no limit under the race detector); it gets at most
// Extractor.ReadTimeout (DefaultReadTimeout), and at most half of the
// time left before the context's deadline; it
// reports success only once go-rpmdb's goroutines have ended (a panicking
// goroutine closes go-rpmdb's channel before it ends the process, which
// would otherwise pass for a complete, possibly empty, listing) and, for
// a SQLite database, only if a count of the Packages table matches the
// listing (go-rpmdb ignores SQLite's errors while it steps through the
// rows, so it would list a truncated database as a shorter or empty one).
// A reader that crashes, times out, runs out of memory or says anything
// but its protocol costs that database, with a warning; the plugin
// carries on. The reader inherits nothing of the plugin but the database.
//
// A database is handed to the reader as a file: the stream is spooled.
// A Berkeley DB or ndb database is held in anonymous memory
// (memfd_create; an unlinked file of the temporary directory where the
// kernel refuses that), passed as the reader's file descriptor 3, and
// read at once. A SQLite database is copied into a private directory of
// the temporary directory (/tmp in the sandbox, a tmpfs of
// sandbox.tmpfs_bytes: 16 MiB by default, enough for the SQLite databases
// of minimal images, not for a large one; a copy that does not fit is a
// warning), because SQLite needs a writable directory beside the database
// for the shared-memory index of its write-ahead log (it rebuilds it from
// the log: the image's rpmdb.sqlite-shm is not needed). Its write-ahead
// log is copied beside it, and both are read in Finish and removed then
// (or, if the layer ends in an error before Finish, when the extractor is
// garbage collected). A log whose database is not in the same layer is
// not read, with a warning.
//
// # The reader in a binary of several extractors
//
// The reader is whatever binary runs the extractor, started again
// through /proc/self/exe with the arguments "assay-rpm-read-database
// <path>". This package's init recognises them, before main runs, in any
// binary that links the package: assay-rpm, a binary serving several
// extractors (it needs to do nothing but import this package and serve
// the extractor), and test binaries of other packages. Such a binary must
// therefore not parse or reject its arguments in an init of its own that
// runs earlier (a package this one does not depend on and whose import
// path sorts before it), and must run the extractor in its own process
// (the one /proc/self/exe names).
//
// # Safety and limits
//
// Warnings never quote a file: go-rpmdb's own error messages, which may
// hold bytes of the file, go to the debug log only; of a crashed reader a
// warning gives the Go runtime's one-line reason ("panic: runtime error:
// slice bounds out of range [:8218] with capacity 4096"), whose numbers
// may come from the file. A file over DefaultMaxFileBytes (or the
// request's MaxFileBytes for "rpm") is not read: the framework warns.
// Cancellation stops the reader process and the layer.
//
// This package imports plugins/sdk, the analyzers' distro, go-rpmdb,
// modernc.org/sqlite (pure Go, so the plugin stays a static binary) and
// golang.org/x/sys/unix; never the daemon, the plugin host, the sandbox,
// containerd or runc.
package rpm
