//! Plans a change to a prompt: from the prompt as read and what a client asked for, decides the
//! next revision, the version to add, the split and the policy after it, and the facts its audit
//! entries record.
//!
//! Nothing here reads or writes. The caller reads what a plan needs
//! ([`PromptChange::version_to_read`]), writes the [`Revision`] with a revision check, and, if
//! another writer got there first, reads again and plans again: a plan is cheap and decided on
//! one consistent read. The audit facts are domain values; the server turns them into the
//! entries' JSON, so every rule about *what* a change records lives here and every byte of *how*
//! it is written lives in one place there.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::endpoint::EndpointCatalogue;
use crate::label::{LabelError, LabelMove, LabelName, Labels, MAX_LABELS};
use crate::prompt::{
    ChatCompletionsChange, ChatCompletionsDraft, ChatCompletionsPolicy, CheckedSettings, Prompt,
    PromptStatus, PromptVersion, SettingsDraft, check_name, check_version,
};
use crate::template::SchemaCheck;
use crate::tokenizer::TokenCounter;
use crate::traffic::{TrafficDraft, TrafficSplit};
use crate::version::VersionLabel;
use crate::violation::Violation;

/// What every decision about a change needs beside the prompt: the model endpoints and the
/// tokenizers that settings are checked with, and who makes the change and when (the caller's
/// clock, so that a plan is a pure function of its inputs).
#[derive(Clone, Copy)]
pub struct ChangeContext<'a> {
    /// The configured model endpoints.
    pub catalogue: &'a EndpointCatalogue,
    /// The tokenizers that count a system prompt's tokens.
    pub counter: &'a TokenCounter,
    /// What checks a version's variables schema (JSON Schema, outside core).
    pub schemas: &'a dyn SchemaCheck,
    /// The OAuth client that makes the change.
    pub by: &'a str,
    /// The instant of the change: the new version's creation and the prompt's update.
    pub at: OffsetDateTime,
}

/// A new prompt as a client sent it: every field optional, so every problem is reported at once.
#[derive(Debug, Clone, Default)]
pub struct NewPromptDraft {
    /// `name`.
    pub name: Option<String>,
    /// `version`: the first version's label.
    pub version: Option<String>,
    /// The first version's settings.
    pub settings: SettingsDraft,
    /// `trafficDistribution`, over a split that sends everything to the first version.
    pub traffic: Option<TrafficDraft>,
    /// `chatCompletions`, over the default policy.
    pub chat_completions: Option<ChatCompletionsDraft>,
}

/// A checked new prompt with its first version, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrompt {
    /// The prompt, at revision 1.
    pub prompt: Prompt,
    /// Its first version.
    pub first: PromptVersion,
}

/// A change of a prompt as a client sent it: a new version (its label and the settings that
/// differ from the newest version), a traffic change, a policy change, or several at once.
#[derive(Debug, Clone, Default)]
pub struct ChangeDraft {
    /// `version`: required when a setting is sent.
    pub version: Option<String>,
    /// The settings of the new version; left-out ones come from the newest version.
    pub settings: SettingsDraft,
    /// `trafficDistribution`; left-out parts keep the current split.
    pub traffic: Option<TrafficDraft>,
    /// `chatCompletions`; left-out parts keep the current policy.
    pub chat_completions: Option<ChatCompletionsDraft>,
}

/// A [`ChangeDraft`] with what needs no prompt parsed once, to be planned against each read of
/// the prompt.
#[derive(Debug, Clone)]
pub struct PromptChange {
    /// The label of the version the change names, if it names one; a bad label is reported
    /// with the problems found once the prompt is read, as if found then.
    label: Result<Option<VersionLabel>, Violation>,
    settings: SettingsDraft,
    traffic: Option<TrafficDraft>,
    chat_completions: ChatCompletionsChange,
}

/// What a change does to the prompt as read.
// One plan per attempt, moved once into the write: boxing the large variant would only add an
// allocation to every change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ChangePlan {
    /// Nothing changes (an identical re-send, an empty change, or a split or policy equal to the
    /// current one): the answer is the prompt as read.
    Unchanged {
        /// The existing version the change named, which the answer shows; none: show the
        /// default version.
        shown: Option<PromptVersion>,
    },
    /// The prompt moves to its next revision.
    Changed(Revision),
}

