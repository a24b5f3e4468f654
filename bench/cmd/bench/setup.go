package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	bucket       = "bench"
	region       = "us-east-1"
	srcRedirect  = "bench"        // edge source in redirect mode
	srcStream    = "bench-stream" // edge source in stream mode, same bucket
	benchOrigin  = "https://app.segments.ai"
	thumbCount   = 100 // "a page of thumbnails"
	thumbSize    = 24 << 10
	urlTTL       = time.Hour
	edgeCacheMax = 100000 // PRODUCT.md's example value
	edgeMaxConc  = 4096
)

// object is one object the bench stores in versitygw.
type object struct {
	key  string
	size int
}

var bigObjects = []object{
	{"obj-1m.bin", 1 << 20},
	{"obj-16m.bin", 16 << 20},
}

func thumbKey(i int) string { return fmt.Sprintf("thumbs/%03d.jpg", i) }

// bench holds everything one run starts and measures.
type bench struct {
	commit  string // git HEAD when the binaries were built
	dirty   bool
	opts    options
	started time.Time
	root    string
	tmp     string
	bin     map[string]string

	versityAddr, floorAddr, edgeAddr, peerAddr, nginxAddr string
	accessKey, secretKey                                  string
	hsSecret                                              []byte
	es                                                    *esKey
	edgeCfg                                               string
	edgeLogNote                                           string

	versity, floor, edge, peer, nginx *proc
	// The same edge with the audit trail to a file, and with it plus a
	// per-subject limit (never reached): what each costs the hit path.
	edgeAudit, edgeAuditLimit         *proc
	edgeAuditAddr, edgeAuditLimitAddr string
	// edgeFull serves the miss and full-cache subjects, so the main
	// edge's URL cache stays as small as its hit subjects make it.
	edgeFull     *proc
	edgeFullAddr string

	hsToken  string // HS256 token covering both edge sources
	edgeNote string // non-empty: the edge subjects are skipped, and why
	peerNote string
	nginxVer string

	notes     []string
	locLen    map[string]int // Location lengths seen by the checks
	order     []*subject
	results   map[string][]*sample
	coldRate  *float64          // best token-cold req/s so far, to size the next token list
	profiles  map[string]string // -perf: subject -> hottest symbols in the edge
	loadStart string            // load average when the bench started
}

func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, s)
	logf("note: %s", s)
}

func (b *bench) run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	b.root = root
	b.loadStart = loadAvg()
	b.tmp, err = os.MkdirTemp("", "edge-bench-")
	if err != nil {
		return err
	}
	logf("work dir %s", b.tmp)
	if err := b.build(ctx); err != nil {
		return err
	}
	if err := b.startVersity(ctx); err != nil {
		return err
	}
	if err := b.startFloor(ctx); err != nil {
		return err
	}
	if b.edgeNote == "" {
		if err := b.startEdge(ctx); err != nil {
			b.edgeNote = "the edge did not start: " + firstLine(err.Error())
			b.note("%s (full error in the log above)", b.edgeNote)
			logf("%v", err)
		} else {
			b.startEdgeVariants(ctx)
		}
	}
	if err := b.mintHSToken(ctx); err != nil {
		return err
	}
	if err := b.startPeer(ctx); err != nil {
		b.peerNote = "the Node peer did not start: " + firstLine(err.Error())
		b.note("%s", b.peerNote)
		logf("%v", err)
	}
	if err := b.startNginx(ctx); err != nil {
		return err
	}
	b.checks(ctx)
	if err := b.measure(ctx); err != nil {
		return err
	}
	return b.report()
}

