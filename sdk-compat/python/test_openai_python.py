"""promptgate's OpenAI-compatible front door (/v1) driven by the official `openai` Python package,
unmodified (the version pinned in requirements.txt).

Run by scripts/openai-sdk-test, which starts a fresh gateway and sets:
  PROMPTGATE_URL                   the gateway, e.g. http://127.0.0.1:40123 (no trailing /v1)
  PROMPTGATE_ADMIN_CLIENT_ID       a client with every scope (the gateway's admin client)
  PROMPTGATE_ADMIN_CLIENT_SECRET
The setup (clients, prompts, versions, traffic) goes over HTTP with urllib, through promptgate's
own API; everything under test goes through the SDK exactly as a user writes it:
`OpenAI(base_url=f"{PROMPTGATE_URL}/v1", api_key=<access token>)`.

API keys (issue 21) run on a third gateway whose access tokens live only a few seconds:
  PROMPTGATE_SHORT_TTL_URL         that gateway ([auth] token_ttl_seconds = PROMPTGATE_SHORT_TTL_SECONDS)
  PROMPTGATE_SHORT_TTL_ADMIN_ID    its admin client
  PROMPTGATE_SHORT_TTL_ADMIN_SECRET
  PROMPTGATE_SHORT_TTL_SECONDS     its access tokens' lifetime in seconds
There the SDK is given a `pgk_…` API key as its api_key and keeps working across several token
lifetimes, while an access token taken at the start is refused once expired.

Tools and structured output (issue 20) run against two more endpoints, named by
  PROMPTGATE_RULES_OPENAI_REF      an OpenAI-compatible endpoint on the fake upstream in --rules mode
  PROMPTGATE_RULES_ANTHROPIC_REF   an Anthropic endpoint on the same fake upstream
whose deterministic model answers `call NAME {JSON}` with a call of the tool NAME, a tool result
with `The tool answered: RESULT`, `json {JSON}` (when JSON output is required) with that JSON, and
anything else with `Echo: TEXT` (crates/promptgate-fake-upstream/src/rules.rs).

Standard library + openai (and pydantic, its dependency) only. Exit status 0 only when every case
passed.
"""

import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import openai
import pydantic
from openai import OpenAI

GATEWAY = "/api/v2/ai/llm/gateway"
OFFLINE_LABEL = "[promptgate offline provider — no model was called]"
QUESTION = "Where is my order?"

# Two system prompts of clearly different lengths: the offline provider does not echo the system
# prompt, but it counts it in usage.prompt_tokens, so the difference between two versions'
# prompt_tokens (same messages) must be exactly the difference of their systemPromptTokens.
SHORT_SYSTEM = "You are a support agent."
LONG_SYSTEM = (
    "You are a concise, friendly customer support agent for an online shop. Answer in at most "
    "three sentences, never promise refunds, always offer to escalate to a human colleague, and "
    "close every answer by asking whether there is anything else you can help with today."
)

# A templated prompt (issue 19): version 1.0.0 a short template, 1.1.0 a long one, the label
# "staging" on 1.1.0 while all traffic stays on 1.0.0. The SDK sends the variables with
# extra_body={"prompt_variables": {...}}, the front door's body extension.
TEMPLATE_SHORT = "You are the support agent of {{company}} for {{customer_name}} ({{ tier }} plan)."
TEMPLATE_LONG = LONG_SYSTEM + " Address {{customer_name}} by name; they are on the {{ tier }} plan of {{company}}."
TEMPLATE_SCHEMA = {
    "type": "object",
    "properties": {
        "company": {"type": "string", "default": "Acme"},
        "customer_name": {"type": "string", "maxLength": 60},
        "tier": {"enum": ["gold", "silver"], "default": "silver"},
    },
    "required": ["customer_name"],
}
SHORT_NAME = "Jane"
LONG_NAME = "Maximilian Alexander Fitzgerald-Worthington"

# Tools and structured output (issue 20). The fake upstream's rules: `call NAME {JSON}` calls the
# tool NAME when the request defines it; a tool result is answered "The tool answered: RESULT";
# `json {JSON}` is the answer when JSON output is required; anything else is echoed.
LOOKUP_ORDER = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by its id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        # Strict, so that parse() accepts it beside a response format.
        "strict": True,
    },
}
GET_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL_LOOKUP = 'call lookup_order {"order_id": "A-17"}'
TOOL_RESULT = '{"status": "shipped", "eta": "Tuesday"}'
ORDER_JSON = {"order_id": "A-17", "status": "shipped", "items": ["kettle", "mug"], "total_cents": 4599}


class Order(pydantic.BaseModel):
    order_id: str
    status: str
    items: list[str]
    total_cents: int


class LookupOrder(pydantic.BaseModel):
    """Look up an order by its id."""

    order_id: str


# The Order model's schema as the SDK sends it in strict mode, for a version that owns it.
ORDER_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "order",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "status": {"type": "string"},
                "items": {"type": "array", "items": {"type": "string"}},
                "total_cents": {"type": "integer"},
            },
            "required": ["order_id", "status", "items", "total_cents"],
            "additionalProperties": False,
        },
    },
}

ENV = {}
S = {}  # what the setup made: tokens, prompt names and ids, the offline model's name


def env(name):
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"test_openai_python: {name} is not set (scripts/openai-sdk-test sets it)")
    return value


