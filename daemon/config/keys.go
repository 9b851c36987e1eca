package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// key is one setting. The table below is the one list of keys: the file
// reader, the environment, the flags and YAML all go by it, in its order.
type key struct {
	name  string // dotted, as in the file: "scan.concurrency"
	usage string // for the flag's help
	// field returns a pointer to the key's field in c: *string, *int,
	// *int64 (a size in bytes), *time.Duration, *bool, *[]string or
	// *map[string]string.
	field func(c *Config) any
}

var keys = []key{
	{"socket.path", "path of the unix socket the API listens on (absolute)",
		func(c *Config) any { return &c.Socket.Path }},
	{"socket.group", `group, by name or gid, that may use the socket besides root and the daemon's uid, with the scan role: read, scan, cancel its own scans ("" for none)`,
		func(c *Config) any { return &c.Socket.Group }},
	{"socket.read_group", `group, by name or gid, whose members may only read reports, scans and events ("" for none)`,
		func(c *Config) any { return &c.Socket.ReadGroup }},
	{"socket.admin_group", `group, by name or gid, whose members may also import advisories, prune the cache, cancel any scan and scan with a policy of their own ("" for none)`,
		func(c *Config) any { return &c.Socket.AdminGroup }},
	{"socket.mode", "permission bits of the socket, octal",
		func(c *Config) any { return &c.Socket.Mode }},
	{"state_dir", "directory of the daemon's database and work files (absolute)",
		func(c *Config) any { return &c.StateDir }},
	{"containerd.address", `socket of a containerd to use, absolute, may start with unix:// ("" to run assayd's own containerd)`,
		func(c *Config) any { return &c.Containerd.Address }},
	{"containerd.namespace", "containerd namespace assayd works in",
		func(c *Config) any { return &c.Containerd.Namespace }},
	{"containerd.binary", `containerd executable to run, absolute ("" for the containerd next to assayd)`,
		func(c *Config) any { return &c.Containerd.Binary }},
	{"containerd.start_timeout", "longest time assayd's own containerd may take to start serving",
		func(c *Config) any { return &c.Containerd.StartTimeout }},
	{"containerd.watch_images", "scan every image created in the containerd namespace (node mode)",
		func(c *Config) any { return &c.Containerd.WatchImages }},
	{"registries.config_path", "containerd-style hosts directory of registry settings and certificates (absolute; need not exist)",
		func(c *Config) any { return &c.Registries.ConfigPath }},
	{"registries.auth_file", `Docker config.json with registry credentials, absolute ("" for none)`,
		func(c *Config) any { return &c.Registries.AuthFile }},
	{"scan.concurrency", "scans run at once (1-64)",
		func(c *Config) any { return &c.Scan.Concurrency }},
	{"scan.timeout", "longest time one scan may take",
		func(c *Config) any { return &c.Scan.Timeout }},
	{"scan.max_attempts", "times a scan interrupted by a crash is started before it is failed (1-10)",
		func(c *Config) any { return &c.Scan.MaxAttempts }},
	{"scan.max_queued", "most scans waiting for a worker; more are refused (API 429, webhook 503) until the queue drains (1-10000000)",
		func(c *Config) any { return &c.Scan.MaxQueued }},
	{"scan.platforms", "platforms of multi-platform images to scan, like linux/amd64,linux/arm/v7 (none for the host's)",
		func(c *Config) any { return &c.Scan.Platforms }},
	{"limits.max_image_bytes", `largest compressed image to scan, in bytes or like "4GiB"`,
		func(c *Config) any { return &c.Limits.MaxImageBytes }},
	{"limits.max_layers", "most layers an image to scan may have (1-10000)",
		func(c *Config) any { return &c.Limits.MaxLayers }},
	{"limits.max_unpacked_bytes", `largest unpacked image to scan, in bytes or like "16GiB"`,
		func(c *Config) any { return &c.Limits.MaxUnpackedBytes }},
	{"limits.max_entries", "most tar entries (files, directories, links) an image's layers may hold (at least 1)",
		func(c *Config) any { return &c.Limits.MaxEntries }},
	{"limits.max_report_packages", "most packages a report keeps; a larger inventory is stored truncated, with a warning (at least 1)",
		func(c *Config) any { return &c.Limits.MaxReportPackages }},
	{"limits.max_package_locations", "most locations one package of a report keeps (at least 1)",
		func(c *Config) any { return &c.Limits.MaxPackageLocations }},
	{"limits.max_file_bytes", `largest file handed to an extractor, by extractor name, overriding its own cap, like gobinary=1GiB,java=256MiB`,
		func(c *Config) any { return &c.Limits.MaxFileBytes }},
	{"plugins.dir", "directory of analyzer plugins and their <name>.plugin.json manifests (absolute; need not exist while none is enabled)",
		func(c *Config) any { return &c.Plugins.Dir }},
	{"plugins.enabled", "plugins run for each scan, by manifest name, like a,b (none: no analyzer runs and every verdict is incomplete)",
		func(c *Config) any { return &c.Plugins.Enabled }},
	{"sandbox.id_range", "host uids/gids the sandbox user namespaces map to, START:COUNT (START at least 65536)",
		func(c *Config) any { return &c.Sandbox.IDRange }},
	{"sandbox.timeout", "longest time one analyzer run may take (less than --scan.timeout)",
		func(c *Config) any { return &c.Sandbox.Timeout }},
	{"sandbox.memory", `memory limit of one analyzer run, in bytes or like "512MiB" (at least 16MiB)`,
		func(c *Config) any { return &c.Sandbox.Memory }},
	{"sandbox.pids", "most processes and threads in one analyzer run (8-65536)",
		func(c *Config) any { return &c.Sandbox.Pids }},
	{"sandbox.cpu_shares", "CPU weight of one analyzer run, as cgroup v1 cpu.shares (2-262144)",
		func(c *Config) any { return &c.Sandbox.CPUShares }},
	{"sandbox.tmpfs_bytes", `size of the sandbox's /tmp, in bytes or like "16MiB" (1MiB-1GiB)`,
		func(c *Config) any { return &c.Sandbox.TmpfsBytes }},
	{"sandbox.max_result_bytes", `most one analyzer run may send back, in bytes or like "64MiB"`,
		func(c *Config) any { return &c.Sandbox.MaxResultBytes }},
	{"sandbox.start_timeout", "longest time a plugin may take to complete its handshake",
		func(c *Config) any { return &c.Sandbox.StartTimeout }},
	{"sandbox.parallel", "analyzers of one scan run at once, each in its own sandbox (1-16)",
		func(c *Config) any { return &c.Sandbox.Parallel }},
	{"vulndb.sources", "OSV data: http(s) URLs of OSV zip archives or absolute paths of zips, JSON files or directories; {ecosystem} in one stands for each ecosystem the images seen need (Debian, Go, npm...), fetched as they need it; [] for none: only what assay db import brings",
		func(c *Config) any { return &c.VulnDB.Sources }},
	{"vulndb.update_interval", "how often vulndb.sources are fetched, with conditional requests (0: at start only)",
		func(c *Config) any { return &c.VulnDB.UpdateInterval }},
	{"vulndb.timeout", "longest time one source's fetch and import may take",
		func(c *Config) any { return &c.VulnDB.Timeout }},
	{"vulndb.max_archive_bytes", `largest OSV archive fetched or imported, in bytes or like "2GiB"`,
		func(c *Config) any { return &c.VulnDB.MaxArchiveBytes }},
	{"vulndb.max_record_bytes", `largest OSV record accepted, uncompressed, in bytes or like "4MiB"`,
		func(c *Config) any { return &c.VulnDB.MaxRecordBytes }},
	{"vulndb.max_total_bytes", `most uncompressed record bytes one import or update may hold in memory, like "2GiB"`,
		func(c *Config) any { return &c.VulnDB.MaxTotalBytes }},
	{"vulndb.require_coverage", "an image with packages of an ecosystem the database has no advisories for is incomplete, never healthy",
		func(c *Config) any { return &c.VulnDB.RequireCoverage }},
	{"vulndb.allow_http", "fetch plain-http sources off loopback (a redirect from https to http is refused regardless)",
		func(c *Config) any { return &c.VulnDB.AllowHTTP }},
	{"match.os_owned_language_packages", "also match language packages shipped by an OS package (Debian's python3-*) against the language's advisories",
		func(c *Config) any { return &c.Match.OSOwnedLanguagePackages }},
	{"policy.min_severity", `hide findings below this severity: critical, high, medium, low, negligible, unknown ("" hides none)`,
		func(c *Config) any { return &c.Policy.MinSeverity }},
	{"policy.only_fixed", "hide findings that have no fixed version",
		func(c *Config) any { return &c.Policy.OnlyFixed }},
	{"policy.ignore_file", `YAML file of ignore rules (id, package, path, reason, expires), absolute ("" for none)`,
		func(c *Config) any { return &c.Policy.IgnoreFile }},
	{"policy.vex", "OpenVEX documents whose not_affected statements suppress findings, absolute paths",
		func(c *Config) any { return &c.Policy.VEX }},
	{"webhook.listen", `host:port of the registry notification endpoint ("" for none)`,
		func(c *Config) any { return &c.Webhook.Listen }},
	{"webhook.tls_cert_file", "PEM certificate (chain) the webhook endpoint serves TLS with (absolute; with webhook.tls_key_file)",
		func(c *Config) any { return &c.Webhook.TLSCertFile }},
	{"webhook.tls_key_file", "PEM private key of webhook.tls_cert_file (absolute)",
		func(c *Config) any { return &c.Webhook.TLSKeyFile }},
	{"webhook.insecure", "allow plain HTTP on a non-loopback webhook.listen (the token crosses the network in clear)",
		func(c *Config) any { return &c.Webhook.Insecure }},
	{"webhook.token", "secret registry notifications must carry, at least 16 characters (prefer --webhook.token_file)",
		func(c *Config) any { return &c.Webhook.Token }},
	{"webhook.token_file", "file holding the webhook secret instead of --webhook.token (absolute)",
		func(c *Config) any { return &c.Webhook.TokenFile }},
	{"webhook.registries", "registries whose notifications are accepted, as name=address to pull from, like reg.example:5000=127.0.0.1:5000",
		func(c *Config) any { return &c.Webhook.Registries }},
	{"webhook.max_body_bytes", `largest notification body, in bytes or like "1MiB"`,
		func(c *Config) any { return &c.Webhook.MaxBodyBytes }},
	{"log.level", "log level: debug, info, warn or error",
		func(c *Config) any { return &c.Log.Level }},
	{"log.format", "log format: text or json",
		func(c *Config) any { return &c.Log.Format }},
	{"api.max_body_bytes", `largest API request body, in bytes or like "512KiB", "1MiB"`,
		func(c *Config) any { return &c.API.MaxBodyBytes }},
	{"api.event_buffer", "events held for a slow /v1/events client before it is dropped (1-100000)",
		func(c *Config) any { return &c.API.EventBuffer }},
	{"api.listen", "host:port to also serve the /v1 API on over TCP, with bearer tokens (\"\" for the socket only)",
		func(c *Config) any { return &c.API.Listen }},
	{"api.tls_cert_file", "PEM certificate (chain) the TCP API serves TLS with (absolute; with api.tls_key_file)",
		func(c *Config) any { return &c.API.TLSCertFile }},
	{"api.tls_key_file", "PEM private key of api.tls_cert_file (absolute)",
		func(c *Config) any { return &c.API.TLSKeyFile }},
	{"api.insecure", "allow plain HTTP on a non-loopback api.listen (tokens cross the network in clear)",
		func(c *Config) any { return &c.API.Insecure }},
	{"api.tokens_file", "file of API tokens, one a line: ROLE TOKEN [EXPIRES] (absolute)",
		func(c *Config) any { return &c.API.TokensFile }},
	{"harbor.listen", `host:port to serve Harbor's scanner-adapter API v1.2 on, under /api/v1 ("" for none)`,
		func(c *Config) any { return &c.Harbor.Listen }},
	{"harbor.tls_cert_file", "PEM certificate (chain) the Harbor adapter serves TLS with (absolute; with harbor.tls_key_file)",
		func(c *Config) any { return &c.Harbor.TLSCertFile }},
	{"harbor.tls_key_file", "PEM private key of harbor.tls_cert_file (absolute)",
		func(c *Config) any { return &c.Harbor.TLSKeyFile }},
	{"harbor.insecure", "allow plain HTTP on a non-loopback harbor.listen (the secret crosses the network in clear)",
		func(c *Config) any { return &c.Harbor.Insecure }},
	{"harbor.auth", "how Harbor authenticates: bearer, basic or api_key (the X-ScannerAdapter-API-Key header)",
		func(c *Config) any { return &c.Harbor.Auth }},
	{"harbor.secret_file", "file holding Harbor's secret: the token or API key, or user:password for basic (absolute)",
		func(c *Config) any { return &c.Harbor.SecretFile }},
	{"harbor.registries", "registry URLs a scan request may name as registry.url, like http://harbor-core:8080 (plain http is used only for those so listed)",
		func(c *Config) any { return &c.Harbor.Registries }},
	{"notify.webhooks", `receivers of CloudEvents notifications, each {url, secret_file, min_severity, verdict_changed_only, images}; as a flag or in the environment, JSON: [{"url": "https://…", "secret_file": "/…"}]`,
		func(c *Config) any { return &c.Notify.Webhooks }},
	{"notify.max_age", "how long a notification is retried (exponential backoff) before it is dead-lettered",
		func(c *Config) any { return &c.Notify.MaxAge }},
	{"notify.timeout", "longest time one delivery attempt may take",
		func(c *Config) any { return &c.Notify.Timeout }},
	{"store.reports_per_image", "reports kept per image digest, newest first (at least 1)",
		func(c *Config) any { return &c.Store.ReportsPerImage }},
	{"store.scan_retention", "how long finished scan records (and dead-lettered notifications) are kept",
		func(c *Config) any { return &c.Store.ScanRetention }},
	{"shutdown.timeout", "how long SIGTERM waits for running scans before cancelling them",
		func(c *Config) any { return &c.Shutdown.Timeout }},
	{"cache.max_bytes", `largest size of the layer cache, in bytes or like "1GiB"; 0 turns it off`,
		func(c *Config) any { return &c.Cache.MaxBytes }},
	{"cache.max_age", "how long a layer cache entry is kept after it was last used",
		func(c *Config) any { return &c.Cache.MaxAge }},
}

