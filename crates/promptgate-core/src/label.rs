//! Labels: named pointers from a prompt to one of its versions (`production`, `staging`), for
//! environments and instant rollback (shared/API.md, "Labels").
//!
//! A label is a named pin, independent of the traffic split: unpinned calls follow the split,
//! a call that names a label is served by the labelled version. Moving or deleting a label is a
//! change of the prompt like any other: it takes the next revision (so `If-Match` applies) and
//! is audited (`LABEL_MOVED`, `LABEL_DELETED`) in the same transaction.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use crate::change::{ChangePlan, Revision};
use crate::prompt::Prompt;
use crate::version::VersionLabel;
use crate::violation::Violation;

/// The most labels one prompt may hold.
pub const MAX_LABELS: usize = 20;
/// The longest label name, in characters.
pub const MAX_LABEL_CHARS: usize = 63;

/// A label's name: `[a-z][a-z0-9-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelName(String);

impl LabelName {
    /// Checks `text` as a label name; the violation names `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Violation> {
        let mut chars = text.chars();
        let valid = text.len() <= MAX_LABEL_CHARS
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(LabelName(text.to_owned()))
        } else {
            Err(Violation::invalid(
                field,
                format!(
                    "label {} is not a label name: a lower-case letter, then up to {} lower-case letters, digits or -",
                    crate::violation::quoted(text),
                    MAX_LABEL_CHARS - 1
                ),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A prompt's labels, by name.
pub type Labels = BTreeMap<LabelName, VersionLabel>;

/// What one label change did: the label, the version it pointed at before (none: new) and
/// after (none: deleted). What its audit entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMove {
    /// The label.
    pub label: LabelName,
    /// Its version before.
    pub from: Option<VersionLabel>,
    /// Its version after; none when deleted.
    pub to: Option<VersionLabel>,
}

/// Why a label change cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelError {
    /// A field is invalid (the label's name, the version, the limit of labels).
    #[error("invalid label change: {0}")]
    Invalid(Violation),
    /// Deleting a label the prompt does not have.
    #[error("prompt has no label {0}")]
    NotFound(String),
}

/// Plans moving (or creating) `label` to `version` on `current`, whose versions are
/// `versions`. Pointing a label where it points already changes nothing.
pub fn plan_move(
    current: &Prompt,
    versions: &[VersionLabel],
    label: &str,
    version: Option<&str>,
    at: OffsetDateTime,
) -> Result<ChangePlan, LabelError> {
    let label = LabelName::parse("label", label).map_err(LabelError::Invalid)?;
    let version = crate::prompt::check_version("version", version).map_err(LabelError::Invalid)?;
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
pub fn plan_delete(
    current: &Prompt,
    label: &str,
    at: OffsetDateTime,
) -> Result<ChangePlan, LabelError> {
    let name = LabelName::parse("label", label).map_err(LabelError::Invalid)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::AuditFact;
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
    fn names_follow_the_pattern() {
        for good in ["production", "canary-eu", "a", &"a".repeat(63)] {
            assert!(LabelName::parse("label", good).is_ok(), "{good}");
        }
        for bad in ["", "Prod", "1abc", "-x", "a_b", "a b", &"a".repeat(64)] {
            let e = LabelName::parse("label", bad).unwrap_err();
            assert_eq!(e.field, "label", "{bad}");
        }
    }

    #[test]
    fn moving_creates_then_moves_and_records_the_old_version() {
        let versions = [v("1.0.0"), v("1.1.0")];
        let current = prompt();
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(5);
        let first =
            changed(plan_move(&current, &versions, "production", Some("1.0.0"), at).unwrap());
        assert_eq!(first.new_revision, 4);
        let labels = first.labels.clone().unwrap();
        assert_eq!(labels.len(), 1);
        let facts: Vec<_> = first.facts(&current).collect();
        assert_eq!(
            facts,
            [AuditFact::LabelMoved {
                label: &LabelName("production".into()),
                from: None,
                to: &v("1.0.0"),
            }]
        );
        let mut moved = current.clone();
        moved.labels = labels;
        let second =
            changed(plan_move(&moved, &versions, "production", Some("1.1.0"), at).unwrap());
        let facts: Vec<_> = second.facts(&moved).collect();
        assert_eq!(
            facts,
            [AuditFact::LabelMoved {
                label: &LabelName("production".into()),
                from: Some(&v("1.0.0")),
                to: &v("1.1.0"),
            }]
        );
        // Where it points already: nothing to do.
        assert!(matches!(
            plan_move(&moved, &versions, "production", Some("1.0.0"), at).unwrap(),
            ChangePlan::Unchanged { .. }
        ));
    }

    #[test]
    fn unknown_versions_bad_names_and_the_limit_are_refused() {
        let versions = [v("1.0.0")];
        let current = prompt();
        let at = OffsetDateTime::UNIX_EPOCH;
        let e = plan_move(&current, &versions, "prod", Some("9.9.9"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "version"),
            "{e:?}"
        );
        let e = plan_move(&current, &versions, "prod", Some("x"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "version"),
            "{e:?}"
        );
        let e = plan_move(&current, &versions, "prod", None, at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "version"),
            "{e:?}"
        );
        let e = plan_move(&current, &versions, "Prod", Some("1.0.0"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.field == "label"),
            "{e:?}"
        );
        let mut full = current.clone();
        for i in 0..MAX_LABELS {
            full.labels.insert(LabelName(format!("l{i}")), v("1.0.0"));
        }
        let e = plan_move(&full, &versions, "one-more", Some("1.0.0"), at).unwrap_err();
        assert!(
            matches!(&e, LabelError::Invalid(v) if v.message().contains("20")),
            "{e:?}"
        );
        // Moving an existing label is still allowed at the limit.
        assert!(plan_move(&full, &versions, "l0", Some("1.0.0"), at).is_ok());
    }

    #[test]
    fn deleting_records_the_version_and_refuses_a_missing_label() {
        let mut current = prompt();
        current
            .labels
            .insert(LabelName("staging".into()), v("1.0.0"));
        let at = OffsetDateTime::UNIX_EPOCH;
        let r = changed(plan_delete(&current, "staging", at).unwrap());
        assert!(r.labels.as_ref().unwrap().is_empty());
        let facts: Vec<_> = r.facts(&current).collect();
        assert_eq!(
            facts,
            [AuditFact::LabelDeleted {
                label: &LabelName("staging".into()),
                version: &v("1.0.0"),
            }]
        );
        assert_eq!(
            plan_delete(&current, "production", at).unwrap_err(),
            LabelError::NotFound("production".into())
        );
    }
}
