// Command broker is a hostile test plugin: it would talk to the host
// through go-plugin's connection broker, which the analyzer contract does
// not need; through that stream a plugin could make the host keep an
// entry per message for ever (go-plugin v1.8.0 never removes a knock's).
// It records whether the host opened the broker stream (a server
// interceptor sees every stream the host opens) and reports it, as a
// warning, from Analyze.
package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/assayhq/assay/plugins/sdk"
)

var brokerOpened atomic.Bool

type analyzer struct{}

func (analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "broker", Version: "1", Kinds: []string{sdk.KindPackage}}, nil
}

func (analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	// The host opens the stream as it connects, maybe not before this
	// call: give it time.
	for deadline := time.Now().Add(2 * time.Second); !brokerOpened.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return emit.Warning(sdk.Warning{Message: fmt.Sprintf("broker stream opened: %v", brokerOpened.Load())})
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: sdk.Handshake,
		Plugins:         plugin.PluginSet{sdk.PluginName: &sdk.GRPCPlugin{Impl: analyzer{}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
				if info.FullMethod == "/plugin.GRPCBroker/StartStream" {
					brokerOpened.Store(true)
				}
				return handler(srv, ss)
			}))
			return grpc.NewServer(opts...)
		},
	})
}
