# healthweb's tasks. Every recipe installs what it needs first, so `make run` and
# `make test` work on a fresh machine with rustup, Python 3 and Node.js.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
# `cargo install` puts tools in $CARGO_HOME/bin (default ~/.cargo/bin).
export PATH := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(HOME)/.cargo/bin:$(PATH)

TOOLS := .tools
VENV := $(TOOLS)/venv
# The wasm-bindgen CLI must match the library version in Cargo.lock exactly.
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PKG := www/pkg
PKG_LITE := www/pkg-lite
TARGET_DIR = $${CARGO_TARGET_DIR:-target}

.PHONY: run build server demo-fleet pkg pkg-lite test test-deps wasm-deps browser-deps python-deps postgres-deps size-deps lint size size-report bench flame fuzz

## run: build everything, then serve the status page on http://127.0.0.1:8080
run: build
	$(TARGET_DIR)/release/healthweb serve --listen 127.0.0.1:8080 --www www

## build: target/release/healthweb and www/pkg, without running
build: server pkg

server:
	cargo build --release --bin healthweb

## pkg: the browser module for the page (default build: tonic over tonic-web-wasm-client)
pkg: wasm-deps
	web-client/build.sh web $(PKG)

## pkg-lite: the fetch-lite build (hand-written gRPC-Web over fetch), for byte counters
pkg-lite: wasm-deps
	web-client/build.sh web $(PKG_LITE) lite

## test: every test (Rust, browser, interop); installs Chromium, grpcio and PostgreSQL if missing.
## The browser tests run the debug `healthweb` that `cargo test` built; the release
## binary is built too, for the test that reads its dynamic section.
test: test-deps server
	HEALTHWEB_RELEASE_BIN=$$(realpath $(TARGET_DIR))/release/healthweb \
		cargo test -p healthweb-proto -p healthweb-server -p healthweb-client --features healthweb-client/native
	HEALTHWEB_BIN=$(TARGET_DIR)/debug/healthweb tests/browser/run.sh

test-deps: wasm-deps browser-deps python-deps postgres-deps

## wasm-deps: the wasm32 target, wasm-pack, and wasm-bindgen-cli at Cargo.lock's version
wasm-deps:
	rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	command -v wasm-pack >/dev/null || cargo install wasm-pack --locked
	[ "$$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" = "$(WASM_BINDGEN_VERSION)" ] \
		|| cargo install wasm-bindgen-cli --version "$(WASM_BINDGEN_VERSION)" --force

# Debian's Chromium and its driver (never a browser a tool downloads), and curl.
browser-deps:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v curl >/dev/null \
		|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver curl; }
	cd tests/browser && { [ -d node_modules ] || npm ci --no-audit --no-fund; }

# Debian's PostgreSQL, for the replica tests' throwaway clusters (initdb and
# pg_ctl live in /usr/lib/postgresql/N/bin, not on PATH).
postgres-deps:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Python grpcio (a gRPC client no one here wrote), prometheus-client (a real
# OpenMetrics parser) and PyYAML (deploy/'s manifests), for the interop tests;
# reinstalled when the list changes.
python-deps:
	cmp -s tests/interop/requirements.txt $(VENV)/requirements.txt || { \
		python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r tests/interop/requirements.txt \
		&& cp tests/interop/requirements.txt $(VENV)/requirements.txt; }

## lint: rustfmt check and clippy -D warnings, native and wasm (both browser builds)
lint: wasm-deps
	cargo fmt --all --check
	cargo clippy --workspace --exclude healthweb-client --all-targets -- -D warnings
	cargo clippy -p healthweb-client --all-targets -- -D warnings
	cargo clippy -p healthweb-client --all-targets --features native -- -D warnings
	cargo clippy -p healthweb-client --all-targets --no-default-features --features fetch-lite -- -D warnings
	cargo clippy -p healthweb-client --target wasm32-unknown-unknown --all-targets -- -D warnings
	cargo clippy -p healthweb-client --target wasm32-unknown-unknown --all-targets \
		--no-default-features --features fetch-lite -- -D warnings

## size: both browser builds (.wasm + JS glue), gzip -9 and Brotli, against their budgets
size: pkg pkg-lite size-deps
	web-client/size.sh $(PKG) $(PKG_LITE)

## size-report: where the default build's bytes go (twiggy); BUILD=lite for the other
size-report: wasm-deps
	command -v twiggy >/dev/null || cargo install twiggy --locked
	web-client/size-report.sh $(or $(BUILD),default)

# Brotli's command-line tool, from Debian.
size-deps:
	command -v brotli >/dev/null \
		|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq brotli; }

## bench: healthweb next to tonic-health, grpc-js, connect-node and grpcio; writes BENCHMARKS.md
## (Brotli for the browser sizes and Chromium for the fleet's page are installed if missing)
bench: pkg pkg-lite size-deps browser-deps
	python3 bench/run.py

## demo-fleet: N=10000 services on SERVERS=10 test upstreams, flipping at random, and a
## healthweb monitoring them with the status page; Ctrl-C stops
demo-fleet: server pkg
	python3 bench/fleet.py --demo --no-build --services $(or $(N),10000) --servers $(or $(SERVERS),10)

## flame: perf flame graphs of Check (h2c, gRPC-Web HTTP/1.1) and of a 100k-watcher flip, in docs/
flame:
	python3 bench/flame.py

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request config frames

## fuzz: libFuzzer (cargo-fuzz) over the request path, the config parser and the
## client's frame decoder, FUZZ_SECONDS each (default 60), from the seeds in fuzz/seeds.
## cargo-fuzz instruments with -Z flags; RUSTC_BOOTSTRAP lets the stable toolchain
## take them (no nightly toolchain can be downloaded where this runs).
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$target; \
		RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$target corpus/$$target seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 || exit 1; \
	done
