//! The statistics behind the per-version telemetry summary: count, error rate, exact latency
//! percentiles, token sums and feedback of one version, and the comparison that answers "is
//! this version better than that one?" with differences and their 95% confidence intervals.
//!
//! Everything here is a pure function of the samples it is given (no I/O, no clock, no
//! randomness), so the same records always give the same summary. `docs/statistics.md` states
//! the formulas, the assumptions behind them and the minimum sample sizes.
//!
//! - Percentiles: linear interpolation between closest ranks (Hyndman & Fan type 7, the default
//!   of R and NumPy), computed exactly from every value, never merged from buckets.
//! - Error rate difference: Newcombe's hybrid score interval (1998, method 10), built from the
//!   two Wilson score intervals.
//! - Mean differences (latency, feedback, cost): Welch's unequal-variance interval with
//!   Welch–Satterthwaite degrees of freedom and the Student t quantile computed here.
//! - The mean cost's own interval: Student's t interval of one mean, with the same quantile.

use crate::invocation::InvocationStatus;

/// One invocation as the summary sees it: the few fields the statistics need, so the store can
/// hand them over without the whole record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Time spent in the gateway, in milliseconds.
    pub latency_ms: f64,
    /// How the invocation ended; decides whether it is an error and whether its latency counts.
    pub status: InvocationStatus,
    /// Tokens sent to the model.
    pub prompt_tokens: u32,
    /// Tokens the model generated.
    pub completion_tokens: u32,
    /// The caller's score in [0, 1], when feedback was given.
    pub feedback: Option<f64>,
    /// Whether the output matched the JSON response format; none when it was not checked.
    pub schema_valid: Option<bool>,
    /// What the call cost in US dollars; none when its endpoint has no prices.
    pub cost_usd: Option<f64>,
}

/// Latency percentiles and mean of one version, over its SUCCESS and ERROR invocations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Median, by [`percentile`]'s method.
    pub p50: f64,
    /// 95th percentile: what one caller in twenty waits at least.
    pub p95: f64,
    /// 99th percentile: the tail that timeouts and retries are sized for.
    pub p99: f64,
    /// Arithmetic mean; the quantity the comparison's latency difference is about.
    pub mean: f64,
}

/// Token sums over many invocations, for cost accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenSums {
    /// Tokens sent.
    pub prompt: u64,
    /// Tokens generated.
    pub completion: u64,
    /// Their sum.
    pub total: u64,
}

/// The feedback callers gave one version.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeedbackSummary {
    /// Invocations with a (finite) feedback score.
    pub count: u64,
    /// Their mean score; `None` without feedback, as a mean of nothing is not 0.
    pub mean: Option<f64>,
}

/// A difference (this version minus the reference) with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffEstimate {
    /// The point estimate of the difference.
    pub estimate: f64,
    /// The 95% confidence interval, low then high; it always contains `estimate`.
    pub ci95: (f64, f64),
    /// Whether the interval excludes 0: the data show a difference at the 5% level.
    pub significant: bool,
}

/// This version against a reference version; each part is `None` when a side has too little
/// data for an interval (the rules are on [`compare`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Error rate difference, by Newcombe's hybrid score interval.
    pub error_rate_diff: Option<DiffEstimate>,
    /// Mean latency difference in milliseconds, by Welch's interval.
    pub mean_latency_ms_diff: Option<DiffEstimate>,
    /// Mean feedback score difference, by Welch's interval.
    pub feedback_mean_diff: Option<DiffEstimate>,
    /// Schema-valid rate difference, by Newcombe's hybrid score interval.
    pub schema_valid_rate_diff: Option<DiffEstimate>,
    /// Mean cost difference in US dollars, by Welch's interval, over the invocations that
    /// have a cost.
    pub cost_mean_usd_diff: Option<DiffEstimate>,
}

/// The cost of one version's priced invocations: what A/B decisions weigh against quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostSummary {
    /// Invocations with a cost (those served by a priced endpoint).
    pub count: u64,
    /// Their summed cost in US dollars.
    pub total_usd: f64,
    /// Their mean cost in US dollars.
    pub mean_usd: f64,
    /// Student's t 95% interval of the mean, low then high; `None` with fewer than 2 costs or
    /// when they are all equal (as for [`compare`], a zero-width interval would claim a
    /// certainty the data cannot give).
    pub mean_ci95: Option<(f64, f64)>,
}

