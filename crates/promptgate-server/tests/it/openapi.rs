//! `/openapi.json` documents exactly the routes the router serves, with their methods.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::harness::{TestApp, request, send};

/// Every route of the router and its methods, written out by hand so that a route added to the
/// router without its annotation (or the reverse) fails here.
fn expected_routes() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let routes: [(&str, &[&str]); 30] = [
        ("/oauth/token", &["post"]),
        ("/api/v2/ai/llm/gateway/prompts", &["get", "post"]),
        (
            "/api/v2/ai/llm/gateway/prompts/{id}",
            &["get", "put", "delete"],
        ),
        ("/api/v2/ai/llm/gateway/prompts/{id}/versions", &["get"]),
        (
            "/api/v2/ai/llm/gateway/prompts/{id}/versions/{version}",
            &["get"],
        ),
        (
            "/api/v2/ai/llm/gateway/prompts/{id}/labels/{label}",
            &["delete", "put"],
        ),
        ("/api/v2/ai/llm/gateway/prompts/{id}/render", &["post"]),
        ("/api/v2/ai/llm/gateway/invocations", &["post"]),
        (
            "/api/v2/ai/llm/gateway/invocations/{responseId}/feedback",
            &["post"],
        ),
        ("/api/v2/ai/llm/gateway/telemetry", &["get"]),
        ("/api/v2/ai/llm/gateway/telemetry/summary", &["get"]),
        ("/api/v2/ai/llm/gateway/model-endpoints", &["get"]),
        ("/api/v2/ai/llm/gateway/audit-logs", &["get", "post"]),
        ("/api/v2/ai/llm/gateway/audit-logs/verify", &["get"]),
        ("/api/v2/ai/llm/gateway/audit-logs/checkpoint", &["get"]),
        ("/api/v2/ai/llm/gateway/audit-logs/public-key", &["get"]),
        ("/api/v2/ai/llm/gateway/audit-logs/consistency", &["get"]),
        ("/api/v2/ai/llm/gateway/audit-logs/{sequence}", &["get"]),
        (
            "/api/v2/ai/llm/gateway/audit-logs/{sequence}/proof",
            &["get"],
        ),
        ("/api/v2/oauth/clients", &["get", "post"]),
        ("/api/v2/oauth/clients/{id}/disable", &["post"]),
        ("/api/v2/oauth/clients/{id}/rotate-secret", &["post"]),
        ("/api/v2/oauth/clients/{id}/api-keys", &["get", "post"]),
        ("/api/v2/oauth/clients/{id}/api-keys/{keyId}", &["delete"]),
        ("/api/v2/oauth/api-keys", &["get"]),
        ("/api/v2/oauth/api-keys/{keyId}", &["delete"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/openapi.json", &["get"]),
        ("/metrics", &["get"]),
    ];
    routes
        .into_iter()
        .map(|(path, methods)| (path, methods.iter().copied().collect()))
        .collect()
}

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let answer = send(&app.router, request("GET", "/openapi.json", None)).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        answer.header("content-type")
    );
    answer.json()
}

#[tokio::test]
async fn the_document_is_openapi_3() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi version {version:?}");
    assert_eq!(doc["info"]["title"], "promptgate");
    assert!(doc["info"]["version"].is_string());
    // It deserialises as an OpenAPI document.
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(parsed.paths.paths.len(), expected_routes().len());
    // Every schema reference resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    assert!(schemas.contains_key("ErrorBody"));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.extend(v.as_str().map(str::to_owned));
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_lists_every_route_with_its_methods() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeMap<&str, BTreeSet<&str>> = paths
        .iter()
        .map(|(path, item)| {
            let methods = HTTP_METHODS
                .into_iter()
                .filter(|m| item.get(*m).is_some())
                .collect();
            (path.as_str(), methods)
        })
        .collect();
    assert_eq!(documented, expected_routes());
    // Each operation documents at least one response, and the token-protected ones say so.
    for (path, item) in paths {
        for method in HTTP_METHODS {
            let Some(op) = item.get(method) else { continue };
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            let open = path == "/oauth/token"
                || path == "/healthz"
                || path == "/readyz"
                || path == "/openapi.json"
                // /metrics is open unless configured otherwise (documented on the operation).
                || path == "/metrics";
            assert_eq!(
                op.get("security").is_some(),
                !open,
                "{method} {path}: security requirement"
            );
        }
    }
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_methods() {
    let app = TestApp::new().await;
    let probe = ["get", "put", "post", "delete", "patch"];
    for (path, methods) in expected_routes() {
        let uri = path
            .replace("{id}", "0190a1b2-0000-7000-8000-000000000001")
            .replace("{version}", "1.0.0");
        for method in probe {
            let answer = send(
                &app.router,
                request(&method.to_ascii_uppercase(), &uri, None),
            )
            .await;
            let status = answer.status.as_u16();
            if methods.contains(method) {
                assert!(
                    status != 404 && status != 405,
                    "{method} {uri} is documented but answers {status}: {}",
                    answer.text()
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {uri} is not documented but answers {status}"
                );
            }
        }
    }
}
