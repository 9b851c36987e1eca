package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	rules, err := LoadIgnoreFile(write("list.yaml", "- id: CVE-2023-4039\n  reason: not reachable\n  expires: 2026-12-31\n- package: apt\n  reason: build only\n"))
	if err != nil || len(rules) != 2 || rules[0].ID != "CVE-2023-4039" || rules[0].Expires == nil || rules[1].Package != "apt" {
		t.Fatalf("a list: %+v, %v", rules, err)
	}
	if rules, err := LoadIgnoreFile(write("map.yaml", "ignore:\n  - path: /opt/**\n    reason: vendored\n")); err != nil || len(rules) != 1 || rules[0].Path != "/opt/**" {
		t.Errorf("a mapping with ignore: %+v, %v", rules, err)
	}
	if rules, err := LoadIgnoreFile(write("empty.yaml", "")); err != nil || len(rules) != 0 {
		t.Errorf("an empty file: %+v, %v", rules, err)
	}
	for name, body := range map[string]string{
		"unknown field": "- id: CVE-1\n  reasn: typo\n",
		"other key":     "rules:\n  - id: CVE-1\n",
		"not yaml":      "- id: [unclosed\n",
	} {
		if _, err := LoadIgnoreFile(write(strings.ReplaceAll(name, " ", "-")+".yaml", body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := LoadIgnoreFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file: no error")
	}
}
