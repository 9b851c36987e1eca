// Package images gets images through containerd and hands a scan a
// read-only view of an image's root filesystem. Everything assayd does
// through containerd is here; the daemon only dials the client and the
// sandbox only borrows containerd's default seccomp profile.
//
// One scan holds one containerd lease (labelled as assayd's) that protects
// the content, the unpacked snapshots and the view while the scan runs;
// releasing the image unmounts the view, removes it, deletes the image
// record when this scan created it, and deletes the lease so containerd's
// garbage collector reclaims the rest. Cleanup removes what a crash left.
package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
)

// Labels assayd puts on what it creates in containerd, so that it can find
// its own leftovers and nothing else.
const (
	LabelOwner = "assay.io/owner"
	OwnerValue = "assayd"
	LabelScan  = "assay.io/scan"
)

// Snapshotter is the snapshotter assayd unpacks with.
const Snapshotter = "overlayfs"

// Limits bound what one image may cost.
type Limits struct {
	MaxImageBytes    int64 // compressed: config + layers, from the manifest
	MaxLayers        int
	MaxUnpackedBytes int64 // snapshot usage while unpacking
	MaxEntries       int64 // inodes of the unpacked snapshots
}

// Options configure Images.
type Options struct {
	Namespace string
	// HostsDir is a containerd-style hosts directory (certs.d): mirrors,
	// plain HTTP, CA files. A missing directory means defaults.
	HostsDir string
	// AuthFile is a Docker config.json with registry credentials ("" none).
	AuthFile string
	// PlainHTTPHosts are registry hosts (host[:port]) spoken to in plain
	// HTTP (Harbor's listed http:// registries).
	PlainHTTPHosts []string
	// ViewsDir is where views are mounted (state_dir/views).
	ViewsDir string
	// ContentDir is containerd's content store directory when it is on
	// this host (the managed containerd's): layer blobs are then opened
	// as files. Empty: they are read through the content API.
	ContentDir string
	Limits     Limits
	// LeaseExpiry bounds how long containerd keeps a scan's lease if
	// assayd never deletes it.
	LeaseExpiry time.Duration
	// UnpackPoll is how often snapshot usage is measured while unpacking.
	UnpackPoll time.Duration
	// ReleaseRetry is how long releasing keeps retrying containerd calls
	// (containerd may be restarting).
	ReleaseRetry time.Duration
	Logger       *slog.Logger
}

// Images acquires images through one containerd client.
type Images struct {
	c *client.Client
	o Options
}

// Dial connects to containerd at address and checks that it answers.
func Dial(ctx context.Context, address string, timeout time.Duration) (*client.Client, error) {
	c, err := client.New(address, client.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("images: connect to containerd at %s: %v: %w", address, err, errdefs.ErrUnavailable)
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := c.Version(vctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("images: containerd at %s does not answer: %v: %w", address, err, errdefs.ErrUnavailable)
	}
	return c, nil
}

// New uses c, which the caller closes.
func New(c *client.Client, o Options) *Images {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UnpackPoll <= 0 {
		o.UnpackPoll = 100 * time.Millisecond
	}
	if o.ReleaseRetry <= 0 {
		o.ReleaseRetry = 30 * time.Second
	}
	if o.LeaseExpiry <= 0 {
		o.LeaseExpiry = 24 * time.Hour
	}
	return &Images{c: c, o: o}
}

// Client is the containerd client in use.
func (im *Images) Client() *client.Client { return im.c }

// Image is an acquired image: its metadata and a mounted read-only view.
type Image struct {
	Ref string
	// Digest is the platform's manifest digest; IndexDigest the index it
	// came from ("" when the reference named a manifest).
	Digest       string
	IndexDigest  string
	Platform     string
	ConfigDigest string
	Layers       []report.Layer
	Config       ocispec.Image
	// Root is the mounted read-only view of the root filesystem.
	Root string
	// LayerDirs are the snapshot directories the view is made of, top layer
	// first (overlay's lowerdir order). A sandbox rebuilds its own view from
	// them with id-mapped mounts, so the image's ownership shows inside its
	// user namespace.
	LayerDirs []string
	// Platforms lists every platform of the index (nil for a manifest).
	Platforms []string

	im      *Images
	lease   string
	release func(context.Context) error
	feeds   *feeds // layer downloads under way (Fetch)
}

// Release unmounts and removes the view and lets containerd reclaim the
// scan's content. It is safe to call more than once.
func (img *Image) Release(ctx context.Context) error {
	if img == nil || img.release == nil {
		return nil
	}
	r := img.release
	img.release = nil
	return r(ctx)
}

// ErrLimit marks an image refused by a configured limit.
var ErrLimit = errors.New("image exceeds a limit")

func (im *Images) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, im.o.Namespace)
}

