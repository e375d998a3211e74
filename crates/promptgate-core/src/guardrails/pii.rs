//! Personal data in free text: e-mail addresses, phone numbers, payment card numbers, national
//! id numbers and IP addresses, found with linear-time regexes plus validators (Luhn, Verhoeff,
//! SSN ranges, `std::net::Ipv6Addr`) and replaced by the contract's placeholders.
//!
//! How a text is scanned: every detector lists its *candidates*, the spans that its regex
//! matches at a start position and that its validator accepts. Whether a start position holds a
//! candidate depends only on the text near it (the regexes are bounded, the validators look at
//! most a placeholder's length to either side), never on where the scan began. The scan then
//! walks left to right and takes, at each step, the candidate that starts first (the longer one
//! on a tie, then the detector listed first), so overlaps resolve the same way every time: a card
//! number is never also a phone number.
//!
//! That locality is what makes streaming exact: [`StreamRedactor`] emits everything before the
//! first position where a still-incomplete finding could start, and holds back only that tail,
//! which is at most [`MAX_HOLD_BACK`] bytes.
//!
//! All patterns are ASCII: digits in other scripts, full-width digits and internationalised
//! e-mail addresses are not detected (see `docs/guardrails.md`).

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;

/// A kind of personal data; its label is the one the contract uses in placeholders and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number that passes the Luhn check.
    Card,
    /// A national id number (US SSN, UK National Insurance number, Indian Aadhaar number).
    Ssn,
    /// An IPv4 or IPv6 address.
    Ip,
}

impl PiiKind {
    /// Every kind, so callers can report zero counts without listing the kinds themselves.
    pub const ALL: [PiiKind; 5] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Card,
        PiiKind::Ssn,
        PiiKind::Ip,
    ];

    /// The contract's label, used as the key of the redaction counts.
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Card => "CARD",
            PiiKind::Ssn => "SSN",
            PiiKind::Ip => "IP",
        }
    }

    /// What replaces a finding in the text: the label in square brackets.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Card => "[CARD]",
            PiiKind::Ssn => "[SSN]",
            PiiKind::Ip => "[IP]",
        }
    }
}

/// A redacted text and what was taken out of it, so the gateway can report the counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    /// The text with every finding replaced by its placeholder; the rest is byte for byte the
    /// input.
    pub text: String,
    /// How many findings of each kind, by label; kinds not found are absent.
    pub counts: BTreeMap<&'static str, u32>,
}

/// The most bytes [`StreamRedactor`] ever holds back: the longest window a detector needs to
/// decide about a candidate (an e-mail address of 64 + 1 + 8 × 64 + 24 bytes, plus lookahead).
pub const MAX_HOLD_BACK: usize = EMAIL_WINDOW;

/// Replaces every e-mail address, phone number, card number, national id and IP address in
/// `text` with its placeholder (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[SSN]`, `[IP]`).
///
/// The work is linear in the text's length: each detector's regex moves forward only, and a
/// rejected candidate costs at most its own bounded length to look past.
pub fn redact(text: &str) -> Redacted {
    let mut out = Redacted {
        text: String::with_capacity(text.len()),
        counts: BTreeMap::new(),
    };
    scan(text, 0, true, &mut out.text, &mut out.counts);
    out
}

/// Redacts a text that arrives in chunks (a streamed model answer).
///
/// The concatenation of everything [`push`](Self::push) and [`finish`](Self::finish) return is
/// exactly [`redact`] of the concatenated chunks, however the text was split (in the middle of
/// an address or a number too). Each `push` returns at once all text that can no longer become
/// part of a finding; at most [`MAX_HOLD_BACK`] bytes are held back, and in prose usually only
/// the last word or number.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    /// Already emitted left context (kept for the detectors' look-behind) followed by the text
    /// not yet emitted.
    buf: String,
    /// Where in `buf` the text not yet emitted starts.
    committed: usize,
    counts: BTreeMap<&'static str, u32>,
}

