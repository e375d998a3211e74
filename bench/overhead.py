#!/usr/bin/env python3
"""The gateway overhead benchmark: the same requests straight to a fake upstream and through
promptgate, at concurrency 1 and at fixed open-loop rates, and the difference.

Run it through `bench/overhead.sh`, which builds the binaries and installs oha first; this file
does the rest (standard library only):

1. starts `promptgate-fake-upstream` (fixed delay, fixed answer) and `promptgate serve` on a
   fresh SQLite database in a temporary directory, with a `[[model_endpoints]]` of provider
   `openai` pointing at the fake, `[rate_limits]` high enough never to refuse the load, and
   telemetry and the audit log on (their defaults);
2. gets an OAuth token (client credentials) and creates the benchmark prompt with the PII
   guardrail on (`safetyGuardrails.contentFiltering: ["pii"]`);
3. for each phase runs oha twice, first straight at the fake's `POST /v1/chat/completions` with
   the body the gateway itself would send, then at the gateway's `POST …/invocations` with the
   bearer token; samples the gateway's CPU time (/proc/PID/stat utime+stime) around its run and
   its peak RSS (/proc/PID/status VmHWM) after it;
4. measures streaming time to first token with its own client (oha cannot see the first token
   of an event stream): N streamed requests one at a time, alternating direct and gateway, each
   timed from just before the request is written to the first body line that carries text;
5. writes a JSON report, prints a Markdown table, and checks the report.

Overhead is gateway minus direct, per percentile (the difference of the two distributions'
percentiles, not a percentile of per-request differences: the two runs are separate requests).
Exit status: 0, or 1 when any request failed (non-2xx or a connection error) or the report is
malformed; timings are never asserted.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

SCHEMA = "promptgate-overhead/1"
INVOCATIONS = "/api/v2/ai/llm/gateway/invocations"
OPENAI_CHAT = "/v1/chat/completions"
PROMPTS = "/api/v2/ai/llm/gateway/prompts"
PERCENTILES = ["p50", "p90", "p99", "p99.9"]
STAT_KEYS = PERCENTILES + ["max"]

ADMIN_ID = "bench-admin"
ADMIN_SECRET = "bench-admin-secret-0123456789abcdef"
KEY_VAR = "PROMPTGATE_BENCH_UPSTREAM_KEY"
ENDPOINT_REF = "bench/openai"
MODEL = "gpt-fake"
SYSTEM_PROMPT = (
    "You are a helpful customer support agent for an online shop. Answer briefly and politely, "
    "never ask for payment details, and hand over to a human when the customer is upset."
)
TEMPERATURE = 0.2
# `--tools`: the version owns 5 function tools and a json_schema response format; the direct
# requests carry the same definitions, so the upstream work is the same and the difference is
# the gateway's (building the request with them, and checking the output against the schema).
TOOLS = [
    {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties,
                       "required": list(properties), "additionalProperties": False}}}
    for name, description, properties in [
        ("lookup_order", "Find an order by its number.", {"order": {"type": "string"}}),
        ("track_parcel", "Where a parcel is now.", {"tracking": {"type": "string"},
                                                     "carrier": {"enum": ["dhl", "ups", "royal-mail"]}}),
        ("refund", "Refund part or all of an order.", {"order": {"type": "string"},
                                                        "amount": {"type": "number", "minimum": 0}}),
        ("update_address", "Change the delivery address.", {"order": {"type": "string"},
                                                             "address": {"type": "string", "maxLength": 500}}),
        ("handover", "Hand the conversation to a human.", {"reason": {"type": "string"}}),
    ]
]
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "support_answer", "strict": True,
    "schema": {"type": "object", "properties": {"answer": {"type": "string"},
                                                "handover": {"type": "boolean"}},
               "required": ["answer", "handover"], "additionalProperties": False}}}
USE_TOOLS = False
# `--template`: the same system prompt as a template with three variables, whose values render it
# back to SYSTEM_PROMPT exactly (so the upstream request is byte for byte the direct one).
TEMPLATE_PROMPT = (
    "You are a helpful {{role}} for {{ shop }}. Answer {{style}} and politely, "
    "never ask for payment details, and hand over to a human when the customer is upset."
)
TEMPLATE_VARIABLES = {"role": "customer support agent", "shop": "an online shop", "style": "briefly"}
TEMPLATE_SCHEMA = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "maxLength": 100},
        "shop": {"type": "string", "maxLength": 100},
        "style": {"enum": ["briefly", "in detail"], "default": "briefly"},
    },
    "required": ["role", "shop"],
}
# Set from `--template` before anything is sent.
USE_TEMPLATE = False
# A support message with an e-mail address and a phone number, so that the PII guardrail has
# something to redact on every request.
USER_INPUT = (
    "Hi, I ordered a blue jacket last week and it has not arrived yet. My e-mail is "
    "jane.doe@example.com and my phone is +44 20 7946 0958. Could you check the delivery "
    "status for order 123456 please?"
)


@dataclass
class Phase:
    name: str
    rate: int | None  # None: closed loop at `connections` concurrency
    connections: int
    seconds: float


def full_phases(seconds: float) -> list[Phase]:
    phases = [Phase("concurrency 1", None, 1, seconds)]
    for rate in (100, 500, 1000, 2000, 5000):
        phases.append(Phase(f"{rate} req/s", rate, connections_for(rate), seconds))
    return phases


def smoke_phases(seconds: float) -> list[Phase]:
    return [
        Phase("concurrency 1", None, 1, seconds),
        Phase("100 req/s", 100, connections_for(100), seconds),
    ]


def connections_for(rate: int) -> int:
    """Enough connections that an open-loop rate is never held back by the load generator:
    a request may take up to 50 ms before oha runs out of free connections."""
    return max(8, min(256, rate // 20))


# ---------------------------------------------------------------------------------------------
# Processes


def log(message: str) -> None:
    print(f"overhead: {message}", file=sys.stderr, flush=True)


def start_fake(binary: str, delay_ms: int, chunk_interval_ms: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--delay-ms", str(delay_ms),
         "--chunk-interval-ms", str(chunk_interval_ms)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline().strip() if proc.stdout else ""
    match = re.fullmatch(r"listening on (http://\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"overhead: the fake upstream did not start (said {line!r})")
    return proc, match.group(1)


def start_gateway(binary: str, workdir: str, fake_url: str,
                  durability: str = "queued") -> tuple[subprocess.Popen, str, str]:
    config = os.path.join(workdir, "promptgate.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            f"""# The overhead benchmark's gateway: defaults, except the endpoint and a rate limit