// LeaseID is the lease of a scan.
func LeaseID(scanID string) string { return "assay-scan-" + scanID }

func viewKey(scanID string) string { return "assay-view-" + scanID }

// Acquire pulls ref for platform (os/arch[/variant]), unpacks it, and mounts
// a read-only view. The caller must Release the image.
func (im *Images) Acquire(ctx context.Context, scanID, ref, platform string) (*Image, error) {
	return im.get(ctx, scanID, ref, platform, true, nil)
}

// Fetch gets ref's manifest and config for platform into containerd's
// content store and starts downloading its layer blobs there, without
// unpacking anything: it returns once the image is described, while the
// layers still download. Each layer's bytes are also handed, as they
// arrive, to whoever opens the layer (OpenLayer: a pipe), so that the
// sandboxed extractors read a layer while it downloads; WaitLayers says
// whether every blob was committed with its digest verified, and nothing
// read from a layer may be trusted before it says so. Layers for which
// skip returns true are not fetched at all (their results are cached).
// The limits on the manifest apply as for Acquire. The caller must
// Release the image.
func (im *Images) Fetch(ctx context.Context, scanID, ref, platform string, skip func(layerDigest string) bool) (*Image, error) {
	return im.get(ctx, scanID, ref, platform, false, skip)
}

func (im *Images) get(ctx context.Context, scanID, ref, platform string, unpack bool, skip func(string) bool) (_ *Image, retErr error) {
	ctx = im.ctx(ctx)
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("images: reference %q: %v: %w", ref, err, errdefs.ErrInvalid)
	}
	name := named.String()
	p, err := platforms.Parse(platform)
	if err != nil {
		return nil, fmt.Errorf("images: platform %q: %v: %w", platform, err, errdefs.ErrInvalid)
	}
	matcher := platforms.Only(p)

	ls := im.c.LeasesService()
	leaseLabels := map[string]string{LabelOwner: OwnerValue, LabelScan: scanID}
	// A lease of the same scan may exist when an earlier attempt crashed.
	_ = ls.Delete(ctx, leases.Lease{ID: LeaseID(scanID)}, leases.SynchronousDelete)
	lease, err := ls.Create(ctx, leases.WithID(LeaseID(scanID)), leases.WithLabels(leaseLabels), leases.WithExpiration(im.o.LeaseExpiry))
	if err != nil {
		return nil, fmt.Errorf("images: create lease: %w", err)
	}
	ctx = leases.WithLease(ctx, lease.ID)

	img := &Image{Ref: ref, im: im, lease: lease.ID}
	var created bool
	var mounted string
	img.release = func(rctx context.Context) error {
		rctx = leases.WithLease(im.ctx(context.WithoutCancel(rctx)), lease.ID)
		var errs []error
		img.feeds.stop()
		if mounted != "" {
			if err := mount.UnmountAll(mounted, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount view: %w", err))
			}
			if err := os.Remove(mounted); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
		// containerd may be restarting (managed mode restarts it): retry
		// its part for a while rather than leak the lease.
		steps := []func() error{
			func() error {
				if !unpack {
					return nil
				}
				return ignoreNotFound(im.c.SnapshotService(Snapshotter).Remove(rctx, viewKey(scanID)))
			},
			func() error {
				if !created {
					return nil
				}
				return ignoreNotFound(im.c.ImageService().Delete(rctx, name))
			},
			func() error { return ignoreNotFound(ls.Delete(rctx, lease, leases.SynchronousDelete)) },
		}
		if err := retry(rctx, im.o.ReleaseRetry, steps); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("images: release %s: %w", ref, err)
		}
		return nil
	}
	defer func() {
		if retErr != nil {
			if err := img.Release(ctx); err != nil {
				im.o.Logger.Warn("cleaning up a failed image acquisition", "ref", ref, "err", err)
			}
		}
	}()

	_, getErr := im.c.ImageService().Get(ctx, name)
	created = cerrdefs.IsNotFound(getErr)

	resolver, err := im.resolver(ctx)
	if err != nil {
		return nil, err
	}
	pullCtx, cancelPull := context.WithCancelCause(ctx)
	defer cancelPull(nil)
	wrap := im.limitHandler
	if !unpack {
		// The layers are downloaded once the image is described
		// (startFeeds), alongside their analysis.
		wrap = func(h images.Handler) images.Handler {
			return skipLayers(im.limitHandler(h), func(string) bool { return true })
		}
	}
	opts := []client.RemoteOpt{
		client.WithPlatformMatcher(matcher),
		client.WithResolver(resolver),
		client.WithImageHandlerWrapper(wrap),
	}
	if created {
		opts = append(opts, client.WithPullLabel(LabelOwner, OwnerValue), client.WithPullLabel(LabelScan, scanID))
	}
	var target ocispec.Descriptor
	watchDone := make(chan struct{})
	if unpack {
		go func() {
			defer close(watchDone)
			im.watchUnpack(pullCtx, scanID, cancelPull)
		}()
		opts = append(opts, client.WithPullUnpack,
			client.WithPullSnapshotter(Snapshotter, snapshots.WithLabels(map[string]string{LabelScan: scanID})))
		var cimg client.Image
		cimg, err = im.c.Pull(pullCtx, ref, opts...)
		if err == nil {
			target = cimg.Target()
		}
	} else {
		close(watchDone)
		var rec images.Image
		rec, err = im.c.Fetch(pullCtx, ref, opts...)
		target = rec.Target
	}
	cause := context.Cause(pullCtx)
	cancelPull(nil)
	<-watchDone
	if err != nil {
		if errors.Is(cause, ErrLimit) {
			return nil, fmt.Errorf("images: %s: %w", ref, cause)
		}
		if errors.Is(err, ErrLimit) {
			return nil, fmt.Errorf("images: %s: %w", ref, err)
		}
		return nil, fmt.Errorf("images: pull %s: %w", ref, err)
	}

	if err := im.describe(ctx, target, matcher, img); err != nil {
		return nil, err
	}
	if unpack {
		if err := im.checkUnpacked(ctx, scanID); err != nil {
			return nil, fmt.Errorf("images: %s: %w", ref, err)
		}
	}
	if !unpack {
		if skip == nil {
			skip = func(string) bool { return false }
		}
		if err := im.startFeeds(ctx, resolver, ref, img, skip); err != nil {
			return nil, err
		}
		return img, nil
	}

	var diffIDs []digest.Digest
	for _, l := range img.Layers {
		diffIDs = append(diffIDs, digest.Digest(l.DiffID))
	}
	chainID := identity.ChainID(diffIDs).String()
	sn := im.c.SnapshotService(Snapshotter)
	mounts, err := sn.View(ctx, viewKey(scanID), chainID, snapshots.WithLabels(map[string]string{LabelOwner: OwnerValue, LabelScan: scanID}))
	if err != nil {
		return nil, fmt.Errorf("images: view of %s: %w", ref, err)
	}
	dir := filepath.Join(im.o.ViewsDir, scanID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if err := mount.All(hardened(mounts), dir); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("images: mount view of %s: %w", ref, err)
	}
	mounted = dir
	img.LayerDirs = layerDirs(mounts)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Flags&unix.ST_RDONLY == 0 {
		return nil, fmt.Errorf("images: the view of %s is not read-only (statfs flags %#x, %v); refusing to scan it", ref, st.Flags, err)
	}
	img.Root = dir
	return img, nil
}

