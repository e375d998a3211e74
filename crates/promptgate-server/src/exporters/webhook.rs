//! The JSON webhook: POSTs `{"metrics": [records…], "exportTimestamp": "…", "batchId": "…"}`
//! with `X-Source: promptgate`, `Idempotency-Key: <batchId>` and the configured headers.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use promptgate_store::StoredInvocation;
use serde_json::json;

use super::Target;
use crate::routes::telemetry::wire_entity;
use crate::state::{now, rfc3339};

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
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", response.status()))
        }
    }
}
