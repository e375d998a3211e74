//! A gateway on a PostgreSQL server of the test's own, which the test stops and starts again:
//! cached prompts keep serving with verified tokens, `/readyz` and writes answer 503 while it is
//! down, the gateway recovers without a restart, the invocation's telemetry waits in memory
//! and is stored once the database is back, and no acknowledged write is lost.

use std::time::Duration;

use promptgate_audit::ChainVerifier;
use promptgate_server::config::ConfigFile;
use promptgate_server::{Gateway, ServeOptions};
use promptgate_store::AuditFilter;
use promptgate_store::testing::PrivateCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{BASE, create_body};

const ADMIN_ID: &str = "outage-admin";
const ADMIN_SECRET: &str = "outage-admin-secret-0123456789";

struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.client.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.client.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn invoke(&self, prompt_id: &str) -> String {
        let (status, body) = self
            .post(
                &format!("{BASE}/invocations"),
                &json!({"promptId": prompt_id, "userInput": "Hello"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["responseId"].as_str().unwrap().to_owned()
    }
}

fn assert_unavailable(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(body["code"], "service.unavailable", "{what}: {body}");
    assert_eq!(body["status"], 503, "{what}: {body}");
}

/// Polls `check` until it holds, failing after a generous deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn in_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_again_loses_no_acknowledged_write() {
    let cluster = in_blocking(PrivateCluster::start).await;
    // Short pool timeouts so that answers during the outage come quickly.
    let config = ConfigFile::parse(
        "[server]\ndatabase_acquire_timeout_ms = 1000\ndatabase_statement_timeout_ms = 5000\n",
    )
    .unwrap();
    let gateway = Gateway::bind(ServeOptions {
        listen: "127.0.0.1:0".to_owned(),
        database_url: cluster.url(),
        config,
        admin_credentials: Some((ADMIN_ID.to_owned(), ADMIN_SECRET.to_owned())),
    })
    .await
    .unwrap();
    let base = format!("http://{}", gateway.local_addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/oauth/token"))
        .basic_auth(ADMIN_ID, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http = Http {
        client,
        base,
        token: token["access_token"].as_str().unwrap().to_owned(),
    };

    // Acknowledged writes before the outage: a prompt, a new version of it, a client.
    let (status, created) = http
        .post(&format!("{BASE}/prompts"), &create_body("kept_prompt"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let prompt_id = created["id"].as_str().unwrap().to_owned();
    let (status, body) = http
        .put(
            &format!("{BASE}/prompts/{prompt_id}"),
            &json!({"systemPrompt": "You are a terse support agent.", "version": "1.1.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = http
        .post(
            "/api/v2/oauth/clients",
            &json!({"name": "kept client", "scopes": ["ai:gateway:write"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let kept_client = body["clientId"].as_str().unwrap().to_owned();
    // The first invocation loads the prompt into the gateway's cache.
    let before = http.invoke(&prompt_id).await;
    let (status, _) = http.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);

    let cluster = in_blocking(move || {
        cluster.stop();
        cluster
    })
    .await;

    // The cached prompt serves, with the token verified before (both in memory).
    let during = http.invoke(&prompt_id).await;
    let (status, body) = http.get("/readyz").await;
    assert_unavailable(status, &body, "readyz");
    let (status, body) = http
        .post(&format!("{BASE}/prompts"), &create_body("refused_prompt"))
        .await;
    assert_unavailable(status, &body, "a prompt write");
    let (status, body) = http
        .put(
            &format!("{BASE}/prompts/{prompt_id}"),
            &json!({"systemPrompt": "Never stored.", "version": "2.0.0"}),
        )
        .await;
    assert_unavailable(status, &body, "a prompt update");
    let (status, body) = http.get(&format!("{BASE}/telemetry")).await;
    assert_unavailable(status, &body, "a telemetry read");

    let cluster = in_blocking(move || {
        cluster.restart();
        cluster
    })
    .await;

    // Back without a restart of the gateway.
    eventually("/readyz answers 200 again", || async {
        http.get("/readyz").await.0 == StatusCode::OK
    })
    .await;
    // The record of the invocation served during the outage waited in memory and is stored.
    eventually("the outage's invocation is in the telemetry", || async {
        let (status, body) = http
            .get(&format!("{BASE}/telemetry?promptId={prompt_id}"))
            .await;
        status == StatusCode::OK
            && body["entities"]
                .as_array()
                .is_some_and(|e| e.iter().any(|r| r["id"] == during.as_str()))
    })
    .await;
    let (_, page) = http
        .get(&format!("{BASE}/telemetry?promptId={prompt_id}"))
        .await;
    let ids: Vec<&str> = page["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [before.as_str(), during.as_str()], "each record once");

    // Every acknowledged write is there; nothing refused during the outage is.
    let (status, versions) = http
        .get(&format!("{BASE}/prompts/{prompt_id}/versions"))
        .await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    let mut labels: Vec<&str> = versions["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    labels.sort_unstable();
    assert_eq!(labels, ["1.0.0", "1.1.0"]);
    let (_, refused) = http
        .get(&format!("{BASE}/prompts?name=refused_prompt"))
        .await;
    assert_eq!(refused["entities"], json!([]), "{refused}");
    let (_, clients) = http.get("/api/v2/oauth/clients").await;
    assert!(
        clients["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["clientId"] == kept_client.as_str()),
        "{clients}"
    );
    // And writes work again.
    let (status, body) = http
        .post(&format!("{BASE}/prompts"), &create_body("after_outage"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the gateway shuts down")
        .unwrap()
        .unwrap();

    // The audit log is one intact chain over everything acknowledged.
    let store = promptgate_store::open(&cluster.url()).await.unwrap();
    let entries = store
        .list_audit(&AuditFilter::default(), None, 1_000)
        .await
        .unwrap();
    let mut verifier = ChainVerifier::new();
    for entry in &entries {
        verifier.push(&entry.to_value());
    }
    let report = verifier.report();
    assert!(report.is_valid(), "{:?}", report.first_break);
    let actions: Vec<String> = entries
        .iter()
        .map(|e| e.to_value()["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !actions.is_empty() && entries.last().unwrap().sequence == entries.len() as u64,
        "{actions:?}"
    );
    store.close().await;
    in_blocking(move || drop(cluster)).await;
}

/// Issue 17, item 14: `/readyz` took the pool's acquire timeout (5 s) to answer 503 while
/// PostgreSQL was down, past Kubernetes' 1 s probe timeout, and every write waited as long.
/// Here with the default pool settings, every request has a 1 s client timeout: it must come
/// back as a 503 within it, not time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_and_writes_answer_503_within_a_second_while_postgres_is_down() {
    const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
    let cluster = in_blocking(PrivateCluster::start).await;
    let gateway = Gateway::bind(ServeOptions {
        listen: "127.0.0.1:0".to_owned(),
        database_url: cluster.url(),
        config: ConfigFile::parse("").unwrap(),
        admin_credentials: Some((ADMIN_ID.to_owned(), ADMIN_SECRET.to_owned())),
    })
    .await
    .unwrap();
    let base = format!("http://{}", gateway.local_addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/oauth/token"))
        .basic_auth(ADMIN_ID, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    // One request under the probe's timeout: its status, or the failure to answer in time.
    let within_a_second = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
            .timeout(PROBE_TIMEOUT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    Ok((status, body))
                }
                Err(err) => Err(format!("no answer within {PROBE_TIMEOUT:?}: {err}")),
            }
        }
    };
    let (status, created) = within_a_second(
        reqwest::Method::POST,
        format!("{BASE}/prompts"),
        Some(create_body("before_outage")),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let prompt_id = created["id"].as_str().unwrap().to_owned();

    let cluster = in_blocking(move || {
        cluster.stop();
        cluster
    })
    .await;

    let (status, body) = within_a_second(reqwest::Method::GET, "/readyz".to_owned(), None)
        .await
        .unwrap();
    assert_unavailable(status, &body, "readyz");
    // The outage is known now: writes fail at once rather than after the acquire timeout.
    let writes = [
        (
            reqwest::Method::POST,
            format!("{BASE}/prompts"),
            create_body("during_outage"),
        ),
        (
            reqwest::Method::PUT,
            format!("{BASE}/prompts/{prompt_id}"),
            json!({"systemPrompt": "Never stored.", "version": "2.0.0"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v2/oauth/clients".to_owned(),
            json!({"name": "never", "scopes": ["ai:gateway:write"]}),
        ),
    ];
    for (method, path, body) in writes {
        let what = format!("{method} {path}");
        let (status, body) = within_a_second(method, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_unavailable(status, &body, &what);
    }
    // Readiness stays bounded while it lasts.
    for _ in 0..3 {
        let (status, body) = within_a_second(reqwest::Method::GET, "/readyz".to_owned(), None)
            .await
            .unwrap();
        assert_unavailable(status, &body, "readyz again");
    }

    let cluster = in_blocking(move || {
        cluster.restart();
        cluster
    })
    .await;
    eventually("/readyz answers 200 again", || async {
        matches!(
            within_a_second(reqwest::Method::GET, "/readyz".to_owned(), None).await,
            Ok((StatusCode::OK, _))
        )
    })
    .await;
    // Writes go through at once once readiness is back.
    let (status, body) = within_a_second(
        reqwest::Method::POST,
        format!("{BASE}/prompts"),
        Some(create_body("after_outage")),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the gateway shuts down")
        .unwrap()
        .unwrap();
    in_blocking(move || drop(cluster)).await;
}
