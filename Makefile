# The two commands of README.md: `make demo` and `make test`. Each installs
# what it needs when it is missing, so they work on a fresh machine.

SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 8080

.PHONY: demo test bench setup-rust lint wasm-check

## Builds the reference server and the CLI, starts the server on
## 127.0.0.1:$(PORT) and walks through the CLI against it with faults on.
demo: setup-rust
	$(CARGO) build --bin oncely --bin oncely-server
	PORT=$(PORT) demo/walkthrough.sh

## Formatting, lints, the browser target's build check, and every test.
test: setup-rust lint wasm-check
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## Benchmarks (criterion); the figures summary prints last.
bench: setup-rust
	$(CARGO) bench -p oncely --bench overhead

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The core must stay target-neutral: it builds for the browser from day one.
## And lean: the CLI's and the server's dependencies never reach a program
## that only depends on the `oncely` crate.
wasm-check:
	$(CARGO) check -p oncely --lib --target wasm32-unknown-unknown
	@if $(CARGO) tree -p oncely -e normal --prefix none | grep -E '^(axum|clap|dirs|serde_json) v' ; then \
		echo "the oncely crate depends on the CLI's or the server's dependencies (above)" >&2; exit 1; fi

setup-rust:
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
	@if command -v rustup >/dev/null; then \
		rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt; \
		rustup component list --installed | grep -q '^clippy' || rustup component add clippy; \
		rustup target list --installed | grep -q '^wasm32-unknown-unknown$$' || rustup target add wasm32-unknown-unknown; \
	fi
