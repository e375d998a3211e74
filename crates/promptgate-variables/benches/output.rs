//! What a JSON `responseFormat` adds to an invocation: reading the model's output as JSON and
//! validating it against the version's compiled schema (`OutputCheck::check`), per KB of
//! output, for a valid output (the common case: every value is visited) and an invalid one.
//!
//! Run: `cargo bench -p promptgate-variables --bench output`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promptgate_core::{JsonSchemaFormat, ResponseFormat};
use promptgate_variables::OutputCheck;
use serde_json::json;

const SCHEMA: &str = r#"{"type": "object", "properties": {
    "answer": {"type": "string"},
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "qty": {"type": "integer", "minimum": 1},
        "note": {"type": "string", "maxLength": 200}
    }, "required": ["sku", "qty"], "additionalProperties": false}}
}, "required": ["answer", "items"], "additionalProperties": false}"#;

/// An output of about `kb` KB that the schema accepts; with `broken`, its last item's `qty`
/// is a string.
fn output(kb: usize, broken: bool) -> String {
    let mut items = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while text.len() < kb * 1024 {
        items.push(
            json!({"sku": format!("ABC-{:04}", i % 10_000), "qty": 1 + i % 9,
                          "note": "Leave the parcel with the neighbour at number 12."}),
        );
        i += 1;
        text = json!({"answer": "Here is your order.", "items": items}).to_string();
    }
    if broken {
        items.last_mut().unwrap()["qty"] = json!("two");
        text = json!({"answer": "Here is your order.", "items": items}).to_string();
    }
    text
}

fn benches(c: &mut Criterion) {
    let check = OutputCheck::compile(&ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "order".into(),
        description: None,
        schema: Some(SCHEMA.into()),
        strict: Some(true),
    }))
    .unwrap();
    let mut group = c.benchmark_group("output_check");
    for kb in [1, 4, 16, 64] {
        let valid = output(kb, false);
        assert!(check.check(&valid).is_valid());
        group.throughput(Throughput::Bytes(valid.len() as u64));
        group.bench_with_input(BenchmarkId::new("valid", kb), &valid, |b, text| {
            b.iter(|| black_box(check.check(black_box(text))));
        });
        let invalid = output(kb, true);
        assert!(!check.check(&invalid).is_valid());
        group.bench_with_input(BenchmarkId::new("invalid", kb), &invalid, |b, text| {
            b.iter(|| black_box(check.check(black_box(text))));
        });
    }
    group.finish();
}

criterion_group!(output_benches, benches);
criterion_main!(output_benches);
