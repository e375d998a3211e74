//! Feedback on an invocation: only the client that made the invocation, or an `admin`, may give
//! it; a later post replaces the earlier feedback, says so, and leaves a `FEEDBACK_REPLACED`
//! audit entry. The write is a compare-and-set on the feedback read, retried when another post
//! got in between.

use promptgate_core::{Scope, Violation};
use promptgate_store::{Feedback, FeedbackState, StoreError};

use crate::auth::Caller;
use crate::clock::{now, rfc3339};
use crate::state::AppState;

/// How many times a feedback post re-reads and retries when another post changed the same
/// invocation's feedback between its read and its write.
const FEEDBACK_ATTEMPTS: usize = 5;

/// Feedback as posted on one invocation.
#[derive(Debug)]
pub struct FeedbackInput {
    /// The invocation's `responseId`.
    pub response_id: String,
    /// The score from 0 to 1 as read from the request (`wire::telemetry::feedback_score`), or
    /// why it could not be read: reported together with the comment's problems.
    pub score: Result<f64, Violation>,
    /// An optional comment, bounded by `[limits] max_text_chars`.
    pub comment: Option<String>,
}

/// Feedback as stored, and whether it replaced earlier feedback.
#[derive(Debug)]
pub struct RecordedFeedback {
    /// The invocation's `responseId`.
    pub response_id: String,
    /// The stored feedback, with the time it was given.
    pub feedback: Feedback,
    /// Whether the invocation held feedback before.
    pub replaced: bool,
}

/// Why feedback was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The score or the comment is invalid (every problem at once).
    #[error("invalid feedback")]
    Invalid(Vec<Violation>),
    /// No invocation has this `responseId`, even after the queued records were stored.
    #[error("no invocation with responseId {0}")]
    NotFound(String),
    /// The invocation is another client's and the caller is no `admin`.
    #[error(
        "invocation {0} was made by another client; only that client or an admin may give its \
         feedback"
    )]
    NotAuthorized(String),
    /// Other posts kept changing the feedback between each read and write.
    #[error("the feedback of invocation {0} kept changing while this post was written; retry")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records `input` as `caller`'s feedback on the invocation, replacing what it held.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    input: FeedbackInput,
) -> Result<RecordedFeedback, FeedbackError> {
    let FeedbackInput {
        response_id,
        score,
        comment,
    } = input;
    let mut violations = Vec::new();
    let score = score.map_err(|violation| violations.push(violation)).ok();
    if let Some(comment) = &comment {
        crate::limits::check_length(
            &mut violations,
            "comment",
            comment,
            state.limits.max_text_chars,
            "max_text_chars",
        );
    }
    let Some(score) = score.filter(|_| violations.is_empty()) else {
        return Err(FeedbackError::Invalid(violations));
    };
    let feedback = Feedback {
        score,
        comment,
        at: now(),
    };
    let mut flushed = false;
    for _ in 0..FEEDBACK_ATTEMPTS {
        let Some(current) = state.store.feedback_state(&response_id).await? else {
            if flushed {
                return Err(FeedbackError::NotFound(response_id));
            }
            // The record may still be queued for the batch writer: store the queue and look
            // again.
            state.telemetry.flush().await;
            flushed = true;
            continue;
        };
        if current.client_id != caller.client_id && !caller.scopes.contains(Scope::Admin) {
            return Err(FeedbackError::NotAuthorized(response_id));
        }
        let audit = current.feedback.as_ref().map(|previous| {
            replacement_entry(
                &caller.client_id,
                &response_id,
                &current,
                previous,
                &feedback,
            )
        });
        if state
            .store
            .replace_feedback(
                &response_id,
                current.feedback.as_ref(),
                &feedback,
                audit.as_ref(),
            )
            .await?
        {
            return Ok(RecordedFeedback {
                response_id,
                feedback,
                replaced: current.feedback.is_some(),
            });
        }
        // Another post changed this feedback (or a retention prune removed the record) between
        // the read and the write: decide again on what is stored now.
    }
    Err(FeedbackError::Conflict(response_id))
}

/// The audit entry of `by` replacing `previous` with `next`. A comment is recorded by its
/// length and SHA-256 only: comments are free text from callers and may hold personal data,
/// which an append-only log could never purge; the hash still lets a copy kept elsewhere be
/// matched to the entry.
fn replacement_entry(
    by: &str,
    response_id: &str,
    current: &FeedbackState,
    previous: &Feedback,
    next: &Feedback,
) -> promptgate_audit::AuditDraft {
    use sha2::Digest;
    let recorded = |f: &Feedback| {
        serde_json::json!({
            "score": f.score,
            "givenAt": rfc3339(f.at),
            "comment": f.comment.as_ref().map(|c| serde_json::json!({
                "chars": c.chars().count(),
                "sha256": hex::encode(sha2::Sha256::digest(c.as_bytes())),
            })),
        })
    };
    let mut details =
        promptgate_audit::change_details(Some(&recorded(previous)), Some(&recorded(next)));
    details["responseId"] = serde_json::json!(response_id);
    details["invocationClientId"] = serde_json::json!(current.client_id);
    crate::audit::draft(
        by,
        promptgate_audit::action::FEEDBACK_REPLACED,
        Some(current.prompt_id),
        details,
    )
}
