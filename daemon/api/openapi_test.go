package api

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/assayhq/assay/daemon/formats"
	"github.com/assayhq/assay/daemon/policy"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
	"github.com/assayhq/assay/daemon/vulndb"
)

// TestOpenAPIMatchesRoutes keeps docs/openapi.yaml and the handler table
// from drifting: every route is documented, and nothing else is.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node      `yaml:"paths"`
		Comps   map[string]map[string]map[string]any `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for key := range item {
			switch key {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented = append(documented, strings.ToUpper(key)+" "+path)
			}
		}
	}
	var served []string
	for _, r := range routes {
		served = append(served, r.method+" "+r.path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("docs/openapi.yaml documents %s, which is not served", d)
		}
	}
	for _, name := range []string{"Scan", "Report", "Event", "Error"} {
		if _, ok := doc.Comps["schemas"][name]; !ok {
			t.Errorf("components.schemas.%s missing", name)
		}
	}
}

// TestOpenAPISchemasMatchTypes checks that each documented schema has
// exactly the JSON fields of the Go type it describes.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"Scan":           scans.Scan{},
		"Event":          scans.Event{},
		"ErrorBody":      scans.ErrorBody{},
		"Error":          errorResponse{},
		"Report":         report.Report{},
		"Summary":        report.Summary{},
		"Layer":          report.Layer{},
		"Package":        report.Package{},
		"Finding":        report.Finding{},
		"Analyzer":       report.Analyzer{},
		"Warning":        report.Warning{},
		"Health":         healthResponse{},
		"Policy":         policy.Policy{},
		"DBInfo":         vulndb.Info{},
		"CacheInfo":      cacheResponse{},
		"ImportResult":   vulndb.ImportResult{},
		"PackageHit":     store.PackageHit{},
		"VulnHit":        store.VulnHit{},
		"PackageRef":     report.PackageRef{},
		"Suppression":    report.Suppression{},
		"Recommendation": report.Recommendation{},
	} {
		var want []string
		var fields func(rt reflect.Type)
		fields = func(rt reflect.Type) {
			for i := range rt.NumField() {
				f := rt.Field(i)
				tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
					fields(f.Type) // embedded: its fields are the object's
					continue
				}
				if tag != "" && tag != "-" {
					want = append(want, tag)
				}
			}
		}
		fields(reflect.TypeOf(v))
		var got []string
		for p := range doc.Components.Schemas[name].Properties {
			got = append(got, p)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("schema %s has properties %v, Go type %T has %v", name, got, v, want)
		}
	}
}

// The format enums of docs/openapi.yaml are formats.All's names: one
// table of report formats.
func TestOpenAPIFormatsMatchTheTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	found := 0
	for path, ops := range doc.Paths {
		for op, node := range ops {
			if op == "parameters" {
				continue
			}
			var o struct {
				Parameters []struct {
					Name   string `yaml:"name"`
					Schema struct {
						Enum []string `yaml:"enum"`
					} `yaml:"schema"`
				} `yaml:"parameters"`
			}
			if err := node.Decode(&o); err != nil {
				t.Fatalf("%s %s: %v", op, path, err)
			}
			for _, p := range o.Parameters {
				if p.Name != "format" {
					continue
				}
				found++
				if !slices.Equal(p.Schema.Enum, formats.Names()) {
					t.Errorf("%s %s: format enum %v, want %v (daemon/formats.All)", op, path, p.Schema.Enum, formats.Names())
				}
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d format parameters in docs/openapi.yaml, want those of both report routes", found)
	}
}
