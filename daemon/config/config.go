package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultPath is the file read when no other is named.
const DefaultPath = "/etc/assay/assayd.yaml"

// Config is the daemon's whole configuration. The tags give each field's key
// as written in the file.
type Config struct {
	Socket   Socket   `mapstructure:"socket" yaml:"socket"`
	StateDir string   `mapstructure:"state_dir" yaml:"state_dir"`
	Scan     Scan     `mapstructure:"scan" yaml:"scan"`
	Log      Log      `mapstructure:"log" yaml:"log"`
	API      API      `mapstructure:"api" yaml:"api"`
	Store    Store    `mapstructure:"store" yaml:"store"`
	Shutdown Shutdown `mapstructure:"shutdown" yaml:"shutdown"`
}

// Socket is the unix socket the API listens on.
type Socket struct {
	// Path must be absolute.
	Path string `mapstructure:"path" yaml:"path"`
	// Group, by name or numeric gid, may use the socket besides root and the
	// daemon's own uid. Empty means no group.
	Group string `mapstructure:"group" yaml:"group"`
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

// Scan bounds the work of scanning.
type Scan struct {
	// Concurrency is how many scans run at once.
	Concurrency int `mapstructure:"concurrency" yaml:"concurrency"`
	// Timeout bounds one scan, from pull to report.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// MaxAttempts is how many times a scan interrupted by a crash of the
	// daemon is started before it is failed.
	MaxAttempts int `mapstructure:"max_attempts" yaml:"max_attempts"`
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

// API bounds what one client of the socket API may cost.
type API struct {
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	// EventBuffer is how many events are held for one /v1/events client
	// that reads too slowly before it is dropped.
	EventBuffer int `mapstructure:"event_buffer" yaml:"event_buffer"`
}

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
		Scan: Scan{
			Concurrency: 2,
			Timeout:     10 * time.Minute,
			MaxAttempts: 3,
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
	}
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

// Validate checks every value and returns one error per bad key, joined.
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

	switch p := c.Socket.Path; {
	case !filepath.IsAbs(p):
		bad("socket.path", "must be an absolute path, got %q", p)
	case len(p) > maxSocketPath:
		bad("socket.path", "is %d bytes long; a unix socket path can be at most %d", len(p), maxSocketPath)
	}
	if err := checkGroup(c.Socket.Group); err != nil {
		bad("socket.group", "%v", err)
	}
	if _, err := parseMode(c.Socket.Mode); err != nil {
		bad("socket.mode", "%v", err)
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "must be an absolute path, got %q", c.StateDir)
	}

	between("scan.concurrency", c.Scan.Concurrency, 1, 64)
	positive("scan.timeout", c.Scan.Timeout)
	between("scan.max_attempts", c.Scan.MaxAttempts, 1, 10)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}

	if c.API.MaxBodyBytes <= 0 {
		bad("api.max_body_bytes", "must be greater than 0, got %d", c.API.MaxBodyBytes)
	}
	between("api.event_buffer", c.API.EventBuffer, 1, 100000)

	if c.Store.ReportsPerImage < 1 {
		bad("store.reports_per_image", "must be at least 1, got %d", c.Store.ReportsPerImage)
	}
	positive("store.scan_retention", c.Store.ScanRetention)

	positive("shutdown.timeout", c.Shutdown.Timeout)
	return errs
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
