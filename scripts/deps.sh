#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12: system packages and a repo-local Python venv
# (.venv) with pkilint. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES="softhsm2 opensc openssl curl python3-venv osslsigncode openjdk-17-jdk-headless"
PKILINT_VERSION="${PKILINT_VERSION:-0.13.3}"

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

if [ -x .venv/bin/lint_pkix_cert ]; then
    echo "deps: .venv has pkilint ($(.venv/bin/pip show pkilint 2>/dev/null | sed -n 's/^Version: //p'))"
else
    echo "deps: creating .venv with pkilint==$PKILINT_VERSION"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "pkilint==$PKILINT_VERSION"
    test -x .venv/bin/lint_pkix_cert
fi
