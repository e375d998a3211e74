//! Every SDK call against a real gateway over loopback, and the typed errors a real gateway
//! causes.

use std::collections::BTreeSet;

use futures_util::{StreamExt, TryStreamExt};
use promptgate_client::api::{CreatePromptRequest, SafetyGuardrails, UpdatePromptRequest};
use promptgate_client::{
    Client, Error, PromptDraft, PromptQuery, SplitStrategy, TokenCounter, TokenizerKind,
    TrafficSplit,
};

use crate::gateway::TestGateway;

const LONG_PROMPT: &str = "You are a helpful customer support agent for an online shop that \
    sells books, music and films; answer politely, briefly and only about orders.";

fn support_draft(name: &str) -> PromptDraft {
    PromptDraft::new(name, "builtin/echo")
        .system_prompt("You are a helpful customer support agent.")
        .temperature(0.2)
        .content_filtering(&["pii", "profanity"])
        .blocked_categories(&["violence", "hate_speech", "self_harm"])
        .max_tokens(1500)
        .version("1.0.0")
}

async fn names(client: &Client, query: PromptQuery) -> Vec<String> {
    client
        .list_prompts(query)
        .map_ok(|p| p.name)
        .try_collect()
        .await
        .unwrap()
}

fn by_name(name: &str) -> PromptQuery {
    PromptQuery {
        name: Some(name.to_owned()),
        ..PromptQuery::default()
    }
}

fn o200k(text: &str) -> usize {
    TokenCounter::load().count(TokenizerKind::O200kBase, text)
}

#[tokio::test]
async fn create_prompt_then_get_prompt() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let created = client
        .create_prompt(&support_draft("support_agent"))
        .await
        .unwrap();
    let p = &created.value;
    assert_eq!(p.name, "support_agent");
    assert_eq!(p.status, "ACTIVE");
    assert_eq!(p.version, "1.0.0");
    assert_eq!(p.versions, vec!["1.0.0"]);
    assert_eq!(p.model_endpoint_ref, "builtin/echo");
    assert_eq!(p.temperature, 0.2);
    assert_eq!(
        p.safety_guardrails,
        SafetyGuardrails {
            content_filtering: Some(vec!["pii".into(), "profanity".into()]),
            max_tokens: Some(1500),
            blocked_categories: Some(vec![
                "violence".into(),
                "hate_speech".into(),
                "self_harm".into()
            ]),
        }
    );
    assert_eq!(
        p.system_prompt_tokens as usize,
        o200k("You are a helpful customer support agent.")
    );
    let etag = created.etag.clone().expect("the create answer has an ETag");

    let got = client.get_prompt(&p.id).await.unwrap();
    assert_eq!(got.value.id, p.id);
    assert_eq!(got.value.system_prompt, p.system_prompt);
    assert_eq!(got.etag.as_deref(), Some(etag.as_str()), "nothing changed");
}

#[tokio::test]
async fn local_budget_check_fails_before_the_prompt_is_sent() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let draft = PromptDraft::new("too_long", "builtin/echo")
        .system_prompt(LONG_PROMPT)
        .max_tokens(5);
    let err = client.create_prompt(&draft).await.unwrap_err();
    match &err {
        Error::TokenBudgetExceeded {
            estimated,
            limit,
            tokenizer,
        } => {
            assert_eq!(*estimated, o200k(LONG_PROMPT));
            assert_eq!(*limit, 5);
            assert_eq!(tokenizer, "o200k_base");
        }
        other => panic!("expected TokenBudgetExceeded, got {other:?}"),
    }
    assert!(
        err.to_string().contains("shorten the prompt"),
        "the error does not say what to do: {err}"
    );
    // No prompt was created: neither by this name nor any other.
    assert!(names(&client, by_name("too_long")).await.is_empty());
    assert!(names(&client, PromptQuery::default()).await.is_empty());
    // The same draft within budget goes through.
    let fits = draft.max_tokens(1000);
    client.create_prompt(&fits).await.unwrap();
    assert_eq!(names(&client, by_name("too_long")).await, vec!["too_long"]);
}

