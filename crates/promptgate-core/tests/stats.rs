//! Tests of the telemetry statistics (`promptgate_core::stats`): percentiles against a
//! brute-force computation on 10,000 seeded random latencies, the intervals against published
//! worked examples, the edge cases the summary endpoint meets (no data, one sample, all equal,
//! all errors, all blocked), and properties of the comparison (the interval contains the
//! estimate; swapping the versions negates estimate and interval).
//!
//! Every random input is seeded, so a failure reproduces exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use promptgate_core::invocation::InvocationStatus;
use promptgate_core::stats::{DiffEstimate, Sample, compare, percentile, summarize};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn sample(latency_ms: f64, status: InvocationStatus) -> Sample {
    Sample {
        latency_ms,
        status,
        prompt_tokens: 0,
        completion_tokens: 0,
        feedback: None,
        schema_valid: None,
        cost_usd: None,
    }
}

fn successes(latencies: &[f64]) -> Vec<Sample> {
    latencies
        .iter()
        .map(|&l| sample(l, InvocationStatus::Success))
        .collect()
}

/// `errors` ERROR invocations and `n − errors` SUCCESS ones.
fn with_errors(errors: usize, n: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let status = if i < errors {
                InvocationStatus::Error
            } else {
                InvocationStatus::Success
            };
            sample(100.0, status)
        })
        .collect()
}

fn with_feedback(scores: &[f64]) -> Vec<Sample> {
    scores
        .iter()
        .map(|&score| Sample {
            feedback: Some(score),
            ..sample(100.0, InvocationStatus::Success)
        })
        .collect()
}

#[track_caller]
fn close(got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "{got} is not {want} within {tolerance}"
    );
}

#[track_caller]
fn interval_close(got: DiffEstimate, low: f64, high: f64, tolerance: f64) {
    close(got.ci95.0, low, tolerance);
    close(got.ci95.1, high, tolerance);
}

/// Latencies shaped like a gateway's: a body around a few hundred ms, a slower mode, a heavy
/// tail, and values rounded to 0.1 ms so that ties occur.
fn random_latencies(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            let value = match rng.random_range(0..20) {
                0 => 2_000.0 / (1.0 - u).sqrt(),
                1..=3 => 1_000.0 + 3_000.0 * u,
                _ => 150.0 + 700.0 * u * u,
            };
            (value * 10.0).round() / 10.0
        })
        .collect()
}

/// The type-7 quantile found the slow way: walk the segments of the piecewise-linear curve
/// through the points (k/(n−1), x_k) until one contains p, and interpolate on it.
fn brute_force_percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let step = 1.0 / (n - 1) as f64;
    for k in 0..n - 1 {
        let (left, right) = (k as f64 * step, (k + 1) as f64 * step);
        if p <= right || k == n - 2 {
            let t = ((p - left) / step).clamp(0.0, 1.0);
            return sorted[k] + t * (sorted[k + 1] - sorted[k]);
        }
    }
    unreachable!("the last segment always matches")
}

// --- Percentiles -------------------------------------------------------------------------

#[test]
fn percentiles_match_a_brute_force_computation_on_10_000_random_latencies() {
    let values = random_latencies(10_000, 5);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(
        sorted.windows(2).any(|w| w[0] == w[1]),
        "the data should contain ties"
    );

    let mut rng = StdRng::seed_from_u64(6);
    let mut ps: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 1000.0).collect();
    ps.extend([0.5, 0.95, 0.99, 0.999, 0.9999, 1e-9, 1.0 - 1e-9]);
    ps.extend((0..500).map(|_| rng.random::<f64>()));

    let n = sorted.len();
    for &p in &ps {
        let q = percentile(&sorted, p).unwrap();
        // The same value as walking the interpolation curve by hand…
        let expected = brute_force_percentile(&sorted, p);
        close(q, expected, 1e-9 * expected.abs().max(1.0));
        // …and, counted over all 10,000 values, where type 7 puts it: at least ⌊h⌋ + 1 values
        // are ≤ q and at most ⌊h⌋ + 1 are < q, with h = (n − 1)·p.
        let floor_h = ((n - 1) as f64 * p).floor() as usize;
        let at_most = values.iter().filter(|&&v| v <= q).count();
        let below = values.iter().filter(|&&v| v < q).count();
        assert!(at_most > floor_h, "p = {p}: {at_most} values ≤ {q}");
        assert!(below <= floor_h + 1, "p = {p}: {below} values < {q}");
    }
    assert_eq!(percentile(&sorted, 0.0), Some(sorted[0]));
    assert_eq!(percentile(&sorted, 1.0), Some(sorted[n - 1]));
}