def http(method, path, token=None, body=None, form=None, expect=(200, 201), base=None):
    """One setup call to promptgate's own API (on PROMPTGATE_URL, or on `base`); any unexpected
    status is fatal."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request((base or ENV["url"]) + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status not in expect:
        raise AssertionError(f"setup: {method} {path} answered {status}: {text}")
    return json.loads(text) if text else None


def token_for(client_id, secret, base=None):
    answer = http(
        "POST",
        "/oauth/token",
        form={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        base=base,
    )
    return answer["access_token"]


def new_client(admin, name, scopes):
    made = http("POST", "/api/v2/oauth/clients", admin, {"name": name, "scopes": scopes})
    return token_for(made["clientId"], made["clientSecret"])


def new_prompt(admin, name, endpoint_ref, traffic_to=None):
    """A prompt with versions 1.0.0 (SHORT_SYSTEM) and 1.1.0 (LONG_SYSTEM). A new version gets no
    traffic until the distribution names it, so without `traffic_to` all traffic goes to 1.0.0."""
    prompt = http(
        "POST",
        f"{GATEWAY}/prompts",
        admin,
        {
            "name": name,
            "modelEndpointRef": endpoint_ref,
            "systemPrompt": SHORT_SYSTEM,
            "temperature": 0.2,
            "safetyGuardrails": {"contentFiltering": [], "maxTokens": 1000},
            "version": "1.0.0",
        },
    )
    http(
        "PUT",
        f"{GATEWAY}/prompts/{prompt['id']}",
        admin,
        {"version": "1.1.0", "systemPrompt": LONG_SYSTEM},
    )
    if traffic_to is not None:
        http(
            "PUT",
            f"{GATEWAY}/prompts/{prompt['id']}",
            admin,
            {"trafficDistribution": {"versions": [{"version": v, "weight": w} for v, w in traffic_to]}},
        )
    return prompt["id"]


def setUpModule():
    ENV["url"] = env("PROMPTGATE_URL").rstrip("/")
    admin = token_for(env("PROMPTGATE_ADMIN_CLIENT_ID"), env("PROMPTGATE_ADMIN_CLIENT_SECRET"))

    endpoints = http("GET", f"{GATEWAY}/model-endpoints", admin)["entities"]
    offline = [e for e in endpoints if e.get("offline")]
    if not offline:
        raise AssertionError(f"setup: no offline model endpoint in {endpoints}")
    S["endpoint_ref"] = offline[0]["ref"]
    S["upstream_model"] = offline[0]["model"]

    tag = uuid.uuid4().hex[:8]
    # A caller with exactly the scope the front door needs, and one without it.
    S["invoker"] = new_client(admin, f"sdk-py-invoker-{tag}", ["ai:gateway:write"])
    S["reader"] = new_client(admin, f"sdk-py-reader-{tag}", ["ai:prompt:read"])

    # "main": traffic 100% to 1.1.0. "legacy": all traffic to 1.0.0 (the first version).
    # "split": 50/50, sticky. "archived": archived at once, so no longer invocable.
    S["main"] = f"sdk_py_main_{tag}"
    S["main_id"] = new_prompt(admin, S["main"], S["endpoint_ref"], [("1.1.0", 1.0)])
    S["legacy"] = f"sdk_py_legacy_{tag}"
    S["legacy_id"] = new_prompt(admin, S["legacy"], S["endpoint_ref"])
    S["split"] = f"sdk_py_split_{tag}"
    new_prompt(admin, S["split"], S["endpoint_ref"], [("1.0.0", 0.5), ("1.1.0", 0.5)])
    S["archived"] = f"sdk_py_archived_{tag}"
    archived_id = new_prompt(admin, S["archived"], S["endpoint_ref"])
    http("DELETE", f"{GATEWAY}/prompts/{archived_id}", admin)

    tokens = {}
    for version in ("1.0.0", "1.1.0"):
        got = http("GET", f"{GATEWAY}/prompts/{S['main_id']}/versions/{version}", admin)
        tokens[version] = got["systemPromptTokens"]
    S["system_tokens"] = tokens
    # Otherwise the pinned-version check below could not tell the two versions apart.
    assert tokens["1.1.0"] - tokens["1.0.0"] >= 10, f"setup: system prompt token counts {tokens}"

    # "tpl": a templated prompt with the label "staging" on 1.1.0 (traffic on 1.0.0), and the
    # rendered system prompts' token counts from the render preview, to compare with what the
    # offline provider counts.
    S["tpl"] = f"sdk_py_tpl_{tag}"
    tpl = http(
        "POST",
        f"{GATEWAY}/prompts",
        admin,
        {
            "name": S["tpl"],
            "modelEndpointRef": S["endpoint_ref"],
            "systemPrompt": TEMPLATE_SHORT,
            "variablesSchema": TEMPLATE_SCHEMA,
            "safetyGuardrails": {"contentFiltering": [], "maxTokens": 1000},
            "version": "1.0.0",
        },
    )
    S["tpl_id"] = tpl["id"]
    http("PUT", f"{GATEWAY}/prompts/{tpl['id']}", admin, {"version": "1.1.0", "systemPrompt": TEMPLATE_LONG})
    labelled = http("PUT", f"{GATEWAY}/prompts/{tpl['id']}/labels/staging", admin, {"version": "1.1.0"})
    assert labelled["labels"] == {"staging": "1.1.0"}, f"setup: labels {labelled['labels']}"
    rendered = {}
    for target in ({"label": "staging"}, {"version": "1.0.0"}):
        for name in (SHORT_NAME, LONG_NAME):
            preview = http(
                "POST",
                f"{GATEWAY}/prompts/{tpl['id']}/render",
                admin,
                dict(target, variables={"customer_name": name, "tier": "gold"}),
            )
            rendered[(preview["version"], name)] = preview["systemPromptTokens"]
    S["rendered_tokens"] = rendered
    # Otherwise the rendering checks below could not tell the values or the versions apart.
    assert rendered[("1.1.0", LONG_NAME)] - rendered[("1.1.0", SHORT_NAME)] >= 5, f"setup: {rendered}"
    assert rendered[("1.1.0", SHORT_NAME)] - rendered[("1.0.0", SHORT_NAME)] >= 10, f"setup: {rendered}"

    setup_tools(admin, tag)


def setup_tools(admin, tag):
    """Per upstream flavor (an OpenAI-compatible and an Anthropic endpoint, both on the rules-mode
    fake upstream): "tools", a plain version (the caller brings tools and formats); "owned", a
    version that owns its tools (lookup_order, tool_choice auto); "owned_json", a version that owns
    its response format (the Order schema)."""
    refs = {
        "openai": env("PROMPTGATE_RULES_OPENAI_REF"),
        "anthropic": env("PROMPTGATE_RULES_ANTHROPIC_REF"),
    }
    known = {e["ref"] for e in http("GET", f"{GATEWAY}/model-endpoints", admin)["entities"]}
    for flavor, ref in refs.items():
        assert ref in known, f"setup: no model endpoint {ref} in {sorted(known)}"
        base = {
            "modelEndpointRef": ref,
            "systemPrompt": SHORT_SYSTEM,
            "safetyGuardrails": {"contentFiltering": [], "maxTokens": 1000},
            "version": "1.0.0",
        }
        for kind, own in (
            ("tools", {}),
            ("owned", {"tools": [LOOKUP_ORDER], "toolChoice": "auto"}),
            ("owned_json", {"responseFormat": ORDER_FORMAT}),
        ):
            name = f"sdk_py_{kind}_{flavor}_{tag}"
            made = http("POST", f"{GATEWAY}/prompts", admin, dict(base, name=name, **own))
            if own:
                version = http("GET", f"{GATEWAY}/prompts/{made['id']}/versions/1.0.0", admin)
                for field, value in own.items():
                    assert version.get(field) == value, f"setup: {name} 1.0.0 {field} = {version.get(field)}"
            S[f"{kind}_{flavor}"] = f"prompt:{name}"


def client(api_key=None):
    return OpenAI(base_url=ENV["url"] + "/v1", api_key=api_key or S["invoker"], max_retries=0, timeout=30)


def ask(model, **kwargs):
    """A chat completion through the raw-response wrapper: (parsed completion, headers)."""
    kwargs.setdefault("messages", [{"role": "user", "content": QUESTION}])
    raw = client().chat.completions.with_raw_response.create(model=model, **kwargs)
    return raw.parse(), raw.headers


def extra(completion):
    """The `promptgate` object of an answer: not part of OpenAI's schema, kept by pydantic."""
    found = (completion.model_extra or {}).get("promptgate")
    assert isinstance(found, dict), f"no promptgate object in {completion.model_dump_json()}"
    return found


