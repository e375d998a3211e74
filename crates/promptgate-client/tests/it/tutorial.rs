//! The tutorial-flow example, run against a gateway this test starts.

use promptgate_client::{FewShotExample, PromptQuery, TokenCounter, TokenizerKind, fewshot};

use crate::gateway::TestGateway;

#[path = "../../examples/tutorial_flow.rs"]
mod tutorial_flow;

/// The limit the example fits its examples to.
const LIMIT: usize = 120;

/// The example's few-shot examples, oldest first. The test checks that the kept ones are a
/// suffix of this list, so a change to the example's data shows up here.
const EXAMPLES: [(&str, &str); 4] = [
    (
        "Where is my order?",
        "Let me check. Could you share your order number?",
    ),
    (
        "I want a refund.",
        "I can help with that. Which item would you like to return?",
    ),
    (
        "Do you ship abroad?",
        "Yes, to most countries; delivery takes 5 to 10 days.",
    ),
    (
        "My parcel arrived damaged.",
        "I am sorry. Please send a photo and we will replace it.",
    ),
];

fn example(i: usize) -> FewShotExample {
    FewShotExample {
        input: EXAMPLES[i].0.to_owned(),
        output: EXAMPLES[i].1.to_owned(),
    }
}

#[tokio::test]
async fn tutorial_flow_runs_against_a_local_gateway() {
    let gw = TestGateway::start().await;
    let client = gw.admin();
    let outcome = tutorial_flow::run(&client, "support_agent_tutorial")
        .await
        .unwrap_or_else(|e| panic!("the tutorial flow failed: {e}"));

    // The split is 90/10.
    assert_eq!(outcome.weights.len(), 2, "{:?}", outcome.weights);
    assert_eq!(outcome.weights[0].0, "1.0.0");
    assert!(
        (outcome.weights[0].1 - 0.9).abs() < 1e-9,
        "{:?}",
        outcome.weights
    );
    assert_eq!(outcome.weights[1].0, "1.1.0");
    assert!(
        (outcome.weights[1].1 - 0.1).abs() < 1e-9,
        "{:?}",
        outcome.weights
    );

    // The prompt exists with both versions and the split.
    let prompt = client.get_prompt(&outcome.prompt_id).await.unwrap().value;
    assert_eq!(prompt.name, "support_agent_tutorial");
    assert_eq!(prompt.versions, vec!["1.0.0", "1.1.0"]);
    assert_eq!(prompt.status, "ACTIVE");
    let listed: Vec<_> = futures_util::TryStreamExt::try_collect::<Vec<_>>(
        client.list_prompts(PromptQuery::default()),
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 1);

    // Drop-oldest drops a prefix of the examples, never all of them here (each fits alone).
    let dropped = &outcome.dropped_examples;
    assert!(dropped.len() < EXAMPLES.len(), "everything was dropped");
    assert_eq!(
        *dropped,
        (0..dropped.len()).collect::<Vec<_>>(),
        "oldest first"
    );

    // Version 1.1.0 holds exactly the kept examples, oldest first; 1.0.0 holds none.
    let kept: Vec<FewShotExample> = (dropped.len()..EXAMPLES.len()).map(example).collect();
    let v11 = client
        .get_version(&outcome.prompt_id, "1.1.0")
        .await
        .unwrap();
    let stored: Vec<FewShotExample> = v11
        .few_shot_examples
        .iter()
        .map(|e| FewShotExample {
            input: e.input.clone().unwrap(),
            output: e.output.clone().unwrap(),
        })
        .collect();
    assert_eq!(stored, kept);
    assert_eq!(v11.system_prompt, prompt.system_prompt);
    let v10 = client
        .get_version(&outcome.prompt_id, "1.0.0")
        .await
        .unwrap();
    assert!(v10.few_shot_examples.is_empty());

    // Consistent with the limit: the kept examples fit in 120 tokens with the prompt; one more
    // (the newest dropped), when any was dropped, would not.
    let counter = TokenCounter::load();
    let count = |examples: &[FewShotExample]| {
        counter.count(
            TokenizerKind::O200kBase,
            &fewshot::render(&v11.system_prompt, examples),
        )
    };
    let kept_tokens = count(&kept);
    assert!(kept_tokens <= LIMIT, "{kept_tokens} tokens kept");
    if let Some(&newest_dropped) = dropped.last() {
        let mut one_more = vec![example(newest_dropped)];
        one_more.extend(kept.iter().cloned());
        assert!(count(&one_more) > LIMIT, "{} tokens", count(&one_more));
    }
    println!(
        "tutorial flow: {kept_tokens} tokens with {} of {} examples; dropped {dropped:?}",
        kept.len(),
        EXAMPLES.len()
    );
}
