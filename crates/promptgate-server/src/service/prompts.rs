//! Prompts: create, read, list, change (a new version, the traffic split, the chat-completions
//! policy, or several at once) and archive.
//!
//! Changes are optimistic. Each attempt reads the prompt, has the core plan the change on that
//! read ([`promptgate_core::change`]), and asks the store to apply it, with its audit entries in
//! the same transaction, only if the revision is still the one read. With `If-Match` a lost race
//! is [`PromptError::Stale`]; without it the change is read and planned again, so an
//! unconditional change never fails spuriously. Within this process, changes of one prompt take
//! turns on [`crate::state::PromptLocks`], so only other processes can win a race.

use promptgate_core::change::{
    ChangeContext, ChangeDraft, ChangePlan, NewPrompt, NewPromptDraft, PlanError, Revision,
    plan_label_delete, plan_label_move,
};
use promptgate_core::label::LabelError;
use promptgate_core::violation::quoted;
use promptgate_core::{
    BlockedCategory, Prompt, PromptStatus, PromptVersion, VersionLabel, Violation,
};
use promptgate_store::{PromptFilter, PromptUpdate, StoreError};
use uuid::Uuid;

use crate::clock::now;
use crate::state::AppState;
use crate::templates::{FillError, Filled};

/// How many times an unconditional change re-reads after losing a race to another process
/// (changes within this process take turns on a lock) before giving up.
const MAX_UPDATE_ATTEMPTS: usize = 32;

/// A prompt as an answer shows it.
#[derive(Debug, Clone)]
pub struct PromptView {
    /// The prompt.
    pub prompt: Prompt,
    /// Its versions' labels, oldest first by semver.
    pub labels: Vec<VersionLabel>,
    /// The version whose settings the answer shows: the default version, or the one a change
    /// added or named.
    pub shown: PromptVersion,
}

/// One page of a listing in its order.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// Whether items follow the last one.
    pub more: bool,
}

/// Why a prompt use case failed. Each message is the contract's, shown to the caller as is.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Fields are invalid; every problem at once.
    #[error("invalid request: {} problems", .0.len())]
    Invalid(Vec<Violation>),
    /// No prompt has this id (or it is not an id).
    #[error("no prompt with id {id}")]
    NoPrompt {
        /// The id as given.
        id: String,
    },
    /// The prompt has no version with this label.
    #[error("prompt {prompt_id} has no version {version}")]
    NoVersion {
        /// The prompt.
        prompt_id: Uuid,
        /// The label.
        version: VersionLabel,
    },
    /// The version asked for is not a version label, so the prompt has no such version.
    #[error("prompt {id} has no version {}", quoted(.version))]
    NotAVersion {
        /// The prompt id as given.
        id: String,
        /// The text given as the version.
        version: String,
    },
    /// Another prompt has the name; names are unique.
    #[error("a prompt named {} already exists", quoted(.name))]
    NameTaken {
        /// The name.
        name: String,
    },
    /// The prompt is archived; archived prompts do not change.
    #[error("prompt {id} is archived; archived prompts do not change")]
    Archived {
        /// The prompt.
        id: Uuid,
    },
    /// The named version exists with other settings; versions are immutable.
    #[error(
        "version {version} exists with different content; versions are immutable, so use a new version"
    )]
    VersionExists {
        /// The label.
        version: VersionLabel,
    },
    /// `If-Match` names a revision that is no longer current.
    #[error("the prompt changed: its ETag is now {current_etag}")]
    Stale {
        /// The prompt's current ETag, so the caller can re-read and retry.
        current_etag: String,
    },
    /// Other processes kept changing the prompt while this change was planned, every attempt.
    #[error("the prompt is changing too fast to {doing}; retry")]
    Busy {
        /// What was being done: `update`, `archive` or `move the label`.
        doing: &'static str,
    },
    /// The prompt has no version to base a new one on (the store broke an invariant).
    #[error("prompt {prompt_id} has no versions")]
    NoVersions {
        /// The prompt.
        prompt_id: Uuid,
    },
    /// The prompt has no label of this name (deleting it, or rendering through it).
    #[error("prompt {prompt_id} has no label {}", quoted(.label))]
    NoLabel {
        /// The prompt.
        prompt_id: Uuid,
        /// The label as given.
        label: String,
    },
    /// A variable's value touches one of the version's blocked categories (a render preview
    /// refuses what an invocation would).
    #[error("the request was refused: it matches the blocked category {}", .0.as_str())]
    Blocked(BlockedCategory),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PlanError> for PromptError {
    fn from(err: PlanError) -> Self {
        match err {
            PlanError::Invalid(violations) => PromptError::Invalid(violations),
            PlanError::VersionExists { version } => PromptError::VersionExists { version },
            PlanError::NoVersions { prompt_id } => PromptError::NoVersions { prompt_id },
        }
    }
}

