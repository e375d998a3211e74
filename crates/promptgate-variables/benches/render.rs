//! What a templated prompt adds to an invocation: checking the caller's variables against the
//! version's schema (defaults applied) and rendering the system prompt with them. The issue's
//! bound is 10 µs at p50 for 3 variables.
//!
//! Run: `cargo bench -p promptgate-variables --bench render`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use promptgate_core::template::Template;
use promptgate_variables::VersionVariables;
use serde_json::{Map, Value, json};

const SCHEMA: &str = r#"{"type": "object", "properties": {
    "company": {"type": "string", "maxLength": 100},
    "customer_name": {"type": "string", "maxLength": 200},
    "tier": {"enum": ["gold", "silver", "bronze"], "default": "silver"}
}, "required": ["company", "customer_name"]}"#;

const SYSTEM_PROMPT: &str = "You are the support agent of {{company}}. Answer politely and \
    briefly, in the customer's language. The customer is {{customer_name}}, on the {{tier}} \
    plan: offer the plan's perks when they help, and never promise refunds.";

fn benches(c: &mut Criterion) {
    let template = Template::parse(SYSTEM_PROMPT).unwrap();
    let variables =
        VersionVariables::compile(Some(SCHEMA), template.placeholders().cloned()).unwrap();
    let supplied: Map<String, Value> = match json!({
        "company": "Acme Outdoor",
        "customer_name": "Jane Doe",
        "tier": "gold"
    }) {
        Value::Object(map) => map,
        _ => unreachable!(),
    };

    c.bench_function("resolve_and_render_3_variables", |b| {
        b.iter(|| {
            let resolved = variables.resolve(Some(black_box(&supplied))).unwrap();
            black_box(resolved.render(black_box(&template)))
        })
    });

    let resolved = variables.resolve(Some(&supplied)).unwrap();
    c.bench_function("render_3_variables", |b| {
        b.iter(|| black_box(resolved.render(black_box(&template))))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