#[test]
fn summary_percentiles_and_mean_match_the_sorted_computation() {
    let values = random_latencies(10_000, 7);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let latency = summarize(&successes(&values)).latency_ms.unwrap();
    // The summary selects instead of sorting; the result must be the very same number.
    assert_eq!(latency.p50, percentile(&sorted, 0.5).unwrap());
    assert_eq!(latency.p95, percentile(&sorted, 0.95).unwrap());
    assert_eq!(latency.p99, percentile(&sorted, 0.99).unwrap());
    for (got, p) in [(latency.p50, 0.5), (latency.p95, 0.95), (latency.p99, 0.99)] {
        let expected = brute_force_percentile(&sorted, p);
        close(got, expected, 1e-9 * expected);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    close(latency.mean, mean, 1e-9 * mean);
}

/// Textbook values: NumPy's documentation example ([1, 2, 3, 4]: median 2.5, quartile 1.75) and
/// the "C = 1" variant on Wikipedia's Percentile page ({15, 20, 35, 40, 50}: 40th percentile 29).
#[test]
fn percentiles_match_textbook_values() {
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.25), Some(1.75));
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.75), Some(3.25));
    close(
        percentile(&[15.0, 20.0, 35.0, 40.0, 50.0], 0.4).unwrap(),
        29.0,
        1e-12,
    );
    assert_eq!(percentile(&[15.0, 20.0, 35.0, 40.0, 50.0], 0.5), Some(35.0));
}

#[test]
fn percentile_edge_cases() {
    assert_eq!(percentile(&[], 0.5), None);
    assert_eq!(percentile(&[1.0], -0.01), None);
    assert_eq!(percentile(&[1.0], 1.01), None);
    assert_eq!(percentile(&[1.0], f64::NAN), None);
    for p in [0.0, 0.3, 0.5, 0.99, 1.0] {
        assert_eq!(percentile(&[42.0], p), Some(42.0), "one value, p = {p}");
        assert_eq!(percentile(&[7.0; 9], p), Some(7.0), "all equal, p = {p}");
    }
    // Equal infinite neighbours interpolate to themselves, not to NaN.
    assert_eq!(
        percentile(&[1.0, f64::INFINITY, f64::INFINITY], 0.75),
        Some(f64::INFINITY)
    );
}

// --- The summary -------------------------------------------------------------------------

#[test]
fn an_empty_group_summarises_to_zeros_and_nothing() {
    let summary = summarize(&[]);
    assert_eq!(summary.count, 0);
    assert_eq!(summary.error_count, 0);
    assert_eq!(summary.blocked_count, 0);
    assert_eq!(summary.error_rate, 0.0);
    assert_eq!(summary.latency_ms, None);
    assert_eq!(summary.token_usage.total, 0);
    assert_eq!(summary.feedback.count, 0);
    assert_eq!(summary.feedback.mean, None);
}

#[test]
fn one_sample_is_every_percentile_and_the_mean() {
    let summary = summarize(&successes(&[812.4]));
    let latency = summary.latency_ms.unwrap();
    assert_eq!(
        (latency.p50, latency.p95, latency.p99, latency.mean),
        (812.4, 812.4, 812.4, 812.4)
    );
    assert_eq!(summary.count, 1);
    assert_eq!(summary.error_rate, 0.0);
}

#[test]
fn all_equal_latencies_give_that_latency_everywhere() {
    let latency = summarize(&successes(&[250.0; 1_000])).latency_ms.unwrap();
    assert_eq!(
        (latency.p50, latency.p95, latency.p99, latency.mean),
        (250.0, 250.0, 250.0, 250.0)
    );
}

