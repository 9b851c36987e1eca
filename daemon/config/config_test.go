package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// cmpConfig lets cmp compare Configs: Webhook keeps the token it read from
// webhook.token_file in an unexported field.
var cmpConfig = cmp.AllowUnexported(Webhook{}, Harbor{}, NotifyWebhook{})

// writeConfig writes content to a fresh file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "assayd.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadWith loads file content (none if "") under env and command-line args.
func loadWith(t *testing.T, content string, env, args []string) (*Config, []string, error) {
	t.Helper()
	opts := LoadOptions{
		// A path that does not exist, so the host's /etc/assay never leaks in.
		File:    filepath.Join(t.TempDir(), "absent.yaml"),
		Environ: env,
	}
	if content != "" {
		opts.File = writeConfig(t, content)
		opts.FileRequired = true
	}
	if args != nil {
		fs := pflag.NewFlagSet("assayd", pflag.ContinueOnError)
		fs.String("config", "", "not a key: must be ignored")
		BindFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("parsing flags %q: %v", args, err)
		}
		opts.Flags = fs
	}
	return Load(opts)
}

// ownGroup returns a group that exists: the test process's own.
func ownGroup(t *testing.T) *user.Group {
	t.Helper()
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("cannot look up own group: %v", err)
	}
	return g
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     []string
		args    []string
		group   bool // the file sets socket.group to the test's own gid
		want    func(c *Config)
		wantErr bool
	}{
		{
			name: "defaults without a file",
			want: func(c *Config) {},
		},
		{
			name: "empty file",
			file: "# nothing but a comment\n",
			want: func(c *Config) {},
		},
		{
			name: "file overrides defaults",
			file: `
socket:
  path: /run/other.sock
  mode: 0600 # unquoted: the literal text is kept, not read as a number
state_dir: /srv/assay
scan:
  concurrency: 4
  timeout: 5m
  max_attempts: "5"
log:
  level: debug
  format: json
api:
  max_body_bytes: 512KiB
  event_buffer: 10
store:
  reports_per_image: 1
  scan_retention: 24h
shutdown:
  timeout: 1m30s
`,
			want: func(c *Config) {
				c.Socket.Path = "/run/other.sock"
				c.Socket.Mode = "0600"
				c.StateDir = "/srv/assay"
				c.Scan = Scan{Concurrency: 4, Timeout: 5 * time.Minute, MaxAttempts: 5, MaxQueued: 10000}
				c.Log = Log{Level: "debug", Format: "json"}
				c.API = API{MaxBodyBytes: 512 << 10, EventBuffer: 10}
				c.Store = Store{ReportsPerImage: 1, ScanRetention: 24 * time.Hour}
				c.Shutdown.Timeout = 90 * time.Second
			},
		},
		{
			name: "size as a plain number",
			file: "api:\n  max_body_bytes: 4096\n",
			want: func(c *Config) { c.API.MaxBodyBytes = 4096 },
		},
		{
			name: "mode with other bits is allowed",
			file: "socket:\n  mode: \"0666\"\n",
			want: func(c *Config) { c.Socket.Mode = "0666" },
		},
		{
			name:  "numeric group",
			group: true,
			want:  func(c *Config) { c.Socket.Group = strconv.Itoa(os.Getgid()) },
		},
		{
			name: "env overrides file",
			file: "scan:\n  concurrency: 4\nstate_dir: /srv/file\n",
			env: []string{
				"ASSAY_SCAN_CONCURRENCY=6",
				"ASSAY_STATE_DIR=/srv/env",
				"ASSAY_SOCKET_PATH=/run/env.sock",
				"ASSAY_LOG_LEVEL=warn",
				"ASSAY_API_MAX_BODY_BYTES=2MiB",
				"ASSAY_SCAN_TIMEOUT=90s",
				"ASSAY_SANDBOX_TIMEOUT=1m", // below scan.timeout
				"PATH=/usr/bin",
			},
			want: func(c *Config) {
				c.Scan.Concurrency = 6
				c.StateDir = "/srv/env"
				c.Socket.Path = "/run/env.sock"
				c.Log.Level = "warn"
				c.API.MaxBodyBytes = 2 << 20
				c.Scan.Timeout = 90 * time.Second
				c.Sandbox.Timeout = time.Minute
			},
		},
		{
			name: "the last of repeated env entries wins",
			env:  []string{"ASSAY_SCAN_CONCURRENCY=many", "ASSAY_SCAN_CONCURRENCY=3"},
			want: func(c *Config) { c.Scan.Concurrency = 3 },
		},
		{
			name: "flag overrides env and file",
			file: "scan:\n  concurrency: 4\n",
			env:  []string{"ASSAY_SCAN_CONCURRENCY=6", "ASSAY_SHUTDOWN_TIMEOUT=10s"},
			args: []string{
				"--scan.concurrency=8",
				"--shutdown.timeout=1m",
				"--api.max_body_bytes=64KiB",
				"--state_dir=/srv/flag",
				"--config=/ignored.yaml",
			},
			want: func(c *Config) {
				c.Scan.Concurrency = 8
				c.Shutdown.Timeout = time.Minute
				c.API.MaxBodyBytes = 64 << 10
				c.StateDir = "/srv/flag"
			},
		},
		{
			name: "flags not given do not override",
			file: "scan:\n  concurrency: 4\n",
			env:  []string{"ASSAY_SCAN_TIMEOUT=3m"},
			args: []string{},
			want: func(c *Config) {
				c.Scan.Concurrency = 4
				c.Scan.Timeout = 3 * time.Minute
			},
		},
		{
			name: "new sections from the file",
			file: `
containerd:
  address: unix:///run/containerd/containerd.sock # the scheme is stripped
  namespace: k8s.io
  binary: /opt/assay/bin/containerd
  start_timeout: 1m
  watch_images: true
registries:
  config_path: /etc/containerd/certs.d
  auth_file: /root/.docker/config.json
scan:
  platforms: [linux/amd64, linux/arm/v7]
limits:
  max_image_bytes: 1GiB
  max_layers: 10000
  max_unpacked_bytes: 2147483648
webhook:
  listen: 127.0.0.1:9443
  token: 0123456789abcdef
  registries:
    Reg.Example:5000: 127.0.0.1:5000 # names keep their case
    "[fd00::1]:5000": "[fd00::1]"
  max_body_bytes: 64KiB
`,
			want: func(c *Config) {
				c.Containerd = Containerd{
					Address:      "/run/containerd/containerd.sock",
					Namespace:    "k8s.io",
					Binary:       "/opt/assay/bin/containerd",
					StartTimeout: time.Minute,
					WatchImages:  true,
				}
				c.Registries = Registries{ConfigPath: "/etc/containerd/certs.d", AuthFile: "/root/.docker/config.json"}
				c.Scan.Platforms = []string{"linux/amd64", "linux/arm/v7"}
				c.Limits = Limits{MaxImageBytes: 1 << 30, MaxLayers: 10000, MaxUnpackedBytes: 2 << 30, MaxEntries: 2_000_000, MaxReportPackages: 200_000, MaxPackageLocations: 1000}
				c.Webhook = Webhook{
					Listener:     Listener{Listen: "127.0.0.1:9443"},
					Token:        "0123456789abcdef",
					Registries:   map[string]string{"Reg.Example:5000": "127.0.0.1:5000", "[fd00::1]:5000": "[fd00::1]"},
					MaxBodyBytes: 64 << 10,
				}
			},
		},
		{
			name: "a list one item a line and a mapping in block style",
			file: "scan:\n  platforms:\n    - linux/amd64\n    - windows/amd64\nwebhook:\n  registries:\n    reg.example: reg-mirror.internal:443\n",
			want: func(c *Config) {
				c.Scan.Platforms = []string{"linux/amd64", "windows/amd64"}
				c.Webhook.Registries = map[string]string{"reg.example": "reg-mirror.internal:443"}
			},
		},
		{
			name: "an empty list and mapping are none, as in Default",
			file: "scan:\n  platforms: []\nwebhook:\n  registries: {}\n",
			want: func(c *Config) {},
		},
		{
			name: "a quoted bool",
			file: "containerd:\n  watch_images: \"true\"\n",
			want: func(c *Config) { c.Containerd.WatchImages = true },
		},
		{
			name: "new keys from the environment",
			env: []string{
				"ASSAY_CONTAINERD_ADDRESS=unix:///run/k3s/containerd/containerd.sock",
				"ASSAY_CONTAINERD_NAMESPACE=k8s.io",
				"ASSAY_CONTAINERD_START_TIMEOUT=5s",
				"ASSAY_CONTAINERD_WATCH_IMAGES=1",
				"ASSAY_REGISTRIES_AUTH_FILE=/etc/assay/auth.json",
				"ASSAY_SCAN_PLATFORMS=linux/amd64, linux/arm64",
				"ASSAY_LIMITS_MAX_LAYERS=64",
				"ASSAY_LIMITS_MAX_UNPACKED_BYTES=8GiB",
				"ASSAY_WEBHOOK_REGISTRIES=reg.example:5000=127.0.0.1:5000,other=127.0.0.1:6000",
			},
			want: func(c *Config) {
				c.Containerd.Address = "/run/k3s/containerd/containerd.sock"
				c.Containerd.Namespace = "k8s.io"
				c.Containerd.StartTimeout = 5 * time.Second
				c.Containerd.WatchImages = true
				c.Registries.AuthFile = "/etc/assay/auth.json"
				c.Scan.Platforms = []string{"linux/amd64", "linux/arm64"}
				c.Limits.MaxLayers = 64
				c.Limits.MaxUnpackedBytes = 8 << 30
				c.Webhook.Registries = map[string]string{"reg.example:5000": "127.0.0.1:5000", "other": "127.0.0.1:6000"}
			},
		},
		{
			name: "env replaces the file's list and map whole",
			file: "scan:\n  platforms: [linux/amd64, linux/arm64]\nwebhook:\n  registries:\n    a: 127.0.0.1:1\n",
			env:  []string{"ASSAY_SCAN_PLATFORMS=linux/s390x", "ASSAY_WEBHOOK_REGISTRIES=b=127.0.0.1:2"},
			want: func(c *Config) {
				c.Scan.Platforms = []string{"linux/s390x"}
				c.Webhook.Registries = map[string]string{"b": "127.0.0.1:2"}
			},
		},
		{
			name: "an empty env value empties the file's list and map",
			file: "scan:\n  platforms: [linux/amd64]\nwebhook:\n  registries:\n    a: 127.0.0.1:1\n",
			env:  []string{"ASSAY_SCAN_PLATFORMS=", "ASSAY_WEBHOOK_REGISTRIES="},
			want: func(c *Config) {},
		},
		{
			name: "new keys from flags",
			file: "scan:\n  platforms: [linux/s390x]\nwebhook:\n  registries:\n    a: 127.0.0.1:1\n",
			env:  []string{"ASSAY_SCAN_PLATFORMS=linux/ppc64le", "ASSAY_CONTAINERD_WATCH_IMAGES=true"},
			args: []string{
				"--scan.platforms", "linux/amd64,linux/arm64",
				"--webhook.registries", "reg.example:5000=127.0.0.1:5000,other=127.0.0.1:6000",
				"--containerd.watch_images=false",
				"--containerd.binary=/usr/local/bin/containerd",
				"--limits.max_image_bytes=512MiB",
				"--limits.max_layers", "7",
				"--webhook.max_body_bytes=2MiB",
			},
			want: func(c *Config) {
				c.Scan.Platforms = []string{"linux/amd64", "linux/arm64"}
				c.Webhook.Registries = map[string]string{"reg.example:5000": "127.0.0.1:5000", "other": "127.0.0.1:6000"}
				c.Containerd.Binary = "/usr/local/bin/containerd"
				c.Limits.MaxImageBytes = 512 << 20
				c.Limits.MaxLayers = 7
				c.Webhook.MaxBodyBytes = 2 << 20
			},
		},
		{
			name: "plugins and sandbox from the file",
			file: `
plugins:
  dir: /opt/assay/plugins
  enabled: [secrets, sbom-2.x, a_b]
sandbox:
  id_range: 65536:1 # unquoted
  timeout: 5m
  memory: 1GiB
  pids: 8
  cpu_shares: 262144
  tmpfs_bytes: 1048576
  max_result_bytes: 1MiB
  start_timeout: 2s
scan:
  timeout: 6m
`,
			want: func(c *Config) {
				c.Plugins = Plugins{Dir: "/opt/assay/plugins", Enabled: []string{"secrets", "sbom-2.x", "a_b"}}
				c.Sandbox = Sandbox{
					IDRange:        "65536:1",
					Timeout:        5 * time.Minute,
					Memory:         1 << 30,
					Pids:           8,
					CPUShares:      262144,
					TmpfsBytes:     1 << 20,
					MaxResultBytes: 1 << 20,
					StartTimeout:   2 * time.Second,
					Parallel:       2,
				}
				c.Scan.Timeout = 6 * time.Minute
			},
		},
		{
			name: "plugins and sandbox from the environment",
			env: []string{
				"ASSAY_PLUGINS_DIR=/srv/plugins",
				"ASSAY_PLUGINS_ENABLED=secrets, sbom",
				"ASSAY_SANDBOX_ID_RANGE=4294901759:65536", // ends at the last id
				"ASSAY_SANDBOX_TIMEOUT=9m59s",
				"ASSAY_SANDBOX_MEMORY=16MiB",
				"ASSAY_SANDBOX_PIDS=65536",
				"ASSAY_SANDBOX_CPU_SHARES=2",
				"ASSAY_SANDBOX_TMPFS_BYTES=1GiB",
				"ASSAY_SANDBOX_MAX_RESULT_BYTES=1",
				"ASSAY_SANDBOX_START_TIMEOUT=1ms",
			},
			want: func(c *Config) {
				c.Plugins = Plugins{Dir: "/srv/plugins", Enabled: []string{"secrets", "sbom"}}
				c.Sandbox = Sandbox{
					IDRange:        "4294901759:65536",
					Timeout:        9*time.Minute + 59*time.Second,
					Memory:         16 << 20,
					Pids:           65536,
					CPUShares:      2,
					TmpfsBytes:     1 << 30,
					MaxResultBytes: 1,
					StartTimeout:   time.Millisecond,
					Parallel:       2,
				}
			},
		},
		{
			name: "plugins and sandbox from flags",
			file: "plugins:\n  enabled: [secrets]\n",
			env:  []string{"ASSAY_SANDBOX_PIDS=100"},
			args: []string{
				"--plugins.enabled=",
				"--plugins.dir=/usr/lib/assay/plugins",
				"--sandbox.id_range=2000000000:131072",
				"--sandbox.pids=512",
				"--sandbox.memory=2GiB",
				"--sandbox.cpu_shares", "1024",
				"--sandbox.timeout=30s",
			},
			want: func(c *Config) {
				c.Plugins.Dir = "/usr/lib/assay/plugins"
				c.Plugins.Enabled = nil // --plugins.enabled= turns them all off
				c.Sandbox.IDRange = "2000000000:131072"
				c.Sandbox.Pids = 512
				c.Sandbox.Memory = 2 << 30
				c.Sandbox.CPUShares = 1024
				c.Sandbox.Timeout = 30 * time.Second
			},
		},
		{
			name: "a bool flag without a value is true",
			args: []string{"--containerd.watch_images"},
			want: func(c *Config) { c.Containerd.WatchImages = true },
		},
		{
			name: "repeated list and map flags add up",
			args: []string{
				"--scan.platforms", "linux/amd64", "--scan.platforms", "linux/arm64, linux/arm/v7",
				"--webhook.registries", "a=127.0.0.1:1", "--webhook.registries", "b=127.0.0.1:2,a=127.0.0.1:3",
			},
			want: func(c *Config) {
				c.Scan.Platforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}
				c.Webhook.Registries = map[string]string{"a": "127.0.0.1:3", "b": "127.0.0.1:2"}
			},
		},
		{
			name: "empty list and map flags empty the lower layers'",
			file: "scan:\n  platforms: [linux/amd64]\n",
			env:  []string{"ASSAY_WEBHOOK_REGISTRIES=a=127.0.0.1:1"},
			args: []string{"--scan.platforms=", "--webhook.registries="},
			want: func(c *Config) {},
		},
		{
			name: "map flag values are kept as given",
			args: []string{"--webhook.registries=[fd00::1]:5000=[fd00::2]"},
			want: func(c *Config) { c.Webhook.Registries = map[string]string{"[fd00::1]:5000": "[fd00::2]"} },
		},
		{
			name: "the CLI's and the tests' variables are left alone",
			env:  []string{"ASSAY_SOCKET=/run/assay/assayd.sock", "ASSAY_TEST_ROOT=1"},
			want: func(c *Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if tt.group {
				ownGroup(t)
				file = "socket:\n  group: " + strconv.Itoa(os.Getgid()) + "\n"
			}
			got, warnings, err := loadWith(t, file, tt.env, tt.args)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings = %q, want none", warnings)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(&want, got, cmpConfig); diff != "" {
				t.Errorf("Load mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		// want are substrings of the error; the first is the key.
		want []string
	}{
		{
			name: "unknown key in file",
			file: "scan:\n  concurrancy: 4\n",
			want: []string{"scan.concurrancy", "unknown key", "did you mean scan.concurrency?", "line 2"},
		},
		{
			name: "admin group that cannot connect",
			args: []string{"--socket.admin_group", "0", "--socket.mode", "0660"},
			want: []string{"socket.admin_group", "cannot connect", `"0666"`},
		},
		{
			name: "read group that does not exist",
			args: []string{"--socket.read_group", "no-such-group-assay", "--socket.mode", "0666"},
			want: []string{"socket.read_group", "no such group"},
		},
		{
			name: "webhook in clear on every address",
			args: []string{"--webhook.listen", ":9443", "--webhook.token", "0123456789abcdef"},
			want: []string{"webhook.listen", "not a loopback address", "webhook.tls_cert_file", "webhook.insecure"},
		},
		{
			name: "webhook certificate without key",
			args: []string{"--webhook.listen", "127.0.0.1:9443", "--webhook.token", "0123456789abcdef", "--webhook.tls_cert_file", "/etc/hostname"},
			want: []string{"webhook.tls_cert_file", "go together"},
		},
		{
			name: "plain http source off loopback",
			args: []string{"--vulndb.sources", "http://osv.example/Go/all.zip"},
			want: []string{"vulndb.sources", "plain http off loopback is refused", "vulndb.allow_http"},
		},
		{
			name: "unknown section",
			file: "scna:\n  concurrency: 4\n",
			want: []string{"scna", "unknown section", "did you mean scan?"},
		},
		{
			name: "key outside its section",
			file: "concurrency: 4\n",
			want: []string{"concurrency", "unknown key", "did you mean scan.concurrency?"},
		},
		{
			name: "section that is not a mapping",
			file: "scan: 4\n",
			want: []string{"scan", "must be a section of keys"},
		},
		{
			name: "key set twice",
			file: "scan:\n  timeout: 1m\n  timeout: 2m\n",
			want: []string{"scan.timeout", "set twice, first on line 2"},
		},
		{
			name: "string for a number",
			file: "scan:\n  concurrency: \"many\"\n",
			want: []string{"scan.concurrency", "a whole number", `"many"`},
		},
		{
			name: "fraction for a number",
			file: "scan:\n  concurrency: 2.5\n",
			want: []string{"scan.concurrency", "a whole number"},
		},
		{
			name: "list for a string",
			file: "socket:\n  path: [a]\n",
			want: []string{"socket.path", "got a list"},
		},
		{
			name: "no value",
			file: "scan:\n  timeout:\n",
			want: []string{"scan.timeout", "leave the key out"},
		},
		{
			name: "bare integer duration",
			file: "scan:\n  timeout: 5\n",
			want: []string{"scan.timeout", `give a unit, like "10m"`},
		},
		{
			name: "bare integer duration from env",
			env:  []string{"ASSAY_SHUTDOWN_TIMEOUT=30"},
			want: []string{"shutdown.timeout", `give a unit, like "10m"`, "from ASSAY_SHUTDOWN_TIMEOUT"},
		},
		{
			name: "garbage duration",
			file: "store:\n  scan_retention: soon\n",
			want: []string{"store.scan_retention", "a duration"},
		},
		{
			name: "relative socket path",
			file: "socket:\n  path: run/assayd.sock\n",
			want: []string{"socket.path", "absolute", "line 2"},
		},
		{
			name: "relative socket path from a flag",
			args: []string{"--socket.path=assayd.sock"},
			want: []string{"socket.path", "absolute", "from --socket.path"},
		},
		{
			name: "socket path too long",
			file: "socket:\n  path: /" + strings.Repeat("x", 120) + "\n",
			want: []string{"socket.path", "at most 107"},
		},
		{
			name: "relative state_dir",
			env:  []string{"ASSAY_STATE_DIR=var/lib/assay"},
			want: []string{"state_dir", "absolute", "from ASSAY_STATE_DIR"},
		},
		{
			name: "concurrency 0",
			file: "scan:\n  concurrency: 0\n",
			want: []string{"scan.concurrency", "config: scan.concurrency: must be between 1 and 64, got 0"},
		},
		{
			name: "negative concurrency from a flag",
			args: []string{"--scan.concurrency=-1"},
			want: []string{"scan.concurrency", "got -1"},
		},
		{
			name: "max_attempts above 10",
			file: "scan:\n  max_attempts: 11\n",
			want: []string{"scan.max_attempts", "between 1 and 10"},
		},
		{
			name: "negative max_body_bytes",
			file: "api:\n  max_body_bytes: -1\n",
			want: []string{"api.max_body_bytes", "greater than 0"},
		},
		{
			name: "unreadable size",
			env:  []string{"ASSAY_API_MAX_BODY_BYTES=lots"},
			want: []string{"api.max_body_bytes", "a size"},
		},
		{
			name: "event_buffer 0",
			file: "api:\n  event_buffer: 0\n",
			want: []string{"api.event_buffer", "between 1 and 100000"},
		},
		{
			name: "reports_per_image 0",
			file: "store:\n  reports_per_image: 0\n",
			want: []string{"store.reports_per_image", "at least 1"},
		},
		{
			name: "negative retention",
			file: "store:\n  scan_retention: -1h\n",
			want: []string{"store.scan_retention", "greater than 0"},
		},
		{
			name: "zero shutdown timeout",
			file: "shutdown:\n  timeout: 0s\n",
			want: []string{"shutdown.timeout", "greater than 0"},
		},
		{
			name: "bad log level",
			file: "log:\n  level: verbose\n",
			want: []string{"log.level", `"verbose"`},
		},
		{
			name: "bad log format",
			env:  []string{"ASSAY_LOG_FORMAT=xml"},
			want: []string{"log.format", `"xml"`},
		},
		{
			name: "mode not octal",
			file: "socket:\n  mode: \"0999\"\n",
			want: []string{"socket.mode", "octal"},
		},
		{
			name: "mode with sticky bit",
			file: "socket:\n  mode: \"1777\"\n",
			want: []string{"socket.mode", "at most 0777"},
		},
		{
			name: "unknown group",
			file: "socket:\n  group: assay-test-no-such-group\n",
			want: []string{"socket.group", "no such group"},
		},
		{
			name: "unknown gid",
			file: "socket:\n  group: 4294967290\n",
			want: []string{"socket.group", "no such group"},
		},
		{
			name: "relative containerd address",
			file: "containerd:\n  address: run/containerd.sock\n",
			want: []string{"containerd.address", "absolute path of a unix socket", "line 2"},
		},
		{
			name: "relative containerd address after unix://",
			env:  []string{"ASSAY_CONTAINERD_ADDRESS=unix://run/containerd.sock"},
			want: []string{"containerd.address", "absolute", `"unix://run/containerd.sock"`},
		},
		{
			name: "containerd address of another scheme",
			file: "containerd:\n  address: tcp://127.0.0.1:1234\n",
			want: []string{"containerd.address", "unix socket"},
		},
		{
			name: "containerd address too long",
			file: "containerd:\n  address: unix:///" + strings.Repeat("x", 120) + "\n",
			want: []string{"containerd.address", "at most 107"},
		},
		{
			name: "containerd namespace with a bad character",
			file: "containerd:\n  namespace: assay/scans\n",
			want: []string{"containerd.namespace", "letters and digits", `"assay/scans"`},
		},
		{
			name: "containerd namespace with a leading separator",
			env:  []string{"ASSAY_CONTAINERD_NAMESPACE=-assay"},
			want: []string{"containerd.namespace", "letters and digits"},
		},
		{
			name: "containerd namespace with two separators in a row",
			file: "containerd:\n  namespace: assay..scans\n",
			want: []string{"containerd.namespace", "letters and digits"},
		},
		{
			name: "empty containerd namespace",
			file: "containerd:\n  namespace: \"\"\n",
			want: []string{"containerd.namespace", `got ""`},
		},
		{
			name: "containerd namespace too long",
			file: "containerd:\n  namespace: " + strings.Repeat("a", 77) + "\n",
			want: []string{"containerd.namespace", "is 77 characters long", "at most 76"},
		},
		{
			name: "relative containerd binary",
			args: []string{"--containerd.binary=bin/containerd"},
			want: []string{"containerd.binary", "absolute", "from --containerd.binary"},
		},
		{
			name: "zero start timeout",
			file: "containerd:\n  start_timeout: 0s\n",
			want: []string{"containerd.start_timeout", "greater than 0"},
		},
		{
			name: "bare integer start timeout",
			file: "containerd:\n  start_timeout: 30\n",
			want: []string{"containerd.start_timeout", "give a unit"},
		},
		{
			name: "yes for a bool",
			file: "containerd:\n  watch_images: yes\n",
			want: []string{"containerd.watch_images", "true or false", `"yes"`},
		},
		{
			name: "number for a bool",
			file: "containerd:\n  watch_images: 1\n",
			want: []string{"containerd.watch_images", "true or false"},
		},
		{
			name: "list for a bool",
			file: "containerd:\n  watch_images: [true]\n",
			want: []string{"containerd.watch_images", "true or false", "got a list"},
		},
		{
			name: "bad bool from env",
			env:  []string{"ASSAY_CONTAINERD_WATCH_IMAGES=maybe"},
			want: []string{"containerd.watch_images", "true or false", "from ASSAY_CONTAINERD_WATCH_IMAGES"},
		},
		{
			name: "relative registries config path",
			file: "registries:\n  config_path: certs.d\n",
			want: []string{"registries.config_path", "absolute"},
		},
		{
			name: "empty registries config path",
			env:  []string{"ASSAY_REGISTRIES_CONFIG_PATH="},
			want: []string{"registries.config_path", "absolute", `got ""`},
		},
		{
			name: "relative registries auth file",
			file: "registries:\n  auth_file: .docker/config.json\n",
			want: []string{"registries.auth_file", "absolute"},
		},
		{
			name: "a string for a list",
			file: "scan:\n  platforms: linux/amd64\n",
			want: []string{"scan.platforms", "must be a list", "write [linux/amd64]", "line 2"},
		},
		{
			name: "a comma-separated string for a list",
			file: "scan:\n  platforms: linux/amd64,linux/arm64\n",
			want: []string{"scan.platforms", "must be a list", "write [linux/amd64, linux/arm64]"},
		},
		{
			name: "a mapping for a list",
			file: "scan:\n  platforms:\n    os: linux\n",
			want: []string{"scan.platforms", "a list of strings", "got a mapping"},
		},
		{
			name: "no value for a list",
			file: "scan:\n  platforms:\n",
			want: []string{"scan.platforms", "leave the key out"},
		},
		{
			name: "a list item that is not a string",
			file: "scan:\n  platforms:\n    - linux/amd64\n    - [linux, arm64]\n",
			want: []string{"scan.platforms", "item 2, on line 4, must be a string", "got a list"},
		},
		{
			name: "platform without arch",
			file: "scan:\n  platforms: [linux]\n",
			want: []string{"scan.platforms", `"linux" must be os/arch or os/arch/variant`},
		},
		{
			name: "platform in upper case",
			args: []string{"--scan.platforms=Linux/amd64"},
			want: []string{"scan.platforms", `"Linux/amd64"`, "lower case", "from --scan.platforms"},
		},
		{
			name: "platform with an empty part",
			file: "scan:\n  platforms: [linux//amd64]\n",
			want: []string{"scan.platforms", `"linux//amd64"`},
		},
		{
			name: "platform with four parts",
			file: "scan:\n  platforms: [linux/arm64/v8/x]\n",
			want: []string{"scan.platforms", `"linux/arm64/v8/x"`},
		},
		{
			name: "empty platform from env",
			env:  []string{"ASSAY_SCAN_PLATFORMS=linux/amd64,,linux/arm64"},
			want: []string{"scan.platforms", `"" must be os/arch`, "from ASSAY_SCAN_PLATFORMS"},
		},
		{
			name: "platform listed twice",
			file: "scan:\n  platforms: [linux/amd64, linux/arm64, linux/amd64]\n",
			want: []string{"scan.platforms", `"linux/amd64" is listed twice`},
		},
		{
			name: "zero max image bytes",
			file: "limits:\n  max_image_bytes: 0\n",
			want: []string{"limits.max_image_bytes", "greater than 0"},
		},
		{
			name: "unreadable max image bytes",
			env:  []string{"ASSAY_LIMITS_MAX_IMAGE_BYTES=huge"},
			want: []string{"limits.max_image_bytes", "a size"},
		},
		{
			name: "zero max layers",
			file: "limits:\n  max_layers: 0\n",
			want: []string{"limits.max_layers", "between 1 and 10000, got 0"},
		},
		{
			name: "too many max layers",
			args: []string{"--limits.max_layers=10001"},
			want: []string{"limits.max_layers", "between 1 and 10000, got 10001"},
		},
		{
			name: "negative max unpacked bytes",
			file: "limits:\n  max_unpacked_bytes: -1\n",
			want: []string{"limits.max_unpacked_bytes", "greater than 0"},
		},
		{
			name: "webhook listen without a port",
			file: webhookOn("localhost", ""),
			want: []string{"webhook.listen", "host:port", `"localhost"`},
		},
		{
			name: "webhook listen on a named port",
			file: webhookOn("localhost:https", ""),
			want: []string{"webhook.listen", "port number from 1 to 65535"},
		},
		{
			name: "webhook listen on port 0",
			file: webhookOn(`":0"`, ""),
			want: []string{"webhook.listen", "port number"},
		},
		{
			name: "webhook listen on a port too high",
			env:  []string{"ASSAY_WEBHOOK_LISTEN=127.0.0.1:65536", "ASSAY_WEBHOOK_TOKEN=0123456789abcdef", "ASSAY_WEBHOOK_REGISTRIES=a=b"},
			want: []string{"webhook.listen", "port number", "from ASSAY_WEBHOOK_LISTEN"},
		},
		{
			name: "webhook without a token",
			file: "webhook:\n  listen: :9443\n  registries: {a: b}\n",
			want: []string{"webhook.token", "must be set, or webhook.token_file, when webhook.listen is set"},
		},
		{
			name: "webhook with both token and token file",
			file: webhookOn("127.0.0.1:9443", "  token_file: /run/secrets/assay-webhook\n"),
			want: []string{"config: webhook.token: and webhook.token_file are both set"},
		},
		{
			name: "short webhook token",
			file: "webhook:\n  token: sesame\n",
			want: []string{"webhook.token", "at least 16 characters long, got 6"},
		},
		{
			name: "webhook token of two lines",
			env:  []string{"ASSAY_WEBHOOK_TOKEN=0123456789abcdef\nmore"},
			want: []string{"webhook.token", "one line"},
		},
		{
			name: "relative webhook token file",
			file: "webhook:\n  token_file: secrets/token\n",
			want: []string{"webhook.token_file", "absolute"},
		},
		{
			name: "missing webhook token file",
			file: "webhook:\n  token_file: /nonexistent/assay/token\n",
			want: []string{"webhook.token_file", "cannot read the token", "/nonexistent/assay/token"},
		},
		{
			name: "webhook without registries",
			file: "webhook:\n  listen: :9443\n  token: 0123456789abcdef\n",
			want: []string{"webhook.registries", "at least one registry when webhook.listen is set"},
		},
		{
			name: "registry name with a scheme",
			file: "webhook:\n  registries:\n    https://reg.example: 127.0.0.1:5000\n",
			want: []string{"webhook.registries", `registry name "https://reg.example"`, "without a scheme"},
		},
		{
			name: "registry address with a path",
			env:  []string{"ASSAY_WEBHOOK_REGISTRIES=reg.example=127.0.0.1:5000/v2"},
			want: []string{"webhook.registries", `address "127.0.0.1:5000/v2" of "reg.example"`, "without a path"},
		},
		{
			name: "registry address with port 0",
			file: "webhook:\n  registries:\n    reg.example: 127.0.0.1:0\n",
			want: []string{"webhook.registries", "port number from 1 to 65535"},
		},
		{
			name: "registry address an IPv6 address without brackets",
			file: "webhook:\n  registries:\n    reg.example: \"fd00::1\"\n",
			want: []string{"webhook.registries", "in brackets"},
		},
		{
			name: "empty registry address",
			file: "webhook:\n  registries:\n    reg.example: \"\"\n",
			want: []string{"webhook.registries", `address "" of "reg.example" must be host or host:port`},
		},
		{
			name: "registries as a string",
			file: "webhook:\n  registries: reg.example=127.0.0.1:5000\n",
			want: []string{"webhook.registries", "a mapping", `"reg.example=127.0.0.1:5000"`},
		},
		{
			name: "registries as a list",
			file: "webhook:\n  registries: [reg.example]\n",
			want: []string{"webhook.registries", "a mapping", "got a list"},
		},
		{
			name: "registry address that is a list",
			file: "webhook:\n  registries:\n    reg.example: [a, b]\n",
			want: []string{"webhook.registries", `line 3: the value of "reg.example" must be a string, got a list`},
		},
		{
			name: "registry set twice",
			file: "webhook:\n  registries:\n    reg.example: a\n    reg.example: b\n",
			want: []string{"webhook.registries", `"reg.example" is set twice, on lines 3 and 4`},
		},
		{
			name: "registries from env without =",
			env:  []string{"ASSAY_WEBHOOK_REGISTRIES=reg.example"},
			want: []string{"webhook.registries", "name=value pairs", "from ASSAY_WEBHOOK_REGISTRIES"},
		},
		{
			name: "registry from env given twice",
			env:  []string{"ASSAY_WEBHOOK_REGISTRIES=a=127.0.0.1:1,a=127.0.0.1:2"},
			want: []string{"webhook.registries", `gives "a" twice`},
		},
		{
			name: "zero webhook body",
			file: "webhook:\n  max_body_bytes: 0\n",
			want: []string{"webhook.max_body_bytes", "greater than 0"},
		},
		{
			name: "relative plugins dir",
			file: "plugins:\n  dir: plugins\n",
			want: []string{"config: plugins.dir: must be an absolute path", `"plugins"`, "line 2"},
		},
		{
			name: "relative plugins dir",
			env:  []string{"ASSAY_PLUGINS_DIR=plugins"},
			want: []string{"plugins.dir", "absolute", `got "plugins"`, "from ASSAY_PLUGINS_DIR"},
		},
		{
			name: "file cap that is not a size",
			args: []string{"--limits.max_file_bytes", "gobinary=lots"},
			want: []string{"limits.max_file_bytes", `gobinary: "lots" is not a positive size`},
		},
		{
			name: "all among names",
			args: []string{"--plugins.enabled", "all,builtin"},
			want: []string{"plugins.enabled", `"all" enables every plugin found and stands alone`},
		},
		{
			name: "a string for plugins enabled",
			file: "plugins:\n  enabled: secrets\n",
			want: []string{"plugins.enabled", "must be a list", "write [secrets]"},
		},
		{
			name: "plugin name in upper case",
			file: "plugins:\n  enabled: [Secrets]\n",
			want: []string{"config: plugins.enabled: \"Secrets\" must be a plugin's manifest name", "lower-case"},
		},
		{
			name: "plugin name with a leading dot",
			args: []string{"--plugins.enabled=.hidden"},
			want: []string{"plugins.enabled", `".hidden"`, "starting with a letter or digit", "from --plugins.enabled"},
		},
		{
			name: "plugin name that is a path",
			file: "plugins:\n  enabled: [../secrets]\n",
			want: []string{"plugins.enabled", `"../secrets"`},
		},
		{
			name: "plugin name with a slash",
			file: "plugins:\n  enabled: [vendor/secrets]\n",
			want: []string{"plugins.enabled", `"vendor/secrets"`},
		},
		{
			name: "empty plugin name from env",
			env:  []string{"ASSAY_PLUGINS_ENABLED=secrets,,sbom"},
			want: []string{"plugins.enabled", `"" must be a plugin's manifest name`, "from ASSAY_PLUGINS_ENABLED"},
		},
		{
			name: "plugin enabled twice",
			file: "plugins:\n  enabled: [secrets, sbom, secrets]\n",
			want: []string{"config: plugins.enabled: \"secrets\" is listed twice"},
		},
		{
			name: "id range without a count",
			file: "sandbox:\n  id_range: \"1000000000\"\n",
			want: []string{"config: sandbox.id_range: must be START:COUNT", `got "1000000000"`},
		},
		{
			name: "id range that is not numbers",
			env:  []string{"ASSAY_SANDBOX_ID_RANGE=assay:65536"},
			want: []string{"sandbox.id_range", "must be START:COUNT", "from ASSAY_SANDBOX_ID_RANGE"},
		},
		{
			name: "id range with a negative count",
			file: "sandbox:\n  id_range: \"1000000000:-1\"\n",
			want: []string{"sandbox.id_range", "must be START:COUNT"},
		},
		{
			name: "id range with spaces",
			file: "sandbox:\n  id_range: \"1000000000: 65536\"\n",
			want: []string{"sandbox.id_range", "must be START:COUNT"},
		},
		{
			name: "id range of three numbers",
			file: "sandbox:\n  id_range: \"1000000000:65536:1\"\n",
			want: []string{"sandbox.id_range", "must be START:COUNT"},
		},
		{
			name: "id range with a start past uint32",
			file: "sandbox:\n  id_range: \"4294967296:1\"\n",
			want: []string{"sandbox.id_range", "must be START:COUNT", "below 4294967296"},
		},
		{
			name: "id range starting at root",
			file: "sandbox:\n  id_range: \"0:65536\"\n",
			want: []string{"config: sandbox.id_range: must start at 65536 or above", `got "0:65536"`},
		},
		{
			name: "id range among ordinary users",
			args: []string{"--sandbox.id_range=65535:65536"},
			want: []string{"sandbox.id_range", "must start at 65536 or above", "from --sandbox.id_range"},
		},
		{
			name: "id range of no ids",
			file: "sandbox:\n  id_range: \"1000000000:0\"\n",
			want: []string{"config: sandbox.id_range: must map at least 1 id"},
		},
		{
			name: "id range reaching the invalid id",
			file: "sandbox:\n  id_range: \"4294901760:65536\"\n",
			want: []string{"config: sandbox.id_range: runs past the last id", "at most 4294967295"},
		},
		{
			name: "id range overflowing uint32",
			file: "sandbox:\n  id_range: \"4294967295:4294967295\"\n",
			want: []string{"sandbox.id_range", "at most 4294967295"},
		},
		{
			name: "zero sandbox timeout",
			file: "sandbox:\n  timeout: 0s\n",
			want: []string{"config: sandbox.timeout: must be greater than 0"},
		},
		{
			name: "sandbox timeout equal to the scan timeout",
			file: "scan:\n  timeout: 2m\nsandbox:\n  timeout: 2m\n",
			want: []string{"config: sandbox.timeout: must be less than scan.timeout (2m0s)", "got 2m0s", "line 4"},
		},
		{
			name: "sandbox timeout above a lowered scan timeout",
			env:  []string{"ASSAY_SCAN_TIMEOUT=1m"},
			want: []string{"config: sandbox.timeout: must be less than scan.timeout (1m0s)", "got 2m0s"},
		},
		{
			name: "sandbox timeout above the scan timeout from a flag",
			args: []string{"--sandbox.timeout=1h"},
			want: []string{"sandbox.timeout", "less than scan.timeout (10m0s)", "from --sandbox.timeout"},
		},
		{
			name: "bare integer sandbox timeout",
			file: "sandbox:\n  timeout: 120\n",
			want: []string{"sandbox.timeout", "give a unit"},
		},
		{
			name: "sandbox memory below 16MiB",
			file: "sandbox:\n  memory: 16777215\n",
			want: []string{"config: sandbox.memory: must be at least 16MiB, got 16777215 bytes"},
		},
		{
			name: "unreadable sandbox memory",
			env:  []string{"ASSAY_SANDBOX_MEMORY=plenty"},
			want: []string{"sandbox.memory", "a size", "from ASSAY_SANDBOX_MEMORY"},
		},
		{
			name: "too few pids",
			file: "sandbox:\n  pids: 7\n",
			want: []string{"config: sandbox.pids: must be between 8 and 65536, got 7"},
		},
		{
			name: "too many pids",
			args: []string{"--sandbox.pids=65537"},
			want: []string{"sandbox.pids", "between 8 and 65536, got 65537"},
		},
		{
			name: "pids as a size",
			env:  []string{"ASSAY_SANDBOX_PIDS=1k"},
			want: []string{"sandbox.pids", "a whole number"},
		},
		{
			name: "cpu shares below 2",
			file: "sandbox:\n  cpu_shares: 1\n",
			want: []string{"config: sandbox.cpu_shares: must be between 2 and 262144, got 1"},
		},
		{
			name: "cpu shares above 262144",
			env:  []string{"ASSAY_SANDBOX_CPU_SHARES=262145"},
			want: []string{"sandbox.cpu_shares", "between 2 and 262144, got 262145"},
		},
		{
			name: "tmpfs below 1MiB",
			file: "sandbox:\n  tmpfs_bytes: 1048575\n",
			want: []string{"config: sandbox.tmpfs_bytes: must be between 1MiB and 1GiB, got 1048575 bytes"},
		},
		{
			name: "tmpfs above 1GiB",
			args: []string{"--sandbox.tmpfs_bytes=1025MiB"},
			want: []string{"sandbox.tmpfs_bytes", "between 1MiB and 1GiB, got 1074790400 bytes"},
		},
		{
			name: "zero max result bytes",
			file: "sandbox:\n  max_result_bytes: 0\n",
			want: []string{"config: sandbox.max_result_bytes: must be greater than 0, got 0"},
		},
		{
			name: "zero sandbox start timeout",
			env:  []string{"ASSAY_SANDBOX_START_TIMEOUT=0s"},
			want: []string{"config: sandbox.start_timeout: must be greater than 0", "from ASSAY_SANDBOX_START_TIMEOUT"},
		},
		{
			name: "unknown sandbox key",
			file: "sandbox:\n  memroy: 1GiB\n",
			want: []string{"sandbox.memroy", "unknown key", "did you mean sandbox.memory?"},
		},
		{
			name: "several problems at once",
			file: "scan:\n  concurrency: 0\nlog:\n  level: loud\n  formt: json\n",
			want: []string{"scan.concurrency", "log.level", "log.formt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := loadWith(t, tt.file, tt.env, tt.args)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", got)
			}
			if got != nil {
				t.Errorf("Load returned a Config with its error")
			}
			checkMessage(t, err, tt.want)
		})
	}
}

