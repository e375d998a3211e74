//! The checks an auditor runs, over nothing but entries (the served JSON), signed tree heads,
//! proofs and the gateway's public key:
//!
//! - [`verify_signed_head`]: the gateway's key signed this tree head.
//! - [`check_inclusion`]: this entry, re-hashed from its own content, is leaf `sequence − 1` of
//!   the tree a signed head commits to.
//! - [`check_consistency`]: the tree an old signed head commits to is a prefix of the tree a
//!   newer one commits to, i.e. nothing the old head covered was rewritten.
//! - [`LogVerifier`]: the hash chain of a whole log, and the Merkle root at each signed head's
//!   size, so that a log that was edited, cut short or rebuilt is caught and its first bad
//!   sequence named.
//!
//! These live here, not in the SDK or the gateway, so that the gateway's own
//! `GET …/audit-logs/verify`, `promptgate audit verify` on a database, an export or a gateway,
//! and the SDK all reach the same verdict with the same words. Callers holding the contract's
//! wire forms convert them first (the SDK does); everything here takes hashes already read.

use crate::canonical::to_canonical_string;
use crate::chain::{ChainBreak, ChainVerifier};
use crate::head::{self, HeadError, SignedTreeHead};
use crate::merkle::{self, Hash, ProofError};
use ed25519_dalek::VerifyingKey;
use serde_json::Value;

/// Why a check failed. Each variant says what was found to be wrong and, where one can be
/// named, the first sequence (entry) or tree size (signed head) concerned; the `Display` text is
/// what the gateway's `verify` answers as `reason`, so it is written for a human auditor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditCheckError {
    /// Replaying the log found a broken link: an entry edited, removed, inserted or reordered.
    #[error("{}", describe_break(.0))]
    Chain(ChainBreak),
    /// An entry could not be read at all (a line of an export that is not JSON, a database row
    /// that cannot be decoded).
    #[error("entry {sequence} cannot be read: {reason}")]
    Unreadable {
        /// The sequence expected at that position.
        sequence: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry's content does not hash to the Merkle leaf hash stored beside it, so the proofs
    /// the gateway serves for it would be about other content.
    #[error("entry {sequence}: its stored Merkle leaf hash does not match its content")]
    StoredLeafMismatch {
        /// The entry.
        sequence: u64,
    },
    /// An entry's content does not hash to its own `hash` (it was edited after sealing).
    #[error("entry {sequence}: its content does not hash to its stored hash (it was edited)")]
    EntryHashMismatch {
        /// The entry.
        sequence: u64,
    },
    /// A column a database keeps beside the entry for its list filters (`action`, `actor`,
    /// `prompt_id`, the recording time) says something other than the hashed entry: the row
    /// was edited outside the gateway, and filtered listings show the entry wrongly (or hide
    /// it) while the chain itself still verifies.
    #[error(
        "entry {sequence}: its stored {} not match its hashed content (the database row was edited outside the gateway, so filtered listings are wrong)",
        name_columns(columns)
    )]
    FilterColumnMismatch {
        /// The entry.
        sequence: u64,
        /// The columns that disagree, by their database names.
        columns: Vec<&'static str>,
    },
    /// The entry, re-hashed from its content, is not the leaf the proof is about: the entry the
    /// gateway serves is not the one in its tree.
    #[error(
        "entry {sequence}: its content does not hash to the leaf the proof is for (the entry served is not the one in the tree)"
    )]
    LeafMismatch {
        /// The entry.
        sequence: u64,
    },
    /// An entry or proof member that must be a hash, a sequence or a size is not one.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read (`entry 3`, `inclusion proof`, …).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The text given as a public key is not base64 of 32 raw Ed25519 bytes nor a PEM public
    /// key.
    #[error("the public key is not base64 of 32 raw Ed25519 bytes nor a PEM public key")]
    BadPublicKey,
    /// The `keyId` published with a key does not belong to it.
    #[error("the key id {found} does not belong to this public key (its id is {expected})")]
    KeyIdMismatch {
        /// The id of the key itself.
        expected: String,
        /// The id that came with it.
        found: String,
    },
    /// A signed head's `rootHash` is not 64 lowercase hex digits.
    #[error("the signed head of tree size {tree_size} is malformed: {reason}")]
    MalformedHead {
        /// The head's tree size.
        tree_size: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A signed head's signature does not verify with the public key (another key, or the head
    /// was altered after signing).
    #[error("the signed head of tree size {tree_size} is not validly signed: {reason}")]
    Signature {
        /// The head's tree size.
        tree_size: u64,
        /// Why the signature was refused.
        reason: HeadError,
    },
    /// A signed head covers more entries than the log holds: entries were removed from the end,
    /// or the log read is not the one the head was signed for.
    #[error(
        "the signed head of tree size {tree_size} covers more entries than the {entries} in the log (entries were removed from its end)"
    )]
    HeadBeyondLog {
        /// The head's tree size.
        tree_size: u64,
        /// How many entries the log holds.
        entries: u64,
    },
    /// The log's Merkle root at a signed head's size is not the head's root: some entry up to
    /// that size differs from what was signed (history was rewritten and re-chained), or the
    /// head itself was altered.
    #[error(
        "the signed head of tree size {tree_size} does not match the log: it commits to root {head_root}, but the log's first {tree_size} entries have root {log_root} (an entry up to sequence {tree_size} was rewritten, or the tree head was altered)"
    )]
    HeadMismatch {
        /// The head's tree size.
        tree_size: u64,
        /// The root the head commits to, hex.
        head_root: String,
        /// The root recomputed from the log, hex.
        log_root: String,
    },
    /// The root the gateway reports for a tree size is not the root a signed head of that size
    /// commits to: the gateway's tree is not the one that was signed (history was rewritten), or
    /// the head was altered.
    #[error(
        "the gateway's tree of size {tree_size} has root {served_root}, but the signed head commits to {head_root} (history was rewritten, or the head was altered)"
    )]
    RootMismatch {
        /// The tree size.
        tree_size: u64,
        /// The root the head commits to, hex.
        head_root: String,
        /// The root the gateway's proof names, hex.
        served_root: String,
    },
    /// The proof answers another question than the one asked (another entry, tree size or pair
    /// of sizes).
    #[error("the proof does not fit: {0}")]
    ProofMismatch(String),
    /// The proof, followed to its end, does not lead to the signed root(s).
    #[error("the proof does not verify against the signed head: {0}")]
    ProofFailed(ProofError),
    /// Signatures were to be checked but nothing signed covers the log.
    #[error("no signed tree head was found to check")]
    NoSignedHead,
}

impl AuditCheckError {
    /// The first entry this problem is about, when it is about one entry (a chain break, an
    /// unreadable or edited entry); `None` for problems of a signed head or a proof as a whole,
    /// which is what lets `firstInvalidSequence` stay null when only a head disagrees.
    pub fn sequence(&self) -> Option<u64> {
        match self {
            AuditCheckError::Chain(problem) => Some(problem.sequence()),
            AuditCheckError::Unreadable { sequence, .. }
            | AuditCheckError::StoredLeafMismatch { sequence }
            | AuditCheckError::EntryHashMismatch { sequence }
            | AuditCheckError::FilterColumnMismatch { sequence, .. }
            | AuditCheckError::LeafMismatch { sequence } => Some(*sequence),
            _ => None,
        }
    }
}

