//! Micro-benchmarks of the server's pieces on or beside the request path: a telemetry record
//! enqueued on the `TelemetrySink`, a bearer token checked by `TokenAuthority` (the cached path
//! every request after the first takes), and an audit entry appended to a SQLite store with
//! `synchronous=FULL` (an fsync per commit).
//!
//! Run: `cargo bench -p promptgate-server --bench hot_path`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use promptgate_core::ScopeSet;
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_server::auth::TokenAuthority;
use promptgate_server::telemetry::TelemetrySink;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Records enqueued between two drains of the queue (its capacity).
const CHUNK: usize = 10_000;

fn record(i: usize) -> InvocationRecord {
    InvocationRecord {
        id: format!("inv-{}", Uuid::now_v7()),
        timestamp: OffsetDateTime::now_utc(),
        prompt_id: Uuid::now_v7(),
        version: "1.0.0".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        status: InvocationStatus::Success,
        error_code: None,
        latency_ms: 812.4,
        upstream_latency_ms: Some(790.1),
        time_to_first_token_ms: None,
        prompt_tokens: 120,
        completion_tokens: 45,
        session_id: Some(format!("s-{i}")),
        client_id: "4976ecba-d969-4a98-b88c-9babab34c6c0".to_owned(),
        metadata: BTreeMap::from([("channel".to_owned(), "web".to_owned())]),
        label: None,
        variable_names: Vec::new(),
        schema_valid: None,
        tool_call_count: 0,
        api_key_id: None,
        cost_usd: None,
        endpoint_ref: "openai/gpt-4o".to_owned(),
        fallback_attempts: Vec::new(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn telemetry(c: &mut Criterion) {
    // The record is built by the handler either way; only the hand-off is timed. The queue is
    // drained (untimed) before it fills, as the writer task does.
    let (sink, mut receiver) = TelemetrySink::new(CHUNK);
    let template = record(0);
    c.bench_function("telemetry record enqueue", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                let records: Vec<InvocationRecord> = (0..n).map(|_| template.clone()).collect();
                let start = Instant::now();
                for r in records {
                    sink.emit(black_box(r));
                }
                total += start.elapsed();
                while receiver.try_recv().is_ok() {}
                left -= n;
            }
            assert_eq!(sink.dropped(), 0, "the queue overflowed");
            total
        })
    });
}

fn token_check(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (authority, token) = rt.block_on(async {
        let store = promptgate_store::open(&url).await.unwrap();
        let created = promptgate_server::service::clients::create_client(
            store.as_ref(),
            "system",
            "bench",
            ScopeSet::all(),
            None,
        )
        .await
        .unwrap();
        let authority = TokenAuthority::new(store, Duration::from_secs(3600), 10)
            .await
            .unwrap();
        let issued = authority
            .issue(&created.client.id, &created.secret, None)
            .await
            .unwrap();
        (authority, issued.token)
    });
    c.bench_function("token check (cached)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let caller = authority.verify(black_box(&token)).await;
                    black_box(caller.is_ok());
                }
                start.elapsed()
            })
        })
    });
}

fn audit_append(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = rt.block_on(promptgate_store::open(&url)).unwrap();
    // An entry like one a client appends with `POST …/audit-logs`.
    let details =
        json!({"version": "1.0.0", "ticket": "CHG-1234", "reason": "weekly prompt review"});
    let mut group = c.benchmark_group("audit");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("audit append (SQLite, fsync on)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let drafts: Vec<_> = (0..iters)
                    .map(|_| {
                        promptgate_server::audit::draft(
                            "bench-client",
                            "CREATE",
                            Some(Uuid::now_v7()),
                            details.clone(),
                        )
                    })
                    .collect();
                let start = Instant::now();
                for draft in drafts {
                    store
                        .append_audit(std::slice::from_ref(&draft))
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// A version's templates filled per call, as an invocation does it: three variables checked
/// against a schema with a default, PII redaction of their values (the version filters PII),
/// the system prompt, a template message and an example rendered. The budget (1,500 tokens) is
/// longer than the text in bytes, so nothing is counted (as in `bench/overhead.sh --template`).
fn template_fill(c: &mut Criterion) {
    use promptgate_core::prompt::{ContentFilter, TemplateMessage, TemplateRole};
    use promptgate_core::{FewShotExample, SafetyGuardrails, VersionSettings};
    use promptgate_server::templates::VersionTemplate;

    let settings = VersionSettings {
        model_endpoint_ref: "openai/gpt-4o".into(),
        system_prompt: "You are a helpful {{role}} for {{ shop }}. Answer {{style}} and politely, \
                        never ask for payment details, and hand over to a human when the \
                        customer is upset."
            .into(),
        temperature: 0.2,
        safety_guardrails: SafetyGuardrails {
            content_filtering: vec![ContentFilter::Pii],
            max_tokens: Some(1500),
            blocked_categories: Vec::new(),
        },
        few_shot_examples: vec![FewShotExample {
            input: "Who are you?".into(),
            output: "The {{role}} of {{shop}}.".into(),
        }],
        template_messages: vec![TemplateMessage {
            role: TemplateRole::User,
            content: "I shop at {{shop}}.".into(),
        }],
        variables_schema: Some(
            json!({"type": "object", "properties": {
                "role": {"type": "string", "maxLength": 100},
                "shop": {"type": "string", "maxLength": 100},
                "style": {"enum": ["briefly", "in detail"], "default": "briefly"}},
                "required": ["role", "shop"]})
            .to_string(),
        ),
        tool_settings: Default::default(),
        fallback_endpoint_refs: Vec::new(),
    };
    let template = VersionTemplate::build(&settings);
    let variables = json!({"role": "customer support agent", "shop": "an online shop"});
    let variables = variables.as_object().unwrap().clone();
    c.bench_function("template fill (3 variables, schema, PII on)", |b| {
        b.iter(|| {
            let filled = template
                .fill(&settings, Some(black_box(&variables)), |_| unreachable!())
                .unwrap();
            black_box(filled)
        });
    });
}

criterion_group!(benches, telemetry, token_check, audit_append, template_fill);
criterion_main!(benches);