const envPrefix = "ASSAY_"

// env is the environment variable that sets k: ASSAY_SCAN_CONCURRENCY.
func (k key) env() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(k.name, ".", "_"))
}

// get returns k's value in c. A list or a map is a copy, nil if empty.
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
	case *bool:
		return *p
	case *[]string:
		return cloneList(*p)
	case *map[string]string:
		return cloneMap(*p)
	case *[]NotifyWebhook:
		return cloneWebhooks(*p)
	default:
		panic(fmt.Sprintf("config: key %s has a field of unhandled type %T", k.name, p))
	}
}

// set stores v, which parse or get produced for k, in c. An empty list or
// map is stored as nil, so that every Config states "none" the one way
// Default does.
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
	case *bool:
		*p = v.(bool)
	case *[]string:
		*p = cloneList(v.([]string))
	case *map[string]string:
		*p = cloneMap(v.(map[string]string))
	case *[]NotifyWebhook:
		*p = cloneWebhooks(v.([]NotifyWebhook))
	default:
		panic(fmt.Sprintf("config: key %s has a field of unhandled type %T", k.name, p))
	}
}

func cloneList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
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
	case *bool:
		return "true or false"
	case *[]string:
		return "a list of strings"
	case *map[string]string:
		return "a mapping of names to strings"
	case *[]NotifyWebhook:
		return "a list of receivers, each a mapping with url, secret_file, min_severity, verdict_changed_only, images"
	default:
		return "a string"
	}
}

