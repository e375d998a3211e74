//! The audit log: one call per endpoint of the contract's "Audit log" section, and the offline
//! checks an auditor runs on what those calls return.
//!
//! The calls fetch; they never judge. Judging is done here, by pure functions that need nothing
//! but the gateway's answers and its public key, so that the verdict does not depend on trusting
//! the gateway that is being audited:
//!
//! - [`verify_signed_head`]: the gateway's key signed this tree head.
//! - [`check_inclusion`]: this entry, re-hashed from its own content, is leaf `sequence − 1` of
//!   the tree a signed head commits to.
//! - [`check_consistency`]: the tree an old signed head commits to is a prefix of the tree a
//!   newer one commits to, i.e. nothing the old head covered was rewritten.
//! - [`LogVerifier`] (and [`verify_entries`] for a slice): the hash chain of a whole log, and the
//!   Merkle root at each signed head's size, so that a log that was edited, cut short or rebuilt
//!   is caught and its first bad sequence named.
//!
//! Every hash is recomputed with `promptgate-audit`, the same code the gateway seals entries
//! with, from the exact forms the contract publishes.

use futures_util::stream::BoxStream;
use promptgate_api::{
    AuditEntry, AuditEntryRequest, AuditPublicKey, AuditVerification, BASE_PATH, ConsistencyProof,
    InclusionProof, SignedTreeHead,
};
use promptgate_audit::canonical::to_canonical_string;
use promptgate_audit::chain::{ChainBreak, ChainVerifier};
use promptgate_audit::head::{self, HeadError, TreeHead};
use promptgate_audit::merkle::{self, Hash, ProofError};
use reqwest::Method;
use serde_json::Value;

use crate::client::{Call, Client};
use crate::error::Error;

/// The hashing, Merkle and signature rules themselves (`promptgate-audit`), for callers who
/// recompute a hash or a root by hand: to cross-check their own auditing code, or to build a
/// forged log in a test and see it refused.
pub use promptgate_audit as rules;

/// Filters for [`Client::audit_entries`]; every part is optional, as in the contract.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries about this prompt (its id).
    pub prompt_id: Option<String>,
    /// Only this action (e.g. `PROMPT_CREATED`, or a client's own word).
    pub action: Option<String>,
    /// Only entries caused by this OAuth client id (`system` for the gateway's own).
    pub actor: Option<String>,
    /// Recorded at or after (RFC 3339).
    pub start_time: Option<String>,
    /// Recorded before (RFC 3339).
    pub end_time: Option<String>,
    /// Entries per request (1–500; the gateway's default is 50).
    pub page_size: Option<u32>,
}

