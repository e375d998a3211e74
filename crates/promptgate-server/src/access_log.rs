//! The access log: one info line per request, so that the `contextId` an answer carries (a 4xx
//! included) can always be found in the log, with who asked and how long it took.
//!
//! The line is written when the response head leaves the handler: for a stream that is when
//! its first byte is ready, not when it ends. `[server] access_log = false` removes the layer.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Where the authentication extractor leaves the caller's client id for this request's line.
///
/// The access log runs outside the handler, which is where the token is checked; this slot,
/// put into the request's extensions before the handler runs, carries the id back out.
#[derive(Clone, Default)]
pub struct ClientSlot(Arc<OnceLock<String>>);

impl ClientSlot {
    /// Records the authenticated client's id (the first call wins).
    pub fn record(&self, client_id: &str) {
        let _ = self.0.set(client_id.to_owned());
    }
}

/// The middleware: writes `method route status duration_ms request_id client_id` at info on
/// the `promptgate::access` target. The route is the matched template (`…/prompts/{id}`), not
/// the caller's path, except for unknown routes; everything a caller chose (an unknown path,
/// the request id it sent, the client id) is written escaped, so it cannot forge a line.
pub async fn log_requests(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Cheap clones (an `Arc<str>`, a `Bytes`): nothing is copied unless the line is written.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let unmatched_path = route.is_none().then(|| request.uri().path().to_owned());
    let request_id = request.headers().get("x-request-id").cloned();
    let slot = ClientSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let request_id = request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let client_id = slot.0.get().map_or("-", String::as_str);
    let status = response.status().as_u16();
    // An unknown route is logged by its path, escaped: the caller chose it.
    let route = route.as_ref().map_or("-", MatchedPath::as_str);
    tracing::info!(
        target: "promptgate::access",
        %method,
        %route,
        path = unmatched_path.as_ref().map(tracing::field::debug),
        status,
        duration_ms = format_args!("{duration_ms:.3}"),
        request_id = ?request_id,
        client_id = ?client_id,
        "request"
    );
    response
}
