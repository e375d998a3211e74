//! `/oauth/token` against secret guessing: failed logins are limited per source address across
//! client ids (`[auth] failed_logins_per_address_per_minute`) as well as per client id, logged
//! without the secret, and counted in `/metrics`; a client under its limits is never refused.

use crate::harness::*;

const GRANT: (&str, &str) = ("grant_type", "client_credentials");

#[tokio::test]
async fn failures_from_one_address_lock_it_whatever_client_ids_they_name() {
    let server = Server::start_with(Options::with_config(
        "[auth]\nfailed_logins_per_address_per_minute = 3\nfailed_logins_per_minute = 100\n",
    ));
    let token = server.admin_token().await;
    for _ in 0..3 {
        let guessed = uuid::Uuid::new_v4().to_string();
        let resp = server
            .token_request(&[GRANT], Some((&guessed, "not-the-secret")))
            .await;
        assert_eq!(resp.status, 401, "{resp}");
        assert_eq!(resp.json()["error"], "invalid_client");
    }
    // The address is locked now: even the right credentials wait.
    let resp = server
        .token_request(&[GRANT], Some((&server.admin_id, &server.admin_secret)))
        .await;
    assert_eq!(resp.status, 429, "{resp}");
    let body = resp.json();
    assert_eq!(body["error"], "too_many_requests");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("source address")
            && description.contains("failed_logins_per_address_per_minute"),
        "{description}"
    );
    let retry_after: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(resp.header("inin-ratelimit-allowed").as_deref(), Some("3"));
    assert_eq!(resp.header("inin-ratelimit-count").as_deref(), Some("3"));
    assert!(resp.header("inin-ratelimit-reset").is_some());
    // Tokens already issued keep working: the lockout is on logging in, not on the API.
    server.get(PROMPTS, Some(&token)).await.ok(200);
}

#[tokio::test]
async fn a_client_under_its_limits_is_never_refused() {
    let server = Server::start_with(Options::with_config(
        "[auth]\nfailed_logins_per_address_per_minute = 3\nfailed_logins_per_minute = 3\n",
    ));
    // Two failures (one short of either limit), then the right secret: served, every time.
    for _ in 0..2 {
        let resp = server
            .token_request(&[GRANT], Some((&server.admin_id, "wrong")))
            .await;
        assert_eq!(resp.status, 401, "{resp}");
    }
    for _ in 0..20 {
        server.admin_token().await;
    }
    // Successes do not count: the third failure is the one that locks.
    let resp = server
        .token_request(&[GRANT], Some((&server.admin_id, "wrong")))
        .await;
    assert_eq!(resp.status, 401, "{resp}");
    let resp = server
        .token_request(&[GRANT], Some((&server.admin_id, &server.admin_secret)))
        .await;
    assert_eq!(resp.status, 429, "{resp}");
}

#[tokio::test]
async fn failed_logins_are_logged_without_the_secret_and_counted() {
    let server = Server::start();
    let metric = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("promptgate_failed_logins_total "))
            .map(|v| v.trim().parse::<u64>().unwrap())
    };
    let before = server.get("/metrics", None).await;
    assert_eq!(metric(&before.text), Some(0), "{}", before.text);

    let secret = format!("guess-{}", random_secret());
    let unknown = uuid::Uuid::new_v4().to_string();
    for (id, secret) in [
        (server.admin_id.as_str(), secret.as_str()),
        (unknown.as_str(), secret.as_str()),
    ] {
        let resp = server.token_request(&[GRANT], Some((id, secret))).await;
        assert_eq!(resp.status, 401, "{resp}");
    }
    // Form fields instead of Basic count the same.
    let resp = server
        .token_request(
            &[GRANT, ("client_id", &unknown), ("client_secret", &secret)],
            None,
        )
        .await;
    assert_eq!(resp.status, 401, "{resp}");
    server.admin_token().await;

    let after = server.get("/metrics", None).await;
    assert_eq!(metric(&after.text), Some(3), "{}", after.text);
    assert!(
        after
            .text
            .contains("# TYPE promptgate_failed_logins_total counter")
    );
    let found = eventually(std::time::Duration::from_secs(5), || async {
        let log = server.log();
        log.matches("failed client authentication").count() >= 3
    })
    .await;
    let log = server.log();
    assert!(found, "{log}");
    assert!(log.contains(&unknown), "the log names the client id: {log}");
    assert!(
        log.contains("127.0.0.1"),
        "the log names the source address: {log}"
    );
    assert!(!log.contains(&secret), "the secret must never be logged");
}