impl StreamRedactor {
    /// A redactor at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk and returns the redacted text that is now final (possibly empty).
    pub fn push(&mut self, chunk: &str) -> String {
        self.buf.push_str(chunk);
        let mut out = String::new();
        self.committed = scan(&self.buf, self.committed, false, &mut out, &mut self.counts);
        // Keep a little already-emitted text: the detectors look a few characters behind a
        // candidate's start.
        let mut keep_from = self.committed.saturating_sub(LEFT_CONTEXT);
        while !self.buf.is_char_boundary(keep_from) {
            keep_from -= 1;
        }
        self.buf.drain(..keep_from);
        self.committed -= keep_from;
        out
    }

    /// Ends the stream and returns the rest of the redacted text. Counts found in this rest are
    /// lost with `self`; use [`finish_redacted`](Self::finish_redacted) to keep them.
    pub fn finish(self) -> String {
        self.finish_redacted().text
    }

    /// Ends the stream, returning the rest of the redacted text and the counts of the whole
    /// stream.
    pub fn finish_redacted(mut self) -> Redacted {
        let mut text = String::new();
        scan(&self.buf, self.committed, true, &mut text, &mut self.counts);
        Redacted {
            text,
            counts: self.counts,
        }
    }

    /// How many findings of each kind the text emitted so far contained, by label.
    pub fn counts(&self) -> &BTreeMap<&'static str, u32> {
        &self.counts
    }
}

/// Bytes of emitted text a stream keeps for look-behind: a separator and a placeholder.
const LEFT_CONTEXT: usize = 32;

/// Longest look-ahead past a candidate's end: a separator and a placeholder (`[EMAIL]`), in
/// bytes, with a character's worth of margin.
const LOOKAHEAD: usize = 1 + 7 + 4;

/// Longest look-ahead of the number and phone detectors past a candidate's end: whether a
/// joiner there splits the run ([`splits`]) can depend on a separator, a card layout (19 bytes),
/// a separator and a placeholder or a group of up to [`LONG_GROUP`] digits, a separator and a
/// digit; with a few bytes of margin.
const NUMBER_LOOKAHEAD: usize = 1 + 19 + 1 + 7 + LONG_GROUP + 2 + 4;

/// Longest e-mail match: local part 64, `@`, eight labels of 63 plus a dot, a TLD of 24.
const EMAIL_WINDOW: usize = 64 + 1 + 8 * 64 + 24 + LOOKAHEAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Email,
    Card,
    Ssn,
    Nino,
    Aadhaar,
    Ipv6,
    Ipv4,
    PhoneIntl,
    PhoneNanp,
    PhoneTrunk,
    PhoneIndia,
}

/// Which characters can continue a candidate of a rule or be looked at by its validator past
/// the candidate's end. A start position followed only by such characters up to the end of the
/// text received so far may still become a finding.
#[derive(Debug, Clone, Copy)]
enum Class {
    Email,
    Number,
    Phone,
    Ipv4,
    Ipv6,
    Nino,
}

impl Class {
    /// Whether a match of the class's patterns can start with `b`.
    fn can_start(self, b: u8) -> bool {
        match self {
            Class::Email => b.is_ascii_alphanumeric() || b"_%+-".contains(&b),
            Class::Number | Class::Ipv4 => b.is_ascii_digit(),
            Class::Phone => b.is_ascii_digit() || b == b'+' || b == b'(',
            Class::Ipv6 => b.is_ascii_hexdigit() || b == b':',
            Class::Nino => b.is_ascii_uppercase(),
        }
    }

    fn contains(self, b: u8) -> bool {
        // Placeholders of neighbouring findings are looked at whole, so their characters
        // belong to every class whose validator looks past the end of a candidate.
        let placeholder = b == b'[' || b == b']' || b.is_ascii_uppercase();
        match self {
            Class::Email => b.is_ascii_alphanumeric() || b"_.%+-@".contains(&b),
            Class::Number => placeholder || b.is_ascii_digit() || b" -.".contains(&b),
            Class::Phone => placeholder || b.is_ascii_digit() || b" -.+()/:".contains(&b),
            Class::Ipv4 => placeholder || b.is_ascii_digit() || b == b'.',
            Class::Ipv6 => placeholder || b.is_ascii_hexdigit() || b == b':' || b == b'.',
            Class::Nino => placeholder || b.is_ascii_digit() || b == b' ',
        }
    }
}

