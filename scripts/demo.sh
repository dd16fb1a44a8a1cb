#!/usr/bin/env bash
# `make run`: create a demo CA in ./demo (once) and serve it.
#
# With SoftHSM2 installed, the CA keys live in a SoftHSM2 token (demo/tokens); otherwise in
# encrypted files (development only). The demo directory is gitignored; `rm -rf demo` starts over.
# HALLMARK_DEMO_LISTEN and HALLMARK_DEMO_API_LISTEN choose other addresses than 127.0.0.1:8080
# and :8443 when the demo is created (tests/it/make_run.rs uses free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DEMO="$ROOT/demo"
HM="${HALLMARK_BIN:-$ROOT/target/release/hallmark}"
MODULE=/usr/lib/softhsm/libsofthsm2.so
CONFIG="$DEMO/hallmark.toml"

if [ ! -x "$HM" ]; then
    echo "demo: $HM is missing; run 'cargo build --release' (make run does)" >&2
    exit 1
fi

random_secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
LISTEN_ARGS=(--listen "${HALLMARK_DEMO_LISTEN:-127.0.0.1:8080}"
    --api-listen "${HALLMARK_DEMO_API_LISTEN:-127.0.0.1:8443}")

if [ ! -e "$CONFIG" ]; then
    if [ -e "$DEMO" ]; then
        echo "demo: $DEMO exists but holds no hallmark.toml (an unfinished demo)." >&2
        echo "demo: remove it with 'rm -rf demo' and run 'make run' again." >&2
        exit 1
    fi
    mkdir -p "$DEMO"
    if [ -f "$MODULE" ] && command -v softhsm2-util >/dev/null 2>&1; then
        echo "demo: creating a CA with its keys in a SoftHSM2 token (label hallmark-demo)"
        mkdir -p "$DEMO/tokens"
        printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
            "$DEMO/tokens" >"$DEMO/softhsm2.conf"
        (umask 077; random_secret >"$DEMO/pin"; random_secret >"$DEMO/so-pin")
        chmod 600 "$DEMO/pin" "$DEMO/so-pin"
        export SOFTHSM2_CONF="$DEMO/softhsm2.conf"
        softhsm2-util --init-token --free --label hallmark-demo \
            --pin "$(cat "$DEMO/pin")" --so-pin "$(cat "$DEMO/so-pin")"
        "$HM" init --dir "$DEMO" --keys pkcs11 --pkcs11-module "$MODULE" \
            --token-label hallmark-demo --pin-file "$DEMO/pin" "${LISTEN_ARGS[@]}"
    else
        cat >&2 <<'WARN'

  ########################################################################
  ##                                                                    ##
  ##  WARNING: SoftHSM2 is not installed                                ##
  ##  (/usr/lib/softhsm/libsofthsm2.so or softhsm2-util is missing).    ##
  ##                                                                    ##
  ##  This demo CA keeps its keys in ENCRYPTED FILES on this disk       ##
  ##  (--keys soft), NOT in an HSM. For development only.               ##
  ##                                                                    ##
  ##  For an HSM-backed demo: make deps && rm -rf demo && make run      ##
  ##                                                                    ##
  ########################################################################

WARN
        "$HM" init --dir "$DEMO" --keys soft "${LISTEN_ARGS[@]}"
    fi
fi

HSM=no
if grep -q 'kind = "pkcs11"' "$CONFIG"; then
    HSM=yes
    export SOFTHSM2_CONF="$DEMO/softhsm2.conf"
fi

if ! "$HM" --config "$CONFIG" publisher show acme >/dev/null 2>&1; then
    "$HM" --config "$CONFIG" publisher add acme --org "Acme Corp" --country US \
        --state California --locality "San Jose" \
        --profiles code-signing,firmware-signing,timestamping,iot-device,station
fi

# The public listener ([server] listen) and the API listener ([api] listen), for the hints below.
LISTEN="$(sed -n '/^\[server\]/,/^\[/s/^listen = "\(.*\)"$/\1/p' "$CONFIG")"
API_LISTEN="$(sed -n '/^\[api\]/,/^\[/s/^listen = "\(.*\)"$/\1/p' "$CONFIG")"
echo
echo "Demo CA in $DEMO. In another shell, try:"
echo "  export PATH=\"$(dirname "$HM"):\$PATH\" HALLMARK_CONFIG=$CONFIG"
if [ "$HSM" = yes ]; then
    echo "  export SOFTHSM2_CONF=$DEMO/softhsm2.conf"
fi
# The release key is made by the first run's hint; later runs have it (creating it again
# would be a conflict), so only the first run suggests it.
if ! "$HM" --config "$CONFIG" key show release >/dev/null 2>&1; then
    echo "  hallmark key create --publisher acme --label release --algorithm p256"
fi
echo "  hallmark ca list; hallmark cert list; hallmark doctor"
echo "  hallmark ca cert root --out root.pem"
echo "  export HALLMARK_TOKEN=\$(hallmark token create --publisher acme --scopes issue,sign)"
echo "  curl --cacert root.pem https://${API_LISTEN:-127.0.0.1:8443}/readyz"
echo "  curl http://${LISTEN:-127.0.0.1:8080}/ca/root.pem"
echo "Web console for approvers and operators: https://${API_LISTEN:-127.0.0.1:8443}/ui/ (sign in with a token)"
echo "On a client machine (sign, request, approve then need no --server/--ca):"
echo "  hallmark client bootstrap --server https://${API_LISTEN:-127.0.0.1:8443} --fingerprint $("$HM" --config "$CONFIG" ca fingerprint root) --public http://${LISTEN:-127.0.0.1:8080}"
echo "  hallmark client login --token-env HALLMARK_TOKEN"
echo "  echo hello > hello.txt && hallmark sign cms hello.txt --key release --timestamp"
echo "  hallmark verify hello.txt --signature hello.txt.p7s"
echo "Ctrl-C stops the server; rm -rf demo starts over."
echo
exec "$HM" --config "$CONFIG" serve
