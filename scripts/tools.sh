#!/usr/bin/env bash
# Installs the pinned tools the tests need (see ../shared/TESTING.md beside the checkout) and is a fast
# no-op when they are already there:
#   .tools/bin/versitygw         S3 gateway            (Go module proxy)
#   .tools/bin/minio             S3 with STS           (Go module proxy)
#   .tools/azurite/node_modules  Azure Blob emulator   (npm)
#   chromium nginx-light wrk     browser, proxy, load  (apt, Debian 12)
#   gcc libc6-dev                cgo, for go test -race (apt)
#   postgresql redis-server      connection store, fleet limits (apt; tests start their own)
#   ffmpeg libimage-exiftool-perl  asset-check oracles and fixtures (apt)
# .tools/ is git-ignored. Fails loudly when something cannot be installed.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
AZURITE_VERSION=3.37.0
APT_PACKAGES=(chromium nginx-light wrk gcc libc6-dev postgresql redis-server ffmpeg libimage-exiftool-perl)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"

die() { echo "tools: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"; }

mkdir -p "$TOOLS/bin"

# One install at a time: a second run waits here for the first.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$TOOLS/.lock"
	flock 9
fi

# --- versitygw -------------------------------------------------------------
need go "install Go 1.26"
versitygw="$TOOLS/bin/versitygw"
versitygw_version() {
	[ -x "$versitygw" ] || return 0
	go version -m "$versitygw" 2>/dev/null |
		awk '$1 == "mod" && $2 == "github.com/versity/versitygw" { print $3 }'
}
if [ "$(versitygw_version)" != "$VERSITYGW_VERSION" ]; then
	echo "versitygw $VERSITYGW_VERSION: installing (go install, about 90 s cold)"
	GOBIN="$TOOLS/bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" ||
		die "go install of versitygw $VERSITYGW_VERSION failed"
	got="$(versitygw_version)"
	[ "$got" = "$VERSITYGW_VERSION" ] || die "versitygw: installed version is '$got', want $VERSITYGW_VERSION"
fi
echo "versitygw $VERSITYGW_VERSION: ok (.tools/bin/versitygw)"

# --- MinIO -----------------------------------------------------------------
# For the assume-role tests: MinIO implements STS AssumeRole and checks
# session tokens on presigned URLs. Upstream publishes no tagged module
# versions any more, hence the pseudo-version.
minio="$TOOLS/bin/minio"
minio_version() {
	[ -x "$minio" ] || return 0
	go version -m "$minio" 2>/dev/null |
		awk '$1 == "mod" && $2 == "github.com/minio/minio" { print $3 }'
}
if [ "$(minio_version)" != "$MINIO_VERSION" ]; then
	echo "minio $MINIO_VERSION: installing (go install, about 3 min cold)"
	GOBIN="$TOOLS/bin" go install "github.com/minio/minio@$MINIO_VERSION" ||
		die "go install of minio $MINIO_VERSION failed"
	got="$(minio_version)"
	[ "$got" = "$MINIO_VERSION" ] || die "minio: installed version is '$got', want $MINIO_VERSION"
fi
echo "minio $MINIO_VERSION: ok (.tools/bin/minio)"

# --- Azurite ---------------------------------------------------------------
need node "install Node.js 20 or later"
need npm "install npm (comes with Node.js)"
azurite_pkg="$TOOLS/azurite/node_modules/azurite/package.json"
azurite_main="$TOOLS/azurite/node_modules/azurite/dist/src/blob/main.js"
azurite_version() {
	[ -f "$azurite_pkg" ] && [ -f "$azurite_main" ] || return 0
	node -p 'require(process.argv[1]).version' "$azurite_pkg" 2>/dev/null || true
}
if [ "$(azurite_version)" != "$AZURITE_VERSION" ]; then
	echo "azurite $AZURITE_VERSION: installing (npm)"
	mkdir -p "$TOOLS/azurite"
	# Azurite declares node >=22 but runs on Node 20: npm only warns.
	npm install --no-audit --no-fund --save-exact --engine-strict=false --prefix "$TOOLS/azurite" "azurite@$AZURITE_VERSION" ||
		die "npm install of azurite $AZURITE_VERSION failed"
	got="$(azurite_version)"
	[ "$got" = "$AZURITE_VERSION" ] || die "azurite: installed version is '$got', want $AZURITE_VERSION"
fi
echo "azurite $AZURITE_VERSION: ok (.tools/azurite, node $(node --version))"

# --- Debian packages -------------------------------------------------------
installed() {
	# No pipe into grep -q: with pipefail, dpkg's SIGPIPE would read as "missing".
	local status
	status="$(dpkg -s "$1" 2>/dev/null)" || return 1
	grep -q '^Status: install ok installed$' <<<"$status"
}
need dpkg "these tools need a Debian system (Debian 12)"
missing=()
for p in "${APT_PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages: ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]}"
	fi
	echo "apt: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || die "apt-get update failed"
	apt-get install -y -q "${missing[@]}" || die "apt-get install ${missing[*]} failed"
	for p in "${missing[@]}"; do
		installed "$p" || die "$p is still not installed"
	done
elif [ "$(id -u)" -ne 0 ]; then
	echo "apt: not root, skipped (all packages already installed)"
fi
for p in "${APT_PACKAGES[@]}"; do
	echo "$p $(dpkg-query -W -f '${Version}' "$p"): ok"
done
