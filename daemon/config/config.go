package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-units"

	"github.com/assayhq/assay/daemon/netaddr"
	"github.com/assayhq/assay/daemon/report"
)

// DefaultPath is the file read when no other is named.
const DefaultPath = "/etc/assay/assayd.yaml"

// Config is the daemon's whole configuration. The tags give each field's key
// as written in the file.
type Config struct {
	Socket     Socket     `mapstructure:"socket" yaml:"socket"`
	StateDir   string     `mapstructure:"state_dir" yaml:"state_dir"`
	Containerd Containerd `mapstructure:"containerd" yaml:"containerd"`
	Registries Registries `mapstructure:"registries" yaml:"registries"`
	Scan       Scan       `mapstructure:"scan" yaml:"scan"`
	Limits     Limits     `mapstructure:"limits" yaml:"limits"`
	Plugins    Plugins    `mapstructure:"plugins" yaml:"plugins"`
	Sandbox    Sandbox    `mapstructure:"sandbox" yaml:"sandbox"`
	VulnDB     VulnDB     `mapstructure:"vulndb" yaml:"vulndb"`
	Match      Match      `mapstructure:"match" yaml:"match"`
	Policy     Policy     `mapstructure:"policy" yaml:"policy"`
	Webhook    Webhook    `mapstructure:"webhook" yaml:"webhook"`
	Log        Log        `mapstructure:"log" yaml:"log"`
	API        API        `mapstructure:"api" yaml:"api"`
	Harbor     Harbor     `mapstructure:"harbor" yaml:"harbor"`
	Notify     Notify     `mapstructure:"notify" yaml:"notify"`
	Store      Store      `mapstructure:"store" yaml:"store"`
	Shutdown   Shutdown   `mapstructure:"shutdown" yaml:"shutdown"`
	Cache      Cache      `mapstructure:"cache" yaml:"cache"`
}

// Socket is the unix socket the API listens on.
type Socket struct {
	// Path must be absolute.
	Path string `mapstructure:"path" yaml:"path"`
	// Group, by name or numeric gid, may use the socket besides root and the
	// daemon's own uid, with the scan role: read, submit scans, cancel its
	// own. Empty means no group.
	Group string `mapstructure:"group" yaml:"group"`
	// ReadGroup's members may only read: reports, scans, events, queries.
	ReadGroup string `mapstructure:"read_group" yaml:"read_group"`
	// AdminGroup's members may also import advisories, prune the cache,
	// cancel any scan and submit scans with a policy of their own. Root
	// and the daemon's own uid are admins.
	AdminGroup string `mapstructure:"admin_group" yaml:"admin_group"`
	// Mode is the socket's permission bits as an octal string, e.g. "0660".
	Mode string `mapstructure:"mode" yaml:"mode"`
}

// FileMode returns Mode parsed. It is 0 if Mode is invalid, which Validate
// rejects.
func (s Socket) FileMode() os.FileMode {
	m, err := parseMode(s.Mode)
	if err != nil {
		return 0
	}
	return m
}

// Containerd is the containerd that pulls and unpacks images.
type Containerd struct {
	// Address is the socket of a containerd that runs on its own, an
	// absolute path; Load strips a "unix://" prefix. Empty means managed
	// mode: assayd runs its own containerd as a child.
	Address string `mapstructure:"address" yaml:"address"`
	// Namespace is the containerd namespace assayd works in.
	Namespace string `mapstructure:"namespace" yaml:"namespace"`
	// Binary is the containerd executable of managed mode, an absolute
	// path. Empty means the file named containerd next to the assayd
	// executable.
	Binary string `mapstructure:"binary" yaml:"binary"`
	// StartTimeout bounds how long the managed containerd may take to serve.
	StartTimeout time.Duration `mapstructure:"start_timeout" yaml:"start_timeout"`
	// WatchImages, when true, scans every image created in Namespace (node
	// mode).
	WatchImages bool `mapstructure:"watch_images" yaml:"watch_images"`
}

// Registries says how images are pulled.
type Registries struct {
	// ConfigPath is a containerd-style hosts directory (certs.d: one
	// directory per registry host holding hosts.toml and certificates),
	// an absolute path. It need not exist.
	ConfigPath string `mapstructure:"config_path" yaml:"config_path"`
	// AuthFile is a Docker config.json holding registry credentials, an
	// absolute path. Empty means pulls are anonymous.
	AuthFile string `mapstructure:"auth_file" yaml:"auth_file"`
}

// Scan bounds the work of scanning.
type Scan struct {
	// Concurrency is how many scans run at once.
	Concurrency int `mapstructure:"concurrency" yaml:"concurrency"`
	// Timeout bounds one scan, from pull to report.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// MaxAttempts is how many times a scan interrupted by a crash of the
	// daemon is started before it is failed.
	MaxAttempts int `mapstructure:"max_attempts" yaml:"max_attempts"`
	// MaxQueued bounds the scans waiting for a worker: beyond it a new
	// request is refused (429 on the API, 503 to a registry's webhook, so
	// that it redelivers), never dropped after it was accepted.
	MaxQueued int `mapstructure:"max_queued" yaml:"max_queued"`
	// Platforms are the platforms of a multi-platform image that are
	// scanned, each "os/arch" or "os/arch/variant". Empty (nil) means the
	// host's platform.
	Platforms []string `mapstructure:"platforms" yaml:"platforms"`
}

// Limits bound the images assayd accepts to scan.
type Limits struct {
	// MaxImageBytes caps an image's compressed size as its manifest
	// states it: the sizes of its layers and its config summed.
	MaxImageBytes int64 `mapstructure:"max_image_bytes" yaml:"max_image_bytes"`
	// MaxLayers caps an image's number of layers.
	MaxLayers int `mapstructure:"max_layers" yaml:"max_layers"`
	// MaxUnpackedBytes caps the size of an image's layers once unpacked.
	MaxUnpackedBytes int64 `mapstructure:"max_unpacked_bytes" yaml:"max_unpacked_bytes"`
	// MaxEntries caps the tar entries of an image's layers (files,
	// directories, links): an image of millions of empty files is refused
	// whatever its size.
	MaxEntries int `mapstructure:"max_entries" yaml:"max_entries"`
	// MaxReportPackages caps the packages a report keeps; a report over
	// it is stored truncated, with a warning.
	MaxReportPackages int `mapstructure:"max_report_packages" yaml:"max_report_packages"`
	// MaxPackageLocations caps the locations one package of a report
	// keeps.
	MaxPackageLocations int `mapstructure:"max_package_locations" yaml:"max_package_locations"`
	// MaxFileBytes overrides, per extractor name, the largest file the
	// extractor is handed (each extractor declares its own: 64 MiB for
	// most, 512 MiB for Go and Rust binaries); sizes like "1GiB".
	MaxFileBytes map[string]string `mapstructure:"max_file_bytes" yaml:"max_file_bytes"`
}