// webhookOn returns a file turning the webhook on at listen, with a token
// and a registry, and the webhook keys in extra.
func webhookOn(listen, extra string) string {
	return "webhook:\n  listen: " + listen + "\n  token: 0123456789abcdef\n  registries: {a: b}\n" + extra
}

// normalized returns v with an empty list or map made nil, as Config
// holds them.
func normalized(v any) any {
	switch v := v.(type) {
	case []string:
		return cloneList(v)
	case map[string]string:
		return cloneMap(v)
	}
	return v
}

// checkMessage asserts err's lines each start with "config: " and that its
// text holds every want.
func checkMessage(t *testing.T, err error, want []string) {
	t.Helper()
	msg := err.Error()
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, "config: ") {
			t.Errorf("error line %q does not start with %q", line, "config: ")
		}
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")

	t.Run("missing file that was named", func(t *testing.T) {
		_, _, err := Load(LoadOptions{File: missing, FileRequired: true})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load = %v, want a not-exist error", err)
		}
		checkMessage(t, err, []string{missing})
	})
	t.Run("missing file that was not named", func(t *testing.T) {
		got, _, err := Load(LoadOptions{File: missing})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := cmp.Diff(Default(), *got, cmpConfig); diff != "" {
			t.Errorf("Load mismatch (-want +got):\n%s", diff)
		}
	})
	for _, tt := range []struct {
		name, content string
		want          []string
	}{
		{"invalid YAML", "scan:\n  concurrency: 4\n   timeout: 1m\n", []string{"line 3"}},
		{"unclosed list", "scan:\n  concurrency: [4\n", []string{"yaml: line "}},
		{"tab indentation", "scan:\n\tconcurrency: 4\n", []string{"line 2"}},
		{"not a mapping", "- scan\n", []string{"must be a mapping"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.content)
			err := ValidateFile(path)
			if err == nil {
				t.Fatal("ValidateFile = nil, want an error")
			}
			checkMessage(t, err, append([]string{path}, tt.want...))
		})
	}
}

