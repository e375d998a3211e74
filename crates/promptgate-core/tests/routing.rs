//! Statistical tests of version choice (`choose_version` over a `TrafficSplit`), on samples too
//! large to send through the gateway: shares within 4 standard deviations of the weights,
//! sessions that keep their version, weight changes that move only the moved share, and random
//! draws that do not depend on the session.
//!
//! Every sample is deterministic (fixed session names, a seeded generator for draws), so a
//! failure reproduces exactly. The bound of 4σ (σ = sqrt(n·p·(1−p))) fails a correct
//! implementation about once in 16,000 fresh samples; with fixed samples it never flakes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use promptgate_core::invocation::choose_version;
use promptgate_core::traffic::sticky_point;
use promptgate_core::{SplitStrategy, TrafficSplit, VersionLabel};
use uuid::Uuid;

const N: usize = 10_000;

fn v(label: &str) -> VersionLabel {
    label.parse().unwrap()
}

fn split(strategy: SplitStrategy, weights: &[(&str, f64)]) -> TrafficSplit {
    TrafficSplit::new(
        v(weights[0].0),
        strategy,
        weights.iter().map(|(l, w)| (v(l), *w)).collect(),
    )
    .unwrap()
}

fn prompt_id() -> Uuid {
    Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap()
}

fn session(i: usize) -> String {
    format!("session-{i}")
}

/// The standard deviation of a binomial count.
fn sigma(n: usize, p: f64) -> f64 {
    (n as f64 * p * (1.0 - p)).sqrt()
}

/// Asserts that `count` of `n` trials is within 4σ of the share `p`.
#[track_caller]
fn assert_within_4_sigma(count: usize, n: usize, p: f64, what: &str) {
    let expected = n as f64 * p;
    let bound = 4.0 * sigma(n, p);
    assert!(
        (count as f64 - expected).abs() <= bound,
        "{what}: {count} of {n}, expected {expected} ± {bound:.1} (4σ)"
    );
}

/// SplitMix64: a tiny seeded generator, so the draws are the same on every run.
struct Draws(u64);

