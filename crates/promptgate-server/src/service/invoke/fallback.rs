//! The endpoints an invocation tries in order: the version's (or the caller's on `/v1`), then
//! the version's `fallbackEndpointRefs` when the one before failed in a way that is the
//! endpoint's fault, each behind its circuit breaker and its own call slots.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use promptgate_core::circuit::Admission;
use promptgate_core::invocation::FallbackAttempt;
use promptgate_core::{ModelEndpoint, PromptVersion};
use promptgate_providers::{ChatResponse, EventStream, Provider, ProviderError};

use super::record::RecordDraft;
use super::{Invocation, InvokeError, Prepared, Staged, millis, provider_error};
use crate::state::AppState;
use crate::upstream::{Outcome, SlotsFull, UpstreamSlot};

/// The error code of a fallback attempt refused by its endpoint's open circuit.
pub(super) const CIRCUIT_OPEN: &str = "upstream.circuit_open";

/// Why one endpoint did not serve, and whether the next one may be tried.
pub(super) struct Failure {
    /// The answer if this stays the last failure.
    pub(super) err: InvokeError,
    /// The attempt's error code (`upstream.circuit_open` where the answer says
    /// `upstream.error`).
    code: &'static str,
    /// Whether the endpoint is at fault (not the request): only then the next one is tried.
    falls_back: bool,
}

impl Failure {
    fn from_provider(err: ProviderError, endpoint_ref: &str) -> Self {
        let falls_back = endpoint_at_fault(&err);
        let err = provider_error(err, endpoint_ref);
        Failure {
            code: err.code(),
            err,
            falls_back,
        }
    }
}

/// Whether a provider's failure is the endpoint's rather than the request's: 5xx, 429, 408,
/// 401/403/404 (the endpoint's key or model is wrong), a timeout, a connection error, a
/// missing key, an answer it cannot read. Any other 4xx (400, 413, 422, …) the request caused.
pub(super) fn endpoint_at_fault(err: &ProviderError) -> bool {
    match err {
        ProviderError::Timeout | ProviderError::MissingKey { .. } | ProviderError::Invalid(_) => {
            true
        }
        ProviderError::Upstream { status: None, .. } => true,
        ProviderError::Upstream {
            status: Some(status),
            ..
        } => *status >= 500 || matches!(status, 401 | 403 | 404 | 408 | 429),
    }
}

/// The endpoints of one invocation and the request fitted to the one being tried.
pub(super) struct Chain<'a> {
    state: &'a AppState,
    request: &'a Invocation,
    version: &'a PromptVersion,
    staged: Staged,
    current: &'a ModelEndpoint,
    /// The request for `current`.
    pub(super) prepared: Prepared,
    /// The fallbacks not tried yet, in order (none when the caller chose the endpoint).
    rest: std::slice::Iter<'a, String>,
}

impl<'a> Chain<'a> {
    /// The chain starting at `first`'s endpoint.
    pub(super) fn new(
        state: &'a AppState,
        request: &'a Invocation,
        version: &'a PromptVersion,
        endpoint: &'a ModelEndpoint,
        staged: Staged,
        first: Prepared,
    ) -> Self {
        // A caller who chose the endpoint (`/v1`, when the prompt allows it) gets that one.
        let fallbacks: &'a [String] = if request.overrides.model_endpoint.is_some() {
            &[]
        } else {
            &version.settings.fallback_endpoint_refs
        };
        Chain {
            state,
            request,
            version,
            staged,
            current: endpoint,
            prepared: first,
            rest: fallbacks.iter(),
        }
    }

    /// The request that was sent last and its endpoint (the one that served, once a call
    /// succeeded).
    pub(super) fn finish(self) -> (Prepared, &'a ModelEndpoint) {
        (self.prepared, self.current)
    }

    /// Moves on after `failure` of the current endpoint: to the next fallback that fits the
    /// request (a fallback whose window is too small is skipped as an attempt with code
    /// `context.window.exceeded`), recording the attempts and counting each move. `Err` with
    /// the answer when there is none, or when the failure was the request's fault.
    pub(super) fn next(
        &mut self,
        failure: Failure,
        record: &mut RecordDraft,
    ) -> Result<(), InvokeError> {
        if !failure.falls_back {
            return Err(failure.err);
        }
        let mut from = self.current.reference.clone();
        // With fallbacks configured every failed endpoint is an attempt, the last one too.
        if self.prepared.has_fallbacks {
            record.base.fallback_attempts.push(FallbackAttempt {
                endpoint_ref: from.clone(),
                error_code: failure.code.to_owned(),
            });
        }
        for reference in self.rest.by_ref() {
            self.state
                .metrics
                .count_fallback(&record.prompt_name, &from, reference);
            from.clone_from(reference);
            record.base.endpoint_ref.clone_from(reference);
            let Some(endpoint) = self.state.catalogue.get(reference) else {
                // Checked when the version was made; the configuration changed since.
                record.base.fallback_attempts.push(FallbackAttempt {
                    endpoint_ref: reference.clone(),
                    error_code: "upstream.error".to_owned(),
                });
                continue;
            };
            match self
                .staged
                .fit(self.state, self.request, self.version, endpoint)
            {
                Ok(prepared) => {
                    self.current = endpoint;
                    self.prepared = prepared;
                    record.base.model.clone_from(&endpoint.model);
                    // The cost is the serving endpoint's (`RecordDraft::finish`).
                    record.prices = endpoint.prices;
                    return Ok(());
                }
                Err(err) => record.base.fallback_attempts.push(FallbackAttempt {
                    endpoint_ref: reference.clone(),
                    error_code: err.code().to_owned(),
                }),
            }
        }
        // None left, or every one left was skipped: the answer is the last endpoint's failure
        // (a skipped fallback is no upstream answer).
        Err(failure.err)
    }
}

