# The two commands of README.md: `make demo` and `make test`. Each installs
# what it needs when it is missing, so they work on a fresh machine.

SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 8080

.PHONY: demo site walkthrough test test-suites bench sim pkg setup-rust setup-wasm setup-node setup-browser lint wasm-check

# The wasm-bindgen CLI must match the wasm-bindgen crate exactly.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/"/, "", $$3); print $$3}' Cargo.lock)
WASM := target/wasm32-unknown-unknown/wasm/oncely_js.wasm
WASM_OPT := node_modules/.bin/wasm-opt

## The demo checkout page (www/) paying through the npm package (pkg/),
## served with the package by the reference server on an embedded SQLite
## ledger at http://127.0.0.1:$(PORT), until Ctrl-C.
demo: pkg site
	$(CARGO) build --bin oncely-server
	@echo "oncely demo checkout: http://127.0.0.1:$(PORT)  (Ctrl-C stops it)"
	target/debug/oncely-server --addr 127.0.0.1:$(PORT) --db target/demo-ledger.db --www target/site

## The page and the package, as the server serves them.
site:
	rm -rf target/site && mkdir -p target/site
	cp -R www/. target/site/
	cp -R pkg target/site/pkg

## The CLI walkthrough: the reference server, and the oncely CLI against it
## with faults switched on (a lost response, a 503, a SIGKILL mid-request).
walkthrough: setup-rust
	$(CARGO) build --bin oncely --bin oncely-server
	PORT=$(PORT) demo/walkthrough.sh

## Formatting, lints, the browser target's build check, and every test:
## native, the core's tests again in headless Chromium (wasm-bindgen-test),
## and the npm package's tests (pkg-tests/: browsers, bundlers, Node, size).
## The native tests run beside a throwaway PostgreSQL cluster
## (tests/postgres/with-cluster.sh: the reference server on PostgreSQL).
test: setup-rust setup-wasm setup-node setup-browser lint wasm-check
	@# Beside a throwaway PostgreSQL cluster on loopback (installed when
	@# missing), stopped and removed afterwards: ONCELY_TEST_POSTGRES.
	tests/postgres/with-cluster.sh $(MAKE) --no-print-directory test-suites

# What `make test` runs once its PostgreSQL cluster is up.
test-suites:
	$(CARGO) test --workspace --all-targets --features oncely/postgres
	$(CARGO) test --workspace --doc --features oncely/postgres
	@# Before the browser run: tests/one_origin.rs loads the npm package
	@# (pkg/) into the page beside the Rust client.
	$(MAKE) pkg
	CHROMEDRIVER=$${CHROMEDRIVER:-/usr/bin/chromedriver} \
		$(CARGO) test -p oncely --target wasm32-unknown-unknown --tests
	$(CARGO) build --bin oncely-server
	node --test --test-concurrency=1 pkg-tests/ demo/

## Benchmarks: the native ones (criterion; their figures summary prints
## after them), PostgresStore beside FileStore and the reference server on
## PostgreSQL against SQLite (each beside a throwaway cluster), then what
## `send` adds over plain `fetch` in Chromium, and oncely beside its peers
## (workbox-background-sync, @tanstack/offline-transactions): bytes
## downloaded, time added over `fetch`, capabilities.
bench: setup-rust setup-browser pkg
	$(CARGO) bench -p oncely --bench overhead
	@# PostgresStore beside FileStore and raw, on a throwaway cluster.
	tests/postgres/with-cluster.sh $(CARGO) bench -p oncely --features postgres --bench postgres
	@# The reference server on PostgreSQL against SQLite.
	tests/postgres/with-cluster.sh $(CARGO) bench -p oncely-server --bench ledgers
	$(CARGO) build --bin oncely-server
	node pkg-tests/bench.mjs
	node pkg-tests/peers.mjs

## The deterministic simulation of the native client (tests/simulation/),
## in release mode: SEEDS seeds (default 100000) from START (default a
## fresh random start, so each run searches new ground; it is printed), or
## SEED=S alone, with its trace. Stops at the first failing seed and prints
## the command that replays it; prints seeds per second.
SEEDS ?= 100000
sim: setup-rust
	@if [ -n "$(SEED)" ]; then \
		ONCELY_SIM_SEED=$(SEED) $(CARGO) test --release -q -p oncely --test simulation \
			every_seed_keeps_the_promise -- --exact --nocapture; \
	else \
		start=$${START:-$$(( (RANDOM << 30) | (RANDOM << 15) | RANDOM ))}; \
		echo "simulating $(SEEDS) seeds from $$start"; \
		ONCELY_SIM_SEEDS=$(SEEDS) ONCELY_SIM_START=$$start $(CARGO) test --release -q -p oncely \
			--test simulation every_seed_keeps_the_promise -- --exact --nocapture; \
	fi

