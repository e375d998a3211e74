//! A cap on the calls in flight to each model endpoint (`[[model_endpoints]]
//! max_concurrent_calls`): one slow or stuck provider cannot hold every connection and task of
//! the gateway, and a burst beyond what the provider's own quota allows is refused at once with
//! 429 instead of queueing behind it.
//!
//! A call holds its slot until the provider's answer is complete: for a streamed answer, until
//! the stream ends or the client goes away.
//!
//! Beside the slots, each endpoint's circuit breaker ([`Circuits`], the state machine of
//! `promptgate_core::circuit`): after `circuit_failure_threshold` failures in a row an endpoint
//! is not called for `circuit_open_ms`, so a dead provider costs one timeout, not one per
//! request. Each replica keeps and learns its own breakers (in memory).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use promptgate_core::EndpointCatalogue;
use promptgate_core::circuit::{Admission, Circuit, CircuitConfig, CircuitSnapshot, Transition};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default of `[[model_endpoints]] max_concurrent_calls`.
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 256;

/// One semaphore per model endpoint.
#[derive(Debug, Default)]
pub struct UpstreamSlots {
    by_endpoint: HashMap<String, (Arc<Semaphore>, u32)>,
}

/// A slot held for one call; dropping it frees the slot.
#[derive(Debug)]
pub struct UpstreamSlot {
    _permit: OwnedSemaphorePermit,
}

impl UpstreamSlots {
    /// Slots for every endpoint of `catalogue`: `limits` gives some endpoints their own number,
    /// the rest get [`DEFAULT_MAX_CONCURRENT_CALLS`].
    pub fn new(catalogue: &EndpointCatalogue, limits: &HashMap<String, u32>) -> Self {
        let by_endpoint = catalogue
            .iter()
            .map(|e| {
                let limit = limits
                    .get(&e.reference)
                    .copied()
                    .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS);
                (
                    e.reference.clone(),
                    (Arc::new(Semaphore::new(limit as usize)), limit),
                )
            })
            .collect();
        UpstreamSlots { by_endpoint }
    }

    /// Takes a slot of `endpoint` without waiting, or refuses with 429 naming the endpoint and
    /// its limit. An endpoint without slots (not in the catalogue) is not limited here; the
    /// caller fails on it anyway.
    pub fn acquire(&self, endpoint: &str) -> Result<Option<UpstreamSlot>, SlotsFull> {
        let Some((semaphore, limit)) = self.by_endpoint.get(endpoint) else {
            return Ok(None);
        };
        match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(UpstreamSlot { _permit: permit })),
            Err(_) => Err(SlotsFull {
                endpoint: endpoint.to_owned(),
                limit: *limit,
            }),
        }
    }
}

/// Every call slot of a model endpoint is taken (`max_concurrent_calls`): answered 429 with the
/// endpoint and its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model endpoint {endpoint} has all its {limit} calls in flight")]
pub struct SlotsFull {
    /// The endpoint's `ref`.
    pub endpoint: String,
    /// Its `max_concurrent_calls`.
    pub limit: u32,
}

/// How a call to an endpoint ended, for its breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered (a request's own 4xx counts: the endpoint is up).
    Answered,
    /// The endpoint failed: 5xx, 429, 408, 401/403/404, a timeout or a connection error.
    Failed,
    /// The call said nothing of the endpoint (no call slot was free).
    Abandoned,
}

/// One circuit breaker per model endpoint, on a monotonic clock of milliseconds since start.
#[derive(Debug)]
pub struct Circuits {
    by_endpoint: HashMap<String, Mutex<Breaker>>,
    started: Instant,
}

#[derive(Debug)]
struct Breaker {
    circuit: Circuit,
    opened_total: u64,
}

/// What `/metrics` and `…/model-endpoints` show of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitReport {
    /// The state, consecutive failures and, while open, the end of the open period.
    pub snapshot: CircuitSnapshot,
    /// While open: when it lets a probe through, on the wall clock.
    pub open_until: Option<OffsetDateTime>,
    /// How many times it opened since start.
    pub opened_total: u64,
}