/// Creates a prompt with its first version, by `actor`, recording `PROMPT_CREATED`.
pub async fn create_prompt(
    state: &AppState,
    actor: &str,
    draft: NewPromptDraft,
) -> Result<PromptView, PromptError> {
    let mut violations = too_long(state, &draft.settings);
    let planned = draft.plan(Uuid::now_v7(), &context(state, actor));
    let new = match planned {
        Ok(new) if violations.is_empty() => new,
        Ok(_) => return Err(PromptError::Invalid(violations)),
        Err(more) => {
            violations.extend(more);
            return Err(PromptError::Invalid(violations));
        }
    };
    let audit = state.audit.prompt_entry(actor, new.prompt.id, &new.fact());
    match state
        .store
        .create_prompt(&new.prompt, &new.first, &[audit])
        .await
    {
        Ok(()) => {}
        Err(StoreError::DuplicateName { name }) => return Err(PromptError::NameTaken { name }),
        Err(other) => return Err(other.into()),
    }
    let NewPrompt { prompt, first } = new;
    Ok(PromptView {
        prompt,
        labels: vec![first.version.clone()],
        shown: first,
    })
}

/// Reads a prompt with its default version.
pub async fn get_prompt(state: &AppState, id: &str) -> Result<PromptView, PromptError> {
    let prompt = load_prompt(state, id).await?;
    view(state, prompt, None, None).await
}

/// Lists prompts matching `filter` by id (creation order), after `after`, at most `page_size`.
pub async fn list_prompts(
    state: &AppState,
    filter: &PromptFilter,
    after: Option<Uuid>,
    page_size: u32,
) -> Result<Page<PromptView>, PromptError> {
    // One store call for the page, each prompt with its labels and default version (a fixed
    // number of queries, not two per prompt).
    let mut listings = state
        .store
        .list_prompt_listings(filter, after, page_size + 1)
        .await?;
    let more = listings.len() > page_size as usize;
    listings.truncate(page_size as usize);
    let items = listings
        .into_iter()
        .map(|listing| {
            let shown = listing
                .default_version
                .ok_or_else(|| PromptError::NoVersion {
                    prompt_id: listing.prompt.id,
                    version: listing.prompt.traffic.default_version().clone(),
                })?;
            Ok(PromptView {
                prompt: listing.prompt,
                labels: listing.labels,
                shown,
            })
        })
        .collect::<Result<Vec<_>, PromptError>>()?;
    Ok(Page { items, more })
}

/// Lists a prompt's versions, newest first by semver, after the label `after`, at most
/// `page_size`.
pub async fn list_versions(
    state: &AppState,
    id: &str,
    after: Option<VersionLabel>,
    page_size: u32,
) -> Result<Page<PromptVersion>, PromptError> {
    let prompt = load_prompt(state, id).await?;
    let mut labels = sorted_labels(state, prompt.id).await?;
    labels.reverse();
    let start = after.map_or(0, |a| labels.iter().take_while(|l| **l >= a).count());
    let page = labels.iter().skip(start).take(page_size as usize);
    let mut items = Vec::with_capacity(page.len());
    for label in page {
        items.push(load_version(state, prompt.id, label).await?);
    }
    let more = start + items.len() < labels.len();
    Ok(Page { items, more })
}

/// Reads one version of a prompt; `version` as the caller wrote it.
pub async fn get_version(
    state: &AppState,
    id: &str,
    version: &str,
) -> Result<PromptVersion, PromptError> {
    let prompt = load_prompt(state, id).await?;
    let label: VersionLabel = version.parse().map_err(|_| PromptError::NotAVersion {
        id: id.to_owned(),
        version: version.to_owned(),
    })?;
    load_version(state, prompt.id, &label).await
}

