//! Per-client rate limits (`[rate_limits]`): a client over its burst gets 429
//! `too.many.requests` with `Retry-After` and the `inin-ratelimit-*` headers, other clients keep
//! their own budget, and a per-client override gives one client a bigger bucket.
//!
//! The rate is one token per 20 s so that a slow machine cannot refill the bucket between the
//! "quick" requests; nothing here measures wall-clock time.

use crate::harness::*;

#[tokio::test]
async fn fourth_quick_request_is_refused_with_headers_and_others_are_unaffected() {
    let admin_id = uuid::Uuid::new_v4().to_string();
    let config = format!(
        "[rate_limits]\nrequests_per_second = 0.05\nburst = 3\n\
         [rate_limits.clients.\"{admin_id}\"]\nburst = 50\n"
    );
    let server = Server::start_with(Options {
        admin: Admin::Env {
            id: admin_id,
            secret: random_secret(),
        },
        ..Options::with_config(&config)
    });
    let admin = server.admin_token().await;
    let (a_id, a_secret) = server
        .create_client(&admin, "limited-a", &["ai:prompt:read"])
        .await;
    let (b_id, b_secret) = server
        .create_client(&admin, "limited-b", &["ai:prompt:read"])
        .await;
    let a = server.token(&a_id, &a_secret, None).await;
    let b = server.token(&b_id, &b_secret, None).await;

    // A bad token is refused before the limit and does not use anyone's budget.
    server
        .get(PROMPTS, Some("not-a-token"))
        .await
        .error(401, "unauthorized");

    for _ in 0..3 {
        server.get(PROMPTS, Some(&a)).await.ok(200);
    }
    let refused = server.get(PROMPTS, Some(&a)).await;
    let body = refused.error(429, "too.many.requests");
    assert_eq!(body["messageParams"]["allowed"], "3", "{refused}");
    let retry_after: u64 = refused
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {refused}"))
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After is not whole seconds ({e}): {refused}"));
    assert!((1..=20).contains(&retry_after), "{refused}");
    assert_eq!(
        refused.header("inin-ratelimit-allowed").as_deref(),
        Some("3")
    );
    assert_eq!(refused.header("inin-ratelimit-count").as_deref(), Some("3"));
    assert_eq!(
        refused.header("inin-ratelimit-reset"),
        Some(retry_after.to_string()),
        "{refused}"
    );
    // Still refused: a refusal does not take a token, nor give one back.
    server
        .get(PROMPTS, Some(&a))
        .await
        .error(429, "too.many.requests");

    // Client B has its own bucket.
    for _ in 0..3 {
        server.get(PROMPTS, Some(&b)).await.ok(200);
    }

    // The admin's override (burst 50, the section's rate) lets it go well past 3.
    for _ in 0..20 {
        server.get(PROMPTS, Some(&admin)).await.ok(200);
    }
}

#[tokio::test]
async fn without_the_section_nothing_is_limited_and_an_override_keeps_the_default_burst() {
    let server = Server::start();
    let admin = server.admin_token().await;
    // More than the contract's default burst of 100, back to back.
    for _ in 0..120 {
        server.get(PROMPTS, Some(&admin)).await.ok(200);
    }
    assert!(
        server.log().contains("no [rate_limits]"),
        "{}",
        server.log()
    );

    // An override of the rate only keeps the contract's default burst of 100.
    let admin_id = uuid::Uuid::new_v4().to_string();
    let config = format!(
        "[rate_limits]\n[rate_limits.clients.\"{admin_id}\"]\nrequests_per_second = 0.05\n"
    );
    let server = Server::start_with(Options {
        admin: Admin::Env {
            id: admin_id,
            secret: random_secret(),
        },
        ..Options::with_config(&config)
    });
    let admin = server.admin_token().await;
    for _ in 0..100 {
        server.get(PROMPTS, Some(&admin)).await.ok(200);
    }
    let refused = server.get(PROMPTS, Some(&admin)).await;
    refused.error(429, "too.many.requests");
    assert_eq!(
        refused.header("inin-ratelimit-allowed").as_deref(),
        Some("100")
    );
}
