package config

import (
	"errors"
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
				c.Scan = Scan{Concurrency: 4, Timeout: 5 * time.Minute, MaxAttempts: 5}
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
				"PATH=/usr/bin",
			},
			want: func(c *Config) {
				c.Scan.Concurrency = 6
				c.StateDir = "/srv/env"
				c.Socket.Path = "/run/env.sock"
				c.Log.Level = "warn"
				c.API.MaxBodyBytes = 2 << 20
				c.Scan.Timeout = 90 * time.Second
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
			env:  []string{"ASSAY_SCAN_TIMEOUT=2m"},
			args: []string{},
			want: func(c *Config) {
				c.Scan.Concurrency = 4
				c.Scan.Timeout = 2 * time.Minute
			},
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
			if diff := cmp.Diff(&want, got); diff != "" {
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
		if diff := cmp.Diff(Default(), *got); diff != "" {
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
	custom := Config{
		Socket:   Socket{Path: "/run/x/x.sock", Group: group, Mode: "0600"},
		StateDir: "/srv/assay: state", // needs quoting in YAML
		Scan:     Scan{Concurrency: 7, Timeout: 90 * time.Second, MaxAttempts: 1},
		Log:      Log{Level: "error", Format: "json"},
		API:      API{MaxBodyBytes: 12345, EventBuffer: 100000},
		Store:    Store{ReportsPerImage: 3, ScanRetention: 36 * time.Hour},
		Shutdown: Shutdown{Timeout: 1500 * time.Millisecond},
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
			if diff := cmp.Diff(&tt.c, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s\nYAML:\n%s", diff, data)
			}
		})
	}

	c := Default()
	data, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  timeout: 10m0s\n", `  mode: "0660"` + "\n", "state_dir: /var/lib/assay\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("YAML() lacks %q:\n%s", want, data)
		}
	}
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
	if diff := cmp.Diff(Default(), *got); diff != "" {
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
			name := f.Tag.Get("mapstructure")
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
		v, err := k.parse(f.DefValue)
		if err != nil || !reflect.DeepEqual(v, k.get(&def)) {
			t.Errorf("--%s default %q parses to %v (%v), want %v", f.Name, f.DefValue, v, err, k.get(&def))
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
