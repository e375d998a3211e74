//! Operations endpoints that need no token: liveness, readiness, the OpenAPI document, and the
//! fallbacks that give unknown routes and methods the contract's error body.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use promptgate_api as api;

use crate::error::ApiError;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = api::HealthStatus)))]
pub async fn healthz() -> Json<api::HealthStatus> {
    Json(api::HealthStatus {
        status: "ok".to_owned(),
    })
}

/// The longest `/readyz` takes to answer, whatever the database does: under Kubernetes' default
/// probe timeout of 1 s, so that an outage reads as a 503 rather than as a probe timeout.
pub const READINESS_BOUND: std::time::Duration = std::time::Duration::from_millis(900);

/// The database answers (checked afresh, within [`READINESS_BOUND`]).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = api::HealthStatus), (status = 503, body = api::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<api::HealthStatus>, ApiError> {
    // The PostgreSQL store bounds its own check (below this); the timeout here holds for any
    // store, a SQLite file on a hung disk included.
    match tokio::time::timeout(READINESS_BOUND, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "readiness check failed");
            return Err(ApiError::Unavailable(
                "the database is not reachable".to_owned(),
            ));
        }
        Err(_) => {
            tracing::warn!(
                bound_ms = READINESS_BOUND.as_millis() as u64,
                "readiness check timed out"
            );
            return Err(ApiError::Unavailable(
                "the database is not reachable".to_owned(),
            ));
        }
    }
    Ok(Json(api::HealthStatus {
        status: "ready".to_owned(),
    }))
}

/// Prometheus metrics: invocation counts, latency and token histograms by prompt, version,
/// model and status, and the telemetry queue's and exporters' health.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
        (status = 401, description = "when [exporters.prometheus] require_token is set", body = api::ErrorBody),
        (status = 404, description = "when [exporters.prometheus] enabled = false", body = api::ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if !state.prometheus.enabled {
        return Err(ApiError::NotFound(
            "no route /metrics (the Prometheus exporter is disabled)".to_owned(),
        ));
    }
    if state.prometheus.require_token {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(ApiError::Unauthorized {
                token_sent: false,
                message: "/metrics needs a bearer token with ai:telemetry:read".to_owned(),
            })?;
        state
            .auth
            .verify(token.trim())
            .await?
            .require(promptgate_core::Scope::TelemetryRead)?;
    }
    let mut text = state
        .metrics
        .render(state.telemetry.counters(), &state.exporter_health);
    crate::metrics::write_counter(
        &mut text,
        "promptgate_failed_logins_total",
        "Failed client authentications at /oauth/token (unknown or disabled client, wrong secret).",
        state.auth.failed_logins(),
    );
    crate::metrics::write_circuits(&mut text, &state.circuits.reports());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Unknown routes are a 404 whether or not a token was sent.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", uri.path()))
}

/// A known path with a method it does not support.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
