// Package daemon assembles assayd: it opens the store, starts the scan
// queue, serves the API on the local socket, talks to systemd, and handles
// signals. It holds wiring only; each part lives in its own package.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/assayhq/assay/daemon/analyze"
	"github.com/assayhq/assay/daemon/api"
	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/events"
	"github.com/assayhq/assay/daemon/harbor"
	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/metrics"
	"github.com/assayhq/assay/daemon/netaddr"
	"github.com/assayhq/assay/daemon/queue"
	"github.com/assayhq/assay/daemon/rematch"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scan"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/socket"
	"github.com/assayhq/assay/daemon/store"
	"github.com/assayhq/assay/daemon/vulndb"
	"github.com/assayhq/assay/daemon/webhook"
)

// Version is set at build time (-ldflags -X).
var Version = "dev"

// Options carry what main hands to Run besides the config.
type Options struct {
	// Reload reads the configuration again (SIGHUP).
	Reload func() (*config.Config, error)
	// Level is the logger's level, changed on reload.
	Level *slog.LevelVar
}

// Run runs the daemon until ctx is done or SIGTERM/SIGINT arrives.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	log := slog.Default()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// 0711: the rootless sandboxes traverse state_dir to reach their root
	// filesystems under state_dir/sandbox; nothing else in it is theirs,
	// and every other entry is 0700 or 0600.
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("daemon: state_dir: %w", err)
	}
	if err := os.Chmod(cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("daemon: state_dir: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.StateDir, "assay.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	vdb, err := vulndb.Open(ctx, filepath.Join(cfg.StateDir, "vulndb.db"), vulndb.Options{
		MaxArchiveBytes: cfg.VulnDB.MaxArchiveBytes,
		MaxRecordBytes:  cfg.VulnDB.MaxRecordBytes,
		MaxTotalBytes:   cfg.VulnDB.MaxTotalBytes,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer vdb.Close()
	// The daemon's own goroutines (re-matcher, updater, image watch,
	// pruning) run on bg and are joined before the database and the store
	// close: none is left writing to a closed file.
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
	}()
	pol, err := loadPolicy(ctx, cfg)
	if err != nil {
		return err
	}
	// The updater fetches vulndb.sources; a source per ecosystem
	// ({ecosystem}) as the images assessed need them. It starts once the
	// re-matcher its changes kick exists.
	updater := &vulndb.Updater{
		AllowHTTP: cfg.VulnDB.AllowHTTP,
		DB:        vdb,
		Sources:   cfg.VulnDB.Sources,
		Interval:  cfg.VulnDB.UpdateInterval,
		Timeout:   cfg.VulnDB.Timeout,
		Client:    updaterClient(),
		Needed:    st.Ecosystems,
		Logger:    log,
	}
	assessor := newAssessor(cfg, vdb, pol, updater)

	broker := events.NewBroker()
	// Notifications: recorded by the store with each change, sent by the
	// notifier, which the publisher wakes.
	notifier := newNotifier(cfg, st, log)
	pub := &kickingPublisher{broker: broker, n: notifier}
	var q *queue.Queue
	m := metrics.New(Version, metrics.Gauges{
		Queued: func() float64 {
			n, _ := st.QueueLen(context.WithoutCancel(ctx))
			return float64(n)
		},
		Running:     func() float64 { return float64(q.Running()) },
		Subscribers: func() float64 { return float64(broker.Subscribers()) },
	})

	images.BridgeLogs(log)
	ctr, err := startContainerd(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer ctr.close()
	contentDir := ""
	if ctr.managed != nil {
		// The managed containerd's content store is ours, on this host:
		// layer blobs are handed to sandboxes as open files.
		contentDir = filepath.Join(cfg.StateDir, "containerd", "root", "io.containerd.content.v1.content")
	}
	im := images.New(ctr.client, images.Options{
		ContentDir: contentDir,
		Namespace:  cfg.Containerd.Namespace,
		HostsDir:   cfg.Registries.ConfigPath,
		AuthFile:   cfg.Registries.AuthFile,
		// Harbor's registries listed as http:// are spoken to in plain
		// HTTP; no other is.
		PlainHTTPHosts: plainHTTPHosts(cfg.Harbor.Registries),
		ViewsDir:       filepath.Join(cfg.StateDir, "views"),
		Limits: images.Limits{
			MaxImageBytes:    cfg.Limits.MaxImageBytes,
			MaxLayers:        cfg.Limits.MaxLayers,
			MaxUnpackedBytes: cfg.Limits.MaxUnpackedBytes,
			MaxEntries:       int64(cfg.Limits.MaxEntries),
		},
		LeaseExpiry: 2*cfg.Scan.Timeout + 10*time.Minute,
		Logger:      log,
	})
	if n, err := im.Cleanup(ctx); err != nil {
		log.Error("removing what an earlier run left in containerd failed", "err", err)
	} else if n > 0 {
		log.Warn("removed leftovers of an earlier run (mounts, views, image records, leases)", "count", n)
	}

	platforms := cfg.Scan.Platforms
	if len(platforms) == 0 {
		platforms = []string{hostPlatform()}
	}
	analyzers, layerCache, stopAnalyzers, err := startAnalyzers(cfg, log)
	if err != nil {
		return err
	}
	defer stopAnalyzers()
	if layerCache != nil {
		m.LayerCache(func() metrics.CacheCounts {
			st := layerCache.Stats()
			return metrics.CacheCounts{Entries: int64(st.Entries), Bytes: st.Bytes, Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions}
		})
	}
	scanner := &scan.Scanner{
		Images:       im,
		Analyzers:    analyzers,
		Assessor:     assessor,
		Platforms:    platforms,
		Logger:       log,
		MaxPackages:  cfg.Limits.MaxReportPackages,
		MaxLocations: cfg.Limits.MaxPackageLocations,
		Spawn: func(ctx context.Context, req scans.Request) error {
			_, _, err := q.SubmitDerived(ctx, req)
			return err
		},
	}
	q = queue.New(queue.Options{
		Store:       st,
		Scanner:     scanner,
		Publisher:   pub,
		Observer:    m,
		Concurrency: cfg.Scan.Concurrency,
		Timeout:     cfg.Scan.Timeout,
		MaxAttempts: cfg.Scan.MaxAttempts,
		MaxQueued:   cfg.Scan.MaxQueued,
		Logger:      log,
	})
	if err := q.Recover(ctx); err != nil {
		return err
	}
	svc := &service{q: q, st: st}
	rm := rematch.New(st, assessor, pub, log)
	// When the data last changed, kept in memory for Harbor's /metadata
	// and to re-match a report matched against older data.
	var dbUpdatedAt atomic.Pointer[time.Time]
	pub.rematch = func() { rm.Kick(bg) }
	pub.stale = func(r *report.Report) bool {
		t := dbUpdatedAt.Load()
		return t != nil && r.VulnDB != nil && r.VulnDB.UpdatedAt.Before(*t)
	}
	if notifier != nil {
		wg.Go(func() { notifier.Run(bg) })
	}
	wg.Go(func() { rm.Run(bg) })
	dbChanged := func(ctx context.Context) {
		if info, err := vdb.Info(ctx); err == nil {
			dbUpdatedAt.Store(&info.UpdatedAt)
		}
		rm.Kick(ctx)
	}
	if info, err := vdb.Info(ctx); err == nil {
		dbUpdatedAt.Store(&info.UpdatedAt)
	}
	updater.OnChange = func(ctx context.Context) {
		debug.FreeOSMemory() // an update held a whole archive in memory
		dbChanged(ctx)
	}
	wg.Go(func() { updater.Run(bg) })
	vsvc := &vulnService{db: vdb, st: st, tmpDir: cfg.StateDir, changed: dbChanged}

	if cfg.Webhook.Listen != "" {
		wh, err := webhook.Serve(ctx, cfg.Webhook.Listen, webhook.Options{
			Token:        cfg.Webhook.Secret(),
			Registries:   cfg.Webhook.Registries,
			MaxBodyBytes: cfg.Webhook.MaxBodyBytes,
			Submitter:    svc,
			Logger:       log,
			CertFile:     cfg.Webhook.TLSCertFile,
			KeyFile:      cfg.Webhook.TLSKeyFile,
		})
		if err != nil {
			return err
		}
		defer wh.Wait()
	}
	if cfg.Containerd.WatchImages {
		wg.Go(func() {
			im.Watch(bg, func(ctx context.Context, name, digest string) {
				ref, err := pinned(name, digest)
				if err != nil {
					log.Warn("containerd image event: not a pullable name", "name", name, "err", err)
					return
				}
				if done, _ := svc.Scanned(ctx, digest); done {
					return
				}
				// A full queue holds the watcher back (the image is not
				// dropped): the event is retried until the queue takes it.
				for wait := time.Second; ; wait = min(2*wait, time.Minute) {
					_, _, err := q.Submit(ctx, scans.Request{Image: ref, Trigger: "containerd"})
					if !errors.Is(err, errdefs.ErrBusy) {
						if err != nil {
							log.Warn("containerd image event: queueing a scan failed", "image", ref, "err", err)
						}
						return
					}
					log.Warn("containerd image event: the queue is full; retrying", "image", ref, "in", wait)
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
			})
		})
	}

	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	authz, err := authorizer(cfg, ln, log)
	if err != nil {
		ln.Close()
		return err
	}
	var cacheSvc api.CacheService // a nil *LayerCache must stay a nil interface
	if layerCache != nil {
		cacheSvc = layerCache
	}
	var notifySvc api.NotifyService // likewise a nil *Notifier
	if notifier != nil {
		notifySvc = notifier
	}
	var tokens *api.Tokens
	if cfg.API.TokensFile != "" {
		if tokens, err = api.LoadTokens(cfg.API.TokensFile); err != nil {
			ln.Close()
			return fmt.Errorf("daemon: %w", err)
		}
	}
	handler := api.NewHandler(api.Options{
		Cache:          cacheSvc,
		Notify:         notifySvc,
		Service:        svc,
		Ready:          ctr.ready,
		Events:         broker,
		Authorizer:     authz,
		Tokens:         tokens,
		Analyzers:      analyzerInfo(analyzers),
		Metrics:        m.Registry,
		MaxBodyBytes:   cfg.API.MaxBodyBytes,
		EventBuffer:    cfg.API.EventBuffer,
		Version:        Version,
		Logger:         log,
		Vulns:          vsvc,
		MaxImportBytes: cfg.VulnDB.MaxArchiveBytes,
	})
	// Request contexts derive from serveCtx, cancelled at shutdown so that
	// streaming handlers (/v1/events) end.
	serveCtx, cancelServe := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelServe()
	srv := newAPIServer(handler, api.ConnContext, serveCtx, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The same API over TCP, for callers with a bearer token.
	var tcpSrv *http.Server
	if cfg.API.Listen != "" {
		tcpSrv, err = serveTCP(ctx, "api", cfg.API.Listener, handler, api.TCPConnContext, serveCtx, log, serveErr)
		if err != nil {
			srv.Close()
			return err
		}
	}

	// Harbor's scanner-adapter API on its own listener.
	var harborSrv *http.Server
	if cfg.Harbor.Listen != "" {
		hh := harbor.New(harbor.Options{
			Service:    svc,
			Auth:       cfg.Harbor.Auth,
			Secret:     cfg.Harbor.Secret(),
			Registries: cfg.Harbor.Registries,
			Version:    Version,
			DBUpdatedAt: func() time.Time {
				if t := dbUpdatedAt.Load(); t != nil {
					return *t
				}
				return time.Time{}
			},
			MaxBodyBytes: cfg.API.MaxBodyBytes,
			Logger:       log,
		})
		harborSrv, err = serveTCP(ctx, "harbor", cfg.Harbor.Listener, hh, nil, serveCtx, log, serveErr)
		if err != nil {
			srv.Close()
			if tcpSrv != nil {
				tcpSrv.Close()
			}
			return err
		}
	}

	queueCtx, stopQueue := context.WithCancel(ctx)
	queueDone := make(chan struct{})
	go func() {
		defer close(queueDone)
		q.Run(queueCtx, cfg.Shutdown.Timeout)
	}()

	wg.Go(func() { pruneLoop(bg, st, cfg, log) })
	stopWatchdog := watchdog(ctx, log)
	defer stopWatchdog()

	log.Info("assayd serving", "version", Version, "socket", ln.Addr().String(), "activated", ln.Activated,
		"state_dir", cfg.StateDir, "concurrency", cfg.Scan.Concurrency)
	sdNotify(log, sddaemon.SdNotifyReady)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("daemon: api server: %w", err)
			break loop
		case <-hup:
			reload(cfg, o, log)
		}
	}

	log.Info("assayd stopping", "drain", cfg.Shutdown.Timeout)
	sdNotify(log, sddaemon.SdNotifyStopping)
	stopQueue()
	stopBG()
	cancelServe()
	shutCtx, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("api shutdown", "err", err)
		srv.Close()
	}
	for _, other := range []*http.Server{tcpSrv, harborSrv} {
		if other != nil {
			if err := other.Shutdown(shutCtx); err != nil {
				other.Close()
			}
		}
	}
	cancelShut()
	<-queueDone
	log.Info("assayd stopped")
	return runErr
}

func listen(cfg *config.Config) (*socket.Listener, error) {
	ln, err := socket.Activated()
	if err != nil || ln != nil {
		return ln, err
	}
	gid := -1
	if cfg.Socket.Group != "" {
		g, err := lookupGroup(cfg.Socket.Group)
		if err != nil {
			return nil, err
		}
		gid = int(g)
	}
	return socket.Listen(cfg.Socket.Path, cfg.Socket.FileMode(), gid)
}

func lookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		g, err = user.LookupGroupId(name)
	}
	if err != nil {
		return 0, fmt.Errorf("daemon: socket.group %q: %w", name, err)
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("daemon: socket.group %q: gid %q: %w", name, g.Gid, err)
	}
	return uint32(id), nil
}

