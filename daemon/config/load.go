package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// LoadOptions says where Load finds each layer.
type LoadOptions struct {
	// File is the YAML file; "" means DefaultPath.
	File string
	// FileRequired is true when the user named the file: a missing file is
	// then an error. Otherwise a missing file means no file layer.
	FileRequired bool
	// Flags, if not nil, is the parsed flag set BindFlags registered on.
	// Only flags that were given override.
	Flags *pflag.FlagSet
	// Environ is the environment, like os.Environ(). The process
	// environment is never read.
	Environ []string
}

// Load merges defaults, file, environment and flags (see the package
// comment for their order), then validates the result. The warnings name
// ASSAY_ variables that match no key. On error the Config is nil; the
// error joins every problem found, one line each.
func Load(opts LoadOptions) (*Config, []string, error) {
	l := &loader{v: viper.New(), from: make(map[string]string)}
	def := Default()
	for _, k := range keys {
		l.v.SetDefault(k.name, k.get(&def))
	}

	file := opts.File
	if file == "" {
		file = DefaultPath
	}
	if err := l.readFile(file, opts.FileRequired); err != nil {
		return nil, nil, err
	}
	warnings, err := l.readEnv(opts.Environ)
	if err != nil {
		return nil, nil, err
	}
	if opts.Flags != nil {
		l.readFlags(opts.Flags)
	}

	var c Config
	for _, k := range keys {
		k.set(&c, l.v.Get(k.name))
	}

	// A key whose value could not be read holds something else now; its
	// validation error would only confuse.
	unread := make(map[string]bool)
	for _, e := range l.errs {
		unread[e.key] = true
	}
	errs := l.errs
	for _, e := range c.validate() {
		if !unread[e.key] {
			e.from = l.from[e.key]
			errs = append(errs, e)
		}
	}
	if err := joinKeyErrors(errs); err != nil {
		return nil, warnings, err
	}
	// After validating, whose messages show values as they were given.
	c.normalize()
	return &c, warnings, nil
}

// ValidateFile loads path alone, over the defaults but without environment
// or flags, and validates it: for checking a file before installing it.
func ValidateFile(path string) error {
	_, _, err := Load(LoadOptions{File: path, FileRequired: true})
	return err
}

// loader holds one Load's state. viper keeps the layers: defaults, then the
// file and the environment merged over it into the config layer, then flags
// as overrides. Every value given to viper has already been parsed into its
// field's type, so reading it back cannot fail.
type loader struct {
	v    *viper.Viper
	from map[string]string // key -> where its value came from, for messages
	errs []*keyError
}

func (l *loader) fail(k, from string, err error) {
	l.errs = append(l.errs, &keyError{key: k, msg: err.Error(), from: from})
}

var (
	byName = make(map[string]key)
	byEnv  = make(map[string]key)
	// sections maps a section name to its keys' names within it.
	sections = make(map[string][]string)
)

func init() {
	for _, k := range keys {
		byName[k.name] = k
		byEnv[k.env()] = k
		if section, name, ok := strings.Cut(k.name, "."); ok {
			sections[section] = append(sections[section], name)
		}
	}
}

func (l *loader) readFile(path string, required bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: reading config file: %w", err)
	}
	values, err := l.parseFile(path, data)
	if err != nil {
		return err
	}
	return l.v.MergeConfigMap(values)
}

// parseFile reads the YAML in data. It returns the values it sets, nested
// by section as viper takes them, and records every unknown key and bad
// value in l.errs. Only a YAML syntax error is returned.
func (l *loader) parseFile(path string, data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	values := make(map[string]any)
	if len(doc.Content) == 0 {
		return values, nil // empty, or only comments
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return values, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: %s: line %d: must be a mapping of sections and keys, got %s",
			path, root.Line, describe(root))
	}
	at := func(n *yaml.Node) string { return fmt.Sprintf("in %s line %d", path, n.Line) }

	seen := make(map[string]int) // key -> line, to catch duplicates
	once := func(name string, n *yaml.Node) bool {
		if line, dup := seen[name]; dup {
			l.fail(name, at(n), fmt.Errorf("set twice, first on line %d", line))
			return false
		}
		seen[name] = n.Line
		return true
	}
	unknown := func(name, what string, n *yaml.Node) {
		msg := "unknown " + what
		if near := suggest(name); near != "" {
			msg += fmt.Sprintf("; did you mean %s?", near)
		}
		l.fail(name, at(n), errors.New(msg))
	}
	leaf := func(parent map[string]any, k key, name string, kn, vn *yaml.Node) {
		if !once(k.name, kn) {
			return
		}
		v, err := fileValue(k, vn)
		if err != nil {
			l.fail(k.name, at(vn), err)
			return
		}
		parent[name] = v
		l.from[k.name] = at(vn)
	}

	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], deref(root.Content[i+1])
		name := kn.Value
		if k, ok := byName[name]; ok {
			leaf(values, k, name, kn, vn)
			continue
		}
		names, ok := sections[name]
		if !ok {
			if vn.Kind == yaml.MappingNode {
				unknown(name, "section", kn)
			} else {
				unknown(name, "key", kn)
			}
			continue
		}
		if !once(name, kn) {
			continue
		}
		if vn.Kind != yaml.MappingNode {
			l.fail(name, at(vn), fmt.Errorf("must be a section of keys (%s), got %s",
				strings.Join(names, ", "), describe(vn)))
			continue
		}
		section := make(map[string]any)
		for j := 0; j+1 < len(vn.Content); j += 2 {
			ckn, cvn := vn.Content[j], deref(vn.Content[j+1])
			full := name + "." + ckn.Value
			if k, ok := byName[full]; ok {
				leaf(section, k, ckn.Value, ckn, cvn)
			} else {
				unknown(full, "key", ckn)
			}
		}
		values[name] = section
	}
	return values, nil
}

