package onboard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/edgeproxy/edge/internal/signer"
)

// Step names, in the order a check reports them.
const (
	StepConfig      = "config"
	StepCredentials = "credentials"
	StepReachable   = "reachable"
	StepRead        = "read"
	StepList        = "list"
	StepKMS         = "kms"
	StepCORS        = "cors"
)

// Step statuses.
const (
	StatusOK      = "ok"
	StatusWarn    = "warn"
	StatusFail    = "fail"
	StatusSkipped = "skipped"
)

// Codes a step reports when it fails or warns: a stable set.
const (
	CodeConfigInvalid       = "config_invalid"
	CodeAssumeRoleDenied    = "assume_role_denied"
	CodeCredentialsInvalid  = "credentials_invalid"
	CodeCredentialsExpired  = "credentials_expired"
	CodeSignatureMismatch   = "signature_mismatch"
	CodeAccessDenied        = "access_denied"
	CodeNoSuchBucket        = "no_such_bucket"
	CodeWrongRegion         = "wrong_region"
	CodeUnreachable         = "unreachable"
	CodeTimeout             = "timeout"
	CodeTLS                 = "tls_invalid"
	CodeKMSDenied           = "kms_denied"
	CodeListDenied          = "list_denied"
	CodeCORSMissing         = "cors_missing"
	CodeCORSNullMissing     = "cors_null_missing"
	CodeCORSWildcard        = "cors_wildcard"
	CodeDottedBucketVirtual = "dotted_bucket_virtual"
	CodeStorageError        = "storage_error"
	CodeNotVerified         = "not_verified"
)

// CheckResult is the answer of `edge check -json` and POST
// /admin/v1/check for one source.
type CheckResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Steps []Step `json:"steps"`
}

