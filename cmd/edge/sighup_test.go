package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/testenv"
)

const addedSource = `  - name: added
    provider: s3
    bucket: added-bucket
    region: eu-west-1
    credentials: {type: static, access_key_id: AKIDEXAMPLE, secret_access_key: "wJalrXUtnFEMI"}
`

// TestServeSIGHUP: SIGHUP reloads the whole file; a broken file leaves the
// running config in force and the log names every problem, no value.
func TestServeSIGHUP(t *testing.T) {
	cfg := strings.Replace(testConfig, "log: {level: error}", "log: {level: info, unbuffered: true}", 1)
	p := writeConfig(t, cfg)
	body, _ := os.ReadFile(p)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	stop, _, stderr := runUntilReady(t, addr, "serve", "-config", p, "-listen", addr)
	_, tok, _ := runCmd(t, "token", "-config", p, "-sub", "x", "-grant", "added:")
	tok = strings.TrimSpace(tok)
	client := testenv.LocalhostClient()
	status := func() int {
		resp, err := client.Get("http://" + addr + "/v1/s/added/k.jpg?token=" + tok)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := status(); c != http.StatusNotFound {
		t.Fatalf("before the reload: %d", c)
	}
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(p, append(body, []byte(addedSource)...), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	deadline := time.Now().Add(2 * time.Second)
	for status() != http.StatusFound {
		if time.Now().After(deadline) {
			t.Fatalf("the added source is not served 2 s after SIGHUP: %s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Broken: an unknown key holding a secret-looking value.
	if err := os.WriteFile(p, []byte("auth: {keys: []}\nsourcez: hup-secret-value-42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	deadline = time.Now().Add(2 * time.Second)
	for !strings.Contains(stderr.String(), "config reload refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged: %s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := status(); c != http.StatusFound {
		t.Errorf("after a refused reload: %d", c)
	}
	log := stderr.String()
	if !strings.Contains(log, "sourcez") || !strings.Contains(log, "auth.keys") {
		t.Errorf("the refusal does not name the keys: %s", log)
	}
	if strings.Contains(log, "hup-secret-value-42") {
		t.Errorf("the log echoes a value")
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