struct Detector {
    rule: Rule,
    kind: PiiKind,
    regex: Regex,
    class: Class,
    /// The longest match of `regex` plus the validator's look-ahead, in bytes.
    window: usize,
}

/// The detectors in tie-breaking order: on equal spans, the first listed wins (an SSN-shaped
/// number is an SSN, not a national-format phone number).
const RULES: [(Rule, PiiKind, Class, &str, usize); 11] = [
    (
        Rule::Email,
        PiiKind::Email,
        Class::Email,
        r"[A-Za-z0-9_%+\-][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}\b",
        EMAIL_WINDOW,
    ),
    (
        Rule::Card,
        PiiKind::Card,
        Class::Number,
        r"[0-9](?:[ \-]?[0-9]){12,18}",
        37 + NUMBER_LOOKAHEAD,
    ),
    (
        Rule::Ssn,
        PiiKind::Ssn,
        Class::Number,
        r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}",
        11 + NUMBER_LOOKAHEAD,
    ),
    (
        Rule::Nino,
        PiiKind::Ssn,
        Class::Nino,
        r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]",
        13 + LOOKAHEAD,
    ),
    (
        Rule::Aadhaar,
        PiiKind::Ssn,
        Class::Number,
        r"[2-9][0-9]{3}[ \-][0-9]{4}[ \-][0-9]{4}",
        14 + NUMBER_LOOKAHEAD,
    ),
    (
        Rule::Ipv6,
        PiiKind::Ip,
        Class::Ipv6,
        r"(?:[0-9A-Fa-f]{1,4}:|:)[0-9A-Fa-f:.]{1,41}",
        46 + LOOKAHEAD,
    ),
    (
        Rule::Ipv4,
        PiiKind::Ip,
        Class::Ipv4,
        r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
        15 + LOOKAHEAD,
    ),
    (
        Rule::PhoneIntl,
        PiiKind::Phone,
        Class::Phone,
        // `+` or `00`, a country code, an optional `(0)` trunk prefix, then up to six groups.
        r"(?:\+|00)[1-9][0-9]{0,2}(?:[ .\-]?\(0\))?(?:[ .\-/]?\(?[0-9]{1,6}\)?){1,6}",
        2 + 3 + 4 + 6 * 9 + NUMBER_LOOKAHEAD,
    ),
    (
        Rule::PhoneNanp,
        PiiKind::Phone,
        Class::Phone,
        r"(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}",
        16 + NUMBER_LOOKAHEAD,
    ),
    (
        Rule::PhoneTrunk,
        PiiKind::Phone,
        Class::Phone,
        // A national number with a trunk `0`: UK, German, French, Indian, Japanese, Australian…
        r"\(?0[1-9][0-9]{0,4}\)?(?:[ .\-/][0-9]{2,8}){1,4}",
        8 + 4 * 9 + NUMBER_LOOKAHEAD,
    ),
    (
        Rule::PhoneIndia,
        PiiKind::Phone,
        Class::Phone,
        r"[6-9][0-9]{4}[ \-][0-9]{5}",
        11 + NUMBER_LOOKAHEAD,
    ),
];

#[allow(clippy::expect_used)]
// The patterns are literals; `every_pattern_compiles` and the case tables run each of them.
static DETECTORS: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|&(rule, kind, class, pattern, window)| Detector {
            rule,
            kind,
            regex: Regex::new(pattern).expect("a literal pattern covered by tests"),
            class,
            window,
        })
        .collect()
});

/// A validated span of the text.
#[derive(Debug, Clone, Copy)]
struct Finding {
    start: usize,
    end: usize,
    kind: PiiKind,
    /// The detector's index, the last tie-breaker.
    rank: usize,
}

