//! OTLP over HTTP: each batch becomes one `ExportTraceServiceRequest` POSTed as protobuf to
//! `{endpoint}/v1/traces` and one `ExportMetricsServiceRequest` to `{endpoint}/v1/metrics`,
//! named by the OpenTelemetry GenAI semantic conventions so that dashboards built for any GenAI
//! instrumentation work on promptgate's records. `docs/otlp.md` lists every name.
//!
//! A batch is delivered again after a failure (the outbox is at least once), so everything a
//! record turns into is derived from the record alone: span ids come from the invocation id and
//! a re-delivered span is the same span. Metric points of a re-delivered batch are counted again
//! by the backend; that is the price of at-least-once delivery.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::StoredInvocation;
use prost::Message;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Target;

/// The collector's default OTLP/HTTP endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

/// The advised bucket boundaries of `gen_ai.client.operation.duration`, in seconds.
pub const DURATION_BOUNDARIES: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// The advised bucket boundaries of `gen_ai.client.token.usage`, in tokens.
pub const TOKEN_BOUNDARIES: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The OTLP target.
pub struct Otlp {
    http: reqwest::Client,
    traces_url: String,
    metrics_url: String,
    /// The end of the last delivered metrics interval, so that successive delta points of a
    /// stream are contiguous rather than overlapping (a collector's `deltatocumulative`
    /// processor drops points that start before the previous one ended). Zero until the first
    /// delivery; then each batch's interval starts where the last one ended.
    metrics_watermark: Mutex<u64>,
}

impl Otlp {
    /// An exporter posting to `endpoint` (`http://host:4318`, without `/v1/…`) with extra
    /// `headers` (an API key for a hosted collector, say). `include_content` is accepted for
    /// the configuration's sake: promptgate does not store message content, so there is none
    /// to include yet.
    pub fn new(
        endpoint: &str,
        headers: BTreeMap<String, String>,
        include_content: bool,
    ) -> Result<Self, String> {
        // Records carry no prompt or completion text, so the switch changes nothing today.
        let _ = include_content;
        let base = endpoint.trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|e| format!("the OTLP endpoint {base:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("the OTLP endpoint {base:?} must be http or https"));
        }
        let mut default_headers = HeaderMap::new();
        for (name, value) in &headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("the OTLP header name {name:?} is not valid"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of the OTLP header {name} is not valid"))?;
            default_headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .default_headers(default_headers)
            // The configured headers (a hosted collector's API key) would be sent on to
            // wherever a redirect points, another host included: a 3xx is a failed delivery
            // instead, logged with its status.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the OTLP exporter's HTTP client: {e}"))?;
        Ok(Otlp {
            http,
            traces_url: format!("{base}/v1/traces"),
            metrics_url: format!("{base}/v1/metrics"),
            metrics_watermark: Mutex::new(0),
        })
    }

    /// POSTs one protobuf body; any answer but 2xx is an error so that the outbox retries.
    /// Errors name the signal's path (`/v1/traces`), not the endpoint, which may hold
    /// credentials.
    async fn post(&self, url: &str, batch_id: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let path = if url.ends_with("/v1/traces") {
            "/v1/traces"
        } else {
            "/v1/metrics"
        };
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header("Idempotency-Key", batch_id)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach the OTLP collector: {}", e.without_url()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "the OTLP collector answered {status} on {path}, a redirect, which is not followed (it would carry the configured headers elsewhere); configure the final endpoint"
            ));
        }
        if !status.is_success() {
            return Err(format!("the OTLP collector answered {status} on {path}"));
        }
        let body = response.bytes().await.map_err(|e| {
            format!(
                "cannot read the OTLP collector's answer: {}",
                e.without_url()
            )
        })?;
        Ok(body.to_vec())
    }
}

#[async_trait]
impl Target for Otlp {
    fn name(&self) -> &str {
        "otlp"
    }