#[test]
fn all_errors_give_an_error_rate_of_one_and_still_a_latency() {
    let samples: Vec<Sample> = [30_000.0, 29_000.0, 31_000.0]
        .iter()
        .map(|&l| sample(l, InvocationStatus::Error))
        .collect();
    let summary = summarize(&samples);
    assert_eq!(summary.error_count, 3);
    assert_eq!(summary.error_rate, 1.0);
    assert_eq!(summary.latency_ms.unwrap().p50, 30_000.0);
}

#[test]
fn all_blocked_count_but_have_no_latency_and_no_error_rate() {
    let samples = vec![sample(1.5, InvocationStatus::Blocked); 4];
    let summary = summarize(&samples);
    assert_eq!((summary.count, summary.blocked_count), (4, 4));
    assert_eq!(summary.error_count, 0);
    assert_eq!(summary.error_rate, 0.0);
    assert_eq!(summary.latency_ms, None);
}

/// The contract's example: 812 invocations, 3 errors, 2 blocked → errorRate 3/812 ≈ 0.0037.
#[test]
fn blocked_invocations_are_in_the_error_rate_denominator_but_not_errors() {
    let mut samples = with_errors(3, 810);
    samples.extend([
        sample(2.0, InvocationStatus::Blocked),
        sample(2.0, InvocationStatus::Blocked),
    ]);
    let summary = summarize(&samples);
    assert_eq!(summary.count, 812);
    assert_eq!(summary.error_count, 3);
    assert_eq!(summary.blocked_count, 2);
    assert_eq!(summary.error_rate, 3.0 / 812.0);
    close(summary.error_rate, 0.0037, 5e-5);
}

#[test]
fn blocked_latencies_stay_out_of_the_percentiles() {
    let mut samples = successes(&[600.0, 700.0, 800.0]);
    samples.extend(vec![sample(1.0, InvocationStatus::Blocked); 10]);
    let latency = summarize(&samples).latency_ms.unwrap();
    assert_eq!(latency.p50, 700.0);
    assert_eq!(latency.mean, 700.0);
    assert_eq!(latency.p99, 798.0);
}

#[test]
fn tokens_are_summed_over_every_invocation() {
    let samples = [
        Sample {
            prompt_tokens: 120,
            completion_tokens: 45,
            ..sample(812.4, InvocationStatus::Success)
        },
        Sample {
            prompt_tokens: 80,
            completion_tokens: 0,
            ..sample(90.0, InvocationStatus::Error)
        },
        Sample {
            prompt_tokens: u32::MAX,
            completion_tokens: u32::MAX,
            ..sample(2.0, InvocationStatus::Blocked)
        },
    ];
    let tokens = summarize(&samples).token_usage;
    let max = u64::from(u32::MAX);
    assert_eq!(tokens.prompt, 200 + max);
    assert_eq!(tokens.completion, 45 + max);
    assert_eq!(tokens.total, 245 + 2 * max);
}

#[test]
fn feedback_is_counted_and_averaged_whatever_the_status() {
    let samples = [
        Sample {
            feedback: Some(1.0),
            ..sample(500.0, InvocationStatus::Success)
        },
        Sample {
            feedback: Some(0.0),
            ..sample(2.0, InvocationStatus::Blocked)
        },
        Sample {
            feedback: Some(0.5),
            ..sample(900.0, InvocationStatus::Error)
        },
        Sample {
            feedback: Some(f64::NAN),
            ..sample(500.0, InvocationStatus::Success)
        },
        sample(500.0, InvocationStatus::Success),
    ];
    let feedback = summarize(&samples).feedback;
    assert_eq!(feedback.count, 3);
    assert_eq!(feedback.mean, Some(0.5));
}

// --- The comparison: published worked examples ----------------------------------------

/// Newcombe RG, "Interval estimation for the difference between independent proportions:
/// comparison of eleven methods", Statistics in Medicine 17 (1998) 873–890, Table II, method 10
/// (hybrid score interval without continuity correction), rounded to 4 decimals there.
#[test]
fn error_rate_interval_matches_newcombe_1998_table_ii() {
    for (x1, n1, x2, n2, low, high) in [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
        (10, 10, 0, 10, 0.6075, 1.0),
    ] {
        let diff = compare(&with_errors(x1, n1), &with_errors(x2, n2))
            .error_rate_diff
            .unwrap();
        close(
            diff.estimate,
            x1 as f64 / n1 as f64 - x2 as f64 / n2 as f64,
            1e-15,
        );
        interval_close(diff, low, high, 5e-5);
        assert_eq!(diff.significant, low > 0.0, "{x1}/{n1} vs {x2}/{n2}");
    }
}

