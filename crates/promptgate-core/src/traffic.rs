//! The traffic split: which versions of a prompt serve invocations, and in what shares.
//!
//! A [`TrafficSplit`] cannot hold weights that are out of range or that do not sum to one: the
//! only ways to build one validate and normalise. Sticky routing maps a stable hash of the prompt
//! id and the session id onto the cumulative weights, in the order the versions were given, so
//! moving weight from one version to the next moves only the sessions in the moved share.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::version::VersionLabel;
use crate::violation::Violation;

/// How far the given weights may sum from one before they are refused.
pub const WEIGHT_SUM_TOLERANCE: f64 = 0.01;

/// How a version is chosen for each invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitStrategy {
    /// A session keeps its version while the weights stay the same.
    #[default]
    Sticky,
    /// Each invocation is drawn independently.
    Random,
}

impl SplitStrategy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitStrategy::Sticky => "sticky",
            SplitStrategy::Random => "random",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sticky" => Some(SplitStrategy::Sticky),
            "random" => Some(SplitStrategy::Random),
            _ => None,
        }
    }
}

/// One version and its normalised share of traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedVersion {
    /// The version.
    pub version: VersionLabel,
    /// Its share, in [0, 1]; the shares of a split sum to one.
    pub weight: f64,
}

/// A validated, normalised traffic distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSplit {
    default_version: VersionLabel,
    strategy: SplitStrategy,
    weights: Vec<WeightedVersion>,
}

/// A traffic change as a client sent it: every part optional, unvalidated. Parts left out keep
/// the current split's values.
#[derive(Debug, Clone, Default)]
pub struct TrafficDraft {
    /// `defaultVersion`.
    pub default_version: Option<String>,
    /// `splitStrategy`.
    pub split_strategy: Option<String>,
    /// `versions`, each with its `version` and `weight`.
    pub versions: Option<Vec<WeightDraft>>,
}

/// One entry of a [`TrafficDraft`]'s `versions`.
#[derive(Debug, Clone, Default)]
pub struct WeightDraft {
    /// The version label.
    pub version: Option<String>,
    /// The share.
    pub weight: Option<f64>,
}

impl TrafficSplit {
    /// All traffic to one version: the split of a new prompt.
    pub fn single(version: VersionLabel) -> Self {
        TrafficSplit {
            default_version: version,
            strategy: SplitStrategy::Sticky,
            weights: Vec::new(),
        }
    }

    /// Builds a split from weights, checking the range, the sum and duplicates, then normalising.
    /// Violations name fields under `trafficDistribution`.
    pub fn new(
        default_version: VersionLabel,
        strategy: SplitStrategy,
        weights: Vec<(VersionLabel, f64)>,
    ) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        for (i, (version, weight)) in weights.iter().enumerate() {
            if !weight.is_finite() || !(0.0..=1.0).contains(weight) {
                violations.push(Violation::invalid(
                    format!("trafficDistribution.versions[{i}].weight"),
                    format!("weight of {version} is {weight}; a weight is between 0 and 1"),
                ));
            }
            if weights[..i].iter().any(|(earlier, _)| earlier == version) {
                violations.push(Violation::invalid(
                    format!("trafficDistribution.versions[{i}].version"),
                    format!("version {version} is listed more than once"),
                ));
            }
        }
        let sum: f64 = weights.iter().map(|(_, w)| *w).sum();
        if violations.is_empty() && !weights.is_empty() && (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE
        {
            violations.push(Violation::invalid(
                "trafficDistribution.versions",
                format!("weights sum to {sum}; they must sum to 1 (within {WEIGHT_SUM_TOLERANCE})"),
            ));
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(TrafficSplit {
            default_version,
            strategy,
            weights: weights
                .into_iter()
                .map(|(version, weight)| WeightedVersion {
                    version,
                    weight: weight / sum,
                })
                .collect(),
        })
    }

    /// Applies a client's change to the current split (or to a new prompt's, when `current` is
    /// the prompt's first version's), checking that every named version exists in `known`.
    pub fn apply_draft(
        current: &TrafficSplit,
        draft: &TrafficDraft,
        known: &[VersionLabel],
    ) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        let default_version = match &draft.default_version {
            Some(text) => parse_known(
                "trafficDistribution.defaultVersion".to_owned(),
                text,
                known,
                &mut violations,
            ),
            None => Some(current.default_version.clone()),
        };
        let mut weights = Vec::new();
        match &draft.versions {
            None => weights.extend(
                current
                    .weights
                    .iter()
                    .map(|w| (w.version.clone(), w.weight)),
            ),
            Some(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    let label = match &entry.version {
                        Some(text) => parse_known(
                            format!("trafficDistribution.versions[{i}].version"),
                            text,
                            known,
                            &mut violations,
                        ),
                        None => {
                            violations.push(Violation::invalid(
                                format!("trafficDistribution.versions[{i}].version"),
                                "version is required",
                            ));
                            None
                        }
                    };
                    let weight = entry.weight.or_else(|| {
                        violations.push(Violation::invalid(
                            format!("trafficDistribution.versions[{i}].weight"),
                            "weight is required",
                        ));
                        None
                    });
                    if let (Some(label), Some(weight)) = (label, weight) {
                        weights.push((label, weight));
                    }
                }
            }
        }
        let strategy = match &draft.split_strategy {
            None => current.strategy,
            Some(text) => SplitStrategy::parse(text).unwrap_or_else(|| {
                violations.push(Violation::invalid(
                    "trafficDistribution.splitStrategy",
                    format!(
                        "{} is not a split strategy; use sticky or random",
                        crate::violation::quoted(text)
                    ),
                ));
                current.strategy
            }),
        };
        let built = default_version.map(|d| TrafficSplit::new(d, strategy, weights));
        match built {
            Some(Ok(split)) if violations.is_empty() => Ok(split),
            Some(Err(more)) => {
                violations.extend(more);
                Err(violations)
            }
            _ => Err(violations),
        }
    }

    /// The version that serves when the weights name none.
    pub fn default_version(&self) -> &VersionLabel {
        &self.default_version
    }

    /// How versions are drawn.
    pub fn strategy(&self) -> SplitStrategy {
        self.strategy
    }

    /// The normalised weights, in the order they were given.
    pub fn weights(&self) -> &[WeightedVersion] {
        &self.weights
    }

    /// The version for a point in [0, 1) on the cumulative weights; the default version when the
    /// split has no weights.
    pub fn choose(&self, point: f64) -> &VersionLabel {
        let mut cumulative = 0.0;
        for entry in &self.weights {
            cumulative += entry.weight;
            if point < cumulative {
                return &entry.version;
            }
        }
        // Rounding can leave the cumulative sum a hair under one: the last version with any
        // weight takes the remainder.
        self.weights
            .iter()
            .rev()
            .find(|w| w.weight > 0.0)
            .map_or(&self.default_version, |w| &w.version)
    }

    /// The version a session is pinned to under sticky routing.
    pub fn choose_sticky(&self, prompt_id: Uuid, session_id: &str) -> &VersionLabel {
        self.choose(sticky_point(prompt_id, session_id))
    }
}

