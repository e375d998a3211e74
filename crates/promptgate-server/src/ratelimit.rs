//! Per-client rate limits: a token bucket per OAuth client id, checked after the bearer token.
//!
//! The bucket is implemented as GCRA (the "generic cell rate algorithm", a token bucket stored
//! as one timestamp): each client has a *theoretical arrival time* (TAT). A request at `t` is
//! allowed when `max(TAT, t) - t <= (burst - 1) × interval`, and then moves the TAT on by one
//! `interval` (= 1 / requests_per_second). This is exactly a bucket of `burst` tokens refilled at
//! `requests_per_second`, but it needs one integer per client and no floating-point drift, so a
//! client that keeps to its rate is never refused because of rounding: the interval is rounded
//! *down* to the nanosecond, in the client's favour.
//!
//! State is in memory and per replica: with N replicas behind a balancer a client may get up to
//! N times its limit. Buckets are kept in shards of `Mutex<HashMap>` chosen by a hash of the
//! client id, so a check is O(1) and contends only with clients of the same shard; a lock is
//! held for a few arithmetic operations and never across an await. One entry per client that
//! has called (client ids are authenticated, so their number is bounded by the clients table).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The contract's default sustained rate per client.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 50.0;
/// The contract's default burst per client.
pub const DEFAULT_BURST: u32 = 100;
/// How many independently locked shards hold the buckets.
const SHARDS: usize = 16;

/// One client's limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate (tokens added per second); finite and above zero.
    pub requests_per_second: f64,
    /// Bucket size: the most requests accepted back to back after a pause; at least 1.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            burst: DEFAULT_BURST,
        }
    }
}

impl RateLimit {
    /// The time one token takes to come back, rounded down to the nanosecond (at least 1 ns) so
    /// that rounding never refuses a client that keeps to its rate.
    fn interval_nanos(&self) -> u128 {
        let nanos = 1e9 / self.requests_per_second;
        if nanos.is_finite() && nanos >= 1.0 {
            // Truncation is the intended rounding (down); the value is at most 1e9 / tiny, and
            // `as` saturates on overflow.
            nanos as u128
        } else {
            1
        }
    }
}

/// The outcome of one check, with what the `inin-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `inin-ratelimit-count`: requests currently counted against the bucket (tokens in use,
    /// this request included when it was allowed), from 0 to `limit`.
    pub count: u32,
    /// `inin-ratelimit-allowed`: the bucket size (the burst).
    pub limit: u32,
    /// `inin-ratelimit-reset`, whole seconds rounded up: when allowed, until the bucket is full
    /// again; when refused, until the next request is allowed (then equal to `retry_after`).
    pub reset_seconds: u64,
    /// `Retry-After` in whole seconds (at least 1) when refused; 0 when allowed.
    pub retry_after_seconds: u64,
}

/// `[rate_limits]`: a token bucket per OAuth client id, in memory on each replica, applied to
/// every request with a valid bearer token. Present (even empty), it limits every client, with
/// the contract's values for the keys it leaves out; absent, nothing is limited (the gateway
/// warns at start-up), because bursts of hundreds of requests from one client are normal for
/// batch jobs and tests, and a limit nobody configured would refuse them without warning.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsSection {
    /// Sustained rate per client, requests per second (default 50; fractions allowed, > 0).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Burst per client: the most requests accepted back to back (default 100, at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Per-client overrides.
    #[serde(default)]
    pub clients: BTreeMap<String, ClientRateLimit>,
}

/// `[rate_limits.clients."<id>"]`: a key left out takes the section's value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRateLimit {
    /// Sustained rate.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Burst.
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateLimitsSection {
    /// Refuses a rate that is not a positive finite number and a burst of 0, in the section and
    /// in each override, naming the key.
    pub fn check(&self) -> Result<(), String> {
        check_rate_limit("rate_limits", self.requests_per_second, self.burst)?;
        for (id, o) in &self.clients {
            check_rate_limit(
                &format!("rate_limits.clients.{id:?}"),
                o.requests_per_second,
                o.burst,
            )?;
        }
        Ok(())
    }
}

/// Refuses a rate that is not a positive finite number and a burst of 0, naming the key.
fn check_rate_limit(at: &str, rps: Option<f64>, burst: Option<u32>) -> Result<(), String> {
    if let Some(rps) = rps
        && !(rps.is_finite() && rps > 0.0)
    {
        return Err(format!(
            "{at}.requests_per_second is {rps}; it must be a number above 0"
        ));
    }
    if burst == Some(0) {
        return Err(format!("{at}.burst must be at least 1"));
    }
    Ok(())
}