/// A share of checked invocations (the schema-valid rate) with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSummary {
    /// Invocations checked.
    pub count: u64,
    /// Of which passed.
    pub passed: u64,
    /// passed / count.
    pub rate: f64,
    /// The 95% Wilson score interval of the rate, low then high.
    pub ci95: (f64, f64),
}

/// The numbers of one version (one group of samples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupSummary {
    /// Invocations, blocked ones included.
    pub count: u64,
    /// Invocations that ended in ERROR.
    pub error_count: u64,
    /// Invocations a guardrail refused; they are not errors.
    pub blocked_count: u64,
    /// `error_count / count` (blocked invocations in the denominator, as the contract says);
    /// 0 for an empty group.
    pub error_rate: f64,
    /// Latency over SUCCESS and ERROR invocations; `None` when there is none.
    pub latency_ms: Option<LatencySummary>,
    /// Token sums over every invocation.
    pub token_usage: TokenSums,
    /// Feedback over every invocation that has a score.
    pub feedback: FeedbackSummary,
    /// The share of checked outputs that matched the JSON response format; `None` when no
    /// output was checked.
    pub schema_valid: Option<RateSummary>,
    /// The cost of the invocations that have one; `None` when none has.
    pub cost: Option<CostSummary>,
}

/// Count, mean and sum of squared deviations from the mean of some values: all that the mean
/// and Welch's interval need, and what a database can compute in two passes without handing
/// the values over (`sum((x − mean)²)` after the mean, which loses no precision to
/// cancellation as `Σx² − (Σx)²/n` would).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    /// How many values.
    pub n: u64,
    /// Their mean; 0 when there is none.
    pub mean: f64,
    /// Σ (x − mean)².
    pub m2: f64,
}

impl Moments {
    /// The moments of `values`, by two passes.
    pub fn of(values: &[f64]) -> Moments {
        let Some(mean) = mean(values) else {
            return Moments::default();
        };
        Moments {
            n: values.len() as u64,
            mean,
            m2: values.iter().map(|v| (v - mean) * (v - mean)).sum(),
        }
    }

    /// The mean, or `None` without values.
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }
}

/// The percentiles every summary reports: p50, p95, p99.
pub const SUMMARY_PERCENTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// One group's numbers as a store aggregates them (counts and sums exact, latency and feedback
/// as [`Moments`], the latency percentiles from the order statistics at
/// [`percentile_ranks`]), so that a summary over millions of records needs no record in the
/// gateway's memory. [`summarize_aggregate`] and [`compare_aggregates`] turn it into the same
/// numbers [`summarize`] and [`compare`] give from the samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GroupAggregate {
    /// Invocations, blocked ones included.
    pub count: u64,
    /// ERROR invocations.
    pub error_count: u64,
    /// BLOCKED invocations.
    pub blocked_count: u64,
    /// Tokens sent, summed over every invocation.
    pub prompt_tokens: u64,
    /// Tokens generated, summed over every invocation.
    pub completion_tokens: u64,
    /// The finite latencies of SUCCESS and ERROR invocations.
    pub latency: Moments,
    /// Their [`SUMMARY_PERCENTILES`], by [`percentile`]'s method; `None` without latencies.
    pub latency_percentiles: Option<[f64; 3]>,
    /// The finite feedback scores.
    pub feedback: Moments,
    /// Invocations whose output was checked against a JSON response format.
    pub schema_checked: u64,
    /// Of which matched.
    pub schema_valid: u64,
    /// The finite costs in US dollars, of the invocations that have one.
    pub cost: Moments,
    /// Their sum, as the store adds them (rather than mean × n, which rounds twice).
    pub cost_total_usd: f64,
}