// FileBytes is MaxFileBytes parsed (Validate refuses what does not parse).
func (l Limits) FileBytes() map[string]int64 {
	out := map[string]int64{}
	for name, v := range l.MaxFileBytes {
		if n, err := units.RAMInBytes(strings.TrimSpace(v)); err == nil {
			out[name] = n
		}
	}
	return out
}

// Cache bounds the layer cache: what extractors found in each layer,
// kept so that a layer seen before is neither fetched nor read again.
type Cache struct {
	// MaxBytes caps the cache's size; least recently used entries go
	// first. 0 turns the cache off.
	MaxBytes int64 `mapstructure:"max_bytes" yaml:"max_bytes"`
	// MaxAge is how long an entry is kept after it was last used.
	MaxAge time.Duration `mapstructure:"max_age" yaml:"max_age"`
}

// Plugins are the analyzers a scan runs.
type Plugins struct {
	// Dir is the directory of plugins, an absolute path: static
	// executables, each described by a manifest <name>.plugin.json (name,
	// version, binary, sha256). Empty: the "plugins" directory next to
	// the assayd executable if there is one, else InstalledPluginsDir
	// (ResolveDir). The daemon checks it when it starts, not this package.
	Dir string `mapstructure:"dir" yaml:"dir"`
	// Enabled are the plugins run for each scan, by the name in their
	// manifest (or an extractor of a layer plugin): lower-case letters,
	// digits, ".", "_" and "-", starting with a letter or digit, each at
	// most once. AllPlugins alone enables every plugin found in Dir with a
	// valid manifest (the default). Empty (nil) means no analyzer runs
	// and every verdict is "incomplete".
	Enabled []string `mapstructure:"enabled" yaml:"enabled"`
}

// AllPlugins in plugins.enabled enables every plugin found.
const AllPlugins = "all"

// InstalledPluginsDir is where make install puts the plugins.
const InstalledPluginsDir = "/usr/local/lib/assay/plugins"

// ResolveDir is Dir, or, when empty, the "plugins" directory next to the
// executable exe (symlinks resolved) if it exists, else
// InstalledPluginsDir.
func (p Plugins) ResolveDir(exe string) string {
	if p.Dir != "" {
		return p.Dir
	}
	if exe != "" {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			dir := filepath.Join(filepath.Dir(real), "plugins")
			if st, err := os.Stat(dir); err == nil && st.IsDir() {
				return dir
			}
		}
	}
	return InstalledPluginsDir
}

// Sandbox bounds one analyzer run: the sandbox a plugin runs in.
type Sandbox struct {
	// IDRange is START:COUNT, the host uids and gids the sandbox's user
	// namespaces map to: COUNT ids from START. START is at least 65536,
	// clear of host root and ordinary users; COUNT at least 1 (65536 is
	// recommended); START+COUNT at most 4294967295. Use IDs for the
	// numbers.
	IDRange string `mapstructure:"id_range" yaml:"id_range"`
	// Timeout is the wall-clock deadline of one analyzer run. It is less
	// than Scan.Timeout.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// Memory caps the sandbox's memory, in bytes; at least 16MiB.
	Memory int64 `mapstructure:"memory" yaml:"memory"`
	// Pids caps the processes and threads in the sandbox, 8 to 65536.
	Pids int `mapstructure:"pids" yaml:"pids"`
	// CPUShares is the sandbox's CPU weight as cgroup v1 cpu.shares
	// gives it (1024 is the usual weight of one process), 2 to 262144;
	// the sandbox converts it for cgroup v2.
	CPUShares int `mapstructure:"cpu_shares" yaml:"cpu_shares"`
	// TmpfsBytes is the size of the sandbox's /tmp, 1MiB to 1GiB.
	TmpfsBytes int64 `mapstructure:"tmpfs_bytes" yaml:"tmpfs_bytes"`
	// MaxResultBytes caps what one analyzer run may send back, in bytes.
	MaxResultBytes int64 `mapstructure:"max_result_bytes" yaml:"max_result_bytes"`
	// StartTimeout bounds a plugin's handshake once it is started.
	StartTimeout time.Duration `mapstructure:"start_timeout" yaml:"start_timeout"`
	// Parallel is how many analyzers of one scan run at once.
	Parallel int `mapstructure:"parallel" yaml:"parallel"`
}

// IDs returns IDRange parsed: the first host id mapped and how many are.
// Both are 0 if IDRange is invalid, which Validate rejects.
func (s Sandbox) IDs() (start, count uint32) {
	start, count, err := parseIDRange(s.IDRange)
	if err != nil {
		return 0, 0
	}
	return start, count
}

// Webhook is an HTTP endpoint that registries notify of pushed images,
// which assayd then scans.
type Webhook struct {
	// Listener: the endpoint's host:port (empty: no webhook) and TLS;
	// in clear the token crosses the network.
	Listener `mapstructure:",squash" yaml:",inline"`
	// Token is the secret a notification must carry. Use Secret, which
	// also covers TokenFile, rather than reading it.
	Token string `mapstructure:"token" yaml:"token"`
	// TokenFile is an absolute path of a file holding the secret instead
	// of Token. Validate (so Load) reads it; a trailing newline is not
	// part of the secret.
	TokenFile string `mapstructure:"token_file" yaml:"token_file"`
	// Registries maps a registry's name as notifications give it
	// (host[:port]) to the address to pull its images from (host[:port]).
	// A notification from a registry not listed is refused.
	Registries map[string]string `mapstructure:"registries" yaml:"registries"`
	// MaxBodyBytes caps a notification's body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	// fileToken is TokenFile's content as Validate last read it.
	fileToken string
}