func TestUnknownEnvWarning(t *testing.T) {
	got, warnings, err := loadWith(t, "", []string{
		"ASSAY_SCAN_CONCURENCY=4",
		"ASSAY_SOCKET=/run/assay/assayd.sock",
		"ASSAY_TEST_E2E=1",
		"ASSAY_SCAN_CONCURENCY=5", // repeated: one warning
		"ASSAY_FROBNICATE=yes",
		"HOME=/root",
	}, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Scan.Concurrency != Default().Scan.Concurrency {
		t.Errorf("scan.concurrency = %d, want the default: a misspelt variable must not apply", got.Scan.Concurrency)
	}
	if len(warnings) != 2 {
		t.Fatalf("warnings = %q, want 2", warnings)
	}
	for i, want := range []string{"ASSAY_SCAN_CONCURENCY", "ASSAY_FROBNICATE"} {
		if !strings.Contains(warnings[i], want) {
			t.Errorf("warning %q does not name %s", warnings[i], want)
		}
	}
	if !strings.Contains(warnings[0], "did you mean ASSAY_SCAN_CONCURRENCY?") {
		t.Errorf("warning %q suggests no variable", warnings[0])
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	group := "" // the test's own group, by name, where it has one
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		group = g.Name
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	custom := Config{
		Socket:   Socket{Path: "/run/x/x.sock", Group: group, Mode: "0600"},
		StateDir: "/srv/assay: state", // needs quoting in YAML
		Containerd: Containerd{
			Address:      "/run/containerd/containerd.sock",
			Namespace:    "k8s.io",
			Binary:       "/opt/containerd #1/bin/containerd", // needs quoting
			StartTimeout: 45 * time.Second,
			WatchImages:  true,
		},
		Registries: Registries{ConfigPath: "/etc/containerd/certs.d", AuthFile: "/root/.docker/config.json"},
		Scan: Scan{
			Concurrency: 7, Timeout: 90 * time.Second, MaxAttempts: 1, MaxQueued: 3,
			Platforms: []string{"linux/amd64", "linux/arm/v7"},
		},
		Limits:  Limits{MaxImageBytes: 1, MaxLayers: 10000, MaxUnpackedBytes: 1 << 40, MaxEntries: 5, MaxReportPackages: 3, MaxPackageLocations: 1},
		Plugins: Plugins{Dir: "/opt/assay plugins", Enabled: []string{"secrets", "sbom.v2"}},
		Sandbox: Sandbox{
			IDRange: "65536:1", Timeout: 89 * time.Second, Memory: 16 << 20, Pids: 65536,
			CPUShares: 2, TmpfsBytes: 1 << 30, MaxResultBytes: 1, StartTimeout: 1500 * time.Millisecond, Parallel: 16,
		},
		VulnDB: VulnDB{
			Sources:        []string{"https://osv.example/Go/all.zip", "/var/lib/osv data"},
			UpdateInterval: 90 * time.Minute, Timeout: 3 * time.Second, MaxArchiveBytes: 7, MaxRecordBytes: 5, MaxTotalBytes: 9, RequireCoverage: false,
		},
		Match:  Match{OSOwnedLanguagePackages: true},
		Policy: Policy{MinSeverity: "high", OnlyFixed: true, IgnoreFile: "/etc/assay/ignore.yaml", VEX: []string{"/etc/assay/a.vex.json", "/etc/assay/b.vex.json"}},
		Webhook: Webhook{
			Listener:  Listener{Listen: ":9443", Insecure: true},
			TokenFile: tokenFile,
			Registries: map[string]string{
				"Reg.Example:5000": "127.0.0.1:5000",
				"[fd00::1]:5000":   "[fd00::2]",
				"docker.io":        "mirror.internal",
			},
			MaxBodyBytes: 1,
		},
		Log:      Log{Level: "error", Format: "json"},
		API:      API{MaxBodyBytes: 12345, EventBuffer: 100000},
		Store:    Store{ReportsPerImage: 3, ScanRetention: 36 * time.Hour},
		Shutdown: Shutdown{Timeout: 1500 * time.Millisecond},
		Cache:    Cache{MaxBytes: 0, MaxAge: time.Hour},
		Notify: Notify{MaxAge: 2 * time.Hour, Timeout: time.Second, Webhooks: []NotifyWebhook{
			{URL: "https://chat.example/hook?x=1", SecretFile: tokenFile, MinSeverity: "high", VerdictChangedOnly: true, Images: []string{"reg.example/prod/*", "b"}},
			{URL: "http://127.0.0.1:9000/", SecretFile: tokenFile},
		}},
	}
	// Validate reads the token file, as Load will.
	if err := custom.Validate(); err != nil {
		t.Fatalf("custom.Validate: %v", err)
	}
	if got, want := custom.Webhook.Secret(), "0123456789abcdef-from-a-file"; got != want {
		t.Fatalf("Secret() after Validate = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		name string
		c    Config
	}{
		{"default", Default()},
		{"custom", custom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.c.YAML()
			if err != nil {
				t.Fatalf("YAML: %v", err)
			}
			path := writeConfig(t, string(data))
			if err := ValidateFile(path); err != nil {
				t.Fatalf("ValidateFile of YAML():\n%s\n%v", data, err)
			}
			got, _, err := Load(LoadOptions{File: path, FileRequired: true})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(&tt.c, got, cmpConfig); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s\nYAML:\n%s", diff, data)
			}
		})
	}

	c := Default()
	data, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  timeout: 10m0s\n", `  mode: "0660"` + "\n", "state_dir: /var/lib/assay\n",
		"  watch_images: false\n", "  platforms: []\n", "  enabled:\n    - all\n", "  memory: 536870912\n", "  registries: {}\n", `  token: ""` + "\n",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("YAML() of Default lacks %q:\n%s", want, data)
		}
	}
	data, err = custom.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  platforms:\n    - linux/amd64\n    - linux/arm/v7\n",
		// Sorted by name.
		"  registries:\n    Reg.Example:5000: 127.0.0.1:5000\n    '[fd00::1]:5000': '[fd00::2]'\n    docker.io: mirror.internal\n",
		"  watch_images: true\n",
		"  enabled:\n    - secrets\n    - sbom.v2\n",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("YAML() of custom lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "from-a-file") {
		t.Errorf("YAML() shows the token read from webhook.token_file:\n%s", data)
	}
}

