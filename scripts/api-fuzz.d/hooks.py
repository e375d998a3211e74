"""Schemathesis hooks of scripts/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

Two jobs, both documented in docs/api-fuzzing.md:

1. Real targets (and, for `POST /oauth/token`, real credentials). Random ids almost always answer 404, so the handlers behind them would never
   run. For the operations that take an id (in the path, the body or the query), Hypothesis
   draws either the value it generated or one of the ids seed.py created (API_FUZZ_SEED_FILE);
   both kinds of request are sent, the generated ones still exercise the 404s and 400s.
2. Keeping the run's own client alive. Schemathesis reuses values it saw in responses (the
   client list names the fuzzer's client id), and `POST …/clients/{id}/disable` or
   `…/rotate-secret` on that id would revoke the fuzzer's token and turn the rest of the run
   into 401s. `before_call` sends those to the seeded victim client instead; likewise a DELETE
   (archive) of the main seeded prompt goes to the archivable one, so that invocations keep a
   live prompt. Nothing else is changed or filtered.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

GATEWAY = "/api/v2/ai/llm/gateway"

with open(os.environ["API_FUZZ_SEED_FILE"]) as _f:
    SEEDED = json.load(_f)

PROMPT = SEEDED["promptId"]
ARCHIVABLE = SEEDED["archivablePromptId"]
VERSIONS = SEEDED["versions"]


def _seeded_path_parameters(method, path):
    """Strategies for every path parameter of the operation, from the seeded data."""
    if path == f"{GATEWAY}/prompts/{{id}}":
        return {"id": st.just(ARCHIVABLE if method == "DELETE" else PROMPT)}
    if path == f"{GATEWAY}/prompts/{{id}}/versions":
        return {"id": st.sampled_from([PROMPT, ARCHIVABLE])}
    if path == f"{GATEWAY}/prompts/{{id}}/versions/{{version}}":
        return {"id": st.just(PROMPT), "version": st.sampled_from(VERSIONS)}
    if path == f"{GATEWAY}/invocations/{{responseId}}/feedback":
        return {"responseId": st.sampled_from(SEEDED["responseIds"])}
    if path in (f"{GATEWAY}/audit-logs/{{sequence}}", f"{GATEWAY}/audit-logs/{{sequence}}/proof"):
        return {"sequence": st.integers(min_value=1, max_value=SEEDED["auditSequence"])}
    if path == "/api/v2/oauth/clients/{id}/api-keys/{keyId}":
        return {"id": st.just(SEEDED["victimClientId"]), "keyId": st.sampled_from(SEEDED["victimKeyIds"])}
    if path.startswith("/api/v2/oauth/clients/{id}/"):
        return {"id": st.just(SEEDED["victimClientId"])}
    if path == "/api/v2/oauth/api-keys/{keyId}":
        return {"keyId": st.sampled_from(SEEDED["victimKeyIds"])}
    return None


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    operation = context.operation
    if operation is None:
        return strategy
    seeded = _seeded_path_parameters(operation.method.upper(), operation.path)
    if seeded is None:
        return strategy
    return st.one_of(strategy, st.fixed_dictionaries(seeded))


def _with_seeded_ids(pair):
    value, version = pair
    if not isinstance(value, dict):
        return value
    value = dict(value)
    if "promptId" in value:
        value["promptId"] = PROMPT
    if "version" in value and version is not None:
        value["version"] = version
    if "compareTo" in value and version is not None:
        value["compareTo"] = version
    if "modelEndpointRef" in value:
        value["modelEndpointRef"] = "builtin/echo"
    return value


def _seeded_variant(strategy):
    return st.one_of(
        strategy, st.tuples(strategy, st.sampled_from([*VERSIONS, None])).map(_with_seeded_ids)
    )


def _with_login(value):
    if not isinstance(value, dict):
        return value
    return {**value, "client_id": SEEDED["loginClientId"], "client_secret": SEEDED["loginClientSecret"]}


@schemathesis.hook
def before_generate_body(context, strategy):
    operation = context.operation
    if operation is not None and operation.path == "/oauth/token":
        # Some forms carry a real client's credentials (the login client of seed.py).
        return st.one_of(strategy, strategy.map(_with_login))
    return _seeded_variant(strategy)


@schemathesis.hook
def before_generate_query(context, strategy):
    return _seeded_variant(strategy)


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    params = case.path_parameters
    if not params or "id" not in params:
        return
    own = {SEEDED["fuzzerClientId"]}
    if path.startswith("/api/v2/oauth/clients/{id}/") and str(params["id"]) in own:
        case.path_parameters = {**params, "id": SEEDED["victimClientId"]}
    elif (
        path == f"{GATEWAY}/prompts/{{id}}"
        and case.operation.method.upper() == "DELETE"
        and str(params["id"]) == PROMPT
    ):
        case.path_parameters = {**params, "id": ARCHIVABLE}
