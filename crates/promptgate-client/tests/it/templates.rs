//! Templates, variables and labels in the SDK: the request bodies it sends and the answers it
//! reads (against a recording server), the local check of variables (no request made), and
//! the whole flow against a real gateway, where the local check must agree with the gateway's.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use promptgate_client::api::{PromptVersion, RenderRequest};
use promptgate_client::{
    Client, Error, FieldViolation, Invocation, PromptDraft, VariablesCheck, VersionDraft,
    check_variables,
};
use serde_json::{Map, Value, json};

use crate::gateway::TestGateway;

const BASE: &str = "/api/v2/ai/llm/gateway";

/// One request a recording server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    /// The path as sent, percent-encoding included.
    path: String,
    if_match: Option<String>,
    /// The JSON body, `Null` when there was none.
    body: Value,
}

/// A server that answers every API request with `reply(method, path)` and records it; its
/// token endpoint hands out day-long tokens.
async fn recording(
    reply: impl Fn(&Method, &str) -> (u16, Value) + Clone + Send + Sync + 'static,
) -> (Client, Arc<Mutex<Vec<Recorded>>>) {
    let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let log = seen.clone();
    let router = Router::new()
        .route(
            "/oauth/token",
            axum::routing::post(|| async {
                axum::Json(json!({"access_token": "tok", "token_type": "bearer",
                    "expires_in": 86_400, "scope": "ai:prompt:read ai:prompt:write ai:gateway:write"}))
            }),
        )
        .fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let reply = reply.clone();
                async move {
                    let path = uri.path().to_owned();
                    let (status, answer) = reply(&method, &path);
                    log.lock().unwrap().push(Recorded {
                        method,
                        path,
                        if_match: headers
                            .get(header::IF_MATCH)
                            .map(|v| v.to_str().unwrap().to_owned()),
                        body: if body.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&body).unwrap()
                        },
                    });
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [(header::ETAG, "\"etag-2\"")],
                        axum::Json(answer),
                    )
                        .into_response()
                }
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = Client::builder()
        .base_url(format!("http://{addr}"))
        .client_credentials("id", "secret")
        .max_attempts(1)
        .build()
        .unwrap();
    (client, seen)
}

fn prompt_json(labels: Value) -> Value {
    json!({
        "id": "p-1", "name": "support_agent", "status": "ACTIVE", "version": "1.0.0",
        "modelEndpointRef": "builtin/echo", "systemPrompt": "Hello {{customer_name}}.",
        "temperature": 1.0, "safetyGuardrails": {}, "fewShotExamples": [],
        "systemPromptTokens": 3, "tokenizer": "o200k_base", "tokenizerExact": true,
        "trafficDistribution": {"defaultVersion": "1.0.0", "splitStrategy": "sticky", "versions": []},
        "chatCompletions": {"systemMessage": "replace", "allowCallerSettings": false},
        "versions": ["1.0.0", "1.2.0"], "labels": labels,
        "createdAt": "2026-12-01T00:00:00Z", "updatedAt": "2026-12-01T00:00:00Z"
    })
}

fn rendered_json() -> Value {
    json!({
        "promptId": "p-1", "version": "1.2.0",
        "systemPrompt": "Hello Jane.", "systemPromptTokens": 3,
        "templateMessages": [{"role": "user", "content": "I am on gold.", "tokens": 5}],
        "tokenizer": "o200k_base", "maxTokens": 100,
        "variables": {"customer_name": "Jane", "tier": "gold"}
    })
}

fn answer_json() -> Value {
    json!({
        "responseId": "inv-1", "promptId": "p-1", "version": "1.2.0", "model": "echo",
        "output": "ok", "finishReason": "stop", "latencyMs": 1.0,
        "guardrails": {"inputRedactions": {}, "outputRedactions": {}},
        "context": {"droppedExamples": 0, "droppedTurns": 0}, "fewShotTokens": 0
    })
}

