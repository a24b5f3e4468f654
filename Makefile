# Plain targets; see README for what each one is for.
#   make test           tools, go vet, then every test with the race detector
#   make test RACE=     the same without the race detector
#   make fuzz           each Fuzz target for FUZZTIME (default 20s)
#   PKGS=./internal/x/  limits test and fuzz to some packages

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

GO           ?= go
RACE         ?= -race
TEST_TIMEOUT ?= 20m
FUZZTIME     ?= 20s
PKGS         ?= ./...

.PHONY: build demo tools test fuzz

build:
	$(GO) build -buildvcs=false -o bin/edge ./cmd/edge

demo: build
	./bin/edge demo

tools:
	scripts/tools.sh

test: tools
	$(GO) vet $(PKGS)
	@# Allocation pins skip under -race (it allocates): run them without first.
	$(GO) test -count=1 -run 'Allocs' $(PKGS)
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# go test -list prints a package's matching names, then its "ok <pkg>" line.
fuzz:
	@targets="$$($(GO) test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/ { n[++c] = $$1; next } /^ok/ { for (i = 1; i <= c; i++) print $$2, n[i]; c = 0 }')"; \
	[ -n "$$targets" ] || { echo "fuzz: no Fuzz targets"; exit 0; }; \
	while read -r pkg fn; do \
		echo "fuzz: $$pkg $$fn for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	done <<<"$$targets"

# The load harness (bench/README.md): builds everything, starts every server on
# loopback, writes bench/results/DATE-COMMIT.md. bench-short takes under two
# minutes. BENCHFLAGS passes more flags, e.g. BENCHFLAGS=-perf.
BENCHFLAGS ?=
.PHONY: bench bench-short
bench:
	$(GO) run ./bench/cmd/bench $(BENCHFLAGS)

bench-short:
	$(GO) run ./bench/cmd/bench -short $(BENCHFLAGS)
