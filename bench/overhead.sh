#!/usr/bin/env bash
# The gateway overhead benchmark (docs/benchmarks.md, "Gateway overhead"): builds the release
# binaries, installs the load generator (oha) when it is missing, then runs bench/overhead.py,
# which starts a fake upstream and a gateway (authentication, PII guardrail, telemetry and audit
# log on), sends the same load straight to the fake and through the gateway, and reports the
# difference: a Markdown table on stdout and a JSON report whose path it prints.
#
#   bench/overhead.sh            # full: concurrency 1, then 100, 500, 1000, 2000, 5000 req/s, 15 s each
#   bench/overhead.sh --smoke    # CI: ~2 s at concurrency 1 and at 100 req/s, 20 streams;
#                                #     exits 1 on any failed request or a malformed report
#   bench/overhead.sh --phases c1,100 --seconds 5 --out report.json
#   bench/overhead.sh --front-door openai   # the same through /v1/chat/completions
#   bench/overhead.sh --durability ack-after-store   # each answer waits for its record's commit
#   bench/overhead.sh --help     # every option
#
# Timings are never asserted; the exit status says only whether every request succeeded and
# the report is well formed.
set -euo pipefail

OHA_VERSION=1.16.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

for arg in "$@"; do
    if [[ $arg == -h || $arg == --help ]]; then
        exec python3 bench/overhead.py --gateway-bin x --fake-bin x --help
    fi
done

oha_bin=${OHA:-}
if [[ -z $oha_bin ]]; then
    if command -v oha >/dev/null && [[ $(oha --version) == "oha $OHA_VERSION" ]]; then
        oha_bin=$(command -v oha)
    elif [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/oha ]] &&
        [[ $("${CARGO_HOME:-$HOME/.cargo}/bin/oha" --version) == "oha $OHA_VERSION" ]]; then
        oha_bin=${CARGO_HOME:-$HOME/.cargo}/bin/oha
    else
        echo "overhead: installing oha $OHA_VERSION (cargo install, once)" >&2
        cargo install oha --locked --version "$OHA_VERSION" >&2
        oha_bin=${CARGO_HOME:-$HOME/.cargo}/bin/oha
    fi
fi

# The smoke run checks that the benchmark works, not how fast anything is: it uses the debug
# binaries the test suite builds anyway, so CI does not pay for a release build.
profile=release
for arg in "$@"; do
    [[ $arg == --smoke ]] && profile=debug
done
echo "overhead: building the $profile binaries" >&2
if [[ $profile == release ]]; then
    cargo build --release --locked -p promptgate -p promptgate-fake-upstream >&2
else
    cargo build --locked -p promptgate -p promptgate-fake-upstream >&2
fi
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac

exec python3 bench/overhead.py \
    --oha "$oha_bin" \
    --gateway-bin "$target/$profile/promptgate" \
    --fake-bin "$target/$profile/promptgate-fake-upstream" \
    "$@"