/// Redacts `hay[from..]` into `out` up to the point that is final and returns that point.
///
/// With `at_end`, the whole rest is final. Otherwise more text may follow, and the scan stops
/// before the first position where a finding could still start or change
/// ([`hold_back_start`]).
fn scan(
    hay: &str,
    from: usize,
    at_end: bool,
    out: &mut String,
    counts: &mut BTreeMap<&'static str, u32>,
) -> usize {
    let detectors = &*DETECTORS;
    let limit = if at_end {
        hay.len()
    } else {
        hold_back_start(hay, from, detectors)
    };
    let mut pos = from;
    let mut next: Vec<Option<Finding>> = detectors
        .iter()
        .enumerate()
        .map(|(rank, d)| next_candidate(d, rank, hay, pos))
        .collect();
    loop {
        let best = next.iter().flatten().copied().min_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(b.end.cmp(&a.end))
                .then(a.rank.cmp(&b.rank))
        });
        let Some(found) = best.filter(|f| f.start < limit) else {
            break;
        };
        out.push_str(&hay[pos..found.start]);
        out.push_str(found.kind.placeholder());
        *counts.entry(found.kind.label()).or_insert(0) += 1;
        pos = found.end;
        // Candidates that start inside the accepted finding are dropped; the others stay
        // valid, since a candidate does not depend on where the scan is.
        for (rank, (slot, d)) in next.iter_mut().zip(detectors).enumerate() {
            if slot.is_some_and(|f| f.start < pos) {
                *slot = next_candidate(d, rank, hay, pos);
            }
        }
    }
    let end = limit.max(pos);
    out.push_str(&hay[pos..end]);
    end
}

/// The first position at or after `from` where a finding might start once more text arrives:
/// for each detector, the first character that can start one in the trailing run of its class
/// (but no earlier than its window before the end, since a candidate starting earlier is
/// complete).
fn hold_back_start(hay: &str, from: usize, detectors: &[Detector]) -> usize {
    let bytes = hay.as_bytes();
    let end = bytes.len();
    let mut limit = end;
    for d in detectors {
        let floor = end.saturating_sub(d.window).max(from);
        let mut run = end;
        while run > floor && d.class.contains(bytes[run - 1]) {
            run -= 1;
        }
        // Separators at the front of the run cannot start a candidate.
        while run < end && !d.class.can_start(bytes[run]) {
            run += 1;
        }
        limit = limit.min(run);
    }
    // The window floor may fall inside a multi-byte character; any start is a boundary after it.
    while !hay.is_char_boundary(limit) {
        limit += 1;
    }
    limit
}

/// The first candidate of `d` that starts at or after `from`.
fn next_candidate(d: &Detector, rank: usize, hay: &str, mut from: usize) -> Option<Finding> {
    while from < hay.len() {
        let m = d.regex.find_at(hay, from)?;
        if let Some(end) = validate(d.rule, hay, m.start(), m.end()) {
            return Some(Finding {
                start: m.start(),
                end,
                kind: d.kind,
                rank,
            });
        }
        // Every pattern starts with an ASCII character, so the next byte is a boundary; a
        // shorter candidate may start inside the rejected one.
        from = m.start() + 1;
    }
    None
}

