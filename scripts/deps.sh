#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12: system packages and a repo-local Python venv
# (.venv) with pkilint. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES="softhsm2 opensc openssl curl jq python3-venv osslsigncode openjdk-17-jdk-headless gcab msitools wixl libengine-pkcs11-openssl sbsigntool p11-kit rpm apt-utils gpg gpgv skopeo docker-registry apache2-utils reprepro chromium"
# `scripts/deps.sh bench` (make bench) adds the benchmarks' peers and load generator: wrk,
# cfssl's OCSP responder and nginx.
if [ "${1:-}" = "bench" ]; then
    PACKAGES="$PACKAGES wrk golang-cfssl nginx-light"
fi
PKILINT_VERSION="${PKILINT_VERSION:-0.13.3}"

# mdBook (pinned, in .tools/bin) for the test that builds the docs book as `make docs` does.
# Compiling it takes a few minutes of CPU the first time, so it starts now, in the background,
# while the steps below mostly wait on the network and the disk; its result is checked at the end.
mkdir -p .tools
scripts/mdbook.sh > .tools/mdbook.path 2> .tools/mdbook.log &
mdbook_pid=$!

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    sudo_if_needed apt-get update
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
else
    echo "deps: system packages present ($PACKAGES)"
fi

# Python tools, pinned: pkilint (certificate/CRL/OCSP lints), imgtool (MCUboot verify), pycose with
# cbor2<6 (COSE_Sign1 verify; pycose 1.1.0 breaks on cbor2 6), certbot (ACME client), signify with
# olefile (Authenticode verification by Windows' rules, PE and MSI: a second verifier beside
# osslsigncode), schemathesis (the HTTP API against openapi.yaml).
PY_PACKAGES="pkilint==$PKILINT_VERSION imgtool==2.5.0 pycose==1.1.0 cbor2<6 certbot==5.8.0 signify==0.9.3 olefile==0.47 schemathesis==4.32.5 pyyaml==6.0.4"
stamp=".venv/.hallmark-deps"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PY_PACKAGES" ]; then
    echo "deps: .venv has $PY_PACKAGES"
else
    echo "deps: installing into .venv: $PY_PACKAGES"
    [ -x .venv/bin/pip ] || python3 -m venv .venv
    # shellcheck disable=SC2086
    .venv/bin/pip install --quiet --disable-pip-version-check $PY_PACKAGES
    for tool in lint_pkix_cert imgtool certbot schemathesis; do
        test -x ".venv/bin/$tool" || { echo "deps: .venv/bin/$tool missing after install" >&2; exit 1; }
    done
    .venv/bin/python -c 'import pycose, cbor2' || { echo "deps: pycose/cbor2 do not import" >&2; exit 1; }
    .venv/bin/python -c 'import yaml' || { echo "deps: pyyaml does not import (tests/it/oidc.rs reads examples/*.yml)" >&2; exit 1; }
    # signify needs oscrypto, whose last release (1.3.0) cannot read a two-digit OpenSSL patch
    # version ("3.0.19") and refuses to load; upstream fixed the pattern after that release.
    # The same one-line fix, applied to the venv's copy:
    .venv/bin/python - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("oscrypto")
old = "'\\\\b(\\\\d\\\\.\\\\d\\\\.\\\\d[a-z]*)\\\\b'"
new = "'\\\\b(\\\\d\\\\.\\\\d+\\\\.\\\\d+[a-z]*)\\\\b'"
# The ctypes and the cffi loaders (cffi is used when installed, as certbot installs it).
for name in ("_libcrypto_ctypes.py", "_libcrypto_cffi.py"):
    f = pathlib.Path(spec.origin).parent / "_openssl" / name
    text = f.read_text()
    if old in text:
        f.write_text(text.replace(old, new))
PY
    .venv/bin/python -c 'import signify.authenticode, olefile' || { echo "deps: signify does not import" >&2; exit 1; }
    echo "$PY_PACKAGES" > "$stamp"
fi

# The web console's browser tests (tests/it/console.rs): playwright-core drives Debian's chromium
# (no browser download), axe-core checks accessibility; pinned by tests/console/package-lock.json.
for t in node npm; do
    command -v "$t" >/dev/null || { echo "deps: '$t' is not installed; the console's browser tests need Node.js 20 and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
done
if [ -f tests/console/node_modules/.package-lock.json ] \
    && cmp -s <(grep -v '"lockfileVersion"' tests/console/package-lock.json | grep -E '"version"') \
              <(grep -v '"lockfileVersion"' tests/console/node_modules/.package-lock.json | grep -E '"version"'); then
    echo "deps: tests/console has playwright-core and axe-core"
else
    echo "deps: npm ci in tests/console (playwright-core, axe-core)"
    npm ci --prefix tests/console --no-audit --no-fund --loglevel=error
fi
for m in playwright-core axe-core; do
    test -d "tests/console/node_modules/$m" || { echo "deps: tests/console/node_modules/$m missing after npm ci" >&2; exit 1; }
done

# mdBook, started at the top.
if ! wait "$mdbook_pid"; then
    cat .tools/mdbook.log >&2
    echo "deps: installing mdbook into .tools/ failed (see above)" >&2
    exit 1
fi
cat .tools/mdbook.log >&2
mdbook=$(cat .tools/mdbook.path)
echo "deps: $("$mdbook" --version) in .tools/bin"

# imgtool, certbot and the other Python tools live only in .venv/bin; the book's blocks expect
# it on PATH (the tour's set-up line adds it, with the release build).
echo "deps: the Python tools (imgtool, certbot, ...) are in .venv/bin; to run the book's commands, put it on PATH:"
echo "  export PATH=\"$PWD/.venv/bin:\$PATH\""
