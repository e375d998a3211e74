//! Redirects are not followed: a provider or moderation endpoint answering 3xx gets an error
//! naming the status, and the place the redirect points to receives nothing (in particular not
//! Anthropic's `x-api-key`, which reqwest would have carried across hosts).

use promptgate_providers::{Moderation, ModerationConfig, ProviderError, http_client};

use crate::common::{FLAVORS, KEY, KEY_VAR, collect, keys, request};
use promptgate_fake_upstream::{Fake, Reply};

const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// A fake that answers every request with `status` pointing to `target`'s same path.
async fn redirecting(status: u16, target: &Fake, path: &str, count: usize) -> Fake {
    // `localhost` rather than 127.0.0.1: another host as well as another port.
    let location = format!("{}{path}", target.url.replace("127.0.0.1", "localhost"));
    let script = (0..count)
        .map(|_| Reply::json(status, "{}").with_header("location", &location))
        .collect();
    Fake::start(script).await
}

#[track_caller]
fn assert_redirect_error(error: &ProviderError, status: u16, what: &str) {
    let expected =
        format!("the provider answered a redirect ({status}); redirects are not followed");
    assert!(
        matches!(error, ProviderError::Upstream { status: Some(s), message } if *s == status && message.contains(&expected)),
        "{what}: {error:?}"
    );
    assert!(
        error.to_string().contains(&status.to_string()),
        "{what}: {error}"
    );
}

#[tokio::test]
async fn provider_calls_follow_no_redirects_and_name_the_status() {
    for flavor in FLAVORS {
        for status in REDIRECTS {
            let target = Fake::start(vec![
                Reply::json(200, &flavor.answer()),
                Reply::json(200, &flavor.answer()),
            ])
            .await;
            let origin = redirecting(status, &target, flavor.path(), 2).await;
            let provider = flavor.start_provider(&origin);
            let what = format!("{flavor:?} {status}");

            let completed = provider.complete(&request()).await.unwrap_err();
            assert_redirect_error(&completed, status, &what);
            let streamed = match provider.stream(&request()).await {
                Ok(stream) => collect(stream)
                    .await
                    .into_iter()
                    .find_map(Result::err)
                    .unwrap(),
                Err(error) => error,
            };
            assert_redirect_error(&streamed, status, &what);

            // A redirect is final: asked once per call, never retried.
            let asked = origin.requests();
            assert_eq!(asked.len(), 2, "{what}: {asked:#?}");
            assert!(
                asked.iter().all(|r| {
                    r.header("authorization")
                        .or_else(|| r.header("x-api-key"))
                        .is_some_and(|v| v.contains(KEY))
                }),
                "{what}: the origin did get the key, so the target could have"
            );
            assert!(
                target.requests().is_empty(),
                "{what}: the redirect was followed: {:#?}",
                target.requests()
            );
        }
    }
}

#[tokio::test]
async fn moderation_calls_follow_no_redirects_and_name_the_status() {
    for status in REDIRECTS {
        let target = Fake::start(vec![Reply::json(
            200,
            r#"{"results":[{"flagged":false,"categories":{}}]}"#,
        )])
        .await;
        let origin = redirecting(status, &target, "/v1/moderations", 1).await;
        let moderation = Moderation::with_keys(
            &ModerationConfig {
                base_url: format!("{}/v1", origin.url),
                model: "omni-moderation-latest".to_owned(),
                api_key_env: Some(KEY_VAR.to_owned()),
                timeout_ms: 10_000,
                max_retries: 2,
            },
            http_client().unwrap(),
            keys(KEY),
        );
        let error = moderation.categories(&["hello"]).await.unwrap_err();
        assert_redirect_error(&error, status, &format!("moderation {status}"));
        assert_eq!(origin.requests().len(), 1, "not retried");
        assert!(target.requests().is_empty(), "{:#?}", target.requests());
    }
}

/// The client every provider and the moderation check share: a key in a header reqwest does
/// not treat as sensitive must not travel with a redirect.
#[tokio::test]
async fn the_shared_http_client_follows_no_redirects() {
    let target = Fake::start(vec![Reply::json(200, "{}")]).await;
    let origin = redirecting(307, &target, "/anywhere", 1).await;
    let answer = http_client()
        .unwrap()
        .post(format!("{}/anywhere", origin.url))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 307);
    assert!(target.requests().is_empty(), "{:#?}", target.requests());
}