// skipLayers drops the layers skip names from a manifest's children, so
// that they are not fetched; the limits have seen them all already.
func skipLayers(h images.Handler, skip func(string) bool) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		if err != nil || !images.IsManifestType(desc.MediaType) {
			return children, err
		}
		out := children[:0:0]
		for _, c := range children {
			if images.IsLayerType(c.MediaType) && skip(c.Digest.String()) {
				continue
			}
			out = append(out, c)
		}
		return out, nil
	})
}

// OpenLayer opens the blob of one of the image's layers read-only: the
// content store's file when it is on this host (ContentDir), else a pipe
// fed from containerd's content API. The caller closes it.
func (img *Image) OpenLayer(ctx context.Context, layerDigest string) (*os.File, error) {
	im := img.im
	d, err := digest.Parse(layerDigest)
	if err != nil {
		return nil, fmt.Errorf("images: layer %q: %w", layerDigest, err)
	}
	var size int64 = -1
	for _, l := range img.Layers {
		if l.Digest == layerDigest {
			size = l.Size
		}
	}
	if size < 0 {
		return nil, fmt.Errorf("images: %s is not a layer of %s", layerDigest, img.Ref)
	}
	if f, err := img.feeds.open(ctx, layerDigest); f != nil || err != nil {
		return f, err
	}
	if im.o.ContentDir != "" {
		p := filepath.Join(im.o.ContentDir, "blobs", d.Algorithm().String(), d.Encoded())
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() == size {
				return f, nil
			}
			f.Close()
		}
	}
	ctx = leases.WithLease(im.ctx(ctx), img.lease)
	ra, err := im.c.ContentStore().ReaderAt(ctx, ocispec.Descriptor{Digest: d, Size: size})
	if err != nil {
		return nil, fmt.Errorf("images: open layer %s: %w", layerDigest, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		ra.Close()
		return nil, fmt.Errorf("images: %w", err)
	}
	go func() {
		// A short copy ends the stream early: the extractor then fails
		// that layer (a truncated tar), which is not cached.
		if _, err := io.Copy(pw, io.NewSectionReader(ra, 0, size)); err != nil {
			im.o.Logger.Warn("streaming a layer from containerd", "layer", layerDigest, "err", err)
		}
		ra.Close()
		pw.Close()
	}()
	return pr, nil
}