## The npm package: the browser build of the core (js/, `no_std`, plain
## exports: no bindings generator), shrunk by wasm-opt, and the JavaScript
## of pkg-template/ bundled by esbuild into one module per entry, minified
## by esbuild then terser (index.js for browsers and bundlers, node.js for Node).
pkg: setup-rust setup-node
	$(CARGO) build -p oncely-js --target wasm32-unknown-unknown --profile wasm
	rm -rf pkg && mkdir -p pkg
	@# --low-memory-unused: the first KiB is the bottom of Rust's 1 MiB stack,
	@# never reached, so small constant offsets fold into loads and stores.
	@# -aimfs 4: functions of up to 4 bytes are always inlined (default 2),
	@# measured smaller; larger values grow the module again.
	@# --flatten --rereloop, twice: the control flow rebuilt from flat code
	@# before each -Oz, measured ~55 bytes smaller gzipped (a third round
	@# gains nothing; a few seconds more to build).
	@# -Oz once more, then the functions in the order of their (Rust) names:
	@# a module's functions side by side, which gzip finds more alike
	@# (~100 bytes smaller than the optimizer's order).
	$(WASM_OPT) -aimfs 4 --flatten --rereloop -Oz --flatten --rereloop -Oz --converge -Oz --reorder-functions-by-name --low-memory-unused --strip-debug --strip-producers --strip-target-features \
		--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
		--enable-mutable-globals --enable-reference-types --enable-multivalue \
		$(WASM) -o pkg/oncely.wasm
	cp pkg-template/package.json pkg-template/index.d.ts pkg-template/worker.d.ts pkg-template/README.md pkg-template/LICENSE pkg/
	node_modules/.bin/esbuild pkg-template/index.js pkg-template/node.js pkg-template/worker.js --bundle --minify \
		--format=esm --platform=neutral --external:node:* --log-level=warning --outdir=pkg
	@# terser's three passes over esbuild's output: ~180 bytes less, gzipped.
	@# It also shortens the property names in PRIVATE_PROPS (~30 bytes).
	for entry in index.js node.js worker.js; do \
		node_modules/.bin/terser pkg/$$entry --compress passes=3 --mangle --toplevel --module \
			--mangle-props 'regex=/^($(PRIVATE_PROPS))$$/' -o pkg/$$entry || exit 1; \
	done

# Property names used only inside pkg-template/*.js, which terser may
# shorten: an allow-list, so a name not on it is kept as it is. Never list a
# public name (index.d.ts: the API, options, Outcome, events, OncelyError),
# one of the platform's (fetch, IndexedDB, Web Locks…) or an export of the
# WebAssembly core (js/src/lib.rs): each is renamed everywhere it is used.
PRIVATE_PROPS := deadline|landing|unsettled|retryStatus|prunable|mine|free

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --features oncely/postgres -- -D warnings
	$(CARGO) clippy -p oncely --target wasm32-unknown-unknown -- -D warnings
	@# Alone, so the core builds without its `browser` feature, as the package does.
	$(CARGO) clippy -p oncely-js --target wasm32-unknown-unknown -- -D warnings

## The core must stay target-neutral: it builds for the browser from day one.
## And lean: the CLI's and the server's dependencies never reach a program
## that only depends on the `oncely` crate.
wasm-check:
	$(CARGO) check -p oncely --lib --target wasm32-unknown-unknown
	$(CARGO) check -p oncely --lib --target wasm32-unknown-unknown --no-default-features
	@if $(CARGO) tree -p oncely -e normal --prefix none | grep -E '^(axum|clap|dirs|serde_json|tokio-postgres) v' ; then \
		echo "the oncely crate depends on the CLI's or the server's dependencies, or on PostgreSQL without its feature (above)" >&2; exit 1; fi

setup-wasm: setup-rust
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
		echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (compiles for several minutes, once)"; \
		$(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

## The repository's JavaScript tooling (package.json): wasm-opt from npm's
## binaryen, playwright-core and Vite for the browser tests, React and
## TanStack Query for the React test app.
setup-node:
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 or later" >&2; exit 1; }
	@[ -x $(WASM_OPT) ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

## Debian's Chromium and ChromeDriver, for the browser tests.
setup-browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		command -v apt-get >/dev/null || { echo "install chromium and chromedriver" >&2; exit 1; }; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; \
	fi

setup-rust:
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
	@if command -v rustup >/dev/null; then \
		rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt; \
		rustup component list --installed | grep -q '^clippy' || rustup component add clippy; \
		rustup target list --installed | grep -q '^wasm32-unknown-unknown$$' || rustup target add wasm32-unknown-unknown; \
	fi