// Secret returns the token a notification must carry: Token, or, if
// TokenFile is set, the token read from that file when the Config was
// loaded (or last validated). It is empty if neither is set.
func (w Webhook) Secret() string {
	if w.TokenFile != "" {
		return w.fileToken
	}
	return w.Token
}

// Log sets the daemon's log output.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level" yaml:"level"`
	// Format is text or json.
	Format string `mapstructure:"format" yaml:"format"`
}

// SlogLevel returns Level as a slog.Level; info if Level is invalid, which
// Validate rejects.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// VulnDB is the OSV vulnerability database: where its data comes from and
// how often it is refreshed.
type VulnDB struct {
	// Sources are OSV zip archives by http(s) URL (the public layout,
	// .../<Ecosystem>/all.zip), or absolute paths of zips, JSON files or
	// directories of OSV records.
	Sources []string `mapstructure:"sources" yaml:"sources"`
	// UpdateInterval is how often sources are fetched (conditionally); 0
	// fetches them once at start only.
	UpdateInterval time.Duration `mapstructure:"update_interval" yaml:"update_interval"`
	// Timeout bounds one source's fetch.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// MaxArchiveBytes caps one downloaded or imported archive.
	MaxArchiveBytes int64 `mapstructure:"max_archive_bytes" yaml:"max_archive_bytes"`
	// MaxRecordBytes caps one OSV record, uncompressed: larger ones are
	// refused unread (counted invalid).
	MaxRecordBytes int64 `mapstructure:"max_record_bytes" yaml:"max_record_bytes"`
	// MaxTotalBytes caps the uncompressed records of one import or update,
	// held in memory until applied: what an upload can cost.
	MaxTotalBytes int64 `mapstructure:"max_total_bytes" yaml:"max_total_bytes"`
	// RequireCoverage: an image with packages of an ecosystem the database
	// holds no advisory for is never called healthy (incomplete instead).
	RequireCoverage bool `mapstructure:"require_coverage" yaml:"require_coverage"`
	// AllowHTTP permits plain-http sources (and redirects to plain http)
	// off loopback; a redirect from https to http is refused regardless.
	AllowHTTP bool `mapstructure:"allow_http" yaml:"allow_http"`
}

// Match sets how inventories are matched against advisories.
type Match struct {
	// OSOwnedLanguagePackages also matches language packages shipped by an
	// OS package (Debian's python3-urllib3) against the language's
	// advisories; by default only the OS package's advisories apply, since
	// distributions patch their own builds.
	OSOwnedLanguagePackages bool `mapstructure:"os_owned_language_packages" yaml:"os_owned_language_packages"`
}

// Policy filters findings; a scan request may add to it.
type Policy struct {
	// MinSeverity hides findings below it ("" hides none).
	MinSeverity string `mapstructure:"min_severity" yaml:"min_severity"`
	// OnlyFixed hides findings with no known fixed version.
	OnlyFixed bool `mapstructure:"only_fixed" yaml:"only_fixed"`
	// IgnoreFile is a YAML file of ignore rules (absolute; "" for none).
	IgnoreFile string `mapstructure:"ignore_file" yaml:"ignore_file"`
	// VEX are OpenVEX documents (absolute paths).
	VEX []string `mapstructure:"vex" yaml:"vex"`
}

// API bounds what one client of the socket API may cost.
type API struct {
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	// EventBuffer is how many events are held for one /v1/events client
	// that reads too slowly before it is dropped.
	EventBuffer int `mapstructure:"event_buffer" yaml:"event_buffer"`
	// Listener also serves the /v1 API over TCP, to callers with a
	// bearer token of TokensFile. Empty Listen: the socket only.
	Listener `mapstructure:",squash" yaml:",inline"`
	// TokensFile (absolute) holds the tokens, one a line: ROLE TOKEN
	// [EXPIRES], ROLE read, scan or admin, EXPIRES a date or RFC 3339
	// time; # starts a comment.
	TokensFile string `mapstructure:"tokens_file" yaml:"tokens_file"`
}

// Listener is a TCP listener of the daemon (api, webhook, harbor): its
// host:port ("" for none) and TLS. Without TLSCertFile and TLSKeyFile
// (absolute, PEM) it speaks plain HTTP, refused off loopback unless
// Insecure: secrets would cross the network in clear.
type Listener struct {
	Listen      string `mapstructure:"listen" yaml:"listen"`
	TLSCertFile string `mapstructure:"tls_cert_file" yaml:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file" yaml:"tls_key_file"`
	Insecure    bool   `mapstructure:"insecure" yaml:"insecure"`
}

// Harbor is the Harbor scanner-adapter listener (API v1.2).
type Harbor struct {
	// Listener serves the adapter under /api/v1. Empty Listen: none.
	Listener `mapstructure:",squash" yaml:",inline"`
	// Auth is how Harbor authenticates: bearer, basic or api_key.
	Auth string `mapstructure:"auth" yaml:"auth"`
	// SecretFile (absolute) holds the secret: the token (bearer), the key
	// (api_key) or user:password (basic), on one line. Use Secret.
	SecretFile string `mapstructure:"secret_file" yaml:"secret_file"`
	// Registries are the registry URLs (scheme://host[:port]) a scan
	// request may name; pulls from an http:// one use plain HTTP.
	Registries []string `mapstructure:"registries" yaml:"registries"`

	// fileSecret is SecretFile's content as Validate last read it.
	fileSecret string
}

// HarborAuthModes are the values of harbor.auth.
var HarborAuthModes = []string{"bearer", "basic", "api_key"}

// Secret is harbor.secret_file's content as the Config was loaded (or
// last validated).
func (h Harbor) Secret() string { return h.fileSecret }

// Notify sets the outgoing notifications: CloudEvents POSTed to
// receivers from a durable outbox.
type Notify struct {
	Webhooks []NotifyWebhook `mapstructure:"webhooks" yaml:"webhooks"`
	// MaxAge is how long a notification is retried before it is
	// dead-lettered.
	MaxAge time.Duration `mapstructure:"max_age" yaml:"max_age"`
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
}

