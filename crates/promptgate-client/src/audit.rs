//! The audit log: one call per endpoint of the contract's "Audit log" section, and the offline
//! checks an auditor runs on what those calls return.
//!
//! The calls fetch; they never judge. Judging is done offline, by pure functions that need nothing
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
//! The checks themselves are `promptgate-audit`'s ([`rules::verify`]): the same code the gateway
//! seals entries with and runs for its own `verify`, so the SDK, the CLI and the gateway name the
//! same first bad sequence with the same words. This module only reads the contract's wire forms
//! into that crate's types (hex into hashes) and back.

use futures_util::stream::BoxStream;
use promptgate_api::{
    AuditEntry, AuditEntryRequest, AuditPublicKey, AuditVerification, BASE_PATH, ConsistencyProof,
    InclusionProof, SignedTreeHead,
};
use promptgate_audit::head::TreeHead;
use promptgate_audit::merkle::{self, Hash};
use promptgate_audit::verify::Signatures;
use reqwest::Method;
use serde_json::Value;

use crate::client::{Call, Client};
use crate::error::Error;

/// The hashing, Merkle and signature rules themselves (`promptgate-audit`), for callers who
/// recompute a hash or a root by hand: to cross-check their own auditing code, or to build a
/// forged log in a test and see it refused.
pub use promptgate_audit as rules;

/// The verdicts, shared with the gateway's own `verify` and the CLI (see [`rules::verify`]).
pub use promptgate_audit::verify::{AuditCheckError, HeadToCheck, LogReport};

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

/// An Ed25519 public key of a gateway, the only thing an auditor needs besides the log.
///
/// A thin wrapper of [`rules::PublicKey`] so that it can also be read from the contract's wire
/// form ([`PublicKey::from_wire`]); convert with `From` either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(rules::PublicKey);

impl PublicKey {
    /// Reads a key as the contract writes it (base64 of the 32 raw bytes) or as OpenSSL does (a
    /// PEM `PUBLIC KEY`), so a key kept in either form can be used as is.
    pub fn parse(text: &str) -> Result<PublicKey, AuditCheckError> {
        rules::PublicKey::parse(text).map(PublicKey)
    }

    /// Reads the gateway's `GET …/audit-logs/public-key` answer and checks that its `keyId`
    /// belongs to the key, so that the id printed next to it can be trusted to name it.
    pub fn from_wire(wire: &AuditPublicKey) -> Result<PublicKey, AuditCheckError> {
        rules::PublicKey::from_published(&wire.key_id, &wire.public_key).map(PublicKey)
    }

    /// The contract's key id: the first 16 hex digits of the SHA-256 of the raw key, the value
    /// signed heads carry as `keyId`.
    pub fn key_id(&self) -> String {
        self.0.key_id()
    }

    /// Base64 of the 32 raw bytes, the contract's form.
    pub fn to_base64(&self) -> String {
        self.0.to_base64()
    }
}

impl From<rules::PublicKey> for PublicKey {
    /// A key already read by `promptgate-audit` (or made from a signing key in a test).
    fn from(key: rules::PublicKey) -> PublicKey {
        PublicKey(key)
    }
}

impl From<PublicKey> for rules::PublicKey {
    /// For checks that run on `promptgate-audit`'s types directly (a database replayed by the
    /// gateway's own code, as `promptgate audit verify --database-url` does).
    fn from(key: PublicKey) -> rules::PublicKey {
        key.0
    }
}

/// The wire form of a signed tree head held in `promptgate-audit`'s form (as the store keeps
/// it), so heads read from a database can be printed and saved like heads from the API.
pub fn wire_head(signed: &promptgate_audit::SignedTreeHead) -> SignedTreeHead {
    SignedTreeHead {
        tree_size: signed.head.tree_size,
        root_hash: merkle::to_hex(&signed.head.root_hash),
        timestamp: signed.head.timestamp.clone(),
        key_id: signed.key_id.clone(),
        signature: signed.signature.clone(),
    }
}

/// A wire head as [`rules::LogVerifier`] takes it: one whose `rootHash` is not hex is kept as
/// [`HeadToCheck::Malformed`], so it is reported at its size like any head that does not match,
/// rather than stopping the replay.
pub fn head_to_check(head: &SignedTreeHead) -> HeadToCheck {
    match rules_head(head) {
        Ok(signed) => HeadToCheck::Signed(signed),
        Err(_) => HeadToCheck::Malformed {
            tree_size: head.tree_size,
            reason: BAD_ROOT.to_owned(),
        },
    }
}