// Step is one probe's verdict. Code and Fix are set when Status is warn
// or fail; Fix names the `edge policy` document kind to paste when one
// fixes it.
type Step struct {
	Step    string `json:"step"`
	Status  string `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Bounds of a check: the whole check, and each network step.
const (
	DefaultCheckTimeout = 20 * time.Second
	DefaultStepTimeout  = 5 * time.Second
)

// ProbeKey is the object the read and CORS probes ask for, under the
// source's prefix. It need not exist: storage answering "no such key" to a
// signed request proves reachability, credentials and signing.
const ProbeKey = ".edge-check-probe"

// CheckOptions carry what Check takes from outside the source.
type CheckOptions struct {
	// HTTPClient sends the probes (and S3 listing); nil = a client that
	// does not follow redirects. Its redirect policy is overridden.
	HTTPClient *http.Client
	// S3 is passed to the signer (the STS client, a clock).
	S3 signer.S3Options
	// Now is the signing clock; nil = time.Now.
	Now func() time.Time
	// Timeout bounds the whole check (default 20 s), StepTimeout each
	// network step (default 5 s).
	Timeout, StepTimeout time.Duration
	// Problems are config problems found by the caller (the whole
	// config's validation, the JWKS): the config step fails with them.
	Problems []error
}

// Check probes src the way the edge and a browser would use it, step by
// step: config, credentials, reachable, read, list (sources that sync),
// kms (sources with kms_key_arn), cors (redirect mode). A step that cannot
// run because an earlier one failed is skipped. It saves nothing, and no
// message holds a secret, a signature or a storage error body.
func Check(ctx context.Context, src Source, opts CheckOptions) CheckResult {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultCheckTimeout
	}
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = DefaultStepTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	base := opts.HTTPClient
	if base == nil {
		// Its own transport, closed when the check ends: the admin route
		// runs a check per request, and idle connections would otherwise
		// stay open (with their goroutines) for good.
		t := &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{Timeout: opts.StepTimeout}).DialContext, TLSHandshakeTimeout: opts.StepTimeout}
		defer t.CloseIdleConnections()
		base = &http.Client{Transport: t}
	}
	client := *base
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	src.Config.Defaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	c := &checker{src: src, opts: opts, client: &client}
	c.run(ctx)
	res := CheckResult{Name: src.Name, OK: true, Steps: c.steps}
	for _, s := range res.Steps {
		if s.Status == StatusFail {
			res.OK = false
		}
	}
	return res
}

type checker struct {
	src    Source
	opts   CheckOptions
	client *http.Client
	steps  []Step
	signer signer.Signer
}

func (c *checker) add(step, status, code, msg, fix string) {
	c.steps = append(c.steps, Step{Step: step, Status: status, Code: code, Message: msg, Fix: fix})
}

// skipRest marks every step after the last one added as skipped.
func (c *checker) skipRest(why string) {
	order := []string{StepConfig, StepCredentials, StepReachable, StepRead, StepList, StepKMS, StepCORS}
	done := map[string]bool{}
	for _, s := range c.steps {
		done[s.Step] = true
	}
	for _, st := range order {
		if !done[st] {
			c.add(st, StatusSkipped, "", why, "")
		}
	}
}

// policyFix names the edge policy document that grants read access for
// the source's provider.
func (c *checker) policyFix(what string) string {
	kind := map[string]string{signer.ProviderS3: KindAWSPermission, signer.ProviderGCS: KindGCSIAM, signer.ProviderAzure: KindAzureRoles}[c.src.Provider]
	if kind == "" {
		return what
	}
	fix := fmt.Sprintf("%s: paste the %s document of `edge policy %s`", what, kind, c.src.Name)
	if kind == KindAWSPermission {
		fix += fmt.Sprintf(" (or, cross-account, %s)", KindAWSBucket)
	}
	return fix
}

func (c *checker) corsKind() string {
	return map[string]string{signer.ProviderS3: KindAWSCORS, signer.ProviderGCS: KindGCSCORS, signer.ProviderAzure: KindAzureCORS}[c.src.Provider]
}

func (c *checker) run(ctx context.Context) {
	src := c.src
	// config
	problems := append([]error{}, c.opts.Problems...)
	problems = append(problems, validateSource(src)...)
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		c.add(StepConfig, StatusFail, CodeConfigInvalid, strings.Join(msgs, "; "), "correct the keys named, then check again")
		c.skipRest("the config is invalid")
		return
	}
	if src.dottedVirtual() {
		c.add(StepConfig, StatusWarn, CodeDottedBucketVirtual,
			fmt.Sprintf("bucket %s has dots and addressing is virtual: its virtual-hosted name does not match the store's TLS certificate (*.s3.REGION.amazonaws.com covers one label)", src.Bucket),
			"set addressing: auto (or path) for this source")
	} else {
		c.add(StepConfig, StatusOK, "", fmt.Sprintf("%s source, %s mode", src.Provider, src.mode()), "")
	}
	if src.Provider == signer.ProviderFile {
		c.checkFile()
		return
	}
	// credentials
	sctx, cancel := context.WithTimeout(ctx, c.opts.StepTimeout)
	defer cancel()
	sg, err := signer.New(sctx, src.Config, signer.Options{S3: c.opts.S3})
	if err != nil {
		c.add(StepCredentials, StatusFail, CodeCredentialsInvalid, "the signer cannot be built: "+redact(err.Error()), "correct the source's credentials")
		c.skipRest("no credentials")
		return
	}
	c.signer = sg
	if ch, ok := sg.(signer.Checker); ok {
		if err := ch.Check(sctx); err != nil {
			code, msg, fix := c.credentialError(err)
			c.add(StepCredentials, StatusFail, code, msg, fix)
			c.skipRest("no credentials")
			return
		}
		c.add(StepCredentials, StatusOK, "", c.credentialsOK(), "")
	} else {
		c.add(StepCredentials, StatusOK, "", c.credentialsOK(), "")
	}
	cancel()

	// reachable and read: a signed GET of the probe object.
	probe, ans := c.probe(ctx, src.Prefix+ProbeKey)
	if ans.err != nil {
		code, msg, fix := c.transportError(ans.err)
		c.add(StepReachable, StatusFail, code, msg, fix)
		c.skipRest("storage is unreachable")
		return
	}
	se := ans.se
	if se.wrongRegion() {
		msg := fmt.Sprintf("storage answered %d %s: the bucket is not in region %s", se.Status, se.Code, src.Region)
		fix := "set region to the bucket's region"
		if se.Region != "" {
			msg = fmt.Sprintf("storage answered %d %s: the bucket is in region %s, not %s", se.Status, se.Code, se.Region, src.Region)
			fix = "set region: " + se.Region
		}
		c.add(StepReachable, StatusFail, CodeWrongRegion, msg, fix)
		c.skipRest("the region is wrong")
		return
	}
	c.add(StepReachable, StatusOK, "", fmt.Sprintf("storage answered a signed GET (%d%s)", se.Status, codeSuffix(se.Code)), "")
	if code, msg, fix, stop := c.refusal(se); stop {
		// Refusals of the signature or the bucket fail read, and make
		// list and cors meaningless.
		c.add(StepRead, StatusFail, code, msg, fix)
		c.skipRest("storage refused the signed request")
		return
	}
	// list (sources that sync), run before read is decided: with list
	// allowed, a missing object answers 404, so a 403 is a real refusal;
	// and a listed object is read for real (and decrypts, for KMS).
	listStep := Step{Step: StepList, Status: StatusSkipped, Message: "the source does not sync (sync: false): the platform never lists it"}
	listed, listOK := "", false
	if src.Sync {
		listStep, listed, listOK = c.list(ctx)
	}
	readSE, readKey := se, src.Prefix+ProbeKey
	if listed != "" {
		if _, a := c.probe(ctx, listed); a.err == nil {
			readSE, readKey = a.se, listed
		}
	}
	kmsRefused := false
	switch {
	case readSE.Status == http.StatusOK || readSE.Status == http.StatusPartialContent || readSE.Status == http.StatusRequestedRangeNotSatisfiable:
		// 416: an empty object refuses the one-byte range, after the
		// signature and the grant were checked.
		c.add(StepRead, StatusOK, "", fmt.Sprintf("read %s under the prefix with a signed URL", readKey), "")
	case readSE.Status == http.StatusNotFound:
		c.add(StepRead, StatusOK, "", fmt.Sprintf("signature accepted; the probe %s does not exist (%d%s), which storage tells only a principal it lets read", readKey, readSE.Status, codeSuffix(readSE.Code)), "")
	case readSE.KMS:
		kmsRefused = true
		c.add(StepRead, StatusWarn, CodeKMSDenied, fmt.Sprintf("storage let the principal read %s, but KMS refused to decrypt it (%d %s)", readKey, readSE.Status, readSE.Code), "see the kms step")
	case readSE.Status == http.StatusForbidden && (listOK || readKey != src.Prefix+ProbeKey):
		c.add(StepRead, StatusFail, CodeAccessDenied, fmt.Sprintf("storage refused to read %s (%d%s)", readKey, readSE.Status, codeSuffix(readSE.Code)),
			c.policyFix("grant read access under the prefix"))
	case readSE.Status == http.StatusForbidden:
		c.add(StepRead, StatusWarn, CodeAccessDenied,
			fmt.Sprintf("storage answered %d%s for the missing probe %s: S3 answers so both when reading is refused and, to a principal that may not list, for any missing object; this check cannot tell which", readSE.Status, codeSuffix(readSE.Code), readKey),
			c.policyFix("if real objects fail too, grant read access under the prefix"))
	default:
		c.add(StepRead, StatusFail, CodeStorageError, fmt.Sprintf("storage answered %d%s to a signed GET", readSE.Status, codeSuffix(readSE.Code)), "check the endpoint and the source's provider")
	}
	c.steps = append(c.steps, listStep)
	// kms
	switch {
	case src.KMSKeyARN == "":
		c.add(StepKMS, StatusSkipped, "", "no kms_key_arn: the bucket is not read through a named SSE-KMS key", "")
	case kmsRefused:
		c.add(StepKMS, StatusFail, CodeKMSDenied, "KMS refused kms:Decrypt on the bucket's key for the edge's principal",
			fmt.Sprintf("paste the %s document of `edge policy %s` (it grants kms:Decrypt on %s); with a bucket policy instead, add the key-policy statement its %s steps give", KindAWSPermission, src.Name, src.KMSKeyARN, KindAWSBucket))
	case readSE.Status == http.StatusOK || readSE.Status == http.StatusPartialContent:
		c.add(StepKMS, StatusOK, "", "an object under the prefix was read, so it decrypted", "")
	default:
		c.add(StepKMS, StatusWarn, CodeNotVerified, "not verified: no object under the prefix was read (the probe does not exist; sources that sync read a listed one)",
			fmt.Sprintf("make sure the permission policy grants kms:Decrypt on %s (the %s document does)", src.KMSKeyARN, KindAWSPermission))
	}
	// cors
	if src.mode() != ModeRedirect {
		c.add(StepCORS, StatusSkipped, "", "stream mode: browsers only talk to the edge, the bucket needs no CORS", "")
		return
	}
	c.checkCORS(ctx, probe)
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return " " + code
}

func (c *checker) credentialsOK() string {
	switch c.src.Credentials.Type {
	case "static", "hmac":
		return "static keys (storage checks them in the read step)"
	case "shared_key":
		return "the account key signs (storage checks it in the read step)"
	case "service_account":
		return "the service account key signs offline (storage checks it in the read step)"
	case "assume_role":
		return "sts:AssumeRole succeeded"
	}
	return "credentials resolve"
}

// credentialError tells apart why credentials could not be had.
func (c *checker) credentialError(err error) (code, msg, fix string) {
	var ae smithy.APIError
	apiCode := ""
	if errors.As(err, &ae) {
		apiCode = sanitizeCode(ae.ErrorCode())
		// MinIO's STS answers a bad signature or an unknown key with
		// AccessDenied and says which in the message (AWS uses
		// SignatureDoesNotMatch and InvalidClientTokenId); the message is
		// read, never repeated.
		if m := ae.ErrorMessage(); apiCode == "AccessDenied" {
			switch {
			case strings.Contains(m, "signature we calculated does not match"):
				apiCode = "SignatureDoesNotMatch"
			case strings.Contains(m, "Access Key Id you provided does not exist"):
				apiCode = "InvalidAccessKeyId"
			}
		}
	}
	assume := c.src.Credentials.Type == "assume_role" || c.src.Credentials.Type == "web_identity"
	switch {
	case apiCode == "AccessDenied" && assume:
		return CodeAssumeRoleDenied, "STS refused sts:AssumeRole (AccessDenied): the role does not trust the platform's principal with this external ID",
			fmt.Sprintf("paste the %s document of `edge policy %s` as the role's trust policy, and give the edge the same credentials.external_id", KindAWSTrust, c.src.Name)
	case apiCode == "ExpiredToken" || apiCode == "ExpiredTokenException" || apiCode == "TokenRefreshRequired":
		return CodeCredentialsExpired, fmt.Sprintf("the session that calls STS has expired (%s)", apiCode), "renew the base credentials (credentials.session_token, or the default chain's)"
	case apiCode == "InvalidClientTokenId" || apiCode == "SignatureDoesNotMatch" || apiCode == "InvalidAccessKeyId" || apiCode == "UnrecognizedClientException":
		return CodeCredentialsInvalid, fmt.Sprintf("STS refused the base credentials (%s)", apiCode), "correct credentials.access_key_id and secret_access_key (or the default chain's)"
	case apiCode != "":
		return CodeCredentialsInvalid, fmt.Sprintf("credentials could not be obtained (%s)", apiCode), "check the source's credentials"
	}
	if code, msg, fix := c.transportError(err); code == CodeTimeout {
		return code, "credentials: " + msg, fix
	} else if code == CodeUnreachable && strings.Contains(err.Error(), "dial") {
		return code, "credentials: " + msg, fix
	}
	return CodeCredentialsInvalid, "credentials could not be obtained: " + redact(err.Error()), "check the source's credentials (type, keys, role_arn)"
}

// transportError tells apart what kept a request from being answered.
func (c *checker) transportError(err error) (code, msg, fix string) {
	var ne net.Error
	var he x509.HostnameError
	var ue x509.UnknownAuthorityError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &he):
		if c.src.dottedVirtual() || strings.Contains(c.src.Bucket, ".") && !c.src.PathStyle() {
			return CodeDottedBucketVirtual, fmt.Sprintf("TLS: the store's certificate does not cover the virtual-hosted name of the dotted bucket %s", c.src.Bucket), "set addressing: auto (or path) for this source"
		}
		return CodeTLS, "TLS: the store's certificate does not match its host name", "check the endpoint"
	case errors.As(err, &ue), errors.As(err, &ce):
		return CodeTLS, "TLS: the store's certificate is not trusted", "check the endpoint"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return CodeTimeout, fmt.Sprintf("no answer within %s", c.opts.StepTimeout), "check the endpoint, the firewall and egress; the store accepted the connection or never answered it"
	}
	var oe *net.OpError
	var de *net.DNSError
	detail := "the connection failed"
	switch {
	case errors.As(err, &de):
		detail = "the host name does not resolve"
	case errors.As(err, &oe) && oe.Op == "dial":
		detail = "the connection was refused"
	}
	return CodeUnreachable, "storage is unreachable: " + detail, "check endpoint, region, DNS and egress"
}

// refusal classifies answers that make every later step meaningless.
func (c *checker) refusal(se StorageError) (code, msg, fix string, stop bool) {
	switch se.Code {
	case "SignatureDoesNotMatch", "AuthenticationFailed":
		return CodeSignatureMismatch, fmt.Sprintf("storage refused the edge's signature (%d %s)", se.Status, se.Code),
			"correct the secret (secret_access_key, account_key or the key file); a wrong region or endpoint signs wrongly too", true
	case "InvalidAccessKeyId", "InvalidTokenId", "InvalidClientTokenId":
		return CodeCredentialsInvalid, fmt.Sprintf("storage does not know the access key (%d %s)", se.Status, se.Code), "correct credentials.access_key_id", true
	case "ExpiredToken", "TokenRefreshRequired":
		return CodeCredentialsExpired, fmt.Sprintf("the session token has expired (%d %s)", se.Status, se.Code), "renew the credentials (a session_token lives hours at most)", true
	case "NoSuchBucket", "ContainerNotFound":
		return CodeNoSuchBucket, fmt.Sprintf("bucket %s does not exist at this endpoint (%s)", c.src.Bucket, se.Code), "correct bucket (and account or endpoint)", true
	case "AuthorizationQueryParametersError", "AuthorizationHeaderMalformed", "AuthorizationFailure":
		return CodeSignatureMismatch, fmt.Sprintf("storage refused the signed request (%d %s)", se.Status, se.Code), "check the credentials, region and endpoint", true
	}
	return "", "", "", false
}

// answer is what one probe got: an error before any answer, or the
// answer's status and error document.
type answer struct {
	err error
	se  StorageError
}

// probe signs and sends a GET of key within one step's time.
func (c *checker) probe(ctx context.Context, key string) (string, answer) {
	sctx, cancel := context.WithTimeout(ctx, c.opts.StepTimeout)
	defer cancel()
	p, err := c.signer.Presign(sctx, signer.Request{Method: http.MethodGet, Key: key, At: c.opts.Now(), TTL: 10 * time.Minute, ForFetch: c.src.mode() == ModeStream})
	if err != nil {
		return "", answer{err: err}
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return "", answer{err: err}
	}
	for k, v := range p.Header {
		req.Header[k] = v
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := c.client.Do(req)
	if err != nil {
		return p.URL, answer{err: err}
	}
	defer resp.Body.Close()
	var se StorageError
	if resp.StatusCode >= 300 {
		se = ParseStorageError(resp.StatusCode, resp.Header, resp.Body)
	} else {
		se = StorageError{Status: resp.StatusCode}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return p.URL, answer{se: se}
}

// list asks for one key under the prefix, as edge sync would, with the
// source's own credentials.
func (c *checker) list(ctx context.Context) (Step, string, bool) {
	src := c.src
	if src.Provider != signer.ProviderS3 && !(src.Provider == signer.ProviderGCS && src.Credentials.Type == "hmac") {
		return Step{Step: StepList, Status: StatusWarn, Code: CodeNotVerified,
			Message: fmt.Sprintf("listing is not probed for %s sources yet", src.Provider),
			Fix:     c.policyFix("make sure listing under the prefix is granted")}, "", false
	}
	sctx, cancel := context.WithTimeout(ctx, c.opts.StepTimeout)
	defer cancel()
	creds, err := s3Credentials(sctx, src.Config, c.opts.S3)
	if err != nil {
		return Step{Step: StepList, Status: StatusFail, Code: CodeCredentialsInvalid, Message: "credentials for listing: " + redact(err.Error())}, "", false
	}
	region, endpoint := src.Region, src.Endpoint
	if src.Provider == signer.ProviderGCS {
		if region == "" {
			region = "auto"
		}
		if endpoint == "" {
			endpoint = "https://storage.googleapis.com"
		}
	}
	o := s3.Options{Region: region, Credentials: creds, UsePathStyle: src.PathStyle() || src.Provider == signer.ProviderGCS, HTTPClient: c.client, RetryMaxAttempts: 1}
	if endpoint != "" {
		o.BaseEndpoint = aws.String(endpoint)
	}
	out, err := s3.New(o).ListObjectsV2(sctx, &s3.ListObjectsV2Input{Bucket: aws.String(src.Bucket), Prefix: aws.String(src.Prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			code := sanitizeCode(ae.ErrorCode())
			if code == "AccessDenied" {
				return Step{Step: StepList, Status: StatusFail, Code: CodeListDenied,
					Message: fmt.Sprintf("storage refused to list under %q (AccessDenied)", src.Prefix),
					Fix:     c.policyFix("grant s3:ListBucket with an s3:prefix condition on the prefix")}, "", false
			}
			return Step{Step: StepList, Status: StatusFail, Code: CodeStorageError, Message: fmt.Sprintf("listing failed (%s)", code), Fix: "see the read step"}, "", false
		}
		code, msg, fix := c.transportError(err)
		return Step{Step: StepList, Status: StatusFail, Code: code, Message: "listing: " + msg, Fix: fix}, "", false
	}
	key := ""
	for _, o := range out.Contents {
		if k := aws.ToString(o.Key); k != "" && !strings.HasSuffix(k, "/") {
			key = k
			break
		}
	}
	msg := fmt.Sprintf("listed under %q", src.Prefix)
	if key == "" {
		msg += " (nothing there yet)"
	}
	return Step{Step: StepList, Status: StatusOK, Message: msg}, key, true
}

// s3Credentials is the credential chain of an s3 source for the listing
// client: the signer's own (signer.CredentialsProvider), so listing acts
// as the identity that signs, whatever the credentials type.
func s3Credentials(ctx context.Context, cfg signer.Config, o signer.S3Options) (aws.CredentialsProvider, error) {
	p, err := signer.CredentialsProvider(ctx, cfg, o)
	if err != nil || p == nil {
		return p, err
	}
	return aws.NewCredentialsCache(p), nil
}

// checkCORS sends the preflight a browser sends for a crossorigin <img>
// that followed the edge's redirect: Origin null (edge on its own origin)
// and each listed page origin without wildcards (edge under the page's
// origin).
func (c *checker) checkCORS(ctx context.Context, probeURL string) {
	if probeURL == "" {
		c.add(StepCORS, StatusSkipped, "", "no signed URL to send a preflight to", "")
		return
	}
	origins := []string{"null"}
	var patterns []string
	for _, o := range c.src.Origins {
		if strings.Contains(o, "*") {
			patterns = append(patterns, o)
		} else if o != "null" {
			origins = append(origins, o)
		}
	}
	var ok, missing []string
	code := ""
	fix := fmt.Sprintf("paste the %s document of `edge policy %s`", c.corsKind(), c.src.Name)
	for _, origin := range origins {
		sctx, cancel := context.WithTimeout(ctx, c.opts.StepTimeout)
		req, err := http.NewRequestWithContext(sctx, http.MethodOptions, probeURL, nil)
		if err != nil {
			cancel()
			continue
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		req.Header.Set("Access-Control-Request-Headers", "range")
		resp, err := c.client.Do(req)
		if err != nil {
			cancel()
			tc, msg, tfix := c.transportError(err)
			c.add(StepCORS, StatusFail, tc, "preflight for Origin "+origin+": "+msg, tfix)
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		cancel()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		switch {
		case got == origin:
			ok = append(ok, origin)
		case got == "*":
			missing = append(missing, origin+` (answered "*", which crossorigin="use-credentials" refuses)`)
			if code == "" {
				code = CodeCORSWildcard
			}
		default:
			missing = append(missing, origin)
			if origin == "null" {
				code = CodeCORSNullMissing
			} else if code == "" || code == CodeCORSWildcard {
				code = CodeCORSMissing
			}
		}
	}
	note := ""
	if len(patterns) > 0 {
		note = fmt.Sprintf("; patterns not probed: %s", strings.Join(patterns, ", "))
	}
	if len(missing) == 0 {
		c.add(StepCORS, StatusOK, "", "bucket CORS admits Origin "+strings.Join(ok, ", ")+note, "")
		return
	}
	msg := "bucket CORS does not admit Origin " + strings.Join(missing, ", ") +
		": <img crossorigin> pages cannot read those pixels (plain <img> works)"
	if code == CodeCORSNullMissing {
		msg += `; "null" is what browsers send after the edge's redirect when the edge has its own origin`
	}
	c.add(StepCORS, StatusWarn, code, msg+note, fix)
}