// NotifyWebhook is one receiver of notifications.
type NotifyWebhook struct {
	// URL receives the events (POST, application/cloudevents+json):
	// https, or http on loopback (or anywhere with AllowHTTP).
	URL string `yaml:"url" json:"url"`
	// SecretFile (absolute) holds the HMAC-SHA256 key the deliveries are
	// signed with. Use Secret.
	SecretFile string `yaml:"secret_file" json:"secret_file"`
	// MinSeverity drops report events whose worst finding is below it.
	MinSeverity string `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
	// VerdictChangedOnly sends only the reports whose verdict differs
	// from the image's previous one, and verdict changes.
	VerdictChangedOnly bool `yaml:"verdict_changed_only,omitempty" json:"verdict_changed_only,omitempty"`
	// Images are globs (path.Match) over the image's repository
	// (registry/path); none means every image.
	Images []string `yaml:"images,omitempty" json:"images,omitempty"`
	// AllowHTTP allows a plain-http URL off loopback.
	AllowHTTP bool `yaml:"allow_http,omitempty" json:"allow_http,omitempty"`

	secret string
}

// Secret is the receiver's key as the Config was loaded.
func (w NotifyWebhook) Secret() string { return w.secret }

// Store sets what the report store keeps.
type Store struct {
	// ReportsPerImage is how many reports are kept per image digest, the
	// newest first.
	ReportsPerImage int `mapstructure:"reports_per_image" yaml:"reports_per_image"`
	// ScanRetention is how long a finished scan's record is kept.
	ScanRetention time.Duration `mapstructure:"scan_retention" yaml:"scan_retention"`
}

// Shutdown sets how the daemon stops.
type Shutdown struct {
	// Timeout is how long SIGTERM waits for running scans before cancelling
	// them.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
}

// Default returns the built-in configuration, the lowest layer of Load.
// configs/assayd.yaml states the same values; a test keeps them equal.
func Default() Config {
	return Config{
		Socket: Socket{
			Path:  "/run/assay/assayd.sock",
			Group: "",
			Mode:  "0660",
		},
		StateDir: "/var/lib/assay",
		Containerd: Containerd{
			Address:      "",
			Namespace:    "assay",
			Binary:       "",
			StartTimeout: 30 * time.Second,
			WatchImages:  false,
		},
		Registries: Registries{
			ConfigPath: "/etc/assay/certs.d",
			AuthFile:   "",
		},
		Scan: Scan{
			Concurrency: 2,
			Timeout:     10 * time.Minute,
			MaxAttempts: 3,
			MaxQueued:   10000,
			Platforms:   nil,
		},
		Limits: Limits{
			MaxImageBytes:       4 << 30,
			MaxLayers:           128,
			MaxUnpackedBytes:    16 << 30,
			MaxEntries:          2_000_000,
			MaxReportPackages:   200_000,
			MaxPackageLocations: 1000,
		},
		Plugins: Plugins{
			Dir:     "",
			Enabled: []string{AllPlugins},
		},
		Sandbox: Sandbox{
			IDRange:        "1000000000:65536",
			Timeout:        2 * time.Minute,
			Memory:         512 << 20,
			Pids:           256,
			CPUShares:      512,
			TmpfsBytes:     16 << 20,
			MaxResultBytes: 64 << 20,
			StartTimeout:   10 * time.Second,
			Parallel:       2,
		},
		VulnDB: VulnDB{
			Sources:         []string{DefaultOSVSource},
			UpdateInterval:  6 * time.Hour,
			Timeout:         10 * time.Minute,
			MaxArchiveBytes: 2 << 30,
			MaxRecordBytes:  4 << 20,
			MaxTotalBytes:   2 << 30,
			RequireCoverage: true,
		},
		Match: Match{
			OSOwnedLanguagePackages: false,
		},
		Policy: Policy{
			MinSeverity: "",
			OnlyFixed:   false,
			IgnoreFile:  "",
			VEX:         nil,
		},
		Webhook: Webhook{
			Token:        "",
			TokenFile:    "",
			Registries:   nil,
			MaxBodyBytes: 1 << 20,
		},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		API: API{
			MaxBodyBytes: 1 << 20,
			EventBuffer:  256,
		},
		Store: Store{
			ReportsPerImage: 10,
			ScanRetention:   720 * time.Hour,
		},
		Shutdown: Shutdown{
			Timeout: 30 * time.Second,
		},
		Notify: Notify{
			MaxAge:  24 * time.Hour,
			Timeout: 10 * time.Second,
		},
		Cache: Cache{
			MaxBytes: 1 << 30,
			MaxAge:   720 * time.Hour,
		},
	}
}

// ChangedKeys returns the keys whose values differ between c and other, in
// the order of the file; a different token read from the same
// webhook.token_file counts as a change of webhook.token_file. It tells,
// on reload, which settings a restart would apply.
func (c *Config) ChangedKeys(other *Config) []string {
	var changed []string
	for _, k := range keys {
		differs := !reflect.DeepEqual(k.get(c), k.get(other))
		if k.name == "webhook.token_file" && c.Webhook.fileToken != other.Webhook.fileToken {
			differs = true
		}
		if k.name == "harbor.secret_file" && c.Harbor.fileSecret != other.Harbor.fileSecret {
			differs = true
		}
		if k.name == "notify.webhooks" && !slices.EqualFunc(c.Notify.Webhooks, other.Notify.Webhooks, func(a, b NotifyWebhook) bool { return a.secret == b.secret }) {
			differs = true
		}
		if differs {
			changed = append(changed, k.name)
		}
	}
	return changed
}

// keyError is a problem with the value of one key.
type keyError struct {
	key string // dotted, as in the file
	msg string
	// from says where the value came from ("from ASSAY_SCAN_TIMEOUT"), when
	// known; Validate does not know it, Load does.
	from string
}

func (e *keyError) Error() string {
	s := "config: " + e.key + ": " + e.msg
	if e.from != "" {
		s += " (" + e.from + ")"
	}
	return s
}

// maxSocketPath is the longest path a unix socket can have on Linux:
// sun_path is 108 bytes including the terminating NUL.
const maxSocketPath = 107

// unixScheme may prefix containerd.address; Load strips it.
const unixScheme = "unix://"

// A containerd namespace, as containerd's namespaces.Validate checks it.
const maxNamespace = 76

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

// platformRE matches os/arch and os/arch/variant, in lower case.
var platformRE = regexp.MustCompile(`^[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?$`)

// pluginNameRE matches a plugin's manifest name.
var pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// The host ids sandbox.id_range may map: from minIDStart, clear of root
// (0), ordinary users and nobody (65534), to below 4294967295, which is
// (uid_t)-1, no id; the kernel refuses a mapping that reaches it.
const (
	minIDStart = 1 << 16
	maxIDEnd   = 1<<32 - 1 // START+COUNT at most
)

// minTokenLen is the shortest webhook token accepted, in characters.
const minTokenLen = 16

// Validate checks every value and returns one error per bad key, joined.
// It reads webhook.token_file, when set, and keeps the token for
// Webhook.Secret.
func (c *Config) Validate() error {
	return joinKeyErrors(c.validate())
}

func (c *Config) validate() []*keyError {
	var errs []*keyError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &keyError{key: key, msg: fmt.Sprintf(format, args...)})
	}
	between := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, "must be between %d and %d, got %d", lo, hi, v)
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be greater than 0, got %s", d)
		}
	}
	positiveSize := func(key string, n int64) {
		if n <= 0 {
			bad(key, "must be greater than 0, got %d", n)
		}
	}
	sizeAtLeast := func(key string, n, lo int64) {
		if n < lo {
			bad(key, "must be at least %s, got %d bytes", units.BytesSize(float64(lo)), n)
		}
	}
	sizeBetween := func(key string, n, lo, hi int64) {
		if n < lo || n > hi {
			bad(key, "must be between %s and %s, got %d bytes",
				units.BytesSize(float64(lo)), units.BytesSize(float64(hi)), n)
		}
	}
	absOrEmpty := func(key, p string) {
		if p != "" && !filepath.IsAbs(p) {
			bad(key, `must be an absolute path (or "" for the default), got %q`, p)
		}
	}

	switch p := c.Socket.Path; {
	case !filepath.IsAbs(p):
		bad("socket.path", "must be an absolute path, got %q", p)
	case len(p) > maxSocketPath:
		bad("socket.path", "is %d bytes long; a unix socket path can be at most %d", len(p), maxSocketPath)
	}
	for key, g := range map[string]string{"socket.group": c.Socket.Group, "socket.read_group": c.Socket.ReadGroup, "socket.admin_group": c.Socket.AdminGroup} {
		if err := checkGroup(g); err != nil {
			bad(key, "%v", err)
		}
	}
	if mode, err := parseMode(c.Socket.Mode); err != nil {
		bad("socket.mode", "%v", err)
	} else if mode&0o006 != 0o006 {
		// The socket file belongs to socket.group: members of another
		// group could not even connect.
		for key, g := range map[string]string{"socket.read_group": c.Socket.ReadGroup, "socket.admin_group": c.Socket.AdminGroup} {
			if g != "" && g != c.Socket.Group {
				bad(key, "its members cannot connect: socket.mode %s lets only the owner and socket.group in; set socket.mode to \"0666\" (assayd checks every caller's groups itself)", c.Socket.Mode)
			}
		}
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "must be an absolute path, got %q", c.StateDir)
	}

	if a := c.Containerd.Address; a != "" {
		switch p := strings.TrimPrefix(a, unixScheme); {
		case !filepath.IsAbs(p):
			bad("containerd.address", "must be the absolute path of a unix socket, optionally prefixed %s; got %q", unixScheme, a)
		case len(p) > maxSocketPath:
			bad("containerd.address", "is %d bytes long; a unix socket path can be at most %d", len(p), maxSocketPath)
		}
	}
	switch ns := c.Containerd.Namespace; {
	case len(ns) > maxNamespace:
		bad("containerd.namespace", "is %d characters long; a containerd namespace can be at most %d", len(ns), maxNamespace)
	case !namespaceRE.MatchString(ns):
		bad("containerd.namespace", `must be letters and digits, separated by single ".", "_" or "-", like "assay"; got %q`, ns)
	}
	absOrEmpty("containerd.binary", c.Containerd.Binary)
	positive("containerd.start_timeout", c.Containerd.StartTimeout)

	if !filepath.IsAbs(c.Registries.ConfigPath) {
		bad("registries.config_path", "must be an absolute path, got %q", c.Registries.ConfigPath)
	}
	absOrEmpty("registries.auth_file", c.Registries.AuthFile)

	between("scan.concurrency", c.Scan.Concurrency, 1, 64)
	positive("scan.timeout", c.Scan.Timeout)
	between("scan.max_attempts", c.Scan.MaxAttempts, 1, 10)
	between("scan.max_queued", c.Scan.MaxQueued, 1, 10_000_000)
	seen := make(map[string]bool)
	for _, p := range c.Scan.Platforms {
		switch {
		case !platformRE.MatchString(p):
			bad("scan.platforms", `%q must be os/arch or os/arch/variant in lower case, like "linux/amd64" or "linux/arm/v7"`, p)
		case seen[p]:
			bad("scan.platforms", "%q is listed twice", p)
		}
		seen[p] = true
	}

	positiveSize("limits.max_image_bytes", c.Limits.MaxImageBytes)
	between("limits.max_layers", c.Limits.MaxLayers, 1, 10000)
	positiveSize("limits.max_unpacked_bytes", c.Limits.MaxUnpackedBytes)

	if c.Plugins.Dir != "" && !filepath.IsAbs(c.Plugins.Dir) {
		bad("plugins.dir", "must be an absolute path (or empty: next to assayd, else %s), got %q", InstalledPluginsDir, c.Plugins.Dir)
	}
	if slices.Contains(c.Plugins.Enabled, AllPlugins) && len(c.Plugins.Enabled) > 1 {
		bad("plugins.enabled", "%q enables every plugin found and stands alone; list names instead to choose", AllPlugins)
	}
	enabled := make(map[string]bool)
	for _, name := range c.Plugins.Enabled {
		switch {
		case !pluginNameRE.MatchString(name):
			bad("plugins.enabled", `%q must be a plugin's manifest name: lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`, name)
		case enabled[name]:
			bad("plugins.enabled", "%q is listed twice", name)
		}
		enabled[name] = true
	}

	if _, _, err := parseIDRange(c.Sandbox.IDRange); err != nil {
		bad("sandbox.id_range", "%v", err)
	}
	switch st, t := c.Sandbox.Timeout, c.Scan.Timeout; {
	case st <= 0:
		bad("sandbox.timeout", "must be greater than 0, got %s", st)
	case t > 0 && st >= t:
		bad("sandbox.timeout", "must be less than scan.timeout (%s), which bounds the whole scan; got %s", t, st)
	}
	sizeAtLeast("sandbox.memory", c.Sandbox.Memory, 16<<20)
	between("sandbox.pids", c.Sandbox.Pids, 8, 65536)
	between("sandbox.cpu_shares", c.Sandbox.CPUShares, 2, 262144)
	sizeBetween("sandbox.tmpfs_bytes", c.Sandbox.TmpfsBytes, 1<<20, 1<<30)
	positiveSize("sandbox.max_result_bytes", c.Sandbox.MaxResultBytes)
	positive("sandbox.start_timeout", c.Sandbox.StartTimeout)
	between("sandbox.parallel", c.Sandbox.Parallel, 1, 16)

	for _, src := range c.VulnDB.Sources {
		if err := checkSource(src, c.VulnDB.AllowHTTP); err != nil {
			bad("vulndb.sources", "%v", err)
		}
	}
	if c.VulnDB.UpdateInterval < 0 {
		bad("vulndb.update_interval", "must be 0 (fetch at start only) or more, got %s", c.VulnDB.UpdateInterval)
	} else if c.VulnDB.UpdateInterval > 0 && c.VulnDB.UpdateInterval < time.Minute {
		bad("vulndb.update_interval", "must be 0 or at least 1m (be kind to the sources), got %s", c.VulnDB.UpdateInterval)
	}
	positive("vulndb.timeout", c.VulnDB.Timeout)
	positiveSize("vulndb.max_archive_bytes", c.VulnDB.MaxArchiveBytes)
	positiveSize("vulndb.max_record_bytes", c.VulnDB.MaxRecordBytes)
	positiveSize("vulndb.max_total_bytes", c.VulnDB.MaxTotalBytes)

	if s := c.Policy.MinSeverity; s != "" {
		if _, err := report.ParseSeverity(s); err != nil {
			bad("policy.min_severity", `must be "" or one of critical, high, medium, low, negligible, unknown; got %q`, s)
		}
	}
	absOrEmpty("policy.ignore_file", c.Policy.IgnoreFile)
	for _, v := range c.Policy.VEX {
		if !filepath.IsAbs(v) {
			bad("policy.vex", "%q must be an absolute path of an OpenVEX document", v)
		}
	}

	c.validateWebhook(bad)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}

	positiveSize("api.max_body_bytes", c.API.MaxBodyBytes)
	between("api.event_buffer", c.API.EventBuffer, 1, 100000)
	c.validateAPIListen(bad)
	c.validateHarbor(bad)
	c.validateNotify(bad)

	if c.Store.ReportsPerImage < 1 {
		bad("store.reports_per_image", "must be at least 1, got %d", c.Store.ReportsPerImage)
	}
	positive("store.scan_retention", c.Store.ScanRetention)

	positive("shutdown.timeout", c.Shutdown.Timeout)

	if c.Limits.MaxEntries < 1 {
		bad("limits.max_entries", "must be at least 1, got %d", c.Limits.MaxEntries)
	}
	if c.Limits.MaxReportPackages < 1 {
		bad("limits.max_report_packages", "must be at least 1, got %d", c.Limits.MaxReportPackages)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Limits.MaxFileBytes)) {
		n, err := units.RAMInBytes(strings.TrimSpace(c.Limits.MaxFileBytes[name]))
		switch {
		case !pluginNameRE.MatchString(name):
			bad("limits.max_file_bytes", "%q is not an extractor name", name)
		case err != nil || n <= 0:
			bad("limits.max_file_bytes", "%s: %q is not a positive size like \"512MiB\"", name, c.Limits.MaxFileBytes[name])
		}
	}
	if c.Limits.MaxPackageLocations < 1 {
		bad("limits.max_package_locations", "must be at least 1, got %d", c.Limits.MaxPackageLocations)
	}
	if c.Cache.MaxBytes < 0 {
		bad("cache.max_bytes", "must not be negative, got %d", c.Cache.MaxBytes)
	}
	positive("cache.max_age", c.Cache.MaxAge)
	return errs
}

