//! One audit entry: what the gateway (or a client) records, and how it is sealed into the chain.
//!
//! The object that is hashed is exactly the object the API serves, minus its `hash` member:
//! every member is always present (absent values are `null`), so an auditor needs no knowledge
//! of optional fields to re-hash an entry: drop `hash`, canonicalise (RFC 8785), hash.

use crate::canonical::to_canonical_string;
use crate::merkle::{self, Hash};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use uuid::Uuid;

/// The `actor` of entries the gateway writes on its own behalf (start-up, configuration).
pub const SYSTEM_ACTOR: &str = "system";

/// The actions the gateway writes itself. Clients may not send these through
/// `POST …/audit-logs`, so that an auditor filtering on them sees only the gateway's own record.
pub mod action {
    /// A prompt and its first version were created.
    pub const PROMPT_CREATED: &str = "PROMPT_CREATED";
    /// A version was added to a prompt.
    pub const VERSION_CREATED: &str = "VERSION_CREATED";
    /// A prompt's traffic distribution changed.
    pub const TRAFFIC_UPDATED: &str = "TRAFFIC_UPDATED";
    /// A prompt was archived.
    pub const PROMPT_ARCHIVED: &str = "PROMPT_ARCHIVED";
    /// An OAuth client was created.
    pub const CLIENT_CREATED: &str = "CLIENT_CREATED";
    /// An OAuth client was disabled.
    pub const CLIENT_DISABLED: &str = "CLIENT_DISABLED";
    /// An OAuth client's secret was replaced.
    pub const CLIENT_SECRET_ROTATED: &str = "CLIENT_SECRET_ROTATED";
    /// The gateway started with a configuration different from the one last recorded.
    pub const CONFIG_RELOADED: &str = "CONFIG_RELOADED";
    /// A prompt's policy for the OpenAI-compatible front door changed.
    pub const CHAT_COMPLETIONS_UPDATED: &str = "CHAT_COMPLETIONS_UPDATED";
    /// An invocation's feedback was replaced by a later post (its owner's or an admin's).
    pub const FEEDBACK_REPLACED: &str = "FEEDBACK_REPLACED";
    /// A prompt's label was created or moved to another version.
    pub const LABEL_MOVED: &str = "LABEL_MOVED";
    /// A prompt's label was deleted.
    pub const LABEL_DELETED: &str = "LABEL_DELETED";
    /// An API key was created for a client.
    pub const API_KEY_CREATED: &str = "API_KEY_CREATED";
    /// An API key was revoked.
    pub const API_KEY_REVOKED: &str = "API_KEY_REVOKED";

    /// Every action reserved for the gateway.
    pub const RESERVED: [&str; 14] = [
        API_KEY_CREATED,
        API_KEY_REVOKED,
        LABEL_MOVED,
        LABEL_DELETED,
        FEEDBACK_REPLACED,
        PROMPT_CREATED,
        VERSION_CREATED,
        TRAFFIC_UPDATED,
        PROMPT_ARCHIVED,
        CLIENT_CREATED,
        CLIENT_DISABLED,
        CLIENT_SECRET_ROTATED,
        CONFIG_RELOADED,
        CHAT_COMPLETIONS_UPDATED,
    ];

    /// Whether `name` is one of the gateway's own actions, in any letter case (so that a
    /// client's `prompt_created` cannot pass for the gateway's entry in a case-blind search).
    pub fn is_reserved(name: &str) -> bool {
        RESERVED
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
    }

    /// The longest action a client may send, in characters (all ASCII, so also bytes).
    pub const MAX_CLIENT_ACTION_CHARS: usize = 100;

    /// Why a client's action was refused.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum ClientActionError {
        /// No action, or an empty one.
        #[error("action is required")]
        Missing,
        /// Longer than [`MAX_CLIENT_ACTION_CHARS`].
        #[error("action is {chars} characters; the limit is {MAX_CLIENT_ACTION_CHARS}")]
        TooLong {
            /// Its length in characters.
            chars: usize,
        },
        /// A character outside `A`–`Z`, `0`–`9` and `_`, or a first character that is not a
        /// letter.
        #[error(
            "action must be an upper-case letter followed by upper-case letters, digits or underscores (A-Z, 0-9, _), such as REVIEW_APPROVED"
        )]
        Charset,
        /// One of [`RESERVED`].
        #[error("action {0} is reserved for entries the gateway writes itself")]
        Reserved(String),
    }

    /// Checks an action sent through `POST …/audit-logs`: `[A-Z][A-Z0-9_]{0,99}`, and none of
    /// [`RESERVED`].
    ///
    /// The strict ASCII charset is what makes imitation impossible: a name that only *looks*
    /// like a reserved one (`CLIENT_DISABLED` followed by a zero-width space, a Cyrillic `А`,
    /// full-width letters, `client_disabled`, a trailing space) is refused for its characters,
    /// so every accepted action is its own Unicode normal form (NFC and NFKC leave A-Z, 0-9 and
    /// `_` unchanged) and differs from each reserved name byte for byte. Comparing after
    /// normalisation would add nothing, and would miss homoglyphs, which no normal form maps.
    pub fn check_client_action(name: &str) -> Result<(), ClientActionError> {
        let chars = name.chars().count();
        if chars == 0 {
            return Err(ClientActionError::Missing);
        }
        if chars > MAX_CLIENT_ACTION_CHARS {
            return Err(ClientActionError::TooLong { chars });
        }
        let mut bytes = name.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_uppercase());
        if !first_ok || !bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(ClientActionError::Charset);
        }
        if is_reserved(name) {
            return Err(ClientActionError::Reserved(name.to_owned()));
        }
        Ok(())
    }
}

