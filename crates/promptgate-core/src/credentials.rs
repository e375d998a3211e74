//! Client secrets and access tokens: 256-bit random values, stored only as SHA-256 hashes.
//! And the one rule that keeps other people's secrets (a provider's API key) out of text the
//! gateway passes on: [`mask_secrets`].
//!
//! A slow password hash would add nothing here: guessing a 256-bit random value is hopeless
//! whatever the hash, and the token check runs on every request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh 256-bit secret, URL-safe base64 without padding (43 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a secret or token, as lowercase hex: the only form that is stored.
pub fn hash_secret(secret: &str) -> String {
    hex_lower(&Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time.
pub fn secret_matches(stored_hash: &str, presented: &str) -> bool {
    let presented_hash = hash_secret(presented);
    presented_hash
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// The shortest run of a secret's characters that [`mask_secrets`] masks: any piece of a key at
/// least this long is treated as the key. Providers and proxies echo *parts* of a rejected key
/// ("sk-proj-…abcd", the first 8 characters, the key cut by a line wrap), and eight
/// characters of a random key are already worth guessing from.
pub const SECRET_FRAGMENT_LEN: usize = 8;

/// What [`mask_secrets`] puts in place of each masked run.
pub const REDACTED: &str = "[redacted]";

/// `text` with every piece of any of `secrets` masked, so that it can be passed on (to a caller,
/// a log line, a telemetry record).
///
/// A run of `text` is masked when it equals a substring of a secret of at least
/// [`SECRET_FRAGMENT_LEN`] bytes (or the whole secret, for a secret shorter than that),
/// compared without regard to ASCII case and skipping whitespace in `text` (a key broken over
/// lines). The secret's percent-encoded and JSON-escaped forms count as the secret too. Each
/// maximal masked run becomes one [`REDACTED`].
///
/// Guarantee (checked by property tests): no run of the result matches in that sense. In the
/// pathological case where the marker itself would complete a piece of a secret (a key that
/// contains `[redacted]`-like text), the whole text is withheld and the result is empty.
pub fn mask_secrets(text: &str, secrets: &[&str]) -> String {
    let needles = needles(secrets);
    if needles.is_empty() {
        return text.to_owned();
    }
    let mut current = text.to_owned();
    // One pass masks everything that was there; a second pass is needed only when a marker
    // next to left-over text completes a piece of a secret. Past that, the text is withheld.
    for _ in 0..2 {
        let covered = covered_bytes(&current, &needles);
        if !covered.iter().any(|c| *c) {
            return current;
        }
        current = replace_covered(&current, &covered);
    }
    if covered_bytes(&current, &needles).iter().any(|c| *c) {
        String::new()
    } else {
        current
    }
}

/// Whether any piece of any of `secrets` appears in `text`, in the sense of [`mask_secrets`].
pub fn contains_secret_fragment(text: &str, secrets: &[&str]) -> bool {
    let needles = needles(secrets);
    covered_bytes(text, &needles).iter().any(|c| *c)
}

/// A secret's forms to look for, lower-cased, without whitespace, each with the shortest run
/// that counts as a match.
struct Needle {
    bytes: Vec<u8>,
    min_run: usize,
}

fn needles(secrets: &[&str]) -> Vec<Needle> {
    let mut out: Vec<Needle> = Vec::new();
    for secret in secrets {
        for form in [
            (*secret).to_owned(),
            percent_encoded(secret),
            json_escaped(secret),
        ] {
            let bytes: Vec<u8> = form
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .map(|b| b.to_ascii_lowercase())
                .collect();
            if bytes.is_empty() || out.iter().any(|n| n.bytes == bytes) {
                continue;
            }
            let min_run = bytes.len().min(SECRET_FRAGMENT_LEN);
            out.push(Needle { bytes, min_run });
        }
    }
    out
}

/// Which bytes of `text` belong to a run that matches a piece of a needle. Whitespace between
/// matched bytes is covered with them.
fn covered_bytes(text: &str, needles: &[Needle]) -> Vec<bool> {
    let raw = text.as_bytes();
    let mut covered = vec![false; raw.len()];
    // The text without whitespace, lower-cased, with each byte's place in `text`.
    let (folded, places): (Vec<u8>, Vec<usize>) = raw
        .iter()
        .enumerate()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .map(|(i, b)| (b.to_ascii_lowercase(), i))
        .unzip();
    for needle in needles {
        let m = needle.bytes.len();
        // `next[j]`: the length of the common run of `folded[i + 1..]` and `needle[j..]`;
        // computed from the end of the text, one row per text position (longest common
        // substring, O(text × needle)).
        let mut next = vec![0usize; m + 1];
        let mut row = vec![0usize; m + 1];
        for i in (0..folded.len()).rev() {
            let mut longest = 0;
            for j in (0..m).rev() {
                row[j] = if folded[i] == needle.bytes[j] {
                    next[j + 1] + 1
                } else {
                    0
                };
                longest = longest.max(row[j]);
            }
            if longest >= needle.min_run {
                for place in &mut covered[places[i]..=places[i + longest - 1]] {
                    *place = true;
                }
            }
            std::mem::swap(&mut next, &mut row);
        }
    }
    covered
}

/// `text` with each maximal run of characters that have a covered byte replaced by one marker.
fn replace_covered(text: &str, covered: &[bool]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for (at, ch) in text.char_indices() {
        if covered[at..at + ch.len_utf8()].iter().any(|c| *c) {
            if !in_run {
                out.push_str(REDACTED);
                in_run = true;
            }
        } else {
            out.push(ch);
            in_run = false;
        }
    }
    out
}

/// The secret as it appears in a URL: every byte but RFC 3986's unreserved ones as `%XX`.
fn percent_encoded(secret: &str) -> String {
    let mut out = String::with_capacity(secret.len());
    for byte in secret.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// The secret as it appears inside a JSON string.
fn json_escaped(secret: &str) -> String {
    let mut out = String::with_capacity(secret.len());
    for ch in secret.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = HEX_DIGITS;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_verify_only_themselves() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        let stored = hash_secret(&a);
        assert_eq!(stored.len(), 64);
        assert!(secret_matches(&stored, &a));
        assert!(!secret_matches(&stored, &b));
        assert!(!secret_matches(&stored, ""));
    }

    const KEY: &str = "sk-proj-Zx81kQmP0aLr5TyU2wEe9";

    #[test]
    fn provider_error_text_hides_key_prefixes_suffixes_and_middles() {
        let cases = [
            // The whole key, its first and last 8 characters, a piece from the middle.
            format!("invalid key {KEY}"),
            format!("invalid key {}…", &KEY[..8]),
            format!("key ending in {}", &KEY[KEY.len() - 8..]),
            format!("got ***{}***", &KEY[9..17]),
            // Upper-cased, wrapped over two lines, percent-encoded in a URL.
            format!("KEY {}", KEY.to_ascii_uppercase()),
            format!("key {}\n  {}", &KEY[..12], &KEY[12..]),
            format!("url ?key={}", &KEY[..10]),
        ];
        for text in &cases {
            let masked = mask_secrets(text, &[KEY]);
            assert!(masked.contains(REDACTED), "{text:?} -> {masked:?}");
            assert!(!contains_secret_fragment(&masked, &[KEY]), "{masked:?}");
            for start in 0..=KEY.len() - SECRET_FRAGMENT_LEN {
                let piece = &KEY[start..start + SECRET_FRAGMENT_LEN];
                assert!(!masked.contains(piece), "{piece:?} left in {masked:?}");
            }
        }
        // Seven characters are not a piece; the text around a masked piece stays.
        assert_eq!(mask_secrets("sk-proj", &[KEY]), "sk-proj");
        assert_eq!(
            mask_secrets(&format!("bad key {KEY}; see the docs"), &[KEY]),
            "bad key [redacted]; see the docs"
        );
        // Several secrets; a short one only as a whole.
        assert_eq!(
            mask_secrets("a hunter2 and Zx81kQmP0aLr", &[KEY, "hunter2"]),
            "a [redacted] and [redacted]"
        );
        assert_eq!(mask_secrets("nothing here", &[]), "nothing here");
        assert_eq!(mask_secrets("nothing here", &[""]), "nothing here");
    }

    #[test]
    fn encoded_forms_of_a_key_are_masked() {
        let key = "ab/cd+ef=gh\"ij";
        let percent = "ab%2Fcd%2Bef%3Dgh%22ij";
        let json = "ab\\/cd+ef=gh\\\"ij";
        for text in [percent, json] {
            let masked = mask_secrets(&format!("x {text} y"), &[key]);
            assert_eq!(masked, "x [redacted] y", "{text}");
        }
    }

    #[test]
    fn a_marker_that_would_complete_a_key_withholds_the_text() {
        // A key made of the marker's own characters: masking must not rebuild a piece of it.
        let key = "[redacted][redacted]";
        let masked = mask_secrets("see [redacted][redacted] here", &[key]);
        assert!(!contains_secret_fragment(&masked, &[key]), "{masked:?}");
        let key = "ted]abcdefgh";
        let masked = mask_secrets("x abcdefgh y ted]abcd", &[key]);
        assert!(!contains_secret_fragment(&masked, &[key]), "{masked:?}");
    }

    proptest::proptest! {
        #[test]
        fn no_piece_of_a_key_survives_masking(
            key in "[A-Za-z0-9_\\-\\[\\]]{1,40}",
            before in "[ -~\n]{0,40}",
            after in "[ -~\n]{0,40}",
            start in 0usize..40,
            len in 8usize..40,
        ) {
            let start = start.min(key.len());
            let end = (start + len).min(key.len());
            let text = format!("{before}{}{after}", &key[start..end]);
            let masked = mask_secrets(&text, &[&key]);
            proptest::prop_assert!(!contains_secret_fragment(&masked, &[&key]), "{:?}", masked);
            let shortest = key.len().min(SECRET_FRAGMENT_LEN);
            for from in 0..=key.len() - shortest {
                let piece = &key[from..from + shortest];
                proptest::prop_assert!(!masked.contains(piece), "{:?} in {:?}", piece, masked);
            }
        }

        #[test]
        fn text_without_a_piece_of_the_key_is_unchanged(
            text in "[ -~\n]{0,80}",
        ) {
            // Keys of a character the text cannot hold.
            let key = "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}";
            proptest::prop_assert_eq!(mask_secrets(&text, &[key]), text);
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
