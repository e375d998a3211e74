//! Telemetry: records page by page, per-version summaries and comparisons, feedback, and the
//! tutorial's export (every record, POSTed as one payload to a URL).

use futures_util::stream::BoxStream;
use promptgate_api::{
    BASE_PATH, ExportPayload, FeedbackRequest, FeedbackResponse, TelemetryEntity, TelemetrySummary,
};
use reqwest::Method;

use crate::client::{Call, Client};
use crate::error::Error;

/// Filters for telemetry listings and summaries; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct TelemetryQuery {
    /// Only this prompt.
    pub prompt_id: Option<String>,
    /// Only this version.
    pub version: Option<String>,
    /// Received at or after (RFC 3339).
    pub start_time: Option<String>,
    /// Received before (RFC 3339).
    pub end_time: Option<String>,
    /// `SUCCESS`, `ERROR` or `BLOCKED`.
    pub status: Option<String>,
    /// Only the invocations that named this label (such as `production`).
    pub label: Option<String>,
    /// Entities per request (1–500).
    pub page_size: Option<u32>,
}

impl TelemetryQuery {
    fn params(&self) -> Vec<(String, String)> {
        [
            ("promptId", &self.prompt_id),
            ("version", &self.version),
            ("startTime", &self.start_time),
            ("endTime", &self.end_time),
            ("status", &self.status),
            ("label", &self.label),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .collect()
    }
}

/// A feedback score: a number in [0, 1] or a thumbs up/down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Score {
    /// 0.0–1.0.
    Number(f64),
    /// true = 1, false = 0.
    Bool(bool),
}

impl Client {
    /// Every record matching `query`, oldest first, fetched page by page as the stream is read.
    /// The cursor is stable: records arriving meanwhile are neither skipped nor repeated.
    pub fn list_telemetry(
        &self,
        query: &TelemetryQuery,
    ) -> BoxStream<'_, Result<TelemetryEntity, Error>> {
        self.paginate(
            format!("{BASE_PATH}/telemetry"),
            query.params(),
            query.page_size,
        )
    }

    /// Per-version counts, error rates, latency percentiles, token sums and feedback; with
    /// `compare_to`, each other version's difference from it with a 95% confidence interval.
    pub async fn telemetry_summary(
        &self,
        query: &TelemetryQuery,
        compare_to: Option<&str>,
    ) -> Result<TelemetrySummary, Error> {
        let mut call = Call::get(format!("{BASE_PATH}/telemetry/summary"));
        call.query = query.params();
        call.query
            .push(("groupBy".to_owned(), "version".to_owned()));
        if let Some(reference) = compare_to {
            call.query
                .push(("compareTo".to_owned(), reference.to_owned()));
        }
        self.send(call).await?.json()
    }

    /// Records feedback on an invocation (a later call replaces it).
    pub async fn feedback(
        &self,
        response_id: &str,
        score: Score,
        comment: Option<&str>,
    ) -> Result<FeedbackResponse, Error> {
        let request = FeedbackRequest {
            score: Some(match score {
                Score::Number(x) => serde_json::json!(x),
                Score::Bool(b) => serde_json::json!(b),
            }),
            comment: comment.map(str::to_owned),
        };
        let body = serde_json::to_value(&request)
            .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))?;
        let path = format!(
            "{BASE_PATH}/invocations/{}/feedback",
            crate::prompts::segment(response_id)
        );
        self.send(Call::with(Method::POST, path, Some(body)))
            .await?
            .json()
    }

    /// POSTs `payload` to `url` with `X-Source: promptgate` (the tutorial's export); the
    /// target is not the gateway, so no token is sent.
    pub async fn post_export(&self, url: &str, payload: &ExportPayload) -> Result<(), Error> {
        let response = self
            .http()
            .post(url)
            .header("X-Source", "promptgate")
            .json(payload)
            .send()
            .await
            // A webhook URL can carry its secret in its path or query: keep it out of the error.
            .map_err(|e| Error::Transport(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::ExportRefused {
                url: crate::client::origin_only(url),
                status: status.as_u16(),
            })
        }
    }
}
