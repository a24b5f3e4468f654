package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite README.md's policy blocks from `edge policy` (TestReadmePolicyDocuments)")

const readmePath = "../../README.md"

// readmeMarker precedes every policy or CORS document of the README:
// <!-- edge policy SOURCE KIND -->, then a ```json block.
var readmeMarker = regexp.MustCompile("(?m)^<!-- edge policy ([a-z0-9-]+) ([a-z_]+) -->\n```json\n")

// TestReadmePolicyDocuments requires every document block of the README's
// "Bucket-side setup" to be exactly what `edge policy -json -config
// testdata/readme.yaml SOURCE` prints for its kind (pretty-printed as the
// command prints it), and every ```json block of that section to carry a
// marker. -update-readme rewrites the blocks.
func TestReadmePolicyDocuments(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	docs := map[string]map[string]string{} // source -> kind -> document
	policyDocs := func(source string) map[string]string {
		if d, ok := docs[source]; ok {
			return d
		}
		code, out, errOut := runCmd(t, "policy", "-json", "-config", "testdata/readme.yaml", source)
		if code != 0 {
			t.Fatalf("edge policy %s: exit %d: %s", source, code, errOut)
		}
		var res struct {
			Documents []struct {
				Kind string          `json:"kind"`
				JSON json.RawMessage `json:"json"`
			} `json:"documents"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("edge policy %s: %v", source, err)
		}
		d := map[string]string{}
		for _, doc := range res.Documents {
			var c, b bytes.Buffer
			if err := json.Compact(&c, doc.JSON); err != nil {
				t.Fatal(err)
			}
			if err := json.Indent(&b, c.Bytes(), "", "  "); err != nil {
				t.Fatal(err)
			}
			d[doc.Kind] = b.String() + "\n"
		}
		docs[source] = d
		return d
	}

	// Every ```json block of the section is a marked policy document.
	start := strings.Index(readme, "\n## Bucket-side setup\n")
	if start < 0 {
		t.Fatal(`README has no "## Bucket-side setup" section`)
	}
	end := strings.Index(readme[start+1:], "\n## ")
	if end < 0 {
		end = len(readme)
	} else {
		end += start + 1
	}
	section := readme[start:end]
	if blocks, marked := strings.Count(section, "\n```json\n"), len(readmeMarker.FindAllStringIndex(section, -1)); blocks != marked {
		t.Errorf("Bucket-side setup has %d ```json blocks but %d <!-- edge policy SOURCE KIND --> markers right above one: every document there must come from edge policy", blocks, marked)
	}

	var out strings.Builder
	last, kinds := 0, map[string]bool{}
	for _, m := range readmeMarker.FindAllStringSubmatchIndex(readme, -1) {
		source, kind := readme[m[2]:m[3]], readme[m[4]:m[5]]
		bodyStart := m[1]
		bodyLen := strings.Index(readme[bodyStart:], "```\n")
		if bodyLen < 0 {
			t.Fatalf("marker %s %s: unterminated block", source, kind)
		}
		got := readme[bodyStart : bodyStart+bodyLen]
		want, ok := policyDocs(source)[kind]
		kinds[kind] = true
		switch {
		case !ok:
			t.Errorf("marker %s %s: edge policy %s prints no %s document", source, kind, source, kind)
		case got != want && !*updateReadme:
			t.Errorf("README block %s %s differs from `edge policy -json -config cmd/edge/testdata/readme.yaml %s` (go test -run TestReadmePolicyDocuments ./cmd/edge/ -update-readme rewrites it)\nREADME:\n%s\nedge policy:\n%s", source, kind, source, got, want)
		}
		if ok {
			out.WriteString(readme[last:bodyStart])
			out.WriteString(want)
			last = bodyStart + bodyLen
		}
	}
	out.WriteString(readme[last:])
	for _, k := range []string{"aws_trust_policy", "aws_permission_policy", "aws_bucket_policy", "aws_cors", "gcs_iam", "gcs_cors", "azure_roles", "azure_cors"} {
		if !kinds[k] {
			t.Errorf("README shows no %s document (no <!-- edge policy SOURCE %s --> marker)", k, k)
		}
	}
	if *updateReadme && out.String() != readme {
		if err := os.WriteFile(readmePath, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md rewritten")
	}
}
