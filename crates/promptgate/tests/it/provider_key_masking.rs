//! A provider's key never leaves the gateway, whole or in pieces, and never travels with a
//! redirect: the provider's error text reaches the caller (it says why) with every piece of 8
//! or more characters of the key masked, in plain and streamed answers, on both front doors,
//! in the log and in the telemetry records; a provider or moderation endpoint answering a
//! redirect is a 502 naming the status, and the redirect's target is never called.

use serde_json::{Value, json};

use crate::fake_upstream::*;
use crate::harness::*;

const SYSTEM: &str = "You are a terse support agent.";
const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";

/// Every 8-character piece of `key`, lower-cased, found in `text` (lower-cased).
fn pieces_in(text: &str, key: &str) -> Vec<String> {
    let text = text.to_ascii_lowercase();
    let key = key.to_ascii_lowercase();
    (0..=key.len() - 8)
        .map(|start| key[start..start + 8].to_owned())
        .filter(|piece| text.contains(piece.as_str()))
        .collect()
}

#[tokio::test]
async fn provider_error_text_never_shows_a_piece_of_the_key() {
    let fake = Fake::start(vec![
        // Per flavor: a plain invocation (retried 500, then 401), a stream refused at once
        // (401), a stream that fails after its first delta, and the OpenAI front door (401).
        Reply::EchoKeyPieces { status: 500 },
        Reply::EchoKeyPieces { status: 401 },
        Reply::EchoKeyPieces { status: 401 },
        Reply::EchoKeyPiecesMidStream,
        Reply::EchoKeyPieces { status: 401 },
        Reply::EchoKeyPieces { status: 500 },
        Reply::EchoKeyPieces { status: 401 },
        Reply::EchoKeyPieces { status: 401 },
        Reply::EchoKeyPiecesMidStream,
        Reply::EchoKeyPieces { status: 401 },
    ])
    .await;
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            max_retries: 1,
            ..Endpoints::default()
        },
    )
    .await;
    let mut texts: Vec<String> = Vec::new();
    for flavor in FLAVORS {
        let name = format!("pieces-{flavor:?}").to_lowercase();
        let id = gw
            .create_prompt(&prompt_on(&name, flavor.reference(), SYSTEM))
            .await;

        let plain = gw
            .invoke(&json!({"promptId": id, "userInput": "Hello"}))
            .await;
        let refused = gw
            .invoke(&json!({"promptId": id, "userInput": "Hello", "options": {"stream": true}}))
            .await;
        for resp in [&plain, &refused] {
            let err = resp.error(502, "upstream.error");
            let message = err["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("{KEY_REJECTED}: [redacted]")),
                "{flavor:?}: the provider's reason is passed on, masked: {err}"
            );
            texts.push(resp.to_string());
        }

        let response = gw
            .invoke_raw(&json!({"promptId": id, "userInput": "Hello", "options": {"stream": true}}))
            .await;
        assert_eq!(response.status(), 200);
        let mut events = SseReader::new(response);
        let rest = events.rest().await;
        let failed = rest
            .iter()
            .find(|e| e.event == "error")
            .unwrap_or_else(|| panic!("{flavor:?}: no error event in {}", events.raw));
        assert!(
            failed.data.contains("[redacted]"),
            "{flavor:?}: {}",
            events.raw
        );
        texts.push(events.raw.clone());

        let openai = gw
            .server
            .post(
                "/v1/chat/completions",
                Some(&gw.token),
                &json!({"model": format!("prompt:{name}"),
                    "messages": [{"role": "user", "content": "Hello"}]}),
            )
            .await;
        assert_eq!(openai.status, 502, "{openai}");
        assert!(openai.text.contains("[redacted]"), "{openai}");
        texts.push(openai.to_string());
    }
    assert_eq!(gw.fake.requests().len(), 10, "{:#?}", gw.fake.requests());

    // The fake did receive the keys, so their absence below means something.
    for request in gw.fake.requests() {
        let headers = request.header_text();
        assert!(
            FLAVORS.iter().any(|f| headers.contains(gw.key(*f))),
            "{headers}"
        );
    }

    // The records are written in batches; wait (bounded) until all eight are there.
    let telemetry = || async {
        gw.server
            .get_query(TELEMETRY, &gw.token, &[("pageSize", "100")])
            .await
            .ok(200)
    };
    let all_written = eventually(HANG_GUARD, || async {
        telemetry().await["entities"]
            .as_array()
            .is_some_and(|records| records.len() == 8)
    })
    .await;
    let telemetry = telemetry().await;
    assert!(all_written, "{telemetry}");
    let records = telemetry["entities"].as_array().unwrap();
    assert!(
        records.iter().all(|r| r["status"] == "ERROR"),
        "{telemetry}"
    );
    texts.push(telemetry.to_string());

    let log = gw.server.log();
    assert!(
        log.contains("retrying"),
        "the retries were logged (so the log was searched where the key could be):\n{log}"
    );
    texts.push(log);

    for flavor in FLAVORS {
        for text in &texts {
            let found = pieces_in(text, gw.key(flavor));
            assert!(
                found.is_empty(),
                "{flavor:?}: pieces {found:?} of the key in:\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn provider_and_moderation_redirects_are_not_followed() {
    // Where the redirects point; it must never be called.
    let target = Fake::start(Vec::new()).await;
    let elsewhere = target.url.replace("127.0.0.1", "localhost");
    let redirect = |status: u16, path: &str| Reply::Redirect {
        status,
        location: format!("{elsewhere}{path}"),
    };
    let fake = Fake::start(vec![
        redirect(302, "/v1/chat/completions"),
        redirect(307, "/v1/chat/completions"),
        redirect(302, "/v1/messages"),
        redirect(307, "/v1/messages"),
        redirect(308, "/v1/moderations"),
    ])
    .await;
    // The moderation endpoint is the same fake, with the OpenAI endpoint's key.
    let moderation = format!(
        "[moderation]\nurl = \"{}/v1\"\napi_key_env = \"{OPENAI_KEY_VAR}\"\nmax_retries = 2\n",
        fake.url
    );
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            extra: moderation,
            ..Endpoints::default()
        },
    )
    .await;

    for (flavor, statuses) in FLAVORS.into_iter().zip([[302, 307], [302, 307]]) {
        let id = gw
            .create_prompt(&prompt_on(
                &format!("redirect-{flavor:?}").to_lowercase(),
                flavor.reference(),
                SYSTEM,
            ))
            .await;
        for (status, options) in statuses
            .into_iter()
            .zip([json!({}), json!({"stream": true})])
        {
            let resp = gw
                .invoke(&json!({"promptId": id, "userInput": "Hello", "options": options}))
                .await;
            let err = resp.error(502, "upstream.error");
            let message = err["message"].as_str().unwrap();
            assert!(
                message.contains(&format!(
                    "the provider answered a redirect ({status}); redirects are not followed"
                )),
                "{flavor:?} {status}: {err}"
            );
        }
    }

    let mut moderated = prompt_on("redirect-moderated", OPENAI_REF, SYSTEM);
    moderated["safetyGuardrails"] = json!({"blockedCategories": ["violence"]});
    let id = gw.create_prompt(&moderated).await;
    let resp = gw
        .invoke(&json!({"promptId": id, "userInput": "Hello"}))
        .await;
    let err: Value = resp.error(502, "upstream.error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("the provider answered a redirect (308)"),
        "moderation: {err}"
    );

    // One request each: a redirect is final, not retried, and never followed.
    let asked: Vec<String> = gw.fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        asked,
        [
            "/v1/chat/completions",
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/messages",
            "/v1/moderations"
        ],
    );
    assert!(
        target.requests().is_empty(),
        "a redirect was followed: {:#?}",
        target.requests()
    );
}