/// The 0-based ranks (in ascending order) of the values that [`percentile`] reads for the
/// p-quantile of `n` values: ⌊(n − 1)·p⌋, and the next one when the quantile lies between two
/// values. A store fetches the values at these ranks instead of all of them. `None` for n = 0 or
/// a p outside [0, 1].
pub fn percentile_ranks(n: u64, p: f64) -> Option<(u64, Option<u64>)> {
    let n = usize::try_from(n).ok()?;
    let (lo, fraction) = rank(n, p)?;
    let next = (fraction > 0.0 && lo + 1 < n).then_some(lo as u64 + 1);
    Some((lo as u64, next))
}

/// The p-quantile of `n` values from the values at its [`percentile_ranks`] (`value_at(rank)`),
/// bit for bit what [`percentile`] gives on all of them sorted.
pub fn percentile_from_ranks(n: u64, p: f64, value_at: impl Fn(u64) -> Option<f64>) -> Option<f64> {
    let (lo, next) = percentile_ranks(n, p)?;
    let low = value_at(lo)?;
    let Some(next) = next else {
        return Some(low);
    };
    let (_, fraction) = rank(usize::try_from(n).ok()?, p)?;
    Some(interpolate(low, value_at(next)?, fraction))
}

/// The aggregate of `samples`, as a store would compute it (the percentiles exact, by
/// selection).
pub fn aggregate(samples: &[Sample]) -> GroupAggregate {
    let mut group = GroupAggregate {
        count: samples.len() as u64,
        ..GroupAggregate::default()
    };
    for sample in samples {
        match sample.status {
            InvocationStatus::Success => {}
            InvocationStatus::Error => group.error_count += 1,
            InvocationStatus::Blocked => group.blocked_count += 1,
        }
        group.prompt_tokens = group
            .prompt_tokens
            .saturating_add(u64::from(sample.prompt_tokens));
        group.completion_tokens = group
            .completion_tokens
            .saturating_add(u64::from(sample.completion_tokens));
        if let Some(valid) = sample.schema_valid {
            group.schema_checked += 1;
            group.schema_valid += u64::from(valid);
        }
    }
    let mut latencies = latencies(samples);
    group.latency = Moments::of(&latencies);
    group.latency_percentiles = (|| {
        Some([
            select_percentile(&mut latencies, SUMMARY_PERCENTILES[0])?,
            select_percentile(&mut latencies, SUMMARY_PERCENTILES[1])?,
            select_percentile(&mut latencies, SUMMARY_PERCENTILES[2])?,
        ])
    })();
    group.feedback = Moments::of(&feedback_scores(samples));
    let costs = costs(samples);
    group.cost = Moments::of(&costs);
    group.cost_total_usd = costs.iter().sum();
    group
}

/// Summarises one group from its aggregate: the same numbers as [`summarize`] on its samples.
pub fn summarize_aggregate(group: &GroupAggregate) -> GroupSummary {
    let error_rate = if group.count == 0 {
        0.0
    } else {
        group.error_count as f64 / group.count as f64
    };
    let latency_ms = match (group.latency.mean(), group.latency_percentiles) {
        (Some(mean), Some([p50, p95, p99])) => Some(LatencySummary {
            p50,
            p95,
            p99,
            mean,
        }),
        _ => None,
    };
    GroupSummary {
        count: group.count,
        error_count: group.error_count,
        blocked_count: group.blocked_count,
        error_rate,
        latency_ms,
        token_usage: TokenSums {
            prompt: group.prompt_tokens,
            completion: group.completion_tokens,
            total: group.prompt_tokens.saturating_add(group.completion_tokens),
        },
        feedback: FeedbackSummary {
            count: group.feedback.n,
            mean: group.feedback.mean(),
        },
        schema_valid: wilson(group.schema_valid, group.schema_checked).map(|(rate, low, high)| {
            RateSummary {
                count: group.schema_checked,
                passed: group.schema_valid,
                rate,
                ci95: (low, high),
            }
        }),
        cost: group.cost.mean().map(|mean_usd| CostSummary {
            count: group.cost.n,
            total_usd: group.cost_total_usd,
            mean_usd,
            mean_ci95: t_interval(&group.cost),
        }),
    }
}