/// The next revision of a prompt: what to store, on the condition that the prompt is still at
/// `expected_revision`. Only the parts that change are set.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The prompt.
    pub prompt_id: Uuid,
    /// The revision the plan was decided on.
    pub expected_revision: i64,
    /// The revision after the change.
    pub new_revision: i64,
    /// The instant of the change.
    pub updated_at: OffsetDateTime,
    /// A version to add.
    pub new_version: Option<PromptVersion>,
    /// The split after the change, when it differs.
    pub traffic: Option<TrafficSplit>,
    /// The status after the change, when it differs.
    pub status: Option<PromptStatus>,
    /// The policy after the change, when it differs.
    pub chat_completions: Option<ChatCompletionsPolicy>,
    /// The labels after the change, when they differ.
    pub labels: Option<Labels>,
    /// The label change that made them differ (one per revision): what its audit entry records.
    pub label_move: Option<LabelMove>,
    /// The newest version before `new_version`: what the new version's audit entry compares
    /// it with.
    pub compared_with: Option<PromptVersion>,
    /// The existing version the answer shows: one the change named again beside a traffic or
    /// policy change (or any the caller has read already, such as the default version when it
    /// archives). None: the added version, or else the default version.
    pub shown: Option<PromptVersion>,
}

/// One fact an audit entry records about a change, with its before and after as domain values.
/// A change records its facts in the order [`Revision::facts`] gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AuditFact<'a> {
    /// A prompt was created with its first version (`PROMPT_CREATED`).
    PromptCreated {
        /// The prompt.
        prompt: &'a Prompt,
        /// Its first version.
        first: &'a PromptVersion,
    },
    /// A version was added (`VERSION_CREATED`), compared with the newest version before it:
    /// the diff a reviewer wants.
    VersionCreated {
        /// The newest version before it.
        compared_with: Option<&'a PromptVersion>,
        /// The new version.
        added: &'a PromptVersion,
    },
    /// The traffic split changed (`TRAFFIC_UPDATED`).
    TrafficUpdated {
        /// The split before.
        before: &'a TrafficSplit,
        /// The split after.
        after: &'a TrafficSplit,
    },
    /// The OpenAI-compatible front door's policy changed (`CHAT_COMPLETIONS_UPDATED`).
    ChatCompletionsUpdated {
        /// The policy before.
        before: ChatCompletionsPolicy,
        /// The policy after.
        after: ChatCompletionsPolicy,
    },
    /// A label was created or moved (`LABEL_MOVED`).
    LabelMoved {
        /// The label.
        label: &'a LabelName,
        /// The version it pointed at before; none when new.
        from: Option<&'a VersionLabel>,
        /// The version it points at now.
        to: &'a VersionLabel,
    },
    /// A label was deleted (`LABEL_DELETED`).
    LabelDeleted {
        /// The label.
        label: &'a LabelName,
        /// The version it pointed at.
        version: &'a VersionLabel,
    },
    /// The prompt was archived (`PROMPT_ARCHIVED`).
    PromptArchived {
        /// The status before.
        before: PromptStatus,
    },
}

/// Why a change cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Fields are invalid; every problem at once.
    #[error("invalid change: {} problems", .0.len())]
    Invalid(Vec<Violation>),
    /// The named version exists with other settings; versions are immutable.
    #[error(
        "version {version} exists with different content; versions are immutable, so use a new version"
    )]
    VersionExists {
        /// The label.
        version: VersionLabel,
    },
    /// The prompt has no version to base a new one on (the store broke an invariant).
    #[error("prompt {prompt_id} has no versions")]
    NoVersions {
        /// The prompt.
        prompt_id: Uuid,
    },
}

