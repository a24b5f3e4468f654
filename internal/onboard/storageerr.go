package onboard

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
)

// maxErrorBody is how much of an error answer is read: S3, STS, GCS and
// Azure error documents are a few hundred bytes.
const maxErrorBody = 8 << 10

// StorageError is what a storage or STS error answer says, reduced to
// what a check decides on. It never holds the body: messages can quote
// request details (a canonical request, a string to sign) that are not for
// display, so only sanitized tokens are kept.
type StorageError struct {
	Status int
	// Code is the error code: <Code> of an S3, STS or GCS XML document,
	// or Azure's x-ms-error-code. Only letters, digits and '.' (KMS.*
	// codes) are kept.
	Code string
	// Region is where storage says the bucket lives: x-amz-bucket-region,
	// <Region>, or the region an "expecting 'REGION'" message names.
	Region string
	// KMS is set when the refusal is KMS's: a KMS.* code, or an
	// AccessDenied whose message names a kms: action.
	KMS bool
}

// ParseStorageError reads at most maxErrorBody bytes of body and the
// headers of an error answer. Unknown or malformed documents give what
// the headers say.
func ParseStorageError(status int, h http.Header, body io.Reader) StorageError {
	e := StorageError{Status: status}
	if h != nil {
		e.Code = sanitizeCode(h.Get("X-Ms-Error-Code"))
		e.Region = sanitizeRegion(h.Get("X-Amz-Bucket-Region"))
	}
	if body == nil {
		return e
	}
	data, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = false
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var elem, message string
	for n := 0; n < 256; n++ { // bounded: error documents are flat
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elem = t.Name.Local
		case xml.EndElement:
			elem = ""
		case xml.CharData:
			v := strings.TrimSpace(string(t))
			switch elem {
			case "Code":
				if e.Code == "" {
					e.Code = sanitizeCode(v)
				}
			case "Region":
				if e.Region == "" {
					e.Region = sanitizeRegion(v)
				}
			case "Message":
				if message == "" && len(v) <= 2048 {
					message = v
				}
			}
		}
	}
	if strings.HasPrefix(e.Code, "KMS.") || (e.Code == "AccessDenied" || e.Code == "KMS") && strings.Contains(message, "kms:") {
		e.KMS = true
	}
	if e.Region == "" {
		// AuthorizationQueryParametersError: "... the region 'us-east-1'
		// is wrong; expecting 'eu-west-1'".
		if _, after, ok := strings.Cut(message, "expecting '"); ok {
			if r, _, ok := strings.Cut(after, "'"); ok {
				e.Region = sanitizeRegion(r)
			}
		}
	}
	return e
}

// sanitizeCode keeps a code only when it looks like one.
func sanitizeCode(s string) string {
	if len(s) == 0 || len(s) > 64 {
		return ""
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.') {
			return ""
		}
	}
	return s
}

// sanitizeRegion keeps a region only when it looks like one (eu-west-1,
// us-gov-west-1, cn-north-1, auto).
func sanitizeRegion(s string) string {
	if len(s) == 0 || len(s) > 32 {
		return ""
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	return s
}

// wrongRegion reports whether e says the request went to the wrong region.
func (e StorageError) wrongRegion() bool {
	switch e.Code {
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "AuthorizationQueryParametersError", "IllegalLocationConstraintException", "InvalidRegion":
		return e.Code == "PermanentRedirect" || e.Code == "InvalidRegion" || e.Region != ""
	}
	return e.Status == http.StatusMovedPermanently && e.Region != ""
}