// parse turns text, from the environment, a flag or a quoted string in the
// file, into the type of k's field. A list is written a,b,c and a map
// a=x,b=y; the empty text is the empty list or map.
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
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("must be %s, got %q", k.want(), text)
		}
		return b, nil
	case *[]string:
		return parseList(text), nil
	case *map[string]string:
		return parseMap(text)
	case *[]NotifyWebhook:
		return parseWebhooks(text)
	default:
		return text, nil
	}
}

// parseList splits a,b,c into its items, trimmed of spaces.
func parseList(text string) []string {
	if strings.TrimSpace(text) == "" {
		return []string{}
	}
	items := strings.Split(text, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
	}
	return items
}

// parseMap splits a=x,b=y into its pairs, trimmed of spaces.
func parseMap(text string) (map[string]string, error) {
	m := make(map[string]string)
	if strings.TrimSpace(text) == "" {
		return m, nil
	}
	for pair := range strings.SplitSeq(text, ",") {
		name, value, ok := strings.Cut(pair, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf(`must be name=value pairs separated by commas, like "a=x,b=y"; got %q`, text)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("gives %q twice, in %q", name, text)
		}
		m[name] = value
	}
	return m, nil
}

func bareDuration(v any) error {
	return fmt.Errorf(`a bare number is not a duration, got %v; give a unit, like "10m" or "30s"`, v)
}

