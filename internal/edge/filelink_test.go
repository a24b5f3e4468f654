package edge

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestFileSymlinks: a file source serves exactly the file a key names. A
// token granted cats/ cannot read dogs/ through a link under cats/, and a
// link out of the root is 404 object_not_found (it was 502 storage_error).
// With follow_symlinks a link whose target stays under the source prefix
// is served. The link shapes are covered in internal/signer.
func TestFileSymlinks(t *testing.T) {
	cfg := baseConfig(t)
	root := cfg.Sources[2].Root
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("outside the root"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"files/cats/to-dogs":   "../dogs",
		"files/cats/same.jpg":  "1.jpg",
		"files/cats/away.txt":  filepath.Join(outside, "secret.txt"),
		"files/cats/up.txt":    "../../../outside.txt",
		"files/cats/ghost.jpg": "nowhere.jpg",
	} {
		p := filepath.Join(root, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "files", "dogs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "files", "dogs", "1.jpg"), []byte("a dog"), 0o644); err != nil {
		t.Fatal(err)
	}
	follow := fileSource("follow", root, "files/", ModeStream)
	follow.FollowSymlinks = true
	cfg.Sources = append(cfg.Sources, follow)
	e := newEnv(t, cfg)
	tok := signHS(t, claims(grant("local", "cats/"), grant("local-r", "cats/"), grant("follow", "cats/")))

	for _, key := range []string{"cats/to-dogs/1.jpg", "cats/same.jpg", "cats/away.txt", "cats/up.txt", "cats/ghost.jpg"} {
		t.Run("stream "+key, func(t *testing.T) {
			wantError(t, e.get("/v1/s/local/"+key+"?token="+tok), http.StatusNotFound, "object_not_found")
		})
		t.Run("redirect "+key, func(t *testing.T) {
			w := e.get("/v1/s/local-r/" + key + "?token=" + tok)
			loc, _ := wantRedirect(t, w, t0)
			wantError(t, e.get(loc), http.StatusNotFound, "object_not_found")
		})
	}
	t.Run("follow_symlinks", func(t *testing.T) {
		for key, want := range map[string]int{
			"cats/same.jpg":      http.StatusOK,
			"cats/to-dogs/1.jpg": http.StatusOK, // under the source prefix: the operator's choice
			"cats/away.txt":      http.StatusNotFound,
			"cats/up.txt":        http.StatusNotFound,
			"cats/ghost.jpg":     http.StatusNotFound,
		} {
			if w := e.get("/v1/s/follow/" + key + "?token=" + tok); w.Code != want {
				t.Errorf("%s: %d %s, want %d", key, w.Code, w.Body, want)
			}
		}
	})
}