/// `action column does`, `action, actor columns do`.
fn name_columns(columns: &[&str]) -> String {
    match columns {
        [one] => format!("{one} column does"),
        many => format!("{} columns do", many.join(", ")),
    }
}

/// A chain break in words that name the missing entry rather than only the one found.
fn describe_break(problem: &ChainBreak) -> String {
    match problem {
        ChainBreak::OutOfSequence { expected, found } if found > expected => format!(
            "entry {expected} is missing (the entry read in its place has sequence {found})"
        ),
        ChainBreak::OutOfSequence { expected, found } => format!(
            "entry {expected} is missing (the entry read in its place has sequence {found}: repeated or inserted)"
        ),
        other => other.to_string(),
    }
}

/// The columns a database keeps beside an entry's hashed body so that listings can filter on
/// indexes: copies of the entry's `actor`, `action`, `promptId` and `timestamp`. Nothing
/// hashes them, so [`LogVerifier::push_stored`] compares them with the body they copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterColumns {
    /// The `actor` column.
    pub actor: String,
    /// The `action` column.
    pub action: String,
    /// The `prompt_id` column, as text (a UUID's lowercase hyphenated form).
    pub prompt_id: Option<String>,
    /// The `recorded_at` column: unix milliseconds of the entry's `timestamp`.
    pub recorded_at_ms: i64,
}

impl FilterColumns {
    /// The names of the columns that do not say what `entry` (its served form) says, in the
    /// order `action`, `actor`, `prompt_id`, `recorded_at`; empty when all agree.
    ///
    /// A text column may hold U+FFFD where the entry holds U+0000 (PostgreSQL cannot store
    /// U+0000 in text, so both stores replace it in these copies); that counts as agreeing.
    pub fn mismatches(&self, entry: &Value) -> Vec<&'static str> {
        let text = |name: &str| entry.get(name).and_then(Value::as_str);
        let agrees = |column: &str, body: Option<&str>| {
            body.is_some_and(|body| column == body || column == body.replace('\0', "\u{FFFD}"))
        };
        let mut wrong = Vec::new();
        if !agrees(&self.action, text("action")) {
            wrong.push("action");
        }
        if !agrees(&self.actor, text("actor")) {
            wrong.push("actor");
        }
        let prompt_ok = match (&self.prompt_id, entry.get("promptId")) {
            (None, Some(Value::Null)) => true,
            (Some(column), Some(Value::String(body))) => column.eq_ignore_ascii_case(body),
            _ => false,
        };
        if !prompt_ok {
            wrong.push("prompt_id");
        }
        let recorded = i128::from(self.recorded_at_ms)
            .checked_mul(1_000_000)
            .and_then(|nanos| time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            .map(crate::entry::format_timestamp);
        if recorded.as_deref() != text("timestamp") {
            wrong.push("recorded_at");
        }
        wrong
    }
}

/// An Ed25519 public key of a gateway, the only thing an auditor needs besides the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a key as the contract writes it (base64 of the 32 raw bytes) or as OpenSSL does (a
    /// PEM `PUBLIC KEY`), so a key kept in either form can be used as is.
    pub fn parse(text: &str) -> Result<PublicKey, AuditCheckError> {
        head::parse_public_key(text)
            .map(PublicKey)
            .map_err(|_| AuditCheckError::BadPublicKey)
    }

    /// Reads a key published with its id (`GET …/audit-logs/public-key`: `keyId`, `publicKey`)
    /// and checks that the id belongs to the key, so that the id printed next to it can be
    /// trusted to name it.
    pub fn from_published(key_id: &str, public_key: &str) -> Result<PublicKey, AuditCheckError> {
        let key = PublicKey::parse(public_key)?;
        let expected = key.key_id();
        if key_id != expected {
            return Err(AuditCheckError::KeyIdMismatch {
                expected,
                found: key_id.to_owned(),
            });
        }
        Ok(key)
    }

    /// The contract's key id: the first 16 hex digits of the SHA-256 of the raw key, the value
    /// signed heads carry as `keyId`.
    pub fn key_id(&self) -> String {
        head::key_id(&self.0)
    }

    /// Base64 of the 32 raw bytes, the contract's form.
    pub fn to_base64(&self) -> String {
        head::public_key_base64(&self.0)
    }

    /// The key itself, for callers that sign or verify with `ed25519-dalek` directly.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl From<VerifyingKey> for PublicKey {
    /// The gateway holds its signing key, so it needs no parsing to check its own heads.
    fn from(key: VerifyingKey) -> PublicKey {
        PublicKey(key)
    }
}

/// An inclusion proof (RFC 9162 §2.1.3) with its claims, hashes already read from hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry the proof claims to be for.
    pub sequence: u64,
    /// Its leaf index (`sequence − 1`).
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The leaf hash the gateway claims for the entry.
    pub leaf_hash: Hash,
    /// The sibling hashes from the leaf up.
    pub audit_path: Vec<Hash>,
    /// The root the gateway claims for the tree.
    pub root_hash: Hash,
}

/// A consistency proof (RFC 9162 §2.1.4) with its claims, hashes already read from hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub from: u64,
    /// The newer tree's size.
    pub to: u64,
    /// The root the gateway claims for the older tree.
    pub from_root: Hash,
    /// The root the gateway claims for the newer tree.
    pub to_root: Hash,
    /// The proof's hashes.
    pub proof: Vec<Hash>,
}

/// Checks that `key` signed `head`: the Ed25519 signature over the canonical JSON of
/// `{"treeSize", "rootHash", "timestamp"}`, and that the head names this key. A head that
/// verifies is the gateway's own statement of its log at that size, which is what makes every
/// other check here mean something.
pub fn verify_signed_head(head: &SignedTreeHead, key: &PublicKey) -> Result<(), AuditCheckError> {
    head::verify(&key.0, head).map_err(|reason| AuditCheckError::Signature {
        tree_size: head.head.tree_size,
        reason,
    })
}

/// The Merkle leaf hash of an entry in its served form, recomputed from its content (the entry
/// without `hash`, as RFC 8785 canonical JSON, prefixed with 0x00), never taken from what a
/// proof or a database claims.
pub fn leaf_hash_of(entry: &Value) -> Hash {
    merkle::leaf_hash(hashed_body(entry).as_bytes())
}

