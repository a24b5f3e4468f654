// Command floor302 is the bench's floor: a bare net/http server answering
// every request with 302, a presigned-URL-sized Location (about 400 bytes)
// and two CORS headers. No Go redirect server can do less work per request,
// so every redirect figure of the edge is read as a ratio against it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// defaultLocation is shaped like an S3 SigV4 presigned GetObject URL.
const defaultLocation = "https://acme-images.s3.eu-west-1.amazonaws.com/images/datasets/42/scene-0007/camera-front/000123.jpg" +
	"?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Feu-west-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20260101T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
	"&x-id=GetObject" +
	"&X-Amz-Signature=aa4cbb1f7ec5c6b0e9a8f3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2"

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	location := flag.String("location", defaultLocation, "the Location every answer carries")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// Header values are built once; net/http only reads them.
	loc := []string{*location}
	anyOrigin := []string{"*"}
	vary := []string{"Origin"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Location"] = loc
		if o := r.Header["Origin"]; len(o) == 1 {
			hdr["Access-Control-Allow-Origin"] = o // echoed, as a CORS allow-list does
		} else {
			hdr["Access-Control-Allow-Origin"] = anyOrigin
		}
		hdr["Vary"] = vary
		w.WriteHeader(http.StatusFound)
	})
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(os.Stderr, "floor302: ", 0),
	}
	fmt.Printf("listening on http://%s (Location %d bytes)\n", ln.Addr(), len(*location))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
