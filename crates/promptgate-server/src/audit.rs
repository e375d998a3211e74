//! The gateway's side of the audit log: the signing key, signed tree heads, proofs, replaying the
//! stored log, and the entries the gateway writes for its own changes.
//!
//! Entries are sealed by the store inside the transaction of the change they record; this module
//! only decides what they say. Leaf hashes are append-only, so they are cached in memory and
//! read from the database only for entries this process has not seen yet.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use promptgate_api as api;
use promptgate_audit::action;
use promptgate_audit::merkle::{self, Hash, to_hex};
use promptgate_audit::verify::{HeadToCheck, LogReport, LogVerifier, PublicKey, Signatures};
use promptgate_audit::{AuditDraft, SignedTreeHead, TreeHead, head};
use promptgate_core::change::AuditFact;
use promptgate_core::{PromptStatus, PromptVersion};
use promptgate_store::{AuditFilter, Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::{now, rfc3339};
use crate::wire::prompts::{wire_chat_completions, wire_traffic, wire_version};

/// How often a new tree head is signed while entries arrive (the contract asks for ≤ 60 s).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// Entries read per database round trip while replaying the log.
const VERIFY_PAGE: u32 = 500;

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read or written.
    #[error("audit signing key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no usable Ed25519 key.
    #[error("audit signing key file {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: promptgate_audit::HeadError,
    },
}

/// The key tree heads are signed with: `[audit] signing_key_file`, else the file beside a SQLite
/// database ([`default_key_path`]), else (a database that is not a file) a key for this run
/// only, with a warning.
pub fn signing_key(
    section: &crate::config::AuditSection,
    database_url: &str,
) -> Result<SigningKey, KeyError> {
    let path = section
        .signing_key_file
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| default_key_path(database_url));
    match &path {
        Some(path) => load_or_create_key(path),
        None => {
            tracing::warn!(
                "no [audit] signing_key_file and the database is not a file: tree heads are \
                 signed with a key that lasts only for this run"
            );
            Ok(ephemeral_key())
        }
    }
}

/// A random key for this run only (tests, and a database that is not a file without
/// `[audit] signing_key_file`).
pub fn ephemeral_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// Where the signing key lives when `[audit] signing_key_file` is not set: beside the SQLite
/// file (`promptgate.db` → `promptgate.db.audit-key.pem`). `None` for a database that is not a
/// file, whose key must then be configured (or is generated for this run only).
pub fn default_key_path(database_url: &str) -> Option<PathBuf> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(format!("{path}.audit-key.pem")))
}

/// Reads the signing key at `path`, or generates one there (PKCS#8 PEM, mode 0600) when the file
/// does not exist. Two processes starting at once agree on one key: the file is created
/// exclusively and the loser reads the winner's.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_key_file(path, &text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io(err)),
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let pem =
        promptgate_audit::head::signing_key_pem(&key).map_err(|source| KeyError::Invalid {
            path: path.to_owned(),
            source,
        })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(pem.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "generated the audit log signing key");
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process created it first; give it a moment to finish writing.
            for _ in 0..50 {
                let text = std::fs::read_to_string(path).map_err(io)?;
                if text.contains("-----END") {
                    return parse_key_file(path, &text);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let text = std::fs::read_to_string(path).map_err(io)?;
            parse_key_file(path, &text)
        }
        Err(err) => Err(io(err)),
    }
}

