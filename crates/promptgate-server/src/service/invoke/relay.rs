//! The relay of a provider's stream through the output guardrails, finishing the record.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use futures_util::StreamExt;
use promptgate_core::ToolCall;
use promptgate_core::guardrails::{pii, profanity};
use promptgate_core::invocation::InvocationStatus;
use promptgate_providers::{EventStream, StreamEvent, ToolCallDelta};

use super::record::RecordDraft;
use super::{
    Answer, InvokeError, Prepared, Produced, answer, check_output, millis, provider_error,
};
use crate::telemetry::NotStored;
use crate::tools::guard_arguments;
use crate::upstream::UpstreamSlot;

/// One step of a relayed stream, for each front door to put in its own wire format.
#[derive(Debug)]
pub enum RelayEvent {
    /// Output text, after the guardrails.
    Delta(String),
    /// A piece of a tool call. With output guardrails on, each call comes whole in one piece,
    /// its arguments guarded, just before `Done` (arguments are JSON: they are guarded once
    /// complete, so that a redaction never splits a value).
    ToolCall(ToolCallDelta),
    /// The end: the answer minus its output (boxed: one allocation per stream keeps every
    /// other event small).
    Done(Box<Answer>),
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
    /// The tool calls so far, by index: what `Done` reports and, with guardrails on, what is
    /// relayed once complete.
    calls: Vec<ToolCall>,
    /// The output so far, kept only when it is checked against a JSON output format.
    collected: Option<String>,
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
        // The output is kept only when it is checked against a JSON output format.
        let collected = prepared.output_check.is_some().then(String::new);
        Relay {
            upstream,
            redactor: prepared.redact_output.then(pii::StreamRedactor::new),
            masker: prepared.mask_output.then(profanity::StreamMasker::new),
            pending: VecDeque::new(),
            record: Some(record),
            prepared,
            upstream_started,
            return_token_usage,
            calls: Vec::new(),
            collected,
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
                    if let Some(collected) = &mut self.collected {
                        collected.push_str(&text);
                    }
                    if !text.is_empty() {
                        self.pending.push_back(RelayEvent::Delta(text));
                    }
                }
                Some(Ok(StreamEvent::ToolCall(delta))) => {
                    if record.base.time_to_first_token_ms.is_none() {
                        record.base.time_to_first_token_ms = Some(millis(record.started));
                    }
                    self.gather(&delta);
                    if !self.guards_output() {
                        self.pending.push_back(RelayEvent::ToolCall(delta));
                    }
                }
                Some(Ok(StreamEvent::Done {
                    usage,
                    finish_reason,
                    model,
                })) => {
                    let (tail, mut redactions) = self.flush();
                    if let Some(collected) = &mut self.collected {
                        collected.push_str(&tail);
                    }
                    if !tail.is_empty() {
                        self.pending.push_back(RelayEvent::Delta(tail));
                    }
                    let tool_calls = self.finish_calls(&mut redactions);
                    let mut record = self.record.take()?;
                    record.base.upstream_latency_ms = Some(millis(self.upstream_started));
                    if !model.is_empty() {
                        record.base.model = model;
                    }
                    let output = self.collected.take().unwrap_or_default();
                    let produced = Produced {
                        output_check: check_output(&self.prepared, &output, &tool_calls),
                        output: None,
                        output_redactions: redactions,
                        usage,
                        finish_reason,
                        tool_calls,
                    };
                    produced.record_into(&mut record.base);
                    let finished = record.finish(InvocationStatus::Success, None);
                    // `ack-after-store`: `done` only once the record is committed, else an
                    // error event in its place (telemetry.rs).
                    if let Err(NotStored(message)) = record.sink.stored(&finished.id).await {
                        self.pending
                            .push_back(RelayEvent::Failed(InvokeError::NotStored(message)));
                        continue;
                    }
                    let done = answer(finished, &self.prepared, produced, self.return_token_usage);
                    self.pending.push_back(RelayEvent::Done(Box::new(done)));
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

    /// Whether output guardrails apply (tool calls are then relayed whole, guarded).
    fn guards_output(&self) -> bool {
        self.prepared.redact_output || self.prepared.mask_output
    }

    /// Adds a piece of a tool call to the calls so far.
    fn gather(&mut self, delta: &ToolCallDelta) {
        let index = delta.index as usize;
        if self.calls.len() <= index {
            // A provider numbers its calls from 0 without gaps; a gap is left empty rather
            // than trusted to allocate without bound.
            if index > promptgate_core::tools::MAX_TOOLS * 4 {
                return;
            }
            self.calls.resize_with(index + 1, || ToolCall {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        }
        let call = &mut self.calls[index];
        if let Some(id) = &delta.id {
            call.id.clone_from(id);
        }
        if let Some(name) = &delta.name {
            call.name.clone_from(name);
        }
        call.arguments.push_str(&delta.arguments_delta);
    }

    /// The complete calls; with guardrails on, their arguments guarded and each relayed whole.
    fn finish_calls(&mut self, redactions: &mut BTreeMap<String, u32>) -> Vec<ToolCall> {
        let mut calls = std::mem::take(&mut self.calls);
        calls.retain(|call| !call.name.is_empty() || !call.arguments.is_empty());
        if self.guards_output() {
            for (index, call) in calls.iter_mut().enumerate() {
                call.arguments = guard_arguments(
                    &call.arguments,
                    self.prepared.redact_output,
                    self.prepared.mask_output,
                    redactions,
                );
                self.pending.push_back(RelayEvent::ToolCall(ToolCallDelta {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    id: Some(call.id.clone()),
                    name: Some(call.name.clone()),
                    arguments_delta: call.arguments.clone(),
                }));
            }
        }
        calls
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
