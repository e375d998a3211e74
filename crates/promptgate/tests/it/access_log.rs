//! Issue 17, items 15 and 9: the access log (one info line per request, naming the request id
//! that answers carry as `contextId`) and the warning about a public `/metrics`.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// The access-log lines of `log` (the `promptgate::access` target).
fn access_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("promptgate::access"))
        .collect()
}

/// Regression test for item 15: a 4xx's `contextId` was not in the server log (4xx were logged
/// at debug only).
#[tokio::test]
async fn access_log_names_the_context_id_of_a_4xx() {
    let server = Server::start();
    let token = server.admin_token().await;
    let resp = server
        .get(&prompt_path("no-such-prompt"), Some(&token))
        .await;
    let body: Value = resp.error(404, "not.found");
    let context_id = str_field(&body, "contextId");
    assert!(!context_id.is_empty(), "{resp}");
    let found = eventually(Duration::from_secs(5), || {
        let log = server.log();
        let context_id = context_id.clone();
        async move {
            access_lines(&log)
                .iter()
                .any(|l| l.contains(&context_id) && l.contains("status=404"))
        }
    })
    .await;
    let log = server.log();
    assert!(found, "no access line with {context_id} and 404:\n{log}");
    let line = access_lines(&log)
        .into_iter()
        .find(|l| l.contains(&context_id))
        .unwrap_or_default()
        .to_owned();
    // Level, method, the matched route template (not the caller's path), the client and a
    // duration.
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("method=GET"), "{line}");
    assert!(
        line.contains("route=/api/v2/ai/llm/gateway/prompts/{id}"),
        "{line}"
    );
    assert!(line.contains(&server.admin_id), "no client id: {line}");
    assert!(line.contains("duration_ms="), "{line}");

    // An unauthenticated 401 and an unknown route are logged too, with `-` for the client.
    let resp = server.get(&prompt_path("x"), None).await;
    let unauthorised = str_field(&resp.json(), "contextId");
    let resp = server.get("/no/such/route", None).await;
    let unknown = str_field(&resp.json(), "contextId");
    let found = eventually(Duration::from_secs(5), || {
        let log = server.log();
        let (a, b) = (unauthorised.clone(), unknown.clone());
        async move {
            let lines = access_lines(&log);
            lines.iter().any(|l| {
                l.contains(&a) && l.contains("status=401") && l.contains("client_id=\"-\"")
            }) && lines
                .iter()
                .any(|l| l.contains(&b) && l.contains("status=404") && l.contains("/no/such/route"))
        }
    })
    .await;
    assert!(found, "401 or unknown route not logged:\n{}", server.log());
}

/// A caller's request id is its own text: it is logged escaped, so it cannot start a line.
#[tokio::test]
async fn access_log_escapes_what_the_caller_chose() {
    let server = Server::start();
    let resp = server
        .send(
            server
                .request(reqwest::Method::GET, "/healthz")
                .header("x-request-id", "abc\" FORGED=1"),
        )
        .await;
    assert_eq!(resp.status, 200, "{resp}");
    let found = eventually(Duration::from_secs(5), || {
        let log = server.log();
        async move {
            access_lines(&log)
                .iter()
                .any(|l| l.contains(r#"request_id="abc\" FORGED=1""#))
        }
    })
    .await;
    assert!(found, "request id not logged escaped:\n{}", server.log());
}

/// `[server] access_log = false` turns the lines off.
#[tokio::test]
async fn access_log_can_be_turned_off() {
    let server = Server::start_with(Options::with_config("[server]\naccess_log = false\n"));
    let token = server.admin_token().await;
    let resp = server
        .get(&prompt_path("no-such-prompt"), Some(&token))
        .await;
    resp.error(404, "not.found");
    // The server's own lines keep arriving; give the log a moment, then look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    assert!(
        access_lines(&log).is_empty(),
        "access lines despite access_log = false:\n{log}"
    );
    assert!(
        log.contains("listening"),
        "the log is not being captured:\n{log}"
    );
}

const METRICS_WARNING: &str = "/metrics is public on an address beyond loopback";

/// Regression test for item 9: `/metrics` is public by default and names prompts, versions,
/// models and volumes; `serve` now warns when it listens beyond loopback without a token.
#[tokio::test]
async fn serve_warns_when_metrics_are_public_beyond_loopback() {
    let server = Server::start_with(Options {
        settings_from_env: true,
        env: vec![("PROMPTGATE_LISTEN".to_owned(), "0.0.0.0:0".to_owned())],
        ..Options::default()
    });
    let warned = eventually(Duration::from_secs(5), || {
        let log = server.log();
        async move { log.contains(METRICS_WARNING) }
    })
    .await;
    assert!(warned, "no warning:\n{}", server.log());

    // Required token, or loopback only: no warning.
    let guarded = Server::start_with(Options {
        settings_from_env: true,
        env: vec![("PROMPTGATE_LISTEN".to_owned(), "0.0.0.0:0".to_owned())],
        config: Some("[exporters.prometheus]\nrequire_token = true\n".to_owned()),
        ..Options::default()
    });
    let local = Server::start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (what, s) in [("require_token", &guarded), ("loopback", &local)] {
        let log = s.log();
        assert!(
            log.contains("listening"),
            "{what}: log not captured:\n{log}"
        );
        assert!(
            !log.contains(METRICS_WARNING),
            "{what}: warned anyway:\n{log}"
        );
    }
}
