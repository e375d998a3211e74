"""Seeds a fresh gateway for scripts/api-fuzz so that operations with ids have real targets.

Usage: seed.py BASE_URL ADMIN_ID ADMIN_SECRET OUT.json

With the admin client (from PROMPTGATE_ADMIN_CLIENT_ID/SECRET) it creates:
- the client the fuzzer runs as (every scope), a victim client (with two API keys) for the fuzzer to disable
  and rotate (the hooks never let it disable or rotate its own client, which would revoke its
  token and turn the rest of the run into 401s), and a login client whose credentials the
  hooks put into some `POST /oauth/token` forms, so that the token endpoint's success and
  `invalid_scope` paths run too;
- prompt `fuzz_support_agent` on the offline endpoint builtin/echo, versions 1.0.0 and 1.1.0,
  split 50/50, with guardrails and few-shot examples; prompt `fuzz_archivable`, the only prompt
  the fuzzer archives (DELETE), so that the first one keeps serving invocations;
- a few invocations (one streamed, one with PII, one with a version pinned), feedback on one,
  and a client audit entry.
It writes the ids and the fuzzer's token to OUT.json, which hooks.py reads. Standard library
only; any error is fatal (the run would otherwise fuzz an empty gateway without saying so).
"""

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

GATEWAY = "/api/v2/ai/llm/gateway"
SCOPES = [
    "ai:prompt:read",
    "ai:prompt:write",
    "ai:gateway:write",
    "ai:telemetry:read",
    "ai:audit:read",
    "admin",
]


def call(base, method, path, token=None, body=None, form=None, basic=None, expect=(200, 201)):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        pair = f"{basic[0]}:{basic[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status not in expect:
        sys.exit(f"api-fuzz seed: {method} {path} answered {status}: {text}")
    return text


def token_for(base, client_id, secret):
    text = call(
        base, "POST", "/oauth/token", form={"grant_type": "client_credentials"}, basic=(client_id, secret)
    )
    return json.loads(text)["access_token"]


def main():
    base, admin_id, admin_secret, out = sys.argv[1:5]
    admin = token_for(base, admin_id, admin_secret)

    fuzzer = json.loads(
        call(base, "POST", "/api/v2/oauth/clients", admin, {"name": "api-fuzz", "scopes": SCOPES})
    )
    victim = json.loads(
        call(base, "POST", "/api/v2/oauth/clients", admin, {"name": "api-fuzz-victim", "scopes": ["ai:prompt:read"]})
    )
    login = json.loads(
        call(base, "POST", "/api/v2/oauth/clients", admin, {"name": "api-fuzz-login", "scopes": ["ai:prompt:read", "ai:telemetry:read"]})
    )
    # Two API keys of the victim client, for the key routes to find (the fuzzer may revoke them).
    victim_keys = [
        json.loads(
            call(base, "POST", f"/api/v2/oauth/clients/{victim['clientId']}/api-keys", admin, {"name": f"api-fuzz-key-{i}"})
        )["id"]
        for i in range(2)
    ]
    token = token_for(base, fuzzer["clientId"], fuzzer["clientSecret"])

    prompt = json.loads(
        call(
            base,
            "POST",
            f"{GATEWAY}/prompts",
            token,
            {
                "name": "fuzz_support_agent",
                "modelEndpointRef": "builtin/echo",
                "systemPrompt": "You are a helpful customer support agent.",
                "temperature": 0.2,
                "safetyGuardrails": {
                    "contentFiltering": ["pii", "profanity"],
                    "maxTokens": 1500,
                    "blockedCategories": ["violence", "hate_speech", "self_harm"],
                },
                "fewShotExamples": [
                    {"input": "Where is my order?", "output": "Let me check that for you."},
                    {"input": "Can I return it?", "output": "Yes, within 30 days."},
                ],
                "version": "1.0.0",
            },
        )
    )
    prompt_id = prompt["id"]
    call(
        base,
        "PUT",
        f"{GATEWAY}/prompts/{prompt_id}",
        token,
        {"version": "1.1.0", "systemPrompt": "You are a concise, friendly customer support agent."},
    )
    call(
        base,
        "PUT",
        f"{GATEWAY}/prompts/{prompt_id}",
        token,
        {
            "trafficDistribution": {
                "splitStrategy": "sticky",
                "versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.5}],
            }
        },
    )
    archivable = json.loads(
        call(
            base,
            "POST",
            f"{GATEWAY}/prompts",
            token,
            {
                "name": "fuzz_archivable",
                "modelEndpointRef": "builtin/echo",
                "systemPrompt": "You are short-lived.",
                "safetyGuardrails": {"contentFiltering": [], "maxTokens": 100},
                "version": "1.0.0",
            },
        )
    )

    response_ids = []
    for i, extra in enumerate(
        [
            {},
            {"userInput": "I am jane@example.com, call me on +1 415 555 0100", "version": "1.1.0"},
            {"options": {"returnTokenUsage": False}, "metadata": {"channel": "web"}},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        ]
    ):
        body = {"promptId": prompt_id, "userInput": "Where is my order?", "sessionId": f"s-{i}"}
        body.update(extra)
        answer = json.loads(call(base, "POST", f"{GATEWAY}/invocations", token, body))
        response_ids.append(answer["responseId"])
    # A streamed one: text/event-stream, recorded like the others.
    call(
        base,
        "POST",
        f"{GATEWAY}/invocations",
        token,
        {"promptId": prompt_id, "userInput": "Stream this", "options": {"stream": True}},
    )
    call(
        base,
        "POST",
        f"{GATEWAY}/invocations/{response_ids[0]}/feedback",
        token,
        {"score": 0.8, "comment": "helpful"},
    )
    entry = json.loads(
        call(
            base,
            "POST",
            f"{GATEWAY}/audit-logs",
            token,
            {
                "promptId": prompt_id,
                "action": "CREATE",
                "timestamp": "2026-11-27T04:15:39Z",
                "details": {"version": "1.0.0"},
                "complianceStatus": "VALIDATED",
                "metadata": {"sourceSystem": "prompt-manager"},
            },
        )
    )

    seeded = {
        "token": token,
        "fuzzerClientId": fuzzer["clientId"],
        "adminClientId": admin_id,
        "victimClientId": victim["clientId"],
        "victimKeyIds": victim_keys,
        "loginClientId": login["clientId"],
        "loginClientSecret": login["clientSecret"],
        "promptId": prompt_id,
        "archivablePromptId": archivable["id"],
        "versions": ["1.0.0", "1.1.0"],
        "responseIds": response_ids,
        "auditSequence": entry["sequence"],
    }
    with open(out, "w") as f:
        json.dump(seeded, f, indent=2)


if __name__ == "__main__":
    main()
