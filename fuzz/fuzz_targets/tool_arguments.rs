//! The guardrails of tool-call arguments (`promptgate_server::tools::guard_arguments`): PII
//! redaction and profanity masking inside the JSON string values of a model's tool call, so
//! that the arguments stay valid JSON (shared/API.md, "Tools and structured output").
//!
//! The input is the arguments text (invalid UTF-8 replaced), so the seeds in
//! `corpus/tool_arguments/` are readable JSON (and non-JSON) texts.
//!
//! Properties, for each of redaction, masking and both:
//! - no panic;
//! - with no guardrail on, the arguments come back byte for byte and nothing is counted;
//! - arguments that are valid JSON come back as valid JSON of the same structure: the same
//!   keys, the same array lengths, numbers, booleans and nulls unchanged, only strings may
//!   differ;
//! - the text changes iff something was counted, and arguments that do not change keep their
//!   exact text (whitespace included);
//! - redacting is idempotent: redacting the redacted arguments changes nothing and counts
//!   nothing (masking is not, a known finding in docs/fuzzing.md; it is held to this once
//!   fixed).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use promptgate_server::tools::guard_arguments;
use serde_json::Value;

/// Whether `after` has the structure of `before`: same keys, array lengths, and every value
/// but a string equal.
fn same_structure(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_structure(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| same_structure(x, y)))
        }
        _ => before == after,
    }
}

fuzz_target!(|data: &[u8]| {
    let arguments = String::from_utf8_lossy(data);
    let arguments = arguments.as_ref();

    let mut counts = BTreeMap::new();
    assert_eq!(
        guard_arguments(arguments, false, false, &mut counts),
        arguments
    );
    assert!(
        counts.is_empty(),
        "counted with no guardrail on: {counts:?}"
    );

    let parsed = serde_json::from_str::<Value>(arguments).ok();
    for (redact, mask) in [(true, false), (false, true), (true, true)] {
        let mut counts = BTreeMap::new();
        let guarded = guard_arguments(arguments, redact, mask, &mut counts);
        assert_eq!(
            guarded != arguments,
            !counts.is_empty(),
            "redact {redact}, mask {mask}: changed iff counted ({counts:?}): {guarded:?}"
        );
        if let Some(before) = &parsed {
            let after: Value = serde_json::from_str(&guarded).unwrap_or_else(|e| {
                panic!(
                    "redact {redact}, mask {mask}: JSON arguments became invalid ({e}): {guarded:?}"
                )
            });
            assert!(
                same_structure(before, &after),
                "redact {redact}, mask {mask}: the structure changed: {before} -> {after}"
            );
        }
        // Known finding (docs/fuzzing.md, "Findings"): profanity masking is not idempotent.
        // Its own asterisks read as a disguised word the second time ("c***omment" masks the
        // letters around them; `KKK\u{3}KKKe]` masks a second slur only then). Until
        // `guardrails::profanity` is fixed, only redaction is held to idempotence; the inputs
        // are in regressions/tool_arguments/. Drop this condition with the fix.
        if mask {
            continue;
        }
        let mut again = BTreeMap::new();
        let twice = guard_arguments(&guarded, redact, mask, &mut again);
        assert_eq!(
            twice, guarded,
            "redact {redact}, mask {mask}: not idempotent (found {again:?} the second time)"
        );
        assert!(
            again.is_empty(),
            "redact {redact}, mask {mask}: counted again: {again:?}"
        );
    }
});
