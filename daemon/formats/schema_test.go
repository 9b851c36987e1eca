package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var keep = flag.String("keep", "", "also write every document the tests make into this directory, to look at")

// The official schemas, testdata/schema (README.md there says where each
// comes from). Each is registered under its own id, so that references
// between them resolve to the shipped files; anything else is refused, so
// a compile never reaches the network.
var schemaFiles = map[string][]string{
	SARIF:     {"sarif-schema-2.1.0.json"},
	CycloneDX: {"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"},
	SPDX:      {"spdx-schema.json"},
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not in testdata/schema, and the tests fetch nothing", url)
}

var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	out := map[string]*jsonschema.Schema{}
	for format, files := range schemaFiles {
		c := jsonschema.NewCompiler()
		c.UseLoader(refuseLoader{})
		c.AssertFormat()
		var mainID string
		for i, name := range files {
			f, err := os.Open(filepath.Join("testdata", "schema", name))
			if err != nil {
				return nil, err
			}
			doc, err := jsonschema.UnmarshalJSON(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			id := schemaID(doc)
			if id == "" {
				return nil, fmt.Errorf("%s has no $id", name)
			}
			if err := c.AddResource(id, doc); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if i == 0 {
				mainID = id
			}
		}
		sch, err := c.Compile(mainID)
		if err != nil {
			return nil, fmt.Errorf("compiling the %s schema: %w", format, err)
		}
		out[format] = sch
	}
	return out, nil
})

// schemaID is a schema's $id (draft 6 and later) or id (draft 4: SARIF).
func schemaID(doc any) string {
	m, _ := doc.(map[string]any)
	for _, k := range []string{"$id", "id"} {
		if s, ok := m[k].(string); ok {
			return strings.TrimSuffix(s, "#")
		}
	}
	return ""
}

// validate checks doc against format's official schema.
func validate(t *testing.T, format string, doc []byte) {
	t.Helper()
	if err := validateErr(format, doc); err != nil {
		t.Fatalf("%s output is not valid against its schema: %v", format, err)
	}
}

func validateErr(format string, doc []byte) error {
	schemas, err := compiled()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return schemas[format].Validate(inst)
}

func TestSchemasCompileOffline(t *testing.T) {
	schemas, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{SARIF, CycloneDX, SPDX} {
		if schemas[f] == nil {
			t.Errorf("no schema for %s", f)
		}
	}
}

// TestSchemasRejectInvalidDocuments shows that validation can fail: each
// schema rejects a document that breaks it in one place, with an error
// that points there, and accepts the same document without the break.
func TestSchemasRejectInvalidDocuments(t *testing.T) {
	cases := []struct {
		format, valid, invalid, where string
	}{
		{SARIF,
			`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"assay"}},"results":[{"message":{"text":"x"},"level":"error"}]}]}`,
			`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"assay"}},"results":[{"message":{"text":"x"},"level":"critical"}]}]}`,
			"/runs/0/results/0/level"},
		{CycloneDX,
			`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"x"}]}`,
			`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"nonsense","name":"x"}]}`,
			"/components/0/type"},
		// The signature definition lives in jsf-0.82.schema.json: an
		// invalid signature shows that reference resolves and is enforced.
		{CycloneDX,
			`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"signature":{"algorithm":"ES256","value":"abc"}}`,
			`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"signature":{"algorithm":"ES256"}}`,
			"/signature"},
		// License ids come from spdx.schema.json.
		{CycloneDX,
			`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"x","licenses":[{"license":{"id":"MIT"}}]}]}`,
			`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"x","licenses":[{"license":{"id":"Not-A-License"}}]}]}`,
			"/components/0/licenses/0"},
		{SPDX,
			`{"SPDXID":"SPDXRef-DOCUMENT","spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","name":"x","documentNamespace":"https://assay.invalid/x","creationInfo":{"created":"2026-11-27T12:00:00Z","creators":["Tool: assay"]},"packages":[{"SPDXID":"SPDXRef-P","name":"p","downloadLocation":"NOASSERTION"}]}`,
			`{"SPDXID":"SPDXRef-DOCUMENT","spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","name":"x","documentNamespace":"https://assay.invalid/x","creationInfo":{"created":"2026-11-27T12:00:00Z","creators":["Tool: assay"]},"packages":[{"SPDXID":"SPDXRef-P","name":"p"}]}`,
			"/packages/0"},
	}
	for _, c := range cases {
		t.Run(c.format+c.where, func(t *testing.T) {
			if err := validateErr(c.format, []byte(c.valid)); err != nil {
				t.Fatalf("the valid document is rejected: %v", err)
			}
			err := validateErr(c.format, []byte(c.invalid))
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("the invalid document is accepted (err %v)", err)
			}
			if !strings.Contains(fmt.Sprintf("%#v", ve), c.where) && !strings.Contains(ve.Error(), c.where) {
				t.Errorf("the error does not point at %s:\n%v", c.where, ve)
			}
		})
	}
}

// TestSchemasRejectBrokenOutput breaks a real output of each writer in
// one place and checks that validation now fails: the checks that pass on
// the writers' documents are not vacuous.
func TestSchemasRejectBrokenOutput(t *testing.T) {
	r := unhealthyReport(t)
	cases := []struct {
		format  string
		breakIt func(doc map[string]any)
	}{
		{SARIF, func(doc map[string]any) {
			run := doc["runs"].([]any)[0].(map[string]any)
			run["results"].([]any)[0].(map[string]any)["level"] = "critical"
		}},
		{SARIF, func(doc map[string]any) {
			run := doc["runs"].([]any)[0].(map[string]any)
			res := run["results"].([]any)[2].(map[string]any)
			res["suppressions"].([]any)[0].(map[string]any)["kind"] = "policy"
		}},
		{CycloneDX, func(doc map[string]any) {
			v := doc["vulnerabilities"].([]any)[0].(map[string]any)
			v["ratings"].([]any)[0].(map[string]any)["severity"] = "severe"
		}},
		{CycloneDX, func(doc map[string]any) {
			v := doc["vulnerabilities"].([]any)[2].(map[string]any)
			v["analysis"].(map[string]any)["justification"] = "vulnerable_code_not_in_execute_path" // OpenVEX's word, not CycloneDX's
		}},
		{CycloneDX, func(doc map[string]any) {
			delete(doc["components"].([]any)[0].(map[string]any), "name")
		}},
		{SPDX, func(doc map[string]any) {
			doc["relationships"].([]any)[1].(map[string]any)["relationshipType"] = "OWNS"
		}},
		{SPDX, func(doc map[string]any) {
			delete(doc["packages"].([]any)[1].(map[string]any), "downloadLocation")
		}},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s-%d", c.format, i), func(t *testing.T) {
			out := write(t, c.format, r)
			validate(t, c.format, out)
			var doc map[string]any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			c.breakIt(doc)
			broken, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var ve *jsonschema.ValidationError
			if err := validateErr(c.format, broken); !errors.As(err, &ve) {
				t.Fatalf("the broken %s document is accepted (err %v)", c.format, err)
			}
		})
	}
}