// DefaultOSVSource is the default of vulndb.sources: OSV's public
// archives, one per ecosystem, fetched for the ecosystems of the images
// seen.
const DefaultOSVSource = "https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip"

// checkSource accepts an https URL with a host, an http one on loopback
// (or anywhere with allowHTTP), or an absolute path.
func checkSource(src string, allowHTTP bool) error {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		u, err := url.Parse(src)
		if err != nil || u.Host == "" {
			// {ecosystem} (vulndb's placeholder) in the host lands here.
			return fmt.Errorf("%q is not a valid URL ({ecosystem} may stand in its path only)", src)
		}
		if u.Scheme == "http" && !allowHTTP && !netaddr.IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%q: plain http off loopback is refused (it can be altered on the way); use https, or set vulndb.allow_http", src)
		}
		return nil
	}
	if !filepath.IsAbs(src) {
		return fmt.Errorf("%q must be an http(s) URL of an OSV zip or an absolute path of a zip, JSON file or directory of OSV records", src)
	}
	return nil
}

// validateWebhook checks the webhook section and reads webhook.token_file.
func (c *Config) validateWebhook(bad func(key, format string, args ...any)) {
	w := &c.Webhook
	on := w.Listen != ""
	checkTLSListener("webhook", w.Listener, bad)

	w.fileToken = ""
	switch {
	case w.TokenFile == "":
	case !filepath.IsAbs(w.TokenFile):
		bad("webhook.token_file", "must be an absolute path, got %q", w.TokenFile)
	default:
		tok, err := readToken(w.TokenFile)
		if err != nil {
			bad("webhook.token_file", "%v", err)
			break
		}
		if err := checkToken(tok); err != nil {
			bad("webhook.token_file", "the token in %s %v", w.TokenFile, err)
			break
		}
		w.fileToken = tok
	}
	switch {
	case w.Token != "" && w.TokenFile != "":
		bad("webhook.token", "and webhook.token_file are both set; set only one")
	case w.Token != "":
		// The message must not show the token.
		if err := checkToken(w.Token); err != nil {
			bad("webhook.token", "%v", err)
		}
	case on && w.TokenFile == "":
		bad("webhook.token", "must be set, or webhook.token_file, when webhook.listen is set: notifications must carry a secret")
	}

	for _, name := range slices.Sorted(maps.Keys(w.Registries)) {
		if err := checkHostPort(name); err != nil {
			bad("webhook.registries", "registry name %q %v", name, err)
		}
		addr := w.Registries[name]
		if err := checkHostPort(addr); err != nil {
			bad("webhook.registries", "address %q of %q %v", addr, name, err)
		}
	}
	if on && len(w.Registries) == 0 {
		bad("webhook.registries", "must name at least one registry when webhook.listen is set; the webhook would accept no notification")
	}

	if w.MaxBodyBytes <= 0 {
		bad("webhook.max_body_bytes", "must be greater than 0, got %d", w.MaxBodyBytes)
	}
}