# high enough never to refuse the load. Telemetry and the audit log are on by default.
[[model_endpoints]]
ref = "{ENDPOINT_REF}"
provider = "openai"
base_url = "{fake_url}/v1"
model = "{MODEL}"
api_key_env = "{KEY_VAR}"
context_window = 128000
tokenizer = "o200k_base"

[rate_limits]
requests_per_second = 1000000
burst = 1000000

[telemetry]
durability = "{durability}"
"""
        )
    log_path = os.path.join(workdir, "gateway.log")
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    env.update({
        "PROMPTGATE_ADMIN_CLIENT_ID": ADMIN_ID,
        "PROMPTGATE_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
        KEY_VAR: "sk-bench-dummy-key",
    })
    log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the child)
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0",
         "--database-url", f"sqlite://{os.path.join(workdir, 'bench.db')}",
         "--config", config],
        stdout=subprocess.DEVNULL, stderr=log_file, env=env, cwd=workdir,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            match = re.search(r"promptgate listening on (http://\S+)", f.read())
        if match:
            return proc, match.group(1), log_path
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    with open(log_path, encoding="utf-8", errors="replace") as f:
        raise SystemExit(f"overhead: the gateway did not start; its log:\n{f.read()}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_json(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def get_token(gateway: str) -> str:
    basic = base64.b64encode(f"{ADMIN_ID}:{ADMIN_SECRET}".encode()).decode()
    answer = http_json(
        "POST", f"{gateway}/oauth/token", b"grant_type=client_credentials",
        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    return answer["access_token"]


def create_api_key(gateway: str, token: str) -> str:
    """A pgk_ key of the admin client (docs/api-keys.md), to authenticate the timed requests with."""
    answer = http_json(
        "POST", f"{gateway}/api/v2/oauth/clients/{ADMIN_ID}/api-keys",
        json.dumps({"name": "overhead-bench"}).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return answer["key"]


def create_prompt(gateway: str, token: str) -> tuple[str, str]:
    name = f"overhead_bench_{int(time.time())}"
    body = {
        "name": name,
        "modelEndpointRef": ENDPOINT_REF,
        "systemPrompt": SYSTEM_PROMPT,
        "temperature": TEMPERATURE,
        "safetyGuardrails": {"contentFiltering": ["pii"], "maxTokens": 1500},
        "version": "1.0.0",
    }
    if USE_TEMPLATE:
        body["systemPrompt"] = TEMPLATE_PROMPT
        body["variablesSchema"] = TEMPLATE_SCHEMA
    if USE_TOOLS:
        body["tools"] = TOOLS
        body["responseFormat"] = RESPONSE_FORMAT
        # The definitions count in systemPromptTokens: a budget that fits them.
        body["safetyGuardrails"]["maxTokens"] = 3000
    answer = http_json(
        "POST", f"{gateway}{PROMPTS}", json.dumps(body).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return answer["id"], name


def redacted_input() -> str:
    # What the gateway sends upstream after the PII guardrail, so that the direct requests carry
    # the same bytes as the gateway's own upstream requests.
    return (USER_INPUT.replace("jane.doe@example.com", "[EMAIL]")
            .replace("+44 20 7946 0958", "[PHONE]"))


def direct_body(stream: bool) -> str:
    body: dict = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": redacted_input()},
        ],
        "temperature": TEMPERATURE,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if USE_TOOLS:
        body["tools"] = TOOLS
        body["response_format"] = RESPONSE_FORMAT
    return json.dumps(body, separators=(",", ":"))


def gateway_body(prompt_id: str, stream: bool) -> str:
    body: dict = {
        "promptId": prompt_id,
        "userInput": USER_INPUT,
        "sessionId": "bench-session-1",
        "options": {"stream": stream, "returnTokenUsage": True},
    }
    if USE_TEMPLATE:
        body["variables"] = TEMPLATE_VARIABLES
    return json.dumps(body, separators=(",", ":"))


def openai_body(prompt_name: str) -> str:
    """The same call through the OpenAI-compatible front door (`--front-door openai`)."""
    body: dict = {
        "model": f"prompt:{prompt_name}",
        "messages": [{"role": "user", "content": USER_INPUT}],
        "user": "bench-session-1",
    }
    if USE_TEMPLATE:
        body["prompt_variables"] = TEMPLATE_VARIABLES
    return json.dumps(body, separators=(",", ":"))


def gateway_request(front_door: str, prompt_id: str, prompt_name: str) -> tuple[str, str]:
    """The path and body of one non-streamed call through the gateway."""
    if front_door == "openai":
        return OPENAI_CHAT, openai_body(prompt_name)
    return INVOCATIONS, gateway_body(prompt_id, False)


# ---------------------------------------------------------------------------------------------
# Gateway process figures


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


# ---------------------------------------------------------------------------------------------
# Load


def run_oha(oha: str, url: str, body: str, headers: list[str], phase: Phase, out: str) -> dict:
    cmd = [oha, "--no-tui", "--output-format", "json", "-o", out,
           "-z", f"{phase.seconds}s", "-w", "-c", str(phase.connections),
           "-m", "POST", "-H", "content-type: application/json"]
    for header in headers:
        cmd += ["-H", header]
    if phase.rate is not None:
        # Open loop: requests are scheduled at the rate whether or not earlier ones returned, and
        # each latency is measured from its scheduled time (no coordinated omission).
        cmd += ["-q", str(phase.rate), "--latency-correction"]
    cmd += ["-d", body, url]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out, encoding="utf-8") as f:
        return json.load(f)


def summarise(raw: dict) -> dict:
    statuses = {k: int(v) for k, v in raw.get("statusCodeDistribution", {}).items()}
    errors = {k: int(v) for k, v in raw.get("errorDistribution", {}).items()}
    responses = sum(statuses.values())
    non_2xx = sum(v for k, v in statuses.items() if not k.startswith("2"))
    connection_errors = sum(errors.values())
    percentiles = raw.get("latencyPercentiles", {})
    latency = {p: seconds_to_ms(percentiles.get(p)) for p in PERCENTILES}
    latency["max"] = seconds_to_ms(raw["summary"].get("slowest"))
    return {
        "requests": responses + connection_errors,
        "duration_s": raw["summary"]["total"],
        "achieved_rps": raw["summary"]["requestsPerSec"],
        "errors": non_2xx + connection_errors,
        "status_codes": statuses,
        "connection_errors": errors,
        "latency_ms": latency,
    }


def seconds_to_ms(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value * 1000.0


def difference(a: dict, b: dict) -> dict:
    out = {}
    for key in STAT_KEYS:
        x, y = a.get(key), b.get(key)
        out[key] = None if x is None or y is None else x - y
    return out


def run_phase(args, oha: str, phase: Phase, fake: str, gateway: str, gw_pid: int, token: str,
              request: tuple[str, str], workdir: str, index: int) -> dict:
    log(f"phase {phase.name}: direct")
    direct_raw = run_oha(oha, f"{fake}/v1/chat/completions", direct_body(False),
                         ["authorization: Bearer sk-bench-dummy-key"], phase,
                         os.path.join(workdir, f"phase{index}-direct.json"))
    log(f"phase {phase.name}: gateway")
    cpu_before = cpu_seconds(gw_pid)
    gateway_raw = run_oha(oha, f"{gateway}{request[0]}", request[1],
                          [f"authorization: Bearer {token}"], phase,
                          os.path.join(workdir, f"phase{index}-gateway.json"))
    cpu_used = cpu_seconds(gw_pid) - cpu_before
    direct = summarise(direct_raw)
    through = summarise(gateway_raw)
    through["cpu_ms_per_request"] = (cpu_used * 1000.0 / through["requests"]
                                     if through["requests"] else None)
    through["peak_rss_mib"] = memory_kib(gw_pid, "VmHWM") / 1024.0
    through["rss_mib_after"] = memory_kib(gw_pid, "VmRSS") / 1024.0
    return {
        "name": phase.name,
        "target_rps": phase.rate,
        "connections": phase.connections,
        "seconds": phase.seconds,
        "direct": direct,
        "gateway": through,
        "overhead_ms": difference(through["latency_ms"], direct["latency_ms"]),
    }


# ---------------------------------------------------------------------------------------------
# Streaming: time to first token


def first_token_times(url: str, path: str, body: str, headers: dict[str, str],
                      is_token_line, conn_box: list) -> tuple[float, float, bool]:
    """One streamed request on a kept-alive connection: (ms to the response head, ms to the
    first line that carries text, whether it succeeded)."""
    for attempt in (1, 2):
        conn = conn_box[0]
        if conn is None:
            host = url.removeprefix("http://")
            conn = http.client.HTTPConnection(host, timeout=30)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn_box[0] = conn
        try:
            start = time.perf_counter_ns()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            head = time.perf_counter_ns()
            first = None
            while True:
                line = response.readline()
                if not line:
                    break
                if first is None and is_token_line(line):
                    first = time.perf_counter_ns()
            ok = response.status == 200 and first is not None
            if response.will_close:
                conn.close()
                conn_box[0] = None
            end = first if first is not None else time.perf_counter_ns()
            return (head - start) / 1e6, (end - start) / 1e6, ok
        except (OSError, http.client.HTTPException):
            conn.close()
            conn_box[0] = None
            if attempt == 2:
                return math.nan, math.nan, False
    return math.nan, math.nan, False


DIRECT_TOKEN = re.compile(rb'"content":"[^"]')


def direct_token_line(line: bytes) -> bool:
    return line.startswith(b"data: {") and DIRECT_TOKEN.search(line) is not None


def gateway_token_line(line: bytes) -> bool:
    return line.startswith(b"event: delta")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def distribution(values: list[float]) -> dict:
    out = {p: percentile(values, float(p[1:])) for p in PERCENTILES}
    out["max"] = max(values) if values else None
    return out


def run_streaming(fake: str, gateway: str, token: str, prompt_id: str, count: int,
                  chunk_interval_ms: int) -> dict:
    log(f"streaming: {count} requests each way, one at a time")
    direct_conn: list = [None]
    gateway_conn: list = [None]
    d_head, d_first, g_head, g_first = [], [], [], []
    errors = {"direct": 0, "gateway": 0}
    d_body = direct_body(True)
    g_body = gateway_body(prompt_id, True)
    d_headers = {"Content-Type": "application/json",
                 "Authorization": "Bearer sk-bench-dummy-key"}
    g_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    warmup = min(10, count)
    for i in range(count + warmup):
        head, first, ok = first_token_times(fake, "/v1/chat/completions", d_body, d_headers,
                                            direct_token_line, direct_conn)
        if i >= warmup:
            if ok:
                d_head.append(head)
                d_first.append(first)
            else:
                errors["direct"] += 1
        head, first, ok = first_token_times(gateway, INVOCATIONS, g_body, g_headers,
                                            gateway_token_line, gateway_conn)
        if i >= warmup:
            if ok:
                g_head.append(head)
                g_first.append(first)
            else:
                errors["gateway"] += 1
    for box in (direct_conn, gateway_conn):
        if box[0] is not None:
            box[0].close()
    direct = {"requests": count, "errors": errors["direct"],
              "head_ms": distribution(d_head), "first_token_ms": distribution(d_first)}
    through = {"requests": count, "errors": errors["gateway"],
               "head_ms": distribution(g_head), "first_token_ms": distribution(g_first)}
    return {
        "method": "bench/overhead.py client: sequential keep-alive requests, alternating direct "
                  "and gateway, timed from before the request is written to the response head "
                  "and to the first body line carrying text (direct: a chunk with non-empty "
                  "delta content; gateway: the first `event: delta`)",
        "requests_each": count,
        "upstream_chunk_interval_ms": chunk_interval_ms,
        "direct": direct,
        "gateway": through,
        "overhead_ms": {
            "head": difference(through["head_ms"], direct["head_ms"]),
            "first_token": difference(through["first_token_ms"], direct["first_token_ms"]),
        },
    }


# ---------------------------------------------------------------------------------------------
# Report


def number_or_none(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and math.isfinite(value))


def check_report(report: dict) -> list[str]:
    """What is wrong with the report's shape (empty when it is well formed)."""
    problems = []
    if report.get("schema") != SCHEMA:
        problems.append("schema")
    phases = report.get("phases")
    if not isinstance(phases, list) or not phases:
        return problems + ["no phases"]
    for phase in phases:
        name = phase.get("name", "?")
        for side in ("direct", "gateway"):
            s = phase.get(side, {})
            if not isinstance(s.get("requests"), int) or s["requests"] <= 0:
                problems.append(f"{name}: {side} made no requests")
            if not isinstance(s.get("errors"), int):
                problems.append(f"{name}: {side} errors missing")
            for key in STAT_KEYS:
                value = s.get("latency_ms", {}).get(key)
                if not isinstance(value, (int, float)) or not math.isfinite(value):
                    problems.append(f"{name}: {side} latency {key} missing")
            if not number_or_none(s.get("achieved_rps")):
                problems.append(f"{name}: {side} achieved_rps")
        for key in STAT_KEYS:
            if not number_or_none(phase.get("overhead_ms", {}).get(key)):
                problems.append(f"{name}: overhead {key}")
        for key in ("cpu_ms_per_request", "peak_rss_mib"):
            value = phase.get("gateway", {}).get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"{name}: gateway {key}")
    streaming = report.get("streaming")
    if streaming is not None:
        for key in STAT_KEYS:
            if not number_or_none(streaming.get("overhead_ms", {}).get("first_token", {}).get(key)):
                problems.append(f"streaming: first-token overhead {key}")
    if not isinstance(report.get("errors_total"), int):
        problems.append("errors_total")
    return problems


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    lines = [
        f"promptgate overhead ({report['mode']}, through {report['front_door']}"
        f"{', templated prompt (3 variables)' if report.get('template') else ''}"
        f"{', 5 tools and a json_schema format' if report.get('tools') else ''}, "
        f"telemetry durability {report.get('durability', 'queued')}, "
        f"upstream delay {report['settings']['delay_ms']} ms, "
        f"{report['machine']['cpus']} CPUs, load average at start "
        f"{report['machine']['loadavg_start'][0]:.2f})",
        "",
        "Overhead = gateway − direct, per percentile, ms.",
        "",
        "| phase | achieved req/s (direct / gateway) | errors (direct / gateway) | p50 | p90 | "
        "p99 | p99.9 | max | gateway CPU ms/req | gateway peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["phases"]:
        o = p["overhead_ms"]
        d, g = p["direct"], p["gateway"]
        lines.append(
            f"| {p['name']} | {d['achieved_rps']:.0f} / {g['achieved_rps']:.0f} | "
            f"{d['errors']} / {g['errors']} | {fmt(o['p50'])} | {fmt(o['p90'])} | "
            f"{fmt(o['p99'])} | {fmt(o['p99.9'])} | {fmt(o['max'])} | "
            f"{fmt(g['cpu_ms_per_request'])} | {fmt(g['peak_rss_mib'], 1)} |"
        )
    lines += ["", "Latency, ms (direct → gateway):", "",
              "| phase | p50 | p90 | p99 | p99.9 | max |", "|---|---|---|---|---|---|"]
    for p in report["phases"]:
        d, g = p["direct"]["latency_ms"], p["gateway"]["latency_ms"]
        cells = " | ".join(f"{fmt(d[k])} → {fmt(g[k])}" for k in STAT_KEYS)
        lines.append(f"| {p['name']} | {cells} |")
    t = report["gateway_totals"]
    lines += ["", f"Gateway: idle CPU {t['idle_cpu_ms_per_s']:.1f} ms/s; peak RSS "
              f"{t['peak_rss_mib']:.1f} MiB; telemetry records queued {t['telemetry']['queued']}, "
              f"stored {t['telemetry']['stored']}, dropped {t['telemetry']['dropped']}."]
    s = report.get("streaming")
    if s:
        lines += [
            "",
            f"Streaming, {s['requests_each']} requests each way, one at a time "
            f"(errors direct / gateway: {s['direct']['errors']} / {s['gateway']['errors']}); "
            "overhead ms:",
            "",
            "| measure | p50 | p90 | p99 | p99.9 | max |",
            "|---|---|---|---|---|---|",
        ]
        for label, key in (("response head", "head"), ("first token", "first_token")):
            o = s["overhead_ms"][key]
            lines.append(f"| {label} | " + " | ".join(fmt(o[k]) for k in STAT_KEYS) + " |")
    return "\n".join(lines)


def telemetry_counters(gateway: str) -> dict:
    """The gateway's telemetry queue counters from `/metrics`: every invocation should have been
    queued and stored, none dropped."""
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=30) as response:
        text = response.read().decode()
    out = {}
    for name in ("queued", "dropped", "stored"):
        match = re.search(rf"^promptgate_telemetry_records_{name}_total(?:{{[^}}]*}})? (\S+)$",
                          text, re.MULTILINE)
        out[name] = int(float(match.group(1))) if match else None
    return out