class ChatCompletion(unittest.TestCase):
    def check_completion(self, completion, headers, version):
        self.assertIsInstance(completion, openai.types.chat.ChatCompletion)
        self.assertEqual(completion.object, "chat.completion")
        self.assertTrue(isinstance(completion.id, str) and completion.id, completion.id)
        self.assertIsInstance(completion.created, int)
        self.assertGreater(completion.created, 1_600_000_000, "created is not a Unix time in seconds")
        self.assertEqual(completion.model, S["upstream_model"], "model is not the upstream model")
        self.assertEqual(len(completion.choices), 1, completion.choices)
        choice = completion.choices[0]
        self.assertEqual(choice.index, 0)
        self.assertEqual(choice.message.role, "assistant")
        self.assertTrue(choice.message.content, "empty content")
        self.assertTrue(choice.message.content.startswith(OFFLINE_LABEL), choice.message.content)
        self.assertEqual(choice.finish_reason, "stop")
        usage = completion.usage
        self.assertIsNotNone(usage, "no usage")
        self.assertGreater(usage.prompt_tokens, 0)
        self.assertGreater(usage.completion_tokens, 0)
        self.assertEqual(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens)
        self.assertEqual(headers.get("x-prompt-version"), version, "x-prompt-version header")
        pg = extra(completion)
        self.assertEqual(pg.get("version"), version, pg)
        self.assertTrue(isinstance(pg.get("responseId"), str) and pg["responseId"], pg)
        return choice.message.content

    def test_plain_completion(self):
        completion, headers = ask(f"prompt:{S['main']}", user="session-plain")
        content = self.check_completion(completion, headers, "1.1.0")
        self.assertIn(f"You said: {QUESTION}", content, "the offline provider echoes the last user turn")
        self.assertEqual(extra(completion).get("promptId"), S["main_id"])

    def test_plain_completion_without_raw_response(self):
        # The call most users write, with earlier turns: the answer is a ChatCompletion as is.
        completion = client().chat.completions.create(
            model=f"prompt:{S['main']}",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Has my parcel shipped?"},
            ],
        )
        self.assertEqual(completion.object, "chat.completion")
        self.assertIn("You said: Has my parcel shipped?", completion.choices[0].message.content)
        # The SDK's request id comes from the gateway's X-Request-Id.
        self.assertTrue(completion._request_id, "no x-request-id header")

    def test_pinned_version_against_the_split(self):
        # Traffic sends 100% of "main" to 1.1.0; the pin must win.
        completion, headers = ask(f"prompt:{S['main']}@1.0.0", user="session-pin")
        self.check_completion(completion, headers, "1.0.0")
        self.assertEqual(extra(completion).get("promptId"), S["main_id"])
        unpinned, headers = ask(f"prompt:{S['main']}", user="session-pin")
        self.check_completion(unpinned, headers, "1.1.0")
        # The pinned version's system prompt was the one sent upstream: the offline provider counts
        # it in prompt_tokens, and the two versions differ only in their system prompt.
        tokens = S["system_tokens"]
        self.assertEqual(
            unpinned.usage.prompt_tokens - completion.usage.prompt_tokens,
            tokens["1.1.0"] - tokens["1.0.0"],
            f"prompt_tokens {unpinned.usage.prompt_tokens} (1.1.0) vs {completion.usage.prompt_tokens} "
            f"(1.0.0) do not differ by the system prompts' token counts {tokens}",
        )

    def test_pinned_version_the_other_way(self):
        # "legacy" sends all traffic to 1.0.0; pinning 1.1.0 must answer 1.1.0.
        completion, headers = ask(f"prompt:{S['legacy']}@1.1.0")
        self.check_completion(completion, headers, "1.1.0")
        self.assertEqual(extra(completion).get("promptId"), S["legacy_id"])
        unpinned, headers = ask(f"prompt:{S['legacy']}")
        self.check_completion(unpinned, headers, "1.0.0")
        tokens = S["system_tokens"]
        self.assertEqual(
            completion.usage.prompt_tokens - unpinned.usage.prompt_tokens, tokens["1.1.0"] - tokens["1.0.0"]
        )

    def test_sticky_sessions(self):
        # 50/50 sticky split: a session (the `user` field, or the promptgate-session-id header)
        # keeps its version; across 20 sessions both versions are served.
        seen = {}
        for i in range(20):
            session = f"sticky-{i}"
            _, by_user = ask(f"prompt:{S['split']}", user=session)
            _, again = ask(f"prompt:{S['split']}", user=session)
            _, by_header = ask(f"prompt:{S['split']}", extra_headers={"promptgate-session-id": session})
            versions = {h.get("x-prompt-version") for h in (by_user, again, by_header)}
            self.assertEqual(len(versions), 1, f"session {session} got versions {versions}")
            seen[session] = versions.pop()
        self.assertEqual(set(seen.values()), {"1.0.0", "1.1.0"}, seen)


