#!/usr/bin/env python3
"""The telemetry summary load test (docs/benchmarks.md, "Telemetry summary under load").

Fills a fresh SQLite database with ROWS invocation records (straight through SQL, in one
transaction), starts `promptgate serve` on it, and sends CONCURRENCY simultaneous
`GET …/telemetry/summary?promptId=…&compareTo=1.0.0` calls that each cover every record. Reports
the rows, each call's time, and the gateway's resident memory before the calls (VmRSS) and at
its peak (VmHWM from /proc/PID/status). Timings and memory are reported, never asserted; the exit
status is 1 only when a call fails or the answers do not count every record.

    bench/summary-load.sh                      # 1,500,000 rows, 4 concurrent calls
    bench/summary-load.sh --rows 150000 --concurrency 4
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ADMIN_ID = "summary-load-admin"
ADMIN_SECRET = "summary-load-admin-secret-0123456789abcdef"
PROMPT_ID = "0190c3a4-1d2e-7000-8000-000000000001"
BASE = "/api/v2/ai/llm/gateway"


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"summary-load: no {field} in /proc/{pid}/status")


def start(binary: str, workdir: str, db: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    env.update({"PROMPTGATE_ADMIN_CLIENT_ID": ADMIN_ID, "PROMPTGATE_ADMIN_CLIENT_SECRET": ADMIN_SECRET})
    log = open(os.path.join(workdir, "gateway.log"), "a", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--database-url", f"sqlite://{db}"],
                            stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=workdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(os.path.join(workdir, "gateway.log"), encoding="utf-8") as f:
            for line in f:
                if "listening" in line and "http://" in line:
                    url = line[line.index("http://"):].split()[0].rstrip(",\"'")
                    try:
                        urllib.request.urlopen(url + "/readyz", timeout=2).read()
                        return proc, url
                    except OSError:
                        pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("summary-load: the gateway did not start; see gateway.log")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def token(url: str) -> str:
    body = "grant_type=client_credentials".encode()
    request = urllib.request.Request(url + "/oauth/token", data=body, method="POST")
    import base64
    basic = base64.b64encode(f"{ADMIN_ID}:{ADMIN_SECRET}".encode()).decode()
    request.add_header("Authorization", "Basic " + basic)
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    return json.load(urllib.request.urlopen(request, timeout=30))["access_token"]


def fill(db: str, rows: int) -> None:
    """ROWS records of one prompt over three versions: about 1% errors, 0.5% blocked, a tenth
    with feedback, latencies spread over 200–2,200 ms."""
    conn = sqlite3.connect(db)
    conn.execute("BEGIN")
    conn.execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO invocations (id, timestamp, prompt_id, version, model, status, error_code,
            latency_ms, upstream_latency_ms, time_to_first_token_ms, prompt_tokens,
            completion_tokens, session_id, client_id, metadata, feedback_score,
            feedback_comment, feedback_at)
        SELECT printf('inv-load-%08d', i), 1767225600000 + i * 10, ?,
            CASE i % 3 WHEN 0 THEN '1.0.0' WHEN 1 THEN '1.1.0' ELSE '2.0.0' END, 'gpt-4o-mini',
            CASE WHEN i % 97 = 0 THEN 'ERROR' WHEN i % 211 = 0 THEN 'BLOCKED' ELSE 'SUCCESS' END,
            CASE WHEN i % 97 = 0 THEN 'upstream.error' END,
            200.0 + (abs(random()) % 200000) / 100.0, NULL, NULL, 120, 45, NULL, 'load', '{}',
            CASE WHEN i % 10 = 0 THEN ((i / 10) % 5) / 4.0 END, NULL,
            CASE WHEN i % 10 = 0 THEN 1767225600000 END
        FROM n""",
        (rows, PROMPT_ID),
    )
    conn.commit()
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-bin", required=True)
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="promptgate-summary-load-")
    db = os.path.join(workdir, "load.db")
    try:
        # The first start creates the schema (migrations); the records go in while it is down.
        proc, _ = start(args.gateway_bin, workdir, db)
        stop(proc)
        started = time.monotonic()
        fill(db, args.rows)
        fill_s = time.monotonic() - started

        proc, url = start(args.gateway_bin, workdir, db)
        bearer = token(url)
        rss_before = status_kib(proc.pid, "VmRSS")
        query = f"{url}{BASE}/telemetry/summary?promptId={PROMPT_ID}&compareTo=1.0.0"
        results: list = [None] * args.concurrency

        def call(i: int) -> None:
            request = urllib.request.Request(query, headers={"Authorization": f"Bearer {bearer}"})
            t0 = time.monotonic()
            try:
                body = json.load(urllib.request.urlopen(request, timeout=600))
                results[i] = (time.monotonic() - t0, body)
            except OSError as err:
                results[i] = (time.monotonic() - t0, {"error": str(err)})

        threads = [threading.Thread(target=call, args=(i,)) for i in range(args.concurrency)]
        wall = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - wall
        peak = status_kib(proc.pid, "VmHWM")
        stop(proc)

        ok = True
        times = []
        for seconds, body in results:
            times.append(seconds)
            counted = sum(e.get("count", 0) for e in body.get("entities", []))
            if counted != args.rows:
                ok = False
                print(f"summary-load: an answer counted {counted} records, not {args.rows}: "
                      f"{json.dumps(body)[:300]}", file=sys.stderr)
        report = {
            "rows": args.rows, "concurrency": args.concurrency, "fill_s": round(fill_s, 1),
            "call_s": [round(t, 2) for t in times], "wall_s": round(wall, 2),
            "rss_before_mib": round(rss_before / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
        }
        print(json.dumps(report))
        print(f"| {args.rows:,} rows | {args.concurrency} concurrent calls | "
              f"each {min(times):.2f}–{max(times):.2f} s (all done in {wall:.2f} s) | "
              f"RSS {rss_before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB |")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"summary-load: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