func ignoreNotFound(err error) error {
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// retry runs each step until it succeeds or the time is up, backing off
// between rounds; it returns the errors of the steps that never succeeded.
func retry(ctx context.Context, within time.Duration, steps []func() error) error {
	deadline := time.Now().Add(within)
	wait := 100 * time.Millisecond
	for {
		var failed []func() error
		var errs []error
		for _, step := range steps {
			if err := step(); err != nil {
				failed = append(failed, step)
				errs = append(errs, err)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		if time.Now().Add(wait).After(deadline) {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		steps = failed
	}
}

// layerDirs reads the layer directories out of a view's mounts: the
// lowerdirs of an overlay, or the source of a bind (a one-layer image).
func layerDirs(ms []mount.Mount) []string {
	var dirs []string
	for _, m := range ms {
		switch m.Type {
		case "overlay":
			for _, o := range m.Options {
				if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
					dirs = append(dirs, strings.Split(v, ":")...)
				}
			}
		case "bind", "rbind":
			dirs = append(dirs, m.Source)
		default:
			if slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
				dirs = append(dirs, m.Source)
			}
		}
	}
	return dirs
}

// hardened makes every mount of a view read-only, nosuid, nodev, noexec.
func hardened(ms []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, len(ms))
	for i, m := range ms {
		m.Options = append(append([]string(nil), m.Options...), "ro", "nosuid", "nodev", "noexec")
		out[i] = m
	}
	return out
}

// limitHandler refuses a manifest whose layers are too many or too large
// before any layer is downloaded (the fetch of each blob is then bounded by
// its descriptor's size and digest).
func (im *Images) limitHandler(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		if err != nil || !images.IsManifestType(desc.MediaType) {
			return children, err
		}
		var total int64
		layers := 0
		for _, c := range children {
			if c.Size < 0 {
				return nil, fmt.Errorf("%w: descriptor %s has a negative size", ErrLimit, c.Digest)
			}
			total += c.Size
			if images.IsLayerType(c.MediaType) {
				layers++
			}
		}
		lim := im.o.Limits
		if lim.MaxLayers > 0 && layers > lim.MaxLayers {
			return nil, fmt.Errorf("%w: %d layers, more than limits.max_layers (%d)", ErrLimit, layers, lim.MaxLayers)
		}
		if lim.MaxImageBytes > 0 && total > lim.MaxImageBytes {
			return nil, fmt.Errorf("%w: %d compressed bytes, more than limits.max_image_bytes (%d); nothing was downloaded", ErrLimit, total, lim.MaxImageBytes)
		}
		return children, nil
	})
}