// YAML, which `assayd config print` shows, never shows webhook.token; what
// it shows instead cannot be loaded back as a token.
func TestYAMLRedactsToken(t *testing.T) {
	const token = "s3cret-webhook-token-value"
	c := Default()
	c.Webhook.Listen = "127.0.0.1:9443"
	c.Webhook.Token = token
	c.Webhook.Registries = map[string]string{"reg.example": "127.0.0.1:5000"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), token) {
		t.Fatalf("YAML() shows the token:\n%s", data)
	}
	if want := `  token: "<redacted>"` + "\n"; !strings.Contains(string(data), want) {
		t.Errorf("YAML() lacks %q:\n%s", want, data)
	}
	_, _, err = Load(LoadOptions{File: writeConfig(t, string(data)), FileRequired: true})
	if err == nil {
		t.Fatalf("Load of redacted YAML = nil error, want webhook.token refused:\n%s", data)
	}
	checkMessage(t, err, []string{"webhook.token", "at least 16 characters"})
}

// The shipped file states every key with its default, so that it and
// Default cannot drift apart.
func TestShippedConfigIsDefault(t *testing.T) {
	const path = "../../configs/assayd.yaml"
	if err := ValidateFile(path); err != nil {
		t.Fatalf("ValidateFile(%s): %v", path, err)
	}
	got, warnings, err := Load(LoadOptions{File: path, FileRequired: true})
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Load(%s) = %v, warnings %q", path, err, warnings)
	}
	if diff := cmp.Diff(Default(), *got, cmpConfig); diff != "" {
		t.Errorf("%s differs from Default() (-Default +file):\n%s", path, diff)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &loader{from: make(map[string]string)}
	if _, err := l.parseFile(path, data); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, ok := l.from[k.name]; !ok {
			t.Errorf("%s does not state %s", path, k.name)
		}
	}
}

