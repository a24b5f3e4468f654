package signer

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestFileDirEntryInfo: a directory opened beneath the root names its
// entries relative to the root; Info must describe the file under the
// root, not the same-named path under the working directory.
func TestFileDirEntryInfo(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sub", "a.jpg"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A decoy of another size at the same relative path under the cwd.
	cwd := t.TempDir()
	t.Chdir(cwd)
	if err := os.MkdirAll("sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("sub", "a.jpg"), make([]byte, 40), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(Config{Provider: ProviderFile, Root: root}, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ents, err := fs.ReadDir(f, "sub")
	if err != nil || len(ents) != 1 {
		t.Fatalf("ReadDir: %v, %d entries", err, len(ents))
	}
	info, err := ents[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Size(), int64(5); got != want {
		t.Errorf("Info().Size() = %d, want %d (the file under the root)", got, want)
	}
}
