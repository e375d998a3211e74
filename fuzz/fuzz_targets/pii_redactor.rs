//! The PII redactor (`promptgate_core::guardrails::pii`): the whole-text `redact` and the
//! streaming `StreamRedactor`.
//!
//! The input is the text itself (bytes read as UTF-8, invalid sequences replaced), so the seeds
//! in `corpus/pii_redactor/` are plain text files. The chunk boundaries of the stream are drawn
//! from a small PRNG seeded with a hash of the input, so they change whenever the input does.
//!
//! Properties, each one the module documents or its test suite states:
//! - neither redactor panics;
//! - the stream, fed the text in arbitrary chunks (and again one character at a time), returns
//!   exactly what `redact` returns for the whole text: same text, same counts;
//! - a text with no finding comes back byte for byte, and then the stream never holds back
//!   more than `MAX_HOLD_BACK` bytes;
//! - redacting a redacted text changes nothing and finds nothing;
//! - a text without any digit, `@` or `:` is never touched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promptgate_core::guardrails::pii::{MAX_HOLD_BACK, Redacted, StreamRedactor, redact};

/// Streams `text` cut at `cuts` (byte offsets on character boundaries, ascending) and returns
/// the concatenated output and the stream's counts. With `check_hold_back`, asserts after each
/// push that at most `MAX_HOLD_BACK` bytes are still held (only meaningful when the text has no
/// finding, so that output bytes are input bytes).
fn stream(text: &str, cuts: &[usize], check_hold_back: bool) -> Redacted {
    let mut redactor = StreamRedactor::new();
    let mut out = String::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&text.len())) {
        out.push_str(&redactor.push(&text[last..cut]));
        last = cut;
        if check_hold_back {
            let held = cut - out.len();
            assert!(
                held <= MAX_HOLD_BACK,
                "{held} bytes held back after {cut} bytes fed; the bound is {MAX_HOLD_BACK}"
            );
        }
    }
    let rest = redactor.finish_redacted();
    out.push_str(&rest.text);
    Redacted {
        text: out,
        counts: rest.counts,
    }
}

/// FNV-1a, to seed the cut points from the input.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Up to 16 ascending cut points on character boundaries, drawn with xorshift from `seed`.
fn cut_points(text: &str, seed: u64) -> Vec<usize> {
    let boundaries: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let n = (next() % 17) as usize;
    let mut cuts: Vec<usize> = (0..n)
        .map(|_| boundaries[(next() % boundaries.len() as u64) as usize])
        .collect();
    cuts.sort_unstable();
    cuts
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    let whole = redact(text);

    // Text outside findings is kept byte for byte: with no finding, the text is unchanged.
    let no_finding = whole.counts.is_empty();
    if no_finding {
        assert_eq!(whole.text, text, "no finding, yet the text changed");
    }
    if !text
        .bytes()
        .any(|b| b.is_ascii_digit() || b == b'@' || b == b':')
    {
        assert!(
            no_finding,
            "a finding without a digit, @ or ':': {:?}",
            whole.counts
        );
    }

    // The stream is exact however the text is cut.
    let cuts = cut_points(text, fnv1a(data));
    let streamed = stream(text, &cuts, no_finding);
    assert_eq!(
        streamed, whole,
        "stream cut at {cuts:?} differs from redact"
    );

    // And one character at a time (bounded, to keep each run fast).
    if text.len() <= 512 {
        let every: Vec<usize> = (1..text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        let streamed = stream(text, &every, no_finding);
        assert_eq!(
            streamed, whole,
            "stream one character at a time differs from redact"
        );
    }

    // Idempotent: what was redacted has nothing left to find.
    let twice = redact(&whole.text);
    assert_eq!(twice.text, whole.text, "redacting twice changed the text");
    assert!(
        twice.counts.is_empty(),
        "found more in redacted text: {:?}",
        twice.counts
    );
});