/// The buckets of every client, with the default limit and the per-client overrides.
#[derive(Debug)]
pub struct RateLimiter {
    default: RateLimit,
    overrides: HashMap<String, RateLimit>,
    /// The clock's origin; TATs are nanoseconds since it.
    epoch: Instant,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, u128>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(RateLimit::default(), HashMap::new())
    }
}

impl RateLimiter {
    /// The per-client rate limiter when `[rate_limits]` is present: the section's values (the
    /// contract's defaults for what is not set) and its per-client overrides. `None` (no limit)
    /// without the section.
    pub fn from_config(section: Option<&RateLimitsSection>) -> Option<RateLimiter> {
        let section = section?;
        let defaults = RateLimit::default();
        let base = RateLimit {
            requests_per_second: section
                .requests_per_second
                .unwrap_or(defaults.requests_per_second),
            burst: section.burst.unwrap_or(defaults.burst),
        };
        let overrides = section
            .clients
            .iter()
            .map(|(id, o)| {
                (
                    id.clone(),
                    RateLimit {
                        requests_per_second: o
                            .requests_per_second
                            .unwrap_or(base.requests_per_second),
                        burst: o.burst.unwrap_or(base.burst),
                    },
                )
            })
            .collect();
        Some(RateLimiter::new(base, overrides))
    }
}

impl RateLimiter {
    /// A limiter with `default` for every client except those in `overrides`.
    pub fn new(default: RateLimit, overrides: HashMap<String, RateLimit>) -> Self {
        RateLimiter {
            default,
            overrides,
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The limit that applies to `client_id`.
    pub fn limit_for(&self, client_id: &str) -> RateLimit {
        self.overrides
            .get(client_id)
            .copied()
            .unwrap_or(self.default)
    }

    /// Counts one request of `client_id` now.
    pub fn check(&self, client_id: &str) -> Decision {
        self.check_at(client_id, Instant::now())
    }

    /// Counts one request of `client_id` at `now` (injected so tests need no sleeping).
    pub fn check_at(&self, client_id: &str, now: Instant) -> Decision {
        let limit = self.limit_for(client_id);
        let interval = limit.interval_nanos();
        let burst = limit.burst.max(1);
        let tolerance = interval * u128::from(burst - 1);
        let t = now.saturating_duration_since(self.epoch).as_nanos();
        let index = usize::try_from(self.hasher.hash_one(client_id) % SHARDS as u64).unwrap_or(0);
        // A poisoned shard only means another thread panicked mid-update of plain integers;
        // the data is still usable.
        let mut shard = match self.shards[index].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stored = shard.get(client_id).copied().unwrap_or(0);
        let tat = stored.max(t);
        let backlog = tat - t;
        if backlog > tolerance {
            drop(shard);
            let wait = backlog - tolerance;
            let retry = ceil_seconds(wait).max(1);
            return Decision {
                allowed: false,
                count: tokens_in_use(backlog, interval, burst),
                limit: burst,
                reset_seconds: retry,
                retry_after_seconds: retry,
            };
        }
        let new_tat = tat + interval;
        match shard.get_mut(client_id) {
            Some(slot) => *slot = new_tat,
            None => {
                shard.insert(client_id.to_owned(), new_tat);
            }
        }
        drop(shard);
        let backlog = new_tat - t;
        Decision {
            allowed: true,
            count: tokens_in_use(backlog, interval, burst),
            limit: burst,
            reset_seconds: ceil_seconds(backlog),
            retry_after_seconds: 0,
        }
    }
}

/// Writes the decision's `inin-ratelimit-*` headers, and `Retry-After` when it refused.
pub fn insert_headers(headers: &mut axum::http::HeaderMap, decision: &Decision) {
    use axum::http::{HeaderValue, header};
    headers.insert("inin-ratelimit-count", HeaderValue::from(decision.count));
    headers.insert("inin-ratelimit-allowed", HeaderValue::from(decision.limit));
    headers.insert(
        "inin-ratelimit-reset",
        HeaderValue::from(decision.reset_seconds),
    );
    if !decision.allowed {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(decision.retry_after_seconds.max(1)),
        );
    }
}

/// Tokens in use for a backlog of `backlog` ns: each pending interval is one token, rounded up.
fn tokens_in_use(backlog: u128, interval: u128, burst: u32) -> u32 {
    u32::try_from(backlog.div_ceil(interval))
        .unwrap_or(u32::MAX)
        .min(burst)
}

fn ceil_seconds(nanos: u128) -> u64 {
    u64::try_from(nanos.div_ceil(Duration::from_secs(1).as_nanos())).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rps: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(
            RateLimit {
                requests_per_second: rps,
                burst,
            },
            HashMap::new(),
        )
    }

