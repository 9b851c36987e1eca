// Command plugin is a go-plugin gRPC plugin that serves one plugin with no
// methods, besides go-plugin's own services (health, stdio, broker,
// controller): enough to test the handshake, the socket, mTLS and shutdown
// through a sandbox.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

type nop struct{ plugin.NetRPCUnsupportedPlugin }

func (nop) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (nop) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "ASSAY_SANDBOX_TEST",
			MagicCookieValue: "sandbox",
		},
		Plugins:    plugin.PluginSet{"nop": nop{}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
