//! 401 and 403 on API routes: the ErrorBody and the RFC 6750 `WWW-Authenticate` challenge.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use promptgate_server::auth::{LockedBy, TokenError};

use crate::harness::{BASE, TestApp, request, send};

fn prompts() -> String {
    format!("{BASE}/prompts")
}

#[tokio::test]
async fn no_authorization_is_a_401_challenge_without_error() {
    let app = TestApp::new().await;
    for (method, uri) in [
        ("GET", prompts()),
        ("GET", format!("{BASE}/model-endpoints")),
        ("GET", "/api/v2/oauth/clients".to_owned()),
    ] {
        let answer = send(&app.router, request(method, &uri, None)).await;
        answer.expect_error(401, "unauthorized");
        assert_eq!(
            answer.header("www-authenticate").as_deref(),
            Some(r#"Bearer realm="promptgate""#),
            "{method} {uri}"
        );
    }
}

#[tokio::test]
async fn a_bad_bearer_token_is_a_401_with_invalid_token() {
    let app = TestApp::new().await;
    // A garbage token, a token with one character changed, and an empty one.
    let mut altered = app.token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for authorization in [
        "Bearer garbage".to_owned(),
        format!("Bearer {altered}"),
        "Bearer ".to_owned(),
    ] {
        let answer = send(
            &app.router,
            request("GET", &prompts(), Some(&authorization)),
        )
        .await;
        answer.expect_error(401, "unauthorized");
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{authorization:?}: {challenge}"
        );
    }
    // The real token works, and the scheme name is case-insensitive (RFC 7235).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let authorization = format!("{scheme} {}", app.token);
        let answer = send(
            &app.router,
            request("GET", &prompts(), Some(&authorization)),
        )
        .await;
        assert_eq!(answer.status.as_u16(), 200, "{scheme}: {}", answer.text());
    }
}

#[tokio::test]
async fn basic_authorization_on_an_api_route_is_a_401() {
    let app = TestApp::new().await;
    // Even the client's real credentials: the API takes only bearer tokens.
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", app.client_id, app.client_secret))
    );
    let answer = send(&app.router, request("GET", &prompts(), Some(&basic))).await;
    answer.expect_error(401, "unauthorized");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(r#"Bearer realm="promptgate""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn basic_authorization_gets_a_challenge_without_error_code() {
    // RFC 6750 §3.1: a request that "attempted using an unsupported authentication method"
    // lacks authentication information, and the challenge SHOULD NOT carry an error code; the
    // contract keeps `error="invalid_token"` for a bearer token that was sent but is bad.
    let app = TestApp::new().await;
    let basic = format!("Basic {}", STANDARD.encode("someone:secret"));
    let answer = send(&app.router, request("GET", &prompts(), Some(&basic))).await;
    answer.expect_error(401, "unauthorized");
    assert_eq!(
        answer.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="promptgate""#)
    );
}

#[tokio::test]
async fn a_token_without_the_scope_is_a_403() {
    let app = TestApp::new().await;
    let reader = format!("Bearer {}", app.token_with("ai:prompt:read").await);
    let answer = send(&app.router, request("GET", &prompts(), Some(&reader))).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let answer = send(
        &app.router,
        request("GET", "/api/v2/oauth/clients", Some(&reader)),
    )
    .await;
    let body = answer.expect_error(403, "missing.scope");
    assert_eq!(
        body.message_params
            .get("requiredScopes")
            .map(String::as_str),
        Some("admin")
    );
    assert_eq!(answer.header("www-authenticate"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_bad_logins_from_one_address_get_exactly_its_limit_checked() {
    // Issue 17, item 6: the address's count was checked before any of the parallel failures
    // was recorded, so 150 parallel guesses had 15 secrets checked against a limit of 10.
    let app = TestApp::new().await;
    let auth = app.state.auth().clone();
    let source = Some(std::net::IpAddr::from([203, 0, 113, 7]));
    let attempts = (0..150).map(|n| {
        let auth = auth.clone();
        let id = app.client_id.clone();
        tokio::spawn(async move {
            auth.issue_from(&id, &format!("guess-{n}"), None, source)
                .await
                .map(|_| ())
        })
    });
    let mut checked = 0;
    let mut refused = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.unwrap() {
            Err(TokenError::InvalidClient) => checked += 1,
            Err(TokenError::TooManyAttempts {
                by: LockedBy::Address,
                ..
            }) => refused += 1,
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!((checked, refused), (10, 140));
    assert_eq!(auth.failed_logins(), 10);
    // Another address, and the right secret from it, are unaffected.
    let other = Some(std::net::IpAddr::from([203, 0, 113, 8]));
    auth.issue_from(&app.client_id, &app.client_secret, None, other)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_per_client_limit_never_refuses_the_right_secret() {
    let app = TestApp::new().await;
    let auth = app.state.auth();
    // Wrong secrets from many addresses: 10 answer invalid_client, then 429 by client id.
    for n in 0..15u8 {
        let source = Some(std::net::IpAddr::from([198, 51, 100, n]));
        let answer = auth
            .issue_from(&app.client_id, "wrong", None, source)
            .await
            .map(|_| ());
        match (n, answer) {
            (0..10, Err(TokenError::InvalidClient)) => {}
            (
                10..,
                Err(TokenError::TooManyAttempts {
                    by: LockedBy::ClientId,
                    ..
                }),
            ) => {}
            (n, other) => panic!("attempt {n}: {other:?}"),
        }
    }
    let source = Some(std::net::IpAddr::from([198, 51, 100, 1]));
    auth.issue_from(&app.client_id, &app.client_secret, None, source)
        .await
        .unwrap();
    auth.issue(&app.client_id, &app.client_secret, None)
        .await
        .unwrap();
}
