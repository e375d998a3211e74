//! Micro-benchmarks of the audit log's pure pieces: sealing an entry (canonical JSON and two
//! SHA-256), replaying a log, Merkle roots and proofs, signing a tree head.
//!
//! Run: `cargo bench -p promptgate-audit --bench audit`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use promptgate_audit::merkle::{self, Hash};
use promptgate_audit::{AuditDraft, ChainVerifier, GENESIS_HASH, TreeHead, change_details, head};
use serde_json::{Value, json};

/// A VERSION_CREATED-like draft: two version snapshots (a ~600-character system prompt each)
/// and their JSON Patch, about 2.5 KB of canonical JSON.
fn version_draft() -> AuditDraft {
    let snapshot = |prompt: &str, temperature: f64| {
        json!({"version": "1.1.0", "modelEndpointRef": "openai/gpt-4o-mini",
               "systemPrompt": prompt.repeat(12), "temperature": temperature,
               "safetyGuardrails": {"contentFiltering": ["pii", "profanity"], "maxTokens": 1500,
                                    "blockedCategories": ["self_harm"]},
               "fewShotExamples": [], "systemPromptTokens": 130, "tokenizer": "o200k_base"})
    };
    let before = snapshot("You are a helpful support agent. ", 0.7);
    let after = snapshot("You are a concise support agent. ", 0.3);
    AuditDraft::new(
        time::OffsetDateTime::now_utc(),
        "support-admin",
        "VERSION_CREATED",
        Some(uuid::Uuid::now_v7()),
        change_details(Some(&before), Some(&after)),
    )
}

fn log(n: u64) -> Vec<Value> {
    let draft = version_draft();
    let mut prev = GENESIS_HASH;
    (1..=n)
        .map(|sequence| {
            let sealed = draft.seal(sequence, &prev);
            prev = sealed.hash;
            sealed.to_value()
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let draft = version_draft();
    c.bench_function("seal a 2.5 KB entry", |b| {
        b.iter(|| black_box(&draft).seal(black_box(42), &GENESIS_HASH))
    });

    let entries = log(1_000);
    c.bench_function("replay 1,000 entries (ChainVerifier)", |b| {
        b.iter(|| {
            let mut verifier = ChainVerifier::new();
            black_box(&entries).iter().for_each(|e| verifier.push(e));
            verifier.report()
        })
    });

    let leaves: Vec<Hash> = (0u32..100_000)
        .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
        .collect();
    c.bench_function("Merkle root of 100,000 leaves", |b| {
        b.iter(|| merkle::root(black_box(&leaves)))
    });
    c.bench_function("inclusion proof in 100,000 leaves", |b| {
        b.iter(|| merkle::inclusion_proof(black_box(&leaves), 31_337, 100_000).unwrap())
    });
    c.bench_function("consistency proof 60,000 → 100,000", |b| {
        b.iter(|| merkle::consistency_proof(black_box(&leaves), 60_000, 100_000).unwrap())
    });

    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let tree = TreeHead {
        tree_size: 100_000,
        root_hash: merkle::root(&leaves),
        timestamp: "2026-11-27T04:15:39.123Z".into(),
    };
    c.bench_function("sign a tree head (Ed25519)", |b| {
        b.iter(|| head::sign(&key, black_box(tree.clone())))
    });
}

criterion_group!(audit, benches);
criterion_main!(audit);
