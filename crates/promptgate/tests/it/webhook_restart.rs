//! The webhook exporter across gateway restarts while its receiver is down, after a history like
//! a real deployment's: records delivered, a receiver answering 503 for a while, feedback posted
//! and summaries read. The scenario (receiver down, invocations, SIGTERM and start again, the
//! receiver back on the same port) is repeated, and every record must arrive each time. Also:
//! a redirecting receiver is a logged, counted failure, and its target never gets the headers.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::harness::{GW, Options, Server, eventually, prompt_body};

const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";

/// A webhook receiver on a fixed port that can go down and come back, like a receiver process
/// that is stopped and started again: stopping closes its listener and its connections.
struct Receiver {
    port: u16,
    /// The status it answers (200, or 503 while it is "overloaded").
    status: Arc<AtomicU16>,
    /// The record ids of every batch it accepted, in arrival order.
    accepted: Arc<Mutex<Vec<String>>>,
    /// How many requests it answered with something other than 2xx.
    refused: Arc<Mutex<u64>>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Receiver {
    /// A receiver on a free port, not yet listening.
    fn new() -> Receiver {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        Receiver {
            port,
            status: Arc::new(AtomicU16::new(200)),
            accepted: Arc::default(),
            refused: Arc::default(),
            running: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Listens on its port (again).
    async fn start(&mut self) {
        assert!(self.running.is_none(), "the receiver runs already");
        let status = self.status.clone();
        let accepted = self.accepted.clone();
        let refused = self.refused.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                    let status = status.clone();
                    let accepted = accepted.clone();
                    let refused = refused.clone();
                    async move {
                        let code = status.load(Ordering::SeqCst);
                        if code != 200 {
                            *refused.lock().unwrap() += 1;
                            return axum::http::StatusCode::from_u16(code).unwrap();
                        }
                        let key = headers.get("idempotency-key").unwrap();
                        assert_eq!(body.0["batchId"], key.to_str().unwrap());
                        accepted.lock().unwrap().extend(
                            body.0["metrics"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|m| m["id"].as_str().unwrap().to_owned()),
                        );
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        // The port was just freed by the previous run (or the probe); a few tries cover a
        // socket the kernel has not let go of yet.
        let mut listener = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("the receiver's port can be bound again");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.running = Some((stop, task));
    }

    /// Stops listening and closes every connection, as a receiver process that exits does.
    async fn stop(&mut self) {
        let (stop, task) = self.running.take().expect("the receiver runs");
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the receiver stops within 30 s")
            .unwrap();
    }

    /// Every record id it accepted.
    fn ids(&self) -> BTreeSet<String> {
        self.accepted.lock().unwrap().iter().cloned().collect()
    }
}

/// Invokes the prompt `n` times (alternating versions); returns the responseIds.
async fn invoke(server: &Server, token: &str, prompt_id: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let version = if i % 2 == 0 { "1.0.0" } else { "1.1.0" };
        let body = json!({"promptId": prompt_id, "userInput": format!("hello {i}"),
                          "version": version, "sessionId": format!("s-{i}")});
        let answer = server
            .post(&format!("{GW}/invocations"), Some(token), &body)
            .await
            .ok(200);
        ids.push(answer["responseId"].as_str().unwrap().to_owned());
    }
    ids
}

/// Waits (bounded) until the receiver has accepted every one of `ids`.
async fn all_arrive(receiver: &Receiver, ids: &[String], limit: Duration) -> bool {
    eventually(limit, || async {
        let got = receiver.ids();
        ids.iter().all(|id| got.contains(id))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivery_resumes_after_restart_with_receiver_back() {
    let mut receiver = Receiver::new();
    receiver.start().await;
    let config = format!(
        "[exporters.webhook]\nurl = \"{}\"\nbatch_size = 4\nflush_interval_ms = 100\n",
        receiver.url()
    );
    let mut server = Server::start_with(Options::with_config(&config));
    let mut token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("webhook_restart"))
        .await;
    let prompt_id = created["id"].as_str().unwrap().to_owned();
    server
        .put(
            &format!("{GW}/prompts/{prompt_id}"),
            &token,
            &json!({"version": "1.1.0", "systemPrompt": "Be brief."}),
            None,
        )
        .await
        .ok(200);

    // The history: about a hundred records delivered, ...
    let mut all = invoke(&server, &token, &prompt_id, 60).await;
    assert!(
        all_arrive(&receiver, &all, Duration::from_secs(60)).await,
        "the first records arrive; log:\n{}",
        server.log()
    );
    // ... a receiver answering 503 for a while (the exporter backs off), then recovering, ...
    receiver.status.store(503, Ordering::SeqCst);
    all.extend(invoke(&server, &token, &prompt_id, 20).await);
    assert!(
        eventually(Duration::from_secs(30), || async {
            *receiver.refused.lock().unwrap() >= 3
        })
        .await,
        "the receiver answered 503 several times"
    );
    receiver.status.store(200, Ordering::SeqCst);
    all.extend(invoke(&server, &token, &prompt_id, 20).await);
    assert!(
        all_arrive(&receiver, &all, Duration::from_secs(60)).await,
        "the records refused with 503 arrive once the receiver recovers; log:\n{}",
        server.log()
    );
    // ... feedback posted and summaries read.
    for id in all.iter().take(10) {
        server
            .post(
                &format!("{GW}/invocations/{id}/feedback"),
                Some(&token),
                &json!({"score": 0.75, "comment": "fine"}),
            )
            .await
            .ok(201);
    }
    for _ in 0..3 {
        server
            .get_query(
                SUMMARY,
                &token,
                &[("promptId", &prompt_id), ("groupBy", "version")],
            )
            .await
            .ok(200);
    }

    // The scenario, again and again: the receiver down, invocations, a graceful restart, the
    // receiver back on the same port; every record must arrive.
    for round in 0..6u64 {
        receiver.stop().await;
        let ids = invoke(&server, &token, &prompt_id, 10).await;
        server = server.restart();
        token = server.admin_token().await;
        // At once, or after the restarted gateway has failed a few times and backed off.
        tokio::time::sleep(Duration::from_millis(700 * (round % 3))).await;
        receiver.start().await;
        assert!(
            all_arrive(&receiver, &ids, Duration::from_secs(45)).await,
            "round {round}: the 10 records made while the receiver was down arrive once it is \
             back after the gateway's restart; got {} of them; log:\n{}",
            ids.iter().filter(|id| receiver.ids().contains(*id)).count(),
            server.log()
        );
    }
}

/// The value of `promptgate_exporter_failures_total{exporter="webhook"}` in `/metrics`.
async fn webhook_failures(server: &Server, token: &str) -> f64 {
    let text = server
        .send(
            server
                .request(reqwest::Method::GET, "/metrics")
                .bearer_auth(token),
        )
        .await
        .text;
    text.lines()
        .find(|l| l.starts_with("promptgate_exporter_failures_total{exporter=\"webhook\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn webhook_redirect_is_a_logged_failure_and_the_secret_header_stays_home() {
    // Where the redirect points: it must never see a request, least of all the secret header.
    let seen: Arc<Mutex<Vec<axum::http::HeaderMap>>> = Arc::default();
    let sink = seen.clone();
    let elsewhere = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push(headers);
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, elsewhere).await });
    let location = format!("http://{elsewhere_addr}/collect");
    let redirecting = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirecting).await });

    let config = format!(
        "[exporters.webhook]\nurl = \"http://{hook}/hook\"\nheaders = {{ \"X-Api-Key\" = \"hook-secret-5678\" }}\nflush_interval_ms = 50\n"
    );
    let server = Server::start_with(Options::with_config(&config));
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("webhook_redirect"))
        .await;
    let prompt_id = created["id"].as_str().unwrap().to_owned();
    server
        .put(
            &format!("{GW}/prompts/{prompt_id}"),
            &token,
            &json!({"version": "1.1.0", "systemPrompt": "Be brief."}),
            None,
        )
        .await
        .ok(200);
    invoke(&server, &token, &prompt_id, 2).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            webhook_failures(&server, &token).await >= 2.0
                && server.log().contains("307 Temporary Redirect")
        })
        .await,
        "the redirect is counted as a failed delivery and logged with its status; log:\n{}",
        server.log()
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect was followed: {:?}",
        seen.lock().unwrap()
    );
    assert!(
        !server.log().contains("hook-secret-5678"),
        "the header's secret is not logged"
    );
}
