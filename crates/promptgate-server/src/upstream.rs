//! A cap on the calls in flight to each model endpoint (`[[model_endpoints]]
//! max_concurrent_calls`): one slow or stuck provider cannot hold every connection and task of
//! the gateway, and a burst beyond what the provider's own quota allows is refused at once with
//! 429 instead of queueing behind it.
//!
//! A call holds its slot until the provider's answer is complete: for a streamed answer, until
//! the stream ends or the client goes away.

use std::collections::HashMap;
use std::sync::Arc;

use promptgate_core::EndpointCatalogue;
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
