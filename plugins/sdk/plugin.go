package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	analyzerv1 "github.com/assayhq/assay/plugins/proto/analyzer/v1"
)

// Handshake is shared by assayd and every analyzer plugin. ProtocolVersion
// changes only with an incompatible change of the contract (a new
// analyzer/vN proto package). The cookie is not a security measure; it only
// stops a plugin binary from being run by hand by mistake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "ASSAY_ANALYZER_PLUGIN",
	MagicCookieValue: "528a739cd963ad1295adbda4cb200fa720b05ab728249ea7c6d526f52579dde4",
}

// PluginName is the one plugin every analyzer binary serves.
const PluginName = "analyzer"

// PluginMap is the plugin set the host dispenses from. It is only read.
var PluginMap = plugin.PluginSet{PluginName: &GRPCPlugin{}}

// GRPCPlugin is the go-plugin glue: served with Impl set in the plugin,
// dispensed as a Client in the host. net/rpc is not supported.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the analyzer, in the plugin process only.
	Impl Analyzer
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the analyzer's gRPC adapter.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	analyzerv1.RegisterAnalyzerServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Client over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCClient(c), nil
}