/// Checks the regex match `hay[start..end]` of `rule` in its context; returns the finding's end
/// (it may be shorter than the match) or `None`.
fn validate(rule: Rule, hay: &str, start: usize, end: usize) -> Option<usize> {
    let text = &hay[start..end];
    match rule {
        Rule::Email => {
            let domain = text.split_once('@').map_or("", |(_, d)| d);
            (domain.len() <= 253).then_some(end)
        }
        Rule::Card => validate_card(hay, start, end),
        Rule::Ssn => {
            let digits = digits_of(text);
            let ok = !continues_left(hay, start)
                && !continues_right(hay, end)
                && !matches!(&digits[..3], "000" | "666")
                && !digits.starts_with('9')
                && &digits[3..5] != "00"
                && &digits[5..] != "0000";
            ok.then_some(end)
        }
        Rule::Nino => {
            let bytes = text.as_bytes();
            let spaced = match bytes.iter().filter(|&&b| b == b' ').count() {
                0 | 4 => true,
                // "AB 123456 C"
                2 => bytes[2] == b' ' && bytes[bytes.len() - 2] == b' ',
                _ => false,
            };
            let ok = spaced
                && !word_like_before(hay, start)
                && !word_like_after(hay, end)
                && !matches!(&text[..2], "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ");
            ok.then_some(end)
        }
        Rule::Aadhaar => {
            let seps: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_digit()).collect();
            let ok = !continues_left(hay, start)
                && !continues_right(hay, end)
                && seps.windows(2).all(|w| w[0] == w[1])
                && verhoeff_valid(&digits_of(text));
            ok.then_some(end)
        }
        Rule::Ipv4 => {
            // "1.2.3.4.5" and "1.2.3.4.com" are not addresses; "1.2.3.4." ends a sentence.
            let dotted_on = char_at(hay, end) == Some('.') && word_like_after(hay, end + 1);
            let ok = !word_like_before(hay, start)
                && char_before(hay, start) != Some('.')
                && !word_like_after(hay, end)
                && !dotted_on;
            ok.then_some(end)
        }
        Rule::Ipv6 => validate_ipv6(hay, start, end),
        Rule::PhoneIntl | Rule::PhoneTrunk => {
            // The greedy match may run into a following number ("… 0958(5555…"); the finding
            // is then the longest run of whole groups that is a phone number on its own.
            let bytes = hay.as_bytes();
            let group_ends = (start + 1..end).rev().filter(|&p| {
                matches!(bytes[p], b' ' | b'.' | b'-' | b'/' | b'(')
                    && (bytes[p - 1].is_ascii_digit() || bytes[p - 1] == b')')
            });
            std::iter::once(end)
                .chain(group_ends)
                .find(|&e| phone_shape_ok(rule, &hay[start..e]) && phone_context_ok(hay, start, e))
        }
        Rule::PhoneNanp => {
            let mut digits = digits_of(text);
            if digits.len() == 11 {
                digits.remove(0);
            }
            let area = digits.as_bytes();
            let seps: Vec<u8> = text
                .bytes()
                .filter(|b| !b.is_ascii_digit() && *b != b'(' && *b != b')')
                .collect();
            let ok = phone_context_ok(hay, start, end)
                && area[1] != b'9'
                && &digits[1..3] != "11"
                && &digits[4..6] != "11"
                && (text.contains('(') || seps.windows(2).all(|w| w[0] == w[1]));
            ok.then_some(end)
        }
        Rule::PhoneIndia => phone_context_ok(hay, start, end).then_some(end),
    }
}

fn validate_card(hay: &str, start: usize, end: usize) -> Option<usize> {
    if continues_left(hay, start) || char_before(hay, start) == Some('+') {
        return None;
    }
    let bytes = hay.as_bytes();
    // A card never spans a joiner next to a long group: the group is a whole number of its
    // own (see `splits`). Cutting there first makes the answer the same whatever follows the
    // long group: more digits, or the placeholder they became ("0532 011111111 415-555-0132"
    // and "0532 011111111 [PHONE]" hold no card).
    let end = (start + 1..end)
        .find(|&j| {
            matches!(bytes[j], b' ' | b'-')
                && (digits_back(bytes, j, LONG_GROUP) >= LONG_GROUP
                    || digits_fwd(bytes, j + 1, LONG_GROUP) >= LONG_GROUP)
        })
        .unwrap_or(end);
    let text = &hay[start..end];
    let mut seps = text.bytes().filter(|b| !b.is_ascii_digit());
    let one_sep = seps.next().is_none_or(|first| seps.all(|b| b == first));
    if one_sep && !continues_right(hay, end) && is_card_number(&digits_of(text)) {
        return Some(end);
    }
    // Read from the left, a card in a standard layout is the card ("4111 1111 1111 1111 5555
    // 5555 5555 4444" is two).
    if let Some(card_end) = card_layout_len(bytes, start) {
        return Some(card_end);
    }
    // Otherwise the match ends where the separator changes or a card in a standard layout ends
    // or starts inside it ("415 555 0132 4111 1111 1111 1111").
    let mut sep = None;
    let mut end = end;
    for (i, &b) in bytes.iter().enumerate().take(end).skip(start) {
        if b.is_ascii_digit() {
            continue;
        }
        if sep.is_some_and(|s| s != b)
            || card_layout_ends_at(bytes, start, i)
            || card_layout_starts_at(hay, i + 1)
        {
            end = i;
            break;
        }
        sep = Some(b);
    }
    let text = &hay[start..end];
    let whole = digits_of(text);
    if !continues_right(hay, end) && is_card_number(&whole) {
        return Some(end);
    }
    // A grouped number followed by more digits ("4111 1111 1111 1111 123", a card and its
    // code): try the longest run of whole groups that is a card on its own. Only groups of 3
    // to 6 digits extend a prefix, so a long digit run never yields a card-sized part of it.
    let mut best = None;
    let mut digits = String::new();
    let mut group_len = 0;
    for (i, b) in text.bytes().enumerate() {
        if b.is_ascii_digit() {
            digits.push(char::from(b));
            group_len += 1;
            continue;
        }
        let first = digits.len() == group_len;
        if !(3..=6).contains(&group_len) && !first {
            break;
        }
        if is_card_number(&digits) {
            best = Some(start + i);
        }
        if !(3..=6).contains(&group_len) {
            // An unbroken first run: it is the card or nothing.
            break;
        }
        group_len = 0;
    }
    best
}

