// Package sdk is what an analyzer plugin imports, and the plugin contract
// that assayd's host side shares with it: the Go interface (Analyzer), the
// go-plugin handshake and plugin map, and the gRPC adapters both ways
// (analyzer → gRPC server in the plugin, gRPC client → Client in the host).
//
// A plugin's main is
//
//	func main() { sdk.Serve(myanalyzer.Analyzer{}) }
//
// and its analyzer is tested in one process with sdktest.Connect, which runs
// the real gRPC path.
//
// This package must stay small and free of the daemon: it never imports
// github.com/assayhq/assay/daemon/..., plugins/host, the sandbox, containerd
// or runc (a test checks it). Everything a plugin author needs is here.
package sdk
