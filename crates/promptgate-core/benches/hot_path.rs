//! Micro-benchmarks of the request path's pure pieces: version choice, token counting, PII
//! redaction, profanity masking and context fitting.
//!
//! Run: `cargo bench -p promptgate-core --bench hot_path`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use promptgate_core::guardrails::{pii, profanity};
use promptgate_core::invocation::{ContextInput, choose_version, fit_context};
use promptgate_core::{
    FewShotExample, SplitStrategy, TokenCounter, TokenizerKind, TrafficSplit, VersionLabel,
};
use uuid::Uuid;

/// Support-chat-like text of about `bytes` bytes, with an e-mail, a phone number and a card
/// number every few sentences, as a redactor meets them.
fn chat_text(bytes: usize) -> String {
    let sentences = [
        "Hi, I ordered a blue jacket last week and it has not arrived yet. ",
        "My e-mail is jane.doe@example.com and my phone is +44 20 7946 0958. ",
        "Could you check the delivery status for order 123456 please? ",
        "I paid with card 4111 1111 1111 1111, which was charged twice. ",
        "Thanks for your help, I really appreciate the quick answers. ",
    ];
    let mut out = String::with_capacity(bytes + 80);
    let mut i = 0;
    while out.len() < bytes {
        out.push_str(sentences[i % sentences.len()]);
        i += 1;
    }
    out.truncate(bytes);
    out
}

fn benches(c: &mut Criterion) {
    let v = |s: &str| s.parse::<VersionLabel>().unwrap();
    let split = TrafficSplit::new(
        v("1.0.0"),
        SplitStrategy::Sticky,
        vec![(v("1.0.0"), 0.9), (v("1.1.0"), 0.1)],
    )
    .unwrap();
    let prompt_id = Uuid::now_v7();
    c.bench_function("version choice (sticky)", |b| {
        b.iter(|| {
            choose_version(
                black_box(&split),
                prompt_id,
                Some(black_box("session-42")),
                0.5,
            )
        })
    });

    let counter = TokenCounter::load();
    for (label, size) in [("1 KB", 1024), ("32 KB", 32 * 1024)] {
        let text = chat_text(size);
        c.bench_function(&format!("token count o200k_base {label}"), |b| {
            b.iter(|| counter.count(TokenizerKind::O200kBase, black_box(&text)))
        });
        c.bench_function(&format!("pii redaction {label}"), |b| {
            b.iter(|| pii::redact(black_box(&text)))
        });
        c.bench_function(&format!("profanity masking {label}"), |b| {
            b.iter(|| profanity::mask(black_box(&text)))
        });
    }

    let examples: Vec<FewShotExample> = (0..20)
        .map(|i| FewShotExample {
            input: format!("Where is order {i}?"),
            output: format!("Order {i} ships tomorrow; you will get a tracking e-mail."),
        })
        .collect();
    let turns: Vec<String> = (0..10)
        .map(|i| format!("earlier turn number {i} of this chat"))
        .collect();
    let user = chat_text(512);
    c.bench_function("context fitting (20 examples, 10 turns)", |b| {
        b.iter(|| {
            fit_context(
                &counter,
                &ContextInput {
                    system_prompt: "You are a helpful customer support agent for an online shop.",
                    examples: &examples,
                    turns: &turns,
                    user_input: black_box(&user),
                    max_output_tokens: 256,
                    context_window: 128_000,
                    tokenizer: TokenizerKind::O200kBase,
                },
            )
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