// watchUnpack measures the snapshots this scan is unpacking and cancels the
// pull when they hold more than limits.max_unpacked_bytes or more inodes
// than limits.max_entries (an image of empty files costs inodes, not
// bytes). Measuring walks the growing tree, which costs containerd CPU, so
// the next measurement comes when even the fastest unpack (maxUnpackRate,
// maxInodeRate) could have used the remaining headroom: often while close
// to a limit, rarely while far from it (between UnpackPoll and
// maxUnpackPoll). checkUnpacked measures once more when the pull is done.
func (im *Images) watchUnpack(ctx context.Context, scanID string, cancel context.CancelCauseFunc) {
	lim := im.o.Limits
	if lim.MaxUnpackedBytes <= 0 && lim.MaxEntries <= 0 {
		return
	}
	t := time.NewTimer(im.o.UnpackPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		used, inodes, err := im.unpackUsage(ctx, scanID)
		if err == nil {
			if err := im.overUnpackLimits(used, inodes); err != nil {
				cancel(err)
				return
			}
		}
		next := maxUnpackPoll
		if lim.MaxUnpackedBytes > 0 {
			next = min(next, nextUnpackPoll(lim.MaxUnpackedBytes-used, im.o.UnpackPoll))
		}
		if lim.MaxEntries > 0 {
			next = min(next, nextUnpackPoll((lim.MaxEntries-inodes)*(maxUnpackRate/maxInodeRate), im.o.UnpackPoll))
		}
		t.Reset(next)
	}
}

// unpackUsage sums the disk usage and inodes of the scan's snapshots.
func (im *Images) unpackUsage(ctx context.Context, scanID string) (used, inodes int64, err error) {
	sn := im.c.SnapshotService(Snapshotter)
	filter := fmt.Sprintf(`labels."%s"==%s`, LabelScan, scanID)
	err = sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		u, err := sn.Usage(ctx, info.Name)
		if err != nil {
			return nil // removed meanwhile
		}
		used += u.Size
		inodes += u.Inodes
		return nil
	}, filter)
	return used, inodes, err
}

// overUnpackLimits is the ErrLimit of a measurement over a limit, or nil.
func (im *Images) overUnpackLimits(used, inodes int64) error {
	lim := im.o.Limits
	if lim.MaxUnpackedBytes > 0 && used > lim.MaxUnpackedBytes {
		return fmt.Errorf("%w: unpacking reached %d bytes, more than limits.max_unpacked_bytes (%d); stopped", ErrLimit, used, lim.MaxUnpackedBytes)
	}
	if lim.MaxEntries > 0 && inodes > lim.MaxEntries {
		return fmt.Errorf("%w: unpacking reached %d inodes, more than limits.max_entries (%d); stopped", ErrLimit, inodes, lim.MaxEntries)
	}
	return nil
}

// checkUnpacked measures the scan's snapshots once the pull is done: an
// unpack faster than the watch's next measurement is caught here.
func (im *Images) checkUnpacked(ctx context.Context, scanID string) error {
	if im.o.Limits.MaxUnpackedBytes <= 0 && im.o.Limits.MaxEntries <= 0 {
		return nil
	}
	used, inodes, err := im.unpackUsage(ctx, scanID)
	if err != nil {
		return fmt.Errorf("images: measuring the unpacked image: %w", err)
	}
	return im.overUnpackLimits(used, inodes)
}

// maxUnpackRate is the fastest unpacking assumed, in bytes per second (a
// fast NVMe disk), and maxUnpackPoll the longest wait between measurements.
const (
	maxUnpackRate = 2 << 30
	maxInodeRate  = 200_000 // files per second
	maxUnpackPoll = time.Second
)

// nextUnpackPoll is how long the fastest unpack takes to use headroom
// bytes, within [floor, maxUnpackPoll].
func nextUnpackPoll(headroom int64, floor time.Duration) time.Duration {
	d := time.Duration(float64(headroom) / maxUnpackRate * float64(time.Second))
	return max(floor, min(d, maxUnpackPoll))
}

// describe fills img from the pulled target: the platform's manifest, its
// config, layers and diff IDs.
func (im *Images) describe(ctx context.Context, target ocispec.Descriptor, matcher platforms.MatchComparer, img *Image) error {
	cs := im.c.ContentStore()
	desc := target
	if images.IsIndexType(target.MediaType) {
		var idx ocispec.Index
		if err := readJSON(ctx, cs, target, &idx); err != nil {
			return err
		}
		img.IndexDigest = target.Digest.String()
		var best *ocispec.Descriptor
		for i, m := range idx.Manifests {
			if m.Platform == nil {
				continue
			}
			img.Platforms = append(img.Platforms, platforms.Format(*m.Platform))
			if !matcher.Match(*m.Platform) || !images.IsManifestType(m.MediaType) {
				continue
			}
			if best == nil || matcher.Less(*m.Platform, *best.Platform) {
				best = &idx.Manifests[i]
			}
		}
		if best == nil {
			return fmt.Errorf("images: %s has no manifest for the platform: %w", img.Ref, errdefs.ErrNotFound)
		}
		desc = *best
	}
	var mf ocispec.Manifest
	if err := readJSON(ctx, cs, desc, &mf); err != nil {
		return err
	}
	if err := readJSON(ctx, cs, mf.Config, &img.Config); err != nil {
		return err
	}
	img.Digest = desc.Digest.String()
	img.ConfigDigest = mf.Config.Digest.String()
	img.Platform = platforms.Format(img.Config.Platform)
	if len(img.Config.RootFS.DiffIDs) != len(mf.Layers) {
		return fmt.Errorf("images: %s: %d layers but %d diff IDs", img.Ref, len(mf.Layers), len(img.Config.RootFS.DiffIDs))
	}
	for i, l := range mf.Layers {
		img.Layers = append(img.Layers, report.Layer{Digest: l.Digest.String(), DiffID: img.Config.RootFS.DiffIDs[i].String(), Size: l.Size})
	}
	return nil
}

