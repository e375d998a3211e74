//! Context fitting through the gateway: an OpenAI-compatible endpoint with a 200-token window
//! (o200k_base) in front of the fake upstream. Each test chooses `maxOutputTokens` so that the
//! request fills the window exactly after the expected drops, computing every count with
//! tiktoken's o200k_base, and checks both the answer's report and what reached the upstream.

use serde_json::{Value, json};

use crate::fake_upstream::*;
use crate::harness::*;

const SMALL_REF: &str = "fake/small";
const WINDOW: usize = 200;
const SYSTEM: &str = "You are a support agent for parcels.";
const INPUT: &str = "Any update today?";

fn examples() -> Vec<(String, String)> {
    (1..=4)
        .map(|i| {
            (
                format!("Where is parcel {i}?"),
                format!("Parcel {i} is on its way."),
            )
        })
        .collect()
}

fn turns() -> Vec<(&'static str, String)> {
    vec![
        ("user", "My parcel number is 1001.".to_owned()),
        ("assistant", "Thanks, checking parcel 1001.".to_owned()),
        ("user", "It was due on Monday.".to_owned()),
        ("assistant", "It left the depot this morning.".to_owned()),
    ]
}

fn rendered(kept: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = kept.iter().map(|(i, o)| (i.as_str(), o.as_str())).collect();
    render_examples(SYSTEM, &pairs)
}

fn turn_tokens(turns: &[(&str, String)]) -> usize {
    turns.iter().map(|(_, t)| o200k(t)).sum()
}

fn messages_json(turns: &[(&str, String)]) -> Vec<Value> {
    turns
        .iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

struct Setup {
    gw: Gateway,
    id: String,
}

async fn setup() -> Setup {
    let fake =
        Fake::start_with_fallback(Vec::new(), 200, &Flavor::OpenAi.answer("Noted.", 10, 2)).await;
    let small = endpoint_toml(
        SMALL_REF,
        "openai",
        &format!("{}/v1", fake.url),
        "gpt-small",
        OPENAI_KEY_VAR,
        &format!("context_window = {WINDOW}\ntokenizer = \"o200k_base\""),
    );
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            extra: small,
            ..Endpoints::default()
        },
    )
    .await;
    let mut prompt = prompt_on("small-window", SMALL_REF, SYSTEM);
    prompt["fewShotExamples"] = json!(
        examples()
            .iter()
            .map(|(i, o)| json!({"input": i, "output": o}))
            .collect::<Vec<_>>()
    );
    let id = gw.create_prompt(&prompt).await;
    Setup { gw, id }
}

impl Setup {
    async fn invoke(&self, max_output_tokens: usize) -> Resp {
        self.gw
            .invoke(&json!({
                "promptId": self.id,
                "userInput": INPUT,
                "messages": messages_json(&turns()),
                "options": {"maxOutputTokens": max_output_tokens}
            }))
            .await
    }
}

/// `WINDOW` minus `used`, which must leave room for at least one output token.
#[track_caller]
fn reserve_filling(used: usize) -> usize {
    assert!(
        used < WINDOW,
        "the fixture texts are too long for the window: {used}"
    );
    WINDOW - used
}

#[tokio::test]
async fn examples_are_dropped_oldest_first_before_any_turn() {
    let s = setup().await;
    let all = examples();
    let kept = rendered(&all[2..]);
    // Exactly the two newest examples, every turn, the input and the reserve fill the window.
    let reserve = reserve_filling(o200k(&kept) + turn_tokens(&turns()) + o200k(INPUT));
    assert!(
        o200k(&rendered(&all[1..])) > o200k(&kept),
        "a third example must not fit"
    );
    let body = s.invoke(reserve).await.ok(200);
    assert_eq!(
        body["context"],
        json!({"droppedExamples": 2, "droppedTurns": 0}),
        "{body}"
    );
    assert_eq!(
        body["fewShotTokens"],
        json!(o200k(&kept) - o200k(SYSTEM)),
        "{body}"
    );

    let sent = s.gw.fake.only_request().json();
    let mut expected = vec![json!({"role": "system", "content": kept})];
    expected.extend(messages_json(&turns()));
    expected.push(json!({"role": "user", "content": INPUT}));
    assert_eq!(sent["messages"], json!(expected), "{sent}");
    assert_eq!(sent["max_tokens"], json!(reserve));

    // One token more for the answer costs one more example, still no turn.
    let body = s.invoke(reserve + 1).await.ok(200);
    assert_eq!(
        body["context"],
        json!({"droppedExamples": 3, "droppedTurns": 0}),
        "{body}"
    );
    let sent = s.gw.fake.requests().pop().unwrap().json();
    assert_eq!(
        sent["messages"][0]["content"],
        json!(rendered(&all[3..])),
        "{sent}"
    );
}

#[tokio::test]
async fn turns_are_dropped_oldest_first_once_no_example_fits() {
    let s = setup().await;
    let turns = turns();
    // Without examples and the two oldest turns, the rest fills the window exactly.
    let reserve = reserve_filling(o200k(SYSTEM) + turn_tokens(&turns[2..]) + o200k(INPUT));
    let body = s.invoke(reserve).await.ok(200);
    assert_eq!(
        body["context"],
        json!({"droppedExamples": 4, "droppedTurns": 2}),
        "{body}"
    );
    assert_eq!(body["fewShotTokens"], json!(0), "{body}");

    let sent = s.gw.fake.only_request().json();
    let mut expected = vec![json!({"role": "system", "content": SYSTEM})];
    expected.extend(messages_json(&turns[2..]));
    expected.push(json!({"role": "user", "content": INPUT}));
    assert_eq!(sent["messages"], json!(expected), "{sent}");
}

#[tokio::test]
async fn system_prompt_input_and_reserve_alone_over_the_window_is_400() {
    let s = setup().await;
    let bare = o200k(SYSTEM) + o200k(INPUT);
    // Exactly full with every example and turn dropped: still answered.
    let body = s.invoke(reserve_filling(bare)).await.ok(200);
    assert_eq!(
        body["context"],
        json!({"droppedExamples": 4, "droppedTurns": 4}),
        "{body}"
    );
    let sent = s.gw.fake.only_request().json();
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": SYSTEM}, {"role": "user", "content": INPUT}])
    );

    // One token more does not fit at all.
    let resp = s.invoke(reserve_filling(bare) + 1).await;
    let err = resp.error(400, "context.window.exceeded");
    assert_eq!(
        param(&err, "needed"),
        json!((WINDOW + 1).to_string()),
        "{err}"
    );
    assert_eq!(param(&err, "limit"), json!(WINDOW.to_string()), "{err}");
    assert_eq!(param(&err, "tokenizer"), json!("o200k_base"), "{err}");
    assert_eq!(
        s.gw.fake.requests().len(),
        1,
        "nothing is sent when it cannot fit"
    );
}
