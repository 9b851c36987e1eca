// Package webhook turns registry push notifications into scan requests.
//
// A CNCF distribution registry ("Docker Registry 2.0") POSTs an envelope
// {"events":[...]} to each configured notification endpoint. This package
// serves that endpoint and, for every push of an image manifest or index,
// asks the daemon to scan <mapped registry>/<repository>@<digest> with
// Trigger "webhook".
//
// Endpoint: POST / and POST /events (the same handler). "/" is what a
// registry's notifications.endpoints[].url usually names when the webhook
// has its own listener (Serve); "/events" lets it sit behind a proxy that
// routes by path. Any other path is 404, any other method 405.
//
// Content types: application/vnd.docker.distribution.events.v2+json (what
// distribution 3 sends), ...events.v1+json (what distribution 2.8, Debian's
// docker-registry, really sends, although its documentation shows v2) and
// application/json; media type parameters are allowed.
//
// Answers:
//
//	202  the envelope was handled: {"accepted":N,"deduplicated":N,"ignored":N,"skipped":N}
//	400  the body is not a JSON envelope {"events":[...]}
//	401  missing or wrong "Authorization: Bearer <token>" (the body is not read)
//	413  the body exceeds Options.MaxBodyBytes
//	415  the Content-Type is not an events media type or application/json
//	503  the daemon could not record a scan now; the registry will redeliver
//
// Counts: accepted = a new scan was queued; deduplicated = the digest was
// already scanned, queued, running or earlier in the same envelope; ignored =
// not a push of a manifest or index (layer pushes, pulls, mounts, deletes,
// schema 1 manifests); skipped = a push that cannot be acted on (bad digest
// or repository, unmapped registry, or a request the daemon refused as
// invalid).
//
// What it must not do: it never contacts the registry that sent the event,
// and it only ever builds references to the addresses the operator mapped in
// Options.Registries, so an event cannot make assay pull from a host of the
// sender's choosing. It keeps no state: idempotence under redelivery comes
// from the Submitter (Scanned, and Submit's dedupe of queued or running
// scans).
package webhook