// authorizer maps groups to roles. With socket.group unset, a socket
// systemd made for assayd (assayd.socket's SocketGroup=) gives its group
// the scan role: whoever the unit lets connect may scan.
func authorizer(cfg *config.Config, ln *socket.Listener, log *slog.Logger) (api.Authorizer, error) {
	a := api.GroupAuthorizer{SelfUID: uint32(os.Getuid())}
	if cfg.Socket.Group == "" && ln != nil && ln.Activated && ln.Path != "" {
		var st syscall.Stat_t
		if err := syscall.Stat(ln.Path, &st); err == nil && st.Gid != 0 {
			name := strconv.FormatUint(uint64(st.Gid), 10)
			if g, err := user.LookupGroupId(name); err == nil {
				name = g.Name
			}
			a.Groups = append(a.Groups, api.RoleGroup{GID: st.Gid, Name: name, Role: api.RoleScan})
			log.Info("socket.group is unset: the activated socket's group gets the scan role", "group", name, "gid", st.Gid)
		}
	}
	for _, g := range []struct {
		name string
		role api.Role
	}{{cfg.Socket.ReadGroup, api.RoleRead}, {cfg.Socket.Group, api.RoleScan}, {cfg.Socket.AdminGroup, api.RoleAdmin}} {
		if g.name == "" {
			continue
		}
		gid, err := lookupGroup(g.name)
		if err != nil {
			return nil, err
		}
		a.Groups = append(a.Groups, api.RoleGroup{GID: gid, Name: g.name, Role: g.role})
	}
	return a, nil
}

