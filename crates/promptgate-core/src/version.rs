//! Version labels: semantic-version strings, ordered by semver rules (so `1.10.0` is newer than
//! `1.2.0`, and `1.1.0-beta.1` is older than `1.1.0`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The longest version label accepted; longer ones are surely mistakes and bloat every row.
pub const MAX_VERSION_LEN: usize = 64;

/// A prompt version's label. Equality and order follow semver precedence, except that build
/// metadata must match exactly for two labels to be the same version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionLabel(semver::Version);

/// Why a string is not a version label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionLabelError {
    /// Longer than [`MAX_VERSION_LEN`].
    #[error("a version is at most {MAX_VERSION_LEN} characters")]
    TooLong,
    /// Not `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
    #[error(
        "{} is not a semantic version such as 1.0.0 or 1.1.0-beta.1",
        crate::violation::quoted(.0)
    )]
    NotSemver(String),
}

impl FromStr for VersionLabel {
    type Err = VersionLabelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_VERSION_LEN {
            return Err(VersionLabelError::TooLong);
        }
        semver::Version::parse(s)
            .map(VersionLabel)
            .map_err(|_| VersionLabelError::NotSemver(s.to_owned()))
    }
}

impl fmt::Display for VersionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Ord for VersionLabel {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .cmp_precedence(&other.0)
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for VersionLabel {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> VersionLabel {
        s.parse().unwrap()
    }

    #[test]
    fn orders_by_semver_not_text() {
        let mut labels = [
            v("1.0.0"),
            v("1.10.0"),
            v("1.2.0"),
            v("1.1.0-beta.1"),
            v("1.1.0"),
        ];
        labels.sort();
        let text: Vec<String> = labels.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["1.0.0", "1.1.0-beta.1", "1.1.0", "1.2.0", "1.10.0"]);
    }

    #[test]
    fn rejects_non_semver_and_overlong() {
        assert!(matches!(
            "1.0".parse::<VersionLabel>(),
            Err(VersionLabelError::NotSemver(_))
        ));
        assert!(matches!(
            "v1.0.0".parse::<VersionLabel>(),
            Err(VersionLabelError::NotSemver(_))
        ));
        let long = format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN));
        assert_eq!(
            long.parse::<VersionLabel>(),
            Err(VersionLabelError::TooLong)
        );
    }

    proptest! {
        /// Ordering agrees with numeric comparison of the release triple.
        #[test]
        fn release_order_is_numeric(a in (0u64..50, 0u64..50, 0u64..50), b in (0u64..50, 0u64..50, 0u64..50)) {
            let va = v(&format!("{}.{}.{}", a.0, a.1, a.2));
            let vb = v(&format!("{}.{}.{}", b.0, b.1, b.2));
            prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
        }

        /// A pre-release always sorts before its release and after the previous patch.
        #[test]
        fn prerelease_sorts_before_release(major in 0u64..20, minor in 0u64..20, patch in 1u64..20, pre in "[a-z]{1,6}(\\.[1-9][0-9]{0,2})?") {
            let release = v(&format!("{major}.{minor}.{patch}"));
            let previous = v(&format!("{major}.{minor}.{}", patch - 1));
            let candidate = v(&format!("{major}.{minor}.{patch}-{pre}"));
            prop_assert!(candidate < release);
            prop_assert!(previous < candidate);
        }

        /// Text round-trips exactly, so stored labels compare equal to what was sent.
        #[test]
        fn display_round_trips(a in 0u64..1000, b in 0u64..1000, c in 0u64..1000) {
            let text = format!("{a}.{b}.{c}");
            prop_assert_eq!(v(&text).to_string(), text);
        }
    }
}
