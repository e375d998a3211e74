//! The JSON webhook: POSTs `{"metrics": [records…], "exportTimestamp": "…", "batchId": "…"}`
//! with `X-Source: promptgate`, `Idempotency-Key: <batchId>` and the configured headers.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use promptgate_store::StoredInvocation;
use serde_json::json;

use super::Target;
use crate::clock::{now, rfc3339};
use crate::wire::telemetry::wire_entity;

/// The webhook target.
pub struct Webhook {
    http: reqwest::Client,
    url: String,
    headers: BTreeMap<String, String>,
}

impl Webhook {
    /// A webhook posting to `url` with extra `headers`.
    pub fn new(url: &str, headers: BTreeMap<String, String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // The configured headers often carry a secret (a bearer token, an API key), and
            // reqwest would send them on to wherever a redirect points, another host included:
            // a 3xx is a failed delivery instead, logged with its status.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the webhook's HTTP client: {e}"))?;
        Ok(Webhook {
            http,
            url: url.to_owned(),
            headers,
        })
    }
}

#[async_trait]
impl Target for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn deliver(&self, batch_id: &str, records: &[StoredInvocation]) -> Result<(), String> {
        let payload = json!({
            "metrics": records.iter().map(wire_entity).collect::<Vec<_>>(),
            "exportTimestamp": rfc3339(now()),
            "batchId": batch_id,
        });
        let mut request = self
            .http
            .post(&self.url)
            .header("X-Source", "promptgate")
            .header("Idempotency-Key", batch_id)
            .json(&payload);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the webhook: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(format!(
                "the webhook answered {status}, a redirect, which is not followed (it would carry the configured headers elsewhere); configure the final URL"
            ))
        } else {
            Err(format!("the webhook answered {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode, header};

    use super::*;

    /// Serves `app` on 127.0.0.1:0; returns its base URL.
    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn webhook_redirect_is_a_failure_naming_the_status_and_never_followed() {
        // Where the redirect points: it must never be asked anything, least of all with the
        // configured secret header.
        let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
        let sink = seen.clone();
        let elsewhere = serve(axum::Router::new().fallback(move |headers: HeaderMap| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(headers);
                StatusCode::OK
            }
        }))
        .await;
        let target = format!("{elsewhere}/stolen");
        for status in [
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::FOUND,
            StatusCode::TEMPORARY_REDIRECT,
            StatusCode::PERMANENT_REDIRECT,
        ] {
            let location = target.clone();
            let redirecting = serve(axum::Router::new().fallback(move || {
                let location = location.clone();
                async move { (status, [(header::LOCATION, location)]) }
            }))
            .await;
            let headers = BTreeMap::from([("X-Api-Key".to_owned(), "hook-secret-1234".to_owned())]);
            let webhook = Webhook::new(&format!("{redirecting}/hook"), headers).expect("client");
            let err = webhook
                .deliver("webhook-1-1", &[])
                .await
                .expect_err("a redirect is not a delivery");
            assert!(err.contains(status.as_str()), "{status}: {err}");
            assert!(err.contains("redirect"), "{err}");
            assert!(!err.contains("hook-secret"), "{err}");
        }
        assert!(
            seen.lock().expect("lock").is_empty(),
            "the redirect's target was asked: {:?}",
            seen.lock().expect("lock")
        );
    }
}