impl Draws {
    /// A point in [0, 1) with 53 random bits.
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn sticky_shares_of_a_90_10_split_are_within_4_sigma_over_10_000_sessions() {
    let split = split(SplitStrategy::Sticky, &[("1.0.0", 0.9), ("1.1.0", 0.1)]);
    let mut draws = Draws(1);
    let minor = (0..N)
        .filter(|&i| {
            choose_version(&split, prompt_id(), Some(&session(i)), draws.next()) == &v("1.1.0")
        })
        .count();
    assert_within_4_sigma(minor, N, 0.1, "sessions on 1.1.0 (weight 0.1)");
    // The same holds for another prompt: the hash mixes in the prompt id, not only the session.
    let other = Uuid::from_u128(42);
    let minor = (0..N)
        .filter(|&i| choose_version(&split, other, Some(&session(i)), 0.5) == &v("1.1.0"))
        .count();
    assert_within_4_sigma(minor, N, 0.1, "sessions of another prompt on 1.1.0");
}

#[test]
fn the_order_of_the_versions_does_not_change_the_shares() {
    // The minor version listed first: the share still follows its weight.
    let split = split(SplitStrategy::Sticky, &[("1.1.0", 0.1), ("1.0.0", 0.9)]);
    let minor = (0..N)
        .filter(|&i| choose_version(&split, prompt_id(), Some(&session(i)), 0.99) == &v("1.1.0"))
        .count();
    assert_within_4_sigma(minor, N, 0.1, "sessions on 1.1.0 listed first");
}

#[test]
fn a_session_keeps_its_version_over_100_choices_whatever_the_draw() {
    let split = split(SplitStrategy::Sticky, &[("1.0.0", 0.5), ("1.1.0", 0.5)]);
    let mut draws = Draws(7);
    let mut seen = [0usize; 2];
    for i in 0..200 {
        let s = session(i);
        let first = choose_version(&split, prompt_id(), Some(&s), draws.next()).clone();
        for call in 1..100 {
            let again = choose_version(&split, prompt_id(), Some(&s), draws.next());
            assert_eq!(
                again, &first,
                "{s} moved from {first} to {again} on choice {call}"
            );
        }
        seen[usize::from(first == v("1.1.0"))] += 1;
    }
    // Not by sending everyone to one version: 200 sessions at 0.5 land on both.
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
}

#[test]
fn moving_90_10_to_80_20_moves_about_10_percent_and_nobody_outside_the_moved_share() {
    let before = split(SplitStrategy::Sticky, &[("1.0.0", 0.9), ("1.1.0", 0.1)]);
    let after = split(SplitStrategy::Sticky, &[("1.0.0", 0.8), ("1.1.0", 0.2)]);
    let id = prompt_id();
    let mut moved = 0;
    for i in 0..N {
        let s = session(i);
        let old = choose_version(&before, id, Some(&s), 0.0);
        let new = choose_version(&after, id, Some(&s), 0.0);
        // The moved share of the hash space is [0.8, 0.9): the part of 1.0.0's range that
        // became 1.1.0's. Every session there moves, no other session does.
        let point = sticky_point(id, &s);
        let in_moved_share = (0.8..0.9).contains(&point);
        if old != new {
            moved += 1;
            assert!(
                old == &v("1.0.0") && new == &v("1.1.0"),
                "{s} moved from {old} to {new}: only 1.0.0 gave up traffic"
            );
            assert!(
                in_moved_share,
                "{s} (point {point}) moved but is outside the moved share [0.8, 0.9)"
            );
        } else {
            assert!(
                !in_moved_share,
                "{s} (point {point}) is in the moved share but stayed on {old}"
            );
        }
        if old == &v("1.1.0") {
            assert_eq!(new, &v("1.1.0"), "{s} left 1.1.0, whose share only grew");
        }
    }
    assert_within_4_sigma(moved, N, 0.1, "sessions that changed version");
}

#[test]
fn random_draws_do_not_depend_on_the_session() {
    let split = split(SplitStrategy::Random, &[("1.0.0", 0.5), ("1.1.0", 0.5)]);
    let id = prompt_id();
    let mut draws = Draws(99);

    // One session, many draws: both versions, in shares within 4σ of the weights.
    let picks: Vec<bool> = (0..N)
        .map(|_| choose_version(&split, id, Some("s-1"), draws.next()) == &v("1.1.0"))
        .collect();
    let on_b = picks.iter().filter(|b| **b).count();
    assert!(on_b > 0 && on_b < N, "one session saw only one version");
    assert_within_4_sigma(on_b, N, 0.5, "draws of one session on 1.1.0");
    // Successive draws are independent: the version repeats about half the time.
    let repeats = picks.windows(2).filter(|w| w[0] == w[1]).count();
    assert_within_4_sigma(
        repeats,
        N - 1,
        0.5,
        "successive draws with the same version",
    );

    // The same draw gives the same version whatever the session: only the draw decides.
    for draw in [0.0, 0.25, 0.4999, 0.5, 0.75, 0.9999] {
        let expected = split.choose(draw);
        for i in 0..100 {
            assert_eq!(
                choose_version(&split, id, Some(&session(i)), draw),
                expected,
                "draw {draw}, {}",
                session(i)
            );
        }
    }
}

#[test]
fn random_shares_of_a_90_10_split_are_within_4_sigma() {
    let split = split(SplitStrategy::Random, &[("1.0.0", 0.9), ("1.1.0", 0.1)]);
    let mut draws = Draws(2024);
    let minor = (0..N)
        .filter(|_| choose_version(&split, prompt_id(), Some("s-1"), draws.next()) == &v("1.1.0"))
        .count();
    assert_within_4_sigma(minor, N, 0.1, "random draws on 1.1.0 (weight 0.1)");
}

#[test]
fn sticky_without_a_session_is_drawn_at_random() {
    let split = split(SplitStrategy::Sticky, &[("1.0.0", 0.5), ("1.1.0", 0.5)]);
    let mut draws = Draws(5);
    let on_b = (0..N)
        .filter(|_| choose_version(&split, prompt_id(), None, draws.next()) == &v("1.1.0"))
        .count();
    assert_within_4_sigma(on_b, N, 0.5, "session-less sticky invocations on 1.1.0");
}