#[tokio::test]
async fn create_prompt_raw_sends_the_body_as_is() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let request = CreatePromptRequest {
        name: Some("raw".into()),
        model_endpoint_ref: Some("builtin/echo".into()),
        system_prompt: Some("Be brief.".into()),
        version: Some("2.0.0".into()),
        ..CreatePromptRequest::default()
    };
    let created = client.create_prompt_raw(&request).await.unwrap();
    assert_eq!(created.value.name, "raw");
    assert_eq!(created.value.version, "2.0.0");
    assert_eq!(created.value.system_prompt, "Be brief.");
    assert!(created.etag.is_some());
}

#[tokio::test]
async fn server_reports_the_token_budget_when_the_local_check_is_skipped() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let draft = PromptDraft::new("over_budget", "builtin/echo")
        .system_prompt(LONG_PROMPT)
        .max_tokens(7);
    let local = draft.check_budget(TokenizerKind::O200kBase).unwrap_err();
    let err = client.create_prompt_raw(draft.request()).await.unwrap_err();
    match (&err, &local) {
        (
            Error::TokenBudgetExceeded {
                estimated,
                limit,
                tokenizer,
            },
            Error::TokenBudgetExceeded {
                estimated: local_estimated,
                ..
            },
        ) => {
            assert_eq!(*estimated, o200k(LONG_PROMPT), "the server's count");
            assert_eq!(
                estimated, local_estimated,
                "the SDK counts as the server does"
            );
            assert_eq!(*limit, 7);
            assert_eq!(tokenizer, "o200k_base");
        }
        other => panic!("expected TokenBudgetExceeded from the server, got {other:?}"),
    }
    assert!(names(&client, PromptQuery::default()).await.is_empty());
}

#[tokio::test]
async fn list_prompts_streams_every_page() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let mut created = BTreeSet::new();
    for i in 0..5 {
        let p = client
            .create_prompt(&support_draft(&format!("paged_{i}")))
            .await
            .unwrap();
        created.insert(p.value.id);
    }
    let query = PromptQuery {
        page_size: Some(2),
        ..PromptQuery::default()
    };
    let listed: Vec<String> = client
        .list_prompts(query.clone())
        .map_ok(|p| p.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        5,
        "each prompt once across 3 pages: {listed:?}"
    );
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), created);

    // The stream is lazy: reading three items needs only the first two pages.
    let first_three: Vec<_> = client.list_prompts(query).take(3).collect().await;
    assert_eq!(first_three.len(), 3);
    assert!(first_three.iter().all(Result::is_ok));

    // Filters reach the server.
    assert_eq!(names(&client, by_name("paged_3")).await, vec!["paged_3"]);
    assert_eq!(names(&client, by_name("paged_*")).await.len(), 5);
    let archived = PromptQuery {
        status: Some("ARCHIVED".into()),
        ..PromptQuery::default()
    };
    assert!(names(&client, archived).await.is_empty());
}

