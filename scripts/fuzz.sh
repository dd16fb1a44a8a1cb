#!/usr/bin/env bash
# `make fuzz FUZZ_SECONDS=N`: runs every cargo-fuzz target (fuzz/fuzz_targets/) for N seconds
# with libFuzzer, from the seed corpus in fuzz/corpus/TARGET (the corpus it grows goes to
# fuzz/work/, not into the repository), and prints the executions per target. A crash stops
# with the input saved under fuzz/artifacts/TARGET/: copy it to fuzz/regressions/TARGET/ once
# fixed, and `make test` keeps running it.
# Needs the nightly toolchain (libFuzzer's coverage instrumentation) and cargo-fuzz, which is
# installed from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly); libFuzzer needs it" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^hallmark-fuzz$')
(cd fuzz && cargo +nightly fuzz build -O)
declare -A runs
failed=""
for t in $targets; do
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
    log="fuzz/work/$t.log"
    if (cd fuzz && cargo +nightly fuzz run -O "$t" "work/$t" "corpus/$t" -- \
            -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="artifacts/$t/" -print_final_stats=1) >"$log" 2>&1; then
        runs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    else
        runs[$t]="CRASH (see $log, input in fuzz/artifacts/$t/)"
        failed="$failed $t"
    fi
    printf 'fuzz: %-16s %s executions in %s s\n' "$t" "${runs[$t]}" "$secs"
done
echo
echo "| target | executions | seconds | crashes |"
echo "|---|---|---|---|"
for t in $targets; do
    case "${runs[$t]}" in
        CRASH*) echo "| $t | - | $secs | 1 |" ;;
        *) echo "| $t | ${runs[$t]} | $secs | 0 |" ;;
    esac
done
if [ -n "$failed" ]; then
    echo "fuzz: crashes in:$failed" >&2
    exit 1
fi
