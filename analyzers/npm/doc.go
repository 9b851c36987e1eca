// Package npm is the npm analyzer: the npm packages of an image.
//
// It reports two kinds of evidence, both in the OSV ecosystem "npm" with
// purls pkg:npm/<@scope>/<name>@<version>:
//
//   - Installed packages: every package.json that is the manifest of a
//     package directory in a node_modules tree, that is
//     .../node_modules/<name>/package.json or
//     .../node_modules/@<scope>/<name>/package.json, nested node_modules
//     included (node_modules/a/node_modules/b/package.json). Other
//     package.json files inside a package (lib/package.json markers and
//     the like) and projects' own package.json are not packages. The name
//     and version are the manifest's "name" and "version" (the name falls
//     back to the directory's when the manifest has none). The location is
//     the manifest's path.
//
//   - Lockfile entries: package-lock.json, lockfileVersion 1 (the
//     "dependencies" tree, recursively) and 2 or 3 (the "packages" map
//     keyed by node_modules/... paths; the root "" entry, entries outside
//     node_modules (workspace sources) and "link": true entries are
//     skipped). The location is the lockfile's path.
//
// Double counting rule: a lockfile's entries are reported only when the
// directory holding it has no node_modules directory. When it has one, the
// installed manifests are the better evidence and are reported instead
// (the lockfile may list packages that were pruned, or not match what is
// installed). Lockfiles inside node_modules (published with a package,
// never used by npm to install) and npm's hidden
// node_modules/.package-lock.json are ignored. Identical (name, version,
// location) triples are reported once.
//
// The image is walked through an *os.Root without following symbolic
// links: a linked directory is not entered (so link loops cannot trap the
// walk, and pnpm's node_modules/<name> links into .pnpm are not counted
// twice). A package.json or package-lock.json that is itself a link is
// resolved inside the image (imageroot), never outside it. Directories are
// listed in batches and every entry counts against the request's
// MaxFiles, so a node_modules of a million entries stops the walk at the
// limit with a warning, without being listed in full; files over
// MaxFileBytes, unreadable files and malformed JSON are skipped with a
// warning.
package npm
