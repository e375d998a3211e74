//! The OTLP exporter against a receiver on a real socket that decodes what it gets with the
//! official protobuf definitions (`opentelemetry-proto`), as a collector would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, metric,
};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_server::exporters::Target;
use promptgate_server::exporters::otlp::Otlp;
use promptgate_store::StoredInvocation;
use prost::Message;
use time::macros::datetime;
use uuid::Uuid;

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    headers: Vec<HeaderMap>,
}

struct Receiver {
    status: StatusCode,
    received: Mutex<Received>,
}

async fn traces(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let request = ExportTraceServiceRequest::decode(body).expect("traces decode");
    let mut received = rx.received.lock().unwrap();
    received.traces.push(request);
    received.headers.push(headers);
    rx.status
}

async fn metrics(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let request = ExportMetricsServiceRequest::decode(body).expect("metrics decode");
    let mut received = rx.received.lock().unwrap();
    received.metrics.push(request);
    received.headers.push(headers);
    rx.status
}

/// A receiver on 127.0.0.1:0 answering `status`; returns its endpoint.
async fn receiver(status: StatusCode) -> (String, Arc<Receiver>) {
    let rx = Arc::new(Receiver {
        status,
        received: Mutex::new(Received::default()),
    });
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), rx)
}

const PROMPT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);

fn record(
    seq: i64,
    id: &str,
    version: &str,
    status: InvocationStatus,
    error_code: Option<&str>,
    latency_ms: f64,
    tokens: (u32, u32),
) -> StoredInvocation {
    StoredInvocation {
        seq,
        record: InvocationRecord {
            id: id.to_owned(),
            timestamp: datetime!(2025-03-01 12:00:00 UTC) + time::Duration::seconds(seq),
            prompt_id: PROMPT,
            version: version.to_owned(),
            model: "gpt-4o-mini".to_owned(),
            status,
            error_code: error_code.map(str::to_owned),
            latency_ms,
            upstream_latency_ms: Some(latency_ms - 5.0),
            time_to_first_token_ms: None,
            prompt_tokens: tokens.0,
            completion_tokens: tokens.1,
            session_id: (seq == 1).then(|| "sess-1".to_owned()),
            client_id: "client-a".to_owned(),
            metadata: BTreeMap::new(),
            label: None,
            variable_names: Vec::new(),
            schema_valid: None,
            tool_call_count: 0,
            api_key_id: None,
            cost_usd: None,
            endpoint_ref: "openai/gpt-4o".to_owned(),
            fallback_attempts: Vec::new(),
        },
        feedback: None,
    }
}