/// The R package contingencytables (Fagerland, Lydersen & Laake, "Statistical Analysis of
/// Contingency Tables", chapter 4) tests its Newcombe hybrid score interval on Perondi et al.
/// (2004), 7/34 vs 1/34: estimate 0.1765, 95% CI 0.0189 to 0.3404.
#[test]
fn error_rate_interval_matches_the_contingencytables_example() {
    let diff = compare(&with_errors(7, 34), &with_errors(1, 34))
        .error_rate_diff
        .unwrap();
    close(diff.estimate, 0.1765, 5e-5);
    interval_close(diff, 0.0189, 0.3404, 5e-5);
    assert!(diff.significant);
}

/// R's `t.test(extra ~ group, data = sleep)` (Welch, the default), as printed in R's own
/// documentation and tutorials: mean difference −1.58, t = −1.8608, df = 17.776, 95% CI
/// −3.3654832 to 0.2054832. The full-precision bounds −3.36548323071171 and 0.20548323071171
/// are those the R package `parameters` asserts in its test of `model_parameters()` on the same
/// t-test.
#[test]
fn latency_interval_matches_welch_on_rs_sleep_data() {
    let group1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
    let group2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
    let diff = compare(&successes(&group1), &successes(&group2))
        .mean_latency_ms_diff
        .unwrap();
    close(diff.estimate, -1.58, 1e-12);
    interval_close(diff, -3.365_483_230_711_71, 0.205_483_230_711_71, 1e-10);
    assert!(!diff.significant);
}

/// Welch's t-test in R on exam scores with and without a prep booklet (Statology, "How to
/// Perform Welch's t-test in R"): t = 2.2361, df = 14.354, 95% CI 0.3048395 to 13.8618272.
#[test]
fn latency_interval_matches_welch_on_the_booklet_example() {
    let booklet = [
        90.0, 85.0, 88.0, 89.0, 94.0, 91.0, 79.0, 83.0, 87.0, 88.0, 91.0, 90.0,
    ];
    let no_booklet = [
        67.0, 90.0, 71.0, 95.0, 88.0, 83.0, 72.0, 66.0, 75.0, 86.0, 93.0, 84.0,
    ];
    let diff = compare(&successes(&booklet), &successes(&no_booklet))
        .mean_latency_ms_diff
        .unwrap();
    close(
        diff.estimate,
        87.916_666_666_666_67 - 80.833_333_333_333_33,
        1e-9,
    );
    interval_close(diff, 0.304_839_5, 13.861_827_2, 5e-7);
    assert!(diff.significant);
}

#[test]
fn feedback_interval_is_welch_on_the_scores() {
    let group1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
    let group2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
    let comparison = compare(&with_feedback(&group1), &with_feedback(&group2));
    let diff = comparison.feedback_mean_diff.unwrap();
    interval_close(diff, -3.365_483_230_711_71, 0.205_483_230_711_71, 1e-10);
    // Every latency is 100 ms on both sides: nothing varies, so no latency interval.
    assert_eq!(comparison.mean_latency_ms_diff, None);
}

// --- The comparison: too little data ------------------------------------------------------