func (b *bench) shutdown() {
	for _, p := range []*proc{b.nginx, b.peer, b.edge, b.edgeAudit, b.edgeAuditLimit, b.edgeFull, b.floor, b.versity} {
		p.stop()
	}
	if b.tmp != "" && !b.opts.keep {
		os.RemoveAll(b.tmp)
	} else if b.tmp != "" {
		logf("kept %s", b.tmp)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func randHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

// build compiles the load generator, the floor and the edge into the work dir.
func (b *bench) build(ctx context.Context) error {
	b.bin = map[string]string{}
	// The commit the report names is the one built, not HEAD at the end.
	b.commit = b.cmdOut("git", "rev-parse", "--short", "HEAD")
	b.dirty = b.cmdOut("git", "status", "--porcelain", "--untracked-files=no") != ""
	binDir := filepath.Join(b.tmp, "bin")
	for _, name := range []string{"load", "floor302"} {
		out := filepath.Join(binDir, name)
		if msg, err := b.goBuild(ctx, out, "./bench/cmd/"+name); err != nil {
			return fmt.Errorf("build %s: %v\n%s", name, err, msg)
		}
		b.bin[name] = out
	}
	if b.opts.edgeBin != "" {
		b.bin["edge"] = b.opts.edgeBin
		return nil
	}
	out := filepath.Join(binDir, "edge")
	logf("building ./cmd/edge")
	if msg, err := b.goBuild(ctx, out, "./cmd/edge"); err != nil {
		b.edgeNote = "the edge is not built (`go build ./cmd/edge` failed: " + firstLine(msg) + ")"
		b.note("%s; edge subjects skipped", b.edgeNote)
		return nil
	}
	b.bin["edge"] = out
	return nil
}

func (b *bench) goBuild(ctx context.Context, out, pkg string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = b.root
	msg, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(msg)), err
}

func (b *bench) tool(flagVal string, candidates ...string) (string, error) {
	if flagVal != "" {
		return flagVal, nil
	}
	for _, c := range candidates {
		if strings.Contains(c, "/") {
			if st, err := os.Stat(c); err == nil && !st.IsDir() {
				return c, nil
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v found", candidates)
}

func (b *bench) s3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(b.accessKey, b.secretKey, ""),
	})
}

// presign returns a presigned GetObject URL for endpoint (versitygw itself,
// or nginx in front of it: the host is part of the signature).
func (b *bench) presign(ctx context.Context, endpoint, key string) (string, error) {
	pc := s3.NewPresignClient(b.s3Client(endpoint))
	r, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		s3.WithPresignExpires(6*time.Hour))
	if err != nil {
		return "", err
	}
	return r.URL, nil
}

func (b *bench) startVersity(ctx context.Context) error {
	bin, err := b.tool(b.opts.versitygw, filepath.Join(b.root, ".tools/bin/versitygw"), "versitygw")
	if err != nil {
		return fmt.Errorf("versitygw: %v (install: GOBIN=$PWD/.tools/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)", err)
	}
	data := filepath.Join(b.tmp, "s3")
	iam := filepath.Join(b.tmp, "iam")
	for _, d := range []string{data, iam} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	b.accessKey = "bench" + randHex(6)
	b.secretKey = randHex(20)
	for attempt := 1; ; attempt++ {
		if b.versityAddr, err = freeAddr(); err != nil {
			return err
		}
		b.versity, err = startProc("versitygw", []string{bin,
			"--port", b.versityAddr, "--virtual-domain", "localhost", "--quiet",
			"--iam-dir", iam, "posix", data},
			[]string{"ROOT_ACCESS_KEY=" + b.accessKey, "ROOT_SECRET_KEY=" + b.secretKey},
			b.tmp, filepath.Join(b.tmp, "versitygw.log"))
		if err != nil {
			return err
		}
		c := b.s3Client("http://" + b.versityAddr)
		err = b.versity.waitReady(ctx, b.versityAddr, 20*time.Second, func(ctx context.Context) error {
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		})
		if err == nil {
			break
		}
		b.versity.stop()
		if attempt == 3 {
			return err
		}
	}
	logf("versitygw on %s", b.versityAddr)

	c := b.s3Client("http://" + b.versityAddr)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	put := func(key string, size int) error {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(size)),
			ContentType: aws.String("application/octet-stream"),
		})
		if err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	for _, o := range bigObjects {
		if err := put(o.key, o.size); err != nil {
			return err
		}
	}
	for i := 0; i < thumbCount; i++ {
		if err := put(thumbKey(i), thumbSize); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) startFloor(ctx context.Context) error {
	var err error
	if b.floorAddr, err = freeAddr(); err != nil {
		return err
	}
	b.floor, err = startProc("floor302", []string{b.bin["floor302"], "-listen", b.floorAddr}, nil, b.tmp,
		filepath.Join(b.tmp, "floor302.log"))
	if err != nil {
		return err
	}
	return b.floor.waitReady(ctx, b.floorAddr, 10*time.Second, nil)
}