fn is_card_number(digits: &str) -> bool {
    (13..=19).contains(&digits.len()) && digits.bytes().any(|b| b != b'0') && luhn_valid(digits)
}

fn validate_ipv6(hay: &str, start: usize, end: usize) -> Option<usize> {
    let after = char_at(hay, end);
    // "IPv6:2001:db8::1" and "2001:db8:::1" are alike at the candidate "2001:db8::1" and
    // "::1"; a colon right before a candidate is only a label's if a non-hex letter precedes it.
    let label_colon = char_before(hay, start) == Some(':')
        && (hay[..start - 1]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            || placeholder_ends_at(hay, start - 1));
    if word_like_before(hay, start)
        || label_colon
        || char_before(hay, start) == Some('.')
        || word_like_after(hay, end)
        || after == Some(':')
        || (after == Some('.') && word_like_after(hay, end + 1))
    {
        return None;
    }
    // The run may end in sentence punctuation: "connect to ::1." or "fe80::1: up".
    let mut text = hay[start..end].trim_end_matches('.');
    if text.ends_with(':') && !text.ends_with("::") {
        text = &text[..text.len() - 1];
    }
    let ok = text.len() <= 45
        && text.bytes().any(|b| b.is_ascii_digit())
        && text.parse::<Ipv6Addr>().is_ok();
    ok.then_some(start + text.len())
}

/// The digit count, parentheses and separators of an international or trunk-prefixed number.
fn phone_shape_ok(rule: Rule, text: &str) -> bool {
    let seps_consistent = || {
        let seps: Vec<u8> = text
            .bytes()
            .filter(|b| !b.is_ascii_digit() && *b != b'(' && *b != b')')
            .collect();
        seps.windows(2).all(|w| w[0] == w[1])
    };
    let mut digits = digits_of(text);
    if rule == Rule::PhoneIntl {
        if text.starts_with("00") {
            digits.drain(..2);
        }
        let count = digits.len() - usize::from(text.contains("(0)"));
        (8..=15).contains(&count) && text.matches('(').count() == text.matches(')').count()
    } else {
        (9..=12).contains(&digits.len())
            && text.starts_with('(') == text.contains(')')
            && seps_consistent()
    }
}

/// Context every phone pattern needs: not part of a longer number, a word, a price or an
/// international number.
fn phone_context_ok(hay: &str, start: usize, end: usize) -> bool {
    let time_like = char_at(hay, end) == Some(':') && digit_like_after(hay, end + 1);
    !continues_left(hay, start)
        && !continues_right(hay, end)
        && !matches!(
            char_before(hay, start),
            Some('+' | '$' | '€' | '£' | '¥' | '#' | '(')
        )
        && !time_like
        && char_at(hay, end) != Some('%')
}

fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The Luhn check of card numbers.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The Verhoeff check of Aadhaar numbers.
fn verhoeff_valid(digits: &str) -> bool {
    let mut check = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        let d = usize::from(b - b'0');
        check = VERHOEFF_D[check][VERHOEFF_P[i % 8][d]];
    }
    check == 0
}