// The key table, the struct tags and the environment names agree.
func TestKeysMatchStruct(t *testing.T) {
	var fromTags []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue // state that is no key, like Webhook's token read from its file
			}
			name := f.Tag.Get("mapstructure")
			if f.Anonymous {
				// An embedded section part (Listener): its keys are the
				// section's own.
				if name != ",squash" || f.Tag.Get("yaml") != ",inline" {
					t.Errorf("%s.%s: embedded without mapstructure:\",squash\" yaml:\",inline\"", typ.Name(), f.Name)
				}
				walk(prefix, f.Type)
				continue
			}
			if y := f.Tag.Get("yaml"); y != name {
				t.Errorf("%s.%s: yaml tag %q differs from mapstructure tag %q", typ.Name(), f.Name, y, name)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type)
				continue
			}
			fromTags = append(fromTags, prefix+name)
		}
	}
	walk("", reflect.TypeFor[Config]())

	var names []string
	envs := make(map[string]bool)
	for _, k := range keys {
		names = append(names, k.name)
		if envs[k.env()] {
			t.Errorf("two keys map to %s", k.env())
		}
		envs[k.env()] = true
		if k.usage == "" {
			t.Errorf("%s has no usage text", k.name)
		}
	}
	if diff := cmp.Diff(fromTags, names); diff != "" {
		t.Errorf("key table differs from the struct tags (-tags +table):\n%s", diff)
	}

	// Every key's field is distinct: a copy-paste slip in the table would
	// point two keys at one field.
	var c Config
	seen := make(map[uintptr]string)
	for _, k := range keys {
		p := reflect.ValueOf(k.field(&c)).Pointer()
		if other, dup := seen[p]; dup {
			t.Errorf("%s and %s share a field", k.name, other)
		}
		seen[p] = k.name
	}
}