/// A session's fixed point in [0, 1): the first 8 bytes of SHA-256(prompt id ‖ 0x00 ‖ session id)
/// as a fraction of 2^64. It is the same on every replica and every release.
pub fn sticky_point(prompt_id: Uuid, session_id: &str) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(prompt_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(session_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Keep 53 bits so the fraction is exact in an f64 and strictly below one.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

fn parse_known(
    field: String,
    text: &str,
    known: &[VersionLabel],
    violations: &mut Vec<Violation>,
) -> Option<VersionLabel> {
    match text.parse::<VersionLabel>() {
        Ok(label) if known.contains(&label) => Some(label),
        Ok(label) => {
            violations.push(Violation::invalid(
                field,
                format!(
                    "version {label} does not exist; known versions: {}",
                    list(known)
                ),
            ));
            None
        }
        Err(err) => {
            violations.push(Violation::invalid(field, err.to_string()));
            None
        }
    }
}

fn list(known: &[VersionLabel]) -> String {
    known
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> VersionLabel {
        s.parse().unwrap()
    }

    fn draft(entries: &[(&str, f64)]) -> TrafficDraft {
        TrafficDraft {
            versions: Some(
                entries
                    .iter()
                    .map(|(v, w)| WeightDraft {
                        version: Some((*v).to_owned()),
                        weight: Some(*w),
                    })
                    .collect(),
            ),
            ..TrafficDraft::default()
        }
    }

    #[test]
    fn empty_split_sends_everything_to_default() {
        let split = TrafficSplit::single(v("1.0.0"));
        assert_eq!(split.choose(0.0), &v("1.0.0"));
        assert_eq!(split.choose(0.999), &v("1.0.0"));
    }

    #[test]
    fn unknown_version_and_bad_strategy_are_all_reported() {
        let current = TrafficSplit::single(v("1.0.0"));
        let mut d = draft(&[("1.0.0", 0.5), ("9.9.9", 0.5)]);
        d.split_strategy = Some("roundrobin".into());
        d.default_version = Some("nope".into());
        let errs = TrafficSplit::apply_draft(&current, &d, &[v("1.0.0")]).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "trafficDistribution.defaultVersion",
                "trafficDistribution.versions[1].version",
                "trafficDistribution.splitStrategy"
            ]
        );
    }

    #[test]
    fn left_out_parts_keep_current_values() {
        let known = [v("1.0.0"), v("1.1.0")];
        let current = TrafficSplit::apply_draft(
            &TrafficSplit::single(v("1.0.0")),
            &TrafficDraft {
                split_strategy: Some("random".into()),
                ..draft(&[("1.0.0", 0.9), ("1.1.0", 0.1)])
            },
            &known,
        )
        .unwrap();
        let changed = TrafficSplit::apply_draft(
            &current,
            &TrafficDraft {
                default_version: Some("1.1.0".into()),
                ..TrafficDraft::default()
            },
            &known,
        )
        .unwrap();
        assert_eq!(changed.strategy(), SplitStrategy::Random);
        assert_eq!(changed.weights(), current.weights());
        assert_eq!(changed.default_version(), &v("1.1.0"));
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let errs = TrafficSplit::new(
            v("1.0.0"),
            SplitStrategy::Sticky,
            vec![(v("1.0.0"), 0.5), (v("1.0.0"), 0.5)],
        )
        .unwrap_err();
        assert_eq!(errs[0].field, "trafficDistribution.versions[1].version");
    }

    #[test]
    fn sticky_point_is_stable_across_calls_and_releases() {
        let id = Uuid::parse_str("0190a1b2-0000-7000-8000-000000000001").unwrap();
        // Pinned value: changing the hash would move every session of every deployment.
        let point = sticky_point(id, "s-42");
        assert_eq!(point, sticky_point(id, "s-42"));
        assert!((0.0..1.0).contains(&point));
        assert_ne!(point, sticky_point(id, "s-43"));
    }

    proptest! {
        /// The validator accepts exactly the weight lists whose entries lie in [0, 1] and whose
        /// sum is within the tolerance of one; accepted splits are normalised to sum to one.
        #[test]
        fn validator_accepts_exactly_valid_weights(weights in prop::collection::vec(-0.2f64..1.2, 1..6)) {
            let labels: Vec<VersionLabel> = (0..weights.len()).map(|i| v(&format!("1.{i}.0"))).collect();
            let pairs: Vec<(VersionLabel, f64)> = labels.iter().cloned().zip(weights.iter().copied()).collect();
            let in_range = weights.iter().all(|w| (0.0..=1.0).contains(w));
            let sum: f64 = weights.iter().sum();
            let expected_ok = in_range && (sum - 1.0).abs() <= WEIGHT_SUM_TOLERANCE;
            let result = TrafficSplit::new(labels[0].clone(), SplitStrategy::Sticky, pairs);
            prop_assert_eq!(result.is_ok(), expected_ok);
            if let Ok(split) = result {
                let total: f64 = split.weights().iter().map(|w| w.weight).sum();
                prop_assert!((total - 1.0).abs() < 1e-9);
            }
        }

        /// Weights near one are accepted and normalised, whatever their split.
        #[test]
        fn near_one_sums_are_normalised(a in 0.0f64..=1.0, skew in -0.009f64..0.009) {
            let b = (1.0 - a + skew).clamp(0.0, 1.0);
            let split = TrafficSplit::new(v("1.0.0"), SplitStrategy::Sticky, vec![(v("1.0.0"), a), (v("1.1.0"), b)]);
            if (a + b - 1.0).abs() <= WEIGHT_SUM_TOLERANCE {
                let split = split.unwrap();
                let total: f64 = split.weights().iter().map(|w| w.weight).sum();
                prop_assert!((total - 1.0).abs() < 1e-9);
            }
        }

        /// Only versions with positive weight are ever chosen.
        #[test]
        fn zero_weight_versions_are_never_chosen(point in 0.0f64..1.0, a in 0.0f64..=1.0) {
            let split = TrafficSplit::new(
                v("1.0.0"), SplitStrategy::Sticky,
                vec![(v("1.0.0"), a), (v("1.1.0"), 0.0), (v("1.2.0"), 1.0 - a)],
            ).unwrap();
            prop_assert_ne!(split.choose(point), &v("1.1.0"));
        }

        /// Moving weight from A to B moves only sessions from A to B, never from B to A.
        #[test]
        fn growing_a_share_moves_only_the_moved_sessions(old_b in 0.0f64..=1.0, grow in 0.0f64..=1.0, session in "[a-z0-9-]{1,24}") {
            let new_b = old_b + (1.0 - old_b) * grow;
            let id = Uuid::from_u128(0x0190_a1b2_0000_7000_8000_0000_0000_0001);
            let before = TrafficSplit::new(v("1.0.0"), SplitStrategy::Sticky, vec![(v("1.1.0"), old_b), (v("1.0.0"), 1.0 - old_b)]).unwrap();
            let after = TrafficSplit::new(v("1.0.0"), SplitStrategy::Sticky, vec![(v("1.1.0"), new_b), (v("1.0.0"), 1.0 - new_b)]).unwrap();
            if before.choose_sticky(id, &session) == &v("1.1.0") {
                prop_assert_eq!(after.choose_sticky(id, &session), &v("1.1.0"));
            }
        }
    }

    #[test]
    fn sticky_shares_match_weights_over_many_sessions() {
        let id = Uuid::from_u128(7);
        let split = TrafficSplit::new(
            v("1.0.0"),
            SplitStrategy::Sticky,
            vec![(v("1.0.0"), 0.9), (v("1.1.0"), 0.1)],
        )
        .unwrap();
        let to_b = (0..20_000)
            .filter(|i| split.choose_sticky(id, &format!("session-{i}")) == &v("1.1.0"))
            .count();
        // 10% of 20,000 is 2,000; the standard deviation is about 42.
        assert!(
            (1800..2200).contains(&to_b),
            "{to_b} sessions went to 1.1.0"
        );
    }
}