var edgeConfigTmpl = template.Must(template.New("edge").Parse(`# Written by bench/cmd/bench.
listen: "{{.Listen}}"
log: {level: info}           # access logs as in production; the bench sends stderr to /dev/null
auth:
  issuer: "{{.Issuer}}"
  audience: "{{.Audience}}"
  leeway: 30s
  keys:
    - {id: {{.HSID}}, alg: HS256, secret: "${EDGE_HS256_SECRET}"}
    - {id: {{.ESID}}, alg: ES256, public_key_file: "{{.ESPub}}"}
cors:
  allowed_origins: ["https://*.segments.ai", "http://localhost:*"]
  max_age: 10m
cache:
  max_entries: {{.CacheMax}}
stream:
  max_concurrent: {{.MaxConc}}
  connect_timeout: 5s
  response_header_timeout: 15s
sources:
  - name: {{.SrcRedirect}}
    provider: s3
    bucket: {{.Bucket}}
    region: {{.Region}}
    endpoint: "{{.Endpoint}}"
    addressing: path
    mode: redirect
    url_ttl: 1h
    credentials: {type: static, access_key_id: "${BENCH_S3_ACCESS_KEY}", secret_access_key: "${BENCH_S3_SECRET_KEY}"}
  - name: {{.SrcStream}}
    provider: s3
    bucket: {{.Bucket}}
    region: {{.Region}}
    endpoint: "{{.Endpoint}}"
    addressing: path
    mode: stream
    url_ttl: 1h
    credentials: {type: static, access_key_id: "${BENCH_S3_ACCESS_KEY}", secret_access_key: "${BENCH_S3_SECRET_KEY}"}
{{.Extra}}`))

func (b *bench) edgeEnv() []string {
	return []string{
		"EDGE_HS256_SECRET=" + string(b.hsSecret),
		"BENCH_S3_ACCESS_KEY=" + b.accessKey,
		"BENCH_S3_SECRET_KEY=" + b.secretKey,
	}
}

func (b *bench) startEdge(ctx context.Context) error {
	var err error
	b.hsSecret = []byte(randHex(32))
	if b.es, err = newESKey(); err != nil {
		return err
	}
	pub := filepath.Join(b.tmp, "es256.pub.pem")
	if err := b.es.writePublicPEM(pub); err != nil {
		return err
	}
	if b.edgeAddr, err = freeAddr(); err != nil {
		return err
	}
	var cfg bytes.Buffer
	err = edgeConfigTmpl.Execute(&cfg, map[string]any{
		"Listen": b.edgeAddr, "Issuer": tokenIssuer, "Audience": tokenAudience,
		"HSID": hsKeyID, "ESID": esKeyID, "ESPub": pub,
		"CacheMax": edgeCacheMax, "MaxConc": edgeMaxConc,
		"SrcRedirect": srcRedirect, "SrcStream": srcStream,
		"Bucket": bucket, "Region": region, "Endpoint": "http://" + b.versityAddr,
		"Extra": "",
	})
	if err != nil {
		return err
	}
	b.edgeCfg = filepath.Join(b.tmp, "edge.yaml")
	if err := os.WriteFile(b.edgeCfg, cfg.Bytes(), 0o600); err != nil {
		return err
	}
	argv := []string{b.bin["edge"], "serve", "-config", b.edgeCfg, "-listen", b.edgeAddr}
	ready := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.edgeAddr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}
	// Logs go to /dev/null as a production edge's go to a collector: the
	// edge still formats and writes every access line. Should the edge not
	// come up, it is started once more with its log in a file, to say why.
	b.edge, err = startProc("edge", argv, b.edgeEnv(), b.tmp, "")
	if err != nil {
		return err
	}
	if err = b.edge.waitReady(ctx, b.edgeAddr, 20*time.Second, ready); err == nil {
		logf("edge on %s (pid %d)", b.edgeAddr, b.edge.pid())
		return nil
	}
	b.edge.stop()
	b.edge, err = startProc("edge", argv, b.edgeEnv(), b.tmp, filepath.Join(b.tmp, "edge.log"))
	if err != nil {
		return err
	}
	if err = b.edge.waitReady(ctx, b.edgeAddr, 20*time.Second, ready); err != nil {
		b.edge.stop()
		b.edge = nil
		return err
	}
	b.note("the edge came up only on a second start; its log is in edge.log, not /dev/null")
	return nil
}