    async fn deliver(&self, batch_id: &str, records: &[StoredInvocation]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let traces = traces_request(records).encode_to_vec();
        let answer = self.post(&self.traces_url, batch_id, traces).await?;
        // A partial success is a 2xx: the rejected spans would be rejected again, so they are
        // logged rather than retried.
        if let Ok(answer) = ExportTraceServiceResponse::decode(answer.as_slice())
            && let Some(partial) = answer.partial_success
            && partial.rejected_spans > 0
        {
            tracing::warn!(
                rejected = partial.rejected_spans,
                collector_message = ?partial.error_message,
                "the OTLP collector rejected some spans"
            );
        }

        let (start, end) = {
            let watermark = self
                .metrics_watermark
                .lock()
                .map_err(|_| "the OTLP metrics watermark is poisoned".to_owned())?;
            metrics_interval(records, *watermark)
        };
        let metrics = metrics_request(records, start, end).encode_to_vec();
        let answer = self.post(&self.metrics_url, batch_id, metrics).await?;
        if let Ok(answer) = ExportMetricsServiceResponse::decode(answer.as_slice())
            && let Some(partial) = answer.partial_success
            && partial.rejected_data_points > 0
        {
            tracing::warn!(
                rejected = partial.rejected_data_points,
                collector_message = ?partial.error_message,
                "the OTLP collector rejected some metric points"
            );
        }
        if let Ok(mut watermark) = self.metrics_watermark.lock() {
            *watermark = (*watermark).max(end);
        }
        Ok(())
    }
}

/// The span for every record, under promptgate's resource and scope.
fn traces_request(records: &[StoredInvocation]) -> ExportTraceServiceRequest {
    let spans = records.iter().map(|r| span(&r.record)).collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One CLIENT span per invocation: the gateway is the GenAI client of the model provider.
fn span(record: &InvocationRecord) -> Span {
    let (trace_id, span_id) = span_ids(&record.id);
    let start = unix_nanos(record.timestamp);
    let mut attributes = vec![
        string("gen_ai.operation.name", "chat"),
        string("gen_ai.request.model", &record.model),
    ];
    if record.status == InvocationStatus::Success {
        // The record keeps the model the version names; on success that model answered.
        attributes.push(string("gen_ai.response.model", &record.model));
    }
    attributes.push(int(
        "gen_ai.usage.input_tokens",
        i64::from(record.prompt_tokens),
    ));
    attributes.push(int(
        "gen_ai.usage.output_tokens",
        i64::from(record.completion_tokens),
    ));
    let error = error_type(record);
    if let Some(error) = error {
        attributes.push(string("error.type", error));
    }
    attributes.extend([
        string("promptgate.invocation.id", &record.id),
        string("promptgate.prompt.id", &record.prompt_id.to_string()),
        string("promptgate.prompt.version", &record.version),
        string("promptgate.invocation.status", record.status.as_str()),
        string("promptgate.client.id", &record.client_id),
    ]);
    if let Some(session) = &record.session_id {
        attributes.push(string("promptgate.session.id", session));
    }
    let status = match error {
        Some(message) => Status {
            message: message.to_owned(),
            code: status::StatusCode::Error as i32,
        },
        None => Status {
            message: String::new(),
            code: status::StatusCode::Unset as i32,
        },
    };
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        trace_state: String::new(),
        parent_span_id: Vec::new(),
        flags: 0,
        name: format!("chat {}", record.model),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(latency_nanos(record.latency_ms)),
        attributes,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(status),
    }
}

/// Trace and span id from the invocation id, so that a re-delivered span is the same span and
/// backends that key on ids keep one copy.
fn span_ids(invocation_id: &str) -> ([u8; 16], [u8; 8]) {
    let digest = Sha256::digest(format!("promptgate-otlp:{invocation_id}").as_bytes());
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    trace_id.copy_from_slice(&digest[..16]);
    span_id.copy_from_slice(&digest[16..24]);
    // All-zero ids are invalid in OTLP; a digest this unlucky gets one bit set.
    if trace_id == [0; 16] {
        trace_id[15] = 1;
    }
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    (trace_id, span_id)
}

/// `error.type` of a failed invocation: its error code, or `_OTHER` when it has none (the
/// conventions' fallback).
fn error_type(record: &InvocationRecord) -> Option<&str> {
    match record.status {
        InvocationStatus::Success => None,
        InvocationStatus::Error | InvocationStatus::Blocked => {
            Some(record.error_code.as_deref().unwrap_or("_OTHER"))
        }
    }
}

/// The interval a batch's delta points cover: from the previous delivery's end (or the batch's
/// first start) to the last end in the batch, never empty.
fn metrics_interval(records: &[StoredInvocation], watermark: u64) -> (u64, u64) {
    let first = records
        .iter()
        .map(|r| unix_nanos(r.record.timestamp))
        .min()
        .unwrap_or(0);
    let last = records
        .iter()
        .map(|r| unix_nanos(r.record.timestamp).saturating_add(latency_nanos(r.record.latency_ms)))
        .max()
        .unwrap_or(0);
    let start = if watermark == 0 { first } else { watermark };
    (start, last.max(start.saturating_add(1)))
}