/// Compares two groups from their aggregates: the same as [`compare`] on their samples.
pub fn compare_aggregates(this: &GroupAggregate, reference: &GroupAggregate) -> Comparison {
    Comparison {
        error_rate_diff: newcombe(
            this.error_count,
            this.count,
            reference.error_count,
            reference.count,
        ),
        mean_latency_ms_diff: welch(&this.latency, &reference.latency),
        feedback_mean_diff: welch(&this.feedback, &reference.feedback),
        schema_valid_rate_diff: newcombe(
            this.schema_valid,
            this.schema_checked,
            reference.schema_valid,
            reference.schema_checked,
        ),
        cost_mean_usd_diff: welch(&this.cost, &reference.cost),
    }
}

/// Summarises one group (one version).
///
/// Every sample counts in `count` and the token sums; ERROR ones in `error_count`, BLOCKED ones
/// in `blocked_count`. Latency percentiles and mean are over SUCCESS and ERROR invocations only:
/// a blocked invocation never reaches the provider, so its latency is the guardrail's check
/// time, and counting it would make a version that blocks more look faster. The percentiles
/// are [`percentile`]'s, exact over every latency, found by selection in expected linear time.
/// Non-finite latencies and feedback scores (which the gateway never records) are left out
/// rather than allowed to poison a mean.
pub fn summarize(samples: &[Sample]) -> GroupSummary {
    summarize_aggregate(&aggregate(samples))
}

/// Compares `this` against `reference`: each difference is this minus the reference.
///
/// - Error rate: errors over all invocations (blocked included, as in [`GroupSummary`]), by
///   Newcombe's hybrid score interval; `None` when either side has no invocation.
/// - Mean latency (SUCCESS and ERROR invocations, as in [`LatencySummary`]) and mean feedback:
///   Welch's interval; `None` when either side has fewer than 2 values, or when neither side
///   varies at all (a zero-width interval would claim a certainty the data cannot give).
pub fn compare(this: &[Sample], reference: &[Sample]) -> Comparison {
    compare_aggregates(&aggregate(this), &aggregate(reference))
}

/// The p-quantile (p in [0, 1]) of `sorted` (ascending, finite values) by linear interpolation
/// between closest ranks: with h = (n − 1)·p, the value is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])
/// (Hyndman & Fan 1996, type 7; R's and NumPy's default). So p = 0 is the minimum, p = 1 the
/// maximum, and the median of an even count is the mean of the middle two.
///
/// `None` for an empty slice or a p outside [0, 1] (NaN included). An unsorted slice gives a
/// meaningless value, not a panic.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let (lo, fraction) = rank(sorted.len(), p)?;
    let low = *sorted.get(lo)?;
    if fraction == 0.0 {
        return Some(low);
    }
    Some(interpolate(low, *sorted.get(lo + 1)?, fraction))
}

/// The two-sided 95% critical value of the standard normal distribution (its 0.975 quantile).
const Z_975: f64 = 1.959_963_984_540_054;

/// From this many degrees of freedom on, the t quantile comes from the Cornish–Fisher
/// expansion, which is within 1e-12 of the exact value here and needs no iteration; below,
/// from the incomplete beta function, whose continued fraction slows down as the degrees grow.
const CORNISH_FISHER_FROM_DF: f64 = 300.0;

/// The index ⌊(n − 1)·p⌋ and the fraction of the way to the next value, shared by
/// [`percentile`] and [`select_percentile`] so both give bit-identical results.
fn rank(n: usize, p: f64) -> Option<(usize, f64)> {
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor();
    Some(((lo as usize).min(n - 1), h - lo))
}

/// The point `fraction` of the way from `low` to `high`, kept inside [low, high] against
/// rounding, and exact when the two are equal (so infinities do not turn into NaN).
fn interpolate(low: f64, high: f64, fraction: f64) -> f64 {
    if low == high {
        return low;
    }
    (low + fraction * (high - low)).max(low).min(high)
}