fn vars(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[tokio::test]
async fn render_and_label_calls_send_the_contracts_bodies_and_read_the_answers() {
    let (client, seen) = recording(|method, path| {
        if path.ends_with("/render") {
            (200, rendered_json())
        } else if method == Method::DELETE {
            (200, prompt_json(json!({})))
        } else {
            (200, prompt_json(json!({"production": "1.2.0"})))
        }
    })
    .await;

    let request = RenderRequest {
        label: Some("production".into()),
        variables: Some(vars(json!({"customer_name": "Jane"}))),
        ..RenderRequest::default()
    };
    let rendered = client.render("p/1", &request).await.unwrap();
    assert_eq!(rendered.system_prompt, "Hello Jane.");
    assert_eq!(rendered.version, "1.2.0");
    assert_eq!(rendered.max_tokens, Some(100));
    assert_eq!(rendered.template_messages[0].tokens, 5);
    assert_eq!(
        rendered.variables["tier"],
        json!("gold"),
        "defaults come back"
    );

    let moved = client
        .set_label("p-1", "production", "1.2.0", Some("\"etag-1\""))
        .await
        .unwrap();
    assert_eq!(moved.value.labels["production"], "1.2.0");
    assert_eq!(moved.etag.as_deref(), Some("\"etag-2\""));
    let deleted = client.delete_label("p-1", "canary-eu", None).await.unwrap();
    assert!(deleted.value.labels.is_empty());

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(
        seen[0].path,
        format!("{BASE}/prompts/p%2F1/render"),
        "the id cannot change the path"
    );
    assert_eq!(
        seen[0].body,
        json!({"label": "production", "variables": {"customer_name": "Jane"}}),
        "no version key when none is given"
    );
    assert_eq!(seen[1].method, Method::PUT);
    assert_eq!(
        seen[1].path,
        format!("{BASE}/prompts/p-1/labels/production")
    );
    assert_eq!(seen[1].body, json!({"version": "1.2.0"}));
    assert_eq!(seen[1].if_match.as_deref(), Some("\"etag-1\""));
    assert_eq!(seen[2].method, Method::DELETE);
    assert_eq!(seen[2].path, format!("{BASE}/prompts/p-1/labels/canary-eu"));
    assert_eq!(seen[2].body, Value::Null);
    assert_eq!(seen[2].if_match, None);
}

#[tokio::test]
async fn drafts_and_invocations_send_templates_variables_and_labels() {
    let (client, seen) = recording(|method, path| match (method.as_str(), path) {
        ("POST", p) if p.ends_with("/invocations") => (200, answer_json()),
        ("GET", p) if p.ends_with("/model-endpoints") => (200, json!({"entities": []})),
        ("POST", _) => (201, prompt_json(json!({}))),
        _ => (200, prompt_json(json!({}))),
    })
    .await;
    let schema = json!({"type": "object", "properties": {"customer_name": {"type": "string"}}});
    client
        .create_prompt(
            &PromptDraft::new("support_agent", "builtin/echo")
                .system_prompt("Hello {{customer_name}}.")
                .template_messages(&[("user", "Hi, I am {{customer_name}}.")])
                .variables_schema(schema.clone()),
        )
        .await
        .unwrap();
    client
        .add_version(
            "p-1",
            &VersionDraft::new("1.2.0").remove_variables_schema(),
            Some("\"etag-1\""),
        )
        .await
        .unwrap();
    let invocation = Invocation::new("p-1", "Where is my order?")
        .label("staging")
        .var("customer_name", "Jane")
        .var("order_count", 3)
        .var("customer_name", "Joan")
        .metadata("channel", "web");
    let answer = client.invoke(invocation.request()).await.unwrap();
    assert_eq!(answer.version, "1.2.0");

    let seen: Vec<Recorded> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.path.ends_with("/model-endpoints"))
        .cloned()
        .collect();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(seen[0].path, format!("{BASE}/prompts"));
    assert_eq!(seen[0].body["variablesSchema"], schema);
    assert_eq!(
        seen[0].body["templateMessages"],
        json!([{"role": "user", "content": "Hi, I am {{customer_name}}."}])
    );
    assert_eq!(seen[1].method, Method::PUT);
    assert_eq!(
        seen[1].body,
        json!({"version": "1.2.0", "variablesSchema": null}),
        "removing the schema sends null; nothing else changes"
    );
    assert_eq!(seen[1].if_match.as_deref(), Some("\"etag-1\""));
    assert_eq!(
        seen[2].body,
        json!({
            "promptId": "p-1", "userInput": "Where is my order?", "label": "staging",
            "variables": {"customer_name": "Joan", "order_count": 3},
            "options": {"stream": false}, "metadata": {"channel": "web"}
        })
    );
}