#[tokio::test]
async fn versions_stream_newest_first_and_get_version() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let created = client
        .create_prompt(&support_draft("versioned"))
        .await
        .unwrap();
    let id = created.value.id;
    for (version, text) in [("1.1.0", "Be concise."), ("1.10.0", "Be very concise.")] {
        let request = UpdatePromptRequest {
            version: Some(version.into()),
            system_prompt: Some(text.into()),
            ..UpdatePromptRequest::default()
        };
        let updated = client.update_prompt(&id, &request, None).await.unwrap();
        assert_eq!(updated.value.version, version);
    }
    let versions: Vec<String> = client
        .list_versions(&id, Some(1))
        .map_ok(|v| v.version)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(versions, vec!["1.10.0", "1.1.0", "1.0.0"], "semver order");

    let v = client.get_version(&id, "1.1.0").await.unwrap();
    assert_eq!(v.prompt_id, id);
    assert_eq!(v.version, "1.1.0");
    assert_eq!(v.system_prompt, "Be concise.");
    assert_eq!(v.temperature, 0.2, "taken from the newest version");
    assert_eq!(v.created_by, gw.admin_id);
    assert_eq!(v.system_prompt_tokens as usize, o200k("Be concise."));

    assert!(matches!(
        client.get_version(&id, "9.9.9").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn update_prompt_with_a_current_and_a_stale_if_match() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let created = client
        .create_prompt(&support_draft("guarded"))
        .await
        .unwrap();
    let id = created.value.id.clone();
    let first_tag = created.etag.unwrap();

    let request = UpdatePromptRequest {
        version: Some("1.1.0".into()),
        system_prompt: Some("You are concise.".into()),
        ..UpdatePromptRequest::default()
    };
    let updated = client
        .update_prompt(&id, &request, Some(&first_tag))
        .await
        .unwrap();
    assert_eq!(updated.value.version, "1.1.0");
    assert_eq!(updated.value.versions, vec!["1.0.0", "1.1.0"]);
    let second_tag = updated.etag.unwrap();
    assert_ne!(second_tag, first_tag);

    let stale = UpdatePromptRequest {
        version: Some("1.2.0".into()),
        system_prompt: Some("You are terse.".into()),
        ..UpdatePromptRequest::default()
    };
    let err = client
        .update_prompt(&id, &stale, Some(&first_tag))
        .await
        .unwrap_err();
    match &err {
        Error::PreconditionFailed { current_etag } => {
            assert_eq!(current_etag.as_deref(), Some(second_tag.as_str()));
        }
        other => panic!("expected PreconditionFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("read it again"), "{err}");
    // The stale update changed nothing.
    let now = client.get_prompt(&id).await.unwrap();
    assert_eq!(now.value.versions, vec!["1.0.0", "1.1.0"]);
    assert_eq!(now.etag.as_deref(), Some(second_tag.as_str()));
}

#[tokio::test]
async fn set_traffic_then_archive_prompt() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let created = client.create_prompt(&support_draft("split")).await.unwrap();
    let id = created.value.id;
    let request = UpdatePromptRequest {
        version: Some("1.1.0".into()),
        system_prompt: Some("You are concise.".into()),
        ..UpdatePromptRequest::default()
    };
    let updated = client.update_prompt(&id, &request, None).await.unwrap();

    let split =
        TrafficSplit::with_strategy(&[("1.0.0", 0.9), ("1.1.0", 0.1)], SplitStrategy::Random)
            .unwrap();
    let done = client
        .set_traffic(&id, &split, updated.etag.as_deref())
        .await
        .unwrap();
    let traffic = &done.value.traffic_distribution;
    assert_eq!(traffic.split_strategy.as_deref(), Some("random"));
    let weights: Vec<(String, f64)> = traffic
        .versions
        .clone()
        .unwrap()
        .into_iter()
        .map(|w| (w.version.unwrap(), w.weight.unwrap()))
        .collect();
    assert_eq!(weights.len(), 2, "{weights:?}");
    assert_eq!(weights[0].0, "1.0.0");
    assert!((weights[0].1 - 0.9).abs() < 1e-9, "{weights:?}");
    assert_eq!(weights[1].0, "1.1.0");
    assert!((weights[1].1 - 0.1).abs() < 1e-9, "{weights:?}");
    // A split naming a version the prompt lacks is the server's 400, not a local error.
    let unknown = TrafficSplit::single("3.0.0").unwrap();
    match client.set_traffic(&id, &unknown, None).await {
        Err(Error::Api { status: 400, .. }) => {}
        other => panic!("expected a 400, got {other:?}"),
    }

    let archived = client
        .archive_prompt(&id, done.etag.as_deref())
        .await
        .unwrap();
    assert_eq!(archived.value.status, "ARCHIVED");
    assert_eq!(
        client.get_prompt(&id).await.unwrap().value.status,
        "ARCHIVED"
    );
    let query = PromptQuery {
        status: Some("ARCHIVED".into()),
        ..PromptQuery::default()
    };
    assert_eq!(names(&client, query).await, vec!["split"]);
}

#[tokio::test]
async fn model_endpoints_and_ready() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let endpoints = client.model_endpoints().await.unwrap();
    let echo = endpoints
        .iter()
        .find(|e| e.reference == "builtin/echo")
        .unwrap_or_else(|| panic!("no builtin/echo in {endpoints:?}"));
    assert!(echo.offline && echo.usable, "{echo:?}");
    assert_eq!(echo.tokenizer, "o200k_base");
    assert!(
        endpoints
            .iter()
            .any(|e| e.reference == "openai/gpt-4o-mini")
    );

    assert_eq!(client.ready().await.unwrap().status, "ready");
    // `ready` needs no credentials.
    let anonymous = Client::builder().base_url(&gw.base_url).build().unwrap();
    assert_eq!(anonymous.ready().await.unwrap().status, "ready");
}

#[tokio::test]
async fn create_list_and_disable_clients() {
    let gw = TestGateway::start().await;
    let admin = gw.admin();
    let created = admin
        .create_client("reader", &["ai:prompt:read"])
        .await
        .unwrap();
    assert_eq!(created.name, "reader");
    assert_eq!(created.scopes, vec!["ai:prompt:read"]);
    assert!(!created.disabled);
    let secret = created.client_secret.clone().expect("the secret, once");

    let listed = admin.list_clients().await.unwrap();
    let ids: BTreeSet<&str> = listed.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([gw.admin_id.as_str(), created.client_id.as_str()])
    );
    assert!(listed.iter().all(|c| c.client_secret.is_none()));

    // The new client works with its scopes.
    let reader = gw.client(&created.client_id, &secret);
    assert!(names(&reader, PromptQuery::default()).await.is_empty());

    let disabled = admin.disable_client(&created.client_id).await.unwrap();
    assert!(disabled.disabled);
    assert!(disabled.disabled_at.is_some());
    let listed = admin.list_clients().await.unwrap();
    let entry = listed
        .iter()
        .find(|c| c.client_id == created.client_id)
        .unwrap();
    assert!(entry.disabled);
    // A disabled client gets no new token.
    let again = gw.client(&created.client_id, &secret);
    match again.model_endpoints().await {
        Err(Error::Unauthorized { .. }) => {}
        other => panic!("a disabled client got {other:?}"),
    }
    // Disabling an unknown client is a NotFound.
    assert!(matches!(
        admin.disable_client("no-such-client").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn not_found_and_conflict_are_typed() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let missing = "01a21b90-f811-7001-9495-3ba146e3a674";
    let err = client.get_prompt(missing).await.unwrap_err();
    match &err {
        Error::NotFound {
            message,
            context_id,
        } => {
            assert!(!message.is_empty());
            assert!(context_id.as_deref().is_some_and(|c| !c.is_empty()));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(err.context_id().is_some());
    assert!(err.to_string().contains("check the id"), "{err}");

    client.create_prompt(&support_draft("twice")).await.unwrap();
    let err = client
        .create_prompt(&support_draft("twice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("pick another name"), "{err}");
    assert_eq!(names(&client, by_name("twice")).await.len(), 1);
}

#[tokio::test]
async fn missing_scope_names_the_scope() {
    let gw = TestGateway::start().await;
    let admin = gw.admin();
    let reader = admin
        .create_client("reader", &["ai:prompt:read"])
        .await
        .unwrap();
    let reader = gw.client(&reader.client_id, &reader.client_secret.unwrap());
    let err = reader
        .create_prompt(&support_draft("not_allowed"))
        .await
        .unwrap_err();
    match &err {
        Error::MissingScope { required } => {
            assert!(
                required.iter().any(|s| s == "ai:prompt:write"),
                "{required:?}"
            );
        }
        other => panic!("expected MissingScope, got {other:?}"),
    }
    assert!(err.to_string().contains("ai:prompt:write"), "{err}");
    assert!(names(&admin, PromptQuery::default()).await.is_empty());
    // Reading is allowed.
    reader.model_endpoints().await.unwrap();
    // A client without ai:prompt:read can still create: the local check falls back to the
    // built-in catalogue when it cannot read the gateway's endpoints.
    let writer = admin
        .create_client("writer", &["ai:prompt:write"])
        .await
        .unwrap();
    let writer = gw.client(&writer.client_id, &writer.client_secret.unwrap());
    let over = PromptDraft::new("w", "builtin/echo")
        .system_prompt(LONG_PROMPT)
        .max_tokens(5);
    assert!(matches!(
        writer.create_prompt(&over).await,
        Err(Error::TokenBudgetExceeded { .. })
    ));
    writer.create_prompt(&support_draft("w")).await.unwrap();
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let gw = TestGateway::start().await;
    let client = gw.client(&gw.admin_id, "not-the-secret-at-all");
    let err = client.model_endpoints().await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(
        err.to_string().contains("check the client id and secret"),
        "{err}"
    );
    // An unknown client id too.
    let client = gw.client("nobody", "not-the-secret-at-all");
    assert!(matches!(
        client.get_prompt("x").await,
        Err(Error::Unauthorized { .. })
    ));
}