func TestBindFlags(t *testing.T) {
	fs := pflag.NewFlagSet("assayd", pflag.ContinueOnError)
	BindFlags(fs)
	var got []string
	def := Default()
	fs.VisitAll(func(f *pflag.Flag) {
		got = append(got, f.Name)
		k, ok := byName[f.Name]
		if !ok {
			t.Errorf("flag --%s is no key", f.Name)
			return
		}
		// The default shown in the help is the real one.
		if f.DefValue != f.Value.String() {
			t.Errorf("--%s: default %q differs from the unset value %q", f.Name, f.DefValue, f.Value.String())
		}
		v, err := k.flagValue(f)
		if err != nil || !reflect.DeepEqual(normalized(v), k.get(&def)) {
			t.Errorf("--%s default %q reads as %#v (%v), want %#v", f.Name, f.DefValue, v, err, k.get(&def))
		}
	})
	var want []string
	for _, k := range keys {
		want = append(want, k.name)
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flags differ from keys (-want +got):\n%s", diff)
	}
}

func TestFileMode(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want os.FileMode
	}{
		{"0660", 0o660},
		{"660", 0o660},
		{"0o600", 0o600},
		{"0777", 0o777},
		{"0", 0},
		{"0999", 0},
		{"1777", 0},
		{"", 0},
		{"rw-rw----", 0},
	} {
		if got := (Socket{Mode: tt.mode}).FileMode(); got != tt.want {
			t.Errorf("FileMode(%q) = %#o, want %#o", tt.mode, got, tt.want)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	for _, tt := range []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
	} {
		if got := (Log{Level: tt.level}).SlogLevel(); got != tt.want {
			t.Errorf("SlogLevel(%q) = %v, want %v", tt.level, got, tt.want)
		}
	}
}