/// `prevHash` of the first entry: 64 zeros.
pub const GENESIS_HASH: Hash = [0; 32];

const TIMESTAMP_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// An instant as the audit log writes it: RFC 3339, UTC, milliseconds (`2026-11-27T04:15:39.123Z`).
/// One fixed form, so a time re-serialised by any party is the same text.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP_FORMAT)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

/// An entry before it has a place in the chain. Everything an entry says is decided here, by
/// the caller; sealing only adds the sequence and the link to the previous entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// The entry's id.
    pub id: Uuid,
    /// When the gateway recorded it.
    pub timestamp: OffsetDateTime,
    /// The OAuth client id that caused it, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// What happened (one of [`action`], or a client's own word).
    pub action: String,
    /// The prompt it concerns, if any.
    pub prompt_id: Option<Uuid>,
    /// The change: for the gateway's entries `before`, `after` and an RFC 6902 `diff`.
    pub details: Value,
    /// A client entry's own time, as it sent it.
    pub client_timestamp: Option<OffsetDateTime>,
    /// A client entry's compliance status.
    pub compliance_status: Option<String>,
    /// A client entry's metadata.
    pub metadata: Option<Value>,
}

impl AuditDraft {
    /// A gateway entry recorded `at` (the caller's clock: this crate reads none): `details`
    /// holds the change.
    pub fn new(
        at: OffsetDateTime,
        actor: &str,
        action: &str,
        prompt_id: Option<Uuid>,
        details: Value,
    ) -> Self {
        AuditDraft {
            id: Uuid::now_v7(),
            timestamp: at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            prompt_id,
            details,
            client_timestamp: None,
            compliance_status: None,
            metadata: None,
        }
    }

    /// Gives the draft its place: entry `sequence` (1-based) following the entry whose hash is
    /// `prev_hash` ([`GENESIS_HASH`] for the first).
    pub fn seal(&self, sequence: u64, prev_hash: &Hash) -> SealedEntry {
        let mut object = Map::new();
        object.insert("id".into(), json!(self.id.to_string()));
        object.insert("sequence".into(), json!(sequence));
        object.insert("timestamp".into(), json!(format_timestamp(self.timestamp)));
        object.insert("actor".into(), json!(self.actor));
        object.insert("action".into(), json!(self.action));
        object.insert(
            "promptId".into(),
            self.prompt_id
                .map_or(Value::Null, |id| Value::String(id.to_string())),
        );
        object.insert("details".into(), self.details.clone());
        object.insert(
            "clientTimestamp".into(),
            self.client_timestamp
                .map_or(Value::Null, |at| Value::String(format_timestamp(at))),
        );
        object.insert(
            "complianceStatus".into(),
            self.compliance_status
                .clone()
                .map_or(Value::Null, Value::String),
        );
        object.insert(
            "metadata".into(),
            self.metadata.clone().unwrap_or(Value::Null),
        );
        object.insert("prevHash".into(), json!(merkle::to_hex(prev_hash)));
        let body = to_canonical_string(&Value::Object(object));
        SealedEntry {
            sequence,
            hash: chain_hash(prev_hash, body.as_bytes()),
            leaf_hash: merkle::leaf_hash(body.as_bytes()),
            prev_hash: *prev_hash,
            body,
        }
    }
}

/// An entry with its place in the chain, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedEntry {
    /// 1-based position in the log.
    pub sequence: u64,
    /// The canonical JSON of the entry without `hash`: the bytes that are hashed and the Merkle
    /// leaf.
    pub body: String,
    /// `SHA-256(prevHash ‖ body)`.
    pub hash: Hash,
    /// `SHA-256(0x00 ‖ body)`.
    pub leaf_hash: Hash,
    /// The previous entry's hash.
    pub prev_hash: Hash,
}

impl SealedEntry {
    /// The entry as the API serves it: the body plus `hash`.
    pub fn to_value(&self) -> Value {
        served_entry(&self.body, &self.hash)
    }
}

