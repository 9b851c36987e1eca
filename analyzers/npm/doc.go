// Package npm is the npm extractor: the npm packages of an image, read
// layer by layer from the files the layer streaming framework
// (plugins/sdk) hands it.
//
// It reports two kinds of evidence, both in the OSV ecosystem "npm" with
// purls pkg:npm/<@scope>/<name>@<version>:
//
//   - Installed packages: every package.json that is the manifest of a
//     package directory in a node_modules tree, that is
//     .../node_modules/<name>/package.json or
//     .../node_modules/@<scope>/<name>/package.json, nested node_modules
//     included (node_modules/a/node_modules/b/package.json); a directory
//     whose name starts with "." (node_modules/.bin, .pnpm) is not a
//     package. Other package.json files inside a package (lib/package.json
//     markers and the like) and projects' own package.json are not
//     packages. The name and version are the manifest's "name" and
//     "version" (the name falls back to the directory's when the manifest
//     has none). The location is the manifest's path.
//
//   - Lockfile entries: package-lock.json, lockfileVersion 1 (the
//     "dependencies" tree, recursively) and 2 or 3 (the "packages" map
//     keyed by node_modules/... paths; the root "" entry, entries outside
//     node_modules (workspace sources) and "link": true entries are
//     skipped). The location is the lockfile's path.
//
// Double counting rule: a lockfile's entries are kept until the layer has
// been read (sdk.Finisher) and reported only when the layer holds no
// node_modules directory beside the lockfile. When it holds one, the
// installed manifests are the better evidence and are reported instead
// (the lockfile may list packages that were pruned, or not match what is
// installed). The rule sees one layer: a lockfile added above a layer that
// installed node_modules is reported. Lockfiles inside node_modules
// (published with a package, never used by npm to install) and npm's
// hidden node_modules/.package-lock.json are ignored; npm-shrinkwrap.json
// is not read. Identical (name, version, location) triples are reported
// once.
//
// Only regular files are read: links are never followed (a package.json
// that is a symbolic link is not read). Files over MaxFileBytes (64 MiB)
// are skipped by the framework with a warning; malformed JSON is a
// warning that does not quote the file. JSON nesting is bounded by
// encoding/json (10,000 levels), which bounds the recursion over a v1
// lockfile's dependency tree. The owner (an OS package shipping the
// files) is set later, by the image merge, not here.
package npm
