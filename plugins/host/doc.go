// Package host is assayd's side of the analyzer plugins: it finds them
// (Discover reads <name>.plugin.json manifests), verifies each binary
// against its manifest's SHA-256 while copying it into a private cache,
// starts the verified copy through go-plugin (gRPC, AutoMTLS, a private
// socket directory, through the sandbox's Runner), calls Describe and
// Analyze with the caller's deadline, streams the items to the caller
// under a cap on their bytes, and always stops the plugin and removes what
// the run left behind.
//
// Every failure comes back as an *Error that carries a Status ("failed" or
// "timeout") and a Reason (refused, start, handshake, crashed, result-cap,
// protocol, rpc, deadline, cancelled, host).
//
// The package is imported by the daemon and must never import it (nor
// github.com/assayhq/assay/sandbox: the sandbox comes in as Options.Runner).
// A test checks both.
package host
