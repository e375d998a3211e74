//! Replaying the log: checking every link of the chain and computing the Merkle root of what was
//! read, one entry at a time, in constant memory per entry (the root accumulator keeps one hash
//! per level of the tree).
//!
//! The same verifier serves the gateway (`GET …/audit-logs/verify`), the CLI on an export file or
//! a database, and the SDK, so that every one of them names the same first bad sequence.

use crate::canonical::to_canonical_string;
use crate::entry::{GENESIS_HASH, chain_hash};
use crate::merkle::{self, Hash};
use serde_json::Value;

/// Why an entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The entry is not a JSON object with the contract's members.
    #[error("entry {sequence} is malformed: {reason}")]
    Malformed {
        /// The sequence expected at this position.
        sequence: u64,
        /// What is wrong.
        reason: String,
    },
    /// The entry at this position has another sequence: an entry is missing, repeated or
    /// inserted.
    #[error("expected sequence {expected} but found {found}")]
    OutOfSequence {
        /// The sequence that should be here.
        expected: u64,
        /// The sequence found.
        found: u64,
    },
    /// `prevHash` is not the previous entry's hash.
    #[error("entry {sequence}: prevHash does not match the hash of the entry before it")]
    BrokenLink {
        /// The entry.
        sequence: u64,
    },
    /// The stored `hash` is not the hash of the entry's content.
    #[error("entry {sequence}: its content does not hash to its stored hash (it was edited)")]
    HashMismatch {
        /// The entry.
        sequence: u64,
    },
}

impl ChainBreak {
    /// The first sequence that does not verify.
    pub fn sequence(&self) -> u64 {
        match self {
            ChainBreak::Malformed { sequence, .. }
            | ChainBreak::BrokenLink { sequence }
            | ChainBreak::HashMismatch { sequence } => *sequence,
            ChainBreak::OutOfSequence { expected, .. } => *expected,
        }
    }
}

/// The RFC 6962 root of a growing list of leaves, kept as the roots of its perfect subtrees
/// (the binary decomposition of the size), so appending and reading the root need no leaves.
#[derive(Debug, Clone, Default)]
pub struct RootAccumulator {
    size: u64,
    /// Perfect-subtree roots, largest (leftmost) first.
    stack: Vec<Hash>,
}

impl RootAccumulator {
    /// Appends the next leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.stack.push(leaf);
        self.size += 1;
        let mut size = self.size;
        while size & 1 == 0 {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                break;
            };
            self.stack.push(merkle::node_hash(&left, &right));
            size >>= 1;
        }
    }

    /// How many leaves were pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the tree of every leaf pushed so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let Some(last) = subtrees.next() else {
            return merkle::empty_root();
        };
        subtrees.fold(*last, |right, left| merkle::node_hash(left, &right))
    }
}

/// The outcome of replaying a log (the contract's `verify` answer, plus the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// How many entries were read.
    pub entries: u64,
    /// The last entry's sequence as read (0 for an empty log).
    pub head_sequence: u64,
    /// The last entry's stored hash (64 zeros for an empty log).
    pub head_hash: Hash,
    /// The Merkle root over the entries as read.
    pub root_hash: Hash,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
}

impl ChainReport {
    /// Whether every entry verified.
    pub fn is_valid(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Replays entries in log order (the served form: the entry object with its `hash`).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    entries: u64,
    prev_hash: Hash,
    head_sequence: u64,
    roots: RootAccumulator,
    first_break: Option<ChainBreak>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            entries: 0,
            prev_hash: GENESIS_HASH,
            head_sequence: 0,
            roots: RootAccumulator::default(),
            first_break: None,
        }
    }
}

impl ChainVerifier {
    /// A verifier at the start of the log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next entry. After the first break the remaining entries still count and
    /// still feed the root (so the report describes what is stored), but are not judged.
    pub fn push(&mut self, entry: &Value) {
        let expected = self.entries + 1;
        self.entries = expected;
        let (leaf, stored_hash, found_sequence, result) = check(entry, expected, &self.prev_hash);
        self.roots.push(leaf);
        self.head_sequence = found_sequence.unwrap_or(expected);
        if let Err(problem) = result
            && self.first_break.is_none()
        {
            self.first_break = Some(problem);
        }
        self.prev_hash = stored_hash;
    }

    /// The Merkle root over the entries pushed so far (what the leaves *are*, not what they
    /// should be).
    pub fn root(&self) -> Hash {
        self.roots.root()
    }

    /// How many entries were pushed.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Whether no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The report so far.
    pub fn report(&self) -> ChainReport {
        ChainReport {
            entries: self.entries,
            head_sequence: self.head_sequence,
            head_hash: self.prev_hash,
            root_hash: self.roots.root(),
            first_break: self.first_break.clone(),
        }
    }
}