/// Checks that `entry` (its served form) is in the tree `head` commits to, using `proof`.
///
/// The leaf is recomputed from the entry itself, and the entry's own `hash` is checked against
/// its content, so a gateway that serves an altered entry with the original's proof is caught.
/// The proof must be for this entry and for the head's tree size, and lead to the head's root.
/// The head's signature is checked separately ([`verify_signed_head`]), since a caller may hold
/// a head it already checked.
pub fn check_inclusion(
    entry: &Value,
    proof: &InclusionProof,
    head: &SignedTreeHead,
) -> Result<(), AuditCheckError> {
    let sequence = entry
        .get("sequence")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("entry", "sequence is missing or not a whole number"))?;
    if proof.sequence != sequence {
        return Err(AuditCheckError::ProofMismatch(format!(
            "it is for entry {}, not entry {sequence}",
            proof.sequence
        )));
    }
    if sequence == 0 || proof.leaf_index != sequence - 1 {
        return Err(AuditCheckError::ProofMismatch(format!(
            "leaf index {} is not sequence {sequence} - 1",
            proof.leaf_index
        )));
    }
    let tree_size = head.head.tree_size;
    if proof.tree_size != tree_size {
        return Err(AuditCheckError::ProofMismatch(format!(
            "it is for the tree of size {}, but the signed head is of size {tree_size}",
            proof.tree_size
        )));
    }
    let signed_root = &head.head.root_hash;
    let body = hashed_body(entry);
    check_entry_hash(entry, sequence, body.as_bytes())?;
    let leaf = merkle::leaf_hash(body.as_bytes());
    let wrong_root = proof.root_hash != *signed_root;
    let wrong_leaf = proof.leaf_hash != leaf;
    match merkle::verify_inclusion(
        &leaf,
        sequence - 1,
        tree_size,
        &proof.audit_path,
        signed_root,
    ) {
        Ok(()) if wrong_leaf => Err(AuditCheckError::LeafMismatch { sequence }),
        Ok(()) if wrong_root => Err(root_mismatch(head, &proof.root_hash)),
        Ok(()) => Ok(()),
        // Say which claim is false, most telling first: a tree that is not the signed one, then
        // an entry that is not the one in the tree, then a proof that is simply wrong.
        Err(_) if wrong_root => Err(root_mismatch(head, &proof.root_hash)),
        Err(_) if wrong_leaf => Err(AuditCheckError::LeafMismatch { sequence }),
        Err(problem) => Err(AuditCheckError::ProofFailed(problem)),
    }
}

/// Checks that the tree `old` commits to is a prefix of the tree `new` commits to, using
/// `proof`: the log was only appended to between the two heads, nothing `old` covered was
/// changed. The proof must be for exactly the two heads' sizes and lead to both signed roots;
/// the signatures are checked separately ([`verify_signed_head`]).
pub fn check_consistency(
    proof: &ConsistencyProof,
    old: &SignedTreeHead,
    new: &SignedTreeHead,
) -> Result<(), AuditCheckError> {
    let (from, to) = (old.head.tree_size, new.head.tree_size);
    if from > to {
        return Err(AuditCheckError::ProofMismatch(format!(
            "the old head (size {from}) is larger than the new one (size {to}); a log only grows"
        )));
    }
    if proof.from != from || proof.to != to {
        return Err(AuditCheckError::ProofMismatch(format!(
            "it is between sizes {} and {}, but the heads are of sizes {from} and {to}",
            proof.from, proof.to
        )));
    }
    let verdict = merkle::verify_consistency(
        from,
        to,
        &old.head.root_hash,
        &new.head.root_hash,
        &proof.proof,
    );
    if proof.from_root != old.head.root_hash {
        return Err(root_mismatch(old, &proof.from_root));
    }
    if proof.to_root != new.head.root_hash {
        return Err(root_mismatch(new, &proof.to_root));
    }
    verdict.map_err(AuditCheckError::ProofFailed)
}

/// A signed head for [`LogVerifier`] to check: one read in full, or one whose text could not be
/// read. An unreadable head is still reported at its size, in order with the others, so that a
/// caller reading heads from the wire need not decide on its own where to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadToCheck {
    /// A head read in full.
    Signed(SignedTreeHead),
    /// A head whose members could not be read (a `rootHash` that is not hex).
    Malformed {
        /// The head's tree size.
        tree_size: u64,
        /// What is wrong with it.
        reason: String,
    },
}

impl HeadToCheck {
    /// The size of the tree the head is about: where in the log it is checked.
    pub fn tree_size(&self) -> u64 {
        match self {
            HeadToCheck::Signed(signed) => signed.head.tree_size,
            HeadToCheck::Malformed { tree_size, .. } => *tree_size,
        }
    }
}

impl From<SignedTreeHead> for HeadToCheck {
    /// Heads from a store or another process are already read.
    fn from(signed: SignedTreeHead) -> HeadToCheck {
        HeadToCheck::Signed(signed)
    }
}

/// Which signed heads [`LogVerifier`] checks the signature of. Every head's root is compared
/// with the log whatever the choice; the choice is about who is trusted to vouch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signatures {
    /// No signature is checked: a head only shows that the log still matches that head's text.
    Unchecked,
    /// Every head must be signed by this key, and at least one head must cover the log: an
    /// auditor who gives a key trusts nothing else, so an unsigned log is not a valid one.
    Required(PublicKey),
    /// Heads naming this key's id must be signed by it; heads of other keys (signed before the
    /// key was rotated) are compared by their root only, since their keys are not at hand. No
    /// head at all is no problem. This is the gateway judging its own store with its current
    /// key: old heads still pin history, and a fresh log has not been signed yet.
    OfKey(PublicKey),
}

/// Replays a log entry by entry (in sequence order) and checks it against signed tree heads.
///
/// The chain (every entry's `prevHash` and `hash`) catches an entry edited, removed, inserted or
/// reordered, and names the first bad sequence. It cannot catch a log rebuilt from some entry on
/// with every later hash recomputed, nor a log cut short at its end: the signed heads do, since
/// the Merkle root of the log's first `treeSize` entries must equal each head's `rootHash`, and
/// the log must hold at least `treeSize` entries. Which heads' signatures are checked is the
/// caller's [`Signatures`].
///
/// Memory stays constant per entry, so a log of any length can be streamed through.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    chain: ChainVerifier,
    /// Heads not yet reached, largest tree last.
    pending: Vec<HeadToCheck>,
    signatures: Signatures,
    /// The first problem found with a single entry that the chain verifier cannot see.
    entry_problem: Option<AuditCheckError>,
    head_problems: Vec<AuditCheckError>,
    heads_checked: u64,
    signatures_checked: u64,
}

/// What replaying a log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// How many entries were read.
    pub entries: u64,
    /// The last entry's sequence as read (0 for an empty log).
    pub head_sequence: u64,
    /// The last entry's stored hash, hex (64 zeros for an empty log).
    pub head_hash: String,
    /// The Merkle root over every entry read, hex.
    pub root_hash: String,
    /// How many signed heads were compared with the log.
    pub heads_checked: u64,
    /// How many of them had their signature verified.
    pub signatures_checked: u64,
    /// Every problem found: the first bad entry (if any) first, then the signed heads' problems
    /// in tree-size order. Empty when the log is valid.
    pub problems: Vec<AuditCheckError>,
}

impl LogReport {
    /// Whether the log verified: no bad entry and every signed head matches.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problem to report first (the contract's `reason`).
    pub fn first_problem(&self) -> Option<&AuditCheckError> {
        self.problems.first()
    }

    /// The first entry that does not verify, as the contract's `firstInvalidSequence`.
    pub fn first_invalid_sequence(&self) -> Option<u64> {
        self.problems.iter().find_map(AuditCheckError::sequence)
    }
}

impl LogVerifier {
    /// A verifier at the start of the log that will check `heads` (in any order) when the log
    /// reaches their sizes, and their signatures as `signatures` says.
    pub fn new<H: Into<HeadToCheck>>(
        heads: impl IntoIterator<Item = H>,
        signatures: Signatures,
    ) -> LogVerifier {
        let mut pending: Vec<HeadToCheck> = heads.into_iter().map(Into::into).collect();
        // Largest last, so the next head to reach is popped from the end.
        pending.sort_by_key(|head| std::cmp::Reverse(head.tree_size()));
        let mut verifier = LogVerifier {
            chain: ChainVerifier::new(),
            pending,
            signatures,
            entry_problem: None,
            head_problems: Vec::new(),
            heads_checked: 0,
            signatures_checked: 0,
        };
        verifier.check_reached_heads();
        verifier
    }

