package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/assayhq/assay/daemon/analyze"
	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/daemon/store"
	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/sandbox"
)

// sandboxes adapts the sandbox manager to what analyze needs.
type sandboxes struct{ m *sandbox.Manager }

func (s sandboxes) RunnerFunc(layers []string) host.RunnerFunc {
	return host.RunnerFunc(s.m.RunnerFunc(layers, sandbox.Limits{}))
}

func (s sandboxes) RunnerFuncFiles(files []*os.File) host.RunnerFunc {
	return host.RunnerFunc(s.m.RunnerFuncFiles(files, sandbox.Limits{}))
}

func (s sandboxes) Target() string { return sandbox.TargetPath }

// startAnalyzers removes what an earlier run left in the sandbox state and
// the plugin cache, and, when plugins are enabled, starts the sandbox
// manager. The returned stop func closes the manager.
func startAnalyzers(cfg *config.Config, log *slog.Logger) (*analyze.Analyzers, *store.LayerCache, func(), error) {
	sbDir := filepath.Join(cfg.StateDir, "sandbox")
	if _, err := os.Stat(sbDir); err == nil {
		if n, err := sandbox.Cleanup(sbDir); err != nil {
			log.Error("removing sandboxes left by an earlier run failed", "err", err)
		} else if n > 0 {
			log.Warn("removed sandboxes left by an earlier run", "count", n)
		}
	}
	cacheDir := filepath.Join(cfg.StateDir, "plugins")
	verifiedDir := filepath.Join(cacheDir, "verified")
	pluginsDir, enabled := resolvePlugins(cfg, log)
	o := analyze.Options{
		PluginsDir:     pluginsDir,
		CacheDir:       cacheDir,
		VerifiedDir:    verifiedDir,
		Enabled:        enabled,
		Timeout:        cfg.Sandbox.Timeout,
		StartTimeout:   cfg.Sandbox.StartTimeout,
		MaxResultBytes: cfg.Sandbox.MaxResultBytes,
		Caps:           sdk.Resources{MemoryBytes: cfg.Sandbox.Memory, Pids: int64(cfg.Sandbox.Pids), Timeout: cfg.Sandbox.Timeout},
		MaxFiles:       1_000_000,
		Parallel:       cfg.Sandbox.Parallel,
		LayerLimits: sdk.LayerLimits{
			MaxLayerEntries: int64(cfg.Limits.MaxEntries), MaxEntries: int64(cfg.Limits.MaxEntries),
			MaxLayerBytes: cfg.Limits.MaxUnpackedBytes, MaxBytes: cfg.Limits.MaxUnpackedBytes,
			MaxFileBytes: cfg.Limits.FileBytes(),
		},
		Logger: log,
	}
	var cache *store.LayerCache
	stop := func() {}
	if cfg.Cache.MaxBytes > 0 {
		c, err := store.OpenLayerCache(filepath.Join(cfg.StateDir, "layers.db"), cfg.Cache.MaxBytes, cfg.Cache.MaxAge)
		if err != nil {
			return nil, nil, nil, err
		}
		if n, err := c.Prune(); err != nil {
			log.Warn("pruning the layer cache", "err", err)
		} else if n > 0 {
			log.Info("layer cache pruned", "entries", n)
		}
		cache = c
		o.Cache = c
		stop = func() {
			if err := c.Close(); err != nil {
				log.Warn("closing the layer cache", "err", err)
			}
		}
	}
	if len(enabled) > 0 {
		start, count := cfg.Sandbox.IDs()
		m, err := sandbox.NewManager(sandbox.Config{
			StateDir:   sbDir,
			UIDStart:   start,
			UIDCount:   count,
			Memory:     cfg.Sandbox.Memory,
			Pids:       int64(cfg.Sandbox.Pids),
			CPUShares:  uint64(cfg.Sandbox.CPUShares),
			TmpfsBytes: cfg.Sandbox.TmpfsBytes,
			// A backstop: the plugin host's deadline (sandbox.timeout)
			// ends a run first and reports it as a timeout.
			Timeout: cfg.Sandbox.Timeout + 10*time.Second,
		})
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		closeCache := stop
		stop = func() {
			if err := m.Close(); err != nil {
				log.Warn("closing the sandbox manager", "err", err)
			}
			closeCache()
		}
		o.Sandbox = sandboxes{m}
		if parent, note := sandbox.CgroupPlacement(); note != "" {
			log.Warn("sandbox cgroups are not inside assayd's own cgroup: the service's limits do not cover them", "parent", parent, "reason", note)
		} else {
			log.Debug("sandbox cgroups", "parent", parent)
		}
		o.SocketDir = m.SocketTempDir()
	}
	a, err := analyze.New(o)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	closeAll := stop
	stop = func() {
		a.Wait() // layer results still being stored
		closeAll()
	}
	if len(enabled) > 0 {
		h, err := host.New(host.Options{Dir: pluginsDir, CacheDir: cacheDir, VerifiedDir: verifiedDir})
		if err == nil {
			if err := h.RemoveStale(); err != nil {
				log.Warn("removing stale plugin run dirs", "err", err)
			}
		}
		for _, p := range a.EnabledPlugins() {
			log.Info("analyzer plugin enabled", "name", p.Manifest.Name, "version", p.Manifest.Version, "extractors", p.Extractors, "sha256", p.Manifest.SHA256)
			// The first scan then finds the verified copy ready.
			if h != nil {
				if err := h.Prepare(p.Manifest); err != nil {
					log.Warn("verifying the plugin's binary failed; its runs will fail", "name", p.Manifest.Name, "err", err)
				}
			}
		}
	}
	return a, cache, stop, nil
}

// resolvePlugins is plugins.dir resolved (config.Plugins.ResolveDir) and
// plugins.enabled with "all" expanded to every plugin found there with a
// valid manifest.
func resolvePlugins(cfg *config.Config, log *slog.Logger) (string, []string) {
	exe, _ := os.Executable()
	dir := cfg.Plugins.ResolveDir(exe)
	if !slices.Equal(cfg.Plugins.Enabled, []string{config.AllPlugins}) {
		return dir, cfg.Plugins.Enabled
	}
	found, err := host.Discover(dir)
	if err != nil {
		log.Warn("plugins.dir: some plugins are not usable and are left out", "dir", dir, "err", err)
	}
	var names []string
	for _, m := range found {
		names = append(names, m.Name)
	}
	if len(names) == 0 {
		log.Warn("no analyzer plugin found: every report will be incomplete; install the plugins or set plugins.dir", "dir", dir)
	} else {
		log.Info("plugins.enabled: all: every plugin found", "dir", dir, "plugins", names)
	}
	return dir, names
}