fn parse_key_file(path: &Path, text: &str) -> Result<SigningKey, KeyError> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(),
                "the audit signing key file is readable by other users; chmod 600 it");
        }
    }
    promptgate_audit::head::parse_signing_key(text).map_err(|source| KeyError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// The audit log as the gateway serves it.
pub struct AuditLog {
    store: Arc<dyn Store>,
    key: SigningKey,
    key_id: String,
    hash_system_prompts: bool,
    /// Leaf hashes of entries 1..=len, read once.
    leaves: tokio::sync::Mutex<Vec<Hash>>,
    /// One signer at a time, so a burst of checkpoint requests signs one head.
    signer: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("key_id", &self.key_id)
            .field("hash_system_prompts", &self.hash_system_prompts)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// The log over `store`, signing with `key`.
    pub fn new(store: Arc<dyn Store>, key: SigningKey, hash_system_prompts: bool) -> Self {
        AuditLog {
            store,
            key_id: head::key_id(&key.verifying_key()),
            key,
            hash_system_prompts,
            leaves: tokio::sync::Mutex::new(Vec::new()),
            signer: tokio::sync::Mutex::new(()),
        }
    }

    /// The public half, for auditors.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// `GET …/audit-logs/public-key`.
    pub fn public_key(&self) -> api::AuditPublicKey {
        api::AuditPublicKey {
            key_id: self.key_id.clone(),
            public_key: head::public_key_base64(&self.verifying_key()),
        }
    }

    /// The leaf hashes of the tree of `size`, read from the database only past what is cached.
    async fn leaves_up_to(&self, size: u64) -> Result<Vec<Hash>, StoreError> {
        let mut cached = self.leaves.lock().await;
        let have = cached.len() as u64;
        if have < size {
            let more = self.store.audit_leaf_hashes(have, size).await?;
            if more.len() as u64 != size - have {
                return Err(StoreError::Corrupt(format!(
                    "the audit log has a gap between sequences {} and {size}",
                    have + 1
                )));
            }
            cached.extend(more);
        }
        Ok(cached[..usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(cached.len())]
            .to_vec())
    }

    /// The Merkle root of the tree of `size`.
    pub async fn root(&self, size: u64) -> Result<Hash, StoreError> {
        Ok(merkle::root(&self.leaves_up_to(size).await?))
    }

    /// The latest signed head, signing a new one first when the log has grown past it.
    pub async fn checkpoint(&self) -> Result<SignedTreeHead, StoreError> {
        let _one_signer = self.signer.lock().await;
        let size = self.store.audit_size().await?;
        if let Some(latest) = self.store.latest_tree_head().await?
            && latest.head.tree_size == size
            && latest.key_id == self.key_id
        {
            return Ok(latest);
        }
        let signed = head::sign(
            &self.key,
            TreeHead {
                tree_size: size,
                root_hash: self.root(size).await?,
                timestamp: rfc3339(now()),
            },
        );
        self.store.insert_tree_head(&signed).await?;
        Ok(signed)
    }

    /// The inclusion proof of entry `sequence` in the tree of `tree_size`.
    pub async fn inclusion_proof(
        &self,
        sequence: u64,
        tree_size: u64,
    ) -> Result<api::InclusionProof, StoreError> {
        let leaves = self.leaves_up_to(tree_size).await?;
        let index = sequence - 1;
        let path = merkle::inclusion_proof(&leaves, index, tree_size)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(api::InclusionProof {
            sequence,
            leaf_index: index,
            tree_size,
            leaf_hash: to_hex(&leaves[usize::try_from(index).unwrap_or(usize::MAX)]),
            audit_path: path.iter().map(to_hex).collect(),
            root_hash: to_hex(&merkle::root(&leaves)),
        })
    }

    /// The consistency proof between the trees of `from` and `to` entries.
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<api::ConsistencyProof, StoreError> {
        let leaves = self.leaves_up_to(to).await?;
        let proof = merkle::consistency_proof(&leaves, from, to)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let from_leaves = &leaves[..usize::try_from(from).unwrap_or(usize::MAX)];
        Ok(api::ConsistencyProof {
            from,
            to,
            from_root: to_hex(&merkle::root(from_leaves)),
            to_root: to_hex(&merkle::root(&leaves)),
            proof: proof.iter().map(to_hex).collect(),
        })
    }

    /// Replays the stored log (see [`verify_store`]). Heads signed with this gateway's key have
    /// their signatures checked; heads of a key it was rotated away from keep pinning history by
    /// their roots, since only their public keys (which the gateway no longer holds) could check
    /// them.
    pub async fn verify(&self) -> Result<LogReport, StoreError> {
        let signatures = Signatures::OfKey(PublicKey::from(self.verifying_key()));
        verify_store(self.store.as_ref(), Vec::new(), signatures).await
    }

    /// How a version's settings appear in entries: the system prompt's SHA-256 instead of its
    /// text when `[audit] hash_system_prompts` is on.
    pub fn version_snapshot(&self, version: &PromptVersion) -> Value {
        let mut snapshot = serde_json::to_value(wire_version(version)).unwrap_or_default();
        if let Some(fields) = snapshot.as_object_mut() {
            // The entry names the prompt already; the rest is the version as `GET` shows it.
            fields.remove("promptId");
            let digest = hex_sha256(version.settings.system_prompt.as_bytes());
            if self.hash_system_prompts {
                fields.remove("systemPrompt");
                // A chat template's turns are part of the prompt: hashed the same way.
                if !version.settings.template_messages.is_empty() {
                    let turns: Vec<Value> = version
                        .settings
                        .template_messages
                        .iter()
                        .map(|m| {
                            json!({
                                "role": m.role.as_str(),
                                "contentSha256": hex_sha256(m.content.as_bytes()),
                            })
                        })
                        .collect();
                    fields.insert("templateMessages".into(), Value::Array(turns));
                }
            }
            fields.insert("systemPromptSha256".into(), json!(digest));
        }
        snapshot
    }

    /// The entry that records `fact`, a change of prompt `prompt_id` by `actor`: its `details`
    /// hold the state before and after as `GET` shows it (a version as its snapshot) and the
    /// JSON Patch between them.
    pub fn prompt_entry(
        &self,
        actor: &str,
        prompt_id: uuid::Uuid,
        fact: &AuditFact<'_>,
    ) -> AuditDraft {
        let (name, details) = match *fact {
            AuditFact::PromptCreated { prompt, first } => {
                let created = json!({
                    "name": prompt.name,
                    "status": prompt.status.as_str(),
                    "trafficDistribution": wire_traffic(&prompt.traffic),
                    "chatCompletions": wire_chat_completions(prompt.chat_completions),
                    "version": self.version_snapshot(first),
                });
                (
                    action::PROMPT_CREATED,
                    promptgate_audit::change_details(None, Some(&created)),
                )
            }
            AuditFact::VersionCreated {
                compared_with,
                added,
            } => {
                let before = compared_with.map(|v| self.version_snapshot(v));
                let mut details = promptgate_audit::change_details(
                    before.as_ref(),
                    Some(&self.version_snapshot(added)),
                );
                details["version"] = json!(added.version.to_string());
                details["comparedWith"] = json!(compared_with.map(|v| v.version.to_string()));
                (action::VERSION_CREATED, details)
            }
            AuditFact::TrafficUpdated { before, after } => (
                action::TRAFFIC_UPDATED,
                promptgate_audit::change_details(
                    Some(&json_value(&wire_traffic(before))),
                    Some(&json_value(&wire_traffic(after))),
                ),
            ),
            AuditFact::ChatCompletionsUpdated { before, after } => (
                action::CHAT_COMPLETIONS_UPDATED,
                promptgate_audit::change_details(
                    Some(&json_value(&wire_chat_completions(before))),
                    Some(&json_value(&wire_chat_completions(after))),
                ),
            ),
            AuditFact::LabelMoved { label, from, to } => (
                action::LABEL_MOVED,
                label_details(
                    label.as_str(),
                    from.map(ToString::to_string),
                    Some(to.to_string()),
                ),
            ),
            AuditFact::LabelDeleted { label, version } => (
                action::LABEL_DELETED,
                label_details(label.as_str(), Some(version.to_string()), None),
            ),
            AuditFact::PromptArchived { before } => (
                action::PROMPT_ARCHIVED,
                promptgate_audit::change_details(
                    Some(&json!({"status": before.as_str()})),
                    Some(&json!({"status": PromptStatus::Archived.as_str()})),
                ),
            ),
        };
        draft(actor, name, Some(prompt_id), details)
    }
}

fn json_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replays the stored log with the auditor's own verifier ([`LogVerifier`]): every entry with
/// its stored Merkle leaf hash, every signed head stored beside it plus `saved_heads` (heads an
/// auditor kept), their signatures as `signatures` says. The one replay behind both
/// `GET …/audit-logs/verify` and `promptgate audit verify --database-url`, so that the gateway
/// and an auditor reading its database name the same first bad sequence with the same words.
///
/// Each row's filter columns (`action`, `actor`, `prompt_id`, `recorded_at`, which listings
/// filter on and nothing hashes) must say what its hashed body says
/// ([`promptgate_audit::FilterColumns`]); a row edited there is named like an edited entry.
///
/// The heads are read before the entries: a gateway writing meanwhile only adds entries, so
/// every head read is reached. A row that cannot even be decoded (a hash that is not hex, …) is
/// named as an unreadable entry rather than failing the whole replay; only a database that
/// cannot be read at all is an error.
pub async fn verify_store(
    store: &dyn Store,
    saved_heads: Vec<HeadToCheck>,
    signatures: Signatures,
) -> Result<LogReport, StoreError> {
    let stored = store.tree_heads().await?;
    let heads = saved_heads
        .into_iter()
        .chain(stored.into_iter().map(HeadToCheck::from));
    let mut verifier = LogVerifier::new(heads, signatures);
    let filter = AuditFilter::default();
    let mut after = None;
    loop {
        match store.list_audit(&filter, after, VERIFY_PAGE).await {
            Ok(page) => {
                for entry in &page {
                    verifier.push_stored(&entry.to_value(), &entry.leaf_hash, &entry.columns);
                }
                match page.last() {
                    Some(last) if page.len() == VERIFY_PAGE as usize => {
                        after = Some(last.sequence);
                    }
                    _ => break,
                }
            }
            // A row that cannot be decoded fails its whole page; step through one row at a time
            // so that it is named like any bad entry and later rows keep their places.
            Err(StoreError::Corrupt(_)) => match store.list_audit(&filter, after, 1).await {
                Ok(page) => match page.first() {
                    Some(entry) => {
                        verifier.push_stored(&entry.to_value(), &entry.leaf_hash, &entry.columns);
                        after = Some(entry.sequence);
                    }
                    None => break,
                },
                Err(StoreError::Corrupt(reason)) => {
                    verifier.push_unreadable(&format!("its database row is corrupt ({reason})"));
                    after = Some(after.unwrap_or(0) + 1);
                }
                Err(other) => return Err(other),
            },
            Err(other) => return Err(other),
        }
    }
    Ok(verifier.finish())
}

/// A gateway entry for a change by `actor`.
pub fn draft(
    actor: &str,
    action: &str,
    prompt_id: Option<uuid::Uuid>,
    details: Value,
) -> AuditDraft {
    AuditDraft::new(now(), actor, action, prompt_id, details)
}

/// Signs a head every `interval` while entries arrive, so an auditor polling the checkpoint
/// never sees one older than the interval.
pub async fn checkpoint_loop(log: Arc<AuditLog>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = log.checkpoint().await {
            tracing::warn!(error = ?err, "cannot sign an audit tree head");
        }
    }
}