// BindFlags registers one flag per key on fs, named like the key
// (--scan.concurrency, --state_dir), with the built-in default shown in the
// help. Only flags given on the command line override other layers; Load
// reads them from LoadOptions.Flags.
//
// A list key's flag takes a,b,c and a map key's a=x,b=y, as the
// environment does; a repeated flag adds to the list or map, and a flag
// given once with an empty value (--scan.platforms=) makes it empty.
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
		case *bool:
			fs.Bool(k.name, *p, k.usage)
		case *[]string:
			fs.StringSlice(k.name, *p, k.usage)
		case *map[string]string:
			fs.Var(&mapFlag{m: cloneMap(*p)}, k.name, k.usage)
		case *[]NotifyWebhook:
			fs.Var(&webhooksFlag{}, k.name, k.usage)
		default:
			panic(fmt.Sprintf("config: key %s has a field of unhandled type %T", k.name, p))
		}
	}
}

// flagValue returns the value of f, a flag BindFlags registered for k, in
// the type of k's field.
func (k key) flagValue(f *pflag.Flag) (any, error) {
	switch k.field(&Config{}).(type) {
	case *[]string:
		// Read as a slice: its text form is quoted CSV in brackets.
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			items := make([]string, 0, len(sv.GetSlice()))
			for _, item := range sv.GetSlice() {
				items = append(items, strings.TrimSpace(item))
			}
			return items, nil
		}
	case *[]NotifyWebhook:
		if wf, ok := f.Value.(*webhooksFlag); ok {
			return cloneWebhooks(wf.list), nil
		}
	case *map[string]string:
		if mf, ok := f.Value.(*mapFlag); ok {
			m := make(map[string]string, len(mf.m))
			maps.Copy(m, mf.m)
			return m, nil
		}
	}
	return k.parse(f.Value.String())
}

