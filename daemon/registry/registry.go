// Package registry resolves image references against OCI registries with
// go-containerregistry: the manifest digest of the wanted platform, its
// config digest and its layers. It reads manifests only, never layer
// content. Loopback registries are spoken to over plain HTTP.
package registry

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
)

// Manifest is what a resolution found.
type Manifest struct {
	Digest       string
	Platform     string
	ConfigDigest string
	Layers       []report.Layer
}

// HostPlatform is os/arch of this machine, the default platform.
func HostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// Resolve finds the manifest of image for platform ("" = the host's). An
// index is resolved to the platform's manifest.
func Resolve(ctx context.Context, image, platform string) (*Manifest, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("registry: %q: %v: %w", image, err, errdefs.ErrInvalid)
	}
	if platform == "" {
		platform = HostPlatform()
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("registry: platform %q: %v: %w", platform, err, errdefs.ErrInvalid)
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(*p),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry: get %s: %w", ref, err)
	}
	img, err := desc.Image() // picks the platform's manifest from an index
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", ref, err)
	}
	dg, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("registry: %s: digest: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("registry: %s: config: %w", ref, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("registry: %s: manifest: %w", ref, err)
	}
	m := &Manifest{Digest: dg.String(), ConfigDigest: mf.Config.Digest.String(), Platform: platformString(cf)}
	for i, l := range mf.Layers {
		layer := report.Layer{Digest: l.Digest.String(), Size: l.Size}
		if i < len(cf.RootFS.DiffIDs) {
			layer.DiffID = cf.RootFS.DiffIDs[i].String()
		}
		m.Layers = append(m.Layers, layer)
	}
	return m, nil
}

func platformString(cf *v1.ConfigFile) string {
	parts := []string{cf.OS, cf.Architecture}
	if cf.Variant != "" {
		parts = append(parts, cf.Variant)
	}
	return strings.Join(parts, "/")
}