const VERHOEFF_D: [[usize; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

const VERHOEFF_P: [[usize; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

fn char_before(hay: &str, i: usize) -> Option<char> {
    hay.get(..i)?.chars().next_back()
}

fn char_at(hay: &str, i: usize) -> Option<char> {
    hay.get(i..)?.chars().next()
}

fn placeholder_starts_at(hay: &str, i: usize) -> bool {
    hay.get(i..).is_some_and(|rest| {
        PiiKind::ALL
            .iter()
            .any(|k| rest.starts_with(k.placeholder()))
    })
}

fn placeholder_ends_at(hay: &str, i: usize) -> bool {
    hay.get(..i)
        .is_some_and(|head| PiiKind::ALL.iter().any(|k| head.ends_with(k.placeholder())))
}

// The neighbour tests below treat a placeholder like a word made of digits: whatever a
// finding's own characters did to its neighbours' validity, its placeholder does too, so
// redacting twice changes nothing.

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn word_like_before(hay: &str, i: usize) -> bool {
    char_before(hay, i).is_some_and(is_word_char) || placeholder_ends_at(hay, i)
}

fn word_like_after(hay: &str, i: usize) -> bool {
    char_at(hay, i).is_some_and(is_word_char) || placeholder_starts_at(hay, i)
}

fn digit_like_before(hay: &str, i: usize) -> bool {
    char_before(hay, i).is_some_and(|c| c.is_ascii_digit()) || placeholder_ends_at(hay, i)
}

fn digit_like_after(hay: &str, i: usize) -> bool {
    char_at(hay, i).is_some_and(|c| c.is_ascii_digit()) || placeholder_starts_at(hay, i)
}

/// Separators that join digit groups into one number.
fn is_joiner(c: char) -> bool {
    matches!(c, ' ' | '-' | '.')
}

/// Whether the number starting at `i` is the tail of a longer number or of a word.
fn continues_left(hay: &str, i: usize) -> bool {
    word_like_before(hay, i)
        || char_before(hay, i)
            .is_some_and(|c| is_joiner(c) && digit_like_before(hay, i - 1) && !splits(hay, i - 1))
}

/// Whether the number ending at `i` goes on as a longer number or a word.
fn continues_right(hay: &str, i: usize) -> bool {
    word_like_after(hay, i)
        || char_at(hay, i)
            .is_some_and(|c| is_joiner(c) && digit_like_after(hay, i + 1) && !splits(hay, i))
}

// How digit runs are cut into numbers. A run of digit groups joined by single joiners
// (`415-555-0132 4111 1111 1111 1111`) is one number unless a joiner *splits* it. A joiner
// splits the run when
// - it differs from the joiner just before the group on its left or just after the group on
//   its right (a change of separator: `415-555-0132 4111…`, `4111-…-1111 5555-…`);
// - it is a space or a dash next to a group of `LONG_GROUP` or more digits (no grouped format
//   has such a group, so it is a whole number: `4111111111111111 5555555555554444`);
// - a card in a standard layout (4-4-4-4, 4-6-5, 4-6-4, one separator, Luhn-valid) ends right
//   before it, or starts right after it and ends the run (`4111 1111 1111 1111 5555 5555 5555
//   4444`, `415 555 0132 4111 1111 1111 1111`).
// Each rule reads a bounded neighbourhood (at most a card layout and a group to either side),
// so a candidate still depends only on the text near it. Placeholders never split: a rule
// that would have to look into one says no, so a redacted text splits at most where the
// original did, and redacting twice changes nothing.

/// A group this long is a whole number, never one group of a grouped number.
const LONG_GROUP: usize = 9;

/// Group lengths of the standard card layouts, left to right.
const CARD_LAYOUTS: [&[usize]; 3] = [&[4, 4, 4, 4], &[4, 6, 5], &[4, 6, 4]];

/// Whether the joiner at byte `j` (between digit-like neighbours) separates two numbers.
fn splits(hay: &str, j: usize) -> bool {
    splits_by_shape(hay.as_bytes(), j)
        || card_layout_ends_at(hay.as_bytes(), 0, j)
        || card_layout_starts_at(hay, j + 1)
}

/// The rules of [`splits`] that look only at the two groups around the joiner and the joiners
/// next to them: a change of separator and a long group.
fn splits_by_shape(bytes: &[u8], j: usize) -> bool {
    let joiner = bytes[j];
    let left = digits_back(bytes, j, LONG_GROUP);
    let right = digits_fwd(bytes, j + 1, LONG_GROUP);
    if joiner != b'.' && (left >= LONG_GROUP || right >= LONG_GROUP) {
        return true;
    }
    let differs = |k: Option<u8>| k.is_some_and(|k| k != joiner);
    let before = (left > 0 && left < LONG_GROUP)
        .then(|| joiner_before(bytes, j - left))
        .flatten();
    let after = (right > 0 && right < LONG_GROUP)
        .then(|| joiner_after(bytes, j + 1 + right))
        .flatten();
    differs(before) || differs(after)
}

/// How many ASCII digits end at `end` (counting back, at most `cap`).
fn digits_back(bytes: &[u8], end: usize, cap: usize) -> usize {
    bytes[..end]
        .iter()
        .rev()
        .take(cap)
        .take_while(|b| b.is_ascii_digit())
        .count()
}

/// How many ASCII digits start at `start` (at most `cap`).
fn digits_fwd(bytes: &[u8], start: usize, cap: usize) -> usize {
    bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take(cap)
        .take_while(|b| b.is_ascii_digit())
        .count()
}

/// The joiner right before the group starting at `start`, if a digit precedes it (a
/// placeholder does not count: see the rules above).
fn joiner_before(bytes: &[u8], start: usize) -> Option<u8> {
    let j = start.checked_sub(1)?;
    let digit_before = j.checked_sub(1).is_some_and(|k| bytes[k].is_ascii_digit());
    (is_joiner(char::from(bytes[j])) && digit_before).then_some(bytes[j])
}

/// The joiner right after the group ending at `end`, if a digit follows it.
fn joiner_after(bytes: &[u8], end: usize) -> Option<u8> {
    let j = *bytes.get(end)?;
    let digit_after = bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
    (is_joiner(char::from(j)) && digit_after).then_some(j)
}

/// Whether the groups ending at `end` (exactly, and starting at or after `floor`) are a
/// Luhn-valid card in a standard layout.
fn card_layout_ends_at(bytes: &[u8], floor: usize, end: usize) -> bool {
    CARD_LAYOUTS.iter().any(|layout| {
        let mut pos = end;
        let mut sep = None;
        for (n, &len) in layout.iter().rev().enumerate() {
            if n > 0 {
                let Some(j) = pos.checked_sub(1) else {
                    return false;
                };
                if !matches!(bytes[j], b' ' | b'-') || sep.is_some_and(|s| s != bytes[j]) {
                    return false;
                }
                sep = Some(bytes[j]);
                pos = j;
            }
            if digits_back(bytes, pos, len + 1) != len || pos - len < floor {
                return false;
            }
            pos -= len;
        }
        layout_is_card(&bytes[pos..end])
    })
}

/// Whether the groups starting at `start` are a Luhn-valid card in a standard layout that ends
/// the run (nothing joined after it, or a joiner that [`splits_by_shape`]).
fn card_layout_starts_at(hay: &str, start: usize) -> bool {
    card_layout_len(hay.as_bytes(), start).is_some_and(|pos| {
        !char_at(hay, pos).is_some_and(|c| is_joiner(c) && digit_like_after(hay, pos + 1))
            || splits_by_shape(hay.as_bytes(), pos)
    })
}

/// The end of the Luhn-valid card in a standard layout that starts at `start`, if there is one.
fn card_layout_len(bytes: &[u8], start: usize) -> Option<usize> {
    CARD_LAYOUTS.iter().find_map(|layout| {
        let mut pos = start;
        let mut sep = None;
        for (n, &len) in layout.iter().enumerate() {
            if n > 0 {
                let &j = bytes.get(pos)?;
                if !matches!(j, b' ' | b'-') || sep.is_some_and(|s| s != j) {
                    return None;
                }
                sep = Some(j);
                pos += 1;
            }
            if digits_fwd(bytes, pos, len + 1) != len {
                return None;
            }
            pos += len;
        }
        layout_is_card(&bytes[start..pos]).then_some(pos)
    })
}

fn layout_is_card(text: &[u8]) -> bool {
    let digits: String = text
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    is_card_number(&digits)
}

#[cfg(test)]
mod tests;