impl NewPromptDraft {
    /// Checks the draft and builds the prompt `id` at revision 1 with its first version.
    /// Every violation is returned at once, in the order of the fields.
    pub fn plan(&self, id: Uuid, cx: &ChangeContext<'_>) -> Result<NewPrompt, Vec<Violation>> {
        let mut violations = Vec::new();
        let name = check_name(self.name.as_deref())
            .map_err(|v| violations.push(v))
            .ok();
        let version = check_version("version", self.version.as_deref())
            .map_err(|v| violations.push(v))
            .ok();
        let checked = self
            .settings
            .check(None, cx.catalogue, cx.counter, cx.schemas)
            .map_err(|v| violations.extend(v))
            .ok();
        let traffic = match (&version, &self.traffic) {
            (Some(v), Some(draft)) => TrafficSplit::apply_draft(
                &TrafficSplit::single(v.clone()),
                draft,
                std::slice::from_ref(v),
            )
            .map_err(|v| violations.extend(v))
            .ok(),
            (Some(v), None) => Some(TrafficSplit::single(v.clone())),
            (None, _) => None,
        };
        let chat_completions = match &self.chat_completions {
            None => Some(ChatCompletionsPolicy::default()),
            Some(draft) => draft
                .check()
                .map(|change| change.apply(ChatCompletionsPolicy::default()))
                .map_err(|v| violations.push(v))
                .ok(),
        };
        let (Some(name), Some(version), Some(checked), Some(traffic), Some(chat_completions)) =
            (name, version, checked, traffic, chat_completions)
        else {
            return Err(violations);
        };
        let prompt = Prompt {
            id,
            name,
            status: PromptStatus::Active,
            traffic,
            chat_completions,
            labels: Labels::new(),
            revision: 1,
            created_at: cx.at,
            updated_at: cx.at,
            created_by: cx.by.to_owned(),
        };
        let first = checked_version(id, version, checked, cx);
        Ok(NewPrompt { prompt, first })
    }
}

impl NewPrompt {
    /// What the creation's audit entry records.
    pub fn fact(&self) -> AuditFact<'_> {
        AuditFact::PromptCreated {
            prompt: &self.prompt,
            first: &self.first,
        }
    }
}

impl ChangeDraft {
    /// Parses what needs no prompt. An unknown system-message mode is refused here, before
    /// anything is read; a bad version label is kept to be reported with the other problems.
    pub fn check(self) -> Result<PromptChange, Violation> {
        let chat_completions = match &self.chat_completions {
            Some(draft) => draft.check()?,
            None => ChatCompletionsChange::default(),
        };
        let wants_version = self.version.is_some() || !self.settings.is_empty();
        let label = if wants_version {
            check_version("version", self.version.as_deref())
                .map(Some)
                .map_err(|mut v| {
                    if self.version.is_none() {
                        v.template = "version is required when a setting changes: settings live in immutable versions".to_owned();
                    }
                    v
                })
        } else {
            Ok(None)
        };
        Ok(PromptChange {
            label,
            settings: self.settings,
            traffic: self.traffic,
            chat_completions,
        })
    }
}

impl PromptChange {
    /// The version a plan needs read first, given the prompt's labels: the named version when
    /// it exists (a re-send is compared with it), the newest when a new one is named (the base
    /// of left-out settings, and what the new version's audit entry compares it with).
    pub fn version_to_read<'a>(&self, labels: &'a [VersionLabel]) -> Option<&'a VersionLabel> {
        let Ok(Some(label)) = &self.label else {
            return None;
        };
        match labels.iter().find(|l| *l == label) {
            Some(existing) => Some(existing),
            None => labels.iter().max(),
        }
    }

    /// Decides the change on `current` as read, with `labels` its versions' labels (any order)
    /// and `read` the version [`Self::version_to_read`] named. The prompt must not be archived
    /// (archived prompts do not change; the caller answers that before reading further).
    pub fn plan(
        &self,
        current: &Prompt,
        labels: &[VersionLabel],
        read: Option<PromptVersion>,
        cx: &ChangeContext<'_>,
    ) -> Result<ChangePlan, PlanError> {
        let mut violations = Vec::new();
        let mut new_version = None;
        let mut shown = None;
        let mut compared_with = None;
        let label = match &self.label {
            Ok(label) => label.as_ref(),
            Err(v) => {
                violations.push(v.clone());
                None
            }
        };
        if let Some(label) = label {
            let base = read.ok_or(PlanError::NoVersions {
                prompt_id: current.id,
            })?;
            let checked =
                self.settings
                    .check(Some(&base.settings), cx.catalogue, cx.counter, cx.schemas);
            if labels.contains(label) {
                match checked {
                    Ok(checked) if checked.settings == base.settings => shown = Some(base),
                    Ok(_) => {
                        return Err(PlanError::VersionExists {
                            version: label.clone(),
                        });
                    }
                    Err(v) => violations.extend(v),
                }
            } else {
                match checked {
                    Ok(checked) => {
                        new_version = Some(checked_version(current.id, label.clone(), checked, cx));
                        compared_with = Some(base);
                    }
                    Err(v) => violations.extend(v),
                }
            }
        }
        let mut traffic = None;
        if let Some(draft) = &self.traffic {
            let mut known = labels.to_vec();
            if let Some(v) = &new_version {
                known.push(v.version.clone());
            }
            match TrafficSplit::apply_draft(&current.traffic, draft, &known) {
                Ok(split) => traffic = Some(split),
                Err(v) => violations.extend(v),
            }
        }
        if !violations.is_empty() {
            return Err(PlanError::Invalid(violations));
        }
        let traffic = traffic.filter(|t| *t != current.traffic);
        let policy = self.chat_completions.apply(current.chat_completions);
        let chat_completions = (policy != current.chat_completions).then_some(policy);
        if new_version.is_none() && traffic.is_none() && chat_completions.is_none() {
            return Ok(ChangePlan::Unchanged { shown });
        }
        Ok(ChangePlan::Changed(Revision {
            new_version,
            traffic,
            chat_completions,
            compared_with,
            shown,
            ..Revision::next(current, cx.at)
        }))
    }
}