// checkFile checks a file source's root and prefix.
func (c *checker) checkFile() {
	c.add(StepCredentials, StatusSkipped, "", "file sources need no credentials", "")
	if st, err := os.Stat(c.src.Root); err != nil || !st.IsDir() {
		c.add(StepReachable, StatusFail, CodeUnreachable, "root is not a readable directory", "correct root")
		c.skipRest("the root is missing")
		return
	}
	c.add(StepReachable, StatusOK, "", "root is a directory", "")
	dir := filepath.Join(c.src.Root, filepath.FromSlash(strings.TrimSuffix(c.src.Prefix, "/")))
	if _, err := os.ReadDir(dir); err != nil {
		c.add(StepRead, StatusFail, CodeAccessDenied, "the prefix's directory under root cannot be read", "create it, or let the edge's user read it")
	} else {
		c.add(StepRead, StatusOK, "", "root readable", "")
	}
	c.skipRest("not applicable to file sources")
}

// validateSource checks what onboarding relies on; the full config has
// been validated by its loader already, a spec given to the admin route
// perhaps not.
func validateSource(src Source) []error {
	cfg := src.Config
	cfg.Defaults()
	errs := cfg.Validate("source")
	switch src.Mode {
	case "", ModeRedirect, ModeStream:
	default:
		errs = append(errs, errors.New("source.mode: want redirect or stream"))
	}
	if strings.HasPrefix(src.Prefix, "/") || (src.Prefix != "" && !strings.HasSuffix(src.Prefix, "/")) {
		errs = append(errs, errors.New("source.prefix: must not start with '/' and must end with '/'"))
	}
	if src.KMSKeyARN != "" && !strings.HasPrefix(src.KMSKeyARN, "arn:") {
		errs = append(errs, errors.New("source.kms_key_arn: want a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)"))
	}
	return errs
}

// dottedVirtual reports whether a dotted bucket is addressed
// virtual-hosted over TLS, which no wildcard certificate covers.
func (s *Source) dottedVirtual() bool {
	if s.Provider != signer.ProviderS3 || !strings.Contains(s.Bucket, ".") || s.Addressing != "virtual" {
		return false
	}
	if s.Endpoint == "" {
		return true
	}
	u, err := url.Parse(s.Endpoint)
	return err == nil && u.Scheme == "https"
}

// redact drops URL query values (signatures, credentials) from an error
// message and bounds its length.
func redact(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "?")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteString("?REDACTED")
		j := strings.IndexAny(s[i:], " \"'\n")
		if j < 0 {
			break
		}
		s = s[i+j:]
	}
	out := b.String()
	if len(out) > 300 {
		out = out[:300] + "…"
	}
	return out
}