impl AuditQuery {
    fn params(&self) -> Vec<(String, String)> {
        [
            ("promptId", &self.prompt_id),
            ("action", &self.action),
            ("actor", &self.actor),
            ("startTime", &self.start_time),
            ("endTime", &self.end_time),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .collect()
    }
}

impl Client {
    /// Appends a client entry (`POST …/audit-logs`, scope `ai:gateway:write`). The gateway adds
    /// its own time, this client as `actor`, the sequence and the hashes, and answers the stored
    /// entry, which is what an auditor will later re-hash.
    ///
    /// Not retried on a 5xx or a lost connection unless the client allows retrying non-idempotent
    /// calls: a retry could record the event twice.
    pub async fn append_audit_entry(
        &self,
        request: &AuditEntryRequest,
    ) -> Result<AuditEntry, Error> {
        let body = serde_json::to_value(request)
            .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))?;
        self.send(Call::with(
            Method::POST,
            format!("{BASE_PATH}/audit-logs"),
            Some(body),
        ))
        .await?
        .json()
    }

    /// Every entry matching `query` in sequence order (oldest first), fetched page by page as
    /// the stream is read. Unfiltered, this is the whole log in the order the chain links it.
    pub fn audit_entries(&self, query: &AuditQuery) -> BoxStream<'_, Result<AuditEntry, Error>> {
        self.paginate(
            format!("{BASE_PATH}/audit-logs"),
            query.params(),
            query.page_size,
        )
    }

    /// The entry at `sequence` (1-based).
    pub async fn audit_entry(&self, sequence: u64) -> Result<AuditEntry, Error> {
        self.send(Call::get(format!("{BASE_PATH}/audit-logs/{sequence}")))
            .await?
            .json()
    }

    /// The gateway's own verdict on its log (`GET …/audit-logs/verify`). Useful for monitoring;
    /// an auditor who does not trust the gateway replays the entries with [`LogVerifier`]
    /// instead.
    pub async fn verify_audit_log(&self) -> Result<AuditVerification, Error> {
        self.send(Call::get(format!("{BASE_PATH}/audit-logs/verify")))
            .await?
            .json()
    }

    /// The latest signed tree head. The gateway signs on demand, so it covers every entry that
    /// existed when it answered; keep it to demand a consistency proof later.
    pub async fn audit_checkpoint(&self) -> Result<SignedTreeHead, Error> {
        self.send(Call::get(format!("{BASE_PATH}/audit-logs/checkpoint")))
            .await?
            .json()
    }

    /// The key the gateway signs tree heads with. Fetching it over the same connection as the
    /// heads proves nothing by itself: compare it once with a copy obtained out of band, then
    /// keep that copy.
    pub async fn audit_public_key(&self) -> Result<AuditPublicKey, Error> {
        self.send(Call::get(format!("{BASE_PATH}/audit-logs/public-key")))
            .await?
            .json()
    }

    /// The inclusion proof of entry `sequence` in the tree of `tree_size` entries (the current
    /// tree when `None`). Check it with [`check_inclusion`] against a signed head of that size.
    pub async fn inclusion_proof(
        &self,
        sequence: u64,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, Error> {
        let mut call = Call::get(format!("{BASE_PATH}/audit-logs/{sequence}/proof"));
        if let Some(size) = tree_size {
            call.query.push(("treeSize".to_owned(), size.to_string()));
        }
        self.send(call).await?.json()
    }

    /// The consistency proof between the trees of `from` and `to` entries (the current tree
    /// when `to` is `None`). Check it with [`check_consistency`] against two signed heads.
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<ConsistencyProof, Error> {
        let mut call = Call::get(format!("{BASE_PATH}/audit-logs/consistency"));
        call.query.push(("from".to_owned(), from.to_string()));
        if let Some(to) = to {
            call.query.push(("to".to_owned(), to.to_string()));
        }
        self.send(call).await?.json()
    }
}

