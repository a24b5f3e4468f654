// Package browser is the edge's end-to-end suite in a real browser: Debian's
// headless Chromium, driven over the DevTools protocol (chromedp), loads
// images and a video from the real edge binary in front of a real S3 server
// (versitygw), from pages on other origins, in redirect and stream mode.
// It shows what unit tests cannot: that canvases stay untainted, cookies
// travel, videos seek, 302s are cached, and the bucket CORS the README
// advises is the one browsers need.
//
// Everything is in the tests; `go test ./e2e/browser` runs it (`make test`
// runs it with every other package). It needs `make tools` (versitygw,
// chromium) and fails, never skips, without them. On a failure it saves a
// screenshot, the page's console and network log and the edge's log under
// $ARTIFACTS (default: the repository's git-ignored artifacts/ directory).
package browser