#[tokio::test]
async fn the_gateways_variable_errors_are_invalid_variables_with_every_field() {
    let problem = |field: &str, message: &str| {
        json!({"status": 400, "code": "invalid.value", "message": message,
            "details": [{"errorCode": "invalid.value", "fieldName": field}]})
    };
    let (client, _) = recording(move |_, path| {
        if path.ends_with("/invocations") {
            let mut body = problem("variables.customer_name", "2 problems");
            body["contextId"] = json!("ctx-9");
            body["errors"] = json!([
                problem("variables.customer_name", "customer_name is required"),
                problem("variables.tier", "tier must be one of ‘gold’, ‘silver’"),
            ]);
            (400, body)
        } else if path.ends_with("/render") {
            (
                400,
                problem("variables.tier", "tier must be a string; got a number"),
            )
        } else {
            (
                400,
                problem("temperature", "temperature is 3; it must be in [0, 2]"),
            )
        }
    })
    .await;
    let err = client
        .invoke(Invocation::new("p-1", "Hi").request())
        .await
        .unwrap_err();
    match &err {
        Error::InvalidVariables {
            violations,
            context_id,
        } => {
            assert_eq!(
                violations,
                &vec![
                    FieldViolation {
                        field: "variables.customer_name".into(),
                        message: "customer_name is required".into()
                    },
                    FieldViolation {
                        field: "variables.tier".into(),
                        message: "tier must be one of ‘gold’, ‘silver’".into()
                    },
                ]
            );
            assert_eq!(context_id.as_deref(), Some("ctx-9"));
        }
        other => panic!("expected InvalidVariables, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("variables.customer_name: customer_name is required")
            && text.contains("variables.tier"),
        "{text}"
    );
    assert_eq!(err.context_id(), Some("ctx-9"));

    let one = client
        .render("p-1", &RenderRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&one, Error::InvalidVariables { violations, .. }
            if violations.len() == 1 && violations[0].field == "variables.tier"),
        "{one:?}"
    );
    // Another field's problem stays a plain API error.
    let other = client
        .update_prompt("p-1", &Default::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&other, Error::Api { status: 400, code, .. } if code == "invalid.value"),
        "{other:?}"
    );
}

/// A version as the gateway answers it: `{{customer_name}}` and `{{customer.tier}}`-style
/// placeholders in every kind of text.
fn version(schema: Option<Value>) -> PromptVersion {
    let mut body = json!({
        "promptId": "p-1", "version": "1.2.0", "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You help {{customer_name}} of {{company}}.",
        "temperature": 1.0, "safetyGuardrails": {},
        "fewShotExamples": [{"input": "Hi {{ greeting }}", "output": "Hello."}],
        "templateMessages": [{"role": "user", "content": "My tier is {{tier}}."}],
        "systemPromptTokens": 4, "tokenizer": "o200k_base",
        "createdAt": "2026-12-01T00:00:00Z", "createdBy": "admin"
    });
    if let Some(schema) = schema {
        body["variablesSchema"] = schema;
    }
    serde_json::from_value(body).unwrap()
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "customer_name": {"type": "string", "maxLength": 20},
            "company": {"type": "string", "default": "Acme"},
            "greeting": {"type": "string", "default": "there"},
            "tier": {"enum": ["gold", "silver"], "default": "silver"}
        },
        "required": ["customer_name"]
    })
}

#[track_caller]
fn fields(result: Result<impl std::fmt::Debug, Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidVariables {
            violations,
            context_id,
        }) => {
            assert_eq!(context_id, None, "found locally");
            violations.into_iter().map(|v| v.field).collect()
        }
        other => panic!("expected InvalidVariables, got {other:?}"),
    }
}

