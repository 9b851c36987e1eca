package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// key is one setting. The table below is the one list of keys: the file
// reader, the environment, the flags and YAML all go by it, in its order.
type key struct {
	name  string // dotted, as in the file: "scan.concurrency"
	usage string // for the flag's help
	// field returns a pointer to the key's field in c: *string, *int,
	// *int64 (a size in bytes) or *time.Duration.
	field func(c *Config) any
}

var keys = []key{
	{"socket.path", "path of the unix socket the API listens on (absolute)",
		func(c *Config) any { return &c.Socket.Path }},
	{"socket.group", `group, by name or gid, that may use the socket besides root and the daemon's uid ("" for none)`,
		func(c *Config) any { return &c.Socket.Group }},
	{"socket.mode", "permission bits of the socket, octal",
		func(c *Config) any { return &c.Socket.Mode }},
	{"state_dir", "directory of the daemon's database and work files (absolute)",
		func(c *Config) any { return &c.StateDir }},
	{"scan.concurrency", "scans run at once (1-64)",
		func(c *Config) any { return &c.Scan.Concurrency }},
	{"scan.timeout", "longest time one scan may take",
		func(c *Config) any { return &c.Scan.Timeout }},
	{"scan.max_attempts", "times a scan interrupted by a crash is started before it is failed (1-10)",
		func(c *Config) any { return &c.Scan.MaxAttempts }},
	{"log.level", "log level: debug, info, warn or error",
		func(c *Config) any { return &c.Log.Level }},
	{"log.format", "log format: text or json",
		func(c *Config) any { return &c.Log.Format }},
	{"api.max_body_bytes", `largest API request body, in bytes or like "512KiB", "1MiB"`,
		func(c *Config) any { return &c.API.MaxBodyBytes }},
	{"api.event_buffer", "events held for a slow /v1/events client before it is dropped (1-100000)",
		func(c *Config) any { return &c.API.EventBuffer }},
	{"store.reports_per_image", "reports kept per image digest, newest first (at least 1)",
		func(c *Config) any { return &c.Store.ReportsPerImage }},
	{"store.scan_retention", "how long finished scan records are kept",
		func(c *Config) any { return &c.Store.ScanRetention }},
	{"shutdown.timeout", "how long SIGTERM waits for running scans before cancelling them",
		func(c *Config) any { return &c.Shutdown.Timeout }},
}

const envPrefix = "ASSAY_"

// env is the environment variable that sets k: ASSAY_SCAN_CONCURRENCY.
func (k key) env() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(k.name, ".", "_"))
}

// get returns k's value in c.
func (k key) get(c *Config) any {
	switch p := k.field(c).(type) {
	case *string:
		return *p
	case *int:
		return *p
	case *int64:
		return *p
	case *time.Duration:
		return *p
	default:
		panic(fmt.Sprintf("config: key %s has a field of unhandled type %T", k.name, p))
	}
}

// set stores v, which parse or get produced for k, in c.
func (k key) set(c *Config, v any) {
	switch p := k.field(c).(type) {
	case *string:
		*p = v.(string)
	case *int:
		*p = v.(int)
	case *int64:
		*p = v.(int64)
	case *time.Duration:
		*p = v.(time.Duration)
	default:
		panic(fmt.Sprintf("config: key %s has a field of unhandled type %T", k.name, p))
	}
}

// want describes, for messages, what a value of k must look like.
func (k key) want() string {
	switch k.field(&Config{}).(type) {
	case *int:
		return "a whole number"
	case *int64:
		return `a size: a number of bytes, or a string like "512KiB" or "1MiB"`
	case *time.Duration:
		return `a duration with a unit, like "30s" or "10m"`
	default:
		return "a string"
	}
}

// parse turns text, from the environment, a flag or a quoted string in the
// file, into the type of k's field.
func (k key) parse(text string) (any, error) {
	switch k.field(&Config{}).(type) {
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("must be %s, got %q", k.want(), text)
		}
		return n, nil
	case *int64:
		n, err := units.RAMInBytes(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("must be %s, got %q", k.want(), text)
		}
		return n, nil
	case *time.Duration:
		s := strings.TrimSpace(text)
		d, err := time.ParseDuration(s)
		if err != nil {
			if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
				return nil, bareDuration(text)
			}
			return nil, fmt.Errorf("must be %s, got %q", k.want(), text)
		}
		return d, nil
	default:
		return text, nil
	}
}

func bareDuration(v any) error {
	return fmt.Errorf(`a bare number is not a duration, got %v; give a unit, like "10m" or "30s"`, v)
}

// BindFlags registers one flag per key on fs, named like the key
// (--scan.concurrency, --state_dir), with the built-in default shown in the
// help. Only flags given on the command line override other layers; Load
// reads them from LoadOptions.Flags.
func BindFlags(fs *pflag.FlagSet) {
	def := Default()
	for _, k := range keys {
		switch p := k.field(&def).(type) {
		case *string:
			fs.String(k.name, *p, k.usage)
		case *int:
			fs.Int(k.name, *p, k.usage)
		case *int64:
			fs.String(k.name, units.BytesSize(float64(*p)), k.usage)
		case *time.Duration:
			fs.Duration(k.name, *p, k.usage)
		}
	}
}

// closest returns the candidate nearest to s in edit distance, or "" if
// none is near enough to be a likely typo.
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