/// [`percentile`] on unsorted values in expected linear time: a selection
/// (`select_nth_unstable`) finds x[⌊h⌋], and the smallest value above it is x[⌊h⌋+1]. The
/// values are reordered, not lost, so the next percentile can reuse them.
fn select_percentile(values: &mut [f64], p: f64) -> Option<f64> {
    let (lo, fraction) = rank(values.len(), p)?;
    let (_, low, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let low = *low;
    if fraction == 0.0 {
        return Some(low);
    }
    let high = above.iter().copied().reduce(f64::min)?;
    Some(interpolate(low, high, fraction))
}

/// The latencies the summary and the comparison are about: SUCCESS and ERROR invocations,
/// finite values only.
fn latencies(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s.status != InvocationStatus::Blocked && s.latency_ms.is_finite())
        .map(|s| s.latency_ms)
        .collect()
}

/// The finite feedback scores, whatever the invocation's status (a caller may rate a refusal).
fn feedback_scores(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|s| s.feedback)
        .filter(|score| score.is_finite())
        .collect()
}

/// The finite costs, whatever the invocation's status (a failed call may still have used
/// tokens; a blocked one costs 0 at a priced endpoint).
fn costs(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|s| s.cost_usd)
        .filter(|cost| cost.is_finite())
        .collect()
}

/// The arithmetic mean; `None` for no values.
fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Builds the estimate, its interval and whether the interval excludes 0.
fn diff_estimate(estimate: f64, low: f64, high: f64) -> DiffEstimate {
    DiffEstimate {
        estimate,
        ci95: (low, high),
        significant: low > 0.0 || high < 0.0,
    }
}

/// The Wilson score interval (no continuity correction) for `x` successes in `n` trials:
/// (p̂, low, high). `None` without trials.
fn wilson(x: u64, n: u64) -> Option<(f64, f64, f64)> {
    if n == 0 {
        return None;
    }
    let p = x.min(n) as f64 / n as f64;
    let n = n as f64;
    let z2 = Z_975 * Z_975;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_975 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // The bounds are in [0, 1] and bracket p̂ in exact arithmetic; rounding at x = 0 or x = n
    // could leave them a hair outside.
    let low = (centre - half).max(0.0).min(p);
    let high = (centre + half).min(1.0).max(p);
    Some((p, low, high))
}

