#!/usr/bin/env bash
# The telemetry summary load test (docs/benchmarks.md, "Telemetry summary under load"): builds
# the release binary, then runs bench/summary_load.py, which fills a fresh SQLite database with
# 1.5 M invocation records, starts `promptgate serve` on it, sends 4 concurrent summary calls over
# every record and reports the rows, each call's time and the gateway's peak RSS (VmHWM).
#
#   bench/summary-load.sh                                   # 1,500,000 rows, 4 concurrent calls
#   bench/summary-load.sh --rows 150000 --concurrency 8     # other sizes
#   PROMPTGATE_BIN=target/debug/promptgate bench/summary-load.sh --rows 10000   # no release build
#
# Timings and memory are reported, never asserted; the exit status is 1 only when a call fails
# or an answer does not count every record.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${PROMPTGATE_BIN:-}
if [[ -z $bin ]]; then
    echo "summary-load: building the release binary" >&2
    cargo build --release --locked -p promptgate >&2
    target=${CARGO_TARGET_DIR:-$root/target}
    case "$target" in /*) ;; *) target="$root/$target" ;; esac
    bin="$target/release/promptgate"
fi
exec python3 bench/summary_load.py --gateway-bin "$bin" "$@"