def tool_version(binary: str) -> str:
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return "unknown"


def git_commit(root: str) -> str:
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds at low rates (CI); exits 1 on any error")
    parser.add_argument("--seconds", type=float, help="seconds per phase (default 15, smoke 2)")
    parser.add_argument("--phases", help="comma-separated subset of phases: c1,100,500,1000,2000,5000")
    parser.add_argument("--delay-ms", type=int, default=0, help="the fake upstream's delay")
    parser.add_argument("--stream-requests", type=int,
                        help="streamed requests each way (default 500, smoke 20; 0 skips)")
    parser.add_argument("--chunk-interval-ms", type=int, default=2,
                        help="pause between the fake's stream events after the first")
    parser.add_argument("--out", help="the JSON report's path (default: a new file in /tmp)")
    parser.add_argument("--oha", default=shutil.which("oha") or "oha")
    parser.add_argument("--gateway-bin", required=True)
    parser.add_argument("--fake-bin", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--front-door", choices=["invocations", "openai"], default="invocations",
                        help="the gateway path of the non-streamed phases: the contract's "
                             "invocations (default) or the OpenAI-compatible /v1/chat/completions")
    parser.add_argument("--template", action="store_true",
                        help="serve a templated prompt with 3 variables (a schema with a default) "
                             "that renders to the plain prompt's text")
    parser.add_argument("--tools", action="store_true",
                        help="the version owns 5 function tools and a json_schema response format "
                             "(the direct requests carry the same definitions)")
    parser.add_argument("--api-key", action="store_true",
                        help="authenticate the timed requests with a pgk_ API key instead of an "
                             "access token (docs/api-keys.md)")
    parser.add_argument("--durability", choices=["queued", "ack-after-store"], default="queued",
                        help="[telemetry] durability of the gateway: queued (the default) or "
                             "ack-after-store (each answer waits for its record's commit)")
    args = parser.parse_args()
    global USE_TEMPLATE, USE_TOOLS
    USE_TEMPLATE = args.template
    USE_TOOLS = args.tools

    args.gateway_bin = os.path.abspath(args.gateway_bin)
    args.fake_bin = os.path.abspath(args.fake_bin)
    seconds = args.seconds or (2.0 if args.smoke else 15.0)
    phases = smoke_phases(seconds) if args.smoke else full_phases(seconds)
    if args.phases:
        wanted = {w.strip() for w in args.phases.split(",")}
        phases = [p for p in full_phases(seconds)
                  if (p.rate is None and "c1" in wanted) or str(p.rate) in wanted]
        if not phases:
            parser.error("--phases names no phase")
    stream_count = args.stream_requests
    if stream_count is None:
        stream_count = 20 if args.smoke else 500

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = tempfile.mkdtemp(prefix="promptgate-overhead-")
    out = args.out or os.path.join(tempfile.gettempdir(),
                                   f"promptgate-overhead-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    loadavg = os.getloadavg()
    fake_proc, fake = start_fake(args.fake_bin, args.delay_ms, args.chunk_interval_ms)
    gw_proc = None
    try:
        gw_proc, gateway, gw_log = start_gateway(args.gateway_bin, workdir, fake, args.durability)
        log(f"fake upstream {fake}, gateway {gateway}, work directory {workdir}")
        token = get_token(gateway)
        prompt_id, prompt_name = create_prompt(gateway, token)
        if args.api_key:
            token = create_api_key(gateway, token)
        request = gateway_request(args.front_door, prompt_id, prompt_name)
        # One request each way, checked, before anything is timed.
        answer = http_json("POST", f"{gateway}{request[0]}", request[1].encode(),
                           {"Authorization": f"Bearer {token}",
                            "Content-Type": "application/json"})
        report_of_gateway = answer.get("promptgate", answer)
        if report_of_gateway.get("guardrails", {}).get("inputRedactions", {}) == {}:
            raise SystemExit(f"overhead: the PII guardrail redacted nothing: {answer}")
        # What the gateway spends while idle (token refresh, telemetry writer ticks, audit
        # checkpoints), to read the per-request figures of slow phases against.
        idle_seconds = 1.0 if args.smoke else 3.0
        idle_before = cpu_seconds(gw_proc.pid)
        time.sleep(idle_seconds)
        idle_cpu_ms_per_s = (cpu_seconds(gw_proc.pid) - idle_before) * 1000.0 / idle_seconds
        results = []
        for i, phase in enumerate(phases):
            results.append(run_phase(args, args.oha, phase, fake, gateway, gw_proc.pid, token,
                                     request, workdir, i))
        streaming = None
        if stream_count > 0:
            streaming = run_streaming(fake, gateway, token, prompt_id, stream_count,
                                      args.chunk_interval_ms)
        gateway_cpu_total = cpu_seconds(gw_proc.pid)
        peak = memory_kib(gw_proc.pid, "VmHWM") / 1024.0
        time.sleep(0.5)  # the telemetry writer stores every 200 ms
        telemetry = telemetry_counters(gateway)
    finally:
        if gw_proc is not None:
            stop(gw_proc)
        stop(fake_proc)

    errors_total = sum(p["direct"]["errors"] + p["gateway"]["errors"] for p in results)
    if streaming:
        errors_total += streaming["direct"]["errors"] + streaming["gateway"]["errors"]
    report = {
        "schema": SCHEMA,
        "mode": "smoke" if args.smoke else "full",
        "front_door": args.front_door,
        "template": args.template,
        "tools": args.tools,
        "api_key": args.api_key,
        "durability": args.durability,
        "started_at": started,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "kernel": platform.release(),
            "loadavg_start": list(loadavg),
            "loadavg_end": list(os.getloadavg()),
        },
        "settings": {
            "delay_ms": args.delay_ms,
            "oha": tool_version(args.oha),
            "commit": git_commit(root),
            "guardrails": ["pii"],
            "telemetry": True,
            "audit": True,
            "authentication": True,
        },
        "phases": results,
        "streaming": streaming,
        "gateway_totals": {"cpu_s": gateway_cpu_total, "peak_rss_mib": peak,
                           "idle_cpu_ms_per_s": idle_cpu_ms_per_s, "telemetry": telemetry},
        "errors_total": errors_total,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(out, encoding="utf-8") as f:
        problems = check_report(json.load(f))
    print(markdown(report))
    print(f"\nJSON report: {out}")
    if args.keep:
        log(f"kept {workdir} (gateway log: {gw_log})")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        log("the report is malformed: " + "; ".join(problems))
        return 1
    if errors_total:
        log(f"{errors_total} requests failed (see the JSON report's status_codes and "
            "connection_errors)")
        # A smoke run fails on any error; a full run reports them (they are a finding).
        return 1 if args.smoke else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