    /// Checks the next entry, in the served form (the entry object with its `hash`).
    pub fn push(&mut self, entry: &Value) {
        self.chain.push(entry);
        self.check_reached_heads();
    }

    /// Checks the next entry together with the Merkle leaf hash stored beside it (as a database
    /// holds it): the gateway builds its proofs from stored leaf hashes, so one that does not
    /// match the content would prove something else.
    pub fn push_with_stored_leaf(&mut self, entry: &Value, stored_leaf: &Hash) {
        let sequence = self.chain.len() + 1;
        if leaf_hash_of(entry) != *stored_leaf && self.entry_problem.is_none() {
            self.entry_problem = Some(AuditCheckError::StoredLeafMismatch { sequence });
        }
        self.push(entry);
    }

    /// Checks the next entry as a database stores it: with its stored Merkle leaf hash (see
    /// [`LogVerifier::push_with_stored_leaf`]) and the filter columns kept beside it, which
    /// must say what the hashed entry says. Otherwise the chain verifies while a listing
    /// filtered on `action`, `actor` or `promptId` (or a time range) shows a lie.
    pub fn push_stored(&mut self, entry: &Value, stored_leaf: &Hash, columns: &FilterColumns) {
        let sequence = self.chain.len() + 1;
        let wrong = columns.mismatches(entry);
        if !wrong.is_empty() && self.entry_problem.is_none() {
            self.entry_problem = Some(AuditCheckError::FilterColumnMismatch {
                sequence,
                columns: wrong,
            });
        }
        self.push_with_stored_leaf(entry, stored_leaf);
    }

    /// Counts an entry that could not be read at all at the next position, so that it is
    /// named and later entries keep their places.
    pub fn push_unreadable(&mut self, reason: &str) {
        let sequence = self.chain.len() + 1;
        if self.entry_problem.is_none() {
            self.entry_problem = Some(AuditCheckError::Unreadable {
                sequence,
                reason: reason.to_owned(),
            });
        }
        self.push(&Value::Null);
    }

    /// How many entries were read so far.
    pub fn len(&self) -> u64 {
        self.chain.len()
    }

    /// Whether no entry was read yet.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// The verdict. Heads larger than the log are reported as [`AuditCheckError::HeadBeyondLog`];
    /// with [`Signatures::Required`] and no head at all, [`AuditCheckError::NoSignedHead`], since
    /// signatures were asked for and nothing signed vouches for the log.
    pub fn finish(mut self) -> LogReport {
        let report = self.chain.report();
        let entries = report.entries;
        while let Some(head) = self.pending.pop() {
            self.head_problems.push(AuditCheckError::HeadBeyondLog {
                tree_size: head.tree_size(),
                entries,
            });
        }
        if matches!(self.signatures, Signatures::Required(_))
            && self.heads_checked == 0
            && self.head_problems.is_empty()
        {
            self.head_problems.push(AuditCheckError::NoSignedHead);
        }
        let chain_problem = report.first_break.map(AuditCheckError::Chain);
        // The earlier of the chain's break and this verifier's own entry problem. At the same
        // sequence the chain's says more ("it was edited") than a stored leaf that no longer
        // matches, but an unreadable entry is better described by why it cannot be read.
        let entry_problem = match (chain_problem, self.entry_problem) {
            (Some(chain), Some(own))
                if chain.sequence() < own.sequence()
                    || (chain.sequence() == own.sequence()
                        && !matches!(own, AuditCheckError::Unreadable { .. })) =>
            {
                Some(chain)
            }
            (_, Some(own)) => Some(own),
            (chain, None) => chain,
        };
        let mut problems: Vec<_> = entry_problem.into_iter().collect();
        problems.extend(self.head_problems);
        LogReport {
            entries,
            head_sequence: report.head_sequence,
            head_hash: merkle::to_hex(&report.head_hash),
            root_hash: merkle::to_hex(&report.root_hash),
            heads_checked: self.heads_checked,
            signatures_checked: self.signatures_checked,
            problems,
        }
    }

    /// Checks every pending head whose size the log has now reached.
    fn check_reached_heads(&mut self) {
        while self
            .pending
            .last()
            .is_some_and(|head| head.tree_size() == self.chain.len())
        {
            let Some(head) = self.pending.pop() else {
                break;
            };
            self.heads_checked += 1;
            if let Some(problem) = self.check_head(head) {
                self.head_problems.push(problem);
            }
        }
    }

    fn check_head(&mut self, head: HeadToCheck) -> Option<AuditCheckError> {
        let signed = match head {
            HeadToCheck::Signed(signed) => signed,
            HeadToCheck::Malformed { tree_size, reason } => {
                return Some(AuditCheckError::MalformedHead { tree_size, reason });
            }
        };
        let key = match &self.signatures {
            Signatures::Unchecked => None,
            Signatures::Required(key) => Some(key),
            Signatures::OfKey(key) => (key.key_id() == signed.key_id).then_some(key),
        };
        if let Some(key) = key {
            if let Err(problem) = verify_signed_head(&signed, key) {
                return Some(problem);
            }
            self.signatures_checked += 1;
        }
        let log_root = self.chain.root();
        (log_root != signed.head.root_hash).then(|| AuditCheckError::HeadMismatch {
            tree_size: signed.head.tree_size,
            head_root: merkle::to_hex(&signed.head.root_hash),
            log_root: merkle::to_hex(&log_root),
        })
    }
}

/// The bytes that are hashed: the entry without `hash`, as RFC 8785 canonical JSON.
fn hashed_body(entry: &Value) -> String {
    match entry {
        Value::Object(object) => {
            let mut unhashed = object.clone();
            unhashed.remove("hash");
            to_canonical_string(&Value::Object(unhashed))
        }
        other => to_canonical_string(other),
    }
}

/// Checks `hash = SHA-256(prevHash ‖ body)` for one entry on its own.
fn check_entry_hash(entry: &Value, sequence: u64, body: &[u8]) -> Result<(), AuditCheckError> {
    let what = || format!("entry {sequence}");
    let hash_member = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .and_then(|hex| merkle::from_hex(hex).ok())
    };
    let prev = hash_member("prevHash")
        .ok_or_else(|| malformed(&what(), "prevHash is not 64 lowercase hex digits"))?;
    let stored = hash_member("hash")
        .ok_or_else(|| malformed(&what(), "hash is not 64 lowercase hex digits"))?;
    if crate::entry::chain_hash(&prev, body) == stored {
        Ok(())
    } else {
        Err(AuditCheckError::EntryHashMismatch { sequence })
    }
}

fn root_mismatch(head: &SignedTreeHead, served_root: &Hash) -> AuditCheckError {
    AuditCheckError::RootMismatch {
        tree_size: head.head.tree_size,
        head_root: merkle::to_hex(&head.head.root_hash),
        served_root: merkle::to_hex(served_root),
    }
}