    #[test]
    fn burst_then_refused_with_headers() {
        let l = limiter(1.0, 3);
        let t0 = l.epoch + Duration::from_secs(100);
        for i in 1..=3 {
            let d = l.check_at("a", t0);
            assert!(d.allowed);
            assert_eq!(d.count, i);
            assert_eq!(d.limit, 3);
            assert_eq!(d.reset_seconds, u64::from(i));
        }
        let d = l.check_at("a", t0);
        assert!(!d.allowed);
        assert_eq!(d.count, 3);
        assert_eq!(d.retry_after_seconds, 1);
        assert_eq!(d.reset_seconds, 1);
        // Another client has its own bucket.
        assert!(l.check_at("b", t0).allowed);
        // After one interval exactly, one token is back.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check_at("a", t1).allowed);
        assert!(!l.check_at("a", t1).allowed);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let l = limiter(0.25, 1);
        let t0 = l.epoch;
        assert!(l.check_at("a", t0).allowed);
        let d = l.check_at("a", t0 + Duration::from_millis(1));
        assert!(!d.allowed);
        assert_eq!(d.retry_after_seconds, 4);
        let d = l.check_at("a", t0 + Duration::from_millis(3_999));
        assert_eq!(d.retry_after_seconds, 1);
        assert!(l.check_at("a", t0 + Duration::from_secs(4)).allowed);
        // A fast limit still answers at least one second.
        let l = limiter(1000.0, 1);
        assert!(l.check_at("a", l.epoch).allowed);
        let d = l.check_at("a", l.epoch);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_seconds, 1);
    }

    #[test]
    fn a_client_at_exactly_its_rate_is_never_refused() {
        // Rates whose interval is not a whole number of nanoseconds are the risky ones.
        for rps in [50.0, 3.0, 7.0, 1.0 / 3.0, 1000.0, 0.7] {
            let l = limiter(rps, 1);
            let step = 1e9 / rps;
            for k in 0..100_000u64 {
                // The real instants k / rps, rounded to the nanosecond either way.
                let at = (k as f64 * step).round() as u64;
                let d = l.check_at("a", l.epoch + Duration::from_nanos(at));
                assert!(d.allowed, "rps {rps}: request {k} refused");
            }
        }
    }

    #[test]
    fn a_client_under_its_limit_is_never_refused_random_schedules() {
        // A deterministic pseudo-random schedule: after an idle period, a burst of at most
        // `burst` requests, then gaps of at least one interval. Every request must pass.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 33
        };
        for round in 0..200 {
            let rps = 1.0 + (next() % 200) as f64 / 4.0;
            let burst = 1 + (next() % 20) as u32;
            let l = limiter(rps, burst);
            let interval = (1e9 / rps).ceil() as u64;
            let mut at = 0u64;
            let first = 1 + next() % u64::from(burst);
            for _ in 0..first {
                assert!(l.check_at("c", l.epoch + Duration::from_nanos(at)).allowed);
            }
            // Wait for the whole burst to come back, then keep to the rate.
            at += interval * u64::from(burst);
            for i in 0..500 {
                let d = l.check_at("c", l.epoch + Duration::from_nanos(at));
                assert!(
                    d.allowed,
                    "round {round} (rps {rps}, burst {burst}): {i} refused"
                );
                at += interval + next() % interval;
            }
        }
    }

    #[test]
    fn over_the_rate_is_refused_at_the_expected_share() {
        // Twice the rate for 10 s from a full bucket: burst + 10 × rate requests pass.
        let l = limiter(10.0, 5);
        let mut passed = 0;
        for k in 0..200u64 {
            if l.check_at("a", l.epoch + Duration::from_millis(k * 50))
                .allowed
            {
                passed += 1;
            }
        }
        // Instants 0 ms .. 9 950 ms: 5 from the bucket and one per 100 ms.
        assert!((104..=105).contains(&passed), "{passed}");
    }

    #[test]
    fn overrides_apply_per_client() {
        let mut overrides = HashMap::new();
        overrides.insert(
            "big".to_owned(),
            RateLimit {
                requests_per_second: 1.0,
                burst: 10,
            },
        );
        let l = RateLimiter::new(
            RateLimit {
                requests_per_second: 1.0,
                burst: 2,
            },
            overrides,
        );
        let t = l.epoch;
        let passed = |id: &str| (0..20).filter(|_| l.check_at(id, t).allowed).count();
        assert_eq!(passed("small"), 2);
        assert_eq!(passed("big"), 10);
        assert_eq!(l.check_at("big", t).limit, 10);
        assert_eq!(l.check_at("other", t).limit, 2);
    }
}
