//! Profanity masking on [`rustrict`]: its trie of English profanity, slurs and their usual
//! disguises ("f*ck", "sh1t", "fuuuck", "f u c k", look-alike letters) and its list of innocent
//! words that contain bad ones ("Scunthorpe", "assistant", "cocktail").
//!
//! Two things are ours. First, rustrict's output is not the input with some letters starred: it
//! also strips accents and some invisible characters. So rustrict reads a *view* of the text
//! with exactly one character per kept input character (each non-ASCII character replaced by
//! what rustrict makes of it alone), the result is checked to line up with the view, and only
//! the positions rustrict starred are starred in the original text; everything else is left
//! byte for byte. Second, rustrict needs to see a whole phrase to tell "push it" from a
//! profanity, so the text is cut into *segments* at line ends, sentence ends and, failing
//! those, whitespace after [`SOFT_SEGMENT_CHARS`] characters (hard cut at
//! [`MAX_SEGMENT_CHARS`]), and each segment is masked on its own. The cut points depend only on
//! the text, so [`StreamMasker`] gives the same output as [`mask`] and holds back at most one
//! segment.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rustrict::{Censor, Trie, Type};

/// A masked text and how many words were masked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Masked {
    /// The text with each profane word replaced by as many asterisks as it has characters; the
    /// rest is byte for byte the input.
    pub text: String,
    /// How many profane words (runs of masked characters) were masked.
    pub count: u32,
}

/// A segment ends at whitespace once it is this long, so streams are not held back long.
pub const SOFT_SEGMENT_CHARS: usize = 96;

/// A segment never grows past this many characters, which bounds what a stream holds back
/// (at most `4 × MAX_SEGMENT_CHARS` bytes).
pub const MAX_SEGMENT_CHARS: usize = 256;

/// A sentence end (`.`, `!` or `?` then whitespace) ends a segment once it is this long; shorter
/// ones join the next sentence, so "f. u. c. k." stays in one piece.
const MIN_SENTENCE_CHARS: usize = 24;

/// Masks profanity in `text` with asterisks of the same length (in characters).
pub fn mask(text: &str) -> Masked {
    let mut out = Masked {
        text: String::with_capacity(text.len()),
        count: 0,
    };
    let mut segmenter = Segmenter::default();
    let mut start = 0;
    while let Some(end) = segmenter.feed(text, start) {
        out.count += mask_segment(&text[start..end], &mut out.text);
        start = end;
    }
    out.count += mask_segment(&text[start..], &mut out.text);
    out
}

/// Masks profanity in a text that arrives in chunks (a streamed model answer).
///
/// The concatenation of everything [`push`](Self::push) and [`finish`](Self::finish) return is
/// exactly [`mask`] of the concatenated chunks, however the text was split. A segment is
/// emitted as soon as its end arrives (a line end, a sentence end, whitespace after
/// [`SOFT_SEGMENT_CHARS`] characters or [`MAX_SEGMENT_CHARS`] characters).
#[derive(Debug, Default)]
pub struct StreamMasker {
    /// The current segment, not yet emitted.
    pending: String,
    /// How much of `pending` the segmenter has seen.
    scanned: usize,
    segmenter: Segmenter,
    count: u32,
}

impl StreamMasker {
    /// A masker at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk and returns the masked text that is now final (possibly empty).
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let mut out = String::new();
        while let Some(end) = self.segmenter.feed(&self.pending, self.scanned) {
            self.count += mask_segment(&self.pending[..end], &mut out);
            self.pending.drain(..end);
            self.scanned = 0;
        }
        self.scanned = self.pending.len();
        out
    }

    /// Ends the stream and returns the rest of the masked text. Words masked in this rest are
    /// not counted in `self`; use [`finish_masked`](Self::finish_masked) to keep the count.
    pub fn finish(self) -> String {
        self.finish_masked().text
    }

    /// Ends the stream, returning the rest of the masked text and the count of the whole
    /// stream.
    pub fn finish_masked(mut self) -> Masked {
        let mut text = String::new();
        self.count += mask_segment(&self.pending, &mut text);
        Masked {
            text,
            count: self.count,
        }
    }

    /// How many words the text emitted so far had masked.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Finds segment ends; its state is the current segment's length and last character.
#[derive(Debug, Default, Clone)]
struct Segmenter {
    chars: usize,
    prev: Option<char>,
}

impl Segmenter {
    /// Reads `text[from..]` as the continuation of the current segment and returns the byte
    /// offset just past the segment's end, if it ends there; the segmenter then starts afresh.
    fn feed(&mut self, text: &str, from: usize) -> Option<usize> {
        for (i, c) in text[from..].char_indices() {
            self.chars += 1;
            let prev = self.prev.replace(c);
            let sentence_end =
                self.chars >= MIN_SENTENCE_CHARS && matches!(prev, Some('.' | '!' | '?'));
            let ends = c == '\n'
                || self.chars >= MAX_SEGMENT_CHARS
                || c.is_whitespace() && (sentence_end || self.chars >= SOFT_SEGMENT_CHARS);
            if ends {
                *self = Segmenter::default();
                return Some(from + i + c.len_utf8());
            }
        }
        None
    }
}