// startEdgeVariants starts the audit variants of the edge: the same
// config plus an audit file, and plus a limit that is never reached, and
// the same config again for the subjects that fill the URL cache (misses,
// the full-cache hit). A variant that does not start is noted and its
// subjects skipped.
func (b *bench) startEdgeVariants(ctx context.Context) {
	pub := filepath.Join(b.tmp, "es256.pub.pem")
	variants := []struct {
		name  string
		extra string
		p     **proc
		addr  *string
	}{
		{"edge-audit", "audit: {file: \"" + filepath.Join(b.tmp, "audit.jsonl") + "\", max_size: 64MiB, max_files: 2}\n", &b.edgeAudit, &b.edgeAuditAddr},
		{"edge-audit-limit", "audit: {file: \"" + filepath.Join(b.tmp, "audit-limit.jsonl") + "\", max_size: 64MiB, max_files: 2}\n" +
			"limits: {per_subject: {rate: 1000000, burst: 1000000}}\n", &b.edgeAuditLimit, &b.edgeAuditLimitAddr},
		{"edge-full", "", &b.edgeFull, &b.edgeFullAddr},
	}
	for _, v := range variants {
		addr, err := freeAddr()
		if err != nil {
			b.note("%s: %v", v.name, err)
			continue
		}
		var cfg bytes.Buffer
		if err := edgeConfigTmpl.Execute(&cfg, map[string]any{
			"Listen": addr, "Issuer": tokenIssuer, "Audience": tokenAudience,
			"HSID": hsKeyID, "ESID": esKeyID, "ESPub": pub,
			"CacheMax": edgeCacheMax, "MaxConc": edgeMaxConc,
			"SrcRedirect": srcRedirect, "SrcStream": srcStream,
			"Bucket": bucket, "Region": region, "Endpoint": "http://" + b.versityAddr,
			"Extra": v.extra,
		}); err != nil {
			b.note("%s: %v", v.name, err)
			continue
		}
		path := filepath.Join(b.tmp, v.name+".yaml")
		if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
			b.note("%s: %v", v.name, err)
			continue
		}
		p, err := startProc(v.name, []string{b.bin["edge"], "serve", "-config", path, "-listen", addr}, b.edgeEnv(), b.tmp, "")
		if err == nil {
			err = p.waitReady(ctx, addr, 20*time.Second, nil)
		}
		if err != nil {
			p.stop()
			b.note("%s did not start: %v", v.name, err)
			continue
		}
		logf("%s on %s (pid %d)", v.name, addr, p.pid())
		*v.p, *v.addr = p, addr
	}
}