func reload(cfg *config.Config, o Options, log *slog.Logger) {
	if o.Reload == nil {
		return
	}
	next, err := o.Reload()
	if err != nil {
		log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if o.Level != nil {
		o.Level.Set(next.Log.SlogLevel())
	}
	cfg.Log.Level = next.Log.Level
	log.Info("configuration reloaded", "log.level", next.Log.Level)
	if changed := slices.DeleteFunc(cfg.ChangedKeys(next), func(k string) bool { return k == "log.level" }); len(changed) > 0 {
		log.Warn("reload: only log.level changes at runtime; restart assayd to apply the other changes", "changed", changed)
	}
}

func pruneLoop(ctx context.Context, st *store.Store, cfg *config.Config, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := st.Prune(ctx, cfg.Store.ReportsPerImage, cfg.Store.ScanRetention)
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("pruning old records failed", "err", err)
		} else if n > 0 {
			log.Info("pruned old records", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchdog pings systemd at half the interval it asked for.
func watchdog(ctx context.Context, log *slog.Logger) func() {
	every, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(every / 2)
		defer t.Stop()
		for {
			sdNotify(log, sddaemon.SdNotifyWatchdog)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return cancel
}

func sdNotify(log *slog.Logger, state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// newAPIServer is the HTTP server of the API on one listener: connContext
// marks how its callers authenticate, requests derive from base.
func newAPIServer(handler http.Handler, connContext func(context.Context, net.Conn) context.Context, base context.Context, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnContext:       connContext,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveTCP serves handler on a TCP listener (TLS when configured); a
// serve error is sent on errs.
func serveTCP(ctx context.Context, section string, l config.Listener, handler http.Handler, connContext func(context.Context, net.Conn) context.Context, base context.Context, log *slog.Logger, errs chan<- error) (*http.Server, error) {
	ln, err := netaddr.Listen(ctx, l.Listen, l.TLSCertFile, l.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("daemon: %s.listen: %w", section, err)
	}
	srv := newAPIServer(handler, connContext, base, log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("%s listener: %w", section, err)
		}
	}()
	log.Info(section+": listening on TCP", "addr", ln.Addr().String(), "tls", l.TLSCertFile != "")
	return srv, nil
}

// plainHTTPHosts are the hosts of the http:// registry URLs.
func plainHTTPHosts(registries []string) []string {
	var out []string
	for _, r := range registries {
		if u, err := url.Parse(r); err == nil && u.Scheme == "http" {
			out = append(out, u.Host)
		}
	}
	return out
}

// analyzerInfo lists the enabled analyzer plugins for GET /v1/health.
func analyzerInfo(a *analyze.Analyzers) []api.AnalyzerInfo {
	var out []api.AnalyzerInfo
	for _, p := range a.EnabledPlugins() {
		out = append(out, api.AnalyzerInfo{Name: p.Manifest.Name, Version: p.Manifest.Version, Extractors: p.Extractors})
	}
	return out
}