/// Changes a prompt by `actor`: adds a version, changes the split or the chat-completions
/// policy, or several at once, atomically, with one audit entry per part that changes. A change
/// that changes nothing (an identical re-send) answers the prompt as it is. `if_match`: the
/// `If-Match` value, if sent.
pub async fn update_prompt(
    state: &AppState,
    actor: &str,
    id: &str,
    if_match: Option<&str>,
    draft: ChangeDraft,
) -> Result<PromptView, PromptError> {
    let mut early = too_long(state, &draft.settings);
    // A mode that no prompt could take is refused before anything is read.
    let change = draft.check().map_err(|v| early.push(v)).ok();
    let Some(change) = change.filter(|_| early.is_empty()) else {
        return Err(PromptError::Invalid(early));
    };
    let _turn = lock_prompt(state, id).await;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let prompt = load_prompt(state, id).await?;
        check_if_match(if_match, &prompt)?;
        if prompt.status == PromptStatus::Archived {
            return Err(PromptError::Archived { id: prompt.id });
        }
        let labels = sorted_labels(state, prompt.id).await?;
        let read = match change.version_to_read(&labels) {
            Some(label) => Some(load_version(state, prompt.id, label).await?),
            None => None,
        };
        let revision = match change.plan(&prompt, &labels, read, &context(state, actor))? {
            ChangePlan::Unchanged { shown } => {
                return view(state, prompt, Some(labels), shown).await;
            }
            ChangePlan::Changed(revision) => revision,
        };
        if let Some(view) = write(state, actor, prompt, labels, revision, if_match).await? {
            return Ok(view);
        }
    }
    Err(PromptError::Busy { doing: "update" })
}

/// What a label request does: point the label at a version (creating it if new), or delete it.
#[derive(Debug, Clone)]
pub enum LabelAction {
    /// `PUT …/labels/{label}` with `{"version": …}` (the text as sent, checked by the plan).
    Move {
        /// The version, if sent.
        version: Option<String>,
    },
    /// `DELETE …/labels/{label}`.
    Delete,
}

/// Moves, creates or deletes the prompt's label `label` by `actor`, recording `LABEL_MOVED` or
/// `LABEL_DELETED`; honours `If-Match` like any change. Pointing a label where it points
/// already answers the prompt as it is and records nothing.
pub async fn change_label(
    state: &AppState,
    actor: &str,
    id: &str,
    label: &str,
    action: LabelAction,
    if_match: Option<&str>,
) -> Result<PromptView, PromptError> {
    let _turn = lock_prompt(state, id).await;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let prompt = load_prompt(state, id).await?;
        check_if_match(if_match, &prompt)?;
        if prompt.status == PromptStatus::Archived {
            return Err(PromptError::Archived { id: prompt.id });
        }
        let versions = sorted_labels(state, prompt.id).await?;
        let planned = match &action {
            LabelAction::Move { version } => {
                plan_label_move(&prompt, &versions, label, version.as_deref(), now())
            }
            LabelAction::Delete => plan_label_delete(&prompt, label, now()),
        };
        let revision = match planned {
            Ok(ChangePlan::Unchanged { .. }) => {
                return view(state, prompt, Some(versions), None).await;
            }
            Ok(ChangePlan::Changed(revision)) => revision,
            Err(LabelError::Invalid(violation)) => {
                return Err(PromptError::Invalid(vec![violation]));
            }
            Err(LabelError::NotFound(label)) => {
                return Err(PromptError::NoLabel {
                    prompt_id: prompt.id,
                    label,
                });
            }
        };
        if let Some(view) = write(state, actor, prompt, versions, revision, if_match).await? {
            return Ok(view);
        }
    }
    Err(PromptError::Busy {
        doing: "move the label",
    })
}

/// What to render: a version (by label, by name, or the default one) with sample variables.
#[derive(Debug, Clone, Default)]
pub struct RenderInput {
    /// The version as sent.
    pub version: Option<String>,
    /// The label as sent (not together with `version`).
    pub label: Option<String>,
    /// The variables as sent.
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A version's templates rendered with the variables, and their token counts.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The prompt.
    pub prompt_id: Uuid,
    /// The version rendered.
    pub version: PromptVersion,
    /// The rendered texts and the variables as used.
    pub filled: Filled,
    /// The rendered system prompt's tokens, with the version's tokenizer.
    pub system_prompt_tokens: u32,
    /// Each rendered template message's tokens.
    pub message_tokens: Vec<u32>,
}