impl Circuits {
    /// Breakers for every endpoint of `catalogue`: `configs` gives some endpoints their own
    /// settings, the rest get the defaults.
    pub fn new(catalogue: &EndpointCatalogue, configs: &HashMap<String, CircuitConfig>) -> Self {
        let by_endpoint = catalogue
            .iter()
            .map(|e| {
                let config = configs.get(&e.reference).copied().unwrap_or_default();
                let breaker = Breaker {
                    circuit: Circuit::new(config),
                    opened_total: 0,
                };
                (e.reference.clone(), Mutex::new(breaker))
            })
            .collect();
        Circuits {
            by_endpoint,
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call to `endpoint` may go now (an endpoint without a breaker always may).
    pub fn admit(&self, endpoint: &str) -> Admission {
        let now = self.now_ms();
        match self.by_endpoint.get(endpoint).map(Mutex::lock) {
            Some(Ok(mut breaker)) => breaker.circuit.admit(now),
            _ => Admission::Call,
        }
    }

    /// Reports how a call admitted with `admission` ended.
    pub fn report(&self, endpoint: &str, admission: Admission, outcome: Outcome) {
        let now = self.now_ms();
        let Some(Ok(mut breaker)) = self.by_endpoint.get(endpoint).map(Mutex::lock) else {
            return;
        };
        let transition = match outcome {
            Outcome::Answered => breaker.circuit.succeeded(admission),
            Outcome::Failed => breaker.circuit.failed(admission, now),
            Outcome::Abandoned => {
                breaker.circuit.abandoned(admission);
                Transition::None
            }
        };
        match transition {
            Transition::Opened => {
                breaker.opened_total += 1;
                tracing::warn!(endpoint, "the model endpoint's circuit opened");
            }
            Transition::Closed => tracing::info!(endpoint, "the model endpoint's circuit closed"),
            Transition::None => {}
        }
    }

    /// When a refused call's endpoint lets a call through again, on the wall clock.
    pub fn wall_time(&self, at_ms: u64) -> OffsetDateTime {
        let ahead = at_ms.saturating_sub(self.now_ms());
        crate::clock::now() + time::Duration::milliseconds(i64::try_from(ahead).unwrap_or(i64::MAX))
    }

    /// The breaker of `endpoint`, as reported now.
    pub fn report_of(&self, endpoint: &str) -> Option<CircuitReport> {
        let now = self.now_ms();
        let breaker = self.by_endpoint.get(endpoint)?.lock().ok()?;
        let snapshot = breaker.circuit.snapshot(now);
        Some(CircuitReport {
            snapshot,
            open_until: snapshot.open_until_ms.map(|at| self.wall_time(at)),
            opened_total: breaker.opened_total,
        })
    }

    /// Every breaker, by endpoint `ref`, sorted: what `/metrics` shows.
    pub fn reports(&self) -> Vec<(String, CircuitReport)> {
        let mut all: Vec<(String, CircuitReport)> = self
            .by_endpoint
            .keys()
            .filter_map(|e| Some((e.clone(), self.report_of(e)?)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> EndpointCatalogue {
        EndpointCatalogue::with_overrides(Vec::new())
    }

    #[test]
    fn a_call_beyond_the_limit_is_refused_until_a_slot_is_freed() {
        let cat = catalogue();
        let endpoint = cat.iter().next().unwrap().reference.clone();
        let slots = UpstreamSlots::new(&cat, &HashMap::from([(endpoint.clone(), 2)]));
        let a = slots.acquire(&endpoint).unwrap();
        let _b = slots.acquire(&endpoint).unwrap();
        let refused = slots.acquire(&endpoint).unwrap_err();
        assert!(
            matches!(&refused, SlotsFull { limit: 2, endpoint: e } if *e == endpoint),
            "{refused:?}"
        );
        drop(a);
        assert!(slots.acquire(&endpoint).unwrap().is_some());
    }

    #[test]
    fn endpoints_without_their_own_number_get_the_default() {
        let cat = catalogue();
        let slots = UpstreamSlots::new(&cat, &HashMap::new());
        let endpoint = &cat.iter().next().unwrap().reference;
        let held: Vec<_> = (0..DEFAULT_MAX_CONCURRENT_CALLS)
            .map(|_| slots.acquire(endpoint).unwrap())
            .collect();
        assert!(slots.acquire(endpoint).is_err());
        drop(held);
        assert!(slots.acquire("no/such-endpoint").unwrap().is_none());
    }
}
