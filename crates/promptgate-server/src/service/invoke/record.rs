//! The telemetry record of one invocation in progress.

use std::sync::Arc;
use std::time::Instant;

use promptgate_core::Prices;
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};

use super::{InvokeError, millis};
use crate::metrics::GatewayMetrics;
use crate::telemetry::TelemetrySink;

/// The record of one invocation in progress: finished exactly once, or, if dropped unfinished
/// (the client disconnected mid-stream), left as an ERROR with code `invocation.aborted`.
pub(super) struct RecordDraft {
    pub(super) sink: Arc<TelemetrySink>,
    pub(super) metrics: Arc<GatewayMetrics>,
    pub(super) prompt_name: String,
    pub(super) base: InvocationRecord,
    pub(super) started: Instant,
    /// The prices of the endpoint that serves the call (the one `base.model` names), from which
    /// [`RecordDraft::finish`] computes the record's cost; whatever changes the serving
    /// endpoint sets both together.
    pub(super) prices: Option<Prices>,
}

impl RecordDraft {
    /// Ends the record: counted in the metrics, queued on the sink, and returned.
    pub(super) fn finish(
        &mut self,
        status: InvocationStatus,
        error_code: Option<String>,
    ) -> InvocationRecord {
        self.base.status = status;
        self.base.error_code = error_code;
        self.base.latency_ms = millis(self.started);
        self.base.cost_usd = cost_usd(self.prices.as_ref(), &self.base);
        let record = self.base.clone();
        self.metrics.observe(&self.prompt_name, &record);
        self.sink.emit(record.clone());
        // Mark as emitted so Drop does not emit again.
        self.base.id.clear();
        record
    }

    /// Ends the record with `err`'s code: BLOCKED for a guardrail's refusal, else ERROR.
    pub(super) fn finish_error(&mut self, err: &InvokeError) {
        let status = match err {
            InvokeError::Blocked(_) => InvocationStatus::Blocked,
            _ => InvocationStatus::Error,
        };
        self.finish(status, Some(err.code().to_owned()));
    }
}

/// The record's cost: computed once, here, from its final token counts; none at an unpriced
/// endpoint, and none if absurd prices overflowed it (a cost that is not a number would poison
/// every sum it enters).
fn cost_usd(prices: Option<&Prices>, record: &InvocationRecord) -> Option<f64> {
    prices
        .map(|p| p.cost_usd(record.prompt_tokens, record.completion_tokens))
        .filter(|cost| cost.is_finite())
}

impl Drop for RecordDraft {
    fn drop(&mut self) {
        if !self.base.id.is_empty() {
            self.finish(
                InvocationStatus::Error,
                Some("invocation.aborted".to_owned()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(prompt_tokens: u32, completion_tokens: u32) -> InvocationRecord {
        InvocationRecord {
            id: "inv-1".into(),
            timestamp: time::OffsetDateTime::UNIX_EPOCH,
            prompt_id: uuid::Uuid::nil(),
            version: "1.0.0".into(),
            model: "m".into(),
            status: InvocationStatus::Success,
            error_code: None,
            latency_ms: 1.0,
            upstream_latency_ms: None,
            time_to_first_token_ms: None,
            prompt_tokens,
            completion_tokens,
            session_id: None,
            client_id: "c".into(),
            metadata: Default::default(),
            label: None,
            variable_names: Vec::new(),
            schema_valid: None,
            tool_call_count: 0,
            api_key_id: None,
            cost_usd: None,
            endpoint_ref: "openai/gpt-4o".to_owned(),
            fallback_attempts: Vec::new(),
        }
    }

    #[test]
    fn the_cost_comes_from_the_serving_endpoints_prices_and_is_never_infinite() {
        let prices = Prices {
            input_per_million: 2.0,
            output_per_million: 8.0,
        };
        // 1500 × 2 / 10⁶ + 250 × 8 / 10⁶ = 0.003 + 0.002.
        assert_eq!(
            cost_usd(Some(&prices), &record(1500, 250)),
            Some(0.003 + 0.002)
        );
        assert_eq!(cost_usd(None, &record(1500, 250)), None, "unpriced");
        assert_eq!(cost_usd(Some(&prices), &record(0, 0)), Some(0.0));
        let absurd = Prices {
            input_per_million: f64::MAX,
            output_per_million: f64::MAX,
        };
        assert_eq!(cost_usd(Some(&absurd), &record(u32::MAX, u32::MAX)), None);
    }
}
