package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// Azurite's development account and its well-known key (published in
// Azurite's documentation; it is not a secret).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite blob service holding only the development
// account, in memory.
type Azurite struct {
	Endpoint string // "http://127.0.0.1:PORT/devstoreaccount1"
	Account  string // "devstoreaccount1"
	Key      string // the account's well-known base64 key
}

// StartAzurite starts a fresh in-memory Azurite blob service on a free
// loopback port, with node from PATH. It runs with --skipApiVersionCheck,
// because the azblob SDK sends an x-ms-version newer than Azurite knows. The
// server is stopped by its PID in tb.Cleanup.
func StartAzurite(tb testing.TB) *Azurite {
	tb.Helper()
	mainJS := Tool(tb, "azurite")
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("%s", errf("azurite needs node on PATH (Node 20): %v", err))
	}
	dir := tb.TempDir()
	spec := serverSpec{
		name: "azurite",
		argv: func(port int) []string {
			return []string{node, mainJS,
				"--blobHost", "127.0.0.1",
				"--blobPort", strconv.Itoa(port),
				"--inMemoryPersistence",
				"--disableTelemetry",
				"--silent",
				"--skipApiVersionCheck",
			}
		},
		// --location cannot be combined with --inMemoryPersistence; the
		// working directory catches anything Azurite writes anyway.
		dir: dir,
		// Node needs about 2 s to load Azurite on an idle machine; much
		// more when go test -race runs packages in parallel on 2 cores.
		startTimeout: 90 * time.Second,
		ready: func(_ context.Context, port int, log []byte) error {
			// Azurite prints this line only after its own listen succeeded,
			// so a stale server on the port cannot fake it.
			want := fmt.Sprintf("successfully listens on http://127.0.0.1:%d", port)
			if !bytes.Contains(log, []byte(want)) {
				return errors.New("no \"" + want + "\" line yet")
			}
			return nil
		},
	}
	_, port := startServer(tb, spec)
	return &Azurite{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, azuriteAccount),
		Account:  azuriteAccount,
		Key:      azuriteKey,
	}
}

func (a *Azurite) client(tb testing.TB) *azblob.Client {
	tb.Helper()
	cred, err := azblob.NewSharedKeyCredential(a.Account, a.Key)
	if err != nil {
		tb.Fatalf("%s", errf("azurite: shared key credential: %v", err))
	}
	c, err := azblob.NewClientWithSharedKeyCredential(a.Endpoint+"/", cred, nil)
	if err != nil {
		tb.Fatalf("%s", errf("azurite: client: %v", err))
	}
	return c
}

// CreateContainer creates container or fails tb.
func (a *Azurite) CreateContainer(tb testing.TB, container string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.client(tb).CreateContainer(ctx, container, nil); err != nil {
		tb.Fatalf("%s", errf("azurite: create container %q: %v", container, err))
	}
}

// Put stores body as a block blob container/blob or fails tb.
func (a *Azurite) Put(tb testing.TB, container, blob string, body []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.client(tb).UploadBuffer(ctx, container, blob, body, nil); err != nil {
		tb.Fatalf("%s", errf("azurite: put %s/%s: %v", container, blob, err))
	}
}