/// Why an offline check failed. Each variant says what was found to be wrong and, where one can
/// be named, the first sequence (entry) or tree size (signed head) concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditCheckError {
    /// Replaying the log found a broken link: an entry edited, removed, inserted or reordered.
    #[error("{}", describe_break(.0))]
    Chain(ChainBreak),
    /// An entry could not be read at all (for example a line of an export that is not JSON).
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
    /// The gateway's `keyId` does not belong to the public key it served with it.
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
        "the signed head of tree size {tree_size} does not match the log: it commits to root {head_root}, but the log's first {tree_size} entries have root {log_root} (an entry up to sequence {tree_size} was rewritten, or the head was altered)"
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
    /// unreadable or edited entry); `None` for problems of a signed head or a proof as a whole.
    pub fn sequence(&self) -> Option<u64> {
        match self {
            AuditCheckError::Chain(problem) => Some(problem.sequence()),
            AuditCheckError::Unreadable { sequence, .. }
            | AuditCheckError::StoredLeafMismatch { sequence }
            | AuditCheckError::EntryHashMismatch { sequence }
            | AuditCheckError::LeafMismatch { sequence } => Some(*sequence),
            _ => None,
        }
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

/// An Ed25519 public key of a gateway, the only thing an auditor needs besides the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads a key as the contract writes it (base64 of the 32 raw bytes) or as OpenSSL does (a
    /// PEM `PUBLIC KEY`), so a key kept in either form can be used as is.
    pub fn parse(text: &str) -> Result<PublicKey, AuditCheckError> {
        head::parse_public_key(text)
            .map(PublicKey)
            .map_err(|_| AuditCheckError::BadPublicKey)
    }

    /// Reads the gateway's `GET …/audit-logs/public-key` answer and checks that its `keyId`
    /// belongs to the key, so that the id printed next to it can be trusted to name it.
    pub fn from_wire(wire: &AuditPublicKey) -> Result<PublicKey, AuditCheckError> {
        let key = PublicKey::parse(&wire.public_key)?;
        let expected = key.key_id();
        if wire.key_id != expected {
            return Err(AuditCheckError::KeyIdMismatch {
                expected,
                found: wire.key_id.clone(),
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
}

/// The wire form of a signed tree head held in `promptgate-audit`'s form (as the store keeps
/// it), so heads read from a database are checked by the same functions as heads from the API.
pub fn wire_head(signed: &promptgate_audit::SignedTreeHead) -> SignedTreeHead {
    SignedTreeHead {
        tree_size: signed.head.tree_size,
        root_hash: merkle::to_hex(&signed.head.root_hash),
        timestamp: signed.head.timestamp.clone(),
        key_id: signed.key_id.clone(),
        signature: signed.signature.clone(),
    }
}

/// Checks that `key` signed `head`: the Ed25519 signature over the canonical JSON of
/// `{"treeSize", "rootHash", "timestamp"}`, and that the head names this key. A head that
/// verifies is the gateway's own statement of its log at that size, which is what makes every
/// other check here mean something.
pub fn verify_signed_head(head: &SignedTreeHead, key: &PublicKey) -> Result<(), AuditCheckError> {
    let signed = promptgate_audit::SignedTreeHead {
        head: TreeHead {
            tree_size: head.tree_size,
            root_hash: head_root(head)?,
            timestamp: head.timestamp.clone(),
        },
        key_id: head.key_id.clone(),
        signature: head.signature.clone(),
    };
    head::verify(&key.0, &signed).map_err(|reason| AuditCheckError::Signature {
        tree_size: head.tree_size,
        reason,
    })
}

/// The Merkle leaf hash of an entry, recomputed from its content (the entry without `hash`, as
/// RFC 8785 canonical JSON, prefixed with 0x00), never taken from what a proof claims.
pub fn leaf_hash_of(entry: &AuditEntry) -> Hash {
    merkle::leaf_hash(hashed_body(&entry_value(entry)).as_bytes())
}

/// Checks that `entry` is in the tree `head` commits to, using `proof`.
///
/// The leaf is recomputed from the entry itself, and the entry's own `hash` is checked against
/// its content, so a gateway that serves an altered entry with the original's proof is caught.
/// The proof must be for this entry and for the head's tree size, and lead to the head's root.
/// The head's signature is checked separately ([`verify_signed_head`]), since a caller may hold
/// a head it already checked.
pub fn check_inclusion(
    entry: &AuditEntry,
    proof: &InclusionProof,
    head: &SignedTreeHead,
) -> Result<(), AuditCheckError> {
    let sequence = entry.sequence;
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
    if proof.tree_size != head.tree_size {
        return Err(AuditCheckError::ProofMismatch(format!(
            "it is for the tree of size {}, but the signed head is of size {}",
            proof.tree_size, head.tree_size
        )));
    }
    let signed_root = head_root(head)?;
    let value = entry_value(entry);
    let body = hashed_body(&value);
    check_entry_hash(entry, body.as_bytes())?;
    let leaf = merkle::leaf_hash(body.as_bytes());
    let path = proof
        .audit_path
        .iter()
        .map(|h| merkle::from_hex(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed("inclusion proof", "an auditPath hash is not 64 hex digits"))?;
    let served_root = proof.root_hash.as_str();
    let served_leaf = proof.leaf_hash.as_str();
    match merkle::verify_inclusion(&leaf, sequence - 1, head.tree_size, &path, &signed_root) {
        Ok(()) if served_leaf != merkle::to_hex(&leaf) => {
            Err(AuditCheckError::LeafMismatch { sequence })
        }
        Ok(()) if served_root != head.root_hash => Err(root_mismatch(head, served_root)),
        Ok(()) => Ok(()),
        // Say which claim is false, most telling first: a tree that is not the signed one, then
        // an entry that is not the one in the tree, then a proof that is simply wrong.
        Err(_) if served_root != head.root_hash => Err(root_mismatch(head, served_root)),
        Err(_) if served_leaf != merkle::to_hex(&leaf) => {
            Err(AuditCheckError::LeafMismatch { sequence })
        }
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
    if old.tree_size > new.tree_size {
        return Err(AuditCheckError::ProofMismatch(format!(
            "the old head (size {}) is larger than the new one (size {}); a log only grows",
            old.tree_size, new.tree_size
        )));
    }
    if proof.from != old.tree_size || proof.to != new.tree_size {
        return Err(AuditCheckError::ProofMismatch(format!(
            "it is between sizes {} and {}, but the heads are of sizes {} and {}",
            proof.from, proof.to, old.tree_size, new.tree_size
        )));
    }
    let old_root = head_root(old)?;
    let new_root = head_root(new)?;
    let hashes = proof
        .proof
        .iter()
        .map(|h| merkle::from_hex(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed("consistency proof", "a proof hash is not 64 hex digits"))?;
    let verdict =
        merkle::verify_consistency(old.tree_size, new.tree_size, &old_root, &new_root, &hashes);
    if proof.from_root != old.root_hash {
        return Err(root_mismatch(old, &proof.from_root));
    }
    if proof.to_root != new.root_hash {
        return Err(root_mismatch(new, &proof.to_root));
    }
    verdict.map_err(AuditCheckError::ProofFailed)
}

/// Replays a log entry by entry (in sequence order) and checks it against signed tree heads.
///
/// The chain (every entry's `prevHash` and `hash`) catches an entry edited, removed, inserted or
/// reordered, and names the first bad sequence. It cannot catch a log rebuilt from some entry on
/// with every later hash recomputed, nor a log cut short at its end: the signed heads do, since
/// the Merkle root of the log's first `treeSize` entries must equal each head's `rootHash`, and
/// the log must hold at least `treeSize` entries. With a public key every head's signature is
/// checked too; without one, a head only shows that the log still matches that head's text.
///
/// Memory stays constant per entry, so a log of any length can be streamed through.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    chain: ChainVerifier,
    /// Heads not yet reached, by tree size, each with its root read (or why it could not be).
    pending: Vec<(SignedTreeHead, Result<Hash, AuditCheckError>)>,
    key: Option<PublicKey>,
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
    /// How many of them had their signature verified (0 without a public key).
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

    /// The problem to report first.
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
    /// reaches their sizes, and their signatures with `key` when one is given.
    pub fn new(heads: Vec<SignedTreeHead>, key: Option<PublicKey>) -> LogVerifier {
        let mut pending: Vec<_> = heads
            .into_iter()
            .map(|head| {
                let root = head_root(&head);
                (head, root)
            })
            .collect();
        // Largest last, so the next head to reach is popped from the end.
        pending.sort_by_key(|(head, _)| std::cmp::Reverse(head.tree_size));
        let mut verifier = LogVerifier {
            chain: ChainVerifier::new(),
            pending,
            key,
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

    /// Checks the next entry as the SDK returns it.
    pub fn push_entry(&mut self, entry: &AuditEntry) {
        self.push(&entry_value(entry));
    }

    /// Checks the next entry together with the Merkle leaf hash stored beside it (as a database
    /// holds it): the gateway builds its proofs from stored leaf hashes, so one that does not
    /// match the content would prove something else.
    pub fn push_with_stored_leaf(&mut self, entry: &Value, stored_leaf: &Hash) {
        let sequence = self.chain.len() + 1;
        let leaf = merkle::leaf_hash(hashed_body(entry).as_bytes());
        if leaf != *stored_leaf && self.entry_problem.is_none() {
            self.entry_problem = Some(AuditCheckError::StoredLeafMismatch { sequence });
        }
        self.push(entry);
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
    /// with a public key and no head at all, [`AuditCheckError::NoSignedHead`], since signatures
    /// were asked for and nothing signed vouches for the log.
    pub fn finish(mut self) -> LogReport {
        let report = self.chain.report();
        let entries = report.entries;
        while let Some((head, _)) = self.pending.pop() {
            self.head_problems.push(AuditCheckError::HeadBeyondLog {
                tree_size: head.tree_size,
                entries,
            });
        }
        if self.key.is_some() && self.heads_checked == 0 && self.head_problems.is_empty() {
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
            .is_some_and(|(head, _)| head.tree_size == self.chain.len())
        {
            let Some((head, root)) = self.pending.pop() else {
                break;
            };
            self.heads_checked += 1;
            if let Some(problem) = self.check_head(&head, root) {
                self.head_problems.push(problem);
            }
        }
    }

    fn check_head(
        &mut self,
        head: &SignedTreeHead,
        root: Result<Hash, AuditCheckError>,
    ) -> Option<AuditCheckError> {
        let root = match root {
            Ok(root) => root,
            Err(problem) => return Some(problem),
        };
        if let Some(key) = &self.key {
            if let Err(problem) = verify_signed_head(head, key) {
                return Some(problem);
            }
            self.signatures_checked += 1;
        }
        let log_root = self.chain.root();
        (log_root != root).then(|| AuditCheckError::HeadMismatch {
            tree_size: head.tree_size,
            head_root: head.root_hash.clone(),
            log_root: merkle::to_hex(&log_root),
        })
    }
}

/// Replays `entries` (in sequence order) with [`LogVerifier`], checking `head` against them when
/// given, and its signature when `key` is given too.
pub fn verify_entries(
    entries: &[AuditEntry],
    head: Option<&SignedTreeHead>,
    key: Option<&PublicKey>,
) -> LogReport {
    let mut verifier = LogVerifier::new(head.cloned().into_iter().collect(), key.cloned());
    entries.iter().for_each(|entry| verifier.push_entry(entry));
    verifier.finish()
}

/// The served form of an entry. Serialising cannot fail for this type (string keys only); if it
/// ever did, `null` fails verification at that sequence rather than passing silently.
fn entry_value(entry: &AuditEntry) -> Value {
    serde_json::to_value(entry).unwrap_or(Value::Null)
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
fn check_entry_hash(entry: &AuditEntry, body: &[u8]) -> Result<(), AuditCheckError> {
    let what = || format!("entry {}", entry.sequence);
    let prev = merkle::from_hex(&entry.prev_hash)
        .map_err(|_| malformed(&what(), "prevHash is not 64 lowercase hex digits"))?;
    let stored = merkle::from_hex(&entry.hash)
        .map_err(|_| malformed(&what(), "hash is not 64 lowercase hex digits"))?;
    if promptgate_audit::entry::chain_hash(&prev, body) == stored {
        Ok(())
    } else {
        Err(AuditCheckError::EntryHashMismatch {
            sequence: entry.sequence,
        })
    }
}

fn head_root(head: &SignedTreeHead) -> Result<Hash, AuditCheckError> {
    merkle::from_hex(&head.root_hash).map_err(|_| AuditCheckError::MalformedHead {
        tree_size: head.tree_size,
        reason: "rootHash is not 64 lowercase hex digits".to_owned(),
    })
}

fn root_mismatch(head: &SignedTreeHead, served_root: &str) -> AuditCheckError {
    AuditCheckError::RootMismatch {
        tree_size: head.tree_size,
        head_root: head.root_hash.clone(),
        served_root: served_root.to_owned(),
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
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use ed25519_dalek::SigningKey;
    use promptgate_audit::{AuditDraft, GENESIS_HASH};
    use serde_json::json;

    const SIGNED_AT: &str = "2026-11-27T04:15:39.123Z";

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn public_key() -> PublicKey {
        PublicKey(signing_key().verifying_key())
    }

    fn other_key() -> PublicKey {
        PublicKey(SigningKey::from_bytes(&[8; 32]).verifying_key())
    }

    /// A log of `n` sealed entries in the served form, as the SDK returns them.
    fn log(n: u64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|sequence| {
                let draft = AuditDraft::new("c1", "CREATE", None, json!({"n": sequence}));
                let sealed = draft.seal(sequence, &prev);
                prev = sealed.hash;
                serde_json::from_value(sealed.to_value()).expect("a served entry")
            })
            .collect()
    }

    fn leaves(entries: &[AuditEntry]) -> Vec<Hash> {
        entries.iter().map(leaf_hash_of).collect()
    }

    /// The head of the first `size` entries, signed with `signing_key()`.
    fn signed_head(entries: &[AuditEntry], size: u64) -> SignedTreeHead {
        let root = merkle::root(&leaves(entries)[..size as usize]);
        wire_head(&head::sign(
            &signing_key(),
            TreeHead {
                tree_size: size,
                root_hash: root,
                timestamp: SIGNED_AT.to_owned(),
            },
        ))
    }

    fn inclusion(entries: &[AuditEntry], sequence: u64, size: u64) -> InclusionProof {
        let all = leaves(entries);
        let path = merkle::inclusion_proof(&all, sequence - 1, size).expect("a proof");
        InclusionProof {
            sequence,
            leaf_index: sequence - 1,
            tree_size: size,
            leaf_hash: merkle::to_hex(&all[sequence as usize - 1]),
            audit_path: path.iter().map(merkle::to_hex).collect(),
            root_hash: merkle::to_hex(&merkle::root(&all[..size as usize])),
        }
    }

    fn consistency(entries: &[AuditEntry], from: u64, to: u64) -> ConsistencyProof {
        let all = leaves(entries);
        let proof = merkle::consistency_proof(&all, from, to).expect("a proof");
        ConsistencyProof {
            from,
            to,
            from_root: merkle::to_hex(&merkle::root(&all[..from as usize])),
            to_root: merkle::to_hex(&merkle::root(&all[..to as usize])),
            proof: proof.iter().map(merkle::to_hex).collect(),
        }
    }

    /// Flips the lowest bit of the hex digit at `at` (keeping it a lowercase hex digit).
    fn flip(hex: &str, at: usize) -> String {
        let mut bytes = hex.as_bytes().to_vec();
        bytes[at] = match bytes[at] {
            b'0' => b'1',
            b'1' => b'0',
            b'f' => b'e',
            b'e' => b'f',
            other => other ^ 1,
        };
        String::from_utf8(bytes).expect("hex")
    }

    /// Entry `sequence` rewritten (a new detail) and given a correct hash for its new content,
    /// and every later entry re-chained: what an operator with database access could produce.
    fn rewritten(entries: &[AuditEntry], sequence: u64) -> Vec<AuditEntry> {
        let mut out = entries.to_vec();
        let mut prev = if sequence == 1 {
            GENESIS_HASH
        } else {
            merkle::from_hex(&out[sequence as usize - 2].hash).expect("hex")
        };
        for entry in out.iter_mut().skip(sequence as usize - 1) {
            if entry.sequence == sequence {
                entry.details = json!({"n": "rewritten"});
            }
            entry.prev_hash = merkle::to_hex(&prev);
            let body = hashed_body(&entry_value(entry));
            prev = promptgate_audit::entry::chain_hash(&prev, body.as_bytes());
            entry.hash = merkle::to_hex(&prev);
        }
        out
    }

    #[test]
    fn a_signed_head_verifies_with_its_key_only() {
        let entries = log(3);
        let head = signed_head(&entries, 3);
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
        bigger.tree_size = 4;
        assert_eq!(
            verify_signed_head(&bigger, &public_key()),
            Err(AuditCheckError::Signature {
                tree_size: 4,
                reason: HeadError::InvalidSignature
            })
        );
        let mut other_root = head.clone();
        other_root.root_hash = flip(&head.root_hash, 10);
        assert!(matches!(
            verify_signed_head(&other_root, &public_key()),
            Err(AuditCheckError::Signature {
                reason: HeadError::InvalidSignature,
                ..
            })
        ));
        let mut later = head.clone();
        later.timestamp = "2026-11-28T00:00:00.000Z".into();
        assert!(verify_signed_head(&later, &public_key()).is_err());
        let mut garbled = head.clone();
        garbled.signature = "not base64!".into();
        assert!(matches!(
            verify_signed_head(&garbled, &public_key()),
            Err(AuditCheckError::Signature {
                reason: HeadError::BadSignature,
                ..
            })
        ));
        let mut not_hex = head;
        not_hex.root_hash = "XYZ".into();
        assert!(matches!(
            verify_signed_head(&not_hex, &public_key()),
            Err(AuditCheckError::MalformedHead { tree_size: 3, .. })
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
        assert_eq!(PublicKey::parse("AAAA"), Err(AuditCheckError::BadPublicKey));
        assert_eq!(
            PublicKey::parse("/no/such/file"),
            Err(AuditCheckError::BadPublicKey)
        );

        let wire = AuditPublicKey {
            key_id: key.key_id(),
            public_key: base64.clone(),
        };
        assert_eq!(PublicKey::from_wire(&wire), Ok(key.clone()));
        let lying = AuditPublicKey {
            key_id: other_key().key_id(),
            public_key: base64,
        };
        assert_eq!(
            PublicKey::from_wire(&lying),
            Err(AuditCheckError::KeyIdMismatch {
                expected: key.key_id(),
                found: other_key().key_id(),
            })
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
    fn an_entry_with_a_member_this_build_does_not_know_still_verifies() {
        let mut prev = GENESIS_HASH;
        let mut values = Vec::new();
        for sequence in 1..=3u64 {
            let mut value = AuditDraft::new("c1", "CREATE", None, json!({}))
                .seal(sequence, &prev)
                .to_value();
            let object = value.as_object_mut().expect("object");
            object.remove("hash");
            object.insert("futureMember".into(), json!({"z": 1, "a": [true]}));
            let body = to_canonical_string(&value);
            prev = promptgate_audit::entry::chain_hash(&prev, body.as_bytes());
            value["hash"] = json!(merkle::to_hex(&prev));
            values.push(value);
        }
        let entries: Vec<AuditEntry> = values
            .iter()
            .map(|v| serde_json::from_value(v.clone()).expect("an entry"))
            .collect();
        assert!(entries[0].extra.contains_key("futureMember"));
        let head = signed_head(&entries, 3);
        assert_eq!(
            check_inclusion(&entries[1], &inclusion(&entries, 2, 3), &head),
            Ok(())
        );
        let report = verify_entries(&entries, Some(&head), Some(&public_key()));
        assert!(report.is_valid(), "{:?}", report.problems);
    }

    #[test]
    fn an_edited_entry_is_not_proven() {
        let entries = log(5);
        let head = signed_head(&entries, 5);
        let proof = inclusion(&entries, 3, 5);
        let mut edited = entries[2].clone();
        edited.details = json!({"n": 99});
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
        claimed.leaf_hash = merkle::to_hex(&leaf_hash_of(&forged[2]));
        assert_eq!(
            check_inclusion(&forged[2], &claimed, &head),
            Err(AuditCheckError::ProofFailed(ProofError::RootMismatch))
        );
        let mut bad_prev = entries[2].clone();
        bad_prev.prev_hash = "zz".into();
        assert!(matches!(
            check_inclusion(&bad_prev, &proof, &head),
            Err(AuditCheckError::Malformed { .. })
        ));
        let mut bad_hash = entries[2].clone();
        bad_hash.hash = "ABCD".into();
        assert!(matches!(
            check_inclusion(&bad_hash, &proof, &head),
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
            flipped.audit_path[i] = flip(&proof.audit_path[i], 63);
            assert_eq!(
                check_inclusion(&entries[2], &flipped, &head),
                Err(AuditCheckError::ProofFailed(ProofError::RootMismatch)),
                "hash {i}"
            );
        }
        let mut short = proof.clone();
        short.audit_path.pop();
        assert!(matches!(
            check_inclusion(&entries[2], &short, &head),
            Err(AuditCheckError::ProofFailed(ProofError::WrongLength { .. }))
        ));
        let mut not_hex = proof;
        not_hex.audit_path[0] = "ABC".into();
        assert!(matches!(
            check_inclusion(&entries[2], &not_hex, &head),
            Err(AuditCheckError::Malformed { .. })
        ));
    }

    #[test]
    fn a_proof_against_a_head_it_does_not_match_fails() {
        let entries = log(6);
        let head = signed_head(&entries, 6);
        let proof = inclusion(&entries, 2, 6);
        // A head whose root was altered: the gateway's tree is not the one it claims.
        let mut altered = head.clone();
        altered.root_hash = flip(&head.root_hash, 0);
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
        zero.sequence = 0;
        let mut zero_proof = proof.clone();
        zero_proof.sequence = 0;
        assert!(matches!(
            check_inclusion(&zero, &zero_proof, &head),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        let mut wrong_index = proof.clone();
        wrong_index.leaf_index = 4;
        assert!(matches!(
            check_inclusion(&entries[1], &wrong_index, &head),
            Err(AuditCheckError::ProofMismatch(_))
        ));
        let mut not_hex = head;
        not_hex.root_hash = "nope".into();
        assert!(matches!(
            check_inclusion(&entries[1], &proof, &not_hex),
            Err(AuditCheckError::MalformedHead { .. })
        ));
    }

    #[test]
    fn a_valid_path_with_false_claims_beside_it_fails() {
        let entries = log(4);
        let head = signed_head(&entries, 4);
        let proof = inclusion(&entries, 4, 4);
        let mut wrong_leaf = proof.clone();
        wrong_leaf.leaf_hash = flip(&proof.leaf_hash, 5);
        assert_eq!(
            check_inclusion(&entries[3], &wrong_leaf, &head),
            Err(AuditCheckError::LeafMismatch { sequence: 4 })
        );
        let mut wrong_root = proof;
        wrong_root.root_hash = flip(&head.root_hash, 5);
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
        claimed.from_root = old.root_hash.clone();
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
            flipped.proof[i] = flip(&proof.proof[i], 31);
            assert_eq!(
                check_consistency(&flipped, &old, &new),
                Err(AuditCheckError::ProofFailed(ProofError::RootMismatch)),
                "hash {i}"
            );
        }
        let mut altered_new = new.clone();
        altered_new.root_hash = flip(&new.root_hash, 1);
        assert!(matches!(
            check_consistency(&proof, &old, &altered_new),
            Err(AuditCheckError::RootMismatch { tree_size: 11, .. })
        ));
        let mut not_hex = proof.clone();
        not_hex.proof[0] = "12".into();
        assert!(matches!(
            check_consistency(&not_hex, &old, &new),
            Err(AuditCheckError::Malformed { .. })
        ));
        let mut bad_head = old.clone();
        bad_head.root_hash = String::new();
        assert!(matches!(
            check_consistency(&proof, &bad_head, &new),
            Err(AuditCheckError::MalformedHead { tree_size: 6, .. })
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
        let mut verifier = LogVerifier::new(heads, Some(public_key()));
        assert!(verifier.is_empty());
        entries.iter().for_each(|e| verifier.push_entry(e));
        assert_eq!(verifier.len(), 10);
        let report = verifier.finish();
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.entries, 10);
        assert_eq!(report.head_sequence, 10);
        assert_eq!(report.head_hash, entries[9].hash);
        assert_eq!(report.root_hash, signed_head(&entries, 10).root_hash);
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
        entries[4].details = json!({"n": "edited"});
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
                assert_eq!(head_root, &old_head.root_hash);
                assert_eq!(log_root, &signed_head(&forged, 6).root_hash);
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
        altered.root_hash = flip(&head.root_hash, 3);
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
        let mut not_hex = head;
        not_hex.root_hash = "0".into();
        assert!(matches!(
            verify_entries(&entries, Some(&not_hex), None).first_problem(),
            Some(AuditCheckError::MalformedHead { tree_size: 3, .. })
        ));
    }

    #[test]
    fn signatures_asked_for_without_any_head_is_a_problem() {
        let entries = log(2);
        assert_eq!(
            verify_entries(&entries, None, Some(&public_key())).problems,
            vec![AuditCheckError::NoSignedHead]
        );
    }

    #[test]
    fn an_unreadable_entry_is_named_and_later_ones_keep_their_places() {
        let entries = log(4);
        let mut verifier = LogVerifier::new(Vec::new(), None);
        verifier.push_entry(&entries[0]);
        verifier.push_unreadable("line 2 is not JSON");
        verifier.push_entry(&entries[2]);
        verifier.push_entry(&entries[3]);
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
        entries[0].details = json!("edited");
        let mut verifier = LogVerifier::new(Vec::new(), None);
        verifier.push_entry(&entries[0]);
        verifier.push_entry(&entries[1]);
        verifier.push_unreadable("garbage");
        let report = verifier.finish();
        assert_eq!(report.first_invalid_sequence(), Some(1));
        assert_eq!(report.problems.len(), 1);
    }

    #[test]
    fn a_stored_leaf_hash_that_does_not_match_its_entry_is_named() {
        let entries = log(3);
        let mut verifier = LogVerifier::new(Vec::new(), None);
        for (i, entry) in entries.iter().enumerate() {
            let mut leaf = leaf_hash_of(entry);
            if i == 1 {
                leaf[0] ^= 1;
            }
            verifier.push_with_stored_leaf(&entry_value(entry), &leaf);
        }
        assert_eq!(
            verifier.finish().problems,
            vec![AuditCheckError::StoredLeafMismatch { sequence: 2 }]
        );

        // An entry edited in place has a stale leaf too; the edit is what is reported.
        let mut verifier = LogVerifier::new(Vec::new(), None);
        let mut edited = entry_value(&entries[0]);
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
        assert_eq!(empty.root_hash, merkle::to_hex(&merkle::empty_root()));
        let report = verify_entries(&log(2), Some(&empty), Some(&public_key()));
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.heads_checked, 1);
        let mut wrong = empty;
        wrong.root_hash = "00".repeat(32);
        assert!(matches!(
            verify_entries(&log(2), Some(&wrong), None).first_problem(),
            Some(AuditCheckError::HeadMismatch { tree_size: 0, .. })
        ));
    }

    #[test]
    fn wire_heads_carry_every_member_of_the_signed_head() {
        let signed = head::sign(
            &signing_key(),
            TreeHead {
                tree_size: 2,
                root_hash: [0xab; 32],
                timestamp: SIGNED_AT.into(),
            },
        );
        let wire = wire_head(&signed);
        assert_eq!(wire.tree_size, 2);
        assert_eq!(wire.root_hash, "ab".repeat(32));
        assert_eq!(wire.timestamp, SIGNED_AT);
        assert_eq!(wire.key_id, public_key().key_id());
        assert_eq!(wire.signature, signed.signature);
        assert_eq!(verify_signed_head(&wire, &public_key()), Ok(()));
    }

    #[test]
    fn the_query_sends_only_the_filters_given() {
        let query = AuditQuery {
            prompt_id: Some("p".into()),
            actor: Some("system".into()),
            end_time: Some("2026-01-01T00:00:00Z".into()),
            page_size: Some(10),
            ..AuditQuery::default()
        };
        assert_eq!(
            query.params(),
            vec![
                ("promptId".to_owned(), "p".to_owned()),
                ("actor".to_owned(), "system".to_owned()),
                ("endTime".to_owned(), "2026-01-01T00:00:00Z".to_owned()),
            ]
        );
        assert!(AuditQuery::default().params().is_empty());
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
        assert_eq!(AuditCheckError::NoSignedHead.sequence(), None);
    }
}
