package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	analyzerv1 "github.com/assayhq/assay/plugins/proto/analyzer/v1"
)

// grpcServer adapts an Analyzer to the generated gRPC server, in the plugin.
type grpcServer struct {
	analyzerv1.UnimplementedAnalyzerServer
	impl Analyzer
}

func (s *grpcServer) Describe(ctx context.Context, _ *analyzerv1.DescribeRequest) (*analyzerv1.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	if err := d.Validate(); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return describeToProto(d), nil
}

func (s *grpcServer) Analyze(req *analyzerv1.AnalyzeRequest, stream grpc.ServerStreamingServer[analyzerv1.AnalyzeResponse]) error {
	ctx := stream.Context()
	e := &streamEmitter{stream: stream}
	r := requestFromProto(req)
	var err error
	if ia, ok := s.impl.(ItemAnalyzer); ok {
		err = ia.AnalyzeItems(ctx, r, e.sendItem)
	} else {
		err = s.impl.Analyze(ctx, r, e)
	}
	e.close()
	if err != nil {
		return toStatus(ctx, err)
	}
	return nil
}

// toStatus keeps gRPC statuses and context errors recognisable on the other
// side; anything else travels as Unknown with its message.
func toStatus(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// streamEmitter sends each item as one stream message. gRPC streams are not
// safe for concurrent Send, hence the lock.
type streamEmitter struct {
	mu     sync.Mutex
	stream grpc.ServerStreamingServer[analyzerv1.AnalyzeResponse]
	done   bool
}

var _ Emitter = (*streamEmitter)(nil)

var errEmitterClosed = errors.New("sdk: emit after Analyze returned")

func (e *streamEmitter) send(m *analyzerv1.AnalyzeResponse) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return errEmitterClosed
	}
	if err := e.stream.Context().Err(); err != nil {
		return err
	}
	return e.stream.Send(m)
}

func (e *streamEmitter) sendItem(it Item) error {
	if err := it.Validate(); err != nil {
		return err
	}
	return e.send(itemToProto(it))
}

func (e *streamEmitter) close() {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
}

func (e *streamEmitter) Package(p Package) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return e.send(&analyzerv1.AnalyzeResponse{Item: &analyzerv1.AnalyzeResponse_Package{Package: packageToProto(p)}})
}

func (e *streamEmitter) Finding(f Finding) error {
	if err := f.Validate(); err != nil {
		return err
	}
	return e.send(&analyzerv1.AnalyzeResponse{Item: &analyzerv1.AnalyzeResponse_Finding{Finding: findingToProto(f)}})
}

func (e *streamEmitter) Warning(w Warning) error {
	if err := w.Validate(); err != nil {
		return err
	}
	return e.send(&analyzerv1.AnalyzeResponse{Item: &analyzerv1.AnalyzeResponse_Warning{Warning: &analyzerv1.Warning{Message: w.Message, Path: w.Path}}})
}

// grpcClient is the host's Client over the generated gRPC client.
type grpcClient struct {
	c analyzerv1.AnalyzerClient
}

// NewGRPCClient returns a Client that talks to a plugin over conn.
func NewGRPCClient(conn grpc.ClientConnInterface) Client {
	return &grpcClient{c: analyzerv1.NewAnalyzerClient(conn)}
}

func (c *grpcClient) Describe(ctx context.Context) (Description, error) {
	resp, err := c.c.Describe(ctx, &analyzerv1.DescribeRequest{})
	if err != nil {
		return Description{}, callError(ctx, "describe", err)
	}
	return describeFromProto(resp), nil
}

func (c *grpcClient) Analyze(ctx context.Context, req Request, fn func(Item) error) error {
	// Our own cancel stops the stream when fn refuses an item; the
	// plugin's Send then fails and its Analyze returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Analyze(ctx, requestToProto(req))
	if err != nil {
		return callError(ctx, "analyze", err)
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return callError(ctx, "analyze", err)
		}
		it := itemFromProto(m)
		if err := fn(it); err != nil {
			return err
		}
	}
}