// mintHSToken gets the HS256 token used by hit, miss, stream and the peer:
// from `edge token` when the edge is there (its tokens pass its own checks),
// else minted here with the same claims.
func (b *bench) mintHSToken(ctx context.Context) error {
	if b.hsSecret == nil {
		b.hsSecret = []byte(randHex(32))
	}
	grants := []grant{{srcRedirect, ""}, {srcStream, ""}}
	if b.edge != nil {
		cmd := exec.CommandContext(ctx, b.bin["edge"], "token", "-config", b.edgeCfg, "-sub", "bench",
			"-grant", srcRedirect+":", "-grant", srcStream+":", "-ttl", "3h")
		cmd.Env = append(os.Environ(), b.edgeEnv()...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		tok := lastLine(string(out))
		if err == nil && strings.Count(tok, ".") == 2 {
			b.hsToken = tok
			return nil
		}
		b.note("`edge token` failed (%v: %s); HS256 tokens minted by the bench instead", err, firstLine(stderr.String()))
	}
	tok, err := mintHS256(b.hsSecret, "bench", 3*time.Hour, grants)
	b.hsToken = tok
	return err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (b *bench) startPeer(ctx context.Context) error {
	dir := filepath.Join(b.root, "bench/peers/node-presign")
	node, err := b.tool("", b.opts.node)
	if err != nil {
		return fmt.Errorf("node: %v", err)
	}
	// npm ci when node_modules is missing or older than the lock file.
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules/.package-lock.json"))
	if err != nil || hidden.ModTime().Before(lock.ModTime()) {
		logf("npm ci in %s", dir)
		cmd := exec.CommandContext(ctx, b.opts.npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci: %v\n%s", err, out)
		}
	}
	if b.peerAddr, err = freeAddr(); err != nil {
		return err
	}
	host, port, _ := strings.Cut(b.peerAddr, ":")
	b.peer, err = startProc("node-presign", []string{node, "server.js"}, []string{
		"PEER_HOST=" + host, "PEER_PORT=" + port,
		"S3_ENDPOINT=http://" + b.versityAddr, "S3_REGION=" + region, "S3_BUCKET=" + bucket,
		"AWS_ACCESS_KEY_ID=" + b.accessKey, "AWS_SECRET_ACCESS_KEY=" + b.secretKey,
		"SOURCE=" + srcRedirect,
		"JWT_SECRET=" + string(b.hsSecret), "JWT_ISSUER=" + tokenIssuer, "JWT_AUDIENCE=" + tokenAudience,
		"URL_TTL_SECONDS=3600",
		"NODE_ENV=production",
	}, dir, filepath.Join(b.tmp, "node-presign.log"))
	if err != nil {
		return err
	}
	return b.peer.waitReady(ctx, b.peerAddr, 20*time.Second, nil)
}

func (b *bench) startNginx(ctx context.Context) error {
	bin, err := b.tool(b.opts.nginx, "/usr/sbin/nginx", "nginx")
	if err != nil {
		return fmt.Errorf("nginx: %v (apt-get install nginx-light)", err)
	}
	if out, err := exec.Command(bin, "-v").CombinedOutput(); err == nil {
		b.nginxVer = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	tmplText, err := os.ReadFile(filepath.Join(b.root, "bench/nginx.conf.tmpl"))
	if err != nil {
		return err
	}
	t, err := template.New("nginx").Parse(string(tmplText))
	if err != nil {
		return fmt.Errorf("bench/nginx.conf.tmpl: %w", err)
	}
	prefix := filepath.Join(b.tmp, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "root" // workers would otherwise run as nobody
	}
	for attempt := 1; ; attempt++ {
		if b.nginxAddr, err = freeAddr(); err != nil {
			return err
		}
		var conf bytes.Buffer
		if err := t.Execute(&conf, map[string]string{
			"Prefix": prefix, "Listen": b.nginxAddr, "Upstream": b.versityAddr, "User": user,
		}); err != nil {
			return err
		}
		confPath := filepath.Join(prefix, "nginx.conf")
		if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
			return err
		}
		b.nginx, err = startProc("nginx", []string{bin, "-p", prefix + "/", "-c", confPath, "-e", filepath.Join(prefix, "error.log")},
			nil, prefix, filepath.Join(b.tmp, "nginx.out"))
		if err != nil {
			return err
		}
		err = b.nginx.waitReady(ctx, b.nginxAddr, 10*time.Second, nil)
		if err == nil {
			return nil
		}
		b.nginx.stop()
		if attempt == 3 {
			logErr, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			return fmt.Errorf("%v\n%s", err, logErr)
		}
	}
}
