//! The telemetry record of one invocation in progress.

use std::sync::Arc;
use std::time::Instant;

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
