// Package api is the daemon's HTTP/JSON API under /v1, served on the local
// Unix socket. It holds one sorted handler table, checks every caller's peer
// credentials, rejects browser-style requests, and is the only place where
// the error kinds of daemon/errdefs become HTTP status codes.
//
// It declares the small interfaces it consumes (Service, EventSource,
// Authorizer); the daemon wiring implements them. It must not reach into the
// store, the queue or containerd itself, and it registers no metrics: the
// Gatherer it serves is given to it.
package api