// callError keeps the context's error in the chain, so that callers can
// tell a deadline from a failure with errors.Is.
//
// The plugin's side of a call gets the deadline in the request and may end
// it a moment before the caller's own context does; a DeadlineExceeded
// that close to ctx's deadline waits for ctx, so that the caller sees its
// deadline and not a failure.
func callError(ctx context.Context, op string, err error) error {
	code := status.Code(err)
	if dl, ok := ctx.Deadline(); ok && code == codes.DeadlineExceeded && ctx.Err() == nil {
		if wait := time.Until(dl); wait < time.Second {
			t := time.NewTimer(wait + 50*time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil && (code == codes.Canceled || code == codes.DeadlineExceeded) {
		return fmt.Errorf("sdk: %s: %w", op, ctxErr)
	}
	return fmt.Errorf("sdk: %s: %w", op, err)
}

// itemFromProto converts one stream message. An empty message becomes an
// empty Item (Validate says so); the caller decides what to do with it.
func itemFromProto(m *analyzerv1.AnalyzeResponse) Item {
	it := Item{Size: int64(proto.Size(m))}
	switch x := m.GetItem().(type) {
	case *analyzerv1.AnalyzeResponse_Package:
		p := packageFromProto(x.Package)
		it.Package = &p
	case *analyzerv1.AnalyzeResponse_Finding:
		f := findingFromProto(x.Finding)
		it.Finding = &f
	case *analyzerv1.AnalyzeResponse_Warning:
		it.Warning = &Warning{Message: x.Warning.GetMessage(), Path: x.Warning.GetPath()}
	case *analyzerv1.AnalyzeResponse_Entries:
		e := x.Entries
		le := &LayerEntries{Paths: e.GetPaths(), Whiteouts: e.GetWhiteouts(), OpaqueDirs: e.GetOpaqueDirs()}
		for _, h := range e.GetHardLinks() {
			le.HardLinks = append(le.HardLinks, HardLink{Path: h.GetPath(), Target: h.GetTarget()})
		}
		it.Entries = le
	case *analyzerv1.AnalyzeResponse_OwnedFiles:
		o := x.OwnedFiles
		it.Owned = &OwnedFiles{OS: o.GetOs(), Owner: o.GetOwner(), Location: o.GetLocation(), Paths: o.GetPaths()}
	case *analyzerv1.AnalyzeResponse_OsRelease:
		o := x.OsRelease
		it.OSRelease = &OSRelease{Path: o.GetPath(), LinkTarget: o.GetLinkTarget(), Fields: o.GetFields()}
	case *analyzerv1.AnalyzeResponse_LayerEnd:
		e := x.LayerEnd
		it.LayerEnd = &LayerEnd{Digest: e.GetDigest(), Entries: e.GetEntries(), Bytes: e.GetBytes()}
	}
	it.Layer = int(m.GetLayer())
	it.Extractor = m.GetExtractor()
	return it
}

// itemToProto is itemFromProto's inverse (without Size).
func itemToProto(it Item) *analyzerv1.AnalyzeResponse {
	m := &analyzerv1.AnalyzeResponse{Layer: uint32(max(it.Layer, 0)), Extractor: it.Extractor}
	switch {
	case it.Package != nil:
		m.Item = &analyzerv1.AnalyzeResponse_Package{Package: packageToProto(*it.Package)}
	case it.Finding != nil:
		m.Item = &analyzerv1.AnalyzeResponse_Finding{Finding: findingToProto(*it.Finding)}
	case it.Warning != nil:
		m.Item = &analyzerv1.AnalyzeResponse_Warning{Warning: &analyzerv1.Warning{Message: it.Warning.Message, Path: it.Warning.Path}}
	case it.Entries != nil:
		e := &analyzerv1.LayerEntries{Paths: it.Entries.Paths, Whiteouts: it.Entries.Whiteouts, OpaqueDirs: it.Entries.OpaqueDirs}
		for _, h := range it.Entries.HardLinks {
			e.HardLinks = append(e.HardLinks, &analyzerv1.HardLink{Path: h.Path, Target: h.Target})
		}
		m.Item = &analyzerv1.AnalyzeResponse_Entries{Entries: e}
	case it.Owned != nil:
		o := it.Owned
		m.Item = &analyzerv1.AnalyzeResponse_OwnedFiles{OwnedFiles: &analyzerv1.OwnedFiles{Os: o.OS, Owner: o.Owner, Location: o.Location, Paths: o.Paths}}
	case it.OSRelease != nil:
		o := it.OSRelease
		m.Item = &analyzerv1.AnalyzeResponse_OsRelease{OsRelease: &analyzerv1.OSRelease{Path: o.Path, LinkTarget: o.LinkTarget, Fields: o.Fields}}
	case it.LayerEnd != nil:
		e := it.LayerEnd
		m.Item = &analyzerv1.AnalyzeResponse_LayerEnd{LayerEnd: &analyzerv1.LayerEnd{Digest: e.Digest, Entries: e.Entries, Bytes: e.Bytes}}
	}
	return m
}

func describeToProto(d Description) *analyzerv1.DescribeResponse {
	var ex []*analyzerv1.ExtractorInfo
	for _, e := range d.Extractors {
		ex = append(ex, &analyzerv1.ExtractorInfo{Name: e.Name, Version: e.Version, MaxFileBytes: e.MaxFileBytes})
	}
	return &analyzerv1.DescribeResponse{
		Extractors: ex,
		Name:       d.Name,
		Version:    d.Version,
		Kinds:      d.Kinds,
		Ecosystems: d.Ecosystems,
		Resources: &analyzerv1.Resources{
			MemoryBytes: d.Resources.MemoryBytes,
			Pids:        d.Resources.Pids,
			TimeoutMs:   d.Resources.Timeout.Milliseconds(),
		},
	}
}

func describeFromProto(r *analyzerv1.DescribeResponse) Description {
	res := r.GetResources()
	var ex []ExtractorInfo
	for _, e := range r.GetExtractors() {
		ex = append(ex, ExtractorInfo{Name: e.GetName(), Version: e.GetVersion(), MaxFileBytes: e.GetMaxFileBytes()})
	}
	return Description{
		Extractors: ex,
		Name:       r.GetName(),
		Version:    r.GetVersion(),
		Kinds:      r.GetKinds(),
		Ecosystems: r.GetEcosystems(),
		Resources: Resources{
			MemoryBytes: res.GetMemoryBytes(),
			Pids:        res.GetPids(),
			Timeout:     time.Duration(res.GetTimeoutMs()) * time.Millisecond,
		},
	}
}

func requestToProto(r Request) *analyzerv1.AnalyzeRequest {
	l := r.LayerLimits
	m := &analyzerv1.AnalyzeRequest{
		Root:        r.Root,
		ImageConfig: r.ImageConfig,
		Options:     r.Options,
		Limits: &analyzerv1.Limits{
			MaxFileBytes: r.MaxFileBytes, MaxFiles: r.MaxFiles,
			MaxLayerEntries: l.MaxLayerEntries, MaxLayerBytes: l.MaxLayerBytes,
			MaxEntries: l.MaxEntries, MaxBytes: l.MaxBytes,
			MaxFileBytesByExtractor: l.MaxFileBytes,
		},
		Extractors: r.Extractors,
	}
	for _, ly := range r.Layers {
		m.Layers = append(m.Layers, &analyzerv1.Layer{Index: uint32(max(ly.Index, 0)), Digest: ly.Digest, MediaType: ly.MediaType, Fd: int32(ly.FD)})
	}
	return m
}

func requestFromProto(r *analyzerv1.AnalyzeRequest) Request {
	l := r.GetLimits()
	req := Request{
		Root:         r.GetRoot(),
		ImageConfig:  r.GetImageConfig(),
		Options:      r.GetOptions(),
		MaxFileBytes: l.GetMaxFileBytes(),
		MaxFiles:     l.GetMaxFiles(),
		Extractors:   r.GetExtractors(),
		LayerLimits: LayerLimits{
			MaxLayerEntries: l.GetMaxLayerEntries(), MaxLayerBytes: l.GetMaxLayerBytes(),
			MaxEntries: l.GetMaxEntries(), MaxBytes: l.GetMaxBytes(),
			MaxFileBytes: l.GetMaxFileBytesByExtractor(),
		},
	}
	for _, ly := range r.GetLayers() {
		req.Layers = append(req.Layers, Layer{Index: int(ly.GetIndex()), Digest: ly.GetDigest(), MediaType: ly.GetMediaType(), FD: int(ly.GetFd())})
	}
	return req
}

func packageToProto(p Package) *analyzerv1.Package {
	return &analyzerv1.Package{
		Ecosystem:     p.Ecosystem,
		Name:          p.Name,
		Version:       p.Version,
		Purl:          p.PURL,
		SourceName:    p.SourceName,
		SourceVersion: p.SourceVersion,
		Locations:     p.Locations,
		Owner:         p.Owner,
		Os:            p.OS,
		Arch:          p.Arch,
		Epoch:         int32(p.Epoch),
	}
}

func packageFromProto(p *analyzerv1.Package) Package {
	return Package{
		Ecosystem:     p.GetEcosystem(),
		Name:          p.GetName(),
		Version:       p.GetVersion(),
		PURL:          p.GetPurl(),
		SourceName:    p.GetSourceName(),
		SourceVersion: p.GetSourceVersion(),
		Locations:     p.GetLocations(),
		Owner:         p.GetOwner(),
		OS:            p.GetOs(),
		Arch:          p.GetArch(),
		Epoch:         int(p.GetEpoch()),
	}
}

func findingToProto(f Finding) *analyzerv1.Finding {
	return &analyzerv1.Finding{Id: f.ID, Severity: f.Severity, Summary: f.Summary, Location: f.Location, Details: f.Details}
}

func findingFromProto(f *analyzerv1.Finding) Finding {
	return Finding{ID: f.GetId(), Severity: f.GetSeverity(), Summary: f.GetSummary(), Location: f.GetLocation(), Details: f.GetDetails()}
}
