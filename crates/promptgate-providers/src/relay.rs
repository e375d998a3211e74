//! Relays a provider's server-sent events as [`StreamEvent`]s, one body chunk at a time.
//!
//! The relay owns the response body and nothing else runs on its behalf (no spawned task), so
//! dropping the [`EventStream`] drops the body, which closes the connection and so cancels the
//! generation upstream.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};

use crate::sse::{SseDecoder, SseEvent};
use crate::transport::scrub;
use crate::{EventStream, ProviderError, StreamEvent};

/// What a provider's stream format makes of each event.
pub(crate) trait StreamParser: Send + 'static {
    /// Pushes the stream events `event` carries (none, one, or several: one chunk may carry
    /// pieces of several tool calls) onto `out`; `Done` ends the relay, as does an error.
    fn event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<(), ProviderError>;

    /// What the body ending before `Done` means.
    fn end(&mut self) -> Result<StreamEvent, ProviderError>;
}

struct Relay<P> {
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
    /// Events parsed and not yet handed out.
    ready: VecDeque<StreamEvent>,
    parser: P,
    idle: Duration,
    key: Option<String>,
}

/// Relays `response`'s events through `parser`. `idle` bounds the wait for each chunk, so a
/// provider that stalls mid-answer ends the stream with [`ProviderError::Timeout`].
pub(crate) fn relay<P: StreamParser>(
    response: reqwest::Response,
    parser: P,
    idle: Duration,
    key: Option<String>,
) -> EventStream {
    let relay = Relay {
        body: Some(response.bytes_stream().boxed()),
        decoder: SseDecoder::default(),
        pending: VecDeque::new(),
        ready: VecDeque::new(),
        parser,
        idle,
        key,
    };
    futures_util::stream::unfold(relay, |mut relay| async move {
        let item = relay.next().await?;
        Some((item, relay))
    })
    .boxed()
}

impl<P: StreamParser> Relay<P> {
    /// The next event, or `None` once the stream has ended.
    async fn next(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            let body = self.body.as_mut()?;
            if let Some(event) = self.ready.pop_front() {
                if !matches!(event, StreamEvent::Done { .. }) {
                    return Some(Ok(event));
                }
                // The body usually ends right after the last event; reading that end now,
                // without waiting, returns the connection to the pool.
                let _ = body.next().now_or_never();
                self.body = None;
                self.ready.clear();
                return Some(Ok(event));
            }
            if let Some(event) = self.pending.pop_front() {
                if let Err(error) = self.parser.event(&event, &mut self.ready) {
                    return self.finish(error);
                }
                continue;
            }
            match tokio::time::timeout(self.idle, body.next()).await {
                Ok(Some(Ok(chunk))) => self.decoder.feed(&chunk, &mut self.pending),
                Ok(Some(Err(err))) => {
                    return self.finish(ProviderError::Upstream {
                        status: None,
                        message: format!("the stream broke: {}", err.without_url()),
                    });
                }
                Ok(None) => {
                    self.body = None;
                    return match self.parser.end() {
                        Ok(done) => Some(Ok(done)),
                        Err(error) => self.finish(error),
                    };
                }
                Err(_) => return self.finish(ProviderError::Timeout),
            }
        }
    }

    /// Ends the relay with `error`, its text scrubbed of the key: a provider may quote the
    /// request back in an error event.
    fn finish(&mut self, error: ProviderError) -> Option<Result<StreamEvent, ProviderError>> {
        self.body = None;
        Some(Err(scrub(error, self.key.as_deref())))
    }
}