impl Revision {
    /// The next revision of `current` at `at`, changing nothing yet.
    fn next(current: &Prompt, at: OffsetDateTime) -> Self {
        Revision {
            prompt_id: current.id,
            expected_revision: current.revision,
            new_revision: current.revision + 1,
            updated_at: at,
            new_version: None,
            traffic: None,
            status: None,
            chat_completions: None,
            labels: None,
            label_move: None,
            compared_with: None,
            shown: None,
        }
    }

    /// The next revision of `current` at `at` with `labels`, recording `change`.
    pub(crate) fn relabel(
        current: &Prompt,
        at: OffsetDateTime,
        labels: Labels,
        change: LabelMove,
    ) -> Self {
        Revision {
            labels: Some(labels),
            label_move: Some(change),
            ..Revision::next(current, at)
        }
    }

    /// Archives `current` at `at`; none when it is archived already (archiving twice is not a
    /// change and records nothing).
    pub fn archive(current: &Prompt, at: OffsetDateTime) -> Option<Self> {
        (current.status != PromptStatus::Archived).then(|| Revision {
            status: Some(PromptStatus::Archived),
            ..Revision::next(current, at)
        })
    }

    /// What the change's audit entries record, one entry per fact, in this order: the new
    /// version, the split, the policy, the label, the status. `before` is the prompt the plan was decided on.
    pub fn facts<'a>(&'a self, before: &'a Prompt) -> impl Iterator<Item = AuditFact<'a>> {
        let version = self
            .new_version
            .as_ref()
            .map(|added| AuditFact::VersionCreated {
                compared_with: self.compared_with.as_ref(),
                added,
            });
        let traffic = self
            .traffic
            .as_ref()
            .map(|after| AuditFact::TrafficUpdated {
                before: &before.traffic,
                after,
            });
        let policy = self
            .chat_completions
            .map(|after| AuditFact::ChatCompletionsUpdated {
                before: before.chat_completions,
                after,
            });
        let status = self
            .status
            .filter(|s| *s == PromptStatus::Archived)
            .map(|_| AuditFact::PromptArchived {
                before: before.status,
            });
        let label = self
            .label_move
            .as_ref()
            .and_then(|change| match (&change.from, &change.to) {
                (from, Some(to)) => Some(AuditFact::LabelMoved {
                    label: &change.label,
                    from: from.as_ref(),
                    to,
                }),
                (Some(version), None) => Some(AuditFact::LabelDeleted {
                    label: &change.label,
                    version,
                }),
                (None, None) => None,
            });
        [version, traffic, policy, label, status]
            .into_iter()
            .flatten()
    }
}

/// Plans moving (or creating) `label` to `version` on `current`, whose versions are
/// `versions`. Pointing a label where it points already changes nothing.
pub fn plan_label_move(
    current: &Prompt,
    versions: &[VersionLabel],
    label: &str,
    version: Option<&str>,
    at: OffsetDateTime,
) -> Result<ChangePlan, LabelError> {
    let label = LabelName::parse("label", label).map_err(LabelError::Invalid)?;
    let version = check_version("version", version).map_err(LabelError::Invalid)?;
    let Some(version) = versions.iter().find(|v| **v == version).cloned() else {
        return Err(LabelError::Invalid(Violation::with_params(
            crate::violation::ViolationCode::InvalidValue,
            "version",
            "version {version} does not exist",
            &[("version", version.to_string())],
        )));
    };
    let from = current.labels.get(&label).cloned();
    if from.as_ref() == Some(&version) {
        return Ok(ChangePlan::Unchanged { shown: None });
    }
    if from.is_none() && current.labels.len() >= MAX_LABELS {
        return Err(LabelError::Invalid(Violation::invalid(
            "label",
            format!("the prompt has {MAX_LABELS} labels, the limit; delete one first"),
        )));
    }
    let mut labels = current.labels.clone();
    labels.insert(label.clone(), version.clone());
    Ok(ChangePlan::Changed(Revision::relabel(
        current,
        at,
        labels,
        LabelMove {
            label,
            from,
            to: Some(version),
        },
    )))
}