/// What rustrict made of one character of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Keep,
    /// An asterisk that was already in the text (self-censoring such as "f*ck").
    Star,
    Masked,
}

/// What is masked: moderate or worse profanity and slurs, severe sexual terms and severe
/// insults. Mild words ("damn", "hell", "crap") and merely sexual ones ("sex", "nude") are left.
fn threshold() -> Type {
    (Type::PROFANE | Type::OFFENSIVE) & Type::MODERATE_OR_HIGHER
        | Type::SEXUAL & Type::SEVERE
        | Type::MEAN & Type::SEVERE
}

/// Masks one segment into `out` and returns how many words it masked.
fn mask_segment(segment: &str, out: &mut String) -> u32 {
    let chars: Vec<char> = segment.chars().collect();
    let codes = code_chars(&chars);
    let mut cache = BTreeMap::new();
    // The faithful view keeps what rustrict would make of accented and look-alike letters; if
    // it does not line up (a rare composition across characters), the ASCII view always does.
    let marks = [false, true].into_iter().find_map(|ascii_only| {
        let (view, map) = build_view(&chars, &codes, ascii_only, &mut cache);
        let view_marks = censor_view(&view)?;
        let mut marks = vec![None; chars.len()];
        for (mark, &i) in view_marks.into_iter().zip(&map) {
            marks[i] = Some(mark);
        }
        Some(marks)
    });
    let Some(marks) = marks else {
        // Unreachable in practice (ASCII maps to itself); leaving the text is the only choice
        // that keeps it intact.
        out.push_str(segment);
        return 0;
    };
    // A character rustrict drops (a combining accent, a direction override) goes with the
    // letter before it.
    let mut resolved = Vec::with_capacity(chars.len());
    let mut previous = Mark::Keep;
    for (mark, &code) in marks.into_iter().zip(&codes) {
        let mark = mark.unwrap_or(if previous == Mark::Masked {
            Mark::Masked
        } else {
            Mark::Keep
        });
        // A code is never part of a word, even if rustrict read across it.
        let mark = if code { Mark::Keep } else { mark };
        resolved.push(mark);
        previous = mark;
    }
    trim_to_words(&chars, &mut resolved);
    let mut count = 0;
    let mut run_masked = false;
    for (&c, mark) in chars.iter().zip(resolved) {
        match mark {
            Mark::Keep => {
                count += u32::from(run_masked);
                run_masked = false;
                out.push(c);
            }
            Mark::Star => out.push(c),
            Mark::Masked => {
                run_masked = true;
                out.push('*');
            }
        }
    }
    count + u32::from(run_masked)
}

/// rustrict reads through separators (to catch "f u c k") and, when the next word could begin
/// a longer match, marks the separator and that word's first letters too ("fuck, hello" would
/// become "*******ello"). Only profane words are masked: a word whose masked part is a prefix
/// reached across a masked separator is unmasked (and then what is left of the match before it
/// must be profane on its own), and so is a masked separator that does not lead to a masked
/// letter.
fn trim_to_words(chars: &[char], marks: &mut [Mark]) {
    let is_letter = |c: char| c.is_alphanumeric() || c == '*';
    let mut start = 0;
    while start < chars.len() {
        if !is_letter(chars[start]) {
            start += 1;
            continue;
        }
        let end = (start..chars.len())
            .find(|&i| !is_letter(chars[i]))
            .unwrap_or(chars.len());
        let masked_prefix = (start..end)
            .take_while(|&i| marks[i] == Mark::Masked)
            .count();
        let reached_across = start > 0 && marks[start - 1] == Mark::Masked;
        let partial = masked_prefix > 0 && start + masked_prefix < end;
        let rest_unmasked = (start + masked_prefix..end).all(|i| marks[i] != Mark::Masked);
        if reached_across && partial && rest_unmasked {
            for mark in &mut marks[start..start + masked_prefix] {
                *mark = Mark::Keep;
            }
            // The match began in the words before; what is left of it must be profane on its
            // own ("Ann Alcock" was read as "anal").
            let mut from = start;
            while from > 0 && marks[from - 1] != Mark::Keep {
                from -= 1;
            }
            let left: String = chars[from..start].iter().collect();
            if mask(left.trim_end()).count == 0 {
                for mark in &mut marks[from..start] {
                    if *mark == Mark::Masked {
                        *mark = Mark::Keep;
                    }
                }
            }
        }
        start = end;
    }
    // Right to left, so that a run of separators sees whether it leads to a masked letter.
    let mut leads_to_masked = false;
    for i in (0..chars.len()).rev() {
        if is_letter(chars[i]) {
            leads_to_masked = marks[i] == Mark::Masked;
        } else if marks[i] == Mark::Masked && !leads_to_masked {
            marks[i] = Mark::Keep;
        }
    }
}