func joinKeyErrors(errs []*keyError) error {
	if len(errs) == 0 {
		return nil
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// checkGroup reports whether g, a group name or numeric gid, exists. Empty
// means no group and is fine.
func checkGroup(g string) error {
	if g == "" {
		return nil
	}
	var err error
	if _, nerr := strconv.ParseUint(g, 10, 32); nerr == nil {
		_, err = user.LookupGroupId(g)
	} else {
		_, err = user.LookupGroup(g)
	}
	var unknownName user.UnknownGroupError
	var unknownID user.UnknownGroupIdError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknownName), errors.As(err, &unknownID):
		return fmt.Errorf("no such group %q", g)
	default:
		return fmt.Errorf("cannot look up group %q: %w", g, err)
	}
}

// parseMode parses an octal permission string: "0660", "660" or "0o660".
func parseMode(s string) (os.FileMode, error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	m, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || digits == "" {
		return 0, fmt.Errorf("must be an octal mode like \"0660\", got %q", s)
	}
	if m > 0o777 {
		return 0, fmt.Errorf("must be at most 0777 (no setuid, setgid or sticky bits), got %q", s)
	}
	return os.FileMode(m), nil
}

// normalize rewrites values that have more than one spelling into the one
// the rest of the daemon gets. Load calls it after validating, so that
// messages show values as they were given.
func (c *Config) normalize() {
	c.Containerd.Address = strings.TrimPrefix(c.Containerd.Address, unixScheme)
}

