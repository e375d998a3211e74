//! A client's own audit entry: checked (an action name that cannot pass for one of the
//! gateway's, bounded `details` and `metadata`, a known prompt), then sealed onto the chain
//! with the server's time and the caller as actor.

use promptgate_audit::{SealedEntry, action};
use promptgate_core::Violation;
use promptgate_store::StoreError;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::state::AppState;

/// The longest `action` a client may send (`[A-Z][A-Z0-9_]{0,99}`,
/// [`action::check_client_action`]).
pub const MAX_ACTION_CHARS: usize = action::MAX_CLIENT_ACTION_CHARS;
/// The longest `complianceStatus`.
pub const MAX_COMPLIANCE_STATUS_CHARS: usize = 100;
/// The largest `details` or `metadata`, as canonical JSON bytes.
pub const MAX_DETAILS_BYTES: usize = 64 * 1024;

/// A client's entry as sent, each field still to be checked (every problem is reported at once).
#[derive(Debug, Default)]
pub struct ClientEntry {
    /// The action name.
    pub action: Option<String>,
    /// The prompt the entry is about, as a UUID's text.
    pub prompt_id: Option<String>,
    /// The client's own time of the event, RFC 3339.
    pub timestamp: Option<String>,
    /// A JSON object of details.
    pub details: Option<Value>,
    /// A JSON object of metadata.
    pub metadata: Option<Value>,
    /// A free compliance status.
    pub compliance_status: Option<String>,
}

/// Why a client's entry was not appended.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// One or more fields are invalid.
    #[error("invalid audit entry")]
    Invalid(Vec<Violation>),
    /// `promptId` names no prompt.
    #[error("no prompt with id {0}")]
    UnknownPrompt(uuid::Uuid),
    /// The store reported success but returned no sealed entry.
    #[error("the store appended no entry")]
    NothingAppended,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `entry` and appends it with `actor` (the caller's client id) as its actor.
pub async fn append_client_entry(
    state: &AppState,
    actor: &str,
    entry: ClientEntry,
) -> Result<SealedEntry, AuditError> {
    let mut violations = Vec::new();
    // Taken as sent, not trimmed: the strict charset refuses the spaces and invisible
    // characters that could make a client's entry pass for one of the gateway's own.
    let checked = action::check_client_action(entry.action.as_deref().unwrap_or(""));
    let action_name = match checked {
        Ok(()) => entry.action,
        Err(problem) => {
            violations.push(Violation::invalid("action", problem.to_string()));
            None
        }
    };
    let prompt_id = promptgate_core::violation::uuid_field(
        "promptId",
        entry.prompt_id.as_deref(),
        &mut violations,
    );
    let client_timestamp = entry.timestamp.as_deref().and_then(|text| {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| {
                violations.push(Violation::invalid(
                    "timestamp",
                    format!(
                        "timestamp is {}; use an RFC 3339 time such as 2026-11-27T04:15:39Z",
                        promptgate_core::violation::quoted(text)
                    ),
                ))
            })
            .ok()
    });
    let details = object_field("details", entry.details, &mut violations);
    let metadata = object_field("metadata", entry.metadata, &mut violations);
    let compliance_status = entry.compliance_status.filter(|s| {
        let ok = s.chars().count() <= MAX_COMPLIANCE_STATUS_CHARS;
        if !ok {
            violations.push(Violation::invalid(
                "complianceStatus",
                format!("complianceStatus is longer than {MAX_COMPLIANCE_STATUS_CHARS} characters"),
            ));
        }
        ok
    });
    let Some(action_name) = action_name.filter(|_| violations.is_empty()) else {
        return Err(AuditError::Invalid(violations));
    };
    if let Some(id) = prompt_id
        && state.store.get_prompt(id).await?.is_none()
    {
        return Err(AuditError::UnknownPrompt(id));
    }
    let mut draft = crate::audit::draft(
        actor,
        &action_name,
        prompt_id,
        details.unwrap_or_else(|| Value::Object(Default::default())),
    );
    draft.client_timestamp = client_timestamp;
    draft.compliance_status = compliance_status;
    draft.metadata = metadata;
    let sealed = state
        .store
        .append_audit(std::slice::from_ref(&draft))
        .await?;
    sealed.into_iter().next().ok_or(AuditError::NothingAppended)
}

/// A JSON object field, bounded in size.
fn object_field(
    field: &str,
    value: Option<Value>,
    violations: &mut Vec<Violation>,
) -> Option<Value> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(members)) => {
            let value = Value::Object(members);
            let size = promptgate_audit::canonical::to_canonical_string(&value).len();
            if size > MAX_DETAILS_BYTES {
                violations.push(Violation::invalid(
                    field,
                    format!("{field} is {size} bytes as JSON; the limit is {MAX_DETAILS_BYTES}"),
                ));
                None
            } else {
                Some(value)
            }
        }
        Some(_) => {
            violations.push(Violation::invalid(
                field,
                format!("{field} must be a JSON object"),
            ));
            None
        }
    }
}