#[test]
fn comparison_parts_are_none_with_too_little_data() {
    let some = successes(&[100.0, 200.0, 300.0]);
    let empty = compare(&some, &[]);
    assert_eq!(empty.error_rate_diff, None);
    assert_eq!(empty.mean_latency_ms_diff, None);
    assert_eq!(empty.feedback_mean_diff, None);
    assert_eq!(compare(&[], &some).error_rate_diff, None);

    // One invocation a side is enough for the error rate (a wide, honest interval), not for a
    // mean difference, which needs a variance on each side.
    let one = compare(&successes(&[100.0]), &successes(&[200.0]));
    let error_rate = one.error_rate_diff.unwrap();
    assert_eq!(error_rate.estimate, 0.0);
    assert!(!error_rate.significant);
    assert_eq!(one.mean_latency_ms_diff, None);
    assert!(
        compare(&successes(&[100.0, 110.0]), &successes(&[200.0, 190.0]))
            .mean_latency_ms_diff
            .is_some()
    );

    // Blocked invocations have no latency: two of them do not make two latencies.
    let mut blocked = successes(&[100.0]);
    blocked.extend(vec![sample(1.0, InvocationStatus::Blocked); 5]);
    assert_eq!(compare(&blocked, &some).mean_latency_ms_diff, None);
    assert!(compare(&blocked, &some).error_rate_diff.is_some());

    // Feedback needs two scores a side.
    assert_eq!(
        compare(&with_feedback(&[1.0]), &with_feedback(&[0.0, 1.0])).feedback_mean_diff,
        None
    );
    assert!(
        compare(&with_feedback(&[1.0, 0.0]), &with_feedback(&[0.0, 1.0]))
            .feedback_mean_diff
            .is_some()
    );
    // Scores that do not vary on either side give no interval, rather than a zero-width one.
    assert_eq!(
        compare(&with_feedback(&[1.0; 50]), &with_feedback(&[0.0; 50])).feedback_mean_diff,
        None
    );
    // One varying side is enough.
    let one_varies = compare(&with_feedback(&[1.0; 50]), &with_feedback(&[0.0, 1.0, 1.0]))
        .feedback_mean_diff
        .unwrap();
    assert!(one_varies.ci95.0 < one_varies.estimate && one_varies.estimate < one_varies.ci95.1);
}

#[test]
fn all_errors_against_all_errors_is_no_difference() {
    let diff = compare(&with_errors(20, 20), &with_errors(30, 30))
        .error_rate_diff
        .unwrap();
    assert_eq!(diff.estimate, 0.0);
    assert!(diff.ci95.0 < 0.0 && 0.0 < diff.ci95.1);
    assert!(!diff.significant);
}

// --- The comparison: properties ------------------------------------------------------------

fn status() -> impl Strategy<Value = InvocationStatus> {
    prop_oneof![
        6 => Just(InvocationStatus::Success),
        2 => Just(InvocationStatus::Error),
        1 => Just(InvocationStatus::Blocked),
    ]
}

fn any_sample() -> impl Strategy<Value = Sample> {
    (
        0.0..60_000.0f64,
        status(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64]),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![Just(0.0), 0.0..=0.5f64]),
    )
        .prop_map(
            |(
                latency_ms,
                status,
                prompt_tokens,
                completion_tokens,
                feedback,
                schema_valid,
                cost_usd,
            )| {
                Sample {
                    latency_ms,
                    status,
                    prompt_tokens,
                    completion_tokens,
                    feedback,
                    schema_valid,
                    cost_usd,
                }
            },
        )
}

fn group() -> impl Strategy<Value = Vec<Sample>> {
    prop::collection::vec(any_sample(), 0..60)
}

#[track_caller]
fn assert_well_formed(diff: Option<DiffEstimate>) {
    if let Some(d) = diff {
        let (low, high) = d.ci95;
        assert!(low.is_finite() && high.is_finite() && d.estimate.is_finite());
        assert!(low <= d.estimate && d.estimate <= high, "{d:?}");
        assert_eq!(d.significant, low > 0.0 || high < 0.0, "{d:?}");
    }
}

#[track_caller]
fn assert_negated(forward: Option<DiffEstimate>, backward: Option<DiffEstimate>) {
    match (forward, backward) {
        (None, None) => {}
        (Some(f), Some(b)) => {
            assert_eq!(f.estimate, -b.estimate);
            assert_eq!(f.ci95, (-b.ci95.1, -b.ci95.0));
            assert_eq!(f.significant, b.significant);
        }
        _ => panic!("one direction has an interval and the other not: {forward:?} {backward:?}"),
    }
}