// parseIDRange parses sandbox.id_range, START:COUNT, and checks it. Its
// message follows the key.
func parseIDRange(s string) (start, count uint32, err error) {
	startText, countText, ok := strings.Cut(s, ":")
	st, serr := strconv.ParseUint(startText, 10, 32)
	n, cerr := strconv.ParseUint(countText, 10, 32)
	switch {
	case !ok || serr != nil || cerr != nil:
		return 0, 0, fmt.Errorf(`must be START:COUNT, two whole numbers below 4294967296, like "1000000000:65536"; got %q`, s)
	case st < minIDStart:
		return 0, 0, fmt.Errorf("must start at %d or above, clear of host root and ordinary users; got %q", minIDStart, s)
	case n < 1:
		return 0, 0, fmt.Errorf("must map at least 1 id (65536 is recommended); got %q", s)
	case st+n > maxIDEnd:
		return 0, 0, fmt.Errorf("runs past the last id a user namespace can map, %d: START+COUNT must be at most %d; got %q", maxIDEnd-1, maxIDEnd, s)
	}
	return uint32(st), uint32(n), nil
}

// readToken reads a webhook token file: its content less trailing newlines.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the token: %w", err)
	}
	tok := strings.TrimRight(string(data), "\r\n")
	if tok == "" {
		return "", fmt.Errorf("%s is empty; it must hold the token", path)
	}
	return tok, nil
}

// checkToken checks a webhook token. Its errors never show the token.
func checkToken(tok string) error {
	if n := utf8.RuneCountInString(tok); n < minTokenLen {
		return fmt.Errorf("must be at least %d characters long, got %d", minTokenLen, n)
	}
	if strings.ContainsFunc(tok, unicode.IsControl) {
		return errors.New("must be one line, without control characters")
	}
	return nil
}

// checkListen checks a webhook.listen address: host:port, the host
// possibly empty (all addresses), the port a number.
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf(`must be host:port, like "127.0.0.1:9443" or ":9443"; got %q`, s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("must have a port number from 1 to 65535, got %q", s)
	}
	return nil
}

// hostnameRE matches a DNS name or an IPv4 address.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*$`)

// checkHostPort checks a registry name or address: host or host:port,
// without a scheme or path; an IPv6 host in brackets. Its message follows
// the value it was given.
func checkHostPort(s string) error {
	const want = `must be host or host:port, like "registry.example:5000"`
	switch {
	case s == "":
		return errors.New(want)
	case strings.Contains(s, "://"):
		return errors.New(want + ", without a scheme")
	case strings.ContainsAny(s, "/?#@"):
		return errors.New(want + ", without a path")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port; a bare IPv6 address would be ambiguous.
		host, port = s, ""
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			host = s[1 : len(s)-1]
		} else if strings.Contains(s, ":") {
			return errors.New(want + `; an IPv6 address goes in brackets, like "[fd00::1]:5000"`)
		}
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return errors.New(want + ", with a port number from 1 to 65535")
	}
	if strings.HasPrefix(s, "[") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return errors.New(want + "; only an IPv6 address goes in brackets")
		}
		return nil
	}
	if !hostnameRE.MatchString(host) {
		return errors.New(want)
	}
	return nil
}