/// One histogram being filled, with the conventions' explicit buckets.
struct Buckets {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Buckets {
    fn new(bounds: &[f64]) -> Self {
        Buckets {
            counts: vec![0; bounds.len() + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// OTLP buckets are upper-inclusive: bucket `i` holds `bounds[i-1] < value <= bounds[i]`.
    fn record(&mut self, bounds: &[f64], value: f64) {
        let index = bounds.partition_point(|bound| *bound < value);
        if let Some(slot) = self.counts.get_mut(index) {
            *slot += 1;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
}

/// A metric stream's attribute set, in a fixed order so that points come out in a stable order.
type AttributeSet = Vec<(&'static str, String)>;

/// Both GenAI client histograms, aggregated over the batch as DELTA points.
fn metrics_request(
    records: &[StoredInvocation],
    start: u64,
    end: u64,
) -> ExportMetricsServiceRequest {
    let mut durations: BTreeMap<AttributeSet, Buckets> = BTreeMap::new();
    let mut tokens: BTreeMap<AttributeSet, Buckets> = BTreeMap::new();
    for stored in records {
        let record = &stored.record;
        let mut attributes: AttributeSet = vec![
            ("gen_ai.operation.name", "chat".to_owned()),
            ("gen_ai.request.model", record.model.clone()),
            ("promptgate.prompt.id", record.prompt_id.to_string()),
            ("promptgate.prompt.version", record.version.clone()),
        ];
        if let Some(error) = error_type(record) {
            attributes.push(("error.type", error.to_owned()));
        }
        durations
            .entry(attributes.clone())
            .or_insert_with(|| Buckets::new(&DURATION_BOUNDARIES))
            .record(&DURATION_BOUNDARIES, record.latency_ms.max(0.0) / 1000.0);
        let failed = record.status != InvocationStatus::Success;
        for (kind, count) in [
            ("input", record.prompt_tokens),
            ("output", record.completion_tokens),
        ] {
            // A failed invocation that used no tokens (blocked before the model, say) has no
            // usage to report; a zero would only drag the distribution down.
            if failed && count == 0 {
                continue;
            }
            let mut attributes = attributes.clone();
            attributes.push(("gen_ai.token.type", kind.to_owned()));
            tokens
                .entry(attributes)
                .or_insert_with(|| Buckets::new(&TOKEN_BOUNDARIES))
                .record(&TOKEN_BOUNDARIES, f64::from(count));
        }
    }
    let metrics = vec![
        histogram(
            "gen_ai.client.operation.duration",
            "GenAI operation duration",
            "s",
            &DURATION_BOUNDARIES,
            durations,
            start,
            end,
        ),
        histogram(
            "gen_ai.client.token.usage",
            "Measures number of input and output tokens used",
            "{token}",
            &TOKEN_BOUNDARIES,
            tokens,
            start,
            end,
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One DELTA histogram metric with a point per attribute set.
fn histogram(
    name: &str,
    description: &str,
    unit: &str,
    bounds: &[f64],
    streams: BTreeMap<AttributeSet, Buckets>,
    start: u64,
    end: u64,
) -> Metric {
    let data_points = streams
        .into_iter()
        .map(|(attributes, buckets)| HistogramDataPoint {
            attributes: attributes.iter().map(|(k, v)| string(k, v)).collect(),
            start_time_unix_nano: start,
            time_unix_nano: end,
            count: buckets.count,
            sum: Some(buckets.sum),
            bucket_counts: buckets.counts,
            explicit_bounds: bounds.to_vec(),
            exemplars: Vec::new(),
            flags: 0,
            min: Some(buckets.min),
            max: Some(buckets.max),
        })
        .collect();
    Metric {
        name: name.to_owned(),
        description: description.to_owned(),
        unit: unit.to_owned(),
        metadata: Vec::new(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
    }
}

fn resource() -> Resource {
    Resource {
        attributes: vec![
            string("service.name", "promptgate"),
            string("service.version", env!("CARGO_PKG_VERSION")),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "promptgate".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// Nanoseconds since the epoch; times before it (never produced by the gateway) map to zero.
fn unix_nanos(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0)
}

fn latency_nanos(latency_ms: f64) -> u64 {
    // `as` saturates; a negative or NaN latency (never stored) becomes zero.
    (latency_ms * 1_000_000.0) as u64
}
