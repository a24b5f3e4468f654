package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// BenchmarkSigV4CryptoFloor is the physical floor of one SigV4 query
// signature: what no presigner can skip. The SHA-256 of a canonical
// request and one HMAC-SHA256 (the day's signing key cached) of the
// string to sign, both as long as the edge's for a 40-byte key, and the
// two hex encodings. BenchmarkPresignS3Miss over this is what building
// the strings costs.
func BenchmarkSigV4CryptoFloor(b *testing.B) {
	canonical := []byte("GET\n/bench/" + strings.Repeat("k", 40) + "\n" +
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Feu-west-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20260101T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\nhost:acme-images.s3.eu-west-1.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD")
	key := sha256.Sum256([]byte("signing key"))
	mac := hmac.New(sha256.New, key[:])
	sts := make([]byte, 0, 160)
	var sum [sha256.Size]byte
	var hexSum [2 * sha256.Size]byte
	b.SetBytes(int64(len(canonical)))
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(canonical)
		sts = append(sts[:0], "AWS4-HMAC-SHA256\n20260101T120000Z\n20260101/eu-west-1/s3/aws4_request\n"...)
		sts = hex.AppendEncode(sts, h[:])
		mac.Reset()
		mac.Write(sts)
		hex.Encode(hexSum[:], mac.Sum(sum[:0]))
	}
}
