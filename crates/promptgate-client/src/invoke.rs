//! Invocations: one answer, or a stream of `delta` events ending with `done`.

use futures_util::stream::{self, BoxStream, StreamExt};
use promptgate_api::{BASE_PATH, InvokeRequest, InvokeResponse, StreamDelta};
use reqwest::Method;

use crate::client::{Call, Client};
use crate::error::Error;

/// One event of a streamed invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeEvent {
    /// The next piece of output, after the gateway's output guardrails.
    Delta(String),
    /// The end: the answer without `output` (boxed: it is much larger than a delta).
    Done(Box<InvokeResponse>),
}

impl Client {
    /// Invokes a prompt and waits for the whole answer. Like every POST it is not retried on
    /// 5xx unless the client was built with `retry_non_idempotent(true)` (the model may have
    /// run); a 429 is retried as the gateway asks.
    pub async fn invoke(&self, request: &InvokeRequest) -> Result<InvokeResponse, Error> {
        let mut request = request.clone();
        let mut options = request.options.take().unwrap_or_default();
        options.stream = Some(false);
        request.options = Some(options);
        self.send(invoke_call(&request)?).await?.json()
    }

    /// Invokes a prompt and streams its answer as it is generated. Dropping the stream closes
    /// the connection, which cancels the model's generation at the gateway.
    pub async fn invoke_stream(
        &self,
        request: &InvokeRequest,
    ) -> Result<BoxStream<'static, Result<InvokeEvent, Error>>, Error> {
        let mut request = request.clone();
        let mut options = request.options.take().unwrap_or_default();
        options.stream = Some(true);
        request.options = Some(options);
        let mut call = invoke_call(&request)?;
        call.streaming = true;
        let response = self.send_raw(call).await?;
        let bytes = response.bytes_stream();
        let parser = SseParser::default();
        Ok(stream::unfold(
            (bytes, parser, false),
            |(mut bytes, mut parser, finished)| async move {
                if finished {
                    return None;
                }
                loop {
                    if let Some(event) = parser.next_event() {
                        let done = !matches!(event, Ok(InvokeEvent::Delta(_)));
                        return Some((event, (bytes, parser, done)));
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => parser.feed(&chunk),
                        Some(Err(err)) => {
                            return Some((Err(Error::Transport(err)), (bytes, parser, true)));
                        }
                        None => {
                            let err =
                                Error::Decode("the stream ended before its done event".to_owned());
                            return Some((Err(err), (bytes, parser, true)));
                        }
                    }
                }
            },
        )
        .boxed())
    }
}

fn invoke_call(request: &InvokeRequest) -> Result<Call, Error> {
    let body = serde_json::to_value(request)
        .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))?;
    Ok(Call::with(
        Method::POST,
        format!("{BASE_PATH}/invocations"),
        Some(body),
    ))
}

/// A minimal server-sent-events parser: `event:` and `data:` lines, dispatched at a blank line.
#[derive(Debug, Default)]
struct SseParser {
    buffer: String,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
    }

    fn next_event(&mut self) -> Option<Result<InvokeEvent, Error>> {
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let name = self.event.take().unwrap_or_else(|| "message".to_owned());
                let data = std::mem::take(&mut self.data).join("\n");
                if let Some(event) = decode(&name, &data) {
                    return Some(event);
                }
            } else if let Some(value) = line.strip_prefix("event:") {
                self.event = Some(value.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
            // Comments (`:`, keep-alives) and other fields are ignored.
        }
        None
    }
}

fn decode(name: &str, data: &str) -> Option<Result<InvokeEvent, Error>> {
    let bad = |e: serde_json::Error| {
        Error::Decode(format!("a {name} event is not the expected JSON: {e}"))
    };
    match name {
        "delta" => Some(
            serde_json::from_str::<StreamDelta>(data)
                .map(|d| InvokeEvent::Delta(d.text))
                .map_err(bad),
        ),
        "done" => Some(
            serde_json::from_str::<InvokeResponse>(data)
                .map(|done| InvokeEvent::Done(Box::new(done)))
                .map_err(bad),
        ),
        "error" => {
            let value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            Some(Err(Error::Api {
                status: value["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(502),
                code: value["code"]
                    .as_str()
                    .unwrap_or("upstream.error")
                    .to_owned(),
                message: value["message"].as_str().unwrap_or(data).to_owned(),
                context_id: None,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut parser = SseParser::default();
        parser.feed(b"event: delta\ndata: {\"te");
        assert!(parser.next_event().is_none());
        parser.feed(
            b"xt\":\"Hel\"}\n\n: keep-alive\n\nevent: delta\r\ndata: {\"text\":\"lo\"}\r\n\r\n",
        );
        assert_eq!(
            parser.next_event().unwrap().unwrap(),
            InvokeEvent::Delta("Hel".into())
        );
        assert_eq!(
            parser.next_event().unwrap().unwrap(),
            InvokeEvent::Delta("lo".into())
        );
        assert!(parser.next_event().is_none());
        parser.feed(b"event: error\ndata: {\"status\":504,\"code\":\"upstream.timeout\",\"message\":\"slow\"}\n\n");
        match parser.next_event().unwrap() {
            Err(Error::Api { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (504, "upstream.timeout"))
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }
}
