// Package java is the analyzer of Java archives: the Maven artifacts in
// an image's jar, war and ear files, and in the archives nested in them.
//
// # Which files
//
// The image is walked through an os.Root (top-level /proc, /sys and /dev
// are skipped) and every regular file whose name ends in .jar, .war,
// .ear, .jpi, .hpi, .par or .sar (case ignored) is opened with
// archive/zip. A symbolic link with such a name is resolved inside the
// image (package imageroot: an absolute target is the image's file, ".."
// stops at the image root, loops fail) and the file it designates is
// read, whatever its name; each file is read once, under its own path,
// however many links lead to it (Debian's /usr/share/java has a
// versioned link beside each jar). An exploded war (a directory named
// x.war) is walked like any directory.
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
// them: /srv/app.ear!/web.war!/WEB-INF/lib/slf4j-api.jar. A package found
// twice with the same name, version and location is reported once.
//
// # Bounds
//
// At most MaxFiles entries of the image are walked. An archive of the
// image over MaxFileBytes is not read; a smaller one is read through
// its file handle (zip needs an io.ReaderAt) limited to the size it had
// when checked. Inside archives:
//
//   - a nested archive is read into memory only if it declares at most
//     MaxFileBytes bytes, a pom.properties or manifest at most
//     MaxMetadataBytes; each is read through a limit of the size it
//     declares, so an entry that holds more than it says is refused
//     (archive/zip checks that too, and the CRC-32);
//   - archives nested more than MaxDepth levels deep are not read;
//   - one archive of the image, with everything nested in it, may have
//     MaxArchiveEntries zip entries and have ArchiveBytesFactor times
//     MaxFileBytes bytes decompressed (declared sizes are charged, so
//     that lying entries cost too). The entries of a zip are counted
//     from its central directory before archive/zip parses it, which
//     allocates for each entry it finds, whatever the count the archive
//     declares; past either budget the rest of that archive of the image
//     is not read.
//
// Each refusal is a warning naming the file (or the entry, by its
// location) and the limit; malformed archives, pom.properties and
// manifests are warnings, never errors, and warnings never quote file
// contents. Only cancellation and a failure to send stop the analysis.
// When the request sets no limit, DefaultMaxFiles and DefaultMaxFileBytes
// apply.
//
// The Debian package that installed a jar is not looked up (no Owner).
//
// This package imports only plugins/sdk, the standard library,
// packageurl-go and the analyzers' imageroot and warncap; never the
// daemon, the plugin host, the sandbox, containerd or runc (a test in
// analyzers/ checks it).
package java