/// Plans deleting `label` from `current`.
pub fn plan_label_delete(
    current: &Prompt,
    label: &str,
    at: OffsetDateTime,
) -> Result<ChangePlan, LabelError> {
    // A text that is no label name names no label the prompt has: not found, like any other.
    let name =
        LabelName::parse("label", label).map_err(|_| LabelError::NotFound(label.to_owned()))?;
    let mut labels = current.labels.clone();
    let Some(from) = labels.remove(&name) else {
        return Err(LabelError::NotFound(label.to_owned()));
    };
    Ok(ChangePlan::Changed(Revision::relabel(
        current,
        at,
        labels,
        LabelMove {
            label: name,
            from: Some(from),
            to: None,
        },
    )))
}

fn checked_version(
    prompt_id: Uuid,
    version: VersionLabel,
    checked: CheckedSettings,
    cx: &ChangeContext<'_>,
) -> PromptVersion {
    PromptVersion {
        prompt_id,
        version,
        settings: checked.settings,
        system_prompt_tokens: checked.system_prompt_tokens,
        tokenizer: checked.tokenizer,
        created_at: cx.at,
        created_by: cx.by.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::SystemMessageMode;
    use crate::traffic::{SplitStrategy, WeightDraft};

    fn label(text: &str) -> VersionLabel {
        text.parse().unwrap()
    }

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-12-07 06:00:00 UTC)
    }

    fn settings(system_prompt: &str) -> SettingsDraft {
        SettingsDraft {
            model_endpoint_ref: Some("openai/gpt-4o".into()),
            system_prompt: Some(system_prompt.into()),
            ..SettingsDraft::default()
        }
    }

    /// Plans a new prompt `support` at 1.0.0 and hands the plan to `test` with the context.
    fn with_prompt(test: impl FnOnce(NewPrompt, &ChangeContext<'_>)) {
        let catalogue = EndpointCatalogue::with_overrides([]);
        let counter = TokenCounter::load();
        let cx = ChangeContext {
            catalogue: &catalogue,
            counter: &counter,
            schemas: &crate::template::AcceptingSchemas,
            by: "editor",
            at: at(),
        };
        let draft = NewPromptDraft {
            name: Some("support".into()),
            version: Some("1.0.0".into()),
            settings: settings("You are helpful."),
            ..NewPromptDraft::default()
        };
        let new = draft.plan(Uuid::nil(), &cx).unwrap();
        test(new, &cx);
    }

    /// Plans `draft` on `new`'s prompt, reading what the plan asks for from its one version.
    fn plan_on(
        new: &NewPrompt,
        draft: ChangeDraft,
        cx: &ChangeContext<'_>,
    ) -> Result<ChangePlan, PlanError> {
        let labels = [new.first.version.clone()];
        let change = draft.check().unwrap();
        let read = change.version_to_read(&labels).map(|l| {
            assert_eq!(*l, new.first.version);
            new.first.clone()
        });
        change.plan(&new.prompt, &labels, read, cx)
    }

    fn changed(plan: Result<ChangePlan, PlanError>) -> Revision {
        match plan {
            Ok(ChangePlan::Changed(revision)) => revision,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    fn fact_names(revision: &Revision, before: &Prompt) -> Vec<&'static str> {
        revision
            .facts(before)
            .map(|f| match f {
                AuditFact::PromptCreated { .. } => "created",
                AuditFact::VersionCreated { .. } => "version",
                AuditFact::TrafficUpdated { .. } => "traffic",
                AuditFact::ChatCompletionsUpdated { .. } => "policy",
                AuditFact::LabelMoved { .. } => "label moved",
                AuditFact::LabelDeleted { .. } => "label deleted",
                AuditFact::PromptArchived { .. } => "archived",
            })
            .collect()
    }

    #[test]
    fn a_new_prompt_starts_at_revision_one_with_all_traffic_on_its_first_version() {
        with_prompt(|new, _| {
            assert_eq!(new.prompt.revision, 1);
            assert_eq!(new.prompt.status, PromptStatus::Active);
            assert_eq!(new.prompt.traffic, TrafficSplit::single(label("1.0.0")));
            assert_eq!(
                new.prompt.chat_completions,
                ChatCompletionsPolicy::default()
            );
            assert_eq!((new.prompt.created_at, new.prompt.updated_at), (at(), at()));
            assert_eq!(new.first.created_at, at());
            assert_eq!(new.first.created_by, "editor");
            assert_eq!(new.first.settings.system_prompt, "You are helpful.");
            assert_eq!(
                new.fact(),
                AuditFact::PromptCreated {
                    prompt: &new.prompt,
                    first: &new.first
                }
            );
        });
    }

    #[test]
    fn a_new_prompt_reports_every_problem_in_field_order() {
        with_prompt(|_, cx| {
            let draft = NewPromptDraft {
                name: Some(" ".into()),
                version: Some("one".into()),
                settings: SettingsDraft::default(),
                traffic: None,
                chat_completions: Some(ChatCompletionsDraft {
                    system_message: Some("merge".into()),
                    allow_caller_settings: None,
                }),
            };
            let fields: Vec<String> = draft
                .plan(Uuid::nil(), cx)
                .unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect();
            assert_eq!(
                fields,
                [
                    "name",
                    "version",
                    "modelEndpointRef",
                    "systemPrompt",
                    "chatCompletions.systemMessage"
                ]
            );
        });
    }

    #[test]
    fn a_new_version_keeps_left_out_settings_and_is_compared_with_the_newest() {
        with_prompt(|new, cx| {
            let draft = ChangeDraft {
                version: Some("1.1.0".into()),
                settings: SettingsDraft {
                    temperature: Some(0.5),
                    ..SettingsDraft::default()
                },
                ..ChangeDraft::default()
            };
            let revision = changed(plan_on(&new, draft, cx));
            assert_eq!((revision.expected_revision, revision.new_revision), (1, 2));
            assert_eq!(revision.updated_at, at());
            let added = revision.new_version.as_ref().unwrap();
            assert_eq!(added.version, label("1.1.0"));
            assert_eq!(added.settings.temperature, 0.5);
            assert_eq!(added.settings.system_prompt, "You are helpful.");
            assert_eq!(revision.compared_with.as_ref(), Some(&new.first));
            assert_eq!(
                revision.traffic, None,
                "a new version does not move traffic"
            );
            assert_eq!(fact_names(&revision, &new.prompt), ["version"]);
        });
    }

    #[test]
    fn a_re_sent_version_changes_nothing_and_other_content_under_its_label_conflicts() {
        with_prompt(|new, cx| {
            let same = ChangeDraft {
                version: Some("1.0.0".into()),
                settings: settings("You are helpful."),
                ..ChangeDraft::default()
            };
            assert_eq!(
                plan_on(&new, same, cx),
                Ok(ChangePlan::Unchanged {
                    shown: Some(new.first.clone())
                })
            );
            let other = ChangeDraft {
                version: Some("1.0.0".into()),
                settings: settings("Something else."),
                ..ChangeDraft::default()
            };
            assert_eq!(
                plan_on(&new, other, cx),
                Err(PlanError::VersionExists {
                    version: label("1.0.0")
                })
            );
            let empty = ChangeDraft::default();
            assert_eq!(
                plan_on(&new, empty, cx),
                Ok(ChangePlan::Unchanged { shown: None })
            );
        });
    }

    #[test]
    fn a_setting_without_a_version_and_a_bad_label_are_reported_with_the_traffic_problems() {
        with_prompt(|new, cx| {
            let unlabelled = ChangeDraft {
                settings: settings("New text."),
                ..ChangeDraft::default()
            };
            let Err(PlanError::Invalid(v)) = plan_on(&new, unlabelled, cx) else {
                panic!("a setting needs a version");
            };
            assert_eq!(v.len(), 1);
            assert_eq!(
                v[0].message(),
                "version is required when a setting changes: settings live in immutable versions"
            );
            let bad = ChangeDraft {
                version: Some("v2".into()),
                traffic: Some(TrafficDraft {
                    default_version: Some("9.9.9".into()),
                    ..TrafficDraft::default()
                }),
                ..ChangeDraft::default()
            };
            let Err(PlanError::Invalid(v)) = plan_on(&new, bad, cx) else {
                panic!("both problems are reported");
            };
            let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["version", "trafficDistribution.defaultVersion"]);
        });
    }

    #[test]
    fn traffic_may_move_to_the_version_the_same_change_adds_and_an_equal_split_is_no_change() {
        with_prompt(|new, cx| {
            let both = ChangeDraft {
                version: Some("2.0.0".into()),
                settings: settings("Terse."),
                traffic: Some(TrafficDraft {
                    default_version: Some("2.0.0".into()),
                    split_strategy: Some("random".into()),
                    versions: Some(vec![
                        WeightDraft {
                            version: Some("1.0.0".into()),
                            weight: Some(0.25),
                        },
                        WeightDraft {
                            version: Some("2.0.0".into()),
                            weight: Some(0.75),
                        },
                    ]),
                }),
                chat_completions: Some(ChatCompletionsDraft {
                    system_message: Some("prepend".into()),
                    allow_caller_settings: None,
                }),
            };
            let revision = changed(plan_on(&new, both, cx));
            let split = revision.traffic.as_ref().unwrap();
            assert_eq!(*split.default_version(), label("2.0.0"));
            assert_eq!(split.strategy(), SplitStrategy::Random);
            assert_eq!(
                revision.chat_completions.map(|p| p.system_message),
                Some(SystemMessageMode::Prepend)
            );
            assert_eq!(
                fact_names(&revision, &new.prompt),
                ["version", "traffic", "policy"]
            );
            let same = ChangeDraft {
                traffic: Some(TrafficDraft {
                    default_version: Some("1.0.0".into()),
                    ..TrafficDraft::default()
                }),
                chat_completions: Some(ChatCompletionsDraft {
                    system_message: Some("replace".into()),
                    allow_caller_settings: Some(false),
                }),
                ..ChangeDraft::default()
            };
            assert_eq!(
                plan_on(&new, same, cx),
                Ok(ChangePlan::Unchanged { shown: None })
            );
        });
    }

    #[test]
    fn an_unknown_mode_is_refused_before_the_prompt_is_read() {
        let draft = ChangeDraft {
            chat_completions: Some(ChatCompletionsDraft {
                system_message: Some("merge".into()),
                allow_caller_settings: None,
            }),
            ..ChangeDraft::default()
        };
        let v = draft.check().unwrap_err();
        assert_eq!(v.field, "chatCompletions.systemMessage");
        assert_eq!(
            v.message(),
            "systemMessage is ‘merge’; use replace or prepend"
        );
    }

    #[test]
    fn a_new_version_of_a_prompt_without_versions_is_an_error_not_a_panic() {
        with_prompt(|new, cx| {
            let change = ChangeDraft {
                version: Some("1.1.0".into()),
                ..ChangeDraft::default()
            }
            .check()
            .unwrap();
            assert_eq!(change.version_to_read(&[]), None);
            assert_eq!(
                change.plan(&new.prompt, &[], None, cx),
                Err(PlanError::NoVersions {
                    prompt_id: Uuid::nil()
                })
            );
        });
    }

    #[test]
    fn archiving_records_the_status_once() {
        with_prompt(|new, _| {
            let revision = Revision::archive(&new.prompt, at()).unwrap();
            assert_eq!(revision.status, Some(PromptStatus::Archived));
            assert_eq!(revision.new_revision, 2);
            assert_eq!(
                revision.facts(&new.prompt).collect::<Vec<_>>(),
                [AuditFact::PromptArchived {
                    before: PromptStatus::Active
                }]
            );
            let archived = Prompt {
                status: PromptStatus::Archived,
                ..new.prompt
            };
            assert_eq!(Revision::archive(&archived, at()), None);
        });
    }

    #[test]
    fn if_match_passes_a_star_or_a_list_holding_the_etag_weak_or_strong() {
        with_prompt(|new, _| {
            let etag = new.prompt.etag();
            assert!(new.prompt.matches("*"));
            assert!(new.prompt.matches(&etag));
            assert!(new.prompt.matches(&format!("\"other\", W/{etag}")));
            assert!(!new.prompt.matches("\"other\""));
        });
    }
}