#[tokio::test]
async fn the_local_check_refuses_bad_variables_before_any_request() {
    let (client, seen) = recording(|_, _| (200, answer_json())).await;
    let check = VariablesCheck::for_version(&version(Some(schema())));
    assert_eq!(check.version(), "1.2.0");

    // Missing, unknown and mistyped, each named, all at once; nothing is sent.
    let bad = Invocation::new("p-1", "Hi")
        .var("custmer_name", "Jane")
        .var("tier", 3)
        .checked(&check);
    assert_eq!(
        fields(bad),
        vec![
            "variables.custmer_name",
            "variables.customer_name",
            "variables.tier"
        ]
    );
    let too_long = Invocation::new("p-1", "Hi")
        .var("customer_name", "J".repeat(21))
        .var("tier", "bronze")
        .checked(&check);
    assert_eq!(
        fields(too_long),
        vec!["variables.customer_name", "variables.tier"]
    );
    assert_eq!(
        fields(check.check(None)),
        vec!["variables.customer_name"],
        "no variables at all: the required one is missing"
    );
    match check.check(Some(&vars(json!({"customer_name": 7})))) {
        Err(Error::InvalidVariables { violations, .. }) => {
            assert!(
                violations[0].message.contains("must be a string"),
                "{violations:?}"
            );
        }
        other => panic!("expected InvalidVariables, got {other:?}"),
    }
    assert!(seen.lock().unwrap().is_empty(), "no request was made");

    // Without a schema every placeholder is a required string.
    let implied = version(None);
    assert_eq!(
        fields(check_variables(
            &implied,
            Some(&vars(json!({"customer_name": "Jane", "tier": true})))
        )),
        vec!["variables.company", "variables.greeting", "variables.tier"]
    );
    check_variables(
        &implied,
        Some(&vars(json!({"customer_name": "Jane", "company": "Acme",
            "greeting": "hi", "tier": "gold"}))),
    )
    .unwrap();

    // Good variables pass, and the invocation is pinned to the version checked.
    let good = Invocation::new("p-1", "Hi")
        .var("customer_name", "Jane")
        .checked(&check)
        .unwrap();
    assert_eq!(good.request().version.as_deref(), Some("1.2.0"));
    client.invoke(good.request()).await.unwrap();
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["version"], json!("1.2.0"));
    // With a label the gateway picks the version: no pin is added.
    let labelled = Invocation::new("p-1", "Hi")
        .label("production")
        .var("customer_name", "Jane")
        .checked(&check)
        .unwrap();
    assert_eq!(labelled.request().version, None);
    // Pinned to another version: the check would not hold.
    let elsewhere = Invocation::new("p-1", "Hi")
        .version("1.0.0")
        .var("customer_name", "Jane")
        .checked(&check);
    assert!(
        matches!(&elsewhere, Err(Error::Invalid { field, .. }) if field == "version"),
        "{elsewhere:?}"
    );
}

#[tokio::test]
async fn a_version_without_placeholders_refuses_any_variable_locally() {
    let mut plain = version(None);
    plain.system_prompt = "You are helpful.".into();
    plain.template_messages.clear();
    plain.few_shot_examples.clear();
    check_variables(&plain, None).unwrap();
    check_variables(&plain, Some(&Map::new())).unwrap();
    assert_eq!(
        fields(check_variables(&plain, Some(&vars(json!({"name": "x"}))))),
        vec!["variables.name"]
    );
}

/// The placeholders of the real-gateway test's prompt.
const SYSTEM: &str = "You are the support agent of {{company}}; the customer is {{customer_name}}.";