// mapFlag is the flag of a map key. It parses its value as the environment
// variable's, so the two take the same text, and keeps it as given. (pflag's
// own StringToString flag mangles values that start with "[" or end with
// "]", like an IPv6 registry name, when read back.)
type mapFlag struct {
	m   map[string]string
	set bool // Set was called: a later Set adds to m
}

func (f *mapFlag) Set(text string) error {
	m, err := parseMap(text)
	if err != nil {
		return err
	}
	if !f.set {
		f.m = m
	} else {
		maps.Copy(f.m, m)
	}
	f.set = true
	return nil
}

// Type names the value in the help as pflag's own map flag does.
func (f *mapFlag) Type() string { return "stringToString" }

// String returns the value as Set takes it: a=x,b=y, sorted by name.
func (f *mapFlag) String() string {
	pairs := make([]string, 0, len(f.m))
	for _, name := range slices.Sorted(maps.Keys(f.m)) {
		pairs = append(pairs, name+"="+f.m[name])
	}
	return strings.Join(pairs, ",")
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

func cloneWebhooks(l []NotifyWebhook) []NotifyWebhook {
	if len(l) == 0 {
		return nil
	}
	out := slices.Clone(l)
	for i := range out {
		out[i].Images = slices.Clone(out[i].Images)
	}
	return out
}

// parseWebhooks reads receivers given as text (the environment, a flag):
// a JSON (or YAML flow) list of receivers, or one receiver; the empty
// text is none. Unknown fields are refused.
func parseWebhooks(text string) ([]NotifyWebhook, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return []NotifyWebhook{}, nil
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil || len(n.Content) == 0 || n.Content[0].Kind == yaml.ScalarNode {
		return nil, fmt.Errorf(`must be JSON like [{"url": "https://…", "secret_file": "/…"}], got %q`, text)
	}
	return fileWebhooks(n.Content[0])
}

// fileWebhooks decodes a YAML list of receivers (or one receiver),
// refusing unknown fields.
func fileWebhooks(n *yaml.Node) ([]NotifyWebhook, error) {
	if n.Kind == yaml.MappingNode {
		n = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{n}}
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("must be a list of receivers, each a mapping with url, secret_file, min_severity, verdict_changed_only, images")
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	out := []NotifyWebhook{}
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("a receiver: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return out, nil
}

// webhooksFlag is the flag of notify.webhooks: each use adds receivers
// (JSON); a use with the empty value makes the list empty.
type webhooksFlag struct {
	list []NotifyWebhook
}

func (f *webhooksFlag) Set(text string) error {
	l, err := parseWebhooks(text)
	if err != nil {
		return err
	}
	if len(l) == 0 {
		f.list = nil
		return nil
	}
	f.list = append(f.list, l...)
	return nil
}

func (f *webhooksFlag) Type() string { return "json" }

func (f *webhooksFlag) String() string {
	if len(f.list) == 0 {
		return ""
	}
	b, _ := json.Marshal(f.list)
	return string(b)
}