#[cfg(test)]
mod label_plans {
    use super::*;
    use crate::label::{LabelName, Labels, MAX_LABELS};
    use crate::prompt::{ChatCompletionsPolicy, PromptStatus};
    use crate::traffic::TrafficSplit;
    use uuid::Uuid;

    fn v(text: &str) -> VersionLabel {
        text.parse().unwrap()
    }

    fn prompt() -> Prompt {
        Prompt {
            id: Uuid::nil(),
            name: "p".into(),
            status: PromptStatus::Active,
            traffic: TrafficSplit::single(v("1.0.0")),
            chat_completions: ChatCompletionsPolicy::default(),
            labels: Labels::new(),
            revision: 3,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            created_by: "c".into(),
        }
    }

    fn changed(plan: ChangePlan) -> Revision {
        match plan {
            ChangePlan::Changed(r) => r,
            ChangePlan::Unchanged { .. } => panic!("expected a change"),
        }
    }

    #[test]
    fn moving_creates_then_moves_and_records_the_old_version() {
        let versions = [v("1.0.0"), v("1.1.0")];
        let current = prompt();
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(5);
        let first =
            changed(plan_label_move(&current, &versions, "production", Some("1.0.0"), at).unwrap());
        assert_eq!(first.new_revision, 4);
        let labels = first.labels.clone().unwrap();
        assert_eq!(labels.len(), 1);
        let facts: Vec<_> = first.facts(&current).collect();
        assert_eq!(
            facts,
            [AuditFact::LabelMoved {
                label: &LabelName::parse("label", "production").unwrap(),
                from: None,
                to: &v("1.0.0"),
            }]
        );
        let mut moved = current.clone();
        moved.labels = labels;
        let second =
            changed(plan_label_move(&moved, &versions, "production", Some("1.1.0"), at).unwrap());
        let facts: Vec<_> = second.facts(&moved).collect();
        assert_eq!(
            facts,
            [AuditFact::LabelMoved {
                label: &LabelName::parse("label", "production").unwrap(),
                from: Some(&v("1.0.0")),
                to: &v("1.1.0"),
            }]
        );
        // Where it points already: nothing to do.
        assert!(matches!(
            plan_label_move(&moved, &versions, "production", Some("1.0.0"), at).unwrap(),
            ChangePlan::Unchanged { .. }
        ));
    }