/// An endpoint ready to be called: its provider, its breaker's admission and a call slot.
struct Admitted<'s> {
    provider: &'s Arc<dyn Provider>,
    admission: Admission,
    slot: Option<UpstreamSlot>,
}

/// The endpoint's provider, its breaker's admission and one of its call slots.
fn admit<'s>(state: &'s AppState, endpoint_ref: &str) -> Result<Admitted<'s>, Failure> {
    let provider = state.providers.get(endpoint_ref).ok_or_else(|| Failure {
        err: InvokeError::Internal(format!("no provider for {endpoint_ref}")),
        code: "internal.server.error",
        falls_back: false,
    })?;
    let admission = state.circuits.admit(endpoint_ref);
    if let Admission::Refused { retry_at_ms } = admission {
        let at = crate::clock::rfc3339(state.circuits.wall_time(retry_at_ms));
        return Err(Failure {
            err: InvokeError::Upstream(format!(
                "the model endpoint {endpoint_ref} failed repeatedly, so its circuit is open: it is not called until {at}"
            )),
            code: CIRCUIT_OPEN,
            falls_back: true,
        });
    }
    match state.upstream_slots.acquire(endpoint_ref) {
        Ok(slot) => Ok(Admitted {
            provider,
            admission,
            slot,
        }),
        Err(SlotsFull { endpoint, limit }) => {
            state
                .circuits
                .report(endpoint_ref, admission, Outcome::Abandoned);
            let err = InvokeError::Busy { endpoint, limit };
            Err(Failure {
                code: err.code(),
                err,
                falls_back: true,
            })
        }
    }
}

/// Tells the endpoint's breaker how a call ended.
fn report(state: &AppState, endpoint_ref: &str, admission: Admission, err: Option<&ProviderError>) {
    let outcome = match err {
        Some(err) if endpoint_at_fault(err) => Outcome::Failed,
        _ => Outcome::Answered,
    };
    state.circuits.report(endpoint_ref, admission, outcome);
}

/// One whole call to the chain's current endpoint.
pub(super) async fn complete_once(
    state: &AppState,
    prepared: &Prepared,
    record: &mut RecordDraft,
) -> Result<ChatResponse, Failure> {
    let endpoint_ref = &prepared.endpoint_ref;
    let Admitted {
        provider,
        admission,
        slot: _slot,
    } = admit(state, endpoint_ref)?;
    let upstream_started = Instant::now();
    let result = provider.complete(&prepared.chat).await;
    record.base.upstream_latency_ms = Some(millis(upstream_started));
    report(state, endpoint_ref, admission, result.as_ref().err());
    result.map_err(|err| Failure::from_provider(err, endpoint_ref))
}

/// A stream opened on the chain's current endpoint, with its first event read: an error
/// before anything reached the client still falls back; after it, none does.
pub(super) struct Opened {
    pub(super) upstream: EventStream,
    pub(super) slot: Option<UpstreamSlot>,
    pub(super) upstream_started: Instant,
}

/// Opens a stream on the chain's current endpoint and, when the version has fallbacks, reads
/// its first event (an error there still falls back).
pub(super) async fn stream_once(state: &AppState, prepared: &Prepared) -> Result<Opened, Failure> {
    let endpoint_ref = &prepared.endpoint_ref;
    let Admitted {
        provider,
        admission,
        slot,
    } = admit(state, endpoint_ref)?;
    let upstream_started = Instant::now();
    if !prepared.has_fallbacks {
        // Nothing to fall back to: the stream is relayed as it opens, without waiting for its
        // first event (which would delay the response head by the model's first token).
        return match provider.stream(&prepared.chat).await {
            Ok(upstream) => {
                report(state, endpoint_ref, admission, None);
                Ok(Opened {
                    upstream,
                    slot,
                    upstream_started,
                })
            }
            Err(err) => {
                report(state, endpoint_ref, admission, Some(&err));
                Err(Failure::from_provider(err, endpoint_ref))
            }
        };
    }
    let first = match provider.stream(&prepared.chat).await {
        Ok(mut upstream) => upstream.next().await.map(|first| (first, upstream)),
        Err(err) => Some((Err(err), futures_util::stream::empty().boxed())),
    };
    match first {
        Some((Ok(event), rest)) => {
            report(state, endpoint_ref, admission, None);
            Ok(Opened {
                upstream: futures_util::stream::once(async move { Ok(event) })
                    .chain(rest)
                    .boxed(),
                slot,
                upstream_started,
            })
        }
        Some((Err(err), _)) => {
            report(state, endpoint_ref, admission, Some(&err));
            Err(Failure::from_provider(err, endpoint_ref))
        }
        None => {
            state
                .circuits
                .report(endpoint_ref, admission, Outcome::Failed);
            Err(Failure {
                err: InvokeError::Upstream(format!(
                    "the model endpoint {endpoint_ref} ended its stream before its first event"
                )),
                code: "upstream.error",
                falls_back: true,
            })
        }
    }
}
