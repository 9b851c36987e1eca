// Package python is the extractor of installed Python distributions: the
// core metadata of each distribution installed in an image's
// site-packages or dist-packages directories, read layer by layer from
// the files the layer streaming framework (plugins/sdk) hands it.
//
// # What is read
//
// In every directory named site-packages or dist-packages
// (/usr/lib/python3/dist-packages, /usr/local/lib/python3.11/site-packages,
// a virtual environment's lib/python3.X/site-packages, ...), the
// extractor wants:
//
//   - NAME-VERSION.dist-info/METADATA (wheels, modern pip);
//   - NAME-VERSION.egg-info/PKG-INFO (setuptools, most Debian python3-*
//     packages);
//   - NAME-VERSION.egg-info regular files, the file itself (distutils).
//
// Files inside another distribution's .dist-info or .egg-info directory
// are not metadata. Only regular files are read: links are never
// followed, so a metadata file that is a symbolic link is not read. Of the
// metadata only the RFC 822-style header is parsed (net/textproto; up to
// the first blank line), and of it only Name and Version. Zipped eggs and
// .egg directories are not read.
//
// # What is reported
//
// One package per metadata file: Ecosystem "PyPI", Name as the metadata
// spells it, Version, PURL pkg:pypi/<name normalised per PEP 503>@<version>,
// Locations the metadata file's image path. Owner is not set here: the
// image merge sets it from the OS packages' file lists (a distribution a
// Debian package ships is matched against the Debian package's version).
//
// # Limits
//
// Files over MaxFileBytes (64 MiB) are skipped by the framework with a
// warning; a Name or Version over 1 KB, not UTF-8 or holding control
// characters makes the metadata malformed. Malformed metadata is a warning
// that never quotes the file. Entry counts and layer sizes are the
// framework's limits.
package python