/// Checks that `key` signed `head`: the Ed25519 signature over the canonical JSON of
/// `{"treeSize", "rootHash", "timestamp"}`, and that the head names this key. A head that
/// verifies is the gateway's own statement of its log at that size, which is what makes every
/// other check here mean something.
pub fn verify_signed_head(head: &SignedTreeHead, key: &PublicKey) -> Result<(), AuditCheckError> {
    rules::verify::verify_signed_head(&rules_head(head)?, &key.0)
}

/// The Merkle leaf hash of an entry, recomputed from its content (the entry without `hash`, as
/// RFC 8785 canonical JSON, prefixed with 0x00), never taken from what a proof claims.
pub fn leaf_hash_of(entry: &AuditEntry) -> Hash {
    rules::verify::leaf_hash_of(&entry_value(entry))
}

/// Checks that `entry` is in the tree `head` commits to, using `proof`.
///
/// The leaf is recomputed from the entry itself, and the entry's own `hash` is checked against
/// its content, so a gateway that serves an altered entry with the original's proof is caught.
/// The proof must be for this entry and for the head's tree size, and lead to the head's root.
/// The head's signature is checked separately ([`verify_signed_head`]), since a caller may hold
/// a head it already checked. A hash that is not 64 lowercase hex digits, in the head or the
/// proof, is reported before anything else is compared.
pub fn check_inclusion(
    entry: &AuditEntry,
    proof: &InclusionProof,
    head: &SignedTreeHead,
) -> Result<(), AuditCheckError> {
    let head = rules_head(head)?;
    let what = "inclusion proof";
    let proof = rules::InclusionProof {
        sequence: proof.sequence,
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        leaf_hash: read_hash(&proof.leaf_hash, what, "leafHash is not 64 hex digits")?,
        audit_path: read_hashes(
            &proof.audit_path,
            what,
            "an auditPath hash is not 64 hex digits",
        )?,
        root_hash: read_hash(&proof.root_hash, what, "rootHash is not 64 hex digits")?,
    };
    rules::verify::check_inclusion(&entry_value(entry), &proof, &head)
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
    let old = rules_head(old)?;
    let new = rules_head(new)?;
    let what = "consistency proof";
    let proof = rules::ConsistencyProof {
        from: proof.from,
        to: proof.to,
        from_root: read_hash(&proof.from_root, what, "fromRoot is not 64 hex digits")?,
        to_root: read_hash(&proof.to_root, what, "toRoot is not 64 hex digits")?,
        proof: read_hashes(&proof.proof, what, "a proof hash is not 64 hex digits")?,
    };
    rules::verify::check_consistency(&proof, &old, &new)
}

/// Replays a log entry by entry (in sequence order) and checks it against signed tree heads:
/// [`rules::LogVerifier`] fed with the SDK's types.
///
/// The chain (every entry's `prevHash` and `hash`) catches an entry edited, removed, inserted or
/// reordered, and names the first bad sequence. It cannot catch a log rebuilt from some entry on
/// with every later hash recomputed, nor a log cut short at its end: the signed heads do, since
/// the Merkle root of the log's first `treeSize` entries must equal each head's `rootHash`, and
/// the log must hold at least `treeSize` entries. With a public key every head's signature is
/// checked too, and at least one head must cover the log; without one, a head only shows that
/// the log still matches that head's text.
///
/// Memory stays constant per entry, so a log of any length can be streamed through.
#[derive(Debug, Clone)]
pub struct LogVerifier(rules::LogVerifier);

impl LogVerifier {
    /// A verifier at the start of the log that will check `heads` (in any order) when the log
    /// reaches their sizes, and their signatures with `key` when one is given.
    pub fn new(heads: Vec<SignedTreeHead>, key: Option<PublicKey>) -> LogVerifier {
        let signatures = match key {
            Some(key) => Signatures::Required(key.0),
            None => Signatures::Unchecked,
        };
        LogVerifier(rules::LogVerifier::new(
            heads.iter().map(head_to_check),
            signatures,
        ))
    }

    /// Checks the next entry, in the served form (the entry object with its `hash`).
    pub fn push(&mut self, entry: &Value) {
        self.0.push(entry);
    }

    /// Checks the next entry as the SDK returns it.
    pub fn push_entry(&mut self, entry: &AuditEntry) {
        self.0.push(&entry_value(entry));
    }

    /// Checks the next entry together with the Merkle leaf hash stored beside it (as a database
    /// holds it): the gateway builds its proofs from stored leaf hashes, so one that does not
    /// match the content would prove something else.
    pub fn push_with_stored_leaf(&mut self, entry: &Value, stored_leaf: &Hash) {
        self.0.push_with_stored_leaf(entry, stored_leaf);
    }