fn malformed(what: &str, reason: &str) -> AuditCheckError {
    AuditCheckError::Malformed {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{AuditDraft, GENESIS_HASH, chain_hash};
    use crate::head::TreeHead;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    const SIGNED_AT: &str = "2026-11-27T04:15:39.123Z";

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn other_signing_key() -> SigningKey {
        SigningKey::from_bytes(&[8; 32])
    }

    fn public_key() -> PublicKey {
        PublicKey::from(signing_key().verifying_key())
    }

    fn other_key() -> PublicKey {
        PublicKey::from(other_signing_key().verifying_key())
    }

    /// A log of `n` sealed entries in the served form.
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

    /// The filter columns a store writes for `entry` (its served form).
    fn columns_of(entry: &Value) -> FilterColumns {
        let at = time::OffsetDateTime::parse(
            entry["timestamp"].as_str().expect("a timestamp"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        FilterColumns {
            actor: entry["actor"].as_str().expect("actor").to_owned(),
            action: entry["action"].as_str().expect("action").to_owned(),
            prompt_id: entry["promptId"].as_str().map(str::to_owned),
            recorded_at_ms: i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("ms"),
        }
    }

    #[test]
    fn verify_checks_the_filter_columns_against_the_hashed_body() {
        let entries = log(4);
        let replay = |columns: &[FilterColumns]| {
            let mut verifier = LogVerifier::new(Vec::<HeadToCheck>::new(), Signatures::Unchecked);
            for (entry, columns) in entries.iter().zip(columns) {
                verifier.push_stored(entry, &leaf_hash_of(entry), columns);
            }
            verifier.finish()
        };
        let honest: Vec<FilterColumns> = entries.iter().map(columns_of).collect();
        let report = replay(&honest);
        assert!(report.is_valid(), "{:?}", report.problems);

        let mut lying = honest.clone();
        lying[2].action = "PROMPT_ARCHIVED".into();
        lying[2].actor = "someone-else".into();
        lying[3].prompt_id = Some(uuid::Uuid::nil().to_string());
        let report = replay(&lying);
        assert_eq!(report.first_invalid_sequence(), Some(3));
        assert_eq!(
            report.problems,
            vec![AuditCheckError::FilterColumnMismatch {
                sequence: 3,
                columns: vec!["action", "actor"]
            }]
        );
        let reason = report.problems[0].to_string();
        assert!(
            reason.starts_with("entry 3: its stored action, actor columns do not match"),
            "{reason}"
        );

        let mut moved = honest.clone();
        moved[0].recorded_at_ms += 1;
        let report = replay(&moved);
        assert_eq!(report.first_invalid_sequence(), Some(1));
        assert!(
            report.problems[0]
                .to_string()
                .contains("recorded_at column does not"),
            "{:?}",
            report.problems
        );

        // A prompt id in another letter case is the same id; U+FFFD for U+0000 is the stores'
        // documented replacement.
        let mut entry = entries[0].clone();
        entry["actor"] = json!("a\u{0}b");
        let mut columns = columns_of(&entries[0]);
        columns.actor = "a\u{FFFD}b".into();
        assert!(columns.mismatches(&entry).is_empty());
        entry["promptId"] = json!("0190A0B0-0000-7000-8000-000000000000");
        columns.prompt_id = Some("0190a0b0-0000-7000-8000-000000000000".into());
        assert!(columns.mismatches(&entry).is_empty());
        columns.prompt_id = None;
        assert_eq!(columns.mismatches(&entry), vec!["prompt_id"]);
    }

    fn leaves(entries: &[Value]) -> Vec<Hash> {
        entries.iter().map(leaf_hash_of).collect()
    }

    fn hash_of(entry: &Value, member: &str) -> Hash {
        merkle::from_hex(entry[member].as_str().expect("a hash member")).expect("hex")
    }

    fn head_signed_by(key: &SigningKey, entries: &[Value], size: u64) -> SignedTreeHead {
        let root = merkle::root(&leaves(entries)[..size as usize]);
        head::sign(
            key,
            TreeHead {
                tree_size: size,
                root_hash: root,
                timestamp: SIGNED_AT.to_owned(),
            },
        )
    }

    /// The head of the first `size` entries, signed with `signing_key()`.
    fn signed_head(entries: &[Value], size: u64) -> SignedTreeHead {
        head_signed_by(&signing_key(), entries, size)
    }

    fn inclusion(entries: &[Value], sequence: u64, size: u64) -> InclusionProof {
        let all = leaves(entries);
        InclusionProof {
            sequence,
            leaf_index: sequence - 1,
            tree_size: size,
            leaf_hash: all[sequence as usize - 1],
            audit_path: merkle::inclusion_proof(&all, sequence - 1, size).expect("a proof"),
            root_hash: merkle::root(&all[..size as usize]),
        }
    }

    fn consistency(entries: &[Value], from: u64, to: u64) -> ConsistencyProof {
        let all = leaves(entries);
        ConsistencyProof {
            from,
            to,
            from_root: merkle::root(&all[..from as usize]),
            to_root: merkle::root(&all[..to as usize]),
            proof: merkle::consistency_proof(&all, from, to).expect("a proof"),
        }
    }

    /// The hash with the lowest bit of byte `at` flipped.
    fn flip(hash: &Hash, at: usize) -> Hash {
        let mut flipped = *hash;
        flipped[at] ^= 1;
        flipped
    }

    /// Entry `sequence` rewritten (a new detail) and given a correct hash for its new content,
    /// and every later entry re-chained: what an operator with database access could produce.
    fn rewritten(entries: &[Value], sequence: u64) -> Vec<Value> {
        let mut out = entries.to_vec();
        let mut prev = if sequence == 1 {
            GENESIS_HASH
        } else {
            hash_of(&out[sequence as usize - 2], "hash")
        };
        for entry in out.iter_mut().skip(sequence as usize - 1) {
            if entry["sequence"] == json!(sequence) {
                entry["details"] = json!({"n": "rewritten"});
            }
            entry["prevHash"] = json!(merkle::to_hex(&prev));
            prev = chain_hash(&prev, hashed_body(entry).as_bytes());
            entry["hash"] = json!(merkle::to_hex(&prev));
        }
        out
    }

    /// Replays `entries` against `head` (when given), checking its signature with `key` (when
    /// given), as an auditor with a saved head does.
    fn verify_entries(
        entries: &[Value],
        head: Option<&SignedTreeHead>,
        key: Option<&PublicKey>,
    ) -> LogReport {
        let signatures = key.map_or(Signatures::Unchecked, |key| {
            Signatures::Required(key.clone())
        });
        let mut verifier = LogVerifier::new(head.cloned(), signatures);
        entries.iter().for_each(|entry| verifier.push(entry));
        verifier.finish()
    }

    fn no_heads() -> Vec<SignedTreeHead> {
        Vec::new()
    }

    #[test]
    fn a_signed_head_verifies_with_its_key_only() {
        let head = signed_head(&log(3), 3);
        assert_eq!(verify_signed_head(&head, &public_key()), Ok(()));
        assert!(matches!(
            verify_signed_head(&head, &other_key()),
            Err(AuditCheckError::Signature {
                tree_size: 3,
                reason: HeadError::WrongKey { .. }
            })
        ));
    }

    #[test]
    fn an_altered_signed_head_does_not_verify() {
        let head = signed_head(&log(3), 3);
        let mut bigger = head.clone();
        bigger.head.tree_size = 4;
        assert_eq!(
            verify_signed_head(&bigger, &public_key()),
            Err(AuditCheckError::Signature {
                tree_size: 4,
                reason: HeadError::InvalidSignature
            })
        );
        let mut other_root = head.clone();
        other_root.head.root_hash = flip(&head.head.root_hash, 10);
        assert!(matches!(
            verify_signed_head(&other_root, &public_key()),
            Err(AuditCheckError::Signature {
                reason: HeadError::InvalidSignature,
                ..
            })
        ));
        let mut later = head.clone();
        later.head.timestamp = "2026-11-28T00:00:00.000Z".into();
        assert!(verify_signed_head(&later, &public_key()).is_err());
        let mut garbled = head;
        garbled.signature = "not base64!".into();
        assert!(matches!(
            verify_signed_head(&garbled, &public_key()),
            Err(AuditCheckError::Signature {
                reason: HeadError::BadSignature,
                ..
            })
        ));
    }

    #[test]
    fn public_keys_are_read_in_both_forms_and_their_ids_checked() {
        let key = public_key();
        let base64 = key.to_base64();
        assert_eq!(PublicKey::parse(&base64), Ok(key.clone()));
        assert_eq!(PublicKey::parse(&format!("  {base64}\n")), Ok(key.clone()));
        // An SPKI header of 12 bytes is 16 base64 digits, so the key's own base64 follows it.
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA{base64}\n-----END PUBLIC KEY-----\n"
        );
        assert_eq!(PublicKey::parse(&pem), Ok(key.clone()));
        assert_eq!(key.key_id().len(), 16);
        assert_eq!(key.verifying_key(), &signing_key().verifying_key());
        assert_eq!(PublicKey::parse("AAAA"), Err(AuditCheckError::BadPublicKey));
        assert_eq!(
            PublicKey::parse("/no/such/file"),
            Err(AuditCheckError::BadPublicKey)
        );

        assert_eq!(
            PublicKey::from_published(&key.key_id(), &base64),
            Ok(key.clone())
        );
        assert_eq!(
            PublicKey::from_published(&other_key().key_id(), &base64),
            Err(AuditCheckError::KeyIdMismatch {
                expected: key.key_id(),
                found: other_key().key_id(),
            })
        );
        assert_eq!(
            PublicKey::from_published(&key.key_id(), "AAAA"),
            Err(AuditCheckError::BadPublicKey)
        );
    }

    #[test]
    fn every_entry_is_proven_in_every_tree_that_holds_it() {
        let entries = log(9);
        for size in 1..=9 {
            let head = signed_head(&entries, size);
            for sequence in 1..=size {
                let proof = inclusion(&entries, sequence, size);
                assert_eq!(
                    check_inclusion(&entries[sequence as usize - 1], &proof, &head),
                    Ok(()),
                    "entry {sequence} in tree {size}"
                );
            }
        }
    }

    #[test]
    fn an_edited_entry_is_not_proven() {
        let entries = log(5);
        let head = signed_head(&entries, 5);
        let proof = inclusion(&entries, 3, 5);
        let mut edited = entries[2].clone();
        edited["details"] = json!({"n": 99});
        assert_eq!(
            check_inclusion(&edited, &proof, &head),
            Err(AuditCheckError::EntryHashMismatch { sequence: 3 })
        );
        // Edited and given a matching hash: the leaf is no longer the one in the tree.
        let forged = rewritten(&entries, 3);
        assert_eq!(
            check_inclusion(&forged[2], &proof, &head),
            Err(AuditCheckError::LeafMismatch { sequence: 3 })
        );
        // Even with a leafHash claimed to be the forged entry's, the path leads elsewhere.
        let mut claimed = proof.clone();
        claimed.leaf_hash = leaf_hash_of(&forged[2]);
        assert_eq!(
            check_inclusion(&forged[2], &claimed, &head),
            Err(AuditCheckError::ProofFailed(ProofError::RootMismatch))
        );
        let mut bad_prev = entries[2].clone();
        bad_prev["prevHash"] = json!("zz");
        assert!(matches!(
            check_inclusion(&bad_prev, &proof, &head),
            Err(AuditCheckError::Malformed { .. })
        ));
        let mut bad_hash = entries[2].clone();
        bad_hash["hash"] = json!("ABCD");
        assert!(matches!(
            check_inclusion(&bad_hash, &proof, &head),
            Err(AuditCheckError::Malformed { .. })
        ));
        let mut no_sequence = entries[2].clone();
        no_sequence["sequence"] = json!("3");
        assert!(matches!(
            check_inclusion(&no_sequence, &proof, &head),
            Err(AuditCheckError::Malformed { .. })
        ));
    }

    #[test]
    fn a_flipped_proof_hash_fails() {
        let entries = log(7);
        let head = signed_head(&entries, 7);
        let proof = inclusion(&entries, 3, 7);
        for i in 0..proof.audit_path.len() {
            let mut flipped = proof.clone();
            flipped.audit_path[i] = flip(&proof.audit_path[i], 31);
            assert_eq!(
                check_inclusion(&entries[2], &flipped, &head),
                Err(AuditCheckError::ProofFailed(ProofError::RootMismatch)),
                "hash {i}"
            );
        }
        let mut short = proof;
        short.audit_path.pop();
        assert!(matches!(
            check_inclusion(&entries[2], &short, &head),
            Err(AuditCheckError::ProofFailed(ProofError::WrongLength { .. }))
        ));
    }

    #[test]
    fn a_proof_against_a_head_it_does_not_match_fails() {
        let entries = log(6);
        let head = signed_head(&entries, 6);
        let proof = inclusion(&entries, 2, 6);
        // A head whose root was altered: the gateway's tree is not the one it claims.
        let mut altered = head.clone();
        altered.head.root_hash = flip(&head.head.root_hash, 0);
        assert!(matches!(
            check_inclusion(&entries[1], &proof, &altered),
            Err(AuditCheckError::RootMismatch { tree_size: 6, .. })
        ));
        // A head of another size.
        let smaller = signed_head(&entries, 5);
        assert!(matches!(
            check_inclusion(&entries[1], &proof, &smaller),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        // A proof for another entry.
        assert!(matches!(
            check_inclusion(&entries[2], &proof, &head),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        // Sequences start at 1: no proof is for an entry 0.
        let mut zero = entries[1].clone();
        zero["sequence"] = json!(0);
        let mut zero_proof = proof.clone();
        zero_proof.sequence = 0;
        assert!(matches!(
            check_inclusion(&zero, &zero_proof, &head),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        let mut wrong_index = proof;
        wrong_index.leaf_index = 4;
        assert!(matches!(
            check_inclusion(&entries[1], &wrong_index, &head),
            Err(AuditCheckError::ProofMismatch(_))
        ));
    }

    #[test]
    fn a_valid_path_with_false_claims_beside_it_fails() {
        let entries = log(4);
        let head = signed_head(&entries, 4);
        let proof = inclusion(&entries, 4, 4);
        let mut wrong_leaf = proof.clone();
        wrong_leaf.leaf_hash = flip(&proof.leaf_hash, 2);
        assert_eq!(
            check_inclusion(&entries[3], &wrong_leaf, &head),
            Err(AuditCheckError::LeafMismatch { sequence: 4 })
        );
        let mut wrong_root = proof;
        wrong_root.root_hash = flip(&head.head.root_hash, 2);
        assert!(matches!(
            check_inclusion(&entries[3], &wrong_root, &head),
            Err(AuditCheckError::RootMismatch { .. })
        ));
    }

    #[test]
    fn every_older_head_is_consistent_with_every_newer_one() {
        let entries = log(9);
        for from in 0..=9 {
            for to in from..=9 {
                let proof = consistency(&entries, from, to);
                assert_eq!(
                    check_consistency(
                        &proof,
                        &signed_head(&entries, from),
                        &signed_head(&entries, to)
                    ),
                    Ok(()),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn a_rewritten_history_is_not_consistent_with_an_old_head() {
        let entries = log(8);
        let old = signed_head(&entries, 5);
        let forged = rewritten(&entries, 2);
        let new = signed_head(&forged, 8);
        // The rewritten log's own proof between its sizes names its own roots.
        let proof = consistency(&forged, 5, 8);
        assert!(matches!(
            check_consistency(&proof, &old, &new),
            Err(AuditCheckError::RootMismatch { tree_size: 5, .. })
        ));
        // And a proof that copies the old root still does not lead to both roots.
        let mut claimed = proof;
        claimed.from_root = old.head.root_hash;
        assert_eq!(
            check_consistency(&claimed, &old, &new),
            Err(AuditCheckError::ProofFailed(ProofError::RootMismatch))
        );
    }

    #[test]
    fn a_flipped_consistency_hash_or_altered_head_fails() {
        let entries = log(11);
        let old = signed_head(&entries, 6);
        let new = signed_head(&entries, 11);
        let proof = consistency(&entries, 6, 11);
        for i in 0..proof.proof.len() {
            let mut flipped = proof.clone();
            flipped.proof[i] = flip(&proof.proof[i], 15);
            assert_eq!(
                check_consistency(&flipped, &old, &new),
                Err(AuditCheckError::ProofFailed(ProofError::RootMismatch)),
                "hash {i}"
            );
        }
        let mut altered_new = new.clone();
        altered_new.head.root_hash = flip(&new.head.root_hash, 0);
        assert!(matches!(
            check_consistency(&proof, &old, &altered_new),
            Err(AuditCheckError::RootMismatch { tree_size: 11, .. })
        ));
    }

    #[test]
    fn a_consistency_proof_for_other_sizes_or_swapped_heads_fails() {
        let entries = log(8);
        let old = signed_head(&entries, 3);
        let new = signed_head(&entries, 8);
        assert!(matches!(
            check_consistency(&consistency(&entries, 3, 8), &new, &old),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        assert!(matches!(
            check_consistency(&consistency(&entries, 4, 8), &old, &new),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        assert!(matches!(
            check_consistency(&consistency(&entries, 3, 7), &old, &new),
            Err(AuditCheckError::ProofMismatch(_))
        ));
    }

    #[test]
    fn an_untouched_log_verifies_against_its_heads_and_their_signatures() {
        let entries = log(10);
        let heads: Vec<_> = [0, 1, 4, 10, 4]
            .into_iter()
            .map(|size| signed_head(&entries, size))
            .collect();
        let mut verifier = LogVerifier::new(heads, Signatures::Required(public_key()));
        assert!(verifier.is_empty());
        entries.iter().for_each(|e| verifier.push(e));
        assert_eq!(verifier.len(), 10);
        let report = verifier.finish();
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.entries, 10);
        assert_eq!(report.head_sequence, 10);
        assert_eq!(report.head_hash, entries[9]["hash"]);
        assert_eq!(
            report.root_hash,
            merkle::to_hex(&signed_head(&entries, 10).head.root_hash)
        );
        assert_eq!(report.heads_checked, 5);
        assert_eq!(report.signatures_checked, 5);
        assert_eq!(report.first_problem(), None);
        assert_eq!(report.first_invalid_sequence(), None);

        let unsigned = verify_entries(&entries, Some(&signed_head(&entries, 7)), None);
        assert!(unsigned.is_valid());
        assert_eq!(
            (unsigned.heads_checked, unsigned.signatures_checked),
            (1, 0)
        );
        assert!(verify_entries(&[], None, None).is_valid());
    }

    #[test]
    fn an_edited_entry_is_named_as_the_first_bad_sequence() {
        let mut entries = log(6);
        entries[4]["details"] = json!({"n": "edited"});
        let report = verify_entries(&entries, Some(&signed_head(&log(6), 6)), None);
        assert_eq!(report.first_invalid_sequence(), Some(5));
        assert_eq!(
            report.first_problem(),
            Some(&AuditCheckError::Chain(ChainBreak::HashMismatch {
                sequence: 5
            }))
        );
    }

    #[test]
    fn a_removed_entry_is_named_as_missing() {
        let mut entries = log(6);
        let head = signed_head(&entries, 6);
        entries.remove(2);
        let report = verify_entries(&entries, Some(&head), None);
        assert_eq!(report.first_invalid_sequence(), Some(3));
        let text = report.first_problem().expect("a problem").to_string();
        assert!(text.starts_with("entry 3 is missing"), "{text}");
        assert!(text.contains("sequence 4"), "{text}");
        // The head of six entries is also reported: the log now holds five.
        assert!(report.problems.iter().any(|p| matches!(
            p,
            AuditCheckError::HeadBeyondLog {
                tree_size: 6,
                entries: 5
            }
        )));
    }

    #[test]
    fn a_repeated_entry_is_named() {
        let mut entries = log(4);
        entries.insert(2, entries[1].clone());
        let report = verify_entries(&entries, None, None);
        assert_eq!(report.first_invalid_sequence(), Some(3));
        let text = report.first_problem().expect("a problem").to_string();
        assert!(text.contains("repeated or inserted"), "{text}");
    }

    #[test]
    fn a_rewritten_and_rechained_log_fails_only_against_an_old_head() {
        let entries = log(8);
        let old_head = signed_head(&entries, 6);
        let forged = rewritten(&entries, 3);
        assert!(verify_entries(&forged, None, None).is_valid());
        let report = verify_entries(&forged, Some(&old_head), Some(&public_key()));
        assert_eq!(report.first_invalid_sequence(), None);
        match report.first_problem() {
            Some(AuditCheckError::HeadMismatch {
                tree_size: 6,
                head_root,
                log_root,
            }) => {
                assert_eq!(head_root, &merkle::to_hex(&old_head.head.root_hash));
                assert_eq!(
                    log_root,
                    &merkle::to_hex(&signed_head(&forged, 6).head.root_hash)
                );
            }
            other => panic!("{other:?}"),
        }
        // A head that only covers entries before the rewrite still matches.
        assert!(verify_entries(&forged, Some(&signed_head(&entries, 2)), None).is_valid());
    }

    #[test]
    fn a_log_cut_short_fails_against_a_head_that_covered_more() {
        let entries = log(5);
        let head = signed_head(&entries, 5);
        let report = verify_entries(&entries[..3], Some(&head), None);
        assert_eq!(
            report.problems,
            vec![AuditCheckError::HeadBeyondLog {
                tree_size: 5,
                entries: 3
            }]
        );
    }

    #[test]
    fn a_head_signed_by_another_key_or_altered_fails() {
        let entries = log(3);
        let head = signed_head(&entries, 3);
        let report = verify_entries(&entries, Some(&head), Some(&other_key()));
        assert!(matches!(
            report.first_problem(),
            Some(AuditCheckError::Signature {
                tree_size: 3,
                reason: HeadError::WrongKey { .. }
            })
        ));
        assert_eq!(report.signatures_checked, 0);
        let mut altered = head.clone();
        altered.head.root_hash = flip(&head.head.root_hash, 3);
        // Without a key the altered head no longer matches the log.
        assert!(matches!(
            verify_entries(&entries, Some(&altered), None).first_problem(),
            Some(AuditCheckError::HeadMismatch { .. })
        ));
        // With one its signature fails first.
        assert!(matches!(
            verify_entries(&entries, Some(&altered), Some(&public_key())).first_problem(),
            Some(AuditCheckError::Signature {
                reason: HeadError::InvalidSignature,
                ..
            })
        ));
    }

    #[test]
    fn with_the_gateways_key_heads_of_a_rotated_key_are_checked_by_their_root_only() {
        let entries = log(6);
        let old_key_head = head_signed_by(&other_signing_key(), &entries, 3);
        let current_head = signed_head(&entries, 6);
        let heads = vec![old_key_head.clone(), current_head.clone()];

        let mut verifier = LogVerifier::new(heads.clone(), Signatures::OfKey(public_key()));
        entries.iter().for_each(|e| verifier.push(e));
        let report = verifier.finish();
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!((report.heads_checked, report.signatures_checked), (2, 1));

        // The same heads for an auditor who requires every head signed by this key.
        let mut verifier = LogVerifier::new(heads, Signatures::Required(public_key()));
        entries.iter().for_each(|e| verifier.push(e));
        assert!(matches!(
            verifier.finish().first_problem(),
            Some(AuditCheckError::Signature {
                tree_size: 3,
                reason: HeadError::WrongKey { .. }
            })
        ));

        // A rotated key's head whose root no longer matches is still caught.
        let forged = rewritten(&entries, 2);
        let mut verifier = LogVerifier::new(
            vec![old_key_head, signed_head(&forged, 6)],
            Signatures::OfKey(public_key()),
        );
        forged.iter().for_each(|e| verifier.push(e));
        let report = verifier.finish();
        assert_eq!(report.first_invalid_sequence(), None);
        assert!(matches!(
            report.problems.as_slice(),
            [AuditCheckError::HeadMismatch { tree_size: 3, .. }]
        ));

        // A head of the current key whose signature was tampered with is caught.
        let mut tampered = current_head;
        tampered.head.timestamp = "2027-01-01T00:00:00.000Z".into();
        let mut verifier = LogVerifier::new([tampered], Signatures::OfKey(public_key()));
        entries.iter().for_each(|e| verifier.push(e));
        assert!(matches!(
            verifier.finish().first_problem(),
            Some(AuditCheckError::Signature {
                tree_size: 6,
                reason: HeadError::InvalidSignature
            })
        ));
    }

    #[test]
    fn signatures_required_without_any_head_is_a_problem_but_the_gateways_own_check_is_not() {
        let entries = log(2);
        assert_eq!(
            verify_entries(&entries, None, Some(&public_key())).problems,
            vec![AuditCheckError::NoSignedHead]
        );
        let mut verifier = LogVerifier::new(no_heads(), Signatures::OfKey(public_key()));
        entries.iter().for_each(|e| verifier.push(e));
        assert!(verifier.finish().is_valid());
    }

    #[test]
    fn a_malformed_head_is_reported_at_its_size_and_counted() {
        let entries = log(4);
        let heads = vec![
            HeadToCheck::from(signed_head(&entries, 4)),
            HeadToCheck::Malformed {
                tree_size: 2,
                reason: "rootHash is not 64 lowercase hex digits".into(),
            },
        ];
        let mut verifier = LogVerifier::new(heads, Signatures::Unchecked);
        entries.iter().for_each(|e| verifier.push(e));
        let report = verifier.finish();
        assert_eq!(report.heads_checked, 2);
        assert_eq!(
            report.problems,
            vec![AuditCheckError::MalformedHead {
                tree_size: 2,
                reason: "rootHash is not 64 lowercase hex digits".into()
            }]
        );
    }

    #[test]
    fn an_unreadable_entry_is_named_and_later_ones_keep_their_places() {
        let entries = log(4);
        let mut verifier = LogVerifier::new(no_heads(), Signatures::Unchecked);
        verifier.push(&entries[0]);
        verifier.push_unreadable("line 2 is not JSON");
        verifier.push(&entries[2]);
        verifier.push(&entries[3]);
        let report = verifier.finish();
        assert_eq!(report.entries, 4);
        assert_eq!(
            report.first_problem(),
            Some(&AuditCheckError::Unreadable {
                sequence: 2,
                reason: "line 2 is not JSON".into()
            })
        );
        assert_eq!(report.problems.len(), 1);
    }

    #[test]
    fn the_earlier_of_a_chain_break_and_an_unreadable_entry_is_first() {
        let mut entries = log(4);
        entries[0]["details"] = json!("edited");
        let mut verifier = LogVerifier::new(no_heads(), Signatures::Unchecked);
        verifier.push(&entries[0]);
        verifier.push(&entries[1]);
        verifier.push_unreadable("garbage");
        let report = verifier.finish();
        assert_eq!(report.first_invalid_sequence(), Some(1));
        assert_eq!(report.problems.len(), 1);
    }

    #[test]
    fn a_stored_leaf_hash_that_does_not_match_its_entry_is_named() {
        let entries = log(3);
        let mut verifier = LogVerifier::new(no_heads(), Signatures::Unchecked);
        for (i, entry) in entries.iter().enumerate() {
            let mut leaf = leaf_hash_of(entry);
            if i == 1 {
                leaf[0] ^= 1;
            }
            verifier.push_with_stored_leaf(entry, &leaf);
        }
        assert_eq!(
            verifier.finish().problems,
            vec![AuditCheckError::StoredLeafMismatch { sequence: 2 }]
        );

        // An entry edited in place has a stale leaf too; the edit is what is reported.
        let mut verifier = LogVerifier::new(no_heads(), Signatures::Unchecked);
        let mut edited = entries[0].clone();
        edited["details"] = json!("edited");
        verifier.push_with_stored_leaf(&edited, &leaf_hash_of(&entries[0]));
        assert_eq!(
            verifier.finish().problems,
            vec![AuditCheckError::Chain(ChainBreak::HashMismatch {
                sequence: 1
            })]
        );
    }

    #[test]
    fn a_head_of_the_empty_tree_is_checked_against_the_empty_root() {
        let empty = signed_head(&[], 0);
        assert_eq!(empty.head.root_hash, merkle::empty_root());
        let report = verify_entries(&log(2), Some(&empty), Some(&public_key()));
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.heads_checked, 1);
        let mut wrong = empty;
        wrong.head.root_hash = [0; 32];
        assert!(matches!(
            verify_entries(&log(2), Some(&wrong), None).first_problem(),
            Some(AuditCheckError::HeadMismatch { tree_size: 0, .. })
        ));
    }

    #[test]
    fn problems_read_as_sentences_naming_what_is_wrong() {
        let text = AuditCheckError::Chain(ChainBreak::HashMismatch { sequence: 5 }).to_string();
        assert!(text.contains("entry 5"), "{text}");
        let text = AuditCheckError::HeadBeyondLog {
            tree_size: 9,
            entries: 7,
        }
        .to_string();
        assert!(text.contains("tree size 9") && text.contains("7"), "{text}");
        assert!(text.contains("removed"), "{text}");
        let text = AuditCheckError::HeadMismatch {
            tree_size: 4,
            head_root: "ab".repeat(32),
            log_root: "cd".repeat(32),
        }
        .to_string();
        // The gateway's `reason` and the CLI both say this; auditors search for these words.
        assert!(
            text.contains("the signed head of tree size 4 does not match the log")
                && text.contains("tree head"),
            "{text}"
        );
        assert_eq!(AuditCheckError::NoSignedHead.sequence(), None);
    }
}