// fileValue converts a YAML value into the type of k's field. YAML types
// are taken into account: a bare 5 is not a duration, and the literal text
// of a scalar is kept for a string key, so that socket.mode 0660 unquoted
// means "0660".
func fileValue(k key, n *yaml.Node) (any, error) {
	switch k.field(&Config{}).(type) {
	case *[]string:
		return fileList(k, n)
	case *map[string]string:
		return fileMap(k, n)
	case *[]NotifyWebhook:
		if n.Tag == "!!null" {
			return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
		}
		return fileWebhooks(n)
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
	}
	if n.Tag == "!!str" {
		return k.parse(n.Value)
	}
	switch k.field(&Config{}).(type) {
	case *string:
		return n.Value, nil
	case *int:
		var v int
		if n.Tag != "!!int" || n.Decode(&v) != nil {
			return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
		}
		return v, nil
	case *int64:
		var v int64
		if n.Tag != "!!int" || n.Decode(&v) != nil {
			return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
		}
		return v, nil
	case *time.Duration:
		if n.Tag == "!!int" || n.Tag == "!!float" {
			return nil, bareDuration(n.Value)
		}
		return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
	case *bool:
		var v bool
		if n.Tag != "!!bool" || n.Decode(&v) != nil {
			return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
		}
		return v, nil
	}
	return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
}

// fileList reads a list key's value: a YAML sequence of strings, the
// literal text of each item kept. A lone string is refused rather than
// taken as a list of one: it may well be the environment's a,b form.
func fileList(k key, n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return nil, fmt.Errorf("must be a list, even of one item: write [%s], not %s",
			strings.Join(parseList(n.Value), ", "), describe(n))
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("must be %s, got %s", k.want(), describe(n))
	}
	items := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			return nil, fmt.Errorf("item %d, on line %d, must be a string, got %s", i+1, item.Line, describe(item))
		}
		items = append(items, item.Value)
	}
	return items, nil
}

// fileMap reads a map key's value: a YAML mapping of strings to strings,
// the literal text of each kept.
func fileMap(k key, n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("must be %s, one \"name: value\" per line, got %s", k.want(), describe(n))
	}
	m := make(map[string]string, len(n.Content)/2)
	lines := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := deref(n.Content[i]), deref(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode || kn.Tag == "!!null" {
			return nil, fmt.Errorf("line %d: a name must be a string, got %s", kn.Line, describe(kn))
		}
		if vn.Kind != yaml.ScalarNode || vn.Tag == "!!null" {
			return nil, fmt.Errorf("line %d: the value of %q must be a string, got %s", vn.Line, kn.Value, describe(vn))
		}
		if line, dup := lines[kn.Value]; dup {
			return nil, fmt.Errorf("%q is set twice, on lines %d and %d", kn.Value, line, kn.Line)
		}
		lines[kn.Value] = kn.Line
		m[kn.Value] = vn.Value
	}
	return m, nil
}

// describe names a YAML value for messages.
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Tag == "!!null":
		return "no value (to use the default, leave the key out)"
	default:
		return strconv.Quote(n.Value)
	}
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// suggest returns the key or section that an unknown name in the file
// probably meant: one a typo away, or a key put outside its section.
func suggest(name string) string {
	names := make([]string, 0, len(keys)+len(sections))
	for _, k := range keys {
		names = append(names, k.name)
	}
	for s := range sections {
		names = append(names, s)
	}
	if near := closest(name, names); near != "" {
		return near
	}
	for _, k := range keys {
		if strings.HasSuffix(k.name, "."+name) {
			return k.name
		}
	}
	return ""
}