/// Newcombe's hybrid score interval for p₁ − p₂ (1998, method 10): the Wilson intervals
/// (l₁, u₁) and (l₂, u₂) of the two proportions combine as
/// d − √((p̂₁ − l₁)² + (u₂ − p̂₂)²) to d + √((u₁ − p̂₁)² + (p̂₂ − l₂)²).
fn newcombe(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<DiffEstimate> {
    let (p1, l1, u1) = wilson(x1, n1)?;
    let (p2, l2, u2) = wilson(x2, n2)?;
    let d = p1 - p2;
    // Written with the squares in the same order on both sides, so swapping the groups
    // negates the interval bit for bit.
    let low = d - ((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2)).sqrt();
    let high = d + ((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2)).sqrt();
    Some(diff_estimate(d, low.max(-1.0), high.min(1.0)))
}

/// Count, mean and sample variance (n − 1 denominator) of at least two values.
fn moments(values: &Moments) -> Option<(f64, f64, f64)> {
    if values.n < 2 {
        return None;
    }
    let n = values.n as f64;
    // A sum of squares is never negative; the clamp only guards against a store that rounds
    // one a hair below 0 (tiny dollar amounts squared are near f64's resolution).
    Some((n, values.mean, values.m2.max(0.0) / (n - 1.0)))
}

/// Student's t interval of one mean: mean ± t(0.975, n − 1)·s/√n, with s² the sample variance.
/// `None` with fewer than 2 values, or when they do not vary (see [`CostSummary::mean_ci95`]).
fn t_interval(values: &Moments) -> Option<(f64, f64)> {
    let (n, mean, variance) = moments(values)?;
    let standard_error = (variance / n).sqrt();
    if !(standard_error > 0.0 && standard_error.is_finite()) {
        return None;
    }
    let half = t_975(n - 1.0) * standard_error;
    Some((mean - half, mean + half))
}

/// Welch's interval for mean(this) − mean(reference):
/// d ± t(0.975, ν)·√(s₁²/n₁ + s₂²/n₂), with the Welch–Satterthwaite degrees of freedom
/// ν = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)).
fn welch(this: &Moments, reference: &Moments) -> Option<DiffEstimate> {
    let (n1, mean1, variance1) = moments(this)?;
    let (n2, mean2, variance2) = moments(reference)?;
    let (v1, v2) = (variance1 / n1, variance2 / n2);
    let v = v1 + v2;
    if !(v > 0.0 && v.is_finite()) {
        return None;
    }
    // The degrees of freedom from the shares of the variance, which neither overflow nor
    // underflow however large or small the latencies are.
    let (r1, r2) = (v1 / v, v2 / v);
    let df = 1.0 / (r1 * r1 / (n1 - 1.0) + r2 * r2 / (n2 - 1.0));
    let half = t_975(df) * v.sqrt();
    let d = mean1 - mean2;
    if !(half.is_finite() && d.is_finite()) {
        return None;
    }
    Some(diff_estimate(d, d - half, d + half))
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (real, taken as at least 1,
/// the least Welch–Satterthwaite can give with two values a side).
fn t_975(df: f64) -> f64 {
    let df = df.max(1.0);
    if df >= CORNISH_FISHER_FROM_DF {
        cornish_fisher_975(df)
    } else {
        incomplete_beta_975(df)
    }
}

/// The 0.975 quantile of Student's t by bisection on its tail: P(T > t) = I_x(ν/2, 1/2) / 2
/// with x = ν/(ν + t²) falls as t grows, and the quantile lies between the normal one and a
/// bound above its value at ν = 1 (12.7062).
fn incomplete_beta_975(df: f64) -> f64 {
    let (mut low, mut high) = (Z_975, 12.8);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        let tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + mid * mid));
        if tail > 0.025 {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-15 * high {
            break;
        }
    }
    0.5 * (low + high)
}

/// The Cornish–Fisher expansion of Student's t quantile around the normal one (Abramowitz &
/// Stegun 26.7.5, terms to ν⁻⁴) at the 0.975 quantile.
fn cornish_fisher_975(df: f64) -> f64 {
    let x = Z_975;
    let (x3, x5, x7, x9) = (x.powi(3), x.powi(5), x.powi(7), x.powi(9));
    let g1 = (x3 + x) / 4.0;
    let g2 = (5.0 * x5 + 16.0 * x3 + 3.0 * x) / 96.0;
    let g3 = (3.0 * x7 + 19.0 * x5 + 17.0 * x3 - 15.0 * x) / 384.0;
    let g4 = (79.0 * x9 + 776.0 * x7 + 1482.0 * x5 - 1920.0 * x3 - 945.0 * x) / 92160.0;
    x + g1 / df + g2 / (df * df) + g3 / df.powi(3) + g4 / df.powi(4)
}

/// The regularized incomplete beta function I_x(a, b) for a, b > 0, by its continued fraction
/// (modified Lentz), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where that converges
/// faster.
fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (Numerical Recipes' `betacf`).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=1000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 by the Lanczos approximation (g = 7, nine terms; relative error near
/// 1e-15), with the reflection formula below 1/2.
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn close(got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance,
            "{got} is not {want} within {tolerance}"
        );
    }

    /// Newcombe RG, "Two-sided confidence intervals for the single proportion: comparison of
    /// seven methods", Statistics in Medicine 17 (1998) 857–872, Table I, method 3 (score
    /// interval without continuity correction); the table gives 4 decimals. And 13/16 from the
    /// test suite of the R package contingencytables (Fagerland, Lydersen & Laake, "Statistical
    /// Analysis of Contingency Tables", chapter 2).
    #[test]
    fn wilson_matches_published_intervals() {
        for (x, n, low, high) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
            (13, 16, 0.5699, 0.9341),
        ] {
            let (p, l, u) = wilson(x, n).unwrap();
            close(p, x as f64 / n as f64, 1e-15);
            close(l, low, 5e-5);
            close(u, high, 5e-5);
        }
        assert_eq!(wilson(3, 0), None);
        let (_, low, _) = wilson(0, 7).unwrap();
        assert_eq!(low, 0.0, "no successes: the interval starts at exactly 0");
        let (_, _, high) = wilson(7, 7).unwrap();
        assert_eq!(high, 1.0, "all successes: the interval ends at exactly 1");
    }

    /// Student t 0.975 quantiles as R's `qt(0.975, df)` prints them (15 significant digits).
    #[test]
    fn t_quantile_matches_tables() {
        for (df, t) in [
            (1.0, 12.706_204_736_174_7),
            (2.0, 4.302_652_729_749_46),
            (3.0, 3.182_446_305_284_26),
            (5.0, 2.570_581_835_636_31),
            (10.0, 2.228_138_851_986_27),
            (30.0, 2.042_272_456_301_24),
            (40.0, 2.021_075_390_306_27),
            (100.0, 1.983_971_518_523_55),
        ] {
            close(t_975(df), t, 1e-9 * t);
        }
        // Printed tables stop at 3 decimals for large degrees of freedom.
        close(t_975(1000.0), 1.962, 5e-4);
        close(t_975(f64::INFINITY), Z_975, 1e-15);
        close(t_975(0.5), t_975(1.0), 0.0);
    }

    /// The two ways of computing the quantile agree where they meet, so the switch between
    /// them leaves no step.
    #[test]
    fn cornish_fisher_and_incomplete_beta_agree_around_the_switch() {
        for df in [200.0, 299.5, 300.0, 400.0, 1000.0] {
            close(cornish_fisher_975(df), incomplete_beta_975(df), 1e-11);
        }
    }

    /// The interval of one mean, by hand: 1, 2, 3, 4, 5 have mean 3, s² = 10/4 = 2.5,
    /// s/√n = √0.5, and t(0.975, 4) = 2.776445105, so 3 ± 1.963243161.
    #[test]
    fn t_interval_of_a_mean_matches_a_hand_computation() {
        let (low, high) = t_interval(&Moments::of(&[1.0, 2.0, 3.0, 4.0, 5.0])).unwrap();
        close(low, 3.0 - 1.963_243_161, 1e-8);
        close(high, 3.0 + 1.963_243_161, 1e-8);
        // Tiny dollar amounts: the same interval scaled by 10⁻⁶, nothing lost to rounding.
        let tiny: Vec<f64> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|x| x * 1e-6).collect();
        let (low, high) = t_interval(&Moments::of(&tiny)).unwrap();
        close(low, (3.0 - 1.963_243_161) * 1e-6, 1e-14);
        close(high, (3.0 + 1.963_243_161) * 1e-6, 1e-14);
        assert_eq!(t_interval(&Moments::of(&[0.5])), None, "one value");
        assert_eq!(
            t_interval(&Moments::of(&[0.5, 0.5, 0.5])),
            None,
            "no variation"
        );
        assert_eq!(t_interval(&Moments::default()), None);
        let negative_m2 = Moments {
            n: 3,
            mean: 1e-6,
            m2: -1e-30,
        };
        assert_eq!(
            t_interval(&negative_m2),
            None,
            "a rounded-negative variance is 0"
        );
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        close(ln_gamma(0.5), 0.5 * std::f64::consts::PI.ln(), 1e-14);
        close(ln_gamma(1.0), 0.0, 1e-14);
        close(ln_gamma(10.0), 362_880f64.ln(), 1e-12);
        close(ln_gamma(0.25), 3.625_609_908_221_908f64.ln(), 1e-13);
    }

    #[test]
    fn incomplete_beta_matches_closed_forms() {
        // I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b.
        for x in [0.01, 0.3, 0.5, 0.9, 0.999] {
            close(regularized_incomplete_beta(2.5, 1.0, x), x.powf(2.5), 1e-13);
            close(
                regularized_incomplete_beta(1.0, 3.5, x),
                1.0 - (1.0 - x).powf(3.5),
                1e-13,
            );
        }
    }

    #[test]
    fn selection_and_sorted_percentiles_agree_bit_for_bit() {
        let values = [5.0, 1.0, 4.0, 4.0, 9.5, -2.0, 7.25, 3.0];
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for i in 0..=200 {
            let p = f64::from(i) / 200.0;
            let mut scratch = values.to_vec();
            assert_eq!(
                select_percentile(&mut scratch, p),
                percentile(&sorted, p),
                "p = {p}"
            );
        }
    }
}
