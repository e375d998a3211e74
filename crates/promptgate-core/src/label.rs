//! Labels: named pointers from a prompt to one of its versions (`production`, `staging`), for
//! environments and instant rollback (shared/API.md, "Labels").
//!
//! A label is a named pin, independent of the traffic split: unpinned calls follow the split,
//! a call that names a label is served by the labelled version. Moving or deleting a label is a
//! change of the prompt like any other: it takes the next revision (so `If-Match` applies) and
//! is audited (`LABEL_MOVED`, `LABEL_DELETED`) in the same transaction; its plan is
//! `crate::change::plan_label_move` / `plan_label_delete`.

use std::collections::BTreeMap;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