    #[test]
    fn unknown_versions_bad_names_and_the_limit_are_refused() {
        let versions = [v("1.0.0")];
        let current = prompt();
        let at = OffsetDateTime::UNIX_EPOCH;
        let e = plan_label_move(&current, &versions, "prod", Some("9.9.9"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "version"),
            "{e:?}"
        );
        let e = plan_label_move(&current, &versions, "prod", Some("x"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "version"),
            "{e:?}"
        );
        let e = plan_label_move(&current, &versions, "prod", None, at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "version"),
            "{e:?}"
        );
        let e = plan_label_move(&current, &versions, "Prod", Some("1.0.0"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "label"),
            "{e:?}"
        );
        let mut full = current.clone();
        for i in 0..MAX_LABELS {
            full.labels.insert(
                LabelName::parse("label", &format!("l{i}")).unwrap(),
                v("1.0.0"),
            );
        }
        let e = plan_label_move(&full, &versions, "one-more", Some("1.0.0"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.message().contains("20")),
            "{e:?}"
        );
        // Moving an existing label is still allowed at the limit.
        assert!(plan_label_move(&full, &versions, "l0", Some("1.0.0"), at).is_ok());
    }

    #[test]
    fn deleting_records_the_version_and_refuses_a_missing_label() {
        let mut current = prompt();
        current
            .labels
            .insert(LabelName::parse("label", "staging").unwrap(), v("1.0.0"));
        let at = OffsetDateTime::UNIX_EPOCH;
        let r = changed(plan_label_delete(&current, "staging", at).unwrap());
        assert!(r.labels.as_ref().unwrap().is_empty());
        let facts: Vec<_> = r.facts(&current).collect();
        assert_eq!(
            facts,
            [AuditFact::LabelDeleted {
                label: &LabelName::parse("label", "staging").unwrap(),
                version: &v("1.0.0"),
            }]
        );
        assert_eq!(
            plan_label_delete(&current, "production", at).unwrap_err(),
            LabelError::NotFound("production".into())
        );
        assert_eq!(
            plan_label_delete(&current, "Not a label", at).unwrap_err(),
            LabelError::NotFound("Not a label".into())
        );
    }
}