/// The served form of a stored entry: its body with `hash` added. A body that is not a JSON
/// object (only possible if the database was edited) is served as `{"hash": …}` plus nothing,
/// which fails verification at that sequence.
pub fn served_entry(body: &str, hash: &Hash) -> Value {
    let mut object = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    };
    object.insert("hash".into(), json!(merkle::to_hex(hash)));
    Value::Object(object)
}

/// The chain link: `SHA-256(prevHash ‖ canonical entry)`, with `prevHash` as its 32 raw bytes
/// (the hex text decoded), the same convention as the Merkle node hash.
pub fn chain_hash(prev_hash: &Hash, canonical_entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical_entry);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_audit_actions_cannot_be_imitated() {
        use action::{ClientActionError, RESERVED, check_client_action};
        for reserved in RESERVED {
            assert_eq!(
                check_client_action(reserved),
                Err(ClientActionError::Reserved(reserved.to_owned()))
            );
        }
        for imitation in [
            "CLIENT_DISABLED\u{200b}",
            "\u{200b}CLIENT_DISABLED",
            "CLIENT_\u{0410}DISABLED",
            "CLIENT_DIS\u{0410}BLED",
            "\u{FF23}LIENT_DISABLED",
            "client_disabled",
            "Client_Disabled",
            " CLIENT_DISABLED",
            "CLIENT_DISABLED ",
            "CLIENT-DISABLED",
            "CLIENT_DISABLED\n",
            "1CLIENT_DISABLED",
            "_CLIENT_DISABLED",
        ] {
            assert_eq!(
                check_client_action(imitation),
                Err(ClientActionError::Charset),
                "{imitation:?}"
            );
        }
        assert_eq!(check_client_action(""), Err(ClientActionError::Missing));
        assert_eq!(
            check_client_action(&"A".repeat(101)),
            Err(ClientActionError::TooLong { chars: 101 })
        );
        for fine in ["A", "CREATE", "REVIEW_2", "X9_", &"A".repeat(100)] {
            assert_eq!(check_client_action(fine), Ok(()), "{fine}");
        }
    }

    fn draft() -> AuditDraft {
        AuditDraft {
            id: Uuid::parse_str("0193a5b0-0000-7000-8000-000000000001").expect("uuid"),
            timestamp: time::macros::datetime!(2026-11-27 04:15:39.123456 UTC),
            actor: "admin".into(),
            action: action::PROMPT_CREATED.into(),
            prompt_id: None,
            details: json!({"name": "support", "n": 1.0}),
            client_timestamp: None,
            compliance_status: None,
            metadata: None,
        }
    }

    #[test]
    fn the_sealed_body_is_the_canonical_served_object_without_hash() {
        let sealed = draft().seal(1, &GENESIS_HASH);
        assert_eq!(
            sealed.body,
            "{\"action\":\"PROMPT_CREATED\",\"actor\":\"admin\",\"clientTimestamp\":null,\
             \"complianceStatus\":null,\"details\":{\"n\":1,\"name\":\"support\"},\
             \"id\":\"0193a5b0-0000-7000-8000-000000000001\",\"metadata\":null,\
             \"prevHash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\
             \"promptId\":null,\"sequence\":1,\"timestamp\":\"2026-11-27T04:15:39.123Z\"}"
        );
        let mut served = sealed.to_value();
        let hash = served
            .as_object_mut()
            .and_then(|o| o.remove("hash"))
            .expect("served entry has a hash");
        assert_eq!(hash, json!(merkle::to_hex(&sealed.hash)));
        assert_eq!(to_canonical_string(&served), sealed.body);
    }

    #[test]
    fn the_hash_links_the_raw_previous_hash_to_the_body() {
        let prev = [0xab; 32];
        let sealed = draft().seal(7, &prev);
        let mut bytes = prev.to_vec();
        bytes.extend_from_slice(sealed.body.as_bytes());
        let expected: Hash = Sha256::digest(&bytes).into();
        assert_eq!(sealed.hash, expected);
        assert_eq!(sealed.leaf_hash, merkle::leaf_hash(sealed.body.as_bytes()));
        assert!(
            sealed
                .body
                .contains(&format!("\"prevHash\":\"{}\"", "ab".repeat(32)))
        );
    }

    #[test]
    fn any_change_to_the_draft_changes_the_hash() {
        let base = draft().seal(1, &GENESIS_HASH).hash;
        let mut other = draft();
        other.actor = "someone-else".into();
        assert_ne!(other.seal(1, &GENESIS_HASH).hash, base);
        assert_ne!(draft().seal(2, &GENESIS_HASH).hash, base);
        assert_ne!(draft().seal(1, &[1; 32]).hash, base);
    }

    #[test]
    fn reserved_actions_are_the_contract_names() {
        assert!(action::is_reserved("PROMPT_CREATED"));
        assert!(action::is_reserved("CONFIG_RELOADED"));
        assert!(!action::is_reserved("CREATE"));
        assert!(action::is_reserved("prompt_created"));
        assert!(!action::is_reserved("PROMPT_CREATED_BY_HAND"));
    }
}
