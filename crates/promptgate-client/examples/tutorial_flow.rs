//! The tutorial's whole flow against a local gateway: create a prompt, optimise its few-shot
//! examples to a token budget, add a version with them, and split traffic 90/10.
//!
//! Run a gateway (`cargo run -p promptgate -- serve`), note the admin id and secret it prints,
//! then:
//!
//! ```sh
//! PROMPTGATE_URL=http://127.0.0.1:8080 PROMPTGATE_CLIENT_ID=… PROMPTGATE_CLIENT_SECRET=… \
//!     cargo run -p promptgate-client --example tutorial_flow
//! ```
//!
//! (Writing audit entries joins this flow when the gateway's audit log lands.)

use promptgate_client::api::UpdatePromptRequest;
use promptgate_client::{
    Client, Error, FewShotExample, FitStrategy, PromptDraft, TokenCounter, TrafficSplit, fewshot,
};

/// What the flow produced, for whoever runs it (a person or a test).
#[derive(Debug)]
pub struct FlowOutcome {
    /// The prompt's id.
    pub prompt_id: String,
    /// The examples the optimiser dropped (indices, oldest first).
    pub dropped_examples: Vec<usize>,
    /// The final weights, by version.
    pub weights: Vec<(String, f64)>,
}

/// Runs the flow with `client`; `name` must be unused on the gateway.
pub async fn run(client: &Client, name: &str) -> Result<FlowOutcome, Error> {
    // 1. Create the prompt; its token budget is checked locally before the request.
    let created = client
        .create_prompt(
            &PromptDraft::new(name, "builtin/echo")
                .system_prompt("You are a helpful customer support agent for an online shop.")
                .temperature(0.2)
                .content_filtering(&["pii", "profanity"])
                .blocked_categories(&["violence", "hate_speech", "self_harm"])
                .max_tokens(1500)
                .version("1.0.0"),
        )
        .await?;
    let prompt = created.value;

    // 2. Optimise few-shot examples to fit 120 tokens with the prompt, dropping the oldest.
    let examples: Vec<FewShotExample> = [
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
    ]
    .iter()
    .map(|(input, output)| FewShotExample {
        input: (*input).to_owned(),
        output: (*output).to_owned(),
    })
    .collect();
    let tokenizer = promptgate_client::TokenizerKind::O200kBase;
    let fitted = fewshot::fit(
        &TokenCounter::load(),
        tokenizer,
        &prompt.system_prompt,
        &examples,
        120,
        FitStrategy::DropOldest,
    )
    .map_err(|e| Error::Invalid {
        field: "fewShotExamples".to_owned(),
        message: e.to_string(),
    })?;

    // 3. A new version with the examples that fit; the ETag guards against a concurrent edit.
    let kept: Vec<_> = fitted
        .kept
        .iter()
        .map(|&i| promptgate_client::api::FewShotExample {
            input: Some(examples[i].input.clone()),
            output: Some(examples[i].output.clone()),
        })
        .collect();
    let updated = client
        .update_prompt(
            &prompt.id,
            &UpdatePromptRequest {
                version: Some("1.1.0".to_owned()),
                few_shot_examples: Some(kept),
                ..UpdatePromptRequest::default()
            },
            created.etag.as_deref(),
        )
        .await?;

    // 4. Send 10% of conversations to the new version, sticky per conversation.
    let split = TrafficSplit::new(&[("1.0.0", 0.9), ("1.1.0", 0.1)])?;
    let split_done = client
        .set_traffic(&prompt.id, &split, updated.etag.as_deref())
        .await?;
    let weights = split_done
        .value
        .traffic_distribution
        .versions
        .unwrap_or_default()
        .into_iter()
        .map(|w| (w.version.unwrap_or_default(), w.weight.unwrap_or_default()))
        .collect();
    Ok(FlowOutcome {
        prompt_id: prompt.id,
        dropped_examples: fitted.dropped,
        weights,
    })
}

#[allow(dead_code, clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Error> {
    let client = Client::from_env()?;
    let name = format!("support_agent_{}", std::process::id());
    let outcome = run(&client, &name).await?;
    println!("prompt {name} ({})", outcome.prompt_id);
    println!("dropped examples: {:?}", outcome.dropped_examples);
    println!("traffic: {:?}", outcome.weights);
    Ok(())
}
