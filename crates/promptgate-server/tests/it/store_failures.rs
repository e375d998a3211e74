//! Storage failures become 500/503 ErrorBodies with the request id and no internal detail.

use std::sync::Arc;

use async_trait::async_trait;
use promptgate_audit::{AuditDraft, Hash, SealedEntry, SignedTreeHead};
use promptgate_core::credentials::hash_secret;
use promptgate_core::{Prompt, PromptVersion, ScopeSet, VersionLabel};
use promptgate_store::prelude::*;
use promptgate_store::{
    AccessToken, ApiKey, AuditFilter, Client, PromptFilter, PromptUpdate, StoreError,
    StoredAuditEntry,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::harness::{BASE, DEFAULT_MAX_BODY, create_body, request, send, state, with_body};

/// The bearer token the fake store accepts.
const TOKEN: &str = "fake-store-token-0123456789abcdef";
/// Internal text that must never reach a client.
const INTERNAL_SQL: &str = "SELECT secret FROM clients WHERE path = '/var/lib/x/promptgate.db'";

/// How a fake store method fails.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    /// `StoreError::Database` with SQL and a path in it.
    Internal,
    /// `StoreError::Unavailable(PoolTimedOut)`.
    Unavailable,
}

impl Failure {
    fn error(self) -> StoreError {
        match self {
            Failure::Internal => StoreError::Database(sqlx::Error::Protocol(INTERNAL_SQL.into())),
            Failure::Unavailable => StoreError::Unavailable(sqlx::Error::PoolTimedOut),
        }
    }
}

/// A store that accepts one token and fails everything else as configured.
struct FakeStore {
    /// How data methods (prompts, clients, ping) fail.
    data: Failure,
    /// How `find_token` fails, if it does.
    auth: Option<Failure>,
}

#[async_trait]
impl Store for FakeStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn close(&self) {}
}

#[async_trait]
impl ApiKeyStore for FakeStore {
    async fn insert_api_key(&self, _: &ApiKey, _: &AuditDraft) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn get_api_key(&self, _: &str) -> Result<Option<ApiKey>, StoreError> {
        Err(self.data.error())
    }
    async fn list_api_keys(&self, _: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        Err(self.data.error())
    }
    async fn revoke_api_key(
        &self,
        _: &str,
        _: OffsetDateTime,
        _: &AuditDraft,
    ) -> Result<Option<ApiKey>, StoreError> {
        Err(self.data.error())
    }
    async fn revoked_api_key_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn find_api_key(&self, _: &str) -> Result<Option<ApiKey>, StoreError> {
        match self.auth {
            Some(failure) => Err(failure.error()),
            None => Ok(None),
        }
    }
    async fn record_api_key_use(&self, _: &[(String, OffsetDateTime)]) -> Result<(), StoreError> {
        Err(self.data.error())
    }
}

#[async_trait]
impl ClientStore for FakeStore {
    async fn count_clients(&self) -> Result<i64, StoreError> {
        Err(self.data.error())
    }
    async fn insert_client(&self, _: &Client, _: &AuditDraft) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn get_client(&self, _: &str) -> Result<Option<Client>, StoreError> {
        Err(self.data.error())
    }
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        Err(self.data.error())
    }
    async fn disable_client(
        &self,
        _: &str,
        _: OffsetDateTime,
        _: &AuditDraft,
    ) -> Result<Option<Client>, StoreError> {
        Err(self.data.error())
    }
    async fn disabled_client_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn rotate_client_secret(
        &self,
        _: &str,
        _: &str,
        _: OffsetDateTime,
        _: &AuditDraft,
    ) -> Result<Option<Client>, StoreError> {
        Err(self.data.error())
    }
    async fn secret_rotations(&self) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        Ok(Vec::new())
    }
    async fn insert_token(&self, _: &AccessToken) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn insert_token_bounded(
        &self,
        _: &AccessToken,
        _: u32,
        _: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        Err(self.data.error())
    }
    async fn token_generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(Vec::new())
    }
    async fn find_token(&self, token_hash: &str) -> Result<Option<AccessToken>, StoreError> {
        if let Some(failure) = self.auth {
            return Err(failure.error());
        }
        let now = OffsetDateTime::now_utc();
        Ok((token_hash == hash_secret(TOKEN)).then(|| AccessToken {
            token_hash: token_hash.to_owned(),
            client_id: "fake-client".to_owned(),
            scopes: ScopeSet::all(),
            issued_at: now,
            expires_at: now + time::Duration::hours(1),
        }))
    }
    async fn delete_expired_tokens(&self, _: OffsetDateTime) -> Result<u64, StoreError> {
        Err(self.data.error())
    }
}