// validateAPIListen checks the TCP listener of the API.
func (c *Config) validateAPIListen(bad func(key, format string, args ...any)) {
	a := &c.API
	checkTLSListener("api", a.Listener, bad)
	checkFile("api.tokens_file", a.TokensFile, bad)
	if a.Listen != "" && a.TokensFile == "" {
		bad("api.tokens_file", "must be set when api.listen is: every TCP caller needs a token")
	}
}

// validateHarbor checks the harbor section and reads harbor.secret_file.
func (c *Config) validateHarbor(bad func(key, format string, args ...any)) {
	h := &c.Harbor
	h.fileSecret = ""
	checkTLSListener("harbor", h.Listener, bad)
	for _, r := range h.Registries {
		if err := checkRegistryURL(r); err != nil {
			bad("harbor.registries", "%v", err)
		}
	}
	if h.Listen == "" {
		return
	}
	if !slices.Contains(HarborAuthModes, h.Auth) {
		bad("harbor.auth", "must be one of %s when harbor.listen is set, got %q", strings.Join(HarborAuthModes, ", "), h.Auth)
	}
	if len(h.Registries) == 0 {
		bad("harbor.registries", "must list the registry URL Harbor sends in its scan requests (its core URL, like http://harbor-core:8080): requests naming another are refused")
	}
	switch {
	case h.SecretFile == "":
		bad("harbor.secret_file", "must be set when harbor.listen is: Harbor must authenticate")
	case !filepath.IsAbs(h.SecretFile):
		bad("harbor.secret_file", "must be an absolute path, got %q", h.SecretFile)
	default:
		sec, err := readToken(h.SecretFile)
		if err != nil {
			bad("harbor.secret_file", "%v", err)
			return
		}
		check := sec
		if h.Auth == "basic" {
			user, pass, ok := strings.Cut(sec, ":")
			if !ok || user == "" {
				bad("harbor.secret_file", "holds no user:password, as harbor.auth basic needs")
				return
			}
			check = pass
		}
		if err := checkToken(check); err != nil {
			bad("harbor.secret_file", "the secret in %s %v", h.SecretFile, err)
			return
		}
		h.fileSecret = sec
	}
}

// validateNotify checks the receivers and reads their secret files.
func (c *Config) validateNotify(bad func(key, format string, args ...any)) {
	n := &c.Notify
	if n.MaxAge < time.Minute {
		bad("notify.max_age", "must be at least 1m, got %s", n.MaxAge)
	}
	if n.Timeout <= 0 || n.Timeout > 5*time.Minute {
		bad("notify.timeout", "must be more than 0 and at most 5m, got %s", n.Timeout)
	}
	seen := map[string]bool{}
	for i := range n.Webhooks {
		w := &n.Webhooks[i]
		w.secret = ""
		what := fmt.Sprintf("receiver %d (%s)", i+1, w.URL)
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			bad("notify.webhooks", "receiver %d has no url", i+1)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
			bad("notify.webhooks", "%s: the url must be http(s)://host[:port]/path, without credentials", what)
		case u.Scheme == "http" && !w.AllowHTTP && !netaddr.IsLoopbackHost(u.Hostname()):
			bad("notify.webhooks", "%s: plain http off loopback is refused (events could be read and altered on the way); use https, or set allow_http: true on the receiver", what)
		}
		if seen[w.URL] {
			bad("notify.webhooks", "%s is listed twice", what)
		}
		seen[w.URL] = true
		if s := w.MinSeverity; s != "" {
			if _, err := report.ParseSeverity(s); err != nil {
				bad("notify.webhooks", "%s: min_severity must be one of critical, high, medium, low, negligible, unknown; got %q", what, s)
			}
		}
		for _, g := range w.Images {
			if _, err := path.Match(g, ""); err != nil {
				bad("notify.webhooks", "%s: images: %q is not a valid glob", what, g)
			}
		}
		switch {
		case w.SecretFile == "":
			bad("notify.webhooks", "%s has no secret_file: every delivery is signed", what)
		case !filepath.IsAbs(w.SecretFile):
			bad("notify.webhooks", "%s: secret_file must be an absolute path, got %q", what, w.SecretFile)
		default:
			sec, err := readToken(w.SecretFile)
			if err == nil {
				err = checkToken(sec)
			}
			if err != nil {
				bad("notify.webhooks", "%s: the secret in %s: %v", what, w.SecretFile, err)
				continue
			}
			w.secret = sec
		}
	}
}

// checkRegistryURL accepts scheme://host[:port] with http or https and
// nothing else: no user, path, query or fragment.
func checkRegistryURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want http://host[:port] or https://host[:port]", s)
	}
	return nil
}

// checkTLSListener checks a TCP listener section (section.listen,
// .tls_cert_file, .tls_key_file, .insecure): a valid host:port, the
// certificate and key together and readable, and no token in clear off
// loopback unless insecure says so.
func checkTLSListener(section string, l Listener, bad func(key, format string, args ...any)) {
	if l.Listen != "" {
		if err := checkListen(l.Listen); err != nil {
			bad(section+".listen", "%v", err)
		} else if host, _, _ := net.SplitHostPort(l.Listen); l.TLSCertFile == "" && !l.Insecure && !netaddr.IsLoopbackHost(host) {
			bad(section+".listen", "%s is not a loopback address and the listener has no TLS: tokens would cross the network in clear; set %[2]s.tls_cert_file and %[2]s.tls_key_file, or %[2]s.insecure: true", l.Listen, section)
		}
	}
	if (l.TLSCertFile == "") != (l.TLSKeyFile == "") {
		bad(section+".tls_cert_file", "and %s.tls_key_file go together: set both or neither", section)
		return
	}
	checkFile(section+".tls_cert_file", l.TLSCertFile, bad)
	checkFile(section+".tls_key_file", l.TLSKeyFile, bad)
}

// checkFile checks an optional absolute path of a file that must exist.
func checkFile(key, path string, bad func(key, format string, args ...any)) {
	switch {
	case path == "":
	case !filepath.IsAbs(path):
		bad(key, "must be an absolute path, got %q", path)
	default:
		if _, err := os.Stat(path); err != nil {
			bad(key, "%v", err)
		}
	}
}