func readJSON(ctx context.Context, cs content.Provider, desc ocispec.Descriptor, v any) error {
	if desc.Size > 16<<20 {
		return fmt.Errorf("images: %s is %d bytes, too large for a manifest or config", desc.Digest, desc.Size)
	}
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return fmt.Errorf("images: read %s: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("images: decode %s: %w", desc.Digest, err)
	}
	return nil
}

// Cleanup removes what an earlier assayd left behind: mounts and
// directories under ViewsDir, view snapshots, image records and leases
// labelled as assayd's. Run it at start, before any scan.
func (im *Images) Cleanup(ctx context.Context) (removed int, err error) {
	ctx = im.ctx(ctx)
	var errs []error
	mps, err := mountsUnder(im.o.ViewsDir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, mp := range mps {
		if err := mount.UnmountAll(mp, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			continue
		}
		removed++
	}
	if entries, err := os.ReadDir(im.o.ViewsDir); err == nil {
		for _, e := range entries {
			p := filepath.Join(im.o.ViewsDir, e.Name())
			if err := os.Remove(p); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			}
		}
	}
	owner := fmt.Sprintf(`labels."%s"==%s`, LabelOwner, OwnerValue)
	sn := im.c.SnapshotService(Snapshotter)
	var views []string
	if err := sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindView {
			views = append(views, info.Name)
		}
		return nil
	}, owner); err != nil {
		errs = append(errs, fmt.Errorf("list views: %w", err))
	}
	for _, v := range views {
		if err := sn.Remove(ctx, v); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove view %s: %w", v, err))
			continue
		}
		removed++
	}
	imgs, err := im.c.ImageService().List(ctx, owner)
	if err != nil {
		errs = append(errs, fmt.Errorf("list images: %w", err))
	}
	for _, i := range imgs {
		if err := im.c.ImageService().Delete(ctx, i.Name); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete image %s: %w", i.Name, err))
			continue
		}
		removed++
	}
	ls, err := im.c.LeasesService().List(ctx, owner)
	if err != nil {
		errs = append(errs, fmt.Errorf("list leases: %w", err))
	}
	for _, l := range ls {
		if err := im.c.LeasesService().Delete(ctx, l, leases.SynchronousDelete); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete lease %s: %w", l.ID, err))
			continue
		}
		removed++
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("images: cleanup: %w", err)
	}
	return removed, nil
}

// Leftovers counts what Cleanup would remove (tests, and the health of a
// running daemon: between scans it must be zero).
func (im *Images) Leftovers(ctx context.Context) (mounts, views, leaseCount int, err error) {
	ctx = im.ctx(ctx)
	mps, err := mountsUnder(im.o.ViewsDir)
	if err != nil {
		return 0, 0, 0, err
	}
	owner := fmt.Sprintf(`labels."%s"==%s`, LabelOwner, OwnerValue)
	if err := im.c.SnapshotService(Snapshotter).Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindView {
			views++
		}
		return nil
	}, owner); err != nil {
		return 0, 0, 0, err
	}
	ls, err := im.c.LeasesService().List(ctx, owner)
	if err != nil {
		return 0, 0, 0, err
	}
	return len(mps), views, len(ls), nil
}

// mountsUnder lists mount points below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	// Deepest first, so nested mounts go before their parents.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Watch follows image creation in the configured namespace (scan on pull);
// see WatchImages.
func (im *Images) Watch(ctx context.Context, found func(ctx context.Context, name, digest string)) error {
	return WatchImages(im.ctx(ctx), im.c, found, im.o.Logger)
}