class Streaming(unittest.TestCase):
    def test_streamed_completion_with_usage(self):
        model = f"prompt:{S['main']}"
        raw = client().chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            user="session-stream",
            stream=True,
            stream_options={"include_usage": True},
        )
        self.assertEqual(raw.headers.get("x-prompt-version"), "1.1.0", "x-prompt-version header")
        self.assertTrue(raw.headers.get("content-type", "").startswith("text/event-stream"), raw.headers)
        chunks = list(raw.parse())
        self.assertGreaterEqual(len(chunks), 3, chunks)
        for chunk in chunks:
            self.assertIsInstance(chunk, openai.types.chat.ChatCompletionChunk)
            self.assertEqual(chunk.object, "chat.completion.chunk")
            self.assertEqual(chunk.id, chunks[0].id, "every chunk of a stream has the same id")
            self.assertEqual(chunk.model, S["upstream_model"])
        deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
        self.assertGreater(len(deltas), 1, "the answer came in one piece, not streamed")
        text = "".join(deltas)
        self.assertTrue(text.startswith(OFFLINE_LABEL), text)
        self.assertIn(f"You said: {QUESTION}", text)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        self.assertEqual(finishes, ["stop"], "exactly one chunk carries the finish_reason")
        # The gateway's report rides on the chunk that finishes (an extension, kept by pydantic).
        finishing = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
        self.assertEqual(extra(finishing).get("version"), "1.1.0")
        self.assertEqual(extra(finishing).get("promptId"), S["main_id"])

        # include_usage: the last chunk, and only it, has empty choices and the usage.
        last = chunks[-1]
        self.assertEqual(last.choices, [], "the usage chunk has no choices")
        self.assertIsNotNone(last.usage, "no usage in the last chunk")
        self.assertGreater(last.usage.prompt_tokens, 0)
        self.assertGreater(last.usage.completion_tokens, 0)
        self.assertEqual(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens)
        self.assertTrue(all(c.usage is None for c in chunks[:-1]), "usage before the last chunk")

        # The offline provider is deterministic: the streamed answer is the plain one, same usage.
        plain, _ = ask(model, user="session-stream")
        self.assertEqual(text, plain.choices[0].message.content)
        self.assertEqual(last.usage.prompt_tokens, plain.usage.prompt_tokens)
        self.assertEqual(last.usage.completion_tokens, plain.usage.completion_tokens)

    def test_stream_wire_format(self):
        # The raw stream, read through the SDK's own streaming response: `data: {json}` events
        # and, last, `data: [DONE]` (the SDKs stop at it; they would not notice it missing).
        with client().chat.completions.with_streaming_response.create(
            model=f"prompt:{S['main']}",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            self.assertEqual(response.http_response.status_code, 200)
            lines = [line for line in response.iter_lines() if line and not line.startswith(":")]
        data = [line for line in lines if line.startswith("data:")]
        self.assertEqual(data, lines, f"lines other than data: {lines}")
        self.assertEqual(data[-1], "data: [DONE]", lines[-3:])
        self.assertEqual(data.count("data: [DONE]"), 1)
        for line in data[:-1]:
            chunk = json.loads(line[len("data:"):])
            self.assertEqual(chunk["object"], "chat.completion.chunk", line)

    def test_streamed_completion_without_usage(self):
        stream = client().chat.completions.create(
            model=f"prompt:{S['main']}@1.0.0",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertIn(f"You said: {QUESTION}", text)
        self.assertTrue(all(c.usage is None for c in chunks), "usage without stream_options.include_usage")
        self.assertTrue(all(c.choices for c in chunks), "a chunk without choices, yet no usage was asked for")


class Models(unittest.TestCase):
    def test_list_models(self):
        models = client().models.list()
        ids = [m.id for m in models]
        for name in ("main", "legacy", "split"):
            self.assertIn(f"prompt:{S[name]}", ids)
        self.assertNotIn(f"prompt:{S['archived']}", ids, "an archived prompt is listed")
        main = next(m for m in models if m.id == f"prompt:{S['main']}")
        self.assertEqual(main.object, "model")
        self.assertEqual(main.owned_by, "promptgate")
        self.assertIsInstance(main.created, int)

    def test_retrieve_model(self):
        model = client().models.retrieve(f"prompt:{S['main']}")
        self.assertEqual(model.id, f"prompt:{S['main']}")
        self.assertEqual(model.object, "model")
        self.assertEqual(model.owned_by, "promptgate")

    def test_retrieve_unknown_model(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            client().models.retrieve(f"prompt:no_such_prompt_{uuid.uuid4().hex[:8]}")
        self.assertEqual(caught.exception.code, "model_not_found")


class Errors(unittest.TestCase):
    def check(self, error, status, code=None, error_type=None):
        self.assertEqual(error.status_code, status)
        body = error.body
        self.assertIsInstance(body, dict, f"the error body is not OpenAI's error object: {body!r}")
        self.assertTrue(isinstance(body.get("message"), str) and body["message"], body)
        for key in ("type", "param", "code"):
            self.assertIn(key, body, f"no {key} in the error object {body}")
        if code is not None:
            self.assertEqual(error.code, code, body)
        if error_type is not None:
            self.assertEqual(error.type, error_type, body)

    def test_bad_api_key(self):
        bad = OpenAI(base_url=ENV["url"] + "/v1", api_key="not-a-promptgate-token", max_retries=0)
        with self.assertRaises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(
                model=f"prompt:{S['main']}", messages=[{"role": "user", "content": QUESTION}]
            )
        self.check(caught.exception, 401, code="invalid_api_key")
        with self.assertRaises(openai.AuthenticationError) as caught:
            bad.models.list()
        self.check(caught.exception, 401, code="invalid_api_key")

    def test_unknown_prompt(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            ask(f"prompt:no_such_prompt_{uuid.uuid4().hex[:8]}")
        self.check(caught.exception, 404, code="model_not_found")

    def test_model_that_is_not_a_prompt(self):
        # What an application that changed only its base URL sees: OpenAI's own answer for a
        # model that does not exist.
        with self.assertRaises(openai.NotFoundError) as caught:
            ask("gpt-4o-mini")
        self.check(caught.exception, 404, code="model_not_found")

    def test_unknown_pinned_version(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            ask(f"prompt:{S['main']}@9.9.9")
        self.check(caught.exception, 404, code="model_not_found")

    def test_archived_prompt(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            ask(f"prompt:{S['archived']}")
        self.check(caught.exception, 404, code="model_not_found")

    def test_empty_messages(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            ask(f"prompt:{S['main']}", messages=[])
        self.check(caught.exception, 400, error_type="invalid_request_error")

    def test_last_message_not_from_the_user(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            ask(
                f"prompt:{S['main']}",
                messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            )
        self.check(caught.exception, 400, error_type="invalid_request_error")

    def test_token_without_gateway_scope(self):
        with self.assertRaises(openai.PermissionDeniedError) as caught:
            client(S["reader"]).chat.completions.create(
                model=f"prompt:{S['main']}", messages=[{"role": "user", "content": QUESTION}]
            )
        self.check(caught.exception, 403)

    def test_streamed_error_is_raised_before_any_chunk(self):
        # A stream that cannot start answers an HTTP error, which the SDK raises on create().
        with self.assertRaises(openai.NotFoundError) as caught:
            client().chat.completions.create(
                model=f"prompt:no_such_prompt_{uuid.uuid4().hex[:8]}",
                messages=[{"role": "user", "content": QUESTION}],
                stream=True,
            )
        self.check(caught.exception, 404, code="model_not_found")


class TemplatesAndLabels(unittest.TestCase):
    """`prompt:NAME@LABEL` and the `prompt_variables` body extension, sent with `extra_body`."""

    def test_label_with_prompt_variables(self):
        variables = {"customer_name": SHORT_NAME, "tier": "gold"}
        raw = client().chat.completions.with_raw_response.create(
            model=f"prompt:{S['tpl']}@staging",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"prompt_variables": variables},
        )
        labelled = raw.parse()
        # The label's version serves, although all traffic is on 1.0.0.
        ChatCompletion.check_completion(self, labelled, raw.headers, "1.1.0")
        self.assertEqual(extra(labelled).get("promptId"), S["tpl_id"])
        self.assertIn(f"You said: {QUESTION}", labelled.choices[0].message.content)

        # The call as most code writes it: the variables were rendered into the system prompt.
        # The offline provider counts the system prompt in prompt_tokens, so a longer name
        # costs exactly what the render preview says it costs.
        longer = client().chat.completions.create(
            model=f"prompt:{S['tpl']}@staging",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"prompt_variables": {"customer_name": LONG_NAME, "tier": "gold"}},
        )
        rendered = S["rendered_tokens"]
        self.assertEqual(
            longer.usage.prompt_tokens - labelled.usage.prompt_tokens,
            rendered[("1.1.0", LONG_NAME)] - rendered[("1.1.0", SHORT_NAME)],
            f"prompt_tokens {longer.usage.prompt_tokens} vs {labelled.usage.prompt_tokens}; rendered {rendered}",
        )

        # Without the label, the split's version (1.0.0) renders the same variables.
        unlabelled, headers = ask(f"prompt:{S['tpl']}", extra_body={"prompt_variables": variables})
        ChatCompletion.check_completion(self, unlabelled, headers, "1.0.0")
        self.assertEqual(
            labelled.usage.prompt_tokens - unlabelled.usage.prompt_tokens,
            rendered[("1.1.0", SHORT_NAME)] - rendered[("1.0.0", SHORT_NAME)],
        )

    def test_missing_prompt_variable_is_a_bad_request(self):
        for body in ({"prompt_variables": {"tier": "gold"}}, None):
            with self.assertRaises(openai.BadRequestError) as caught:
                client().chat.completions.create(
                    model=f"prompt:{S['tpl']}@staging",
                    messages=[{"role": "user", "content": QUESTION}],
                    extra_body=body,
                )
            Errors.check(self, caught.exception, 400, error_type="invalid_request_error")
            self.assertEqual(caught.exception.param, "prompt_variables.customer_name", caught.exception.body)

    def test_invalid_and_unknown_prompt_variables_are_bad_requests(self):
        for variables, param in (
            ({"customer_name": SHORT_NAME, "tier": "bronze"}, "prompt_variables.tier"),
            ({"customer_name": SHORT_NAME, "nickname": "JJ"}, "prompt_variables.nickname"),
            ({"customer_name": 42}, "prompt_variables.customer_name"),
        ):
            with self.assertRaises(openai.BadRequestError) as caught:
                ask(f"prompt:{S['tpl']}@staging", extra_body={"prompt_variables": variables})
            Errors.check(self, caught.exception, 400, error_type="invalid_request_error")
            self.assertEqual(caught.exception.param, param, caught.exception.body)

    def test_unknown_label_is_model_not_found(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            ask(f"prompt:{S['tpl']}@production", extra_body={"prompt_variables": {"customer_name": SHORT_NAME}})
        Errors.check(self, caught.exception, 404, code="model_not_found")


class ToolsAndStructuredOutput:
    """Tools and structured output (issue 20) through one upstream flavor: the subclasses run the
    same cases against the OpenAI-compatible and the Anthropic endpoint (the gateway translates
    tools, tool turns and JSON output for the latter)."""

    flavor = None

    def model(self, kind="tools"):
        return S[f"{kind}_{self.flavor}"]

    def check_single_call(self, completion, name, arguments, streamed=False):
        choice = completion.choices[0]
        self.assertEqual(choice.finish_reason, "tool_calls", completion.model_dump_json())
        self.assertEqual(choice.message.role, "assistant")
        if streamed:
            # The SDK's stream helper assembles content from the chunks; the gateway's first chunk
            # says `content: ""` where OpenAI says null before tool calls, so the assembled
            # content is "" rather than None (a known difference, reported on issue 20).
            self.assertIn(choice.message.content, (None, ""))
        else:
            self.assertIsNone(choice.message.content, "content must be null when only tools were called")
        self.assertEqual(len(choice.message.tool_calls), 1, completion.model_dump_json())
        call = choice.message.tool_calls[0]
        self.assertIsInstance(call, openai.types.chat.ChatCompletionMessageToolCall)
        self.assertEqual(call.type, "function")
        self.assertTrue(call.id)
        self.assertEqual(call.function.name, name)
        self.assertEqual(json.loads(call.function.arguments), arguments)
        return choice.message, call

    def check_tool_answer(self, completion, result=TOOL_RESULT):
        choice = completion.choices[0]
        self.assertEqual(choice.finish_reason, "stop", completion.model_dump_json())
        self.assertFalse(choice.message.tool_calls)
        self.assertEqual(choice.message.content, f"The tool answered: {result}")

    def test_tool_round_trip(self):
        messages = [{"role": "user", "content": CALL_LOOKUP}]
        first = client().chat.completions.create(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER, GET_WEATHER]
        )
        self.assertEqual(first.object, "chat.completion")
        message, call = self.check_single_call(first, "lookup_order", {"order_id": "A-17"})
        # As OpenAI's guide writes it: the answer's message object itself goes back, then the result.
        messages += [message, {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT}]
        second = client().chat.completions.create(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER, GET_WEATHER]
        )
        self.check_tool_answer(second)
        self.assertGreater(second.usage.completion_tokens, 0)

    def test_tool_choice_none_and_no_tools_answer_text(self):
        for kwargs in ({"tools": [LOOKUP_ORDER], "tool_choice": "none"}, {}):
            completion = client().chat.completions.create(
                model=self.model(), messages=[{"role": "user", "content": CALL_LOOKUP}], **kwargs
            )
            self.assertEqual(completion.choices[0].finish_reason, "stop", kwargs)
            self.assertFalse(completion.choices[0].message.tool_calls, kwargs)
            self.assertEqual(completion.choices[0].message.content, f"Echo: {CALL_LOOKUP}", kwargs)

    def test_streamed_tool_round_trip_with_raw_chunks(self):
        """stream=True, the chunks' delta.tool_calls accumulated by index as OpenAI documents it."""
        messages = [{"role": "user", "content": CALL_LOOKUP}]
        stream = client().chat.completions.create(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER, GET_WEATHER], stream=True
        )
        calls, pieces, finish = {}, 0, []
        for chunk in stream:
            self.assertEqual(chunk.object, "chat.completion.chunk")
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            for delta in choice.delta.tool_calls or []:
                if delta.index not in calls:
                    # A call's first chunk names it.
                    self.assertTrue(delta.id, delta)
                    self.assertEqual(delta.type, "function", delta)
                    self.assertTrue(delta.function.name, delta)
                    calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
                if delta.function and delta.function.arguments:
                    calls[delta.index]["arguments"] += delta.function.arguments
                    pieces += 1
            if choice.finish_reason:
                finish.append(choice.finish_reason)
        self.assertEqual(finish, ["tool_calls"])
        self.assertEqual(list(calls), [0])
        self.assertEqual(calls[0]["name"], "lookup_order")
        self.assertEqual(json.loads(calls[0]["arguments"]), {"order_id": "A-17"})
        self.assertGreater(pieces, 1, "the fake upstream sends the arguments in several pieces")

        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": calls[0]["id"],
                        "type": "function",
                        "function": {"name": calls[0]["name"], "arguments": calls[0]["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": TOOL_RESULT},
        ]
        stream = client().chat.completions.create(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER, GET_WEATHER], stream=True
        )
        text, finish = "", []
        for chunk in stream:
            if chunk.choices:
                self.assertFalse(chunk.choices[0].delta.tool_calls)
                text += chunk.choices[0].delta.content or ""
                if chunk.choices[0].finish_reason:
                    finish.append(chunk.choices[0].finish_reason)
        self.assertEqual(text, f"The tool answered: {TOOL_RESULT}")
        self.assertEqual(finish, ["stop"])

    def test_streamed_tool_round_trip_with_the_stream_helper(self):
        """client.chat.completions.stream(): the SDK assembles the calls and its events."""
        messages = [{"role": "user", "content": CALL_LOOKUP}]
        with client().chat.completions.stream(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER, GET_WEATHER]
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        self.assertGreater(kinds.count("tool_calls.function.arguments.delta"), 1, kinds)
        self.assertEqual(kinds.count("tool_calls.function.arguments.done"), 1, kinds)
        message, call = self.check_single_call(final, "lookup_order", {"order_id": "A-17"}, streamed=True)
        messages += [message, {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT}]
        with client().chat.completions.stream(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER, GET_WEATHER]
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        self.assertIn("content.done", kinds)
        self.check_tool_answer(final)

    def test_parse_with_a_pydantic_model(self):
        for parse in (client().chat.completions.parse, client().beta.chat.completions.parse):
            completion = parse(
                model=self.model(),
                messages=[{"role": "user", "content": "json " + json.dumps(ORDER_JSON)}],
                response_format=Order,
            )
            message = completion.choices[0].message
            self.assertEqual(completion.choices[0].finish_reason, "stop", completion.model_dump_json())
            self.assertIsInstance(message.parsed, Order)
            self.assertEqual(message.parsed, Order(**ORDER_JSON))
            self.assertEqual(json.loads(message.content), ORDER_JSON)
            self.assertFalse(message.tool_calls)

    def test_streamed_parse_with_a_pydantic_model(self):
        with client().chat.completions.stream(
            model=self.model(),
            messages=[{"role": "user", "content": "json " + json.dumps(ORDER_JSON)}],
            response_format=Order,
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        self.assertGreater(kinds.count("content.delta"), 1, kinds)
        self.assertEqual(final.choices[0].message.parsed, Order(**ORDER_JSON))

    def test_parse_with_a_strict_function_tool(self):
        """openai.pydantic_function_tool: parse() gives the call's arguments as the model."""
        completion = client().chat.completions.parse(
            model=self.model(),
            messages=[{"role": "user", "content": CALL_LOOKUP.replace("lookup_order", "LookupOrder")}],
            tools=[openai.pydantic_function_tool(LookupOrder)],
        )
        call = completion.choices[0].message.tool_calls[0]
        self.assertEqual(completion.choices[0].finish_reason, "tool_calls")
        self.assertEqual(call.function.name, "LookupOrder")
        self.assertEqual(call.function.parsed_arguments, LookupOrder(order_id="A-17"))

    def test_tools_beside_a_response_format(self):
        """Both at once: the model may call a tool or answer in the format (on Anthropic the
        output tool sits beside the caller's tools)."""
        first = client().chat.completions.parse(
            model=self.model(),
            messages=[{"role": "user", "content": CALL_LOOKUP}],
            tools=[LOOKUP_ORDER],
            response_format=Order,
        )
        message, call = self.check_single_call(first, "lookup_order", {"order_id": "A-17"})
        self.assertIsNone(message.parsed)
        messages = [
            {"role": "user", "content": CALL_LOOKUP},
            message,
            {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT},
            {"role": "user", "content": "json " + json.dumps(ORDER_JSON)},
        ]
        second = client().chat.completions.parse(
            model=self.model(), messages=messages, tools=[LOOKUP_ORDER], response_format=Order
        )
        self.assertEqual(second.choices[0].finish_reason, "stop", second.model_dump_json())
        self.assertEqual(second.choices[0].message.parsed, Order(**ORDER_JSON))

    def test_version_owns_its_tools(self):
        """A version with its own tools serves a caller who sends none; its tools win over the
        caller's (the upstream never hears of get_weather, so the model echoes)."""
        messages = [{"role": "user", "content": CALL_LOOKUP}]
        first = client().chat.completions.create(model=self.model("owned"), messages=messages)
        message, call = self.check_single_call(first, "lookup_order", {"order_id": "A-17"})
        messages += [message, {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT}]
        self.check_tool_answer(client().chat.completions.create(model=self.model("owned"), messages=messages))

        with client().chat.completions.stream(model=self.model("owned"), messages=messages[:1]) as stream:
            for _ in stream:
                pass
            final = stream.get_final_completion()
        self.check_single_call(final, "lookup_order", {"order_id": "A-17"}, streamed=True)

        weather = 'call get_weather {"city": "Oslo"}'
        completion = client().chat.completions.create(
            model=self.model("owned"), messages=[{"role": "user", "content": weather}], tools=[GET_WEATHER]
        )
        self.assertEqual(completion.choices[0].finish_reason, "stop", completion.model_dump_json())
        self.assertEqual(completion.choices[0].message.content, f"Echo: {weather}")

    def test_version_owns_its_response_format(self):
        """A version with its own json_schema answers JSON to a caller who asks for none, and
        parse() with the same model reads it."""
        ask_json = [{"role": "user", "content": "json " + json.dumps(ORDER_JSON)}]
        completion = client().chat.completions.create(model=self.model("owned_json"), messages=ask_json)
        self.assertEqual(completion.choices[0].finish_reason, "stop", completion.model_dump_json())
        self.assertEqual(json.loads(completion.choices[0].message.content), ORDER_JSON)
        parsed = client().chat.completions.parse(
            model=self.model("owned_json"), messages=ask_json, response_format=Order
        )
        self.assertEqual(parsed.choices[0].message.parsed, Order(**ORDER_JSON))


class ToolsThroughOpenAiUpstream(ToolsAndStructuredOutput, unittest.TestCase):
    flavor = "openai"


class ToolsThroughAnthropicUpstream(ToolsAndStructuredOutput, unittest.TestCase):
    flavor = "anthropic"


class RateLimit(unittest.TestCase):
    def test_rate_limited(self):
        # The runner's second gateway gives every client a burst of 4 requests, then one per
        # 1000 s; it made the prompt "rate_limited" there with one of them. Some of the first calls
        # may answer (or none, when the Node test ran first); within 6 the 429 must come, as the
        # SDK's RateLimitError (not retried: max_retries=0).
        limited = OpenAI(
            base_url=env("PROMPTGATE_LIMITED_URL").rstrip("/") + "/v1",
            api_key=env("PROMPTGATE_LIMITED_TOKEN"),
            max_retries=0,
        )
        answered = 0
        for _ in range(6):
            try:
                completion = limited.chat.completions.create(
                    model="prompt:rate_limited", messages=[{"role": "user", "content": QUESTION}]
                )
            except openai.RateLimitError as error:
                Errors.check(self, error, 429, code="rate_limit_exceeded")
                self.assertTrue(error.response.headers.get("retry-after"), "no Retry-After header")
                return
            self.assertEqual(completion.object, "chat.completion")
            answered += 1
        self.fail(f"{answered} completions and no 429 past the burst of 4")


class ApiKeyOutlivesTokens(unittest.TestCase):
    """Issue 21: the SDK, unmodified, with a `pgk_…` API key as its api_key, keeps working over a
    run that outlasts several access-token lifetimes; an access token taken at the start is
    refused once it has expired; revoking the key refuses it at once.

    Simulated time: on the short-TTL gateway an access token lives PROMPTGATE_SHORT_TTL_SECONDS
    (2 s) instead of the default 24 h. That TTL stands for the 24 h, so this run of more than 3
    lifetimes stands for a long-running service (several days of tokens: more than the issue's
    hour-long run) that made its OpenAI client once. Only waits (sleeps past the TTL) and outcomes
    are asserted, never how fast anything was."""

    @classmethod
    def setUpClass(cls):
        cls.url = env("PROMPTGATE_SHORT_TTL_URL").rstrip("/")
        cls.ttl = float(env("PROMPTGATE_SHORT_TTL_SECONDS"))
        cls.admin_id = env("PROMPTGATE_SHORT_TTL_ADMIN_ID")
        cls.admin_secret = env("PROMPTGATE_SHORT_TTL_ADMIN_SECRET")

        endpoints = cls.admin_call("GET", f"{GATEWAY}/model-endpoints")["entities"]
        offline = [e for e in endpoints if e.get("offline")]
        if not offline:
            raise AssertionError(f"setup: no offline model endpoint in {endpoints}")
        cls.upstream_model = offline[0]["model"]

        tag = uuid.uuid4().hex[:8]
        # A client with exactly the scope the front door needs, a prompt on the offline endpoint,
        # and a key of that client with that scope.
        made = cls.admin_call(
            "POST", "/api/v2/oauth/clients", {"name": f"sdk-py-keyed-{tag}", "scopes": ["ai:gateway:write"]}
        )
        cls.client_id, cls.client_secret = made["clientId"], made["clientSecret"]
        cls.prompt = f"sdk_py_keyed_{tag}"
        cls.prompt_id = cls.admin_call(
            "POST",
            f"{GATEWAY}/prompts",
            {
                "name": cls.prompt,
                "modelEndpointRef": offline[0]["ref"],
                "systemPrompt": SHORT_SYSTEM,
                "safetyGuardrails": {"contentFiltering": [], "maxTokens": 1000},
                "version": "1.0.0",
            },
        )["id"]
        key = cls.admin_call(
            "POST",
            f"/api/v2/oauth/clients/{cls.client_id}/api-keys",
            {"name": f"sdk-py-{tag}", "scopes": "ai:gateway:write"},
        )
        assert key["key"].startswith("pgk_"), f"setup: the key {key['key'][:4]}… has no pgk_ prefix"
        cls.key, cls.key_id = key["key"], key["id"]

    @classmethod
    def admin_call(cls, method, path, body=None):
        """One admin call on the short-TTL gateway, with a fresh token: they expire within seconds."""
        admin = token_for(cls.admin_id, cls.admin_secret, base=cls.url)
        return http(method, path, admin, body, base=cls.url)

    def sdk(self, api_key):
        return OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=30)

    def check_answer(self, sdk, question):
        completion = sdk.chat.completions.create(
            model=f"prompt:{self.prompt}", messages=[{"role": "user", "content": question}]
        )
        self.assertEqual(completion.object, "chat.completion")
        self.assertEqual(completion.model, self.upstream_model)
        content = completion.choices[0].message.content
        self.assertTrue(content.startswith(OFFLINE_LABEL), content)
        self.assertIn(f"You said: {question}", content)
        self.assertEqual(completion.choices[0].finish_reason, "stop")
        self.assertEqual(extra(completion).get("promptId"), self.prompt_id)

    def check_streamed_answer(self, sdk, question):
        stream = sdk.chat.completions.create(
            model=f"prompt:{self.prompt}", messages=[{"role": "user", "content": question}], stream=True
        )
        chunks = list(stream)
        deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
        self.assertGreater(len(deltas), 1, "the answer came in one piece, not streamed")
        text = "".join(deltas)
        self.assertTrue(text.startswith(OFFLINE_LABEL), text)
        self.assertIn(f"You said: {question}", text)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        self.assertEqual(finishes, ["stop"], "exactly one chunk carries the finish_reason")

    def check_refused(self, sdk, reason):
        """The SDK raises AuthenticationError (401, invalid_api_key), the gateway saying why."""
        with self.assertRaises(openai.AuthenticationError) as caught:
            sdk.chat.completions.create(
                model=f"prompt:{self.prompt}", messages=[{"role": "user", "content": QUESTION}]
            )
        Errors.check(self, caught.exception, 401, code="invalid_api_key")
        self.assertIn(reason, caught.exception.body["message"], caught.exception.body)

    def test_api_key_outlives_tokens(self):
        # An ordinary access token of the same client, taken at the start: it works now.
        token = token_for(self.client_id, self.client_secret, base=self.url)
        with_token = self.sdk(token)
        self.check_answer(with_token, "Round 0 with the access token")
        # The service's one SDK client, made once with the key and kept for the whole run.
        with_key = self.sdk(self.key)
        self.check_answer(with_key, "Round 0 with the key")

        # Three waits, each longer than a token's whole life: the run spans more than 3 TTLs
        # (3 days of the default 24 h tokens). After each, the token from the start is refused
        # as expired, and the key still answers (streamed in the second round).
        for round_ in range(1, 4):
            time.sleep(self.ttl + 0.5)
            self.check_refused(with_token, "expired")
            question = f"Round {round_} with the key"
            if round_ == 2:
                self.check_streamed_answer(with_key, question)
            else:
                self.check_answer(with_key, question)

        # Revoked: the gateway that revoked the key refuses it at once, to the same SDK client.
        revoked = self.admin_call("DELETE", f"/api/v2/oauth/api-keys/{self.key_id}")
        self.assertTrue(revoked.get("revokedAt"), revoked)
        self.check_refused(with_key, "revoked")


if __name__ == "__main__":
    print(f"openai (Python) {openai.__version__} against {os.environ.get('PROMPTGATE_URL')}", flush=True)
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = max(0, result.testsRun - failed - len(result.skipped))
    print(f"openai-python: {passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 and result.testsRun > 0 else 1)