/// Which characters belong to a *code* (an order number, a licence key) rather than a word.
///
/// rustrict reads digits as look-alike letters (`4` as `a`, `5` as `s`, `1` as `i`), which
/// catches `sh1t` but also masks `415-555` ("ass"), `A55-204`, `4SS5KQ` and every fourth line
/// of ordinary support text with order numbers (`docs/guardrails.md`). A word (a run of letters
/// and digits) is a code when it has a digit and either no lower-case letter or at least as
/// many digits as letters: `415`, `A55`, `4AS5`, `B07XJ8C8F5`, `4a55e1f`. A code is shown to
/// rustrict as spaces, so it neither spells a word nor joins the words around it (rustrict
/// reads across separators: `4AS5-5HX1-T0P2` held "shit"), and it is never masked. Lower-case
/// words with a few digits (`sh1t`, `a55hole`, `b1tch`) are still read as disguises;
/// `SH1T`, `5h1t` and `FUCK2024` are read as codes and missed.
fn code_chars(chars: &[char]) -> Vec<bool> {
    let mut codes = vec![false; chars.len()];
    let mut start = 0;
    while start < chars.len() {
        if !chars[start].is_alphanumeric() {
            start += 1;
            continue;
        }
        let end = (start..chars.len())
            .find(|&i| !chars[i].is_alphanumeric())
            .unwrap_or(chars.len());
        let word = &chars[start..end];
        let digits = word.iter().filter(|c| c.is_ascii_digit()).count();
        let letters = word.iter().filter(|c| c.is_alphabetic()).count();
        let lower = word.iter().any(|c| c.is_lowercase());
        if digits > 0 && (!lower || digits >= letters) {
            codes[start..end].fill(true);
        }
        start = end;
    }
    codes
}

/// The text rustrict reads: one character per input character it keeps, and for each the index
/// of that input character. Codes ([`code_chars`]) are shown as spaces.
fn build_view(
    chars: &[char],
    codes: &[bool],
    ascii_only: bool,
    cache: &mut BTreeMap<char, Option<char>>,
) -> (String, Vec<usize>) {
    let mut view = String::with_capacity(chars.len());
    let mut map = Vec::with_capacity(chars.len());
    for (i, (&c, &code)) in chars.iter().zip(codes).enumerate() {
        let shown = if code {
            Some(' ')
        } else if c.is_ascii() {
            Some(c)
        } else if ascii_only {
            Some(' ')
        } else {
            *cache.entry(c).or_insert_with(|| alone(c))
        };
        if let Some(shown) = shown {
            view.push(shown);
            map.push(i);
        }
    }
    (view, map)
}

/// What rustrict makes of a character on its own: itself, its base letter, or nothing.
fn alone(c: char) -> Option<char> {
    let mut buf = [0; 4];
    let seen = Censor::from_str(c.encode_utf8(&mut buf))
        .with_censor_threshold(Type::NONE)
        .censor();
    let mut it = seen.chars();
    match (it.next(), it.next()) {
        (None, _) => None,
        (Some(one), None) => Some(one),
        // Several characters cannot line up with one; a space keeps the words apart.
        (Some(_), Some(_)) => Some(' '),
    }
}

/// Common surnames that contain a listed word and that rustrict's own list of innocent words
/// lacks, so it masked them (`Hi Ann Alcock` became `Hi **********`): found by the support-text
/// corpus (`testdata/support_corpus.txt`, `docs/guardrails.md`). A name that *is* a listed word
/// (`Dick`) cannot be told from the insult and stays masked.
const SURNAMES: [&str; 16] = [
    "alcock",
    "allcock",
    "assante",
    "dickens",
    "dickerson",
    "dickinson",
    "dickson",
    "fuchs",
    "glasscock",
    "hancock",
    "hiscock",
    "hitchcock",
    "hoare",
    "kuntz",
    "laycock",
    "pocock",
];

/// rustrict's lexicon with [`SURNAMES`] added as innocent words; built once.
static TRIE: LazyLock<Trie> = LazyLock::new(|| {
    let mut trie = Trie::default();
    for name in SURNAMES {
        trie.set(name, Type::NONE);
    }
    trie
});

/// Runs rustrict on the view; `None` if its output does not line up with the view.
fn censor_view(view: &str) -> Option<Vec<Mark>> {
    let censored = Censor::from_str(view)
        .with_trie(&TRIE)
        .with_censor_threshold(threshold())
        .with_censor_first_character_threshold(Type::ANY)
        .censor();
    let mut marks = Vec::with_capacity(view.len());
    let mut seen = censored.chars();
    for v in view.chars() {
        let c = seen.next()?;
        marks.push(match (v, c) {
            ('*', _) => Mark::Star,
            (_, '*') => Mark::Masked,
            _ if c == v => Mark::Keep,
            _ => return None,
        });
    }
    seen.next().is_none().then_some(marks)
}

#[cfg(test)]
mod tests;