// readEnv merges the ASSAY_ variables of environ over the file and returns
// a warning for each that matches no key.
func (l *loader) readEnv(environ []string) ([]string, error) {
	// Later entries win, as in exec.Cmd.Env.
	last := make(map[string]string)
	var order []string
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if _, dup := last[name]; !dup {
			order = append(order, name)
		}
		last[name] = val
	}

	var warnings []string
	values := make(map[string]any)
	for _, name := range order {
		// ASSAY_SOCKET is the CLI's; ASSAY_TEST_* belong to the tests.
		if name == "ASSAY_SOCKET" || strings.HasPrefix(name, "ASSAY_TEST_") {
			continue
		}
		k, ok := byEnv[name]
		if !ok {
			w := fmt.Sprintf("config: environment variable %s matches no setting and is ignored", name)
			if near := closest(name, envNames()); near != "" {
				w += fmt.Sprintf("; did you mean %s?", near)
			}
			warnings = append(warnings, w)
			continue
		}
		from := "from " + name
		v, err := k.parse(last[name])
		if err != nil {
			l.fail(k.name, from, err)
			continue
		}
		setNested(values, k.name, v)
		l.from[k.name] = from
	}
	// Merged into the config layer after the file, so over it.
	return warnings, l.v.MergeConfigMap(values)
}

func envNames() []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.env()
	}
	return names
}

func setNested(m map[string]any, name string, v any) {
	section, leaf, ok := strings.Cut(name, ".")
	if !ok {
		m[name] = v
		return
	}
	sub, _ := m[section].(map[string]any)
	if sub == nil {
		sub = make(map[string]any)
		m[section] = sub
	}
	sub[leaf] = v
}

// readFlags sets, as viper overrides, the flags of fs that were given.
func (l *loader) readFlags(fs *pflag.FlagSet) {
	fs.Visit(func(f *pflag.Flag) {
		k, ok := byName[f.Name]
		if !ok {
			return // --config and other flags of the caller
		}
		from := "from --" + f.Name
		v, err := k.flagValue(f)
		if err != nil {
			l.fail(k.name, from, err)
			return
		}
		l.v.Set(k.name, v)
		l.from[k.name] = from
	})
}

// redacted stands in YAML for the value of a key in secretKeys.
const redacted = "<redacted>"

// secretKeys are the keys whose values YAML does not show.
var secretKeys = map[string]bool{"webhook.token": true}

// YAML returns c as a config file would state it: the same sections and
// keys in the same order, durations like "10m0s", the mode like "0660",
// sizes in bytes, lists as sequences and maps as mappings sorted by name.
// webhook.token, when set, is shown as "<redacted>", which is too short to
// be read back as a token.
func (c *Config) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	sectionNodes := make(map[string]*yaml.Node)
	for _, k := range keys {
		parent, name := root, k.name
		if section, leaf, ok := strings.Cut(k.name, "."); ok {
			parent, name = sectionNodes[section], leaf
			if parent == nil {
				parent = &yaml.Node{Kind: yaml.MappingNode}
				sectionNodes[section] = parent
				root.Content = append(root.Content, scalar("!!str", section), parent)
			}
		}
		var value *yaml.Node
		switch v := k.get(c).(type) {
		case string:
			value = scalar("!!str", v)
		case int:
			value = scalar("!!int", strconv.Itoa(v))
		case int64:
			value = scalar("!!int", strconv.FormatInt(v, 10))
		case time.Duration:
			value = scalar("!!str", v.String())
		case bool:
			value = scalar("!!bool", strconv.FormatBool(v))
		case []string:
			value = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for _, item := range v {
				value.Content = append(value.Content, scalar("!!str", item))
			}
		case map[string]string:
			value = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for _, name := range slices.Sorted(maps.Keys(v)) {
				value.Content = append(value.Content, scalar("!!str", name), scalar("!!str", v[name]))
			}
		case []NotifyWebhook:
			value = &yaml.Node{}
			if err := value.Encode(v); err != nil {
				return nil, fmt.Errorf("config: encoding %s: %w", k.name, err)
			}
			if len(v) == 0 {
				value = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			}
		}
		if len(value.Content) == 0 && value.Kind != yaml.ScalarNode {
			value.Style = yaml.FlowStyle // [] or {}
		}
		if secretKeys[k.name] && value.Value != "" {
			value = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: redacted, Style: yaml.DoubleQuotedStyle}
		}
		parent.Content = append(parent.Content, scalar("!!str", name), value)
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("config: encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}