func TestValidateJoinsErrors(t *testing.T) {
	c := Default()
	c.Scan.Concurrency = 0
	c.Log.Format = "xml"
	c.StateDir = ""
	err := c.Validate()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate = %v, want errors joined", err)
	}
	if n := len(joined.Unwrap()); n != 3 {
		t.Errorf("Validate gave %d errors, want 3:\n%v", n, err)
	}
	checkMessage(t, err, []string{
		"config: scan.concurrency: must be between 1 and 64, got 0",
		"config: log.format:",
		"config: state_dir:",
	})
}

func TestWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	on := func(extra string) string {
		return "webhook:\n  listen: 127.0.0.1:9443\n  registries: {reg.example: 127.0.0.1:5000}\n" + extra
	}

	t.Run("token", func(t *testing.T) {
		c, _, err := loadWith(t, on("  token: 0123456789abcdef\n"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Webhook.Secret(); got != "0123456789abcdef" {
			t.Errorf("Secret() = %q", got)
		}
	})
	for _, tt := range []struct{ name, content, want string }{
		{"token file", "0123456789abcdef-file", "0123456789abcdef-file"},
		{"token file with a newline", "0123456789abcdef-file\n", "0123456789abcdef-file"},
		{"token file with CRLF", "0123456789abcdef-file\r\n", "0123456789abcdef-file"},
		{"token file with spaces inside", "correct horse battery staple\n", "correct horse battery staple"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := file(tt.name, tt.content)
			c, _, err := loadWith(t, on("  token_file: "+path+"\n"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Webhook.Secret(); got != tt.want {
				t.Errorf("Secret() = %q, want %q", got, tt.want)
			}
			if c.Webhook.Token != "" {
				t.Errorf("Token = %q, want it left empty", c.Webhook.Token)
			}
		})
	}
	t.Run("token file from env", func(t *testing.T) {
		path := file("env", "0123456789abcdef-env\n")
		c, _, err := loadWith(t, on(""), []string{"ASSAY_WEBHOOK_TOKEN_FILE=" + path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Webhook.Secret(); got != "0123456789abcdef-env" {
			t.Errorf("Secret() = %q", got)
		}
	})

	for _, tt := range []struct {
		name, content string
		want          []string
	}{
		{"empty token file", "", []string{"webhook.token_file", "is empty"}},
		{"token file of a newline", "\n\n", []string{"webhook.token_file", "is empty"}},
		{"short token file", "sesame\n", []string{"webhook.token_file", "must be at least 16 characters long, got 6"}},
		{"token file of two lines", "0123456789abcdef\nsecond line\n", []string{"webhook.token_file", "one line"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := file(tt.name, tt.content)
			_, _, err := loadWith(t, on("  token_file: "+path+"\n"), nil, nil)
			if err == nil {
				t.Fatal("Load = nil error")
			}
			checkMessage(t, err, append(tt.want, path))
			if strings.Contains(err.Error(), "sesame") || strings.Contains(err.Error(), "second line") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
	t.Run("unreadable token file", func(t *testing.T) {
		_, _, err := loadWith(t, on("  token_file: "+dir+"\n"), nil, nil)
		if err == nil {
			t.Fatal("Load = nil error")
		}
		checkMessage(t, err, []string{"webhook.token_file", "cannot read the token", dir})
	})
	t.Run("token file checked with the webhook off", func(t *testing.T) {
		path := file("off", "")
		_, _, err := loadWith(t, "webhook:\n  token_file: "+path+"\n", nil, nil)
		if err == nil {
			t.Fatal("Load = nil error")
		}
		checkMessage(t, err, []string{"webhook.token_file", "is empty"})
	})
	t.Run("short token is not shown", func(t *testing.T) {
		_, _, err := loadWith(t, on("  token: sesame\n"), nil, nil)
		if err == nil {
			t.Fatal("Load = nil error")
		}
		checkMessage(t, err, []string{"webhook.token", "at least 16"})
		if strings.Contains(err.Error(), "sesame") {
			t.Errorf("error %q shows the token", err)
		}
	})
	t.Run("Validate reads the token file", func(t *testing.T) {
		c := Default()
		c.Webhook.TokenFile = file("validate", "0123456789abcdef-validate\n")
		if got := c.Webhook.Secret(); got != "" {
			t.Errorf("Secret() before Validate = %q, want empty", got)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.Webhook.Secret(); got != "0123456789abcdef-validate" {
			t.Errorf("Secret() after Validate = %q", got)
		}
	})
	t.Run("no secret", func(t *testing.T) {
		if got := Default().Webhook.Secret(); got != "" {
			t.Errorf("Default().Webhook.Secret() = %q, want empty", got)
		}
	})
}

func TestContainerdAddress(t *testing.T) {
	// Validate takes the address with or without the scheme; Load strips it.
	c := Default()
	c.Containerd.Address = "unix:///run/containerd/containerd.sock"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got, _, err := loadWith(t, "containerd:\n  address: unix:///run/containerd/containerd.sock\n", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Containerd.Address != "/run/containerd/containerd.sock" {
		t.Errorf("Address = %q, want the scheme stripped", got.Containerd.Address)
	}
}

func TestPlatforms(t *testing.T) {
	c := Default()
	c.Scan.Platforms = []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/386", "linux/ppc64le", "windows/amd64", "linux/s390x"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	for _, p := range []string{"", "linux", "linux/", "/amd64", "linux/amd64/", "linux/AMD64", "linux/amd 64", "linux/amd64/v8/x", " linux/amd64"} {
		c.Scan.Platforms = []string{p}
		err := c.Validate()
		if err == nil {
			t.Errorf("Validate accepts platform %q", p)
			continue
		}
		checkMessage(t, err, []string{"config: scan.platforms: " + strconv.Quote(p)})
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, s := range []string{
		"reg.example", "reg.example:5000", "Reg.Example:443", "localhost", "127.0.0.1", "127.0.0.1:5000",
		"[fd00::1]", "[fd00::1]:5000", "my-registry_1.internal", "docker.io",
	} {
		if err := checkHostPort(s); err != nil {
			t.Errorf("checkHostPort(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{
		"", "https://reg.example", "reg.example/v2", "reg.example:5000/library", "user@reg.example",
		"reg.example:", "reg.example:0", "reg.example:65536", "reg.example:http", "fd00::1", "[reg.example]:5000",
		"[127.0.0.1]", "-reg.example", "reg..example", "reg example", ":5000",
	} {
		if err := checkHostPort(s); err == nil {
			t.Errorf("checkHostPort(%q) = nil, want an error", s)
		}
	}
}

func TestChangedKeys(t *testing.T) {
	a, b := Default(), Default()
	a.Scan.Platforms = []string{} // empty and nil are the same: none
	if got := a.ChangedKeys(&b); len(got) != 0 {
		t.Errorf("ChangedKeys of equal configs = %q, want none", got)
	}
	b.Log.Level = "debug"
	b.Scan.Platforms = []string{"linux/amd64"}
	b.Webhook.Registries = map[string]string{"a": "b"}
	b.Containerd.WatchImages = true
	b.Plugins.Enabled = []string{"secrets"}
	b.Sandbox.IDRange = "2000000000:65536"
	b.Sandbox.Memory = 1 << 30
	b.Sandbox.StartTimeout = time.Second
	want := []string{
		"containerd.watch_images", "scan.platforms", "plugins.enabled",
		"sandbox.id_range", "sandbox.memory", "sandbox.start_timeout",
		"webhook.registries", "log.level",
	}
	if diff := cmp.Diff(want, a.ChangedKeys(&b)); diff != "" {
		t.Errorf("ChangedKeys mismatch (-want +got):\n%s", diff)
	}

	// The same token file with another token in it.
	a, b = Default(), Default()
	a.Webhook.TokenFile, a.Webhook.fileToken = "/run/secrets/token", "0123456789abcdef-old"
	b.Webhook.TokenFile, b.Webhook.fileToken = "/run/secrets/token", "0123456789abcdef-new"
	if diff := cmp.Diff([]string{"webhook.token_file"}, a.ChangedKeys(&b)); diff != "" {
		t.Errorf("ChangedKeys mismatch (-want +got):\n%s", diff)
	}
}

func TestMapFlag(t *testing.T) {
	for _, bad := range []string{"reg.example", "=127.0.0.1:5000", "a=b,a=c", "a=b,"} {
		fs := pflag.NewFlagSet("assayd", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		BindFlags(fs)
		if err := fs.Parse([]string{"--webhook.registries=" + bad}); err == nil {
			t.Errorf("--webhook.registries=%s parses", bad)
		}
	}
	f := &mapFlag{}
	for _, v := range []string{"b=2, a=1", "c=3"} {
		if err := f.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := f.String(), "a=1,b=2,c=3"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestSandboxIDs(t *testing.T) {
	for _, tt := range []struct {
		idRange      string
		start, count uint32
	}{
		{"1000000000:65536", 1000000000, 65536},
		{"65536:1", 65536, 1},
		{"4294901759:65536", 4294901759, 65536},
		{"4294967294:1", 4294967294, 1},
		// Invalid, which Validate rejects: none.
		{"", 0, 0},
		{"1000000000", 0, 0},
		{"65535:65536", 0, 0},
		{"1000000000:0", 0, 0},
		{"4294967295:1", 0, 0},
		{"4294967296:1", 0, 0},
		{"+1000000000:65536", 0, 0},
		{"0x10000:65536", 0, 0},
	} {
		start, count := (Sandbox{IDRange: tt.idRange}).IDs()
		if start != tt.start || count != tt.count {
			t.Errorf("IDs() of %q = %d, %d; want %d, %d", tt.idRange, start, count, tt.start, tt.count)
		}
		c := Default()
		c.Sandbox.IDRange = tt.idRange
		if err := c.Validate(); (err == nil) != (tt.count != 0) {
			t.Errorf("Validate of id_range %q = %v, want an error only when IDs() is 0, 0", tt.idRange, err)
		}
	}
}

func TestPluginNames(t *testing.T) {
	c := Default()
	c.Plugins.Enabled = []string{"secrets", "0day", "sbom-2.x", "a_b", "x", "a.plugin"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	for _, name := range []string{"", ".", "..", "-x", "_x", ".x", "Secrets", "se crets", "a/b", "a\\b", "secrets\n", "sécrets", "a:b"} {
		c.Plugins.Enabled = []string{name}
		err := c.Validate()
		if err == nil {
			t.Errorf("Validate accepts plugin name %q", name)
			continue
		}
		checkMessage(t, err, []string{"config: plugins.enabled: " + strconv.Quote(name)})
	}
}

// sandbox.timeout is checked against scan.timeout only when both are
// positive: a bad scan.timeout is reported once, under its own key.
func TestSandboxTimeoutBelowScanTimeout(t *testing.T) {
	c := Default()
	c.Scan.Timeout = c.Sandbox.Timeout + time.Nanosecond
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	c.Scan.Timeout = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate = nil, want scan.timeout refused")
	}
	checkMessage(t, err, []string{"config: scan.timeout: must be greater than 0"})
	if strings.Contains(err.Error(), "sandbox.timeout") {
		t.Errorf("Validate = %q, want no sandbox.timeout error besides scan.timeout's", err)
	}
}

// Plain http is accepted on loopback, and elsewhere with vulndb.allow_http.
func TestHTTPSources(t *testing.T) {
	for _, tc := range []struct {
		src   string
		allow bool
		ok    bool
	}{
		{"https://osv.example/Go/all.zip", false, true},
		{"http://127.0.0.1:8080/Go/all.zip", false, true},
		{"http://localhost/Go/all.zip", false, true},
		{"http://[::1]:80/Go/all.zip", false, true},
		{"http://osv.example/Go/all.zip", false, false},
		{"http://osv.example/Go/all.zip", true, true},
	} {
		if err := checkSource(tc.src, tc.allow); (err == nil) != tc.ok {
			t.Errorf("checkSource(%s, allow %v) = %v, want ok %v", tc.src, tc.allow, err, tc.ok)
		}
	}
}

// An empty plugins.dir is the plugins directory next to the executable
// (a build tree's bin/plugins), else the install location.
func TestResolvePluginsDir(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "assayd")
	os.WriteFile(exe, nil, 0o755)
	if got := (Plugins{}).ResolveDir(exe); got != InstalledPluginsDir {
		t.Errorf("without a plugins dir beside: %s", got)
	}
	os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
	link := filepath.Join(t.TempDir(), "assayd")
	os.Symlink(exe, link)
	if got := (Plugins{}).ResolveDir(link); got != filepath.Join(dir, "plugins") {
		t.Errorf("beside the (linked) executable: %s", got)
	}
	if got := (Plugins{Dir: "/opt/p"}).ResolveDir(link); got != "/opt/p" {
		t.Errorf("an explicit dir: %s", got)
	}
}

func TestFileBytes(t *testing.T) {
	l := Limits{MaxFileBytes: map[string]string{"gobinary": "1GiB", "java": " 256MiB "}}
	got := l.FileBytes()
	if got["gobinary"] != 1<<30 || got["java"] != 256<<20 || len(got) != 2 {
		t.Errorf("FileBytes = %v", got)
	}
}

func TestHarborSection(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "harbor-secret-0123456789\n")
	basic := write("basic", "harbor:harbor-secret-0123456789\n")
	short := write("short", "harbor:short\n")
	base := []string{"--harbor.listen", "127.0.0.1:8089", "--harbor.registries", "http://127.0.0.1:5000"}
	args := func(extra ...string) []string { return append(slices.Clone(base), extra...) }

	cfg, _, err := loadWith(t, "", nil, args("--harbor.auth", "basic", "--harbor.secret_file", basic))
	if err != nil {
		t.Fatalf("basic: %v", err)
	}
	if cfg.Harbor.Secret() != "harbor:harbor-secret-0123456789" || cfg.Harbor.Auth != "basic" {
		t.Fatalf("harbor section: %+v", cfg.Harbor)
	}
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"no auth mode", args("--harbor.secret_file", token), []string{"harbor.auth", "bearer, basic, api_key"}},
		{"no secret", args("--harbor.auth", "bearer"), []string{"harbor.secret_file", "must authenticate"}},
		{"basic without a user", args("--harbor.auth", "basic", "--harbor.secret_file", token), []string{"harbor.secret_file", "user:password"}},
		{"short password", args("--harbor.auth", "basic", "--harbor.secret_file", short), []string{"harbor.secret_file", "at least 16"}},
		{"no registries", []string{"--harbor.listen", "127.0.0.1:8089", "--harbor.auth", "api_key", "--harbor.secret_file", token}, []string{"harbor.registries", "must list"}},
		{"registry with a path", args("--harbor.auth", "api_key", "--harbor.secret_file", token, "--harbor.registries", "http://h:5000/v2"), []string{"harbor.registries", "want http://host[:port]"}},
		{"in clear off loopback", []string{"--harbor.listen", ":8089", "--harbor.registries", "http://h:5000", "--harbor.auth", "api_key", "--harbor.secret_file", token}, []string{"harbor.listen", "not a loopback address", "harbor.insecure"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadWith(t, "", nil, tt.args)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "harbor-secret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestNotifySection(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(sec, []byte("hook-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf(`notify:
  webhooks:
    - url: https://chat.example/hooks/T0
      secret_file: %s
      min_severity: high
      verdict_changed_only: true
      images: ["reg.example/prod/*"]
    - url: http://127.0.0.1:9000/
      secret_file: %s
  max_age: 2h
`, sec, sec)
	cfg, _, err := loadWith(t, file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Notify.Webhooks
	if len(w) != 2 || w[0].MinSeverity != "high" || !w[0].VerdictChangedOnly || w[0].Images[0] != "reg.example/prod/*" ||
		w[0].Secret() != "hook-secret-0123456789" || w[1].Secret() == "" || cfg.Notify.MaxAge != 2*time.Hour {
		t.Fatalf("notify: %+v", cfg.Notify)
	}
	// The environment and flags take JSON; flags add receivers.
	one := fmt.Sprintf(`[{"url": "http://127.0.0.1:9001/x", "secret_file": %q}]`, sec)
	cfg, _, err = loadWith(t, "", []string{"ASSAY_NOTIFY_WEBHOOKS=" + one}, nil)
	if err != nil || len(cfg.Notify.Webhooks) != 1 || cfg.Notify.Webhooks[0].URL != "http://127.0.0.1:9001/x" {
		t.Fatalf("from the environment: %+v %v", cfg.Notify, err)
	}
	two := fmt.Sprintf(`{"url": "http://127.0.0.1:9002/", "secret_file": %q}`, sec)
	cfg, _, err = loadWith(t, "", nil, []string{"--notify.webhooks", one, "--notify.webhooks", two})
	if err != nil || len(cfg.Notify.Webhooks) != 2 {
		t.Fatalf("from flags: %+v %v", cfg.Notify, err)
	}

	for _, tt := range []struct {
		name, hooks string
		want        []string
	}{
		{"unknown field", `[{"url": "http://127.0.0.1:1/", "secret_file": "` + sec + `", "min_sevrity": "high"}]`, []string{"notify.webhooks", "min_sevrity"}},
		{"no secret", `[{"url": "http://127.0.0.1:1/"}]`, []string{"notify.webhooks", "no secret_file"}},
		{"plain http off loopback", `[{"url": "http://chat.example/h", "secret_file": "` + sec + `"}]`, []string{"notify.webhooks", "plain http off loopback", "allow_http"}},
		{"credentials in the url", `[{"url": "https://u:p@chat.example/h", "secret_file": "` + sec + `"}]`, []string{"notify.webhooks", "without credentials"}},
		{"bad severity", `[{"url": "https://chat.example/h", "secret_file": "` + sec + `", "min_severity": "severe"}]`, []string{"notify.webhooks", "min_severity"}},
		{"bad glob", `[{"url": "https://chat.example/h", "secret_file": "` + sec + `", "images": ["["]}]`, []string{"notify.webhooks", "not a valid glob"}},
		{"twice", `[{"url": "https://chat.example/h", "secret_file": "` + sec + `"}, {"url": "https://chat.example/h", "secret_file": "` + sec + `"}]`, []string{"listed twice"}},
		{"not JSON", `url=https://x`, []string{"notify.webhooks", "must be JSON"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadWith(t, "", []string{"ASSAY_NOTIFY_WEBHOOKS=" + tt.hooks}, nil)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
