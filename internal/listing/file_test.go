package listing

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fileTree builds a tree under a temp dir from slash-separated file paths.
func fileTree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func listKeys(t *testing.T, l Lister) []string {
	t.Helper()
	var keys []string
	err := l.List(context.Background(), func(o Object) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return keys
}

func TestFileListing(t *testing.T) {
	files := []string{
		"images/a/b", "images/a-c", "images/a+b", "images/a b", "images/a%20b", "images/.x",
		"images/é", "images/😀", "images/\uff01", "images/sub/deep/x", "images/sub-x",
		"images0", "imagesX/y", "images-a", "imagesa/b", "other/images/z", "top",
	}
	root := fileTree(t, files...)
	// Links inside and out of the tree are never followed or listed.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	for name, target := range map[string]string{"images/link-out": outside, "images/link-file": filepath.Join(root, "top"), "images/link-dir": filepath.Join(root, "other")} {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()

	want := func(prefix string) []string {
		var keys []string
		for _, f := range files {
			if rel, ok := strings.CutPrefix(f, prefix); ok && rel != "" {
				keys = append(keys, rel)
			}
		}
		slices.Sort(keys) // byte order
		return keys
	}
	for _, prefix := range []string{"images/", "images", "images/a", "", "imagesX/", "nothing/", "images/sub/deep/x"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			got := listKeys(t, &File{FS: fsys.FS(), Prefix: prefix})
			if w := want(prefix); !slices.Equal(got, w) {
				t.Errorf("got  %q\nwant %q", got, w)
			}
		})
	}
	t.Run("a-c before a/b", func(t *testing.T) {
		got := listKeys(t, &File{FS: fsys.FS(), Prefix: "images/a"})
		if i, j := slices.Index(got, "-c"), slices.Index(got, "/b"); i < 0 || j < 0 || i > j {
			t.Errorf("got %q: want -c before /b (byte order)", got)
		}
	})
	t.Run("etag and size", func(t *testing.T) {
		var got []Object
		(&File{FS: fsys.FS(), Prefix: "top"}).List(context.Background(), func(o Object) error { got = append(got, o); return nil })
		if len(got) != 0 {
			t.Errorf("the prefix itself listed: %+v", got)
		}
		(&File{FS: fsys.FS(), Prefix: ""}).List(context.Background(), func(o Object) error {
			if o.Key == "top" {
				got = append(got, o)
			}
			return nil
		})
		fi, _ := os.Stat(filepath.Join(root, "top"))
		if len(got) != 1 || got[0].Size != 3 || got[0].ETag != FileETag(fi) || !got[0].LastModified.Equal(fi.ModTime()) || got[0].StorageKey != "top" {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("unclean prefix", func(t *testing.T) {
		err := (&File{FS: fsys.FS(), Prefix: "../x/"}).List(context.Background(), func(Object) error { return nil })
		if err == nil {
			t.Error("a prefix with .. listed")
		}
	})
}

func TestFileListingSkipsInvalidUTF8(t *testing.T) {
	root := fileTree(t, "a", "c")
	if err := os.WriteFile(filepath.Join(root, "b\xff"), nil, 0o644); err != nil {
		t.Skip("file system refuses non-UTF-8 names")
	}
	f := &File{FS: os.DirFS(root)}
	if got := listKeys(t, f); !slices.Equal(got, []string{"a", "c"}) || f.Skipped() != 1 {
		t.Errorf("got %q, skipped %d", got, f.Skipped())
	}
}