#[tokio::test]
async fn templates_labels_and_render_against_a_real_gateway() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let created = client
        .create_prompt(
            &PromptDraft::new("templated", "builtin/echo")
                .system_prompt(SYSTEM)
                .template_messages(&[("user", "I am on the {{tier}} plan.")])
                .variables_schema(schema())
                .max_tokens(200),
        )
        .await
        .unwrap();
    let id = created.value.id.clone();
    assert_eq!(created.value.variables_schema, Some(schema()));
    assert_eq!(created.value.template_messages.len(), 1);

    // The version lists its variables; the local check compiled from it agrees with the
    // gateway on good and bad variables alike.
    let v1 = client.get_version(&id, "1.0.0").await.unwrap();
    let required: Vec<(String, bool)> = v1
        .variables
        .iter()
        .map(|v| (v.name.clone(), v.required))
        .collect();
    assert!(
        required.contains(&("customer_name".into(), true))
            && required.contains(&("company".into(), false)),
        "{required:?}"
    );
    let check = VariablesCheck::for_version(&v1);
    for sample in [
        json!({"customer_name": "Jane"}),
        json!({"customer_name": "Jane", "tier": "gold", "company": "Initech"}),
        json!({}),
        json!({"customer_name": 42, "tier": "bronze"}),
        json!({"customer_name": "Jane", "custmer": "x"}),
        json!({"customer_name": "J".repeat(21)}),
    ] {
        let sample = vars(sample);
        let local = check.check(Some(&sample));
        let remote = client
            .render(
                &id,
                &RenderRequest {
                    version: Some("1.0.0".into()),
                    variables: Some(sample.clone()),
                    ..RenderRequest::default()
                },
            )
            .await;
        match (local, remote) {
            (Ok(()), Ok(_)) => {}
            (
                Err(Error::InvalidVariables { violations: l, .. }),
                Err(Error::InvalidVariables {
                    violations: r,
                    context_id,
                }),
            ) => {
                assert_eq!(l, r, "{sample:?}: the same fields and messages");
                assert!(
                    context_id.is_some(),
                    "the gateway's errors carry a context id"
                );
            }
            (local, remote) => panic!("{sample:?}: local {local:?}, gateway {remote:?}"),
        }
    }

    // The preview renders with the defaults applied.
    let rendered = client
        .render(
            &id,
            &RenderRequest {
                variables: Some(vars(json!({"customer_name": "Jane"}))),
                ..RenderRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rendered.system_prompt,
        "You are the support agent of Acme; the customer is Jane."
    );
    assert_eq!(
        rendered.template_messages[0].content,
        "I am on the silver plan."
    );
    assert_eq!(rendered.template_messages[0].role, "user");
    assert!(rendered.system_prompt_tokens > 0 && rendered.template_messages[0].tokens > 0);
    assert_eq!(rendered.max_tokens, Some(200));

    // A second version without a schema, a label on it, and invocations through the label.
    let v2 = client
        .add_version(
            &id,
            &VersionDraft::new("1.1.0")
                .system_prompt("Hello {{customer_name}}.")
                .template_messages(&[])
                .remove_variables_schema(),
            None,
        )
        .await
        .unwrap();
    let v2_version = client.get_version(&id, "1.1.0").await.unwrap();
    assert_eq!(v2_version.variables_schema, None, "the schema was removed");
    assert!(v2_version.template_messages.is_empty());
    let labelled = client
        .set_label(&id, "staging", "1.1.0", v2.etag.as_deref())
        .await
        .unwrap();
    assert_eq!(
        labelled.value.labels.get("staging").map(String::as_str),
        Some("1.1.0")
    );
    let stale = client
        .set_label(&id, "staging", "1.0.0", v2.etag.as_deref())
        .await
        .unwrap_err();
    assert!(
        matches!(stale, Error::PreconditionFailed { .. }),
        "{stale:?}"
    );

    let answer = client
        .invoke(
            Invocation::new(&id, "Where is my order?")
                .label("staging")
                .var("customer_name", "Jane")
                .request(),
        )
        .await
        .unwrap();
    assert_eq!(answer.version, "1.1.0");
    let missing = client
        .invoke(Invocation::new(&id, "Hi").label("staging").request())
        .await
        .unwrap_err();
    assert_eq!(
        fields_of(&missing),
        vec!["variables.customer_name"],
        "{missing:?}"
    );
    let unknown_label = client
        .invoke(
            Invocation::new(&id, "Hi")
                .label("nowhere")
                .var("customer_name", "Jane")
                .request(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unknown_label, Error::NotFound { .. }),
        "{unknown_label:?}"
    );

    // The label moves, then goes.
    let moved = client
        .set_label(&id, "staging", "1.0.0", None)
        .await
        .unwrap();
    assert_eq!(moved.value.labels["staging"], "1.0.0");
    let gone = client.delete_label(&id, "staging", None).await.unwrap();
    assert!(gone.value.labels.is_empty(), "{:?}", gone.value.labels);
    let again = client.delete_label(&id, "staging", None).await.unwrap_err();
    assert!(matches!(again, Error::NotFound { .. }), "{again:?}");
    let bad_name = client
        .set_label(&id, "Production!", "1.0.0", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&bad_name, Error::Api { status: 400, .. }),
        "{bad_name:?}"
    );
}

fn fields_of(err: &Error) -> Vec<String> {
    match err {
        Error::InvalidVariables { violations, .. } => {
            violations.iter().map(|v| v.field.clone()).collect()
        }
        _ => Vec::new(),
    }
}
