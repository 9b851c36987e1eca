// Package python is the analyzer of installed Python distributions: the
// core metadata of each distribution installed in an image's
// site-packages or dist-packages directories.
//
// # What is read
//
// The analyzer walks the whole image (never following a symbolic link
// while walking, so a linked directory is not entered) and, in every
// directory named site-packages or dist-packages
// (/usr/lib/python3/dist-packages, /usr/local/lib/python3.11/site-packages,
// a virtual environment's lib/python3.X/site-packages, ...), looks at:
//
//   - NAME-VERSION.dist-info directories: their METADATA file (wheels,
//     modern pip);
//   - NAME-VERSION.egg-info directories: their PKG-INFO file (setuptools,
//     most Debian python3-* packages);
//   - NAME-VERSION.egg-info regular files: the file itself (distutils).
//
// Of the metadata only the RFC 822-style header is read (net/textproto;
// up to the first blank line), and of it only Name and Version. Zipped
// eggs and .egg directories are not read.
//
// # What is reported
//
// One package per distribution: Ecosystem "PyPI", Name as the metadata
// spells it, Version, PURL pkg:pypi/<name normalised per PEP 503>@<version>,
// Locations the metadata file's image path. If the image has a dpkg
// database, the file lists /var/lib/dpkg/info/*.list are read, and a
// distribution whose .dist-info or .egg-info a Debian package lists gets
// that package's name (without a ":arch" qualifier) as Owner: scanners
// then know that the Debian package's version, not the PyPI one, is what
// to match advisories against.
//
// # Safety and limits
//
// Every file is opened through an os.Root, links resolved inside the
// image (package imageroot), so nothing outside the image is read; a
// metadata file that is a link to another file of the image (even
// /etc/shadow) is parsed as metadata, and the warnings about it never
// quote its content. At most MaxFiles entries of the image are walked
// (and at most MaxFiles dpkg file lists read) and no file of more than
// MaxFileBytes bytes is read; when a limit cuts the analysis short, a
// warning says so. Malformed metadata, unreadable files and loops are
// warnings, never errors; only cancellation and a failure to send stop
// the analysis.
package python