/// Renders a version's templates as an invocation would (the schema, the defaults, the
/// guardrails on the values, the budget), calling no model: previews in the console and tests
/// in CI.
pub async fn render(
    state: &AppState,
    id: &str,
    input: RenderInput,
) -> Result<Rendered, PromptError> {
    let not_found = || PromptError::NoPrompt { id: id.to_owned() };
    let prompt_id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let cached = state.prompts.get(prompt_id).await?.ok_or_else(not_found)?;
    let label = match (&input.version, &input.label) {
        (Some(_), Some(_)) => {
            return Err(PromptError::Invalid(vec![Violation::invalid(
                "label",
                "version and label are exclusive: name the version, or the label that points at one",
            )]));
        }
        (Some(version), None) => version.parse().map_err(|_| PromptError::NotAVersion {
            id: id.to_owned(),
            version: version.clone(),
        })?,
        (None, Some(name)) => cached
            .prompt
            .labels
            .iter()
            .find(|(l, _)| l.as_str() == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| PromptError::NoLabel {
                prompt_id,
                label: name.clone(),
            })?,
        (None, None) => cached.prompt.traffic.default_version().clone(),
    };
    let (Some(version), Some(template)) =
        (cached.versions.get(&label), cached.templates.get(&label))
    else {
        return Err(PromptError::NoVersion {
            prompt_id,
            version: label,
        });
    };
    let count = |text: &str| state.counter.count(version.tokenizer, text);
    let reserved = cached.tool_tokens(&label, &state.counter, version.tokenizer);
    let filled = template
        .fill_reserving(&version.settings, input.variables.as_ref(), reserved, count)
        .map_err(|err| match err {
            FillError::Invalid(violations) => PromptError::Invalid(violations),
            FillError::Blocked(category) => PromptError::Blocked(category),
        })?;
    let tokens = |text: &str| u32::try_from(count(text)).unwrap_or(u32::MAX);
    Ok(Rendered {
        prompt_id,
        system_prompt_tokens: tokens(&filled.system_prompt),
        message_tokens: filled.messages.iter().map(|m| tokens(&m.content)).collect(),
        version: version.clone(),
        filled,
    })
}

/// Archives a prompt by `actor`: it stops serving; its history stays. Archiving an archived
/// prompt answers it as it is.
pub async fn archive_prompt(
    state: &AppState,
    actor: &str,
    id: &str,
    if_match: Option<&str>,
) -> Result<PromptView, PromptError> {
    let _turn = lock_prompt(state, id).await;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let prompt = load_prompt(state, id).await?;
        check_if_match(if_match, &prompt)?;
        let labels = sorted_labels(state, prompt.id).await?;
        let shown = load_version(state, prompt.id, prompt.traffic.default_version()).await?;
        let Some(revision) = Revision::archive(&prompt, now()) else {
            return Ok(PromptView {
                prompt,
                labels,
                shown,
            });
        };
        let revision = Revision {
            shown: Some(shown),
            ..revision
        };
        if let Some(view) = write(state, actor, prompt, labels, revision, if_match).await? {
            return Ok(view);
        }
    }
    Err(PromptError::Busy { doing: "archive" })
}

/// What a change is checked with, by `actor`, now.
fn context<'a>(state: &'a AppState, actor: &'a str) -> ChangeContext<'a> {
    ChangeContext {
        catalogue: &state.catalogue,
        counter: &state.counter,
        schemas: &promptgate_variables::SchemaChecker,
        by: actor,
        at: now(),
    }
}

/// The settings' lengths over the configured `[limits]`, checked before the core counts tokens.
fn too_long(state: &AppState, settings: &promptgate_core::prompt::SettingsDraft) -> Vec<Violation> {
    let mut violations = Vec::new();
    crate::limits::check_prompt_settings(
        &state.limits,
        settings.system_prompt.as_deref(),
        settings.few_shot_examples.as_deref(),
        &mut violations,
    );
    violations
}