/// Appends `CONFIG_RELOADED` (actor `system`) when the gateway starts with a configuration other
/// than the one last recorded, so that a change made by editing a file is as visible as one
/// made through the API. The first start records its configuration too.
pub async fn record_configuration(
    store: &dyn Store,
    config: &crate::config::ConfigFile,
) -> Result<(), StoreError> {
    let current = crate::config::redacted_snapshot(config);
    let previous = match store
        .last_audit_with_action(promptgate_audit::action::CONFIG_RELOADED)
        .await?
    {
        Some(entry) => serde_json::from_str::<Value>(&entry.body)
            .ok()
            .and_then(|body| body.get("details").and_then(|d| d.get("after")).cloned()),
        None => None,
    };
    if previous.as_ref() == Some(&current) {
        return Ok(());
    }
    let details = promptgate_audit::change_details(previous.as_ref(), Some(&current));
    store
        .append_audit(&[draft(
            promptgate_audit::SYSTEM_ACTOR,
            promptgate_audit::action::CONFIG_RELOADED,
            None,
            details,
        )])
        .await?;
    Ok(())
}

/// The `details` of a label change: the label, the version it pointed at before and after
/// (null when new or deleted), and the change in the usual before/after/diff form.
fn label_details(label: &str, from: Option<String>, to: Option<String>) -> Value {
    let side = |version: &Option<String>| {
        version
            .as_ref()
            .map(|v| json!({"label": label, "version": v}))
    };
    let mut details = promptgate_audit::change_details(side(&from).as_ref(), side(&to).as_ref());
    if let Value::Object(map) = &mut details {
        map.insert("label".to_owned(), json!(label));
        map.insert("fromVersion".to_owned(), json!(from));
        map.insert("toVersion".to_owned(), json!(to));
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptgate_audit::AuditCheckError;
    use promptgate_store::prelude::*;

    /// A store of `n` client entries.
    async fn store_with(n: u64) -> promptgate_store::SqliteStore {
        let store = promptgate_store::SqliteStore::open("sqlite::memory:")
            .await
            .expect("an in-memory store");
        for i in 0..n {
            store
                .append_audit(&[draft("c1", "CREATE", None, json!({"i": i}))])
                .await
                .expect("appended");
        }
        store
    }

    /// Signs the store's tree of `size` entries with `key` (whatever the log holds beyond it
    /// when `size` is larger: a root of nothing, as a head of removed entries would be).
    async fn sign_stored(store: &promptgate_store::SqliteStore, key: &SigningKey, size: u64) {
        let leaves = store.audit_leaf_hashes(0, size).await.expect("leaves");
        let root_hash = if leaves.len() as u64 == size {
            merkle::root(&leaves)
        } else {
            [9; 32]
        };
        let signed = head::sign(
            key,
            TreeHead {
                tree_size: size,
                root_hash,
                timestamp: "2026-11-27T04:15:39.123Z".into(),
            },
        );
        store.insert_tree_head(&signed).await.expect("head stored");
    }

    #[tokio::test]
    async fn the_gateway_checks_its_own_heads_signatures_and_a_rotated_keys_roots() {
        let old_key = SigningKey::from_bytes(&[1; 32]);
        let key = SigningKey::from_bytes(&[2; 32]);
        let store = store_with(4).await;
        sign_stored(&store, &old_key, 2).await;
        sign_stored(&store, &key, 4).await;
        let own = || Signatures::OfKey(PublicKey::from(key.verifying_key()));

        let report = verify_store(&store, Vec::new(), own()).await.expect("read");
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!((report.heads_checked, report.signatures_checked), (2, 1));
        let answer = crate::wire::audit::verification(&report);
        assert!(answer.valid);
        assert_eq!(answer.entries, 4);
        assert_eq!(answer.head_sequence, 4);
        assert_eq!(answer.signed_heads_checked, 2);
        assert_eq!((answer.reason, answer.first_invalid_sequence), (None, None));

        // An auditor who requires the current key's signature on every head refuses the old one.
        let required = Signatures::Required(PublicKey::from(key.verifying_key()));
        let strict = verify_store(&store, Vec::new(), required)
            .await
            .expect("read");
        assert!(matches!(
            strict.first_problem(),
            Some(AuditCheckError::Signature {
                tree_size: 2,
                reason: promptgate_audit::HeadError::WrongKey { .. }
            })
        ));

        // A head an auditor saved, of a root the log does not have, is named by its size.
        let mut saved = head::sign(
            &key,
            TreeHead {
                tree_size: 3,
                root_hash: [7; 32],
                timestamp: "2026-11-27T04:15:39.123Z".into(),
            },
        );
        let report = verify_store(&store, vec![saved.clone().into()], own())
            .await
            .expect("read");
        let answer = crate::wire::audit::verification(&report);
        assert!(!answer.valid);
        assert_eq!(answer.first_invalid_sequence, None);
        let reason = answer.reason.expect("a reason");
        assert!(
            reason.contains("tree head") && reason.contains("size 3"),
            "{reason}"
        );

        // The current key's head altered after signing: its signature is what fails.
        saved.head.root_hash = merkle::root(&store.audit_leaf_hashes(0, 3).await.expect("leaves"));
        let report = verify_store(&store, vec![saved.into()], own())
            .await
            .expect("read");
        assert!(matches!(
            report.problems.as_slice(),
            [AuditCheckError::Signature {
                tree_size: 3,
                reason: promptgate_audit::HeadError::InvalidSignature
            }]
        ));
    }

    #[tokio::test]
    async fn a_head_beyond_the_log_and_a_fresh_unsigned_log_are_answered_as_the_contract_says() {
        let key = SigningKey::from_bytes(&[2; 32]);
        let own = || Signatures::OfKey(PublicKey::from(key.verifying_key()));
        // Nothing signed yet is no problem for the gateway's own check.
        let store = store_with(3).await;
        let answer = crate::wire::audit::verification(
            &verify_store(&store, Vec::new(), own()).await.expect("read"),
        );
        assert!(answer.valid, "{answer:?}");
        assert_eq!(answer.signed_heads_checked, 0);

        sign_stored(&store, &key, 5).await;
        let answer = crate::wire::audit::verification(
            &verify_store(&store, Vec::new(), own()).await.expect("read"),
        );
        assert!(!answer.valid);
        assert_eq!(answer.entries, 3);
        assert_eq!(answer.first_invalid_sequence, None);
        let reason = answer.reason.expect("a reason");
        assert!(
            reason.contains("removed") && reason.contains('5'),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_page_boundary_does_not_disturb_the_replay() {
        let key = SigningKey::from_bytes(&[2; 32]);
        let n = u64::from(VERIFY_PAGE) + 3;
        let store = store_with(n).await;
        sign_stored(&store, &key, u64::from(VERIFY_PAGE)).await;
        sign_stored(&store, &key, n).await;
        let own = Signatures::OfKey(PublicKey::from(key.verifying_key()));
        let report = verify_store(&store, Vec::new(), own).await.expect("read");
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(report.entries, n);
        assert_eq!((report.heads_checked, report.signatures_checked), (2, 2));
    }

    #[test]
    fn config_reloaded_audit_entry_hides_url_secrets() {
        let config = crate::config::ConfigFile::parse(
            r#"
[server]
database_url = "postgres://app:DBPASSWORD@db.internal:5432/promptgate?sslmode=require&password=QPASS"
[[model_endpoints]]
ref = "local/m"
provider = "openai"
base_url = "https://user:EPPASS@llm.internal:8443/v1?token=EPTOKEN"
model = "m"
[moderation]
url = "https://mod:MODPASS@moderation.internal/v1?key=MODKEY"
[exporters.webhook]
url = "https://hooks.example.invalid/services/T000/B000/XXXXSECRET"
[exporters.otlp]
endpoint = "http://otel:OTELPASS@collector.internal:4318?auth=OTELTOKEN"
"#,
        )
        .expect("config parses");
        let snapshot = crate::config::redacted_snapshot(&config);
        let text = snapshot.to_string();
        for secret in [
            "DBPASSWORD",
            "QPASS",
            "EPPASS",
            "EPTOKEN",
            "MODPASS",
            "MODKEY",
            "XXXXSECRET",
            "T000",
            "OTELPASS",
            "OTELTOKEN",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let webhook = &snapshot["exporters"]["webhook"];
        assert_eq!(webhook["url"], json!("https://hooks.example.invalid"));
        assert_eq!(
            webhook["url_sha256"],
            json!(promptgate_core::redact::url_sha256(
                "https://hooks.example.invalid/services/T000/B000/XXXXSECRET"
            ))
        );
        assert_eq!(
            snapshot["model_endpoints"][0]["base_url"],
            json!("https://llm.internal:8443/v1")
        );
        assert!(snapshot["model_endpoints"][0]["base_url_sha256"].is_string());
        assert_eq!(
            snapshot["moderation"]["url"],
            json!("https://moderation.internal/v1")
        );
        assert_eq!(
            snapshot["exporters"]["otlp"]["endpoint"],
            json!("http://collector.internal:4318")
        );
        assert_eq!(
            snapshot["server"]["database_url"],
            json!("postgres://app:***@db.internal:5432/promptgate?sslmode=require")
        );
        assert!(snapshot["server"].get("database_url_sha256").is_none());

        // A URL with nothing to hide is recorded as written, without a digest.
        let plain = crate::config::ConfigFile::parse(
            "[[model_endpoints]]\nref = \"x/y\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
        )
        .expect("config parses");
        let snapshot = crate::config::redacted_snapshot(&plain);
        assert_eq!(
            snapshot["model_endpoints"][0]["base_url"],
            json!("http://127.0.0.1:9/v1")
        );
        assert!(
            snapshot["model_endpoints"][0]
                .get("base_url_sha256")
                .is_none()
        );

        // A change to the hidden part of a webhook URL still changes the snapshot.
        let other = |path: &str| {
            let config = crate::config::ConfigFile::parse(&format!(
                "[exporters.webhook]\nurl = \"https://hooks.example.invalid{path}\"\n"
            ))
            .expect("config parses");
            crate::config::redacted_snapshot(&config)
        };
        assert_ne!(other("/services/A"), other("/services/B"));
    }

    #[test]
    fn header_values_are_hashed_in_the_snapshot() {
        let config = crate::config::ConfigFile::parse(
            "[exporters.webhook]\nurl = \"http://127.0.0.1:9/hook\"\nheaders = { Authorization = \"Bearer sk-very-secret\" }\n",
        )
        .expect("config parses");
        let text = crate::config::redacted_snapshot(&config).to_string();
        assert!(!text.contains("sk-very-secret"), "{text}");
        assert!(text.contains("sha256:"), "{text}");
    }

    #[test]
    fn the_default_key_lives_beside_the_database_file() {
        assert_eq!(
            default_key_path("sqlite://data/promptgate.db?mode=rwc"),
            Some(PathBuf::from("data/promptgate.db.audit-key.pem"))
        );
        assert_eq!(default_key_path("sqlite::memory:"), None);
        assert_eq!(default_key_path("postgres://db/x"), None);
    }

    #[test]
    fn a_generated_key_is_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        let first = load_or_create_key(&path).expect("created");
        let again = load_or_create_key(&path).expect("read back");
        assert_eq!(first.to_bytes(), again.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(
            load_or_create_key(&path),
            Err(KeyError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn hashing_system_prompts_hashes_the_template_turns_too() {
        use promptgate_core::prompt::{TemplateMessage, TemplateRole};
        let store: Arc<dyn Store> = Arc::new(store_with(0).await);
        let key = SigningKey::from_bytes(&[7; 32]);
        let version = PromptVersion {
            prompt_id: uuid::Uuid::nil(),
            version: "1.0.0".parse().expect("a version"),
            settings: promptgate_core::VersionSettings {
                model_endpoint_ref: "offline/echo".into(),
                system_prompt: "secret system {{name}}".into(),
                temperature: 0.2,
                safety_guardrails: Default::default(),
                few_shot_examples: Vec::new(),
                template_messages: vec![TemplateMessage {
                    role: TemplateRole::User,
                    content: "secret turn".into(),
                }],
                variables_schema: None,
                tool_settings: Default::default(),
                fallback_endpoint_refs: Vec::new(),
            },
            system_prompt_tokens: 3,
            tokenizer: promptgate_core::TokenizerKind::O200kBase,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            created_by: "c".into(),
        };
        let hashed = AuditLog::new(store.clone(), key.clone(), true).version_snapshot(&version);
        let text = hashed.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(hashed["templateMessages"][0]["role"], "user");
        assert_eq!(
            hashed["templateMessages"][0]["contentSha256"],
            hex_sha256(b"secret turn")
        );
        let plain = AuditLog::new(store, key, false).version_snapshot(&version);
        assert_eq!(plain["templateMessages"][0]["content"], "secret turn");
        assert_eq!(plain["variables"][0]["name"], "name");
    }
}
