// Package java is the extractor of Java archives: the Maven artifacts in
// the jar, war and ear files of an image's layers, and in the archives
// nested in them.
//
// # Which files
//
// NewExtractor wants every regular file of a layer whose name ends in
// .jar, .war, .ear, .jpi, .hpi, .par or .sar (case ignored), except under
// the top-level /proc, /sys and /dev. Symbolic links are not wanted: the
// framework never follows them, and the file a link leads to is read
// under its own path when it is itself a regular file named like an
// archive (Debian's /usr/share/java has a versioned link beside each jar:
// each jar is reported once). A hard link is offered once, under its
// first name. An exploded war (a directory named x.war) is just
// directories: its jars are read like any others.
//
// archive/zip needs random access, so each archive is read from the
// layer stream into memory (at most MaxFileBytes, DefaultMaxFileBytes,
// unless the request overrides it; the framework skips bigger files with
// a warning) and read there.
//
// # What is reported
//
// In each archive:
//
//   - every META-INF/maven/<groupId>/<artifactId>/pom.properties (Maven's
//     archiver writes one into every artifact it builds; a shaded "fat"
//     jar holds one per artifact merged into it) is a package, with the
//     groupId, artifactId and version the file states;
//   - if there is none, the manifest META-INF/MANIFEST.MF is asked
//     (Implementation-Vendor-Id, Implementation-Title,
//     Implementation-Version, Bundle-SymbolicName, Bundle-Version): see
//     Manifest.Coordinates for the rules and for how little such a name
//     is worth. An archive that names nothing either way is a warning;
//   - every entry with an archive's extension, at any path (WEB-INF/lib
//     of a war, the modules and lib/ of an ear, BOOT-INF/lib of a Spring
//     Boot jar, WEB-INF/lib-provided, ...), is read into memory and
//     analysed the same way, recursively.
//
// Each package has Ecosystem "Maven", Name "groupId:artifactId" (OSV's
// spelling), Version, PURL pkg:maven/<groupId>/<artifactId>@<version>,
// and one Location: the archive's image path, or for a nested archive
// the path of the archive of the image, then "!/" and the entry's name
// in its zip, once per level, as Java's jar: URLs and Spring Boot write
// them: /srv/app.ear!/web.war!/WEB-INF/lib/slf4j-api.jar. The part
// before the first "!" is the layer file the merge of layers checks. A
// package found twice with the same name, version and location is
// reported once. Owner is not set: the merge of layers sets it from the
// OS packages' file lists.
//
// # Bounds
//
// Besides the framework's (entries, bytes and warnings per layer, path
// lengths) and MaxFileBytes, inside archives:
//
//   - a nested archive is read into memory only if it declares at most
//     DefaultMaxFileBytes bytes, a pom.properties or manifest at most
//     MaxMetadataBytes; each is read through a limit of the size it
//     declares, so an entry that holds more than it says is refused
//     (archive/zip checks that too, and the CRC-32);
//   - archives nested more than MaxDepth levels deep are not read;
//   - one archive of the image, with everything nested in it, may have
//     MaxArchiveEntries zip entries and have ArchiveBytesFactor times
//     DefaultMaxFileBytes bytes decompressed (declared sizes are
//     charged, so that lying entries cost too). The entries of a zip are
//     counted from its central directory before archive/zip parses it,
//     which allocates for each entry it finds, whatever the count the
//     archive declares; past either budget the rest of that archive of
//     the image is not read.
//
// Each refusal is a warning naming the file (or the entry, by its
// location) and the limit; malformed archives, pom.properties and
// manifests are warnings, never errors, and warnings never quote file
// contents. Only cancellation, a short layer stream and a failure to
// send are errors.
//
// This package imports only plugins/sdk, the standard library and
// packageurl-go; never the daemon, the plugin host, the sandbox,
// containerd or runc (a test in analyzers/ checks it).
package java
