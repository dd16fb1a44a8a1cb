# hallmark: the two commands are `make run` (a demo CA, served) and `make test` (every test).
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV_BIN := $(CURDIR)/.venv/bin

.PHONY: help deps test lint run docs bench fuzz crash-test clean

help:
	@echo "make run    build, create a demo CA in ./demo (SoftHSM2 if installed) and serve it"
	@echo "make test   install test tools (make deps), then fmt check, clippy and every test"
	@echo "make deps   apt packages (softhsm2 opensc openssl curl osslsigncode JDK gcab msitools wixl, libp11 engine, sbsigntool, p11-kit, rpm, gpg, skopeo, docker-registry, reprepro, chromium), .venv (pkilint imgtool pycose certbot signify schemathesis pyyaml) and tests/console (npm: playwright-core axe-core), mdbook in .tools"
	@echo "make docs   regenerate docs/reference/cli.md (clap) and http.md (openapi.yaml), man pages in target/man, and build the book (docs/) into target/book with mdBook (installed into .tools when missing)"
	@echo "make lint   cargo fmt --check and clippy"
	@echo "make bench  issuance, revocation, factory, signing, PKCS#11, OpenPGP and console benchmarks against their peers (prints ratios)"
	@echo "make crash-test  kill -9 the server at random moments under load, restart, check every record (HALLMARK_CRASH_KILLS, default 8)"
	@echo "make fuzz   every cargo-fuzz target for FUZZ_SECONDS (default 60) each, from fuzz/corpus; prints executions"
	@echo "make clean  cargo clean and remove .venv (./demo is kept)"

deps:
	@scripts/deps.sh

# A one-shot build gains nothing from incremental caches, which are the largest thing in
# target/; export CARGO_INCREMENTAL=1 to keep them while iterating.
test: export CARGO_INCREMENTAL ?= 0
test: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo build -p hallmark-pkcs11
	PATH="$(VENV_BIN):$$PATH" HALLMARK_TOOLS_BIN="$(VENV_BIN)" cargo test --workspace --no-fail-fast

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

run:
	cargo build --release --workspace
	@scripts/demo.sh

# The docs book: the reference pages regenerated (tests/it/docs_book.rs fails when the committed
# ones differ), then the HTML in target/book/ with mdBook, pinned, which scripts/mdbook.sh
# builds from crates.io into .tools/ the first time (a few minutes).
docs:
	@scripts/mdbook.sh > /dev/null
	cargo run --quiet --example cli_docs
	@py="$(VENV_BIN)/python3"; "$$py" -c 'import yaml' 2>/dev/null || py=python3; "$$py" scripts/http_reference.py
	.tools/bin/mdbook build
	@echo "docs: the book is in target/book/index.html"

bench:
	@scripts/deps.sh bench
	cargo build --release -p hallmark-pkcs11
	PATH="$(VENV_BIN):$$PATH" cargo bench --bench issuance --bench revocation --bench factory --bench signing --bench pkcs11 --bench openpgp --bench console

crash-test: deps
	PATH="$(VENV_BIN):$$PATH" HALLMARK_TOOLS_BIN="$(VENV_BIN)" cargo test --features crash-test --test crash -- --nocapture

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	cargo clean
	rm -rf .venv