/// Writes `revision` of `before` (whose labels are `labels`) with its audit entries. `None`:
/// another process changed the prompt first, so the caller plans again on a new read.
async fn write(
    state: &AppState,
    actor: &str,
    before: Prompt,
    mut labels: Vec<VersionLabel>,
    revision: Revision,
    if_match: Option<&str>,
) -> Result<Option<PromptView>, PromptError> {
    let audit = revision
        .facts(&before)
        .map(|fact| state.audit.prompt_entry(actor, before.id, &fact))
        .collect();
    let update = PromptUpdate {
        id: revision.prompt_id,
        expected_revision: revision.expected_revision,
        new_revision: revision.new_revision,
        updated_at: revision.updated_at,
        new_version: revision.new_version,
        traffic: revision.traffic,
        status: revision.status,
        chat_completions: revision.chat_completions,
        labels: revision.labels,
        audit,
    };
    if !apply(state, &update, if_match).await? {
        return Ok(None);
    }
    let PromptUpdate {
        new_revision,
        updated_at,
        new_version,
        traffic,
        status,
        chat_completions,
        labels: pins,
        ..
    } = update;
    let prompt = Prompt {
        revision: new_revision,
        updated_at,
        traffic: traffic.unwrap_or(before.traffic),
        status: status.unwrap_or(before.status),
        chat_completions: chat_completions.unwrap_or(before.chat_completions),
        labels: pins.unwrap_or(before.labels),
        ..before
    };
    if let Some(v) = &new_version {
        labels.push(v.version.clone());
        labels.sort();
    }
    view(state, prompt, Some(labels), new_version.or(revision.shown))
        .await
        .map(Some)
}

/// Applies an update decided on the prompt as read. `Ok(true)`: done (and the prompt cache
/// told). `Ok(false)`: another process changed the prompt first (or added the same version), so
/// the caller decides again on the new state. With `If-Match` a lost race is stale instead.
async fn apply(
    state: &AppState,
    update: &PromptUpdate,
    if_match: Option<&str>,
) -> Result<bool, PromptError> {
    match state.store.update_prompt(update).await {
        Ok(()) => {
            state.prompts.invalidate(update.id);
            Ok(true)
        }
        Err(StoreError::StaleRevision) if if_match.is_some() => {
            let current =
                state
                    .store
                    .get_prompt(update.id)
                    .await?
                    .ok_or_else(|| PromptError::NoPrompt {
                        id: update.id.to_string(),
                    })?;
            Err(PromptError::Stale {
                current_etag: current.etag(),
            })
        }
        Err(StoreError::StaleRevision | StoreError::DuplicateVersion { .. }) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// `If-Match: *` or a list holding the current ETag (weak or strong) passes; none passes too.
fn check_if_match(if_match: Option<&str>, prompt: &Prompt) -> Result<(), PromptError> {
    match if_match {
        Some(value) if !prompt.matches(value) => Err(PromptError::Stale {
            current_etag: prompt.etag(),
        }),
        _ => Ok(()),
    }
}

/// Takes this process's turn on the prompt (a malformed id needs no lock: it will be unknown).
async fn lock_prompt<'a>(state: &'a AppState, id: &str) -> Option<tokio::sync::MutexGuard<'a, ()>> {
    match Uuid::parse_str(id) {
        Ok(uuid) => Some(state.prompt_locks.lock(uuid).await),
        Err(_) => None,
    }
}

/// `prompt` as an answer shows it: with `labels` (read when none) and `shown` (the default
/// version, read, when none).
async fn view(
    state: &AppState,
    prompt: Prompt,
    labels: Option<Vec<VersionLabel>>,
    shown: Option<PromptVersion>,
) -> Result<PromptView, PromptError> {
    let labels = match labels {
        Some(labels) => labels,
        None => sorted_labels(state, prompt.id).await?,
    };
    let shown = match shown {
        Some(shown) => shown,
        None => load_version(state, prompt.id, prompt.traffic.default_version()).await?,
    };
    Ok(PromptView {
        prompt,
        labels,
        shown,
    })
}

async fn load_prompt(state: &AppState, id: &str) -> Result<Prompt, PromptError> {
    let not_found = || PromptError::NoPrompt { id: id.to_owned() };
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.store.get_prompt(uuid).await?.ok_or_else(not_found)
}

async fn load_version(
    state: &AppState,
    prompt_id: Uuid,
    label: &VersionLabel,
) -> Result<PromptVersion, PromptError> {
    state
        .store
        .get_version(prompt_id, label)
        .await?
        .ok_or_else(|| PromptError::NoVersion {
            prompt_id,
            version: label.clone(),
        })
}

/// A prompt's version labels, oldest first by semver.
async fn sorted_labels(
    state: &AppState,
    prompt_id: Uuid,
) -> Result<Vec<VersionLabel>, PromptError> {
    let mut labels = state.store.version_labels(prompt_id).await?;
    labels.sort();
    Ok(labels)
}
