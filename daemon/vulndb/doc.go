// Package vulndb is assay's embedded OSV vulnerability database: one bbolt
// file holding OSV records as received, indexed by (ecosystem, package name)
// and by alias, with the offline import (`assay db import PATH...`, an
// uploaded zip) and the scheduled updater that keeps configured sources
// current.
//
// Guarantees:
//   - An import or update is read and verified completely (every record
//     parsed as OSV) before the database is touched, then applied in one
//     bbolt write transaction: an error, a cancelled context or a crash
//     leaves the previous good state.
//   - Matching a package reads only that package's records; the database is
//     never loaded into memory as a whole. (The batch being imported is held
//     in memory, in compact form, bounded by Options.MaxTotalBytes.)
//   - Withdrawn records are stored (Lookup shows them) but never indexed by
//     package, so Query never returns them.
//   - A scheduled source owns its set of records and each new version of it
//     replaces that set; Import merges by id into a named source. When two
//     sources supply the same id, the last writer owns it.
//
// Inputs are never trusted: archive and record sizes are capped, zip entries
// are read through limits (a zip bomb is refused), entry names are only used
// in messages, never as paths.
//
// The package knows nothing about version ordering or range semantics (that
// is daemon/match) and never touches the network except through the
// caller's *http.Client in Updater.
package vulndb