/// The leaf hash, the stored hash (for the next link), the sequence found, and the verdict.
fn check(
    entry: &Value,
    expected: u64,
    prev_hash: &Hash,
) -> (Hash, Hash, Option<u64>, Result<(), ChainBreak>) {
    let malformed = |reason: &str| ChainBreak::Malformed {
        sequence: expected,
        reason: reason.to_owned(),
    };
    let Some(object) = entry.as_object() else {
        let leaf = merkle::leaf_hash(to_canonical_string(entry).as_bytes());
        return (leaf, [0; 32], None, Err(malformed("not a JSON object")));
    };
    let mut unhashed = object.clone();
    let stored_hash_text = unhashed.remove("hash");
    let body = to_canonical_string(&Value::Object(unhashed));
    let leaf = merkle::leaf_hash(body.as_bytes());
    let stored_hash = stored_hash_text
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|hex| merkle::from_hex(hex).ok());
    let found_sequence = object.get("sequence").and_then(Value::as_u64);
    let verdict = (|| {
        let stored =
            stored_hash.ok_or_else(|| malformed("hash is missing or not 64 hex digits"))?;
        let found = found_sequence.ok_or_else(|| malformed("sequence is missing"))?;
        if found != expected {
            return Err(ChainBreak::OutOfSequence { expected, found });
        }
        let prev = object
            .get("prevHash")
            .and_then(Value::as_str)
            .and_then(|hex| merkle::from_hex(hex).ok())
            .ok_or_else(|| malformed("prevHash is missing or not 64 hex digits"))?;
        if prev != *prev_hash {
            return Err(ChainBreak::BrokenLink { sequence: expected });
        }
        if chain_hash(&prev, body.as_bytes()) != stored {
            return Err(ChainBreak::HashMismatch { sequence: expected });
        }
        Ok(())
    })();
    (
        leaf,
        stored_hash.unwrap_or([0; 32]),
        found_sequence,
        verdict,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::AuditDraft;
    use proptest::prelude::*;
    use serde_json::json;

    fn log(n: u64) -> Vec<Value> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|sequence| {
                let draft = AuditDraft::new(
                    time::OffsetDateTime::now_utc(),
                    "c1",
                    "CREATE",
                    None,
                    json!({"n": sequence}),
                );
                let sealed = draft.seal(sequence, &prev);
                prev = sealed.hash;
                sealed.to_value()
            })
            .collect()
    }

    fn verify(entries: &[Value]) -> ChainReport {
        let mut verifier = ChainVerifier::new();
        entries.iter().for_each(|e| verifier.push(e));
        verifier.report()
    }

    fn leaves(entries: &[Value]) -> Vec<Hash> {
        entries
            .iter()
            .map(|e| {
                let mut o = e.as_object().expect("object").clone();
                o.remove("hash");
                merkle::leaf_hash(to_canonical_string(&Value::Object(o)).as_bytes())
            })
            .collect()
    }

    #[test]
    fn an_untouched_log_verifies_and_its_root_is_the_merkle_root() {
        for n in [0, 1, 2, 3, 7, 8, 9, 33] {
            let entries = log(n);
            let report = verify(&entries);
            assert!(report.is_valid(), "{n}: {:?}", report.first_break);
            assert_eq!(report.entries, n);
            assert_eq!(report.head_sequence, n);
            assert_eq!(report.root_hash, merkle::root(&leaves(&entries)));
        }
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut entries = log(5);
        entries[2]["details"] = json!({"n": 99});
        assert_eq!(
            verify(&entries).first_break,
            Some(ChainBreak::HashMismatch { sequence: 3 })
        );
    }

    #[test]
    fn an_edited_and_rehashed_entry_is_caught_at_the_next_link() {
        let mut entries = log(5);
        let mut forged = AuditDraft::new(
            time::OffsetDateTime::now_utc(),
            "mallory",
            "CREATE",
            None,
            json!({}),
        );
        forged.id = uuid::Uuid::nil();
        let prev = merkle::from_hex(entries[1]["hash"].as_str().expect("hash")).expect("hex");
        entries[2] = forged.seal(3, &prev).to_value();
        assert_eq!(
            verify(&entries).first_break,
            Some(ChainBreak::BrokenLink { sequence: 4 })
        );
    }

    #[test]
    fn a_removed_entry_names_the_missing_sequence() {
        let mut entries = log(6);
        entries.remove(3);
        let report = verify(&entries);
        assert_eq!(
            report.first_break,
            Some(ChainBreak::OutOfSequence {
                expected: 4,
                found: 5
            })
        );
        assert_eq!(report.first_break.map(|b| b.sequence()), Some(4));
    }

    #[test]
    fn a_malformed_entry_is_named() {
        let mut entries = log(3);
        entries[1] = json!("not an entry");
        assert_eq!(verify(&entries).first_break.map(|b| b.sequence()), Some(2));
        let mut entries = log(3);
        entries[2].as_object_mut().expect("object").remove("hash");
        assert_eq!(verify(&entries).first_break.map(|b| b.sequence()), Some(3));
    }

    proptest! {
        #[test]
        fn the_accumulator_matches_the_recursive_root(n in 0usize..300) {
            let leaves: Vec<Hash> = (0..n).map(|i| merkle::leaf_hash(&i.to_le_bytes())).collect();
            let mut acc = RootAccumulator::default();
            for leaf in &leaves { acc.push(*leaf); }
            prop_assert_eq!(acc.root(), merkle::root(&leaves));
            prop_assert_eq!(acc.size(), n as u64);
        }

        #[test]
        fn flipping_any_character_of_any_entry_is_detected(
            n in 1u64..12, pick in any::<prop::sample::Index>(), byte in any::<prop::sample::Index>()
        ) {
            let mut entries = log(n);
            let victim = pick.index(entries.len());
            let text = serde_json::to_string(&entries[victim]).expect("serialises");
            let mut bytes = text.into_bytes();
            let at = byte.index(bytes.len());
            bytes[at] ^= 0x01;
            // A flip that breaks the JSON itself is a malformed entry; either way it is named.
            entries[victim] = serde_json::from_slice(&bytes).unwrap_or(json!(null));
            let report = verify(&entries);
            let named = report.first_break.map(|b| b.sequence());
            // Flipping the low bit of a digit in `prevHash` of entry k breaks k; in `hash` it
            // breaks k + 1 (or k itself); a key flip or value flip breaks k.
            prop_assert!(named == Some(victim as u64 + 1) || named == Some(victim as u64 + 2),
                "flip at byte {} of entry {}: {:?}", at, victim + 1, named);
        }
    }
}