#[async_trait]
impl PromptStore for FakeStore {
    async fn create_prompt(
        &self,
        _: &Prompt,
        _: &PromptVersion,
        _: &[AuditDraft],
    ) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn get_prompt(&self, _: Uuid) -> Result<Option<Prompt>, StoreError> {
        Err(self.data.error())
    }
    async fn list_prompts(
        &self,
        _: &PromptFilter,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        Err(self.data.error())
    }
    async fn list_prompt_listings(
        &self,
        _: &PromptFilter,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<Vec<promptgate_store::PromptListing>, StoreError> {
        Err(self.data.error())
    }
    async fn prompt_revisions(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        Err(self.data.error())
    }
    async fn list_versions(&self, _: Uuid) -> Result<Vec<PromptVersion>, StoreError> {
        Err(self.data.error())
    }
    async fn version_labels(&self, _: Uuid) -> Result<Vec<VersionLabel>, StoreError> {
        Err(self.data.error())
    }
    async fn get_version(
        &self,
        _: Uuid,
        _: &VersionLabel,
    ) -> Result<Option<PromptVersion>, StoreError> {
        Err(self.data.error())
    }
    async fn update_prompt(&self, _: &PromptUpdate) -> Result<(), StoreError> {
        Err(self.data.error())
    }
}

#[async_trait]
impl TelemetryStore for FakeStore {
    async fn insert_invocations(
        &self,
        _: &[promptgate_core::invocation::InvocationRecord],
    ) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn list_invocations(
        &self,
        _: &promptgate_store::TelemetryFilter,
        _: Option<i64>,
        _: u32,
    ) -> Result<Vec<promptgate_store::StoredInvocation>, StoreError> {
        Err(self.data.error())
    }
    async fn summary_aggregates(
        &self,
        _: &promptgate_store::TelemetryFilter,
        _: promptgate_store::SummaryGroup,
    ) -> Result<Vec<promptgate_store::VersionAggregate>, StoreError> {
        Err(self.data.error())
    }
    async fn set_feedback(
        &self,
        _: &str,
        _: &promptgate_store::Feedback,
    ) -> Result<bool, StoreError> {
        Err(self.data.error())
    }
    async fn feedback_state(
        &self,
        _: &str,
    ) -> Result<Option<promptgate_store::FeedbackState>, StoreError> {
        Err(self.data.error())
    }
    async fn replace_feedback(
        &self,
        _: &str,
        _: Option<&promptgate_store::Feedback>,
        _: &promptgate_store::Feedback,
        _: Option<&AuditDraft>,
    ) -> Result<bool, StoreError> {
        Err(self.data.error())
    }
    async fn prune_invocations(&self, _: OffsetDateTime) -> Result<u64, StoreError> {
        Err(self.data.error())
    }
}

#[async_trait]
impl OutboxStore for FakeStore {
    async fn last_invocation_seq(&self) -> Result<i64, StoreError> {
        Err(self.data.error())
    }
    async fn exporter_cursor(&self, _: &str) -> Result<i64, StoreError> {
        Err(self.data.error())
    }
    async fn advance_exporter_cursor(
        &self,
        _: &str,
        _: i64,
        _: i64,
        _: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(self.data.error())
    }
    async fn try_acquire_exporter_lease(
        &self,
        _: &str,
        _: &str,
        _: OffsetDateTime,
        _: std::time::Duration,
    ) -> Result<bool, StoreError> {
        Err(self.data.error())
    }
    async fn release_exporter_lease(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn begin_exporter_batch(
        &self,
        _: &str,
        _: &str,
        _: OffsetDateTime,
        _: promptgate_store::PendingBatch,
    ) -> Result<bool, StoreError> {
        Err(self.data.error())
    }
    async fn pending_exporter_batch(
        &self,
        _: &str,
    ) -> Result<Option<promptgate_store::PendingBatch>, StoreError> {
        Err(self.data.error())
    }
}

#[async_trait]
impl AuditStore for FakeStore {
    async fn append_audit(&self, _: &[AuditDraft]) -> Result<Vec<SealedEntry>, StoreError> {
        Err(self.data.error())
    }
    async fn list_audit(
        &self,
        _: &AuditFilter,
        _: Option<u64>,
        _: u32,
    ) -> Result<Vec<StoredAuditEntry>, StoreError> {
        Err(self.data.error())
    }
    async fn get_audit(&self, _: u64) -> Result<Option<StoredAuditEntry>, StoreError> {
        Err(self.data.error())
    }
    async fn last_audit_with_action(
        &self,
        _: &str,
    ) -> Result<Option<StoredAuditEntry>, StoreError> {
        Err(self.data.error())
    }
    async fn audit_size(&self) -> Result<u64, StoreError> {
        Err(self.data.error())
    }
    async fn audit_leaf_hashes(&self, _: u64, _: u64) -> Result<Vec<Hash>, StoreError> {
        Err(self.data.error())
    }
    async fn insert_tree_head(&self, _: &SignedTreeHead) -> Result<(), StoreError> {
        Err(self.data.error())
    }
    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        Err(self.data.error())
    }
    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        Err(self.data.error())
    }
}

