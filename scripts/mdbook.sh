#!/usr/bin/env bash
# Installs mdBook, pinned, into .tools/ when it is missing or another version (built from
# crates.io with cargo: a few minutes the first time), then prints its path. `make docs` builds
# the book with it; `make deps` (so `make test`) installs it for the test that builds the book
# (tests/it/docs_book.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION="0.5.4"
mdbook="$PWD/.tools/bin/mdbook"
if ! "$mdbook" --version 2>/dev/null | grep -qx "mdbook v$MDBOOK_VERSION"; then
    echo "deps: installing mdbook $MDBOOK_VERSION into .tools/ (cargo install)" >&2
    cargo install --locked --quiet --root "$PWD/.tools" --no-default-features --features search \
        mdbook --version "$MDBOOK_VERSION" >&2
fi
echo "$mdbook"
