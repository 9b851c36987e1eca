package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadIgnoreFile reads policy.ignore_file: a YAML list of ignore rules (or
// a mapping with an "ignore" list), strictly: unknown fields are errors.
func LoadIgnoreFile(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m, ok := doc.(map[string]any); ok {
		if len(m) != 1 || m["ignore"] == nil {
			return nil, fmt.Errorf("%s: want a list of rules, or a mapping with only an ignore: list", path)
		}
		doc = m["ignore"]
	}
	if doc == nil {
		return nil, nil
	}
	// YAML dates (expires: 2026-12-31) decode as time.Time; rules take the
	// date or RFC 3339 text.
	if list, ok := doc.([]any); ok {
		for _, it := range list {
			if m, ok := it.(map[string]any); ok {
				if t, ok := m["expires"].(time.Time); ok {
					m["expires"] = t.Format(time.RFC3339)
				}
			}
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rules []Rule
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("%s: want a list of rules with id, package, path, reason, expires: %w", path, err)
	}
	return rules, nil
}
