package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/testenv"
)

// TestServeAuditOnSIGTERM: `edge serve` with an audit file, many requests,
// then SIGTERM: the process exits 0 and the file holds one record per
// object request (the queue was flushed on the way out), none of which
// holds the token.
func TestServeAuditOnSIGTERM(t *testing.T) {
	auditPath := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	cfg := testConfig + fmt.Sprintf("audit: {file: %q, max_size: 1MiB, max_files: 3}\nlimits: {per_subject: {rate: 1000, burst: 100000}}\n", auditPath)
	p := writeConfig(t, cfg)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	stop, _, stderr := runUntilReady(t, addr, "serve", "-config", p, "-listen", addr)
	_, tok, _ := runCmd(t, "token", "-config", p, "-sub", "auditee", "-grant", "local:", "-grant", "customer-a:")
	tok = strings.TrimSpace(tok)
	client := testenv.LocalhostClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	const n = 400
	for i := range n {
		target := "/v1/s/customer-a/k/" + strconv.Itoa(i) + ".jpg?token=" + tok
		if i%4 == 3 {
			target = "/v1/s/customer-a/k.jpg" // no token: 401, audited too
		}
		resp, err := client.Get("http://" + addr + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Requests that never reach an object route leave no record.
	for _, path := range []string{"/healthz", "/metrics", "/nowhere"} {
		if resp, err := client.Get("http://" + addr + path); err == nil {
			resp.Body.Close()
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM: %s", code, stderr)
	}
	f, err := os.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	statuses := map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			RequestID string `json:"request_id"`
			Subject   string `json:"subject"`
			Status    int    `json:"status"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if ids[rec.RequestID] {
			t.Errorf("request id %s twice", rec.RequestID)
		}
		ids[rec.RequestID] = true
		statuses[rec.Status]++
		if strings.Contains(sc.Text(), tok) {
			t.Fatalf("a record holds the token: %s", sc.Text())
		}
	}
	if len(ids) != n || statuses[302] != n*3/4 || statuses[401] != n/4 {
		t.Errorf("%d records (by status %v), want %d: %d 302, %d 401", len(ids), statuses, n, n*3/4, n/4)
	}
	// `edge presign` with the same config opens no audit trail.
	auditDir := filepath.Dir(auditPath)
	if err := os.RemoveAll(auditDir); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "presign", "-config", p, "customer-a/x.jpg"); code != 0 {
		t.Fatalf("presign: %d %s", code, errOut)
	}
	if _, err := os.Stat(auditDir); !os.IsNotExist(err) {
		t.Errorf("edge presign created the audit directory (%v)", err)
	}
}