proptest! {
    #[test]
    fn intervals_contain_their_estimate(this in group(), reference in group()) {
        let comparison = compare(&this, &reference);
        assert_well_formed(comparison.error_rate_diff);
        assert_well_formed(comparison.mean_latency_ms_diff);
        assert_well_formed(comparison.feedback_mean_diff);
        if let Some(d) = comparison.error_rate_diff {
            prop_assert!(-1.0 <= d.ci95.0 && d.ci95.1 <= 1.0);
        }
    }

    #[test]
    fn swapping_the_versions_negates_estimate_and_interval(this in group(), reference in group()) {
        let forward = compare(&this, &reference);
        let backward = compare(&reference, &this);
        assert_negated(forward.error_rate_diff, backward.error_rate_diff);
        assert_negated(forward.mean_latency_ms_diff, backward.mean_latency_ms_diff);
        assert_negated(forward.feedback_mean_diff, backward.feedback_mean_diff);
    }

    #[test]
    fn the_estimates_are_the_differences_of_the_summaries(this in group(), reference in group()) {
        let comparison = compare(&this, &reference);
        let (a, b) = (summarize(&this), summarize(&reference));
        if let Some(d) = comparison.error_rate_diff {
            prop_assert_eq!(d.estimate, a.error_rate - b.error_rate);
        }
        if let Some(d) = comparison.mean_latency_ms_diff {
            prop_assert_eq!(d.estimate, a.latency_ms.unwrap().mean - b.latency_ms.unwrap().mean);
        }
        if let Some(d) = comparison.feedback_mean_diff {
            prop_assert_eq!(d.estimate, a.feedback.mean.unwrap() - b.feedback.mean.unwrap());
        }
    }

    #[test]
    fn summaries_are_consistent(samples in group()) {
        let summary = summarize(&samples);
        prop_assert_eq!(summary.count, samples.len() as u64);
        prop_assert!(summary.error_count + summary.blocked_count <= summary.count);
        prop_assert!((0.0..=1.0).contains(&summary.error_rate));
        prop_assert_eq!(
            summary.token_usage.total,
            summary.token_usage.prompt + summary.token_usage.completion
        );
        if let Some(latency) = summary.latency_ms {
            let timed: Vec<f64> = samples
                .iter()
                .filter(|s| s.status != InvocationStatus::Blocked)
                .map(|s| s.latency_ms)
                .collect();
            let min = timed.iter().copied().fold(f64::INFINITY, f64::min);
            let max = timed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(min <= latency.p50 && latency.p50 <= latency.p95);
            prop_assert!(latency.p95 <= latency.p99 && latency.p99 <= max);
            prop_assert!(min <= latency.mean && latency.mean <= max);
        } else {
            prop_assert!(samples.iter().all(|s| s.status == InvocationStatus::Blocked));
        }
    }

    #[test]
    fn percentiles_rise_with_p_and_stay_within_the_values(
        mut values in prop::collection::vec(-1e6..1e6f64, 1..200),
        p in 0.0..=1.0f64,
        q in 0.0..=1.0f64,
    ) {
        values.sort_by(f64::total_cmp);
        let (low, high) = (p.min(q), p.max(q));
        let at_low = percentile(&values, low).unwrap();
        let at_high = percentile(&values, high).unwrap();
        prop_assert!(at_low <= at_high);
        prop_assert!(values[0] <= at_low && at_high <= values[values.len() - 1]);
    }
}

/// Issue 17, item 13: a store reads only the order statistics `percentile_ranks` names, and
/// `percentile_from_ranks` gives from them exactly what `percentile` gives on all the values.
#[test]
fn percentiles_from_the_ranked_values_equal_the_percentiles_of_all_values() {
    use promptgate_core::stats::{percentile, percentile_from_ranks, percentile_ranks};
    for n in 1..=300u64 {
        let sorted: Vec<f64> = (0..n).map(|i| (i * i) as f64 / 7.0 + 0.25).collect();
        for p in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let (lo, next) = percentile_ranks(n, p).unwrap();
            assert!(
                lo < n && next.is_none_or(|r| r == lo + 1 && r < n),
                "n {n} p {p}"
            );
            let read = std::cell::RefCell::new(Vec::new());
            let got = percentile_from_ranks(n, p, |rank| {
                read.borrow_mut().push(rank);
                sorted.get(rank as usize).copied()
            });
            assert_eq!(got, percentile(&sorted, p), "n {n} p {p}");
            assert!(read.borrow().len() <= 2, "n {n} p {p}: {:?}", read.borrow());
        }
    }
    assert_eq!(percentile_ranks(0, 0.5), None);
    assert_eq!(percentile_ranks(10, 1.5), None);
}

