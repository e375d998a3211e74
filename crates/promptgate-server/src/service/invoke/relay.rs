//! The relay of a provider's stream through the output guardrails, finishing the record.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use futures_util::StreamExt;
use promptgate_core::guardrails::{pii, profanity};
use promptgate_core::invocation::InvocationStatus;
use promptgate_providers::{EventStream, StreamEvent};

use super::record::RecordDraft;
use super::{Answer, InvokeError, Prepared, answer, millis, provider_error};
use crate::telemetry::NotStored;
use crate::upstream::UpstreamSlot;

/// One step of a relayed stream, for each front door to put in its own wire format.
#[derive(Debug)]
pub enum RelayEvent {
    /// Output text, after the guardrails.
    Delta(String),
    /// The end: the answer minus its output.
    Done(Answer),
    /// The provider failed mid-stream, or the record was not stored under `ack-after-store`
    /// (the record is then an ERROR, or already stored as a success).
    Failed(InvokeError),
}

/// Relays a provider's stream as `delta` events through the output guardrails, then `done`.
/// Dropping it (the client went away) drops the upstream stream, which cancels the provider
/// request, and leaves an ERROR record.
pub struct Relay {
    upstream: EventStream,
    redactor: Option<pii::StreamRedactor>,
    masker: Option<profanity::StreamMasker>,
    pending: VecDeque<RelayEvent>,
    record: Option<RecordDraft>,
    prepared: Prepared,
    upstream_started: Instant,
    return_token_usage: bool,
    /// The endpoint's call slot, held until the relay ends (or the client goes away).
    _slot: Option<UpstreamSlot>,
}

impl Relay {
    /// A relay of `upstream`, with the output guardrails `prepared` asks for.
    pub(super) fn new(
        upstream: EventStream,
        prepared: Prepared,
        record: RecordDraft,
        upstream_started: Instant,
        return_token_usage: bool,
        slot: Option<UpstreamSlot>,
    ) -> Self {
        Relay {
            upstream,
            redactor: prepared.redact_output.then(pii::StreamRedactor::new),
            masker: prepared.mask_output.then(profanity::StreamMasker::new),
            pending: VecDeque::new(),
            record: Some(record),
            prepared,
            upstream_started,
            return_token_usage,
            _slot: slot,
        }
    }

    /// The next step; `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<RelayEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            // Once the record is finished the stream is over.
            let record = self.record.as_mut()?;
            match self.upstream.next().await {
                Some(Ok(StreamEvent::Delta(text))) => {
                    if record.base.time_to_first_token_ms.is_none() {
                        record.base.time_to_first_token_ms = Some(millis(record.started));
                    }
                    let text = self.filter(&text);
                    if !text.is_empty() {
                        self.pending.push_back(RelayEvent::Delta(text));
                    }
                }
                // No request the gateway builds defines tools yet (see `prepare`), so no
                // provider streams a call; there is nothing to relay.
                Some(Ok(StreamEvent::ToolCall(_))) => {}
                Some(Ok(StreamEvent::Done {
                    usage,
                    finish_reason,
                    model,
                })) => {
                    let (tail, redactions) = self.flush();
                    if !tail.is_empty() {
                        self.pending.push_back(RelayEvent::Delta(tail));
                    }
                    let mut record = self.record.take()?;
                    record.base.upstream_latency_ms = Some(millis(self.upstream_started));
                    if !model.is_empty() {
                        record.base.model = model;
                    }
                    record.base.prompt_tokens = usage.prompt_tokens;
                    record.base.completion_tokens = usage.completion_tokens;
                    let finished = record.finish(InvocationStatus::Success, None);
                    // `ack-after-store`: `done` only once the record is committed, else an
                    // error event in its place (telemetry.rs).
                    if let Err(NotStored(message)) = record.sink.stored(&finished.id).await {
                        self.pending
                            .push_back(RelayEvent::Failed(InvokeError::NotStored(message)));
                        continue;
                    }
                    let done = answer(
                        finished,
                        &self.prepared,
                        redactions,
                        usage,
                        finish_reason,
                        None,
                        self.return_token_usage,
                    );
                    self.pending.push_back(RelayEvent::Done(done));
                }
                Some(Err(err)) => {
                    let mut record = self.record.take()?;
                    record.base.upstream_latency_ms = Some(millis(self.upstream_started));
                    let err = provider_error(err, &self.prepared.endpoint_ref);
                    record.finish_error(&err);
                    self.pending.push_back(RelayEvent::Failed(err));
                }
                None => {
                    let mut record = self.record.take()?;
                    let err = InvokeError::Upstream(format!(
                        "the model endpoint {} ended its stream without finishing",
                        self.prepared.endpoint_ref
                    ));
                    record.finish_error(&err);
                    self.pending.push_back(RelayEvent::Failed(err));
                }
            }
        }
    }

    /// Passes a chunk through the stream guardrails (PII first, then profanity).
    fn filter(&mut self, text: &str) -> String {
        let redacted = match &mut self.redactor {
            Some(r) => r.push(text),
            None => text.to_owned(),
        };
        match &mut self.masker {
            Some(m) => m.push(&redacted),
            None => redacted,
        }
    }

    /// What the guardrails held back, once the upstream is done, and the output redaction
    /// counts of the whole stream.
    fn flush(&mut self) -> (String, BTreeMap<String, u32>) {
        let mut redactions = BTreeMap::new();
        let tail = match self.redactor.take() {
            Some(r) => {
                let rest = r.finish_redacted();
                for (label, n) in rest.counts {
                    redactions.insert(label.to_owned(), n);
                }
                rest.text
            }
            None => String::new(),
        };
        let tail = match self.masker.take() {
            Some(mut m) => {
                let mut out = m.push(&tail);
                let rest = m.finish_masked();
                out.push_str(&rest.text);
                if rest.count > 0 {
                    redactions.insert("PROFANITY".to_owned(), rest.count);
                }
                out
            }
            None => tail,
        };
        (tail, redactions)
    }
}