async fn router(data: Failure, auth: Option<Failure>) -> axum::Router {
    promptgate_server::app(state(Arc::new(FakeStore { data, auth }), DEFAULT_MAX_BODY).await)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// A request carrying `X-Request-Id: id`.
fn traced(
    mut req: axum::http::Request<axum::body::Body>,
    id: &str,
) -> axum::http::Request<axum::body::Body> {
    req.headers_mut()
        .insert("x-request-id", id.parse().unwrap());
    req
}

/// Fails unless nothing of the internal error shows in the body or the headers.
fn assert_no_internals(answer: &crate::harness::Answer) {
    let mut shown = answer.text();
    for (name, value) in &answer.headers {
        shown.push_str(&format!("\n{name}: {value:?}"));
    }
    for secret in [
        "SELECT",
        "secret FROM",
        "/var/lib",
        "promptgate.db",
        "Protocol",
        "sqlx",
        "PoolTimedOut",
    ] {
        assert!(
            !shown.contains(secret),
            "the answer leaks {secret:?}: {shown}"
        );
    }
}

#[tokio::test]
async fn internal_store_failure_is_a_500_without_internals() {
    let app = router(Failure::Internal, None).await;
    let uri = format!("{BASE}/prompts/{}", Uuid::now_v7());
    let answer = send(
        &app,
        traced(request("GET", &uri, Some(&bearer())), "ctx-internal-1"),
    )
    .await;
    let body = answer.expect_error(500, "internal.server.error");
    assert_eq!(body.context_id, "ctx-internal-1");
    assert_eq!(
        answer.header("x-request-id").as_deref(),
        Some("ctx-internal-1")
    );
    assert!(body.details.is_empty() && body.errors.is_empty());
    assert_no_internals(&answer);
}

#[tokio::test]
async fn internal_failure_on_every_store_backed_route_hides_internals() {
    let app = router(Failure::Internal, None).await;
    let prompt = format!("{BASE}/prompts/{}", Uuid::now_v7());
    let requests = vec![
        request("GET", &format!("{BASE}/prompts"), Some(&bearer())),
        request("GET", &format!("{prompt}/versions"), Some(&bearer())),
        request("GET", &format!("{prompt}/versions/1.0.0"), Some(&bearer())),
        request("DELETE", &prompt, Some(&bearer())),
        with_body(
            "PUT",
            &prompt,
            &bearer(),
            "application/json",
            r#"{"version":"2.0.0","systemPrompt":"x"}"#,
        ),
        with_body(
            "POST",
            &format!("{BASE}/prompts"),
            &bearer(),
            "application/json",
            create_body("support_agent").to_string(),
        ),
        request("GET", "/api/v2/oauth/clients", Some(&bearer())),
        with_body(
            "POST",
            "/api/v2/oauth/clients",
            &bearer(),
            "application/json",
            r#"{"name":"ci","scopes":["ai:prompt:read"]}"#,
        ),
        request(
            "POST",
            "/api/v2/oauth/clients/someone/disable",
            Some(&bearer()),
        ),
        request("GET", &format!("{BASE}/audit-logs"), Some(&bearer())),
        request("GET", &format!("{BASE}/audit-logs/1"), Some(&bearer())),
        request("GET", &format!("{BASE}/audit-logs/verify"), Some(&bearer())),
        request(
            "GET",
            &format!("{BASE}/audit-logs/checkpoint"),
            Some(&bearer()),
        ),
        request(
            "GET",
            &format!("{BASE}/audit-logs/1/proof"),
            Some(&bearer()),
        ),
        request(
            "GET",
            &format!("{BASE}/audit-logs/consistency?from=1"),
            Some(&bearer()),
        ),
        with_body(
            "POST",
            &format!("{BASE}/audit-logs"),
            &bearer(),
            "application/json",
            r#"{"action":"CREATE","details":{"version":"1.0.0"}}"#,
        ),
    ];
    for (i, req) in requests.into_iter().enumerate() {
        let what = format!("{} {}", req.method(), req.uri());
        let id = format!("ctx-route-{i}");
        let answer = send(&app, traced(req, &id)).await;
        assert_eq!(answer.status.as_u16(), 500, "{what}: {}", answer.text());
        let body = answer.expect_error(500, "internal.server.error");
        assert_eq!(body.context_id, id, "{what}");
        assert_no_internals(&answer);
    }
}

#[tokio::test]
async fn unavailable_store_is_a_503() {
    let app = router(Failure::Unavailable, None).await;
    let uri = format!("{BASE}/prompts/{}", Uuid::now_v7());
    let answer = send(
        &app,
        traced(request("GET", &uri, Some(&bearer())), "ctx-unavail-1"),
    )
    .await;
    let body = answer.expect_error(503, "service.unavailable");
    assert_eq!(body.context_id, "ctx-unavail-1");
    assert_no_internals(&answer);
}

#[tokio::test]
async fn a_failing_token_lookup_is_not_a_401() {
    // The token may be fine: the database could not say. Answering 401 would make clients drop
    // a valid token.
    let app = router(Failure::Internal, Some(Failure::Unavailable)).await;
    let uri = format!("{BASE}/prompts");
    let answer = send(&app, request("GET", &uri, Some(&bearer()))).await;
    answer.expect_error(503, "service.unavailable");
    assert_eq!(answer.header("www-authenticate"), None);
    assert_no_internals(&answer);

    let app = router(Failure::Internal, Some(Failure::Internal)).await;
    let answer = send(
        &app,
        traced(request("GET", &uri, Some(&bearer())), "ctx-auth-500"),
    )
    .await;
    let body = answer.expect_error(500, "internal.server.error");
    assert_eq!(body.context_id, "ctx-auth-500");
    assert_no_internals(&answer);
}

#[tokio::test]
async fn readyz_with_a_failing_ping_is_a_503_error_body() {
    for failure in [Failure::Unavailable, Failure::Internal] {
        let app = router(failure, None).await;
        let answer = send(&app, traced(request("GET", "/readyz", None), "ctx-ready")).await;
        let body = answer.expect_error(503, "service.unavailable");
        assert_eq!(body.context_id, "ctx-ready", "{failure:?}");
        assert_no_internals(&answer);
    }
}

#[tokio::test]
async fn healthz_stays_up_while_the_store_fails() {
    let app = router(Failure::Unavailable, Some(Failure::Unavailable)).await;
    let answer = send(&app, request("GET", "/healthz", None)).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    assert_eq!(answer.json(), serde_json::json!({"status": "ok"}));
    assert!(answer.header("x-request-id").is_some());
}