    /// Counts an entry that could not be read at all at the next position, so that it is
    /// named and later entries keep their places.
    pub fn push_unreadable(&mut self, reason: &str) {
        self.0.push_unreadable(reason);
    }

    /// How many entries were read so far.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether no entry was read yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The verdict. Heads larger than the log are reported as [`AuditCheckError::HeadBeyondLog`];
    /// with a public key and no head at all, [`AuditCheckError::NoSignedHead`], since signatures
    /// were asked for and nothing signed vouches for the log.
    pub fn finish(self) -> LogReport {
        self.0.finish()
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

const BAD_ROOT: &str = "rootHash is not 64 lowercase hex digits";

/// A wire head in `promptgate-audit`'s form; only its root needs reading.
fn rules_head(head: &SignedTreeHead) -> Result<promptgate_audit::SignedTreeHead, AuditCheckError> {
    let root_hash =
        merkle::from_hex(&head.root_hash).map_err(|_| AuditCheckError::MalformedHead {
            tree_size: head.tree_size,
            reason: BAD_ROOT.to_owned(),
        })?;
    Ok(promptgate_audit::SignedTreeHead {
        head: TreeHead {
            tree_size: head.tree_size,
            root_hash,
            timestamp: head.timestamp.clone(),
        },
        key_id: head.key_id.clone(),
        signature: head.signature.clone(),
    })
}

fn read_hash(hex: &str, what: &str, reason: &str) -> Result<Hash, AuditCheckError> {
    merkle::from_hex(hex).map_err(|_| AuditCheckError::Malformed {
        what: what.to_owned(),
        reason: reason.to_owned(),
    })
}

fn read_hashes(hexes: &[String], what: &str, reason: &str) -> Result<Vec<Hash>, AuditCheckError> {
    hexes
        .iter()
        .map(|hex| read_hash(hex, what, reason))
        .collect()
}

#[cfg(test)]
mod tests {
    //! The checks themselves are tested in `promptgate-audit` (`verify.rs`); these test what the
    //! SDK adds: reading the wire forms (and refusing what is not hex), and that each adapter
    //! reaches the same verdicts on the SDK's types.

    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use ed25519_dalek::SigningKey;
    use promptgate_audit::chain::ChainBreak;
    use promptgate_audit::head::{self, HeadError};
    use promptgate_audit::merkle::ProofError;
    use promptgate_audit::{AuditDraft, GENESIS_HASH};
    use serde_json::json;

    const SIGNED_AT: &str = "2026-11-27T04:15:39.123Z";

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn public_key() -> PublicKey {
        PublicKey::from(rules::PublicKey::from(signing_key().verifying_key()))
    }

    fn other_key() -> PublicKey {
        PublicKey::from(rules::PublicKey::from(
            SigningKey::from_bytes(&[8; 32]).verifying_key(),
        ))
    }

    /// A log of `n` sealed entries in the served form, as the SDK returns them.
    fn log(n: u64) -> Vec<AuditEntry> {
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
        let mut digits: Vec<char> = hex.chars().collect();
        let value = digits[at].to_digit(16).expect("a hex digit");
        digits[at] = char::from_digit(value ^ 1, 16).expect("a hex digit");
        digits.into_iter().collect()
    }

    #[test]
    fn public_keys_are_read_from_the_wire_and_their_ids_checked() {
        let key = public_key();
        let base64 = key.to_base64();
        assert_eq!(PublicKey::parse(&base64), Ok(key.clone()));
        assert_eq!(PublicKey::parse("AAAA"), Err(AuditCheckError::BadPublicKey));
        assert_eq!(key.key_id().len(), 16);
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
        let rules_key = rules::PublicKey::from(key.clone());
        assert_eq!(rules_key.key_id(), key.key_id());
        assert_eq!(PublicKey::from(rules_key), key);
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
        assert_eq!(head_to_check(&wire), HeadToCheck::Signed(signed));
    }

    #[test]
    fn signed_heads_are_checked_through_their_wire_form() {
        let head = signed_head(&log(3), 3);
        assert_eq!(verify_signed_head(&head, &public_key()), Ok(()));
        assert!(matches!(
            verify_signed_head(&head, &other_key()),
            Err(AuditCheckError::Signature {
                tree_size: 3,
                reason: HeadError::WrongKey { .. }
            })
        ));
        let mut other_root = head.clone();
        other_root.root_hash = flip(&head.root_hash, 10);
        assert!(matches!(
            verify_signed_head(&other_root, &public_key()),
            Err(AuditCheckError::Signature {
                reason: HeadError::InvalidSignature,
                ..
            })
        ));
        for not_hex in ["XYZ", "", &head.root_hash.to_uppercase()] {
            let mut bad = head.clone();
            bad.root_hash = not_hex.to_owned();
            assert!(matches!(
                verify_signed_head(&bad, &public_key()),
                Err(AuditCheckError::MalformedHead { tree_size: 3, .. })
            ));
            assert!(matches!(
                head_to_check(&bad),
                HeadToCheck::Malformed { tree_size: 3, .. }
            ));
        }
    }

    #[test]
    fn inclusion_is_checked_through_the_wire_forms_and_non_hex_is_named() {
        let entries = log(7);
        let head = signed_head(&entries, 7);
        for sequence in 1..=7 {
            let proof = inclusion(&entries, sequence, 7);
            assert_eq!(
                check_inclusion(&entries[sequence as usize - 1], &proof, &head),
                Ok(()),
                "entry {sequence}"
            );
        }
        let proof = inclusion(&entries, 3, 7);
        let mut edited = entries[2].clone();
        edited.details = json!({"n": 99});
        assert_eq!(
            check_inclusion(&edited, &proof, &head),
            Err(AuditCheckError::EntryHashMismatch { sequence: 3 })
        );
        let mut flipped = proof.clone();
        flipped.audit_path[0] = flip(&proof.audit_path[0], 63);
        assert_eq!(
            check_inclusion(&entries[2], &flipped, &head),
            Err(AuditCheckError::ProofFailed(ProofError::RootMismatch))
        );
        let mut wrong_leaf = proof.clone();
        wrong_leaf.leaf_hash = flip(&proof.leaf_hash, 5);
        assert_eq!(
            check_inclusion(&entries[2], &wrong_leaf, &head),
            Err(AuditCheckError::LeafMismatch { sequence: 3 })
        );
        let mut wrong_root = proof.clone();
        wrong_root.root_hash = flip(&head.root_hash, 5);
        assert!(matches!(
            check_inclusion(&entries[2], &wrong_root, &head),
            Err(AuditCheckError::RootMismatch { tree_size: 7, .. })
        ));
        let mut bad_prev = entries[2].clone();
        bad_prev.prev_hash = "zz".into();
        assert!(matches!(
            check_inclusion(&bad_prev, &proof, &head),
            Err(AuditCheckError::Malformed { .. })
        ));

        let mut not_hex_path = proof.clone();
        not_hex_path.audit_path[0] = "ABC".into();
        let mut not_hex_leaf = proof.clone();
        not_hex_leaf.leaf_hash = "nope".into();
        let mut not_hex_root = proof.clone();
        not_hex_root.root_hash = String::new();
        for bad in [not_hex_path, not_hex_leaf, not_hex_root] {
            assert!(matches!(
                check_inclusion(&entries[2], &bad, &head),
                Err(AuditCheckError::Malformed { ref what, .. }) if what == "inclusion proof"
            ));
        }
        let mut not_hex_head = head;
        not_hex_head.root_hash = "nope".into();
        assert!(matches!(
            check_inclusion(&entries[2], &proof, &not_hex_head),
            Err(AuditCheckError::MalformedHead { tree_size: 7, .. })
        ));
    }

    #[test]
    fn consistency_is_checked_through_the_wire_forms_and_non_hex_is_named() {
        let entries = log(11);
        let old = signed_head(&entries, 6);
        let new = signed_head(&entries, 11);
        let proof = consistency(&entries, 6, 11);
        assert_eq!(check_consistency(&proof, &old, &new), Ok(()));
        let mut flipped = proof.clone();
        flipped.proof[0] = flip(&proof.proof[0], 31);
        assert_eq!(
            check_consistency(&flipped, &old, &new),
            Err(AuditCheckError::ProofFailed(ProofError::RootMismatch))
        );
        let mut altered_new = new.clone();
        altered_new.root_hash = flip(&new.root_hash, 1);
        match check_consistency(&proof, &old, &altered_new) {
            Err(AuditCheckError::RootMismatch {
                tree_size: 11,
                head_root,
                served_root,
            }) => {
                assert_eq!(head_root, altered_new.root_hash);
                assert_eq!(served_root, new.root_hash);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_consistency(&consistency(&entries, 3, 11), &old, &new),
            Err(AuditCheckError::ProofMismatch(_))
        ));

        let mut not_hex = proof.clone();
        not_hex.proof[0] = "12".into();
        let mut not_hex_from = proof.clone();
        not_hex_from.from_root = "12".into();
        let mut not_hex_to = proof.clone();
        not_hex_to.to_root = "12".into();
        for bad in [not_hex, not_hex_from, not_hex_to] {
            assert!(matches!(
                check_consistency(&bad, &old, &new),
                Err(AuditCheckError::Malformed { ref what, .. }) if what == "consistency proof"
            ));
        }
        let mut bad_head = old.clone();
        bad_head.root_hash = String::new();
        assert!(matches!(
            check_consistency(&proof, &bad_head, &new),
            Err(AuditCheckError::MalformedHead { tree_size: 6, .. })
        ));
    }

    #[test]
    fn an_entry_with_a_member_this_build_does_not_know_still_verifies() {
        let mut prev = GENESIS_HASH;
        let mut values = Vec::new();
        for sequence in 1..=3u64 {
            let mut value = AuditDraft::new(
                time::OffsetDateTime::now_utc(),
                "c1",
                "CREATE",
                None,
                json!({}),
            )
            .seal(sequence, &prev)
            .to_value();
            let object = value.as_object_mut().expect("object");
            object.remove("hash");
            object.insert("futureMember".into(), json!({"z": 1, "a": [true]}));
            let body = rules::canonical::to_canonical_string(&value);
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
    fn the_log_verifier_replays_sdk_entries_against_wire_heads() {
        let entries = log(10);
        let heads: Vec<_> = [0, 4, 10]
            .into_iter()
            .map(|size| signed_head(&entries, size))
            .collect();
        let mut verifier = LogVerifier::new(heads, Some(public_key()));
        assert!(verifier.is_empty());
        entries.iter().for_each(|e| verifier.push_entry(e));
        assert_eq!(verifier.len(), 10);
        let report = verifier.finish();
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.head_hash, entries[9].hash);
        assert_eq!(report.root_hash, signed_head(&entries, 10).root_hash);
        assert_eq!((report.heads_checked, report.signatures_checked), (3, 3));

        let mut edited = entries.clone();
        edited[4].details = json!({"n": "edited"});
        let report = verify_entries(&edited, Some(&signed_head(&entries, 10)), None);
        assert_eq!(report.first_invalid_sequence(), Some(5));
        assert_eq!(
            report.first_problem(),
            Some(&AuditCheckError::Chain(ChainBreak::HashMismatch {
                sequence: 5
            }))
        );

        // With a key, every head must be signed by it, and some head must cover the log.
        let report = verify_entries(
            &entries,
            Some(&signed_head(&entries, 3)),
            Some(&other_key()),
        );
        assert!(matches!(
            report.first_problem(),
            Some(AuditCheckError::Signature {
                reason: HeadError::WrongKey { .. },
                ..
            })
        ));
        assert_eq!(
            verify_entries(&entries, None, Some(&public_key())).problems,
            vec![AuditCheckError::NoSignedHead]
        );
    }

    #[test]
    fn a_wire_head_that_is_not_hex_is_reported_at_its_size() {
        let entries = log(4);
        let mut bad = signed_head(&entries, 2);
        bad.root_hash = "not hex".into();
        let mut verifier = LogVerifier::new(vec![signed_head(&entries, 4), bad], None);
        entries.iter().for_each(|e| verifier.push_entry(e));
        let report = verifier.finish();
        assert_eq!(report.heads_checked, 2);
        assert!(matches!(
            report.problems.as_slice(),
            [AuditCheckError::MalformedHead { tree_size: 2, .. }]
        ));
    }

    #[test]
    fn stored_leaves_and_unreadable_entries_pass_through_to_the_rules() {
        let entries = log(3);
        let mut verifier = LogVerifier::new(Vec::new(), None);
        let first = entry_value(&entries[0]);
        verifier.push_with_stored_leaf(&first, &leaf_hash_of(&entries[0]));
        verifier.push(&entry_value(&entries[1]));
        verifier.push_with_stored_leaf(&entry_value(&entries[2]), &[0; 32]);
        assert_eq!(
            verifier.finish().problems,
            vec![AuditCheckError::StoredLeafMismatch { sequence: 3 }]
        );
        let mut verifier = LogVerifier::new(Vec::new(), None);
        verifier.push_entry(&entries[0]);
        verifier.push_unreadable("line 2 is not JSON");
        verifier.push_entry(&entries[2]);
        let report = verifier.finish();
        assert_eq!(report.entries, 3);
        assert_eq!(report.first_invalid_sequence(), Some(2));
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
}