/// The schema-valid rate counts checked invocations only, with Wilson's interval, and the
/// comparison's difference is Newcombe's like the error rate's.
#[test]
fn schema_valid_rate_counts_checked_outputs_only() {
    let with = |valid: Option<bool>| Sample {
        schema_valid: valid,
        ..sample(100.0, InvocationStatus::Success)
    };
    let mut group: Vec<Sample> = (0..8).map(|_| with(Some(true))).collect();
    group.extend((0..2).map(|_| with(Some(false))));
    group.extend((0..5).map(|_| with(None)));
    let rate = summarize(&group).schema_valid.unwrap();
    assert_eq!((rate.count, rate.passed), (10, 8));
    assert!((rate.rate - 0.8).abs() < 1e-12);
    // Wilson 95% for 8/10: 0.4902 to 0.9433.
    assert!((rate.ci95.0 - 0.4902).abs() < 5e-4, "{:?}", rate.ci95);
    assert!((rate.ci95.1 - 0.9433).abs() < 5e-4, "{:?}", rate.ci95);
    assert_eq!(summarize(&[with(None)]).schema_valid, None);

    let reference: Vec<Sample> = (0..10).map(|i| with(Some(i < 3))).collect();
    let diff = compare(&group, &reference).schema_valid_rate_diff.unwrap();
    assert!((diff.estimate - 0.5).abs() < 1e-12);
    assert!(diff.ci95.0 < diff.estimate && diff.estimate < diff.ci95.1);
    assert!(
        compare(&group, &[with(None)])
            .schema_valid_rate_diff
            .is_none()
    );
}

/// Cost counts the invocations that have one, whatever their status: the total, the mean and
/// its t interval by hand, and the comparison's difference by Welch's interval.
#[test]
fn cost_is_summed_and_averaged_over_priced_invocations_with_its_interval() {
    let with = |cost: Option<f64>, status| Sample {
        cost_usd: cost,
        ..sample(100.0, status)
    };
    // Costs 0.001, 0.002, 0.003, 0.004 (one of them an ERROR), plus two unpriced invocations
    // and a non-finite cost the gateway never records.
    let group = vec![
        with(Some(0.001), InvocationStatus::Success),
        with(Some(0.002), InvocationStatus::Success),
        with(Some(0.003), InvocationStatus::Error),
        with(Some(0.004), InvocationStatus::Success),
        with(None, InvocationStatus::Success),
        with(None, InvocationStatus::Blocked),
        with(Some(f64::INFINITY), InvocationStatus::Success),
    ];
    let cost = summarize(&group).cost.unwrap();
    assert_eq!(cost.count, 4);
    close(cost.total_usd, 0.010, 1e-15);
    close(cost.mean_usd, 0.0025, 1e-15);
    // s² = ((1.5² + 0.5² + 0.5² + 1.5²)·10⁻⁶) / 3 = 5·10⁻⁶ / 3; s/√4 = √(5/12)·10⁻³
    // = 0.000645497; t(0.975, 3) = 3.182446305; half width 0.002054260.
    let (low, high) = cost.mean_ci95.unwrap();
    close(low, 0.0025 - 0.002_054_260, 1e-9);
    close(high, 0.0025 + 0.002_054_260, 1e-9);
    assert_eq!(
        summarize(&[with(None, InvocationStatus::Success)]).cost,
        None
    );
    let one = summarize(&[with(Some(0.5), InvocationStatus::Success)])
        .cost
        .unwrap();
    assert_eq!((one.count, one.total_usd, one.mean_usd), (1, 0.5, 0.5));
    assert_eq!(one.mean_ci95, None, "one cost has no interval");

    let reference: Vec<Sample> = [0.0005, 0.0015, 0.001]
        .iter()
        .map(|&c| with(Some(c), InvocationStatus::Success))
        .collect();
    let diff = compare(&group, &reference).cost_mean_usd_diff.unwrap();
    close(diff.estimate, 0.0025 - 0.001, 1e-15);
    assert!(diff.ci95.0 < diff.estimate && diff.estimate < diff.ci95.1);
    assert!(
        compare(&group, &[with(None, InvocationStatus::Success)])
            .cost_mean_usd_diff
            .is_none()
    );
}