fn batch() -> Vec<StoredInvocation> {
    vec![
        record(
            1,
            "inv-a",
            "1.0.0",
            InvocationStatus::Success,
            None,
            150.0,
            (100, 20),
        ),
        record(
            2,
            "inv-b",
            "1.0.0",
            InvocationStatus::Success,
            None,
            900.0,
            (300, 50),
        ),
        record(
            3,
            "inv-c",
            "1.0.0",
            InvocationStatus::Error,
            Some("UPSTREAM_TIMEOUT"),
            30_000.0,
            (300, 0),
        ),
        record(
            4,
            "inv-d",
            "1.1.0",
            InvocationStatus::Blocked,
            Some("GUARDRAIL_BLOCKED"),
            2.0,
            (0, 0),
        ),
    ]
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => format!("int:{i}"),
                other => panic!("unexpected attribute value {other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn spans(request: &ExportTraceServiceRequest) -> Vec<Span> {
    assert_eq!(request.resource_spans.len(), 1);
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(attrs(&resource.attributes)["service.name"], "promptgate");
    request.resource_spans[0]
        .scope_spans
        .iter()
        .flat_map(|s| s.spans.clone())
        .collect()
}

fn metric<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> &'a Metric {
    assert_eq!(request.resource_metrics.len(), 1);
    let resource = request.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(attrs(&resource.attributes)["service.name"], "promptgate");
    request.resource_metrics[0]
        .scope_metrics
        .iter()
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn points(metric: &Metric) -> Vec<(BTreeMap<String, String>, HistogramDataPoint)> {
    let Some(metric::Data::Histogram(histogram)) = &metric.data else {
        panic!("{} is not a histogram", metric.name)
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    histogram
        .data_points
        .iter()
        .map(|p| (attrs(&p.attributes), p.clone()))
        .collect()
}

#[tokio::test]
async fn otlp_payloads_decode_with_the_genai_names() {
    let (endpoint, rx) = receiver(StatusCode::OK).await;
    let headers = BTreeMap::from([("x-api-key".to_owned(), "secret-1".to_owned())]);
    let otlp = Otlp::new(&endpoint, headers, false).unwrap();
    assert_eq!(otlp.name(), "otlp");
    let records = batch();
    otlp.deliver("otlp-1-4", &records).await.unwrap();

    let received = rx.received.lock().unwrap();
    assert_eq!(received.traces.len(), 1);
    assert_eq!(received.metrics.len(), 1);
    for headers in &received.headers {
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["x-api-key"], "secret-1");
    }

    // Traces: one CLIENT span per invocation.
    let spans = spans(&received.traces[0]);
    assert_eq!(spans.len(), 4);
    for span in &spans {
        assert_eq!(span.name, "chat gpt-4o-mini");
        assert_eq!(span.kind, span::SpanKind::Client as i32);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
    }
    let ok = &spans[0];
    let start = datetime!(2025-03-01 12:00:01 UTC).unix_timestamp_nanos() as u64;
    assert_eq!(ok.start_time_unix_nano, start);
    assert_eq!(ok.end_time_unix_nano, start + 150_000_000);
    assert_ne!(
        ok.status.as_ref().unwrap().code,
        status::StatusCode::Error as i32
    );
    let a = attrs(&ok.attributes);
    let expected: BTreeMap<String, String> = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "gpt-4o-mini"),
        ("gen_ai.response.model", "gpt-4o-mini"),
        ("gen_ai.usage.input_tokens", "int:100"),
        ("gen_ai.usage.output_tokens", "int:20"),
        ("promptgate.invocation.id", "inv-a"),
        ("promptgate.prompt.id", &PROMPT.to_string()),
        ("promptgate.prompt.version", "1.0.0"),
        ("promptgate.invocation.status", "SUCCESS"),
        ("promptgate.session.id", "sess-1"),
        ("promptgate.client.id", "client-a"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(a, expected);

    let failed = &spans[2];
    let status = failed.status.as_ref().unwrap();
    assert_eq!(status.code, status::StatusCode::Error as i32);
    assert_eq!(status.message, "UPSTREAM_TIMEOUT");
    let a = attrs(&failed.attributes);
    assert_eq!(a["error.type"], "UPSTREAM_TIMEOUT");
    assert_eq!(a["promptgate.invocation.status"], "ERROR");
    assert!(!a.contains_key("gen_ai.response.model"));
    assert!(!a.contains_key("promptgate.session.id"));
    let blocked = &spans[3];
    assert_eq!(
        blocked.status.as_ref().unwrap().message,
        "GUARDRAIL_BLOCKED"
    );
    assert_eq!(
        attrs(&blocked.attributes)["promptgate.invocation.status"],
        "BLOCKED"
    );
    assert_eq!(
        attrs(&blocked.attributes)["error.type"],
        "GUARDRAIL_BLOCKED"
    );
    // Distinct invocations, distinct ids.
    let ids: std::collections::BTreeSet<_> = spans.iter().map(|s| s.span_id.clone()).collect();
    assert_eq!(ids.len(), 4);

    // Metrics: the duration histogram, one point per attribute set.
    let duration = metric(&received.metrics[0], "gen_ai.client.operation.duration");
    assert_eq!(duration.unit, "s");
    let points_by_attrs = points(duration);
    assert_eq!(points_by_attrs.len(), 3);
    let base = |version: &str| {
        BTreeMap::from([
            ("gen_ai.operation.name".to_owned(), "chat".to_owned()),
            ("gen_ai.request.model".to_owned(), "gpt-4o-mini".to_owned()),
            ("promptgate.prompt.id".to_owned(), PROMPT.to_string()),
            ("promptgate.prompt.version".to_owned(), version.to_owned()),
        ])
    };
    let find = |points: &[(BTreeMap<String, String>, HistogramDataPoint)],
                want: &BTreeMap<String, String>| {
        points
            .iter()
            .find(|(a, _)| a == want)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no point with {want:?} in {points:?}"))
    };
    let ok_point = find(&points_by_attrs, &base("1.0.0"));
    assert_eq!(
        ok_point.explicit_bounds,
        vec![
            0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
        ]
    );
    assert_eq!(ok_point.count, 2);
    assert!((ok_point.sum.unwrap() - 1.05).abs() < 1e-9);
    // 0.15 s falls in (0.08, 0.16], 0.9 s in (0.64, 1.28].
    let mut buckets = vec![0u64; 15];
    buckets[4] = 1;
    buckets[7] = 1;
    assert_eq!(ok_point.bucket_counts, buckets);
    assert_eq!(ok_point.min, Some(0.15));
    assert_eq!(ok_point.max, Some(0.9));
    assert!(ok_point.start_time_unix_nano < ok_point.time_unix_nano);

    let mut timeout_attrs = base("1.0.0");
    timeout_attrs.insert("error.type".to_owned(), "UPSTREAM_TIMEOUT".to_owned());
    let timeout = find(&points_by_attrs, &timeout_attrs);
    assert_eq!(timeout.count, 1);
    assert_eq!(timeout.sum, Some(30.0));
    assert_eq!(timeout.bucket_counts[12], 1, "30 s is in (20.48, 40.96]");
    let mut blocked_attrs = base("1.1.0");
    blocked_attrs.insert("error.type".to_owned(), "GUARDRAIL_BLOCKED".to_owned());
    assert_eq!(find(&points_by_attrs, &blocked_attrs).count, 1);

    // Token usage: input and output per attribute set; no zero usage from failures.
    let usage = metric(&received.metrics[0], "gen_ai.client.token.usage");
    assert_eq!(usage.unit, "{token}");
    let usage_points = points(usage);
    assert_eq!(usage_points.len(), 3, "{usage_points:?}");
    let with_type = |mut a: BTreeMap<String, String>, t: &str| {
        a.insert("gen_ai.token.type".to_owned(), t.to_owned());
        a
    };
    let input = find(&usage_points, &with_type(base("1.0.0"), "input"));
    assert_eq!(
        input.explicit_bounds,
        vec![
            1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
            4194304.0, 16777216.0, 67108864.0
        ]
    );
    assert_eq!(input.count, 2);
    assert_eq!(input.sum, Some(400.0));
    // 100 in (64, 256], 300 in (256, 1024].
    let mut buckets = vec![0u64; 15];
    buckets[4] = 1;
    buckets[5] = 1;
    assert_eq!(input.bucket_counts, buckets);
    let output = find(&usage_points, &with_type(base("1.0.0"), "output"));
    assert_eq!((output.count, output.sum), (2, Some(70.0)));
    let failed_input = find(&usage_points, &with_type(timeout_attrs, "input"));
    assert_eq!((failed_input.count, failed_input.sum), (1, Some(300.0)));
}

#[tokio::test]
async fn a_redelivered_batch_has_the_same_span_ids() {
    let (endpoint, rx) = receiver(StatusCode::OK).await;
    let otlp = Otlp::new(&endpoint, BTreeMap::new(), true).unwrap();
    let records = batch();
    otlp.deliver("otlp-1-4", &records).await.unwrap();
    otlp.deliver("otlp-1-4", &records).await.unwrap();

    let received = rx.received.lock().unwrap();
    assert_eq!(received.traces.len(), 2);
    let ids = |r: &ExportTraceServiceRequest| {
        spans(r)
            .into_iter()
            .map(|s| (s.trace_id, s.span_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&received.traces[0]), ids(&received.traces[1]));
    // Successive delta intervals do not overlap.
    let interval = |r: &ExportMetricsServiceRequest| {
        let p = &points(metric(r, "gen_ai.client.operation.duration"))[0].1;
        (p.start_time_unix_nano, p.time_unix_nano)
    };
    let (first, second) = (
        interval(&received.metrics[0]),
        interval(&received.metrics[1]),
    );
    assert!(second.0 >= first.1, "{first:?} then {second:?}");
}

#[tokio::test]
async fn a_failing_collector_is_an_error() {
    let (endpoint, _rx) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let otlp = Otlp::new(&endpoint, BTreeMap::new(), false).unwrap();
    let err = otlp.deliver("otlp-1-4", &batch()).await.unwrap_err();
    assert!(err.contains("500"), "{err}");

    // Nothing listens on a port that was just freed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let otlp = Otlp::new(&format!("http://{addr}"), BTreeMap::new(), false).unwrap();
    assert!(otlp.deliver("otlp-1-4", &batch()).await.is_err());
}

#[test]
fn bad_configuration_is_refused() {
    assert!(Otlp::new("not a url", BTreeMap::new(), false).is_err());
    assert!(Otlp::new("ftp://collector:4318", BTreeMap::new(), false).is_err());
    let headers = BTreeMap::from([("bad header".to_owned(), "x".to_owned())]);
    assert!(Otlp::new("http://127.0.0.1:4318", headers, false).is_err());
}

#[tokio::test]
async fn otlp_redirect_is_a_failure_naming_the_status_and_never_followed() {
    // Where the redirect points: a collector that must never see the configured API key.
    let (elsewhere, rx) = receiver(StatusCode::OK).await;
    let location = format!("{}v1/traces", elsewhere);
    let app = Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let headers = BTreeMap::from([("X-Api-Key".to_owned(), "otlp-secret-1234".to_owned())]);
    let otlp = Otlp::new(&format!("http://{addr}"), headers, false).unwrap();
    let err = otlp.deliver("otlp-1-4", &batch()).await.unwrap_err();
    assert!(err.contains("307"), "{err}");
    assert!(err.contains("redirect"), "{err}");
    assert!(!err.contains("otlp-secret"), "{err}");
    let received = rx.received.lock().unwrap();
    assert!(
        received.headers.is_empty() && received.traces.is_empty(),
        "the redirect was followed: {:?}",
        received.headers
    );
}
