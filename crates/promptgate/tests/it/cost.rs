//! Cost per version (issue 21, shared/API.md "Cost"): an endpoint with prices gives each
//! telemetry record its `costUsd`, the summary its total, mean and the mean's interval per
//! version and the comparison's `costMeanUsdDiff`, `/metrics` its `promptgate_cost_usd_total`;
//! an endpoint without prices gives none of them. Every figure is checked against arithmetic
//! written out here, from token counts the fake upstream reports.

use serde_json::{Value, json};

use crate::cli_kit::{Cli, assert_exit, stdout};
use crate::fake_upstream::*;
use crate::harness::*;
use crate::telemetry::promtool_check;

const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";
const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";
const ENDPOINTS: &str = "/api/v2/ai/llm/gateway/model-endpoints";
/// The priced endpoint: the fake's OpenAI side at $3 per million prompt tokens and $15 per
/// million completion tokens.
const PRICED_REF: &str = "priced/openai";

/// Every telemetry record of `prompt_id`, once `count` of them are stored.
async fn records(server: &Server, token: &str, prompt_id: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        let page = server
            .get_query(
                TELEMETRY,
                token,
                &[("promptId", prompt_id), ("pageSize", "500")],
            )
            .await
            .ok(200);
        let entities = page["entities"].as_array().unwrap().clone();
        if entities.len() >= count {
            return entities;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} records of {prompt_id} expected: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sums and means of a few dollar amounts: equal to the hand computation but for the last
/// bits of f64 rounding.
const EXACT: f64 = 1e-12;
/// Intervals: the hand computation carries 10 to 12 significant digits of the t quantile.
const INTERVAL: f64 = 1e-9;

#[track_caller]
fn close(got: &Value, want: f64, tolerance: f64, what: &str) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {got}"));
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: {got} is not {want} within {tolerance}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_per_record_summary_comparison_and_metrics_match_the_hand_computed_figures() {
    // Token usage the fake reports, in the order of the calls below.
    let calls: [(&str, u32, u32); 7] = [
        ("1.0.0", 1000, 200),
        ("1.0.0", 2000, 400),
        ("1.0.0", 500, 100),
        ("1.0.0", 4000, 600),
        ("1.1.0", 1000, 100),
        ("1.1.0", 3000, 300),
        // The last call goes to the unpriced prompt.
        ("1.0.0", 700, 70),
    ];
    let script = calls
        .iter()
        .map(|&(_, prompt, completion)| {
            Reply::json(200, &Flavor::OpenAi.answer("Noted.", prompt, completion))
        })
        .collect();
    let fake = Fake::start(script).await;
    let extra = endpoint_toml(
        PRICED_REF,
        "openai",
        &format!("{}/v1", fake.url),
        OPENAI_MODEL,
        OPENAI_KEY_VAR,
        "input_price_per_million = 3\noutput_price_per_million = 15",
    );
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            extra,
            ..Endpoints::default()
        },
    )
    .await;
    let (server, token) = (&gw.server, gw.token.as_str());

    // The prices are shown with the endpoint, and left out where there are none.
    let endpoints = server.get(ENDPOINTS, Some(token)).await.ok(200);
    let listed = endpoints["entities"]
        .as_array()
        .unwrap_or_else(|| panic!("{endpoints}"))
        .clone();
    let of = |reference: &str| {
        listed
            .iter()
            .find(|e| e["ref"] == reference)
            .unwrap_or_else(|| panic!("{reference}: {endpoints}"))
            .clone()
    };
    assert_eq!(of(PRICED_REF)["inputPricePerMillion"], json!(3.0));
    assert_eq!(of(PRICED_REF)["outputPricePerMillion"], json!(15.0));
    assert_eq!(of(OPENAI_REF).get("inputPricePerMillion"), None);
    assert_eq!(of(OPENAI_REF).get("outputPricePerMillion"), None);

    let priced = gw
        .create_prompt(&prompt_on("cost-priced", PRICED_REF, "You take notes."))
        .await;
    server
        .put(
            &prompt_path(&priced),
            token,
            &json!({"version": "1.1.0", "systemPrompt": "You take short notes."}),
            None,
        )
        .await
        .ok(200);
    let unpriced = gw
        .create_prompt(&prompt_on("cost-unpriced", OPENAI_REF, "You take notes."))
        .await;
    let mut ids = Vec::new();
    for (i, &(version, _, _)) in calls.iter().enumerate() {
        let prompt = if i < 6 { &priced } else { &unpriced };
        let answer = gw
            .invoke(
                &json!({"promptId": prompt, "version": version, "userInput": format!("note {i}")}),
            )
            .await
            .ok(200);
        ids.push(answer["responseId"].as_str().unwrap().to_owned());
    }

    // Each record: prompt × $3 / 10⁶ + completion × $15 / 10⁶.
    //   1000 × 3 / 10⁶ + 200 × 15 / 10⁶ = 0.003  + 0.003  = 0.006
    //   2000 × 3 / 10⁶ + 400 × 15 / 10⁶ = 0.006  + 0.006  = 0.012
    //    500 × 3 / 10⁶ + 100 × 15 / 10⁶ = 0.0015 + 0.0015 = 0.003
    //   4000 × 3 / 10⁶ + 600 × 15 / 10⁶ = 0.012  + 0.009  = 0.021
    //   1000 × 3 / 10⁶ + 100 × 15 / 10⁶ = 0.003  + 0.0015 = 0.0045  (1.1.0)
    //   3000 × 3 / 10⁶ + 300 × 15 / 10⁶ = 0.009  + 0.0045 = 0.0135  (1.1.0)
    let want = [0.006, 0.012, 0.003, 0.021, 0.0045, 0.0135];
    let stored = records(server, token, &priced, 6).await;
    for (i, cost) in want.iter().enumerate() {
        let record = stored
            .iter()
            .find(|r| r["id"] == ids[i].as_str())
            .unwrap_or_else(|| panic!("record {}: {stored:?}", ids[i]));
        assert_eq!(
            record["tokenUsage"]["prompt"],
            json!(calls[i].1),
            "{record}"
        );
        assert_eq!(
            record["tokenUsage"]["completion"],
            json!(calls[i].2),
            "{record}"
        );
        close(
            &record["costUsd"],
            *cost,
            EXACT,
            &format!("costUsd of call {i}"),
        );
    }
    let plain = records(server, token, &unpriced, 1).await;
    assert_eq!(plain[0].get("costUsd"), None, "unpriced: {}", plain[0]);

    let summary = server
        .get_query(
            SUMMARY,
            token,
            &[("promptId", &priced), ("compareTo", "1.0.0")],
        )
        .await
        .ok(200);
    let entities = summary["entities"].as_array().unwrap();
    let version = |v: &str| entities.iter().find(|e| e["version"] == v).unwrap().clone();
    // 1.0.0: total 0.006 + 0.012 + 0.003 + 0.021 = 0.042 over 4 calls, mean 0.0105.
    // Deviations −0.0045, 0.0015, −0.0075, 0.0105; squares 0.00002025 + 0.00000225 +
    // 0.00005625 + 0.00011025 = 0.000189; s² = 0.000189 / 3 = 0.000063;
    // s / √4 = √0.000063 / 2 = 0.003968626967; t(0.975, 3) = 3.182446305 (tables);
    // half width 3.182446305 × 0.003968626967 = 0.012629942227.
    let one = version("1.0.0")["cost"].clone();
    assert_eq!(one["count"], json!(4), "{summary}");
    close(&one["totalUsd"], 0.042, EXACT, "1.0.0 total");
    close(&one["meanUsd"], 0.0105, EXACT, "1.0.0 mean");
    close(
        &one["meanCi95"][0],
        0.0105 - 0.012_629_942_227,
        INTERVAL,
        "1.0.0 interval low",
    );
    close(
        &one["meanCi95"][1],
        0.0105 + 0.012_629_942_227,
        INTERVAL,
        "1.0.0 interval high",
    );
    // 1.1.0: total 0.0045 + 0.0135 = 0.018, mean 0.009; s² = 2 × 0.0045² / 1 = 0.0000405;
    // s / √2 = 0.0045; t(0.975, 1) = 12.706204736 (tables): half width 0.0571779213.
    let two = version("1.1.0");
    let cost = &two["cost"];
    assert_eq!(cost["count"], json!(2), "{summary}");
    close(&cost["totalUsd"], 0.018, EXACT, "1.1.0 total");
    close(&cost["meanUsd"], 0.009, EXACT, "1.1.0 mean");
    close(
        &cost["meanCi95"][0],
        0.009 - 0.057_177_921_3,
        INTERVAL,
        "1.1.0 interval low",
    );
    close(
        &cost["meanCi95"][1],
        0.009 + 0.057_177_921_3,
        INTERVAL,
        "1.1.0 interval high",
    );
    // Against 1.0.0, Welch: 0.009 − 0.0105 = −0.0015; standard error
    // √(0.000063 / 4 + 0.0000405 / 2) = √0.000036 = 0.006; Welch–Satterthwaite degrees of
    // freedom 0.000036² / ((0.00001575²) / 3 + (0.00002025²) / 1) = 2.630, whose t quantile
    // lies between t(0.975, 3) = 3.1824 and t(0.975, 2) = 4.3027.
    let diff = &two["comparison"]["costMeanUsdDiff"];
    close(&diff["estimate"], -0.0015, EXACT, "the difference");
    let (low, high) = (
        diff["ci95"][0].as_f64().unwrap(),
        diff["ci95"][1].as_f64().unwrap(),
    );
    let half = (high - low) / 2.0;
    assert!(
        (low + half - -0.0015).abs() < EXACT,
        "centred on the estimate: {diff}"
    );
    assert!(
        (3.1824 * 0.006..4.3027 * 0.006).contains(&half),
        "half width {half}: {diff}"
    );
    assert_eq!(diff["significant"], json!(false), "{diff}");
    assert_eq!(version("1.0.0").get("comparison"), None, "{summary}");

    // The unpriced prompt's summary has no cost.
    let summary = server
        .get_query(SUMMARY, token, &[("promptId", &unpriced)])
        .await
        .ok(200);
    assert_eq!(summary["entities"][0].get("cost"), None, "{summary}");
    assert_eq!(summary["entities"][0]["count"], json!(1), "{summary}");

    // /metrics: the dollars per prompt, version and model (the model the provider reported);
    // none for the unpriced prompt.
    let text = server.get("/metrics", None).await.text;
    let value = |version: &str| -> f64 {
        let series = format!(
            "promptgate_cost_usd_total{{prompt=\"cost-priced\",version=\"{version}\",model=\"{OPENAI_REPORTED}\"}} "
        );
        let line = text
            .lines()
            .find(|l| l.starts_with(&series))
            .unwrap_or_else(|| panic!("no {series}in:\n{text}"));
        line[series.len()..].parse().unwrap()
    };
    assert!((value("1.0.0") - 0.042).abs() < 1e-12, "{text}");
    assert!((value("1.1.0") - 0.018).abs() < 1e-12, "{text}");
    assert!(
        text.contains("# TYPE promptgate_cost_usd_total counter\n"),
        "{text}"
    );
    assert!(
        !text.contains("promptgate_cost_usd_total{prompt=\"cost-unpriced\""),
        "{text}"
    );
    promtool_check(&text);

    // The CLI's summary prints the same figures, in dollars to three significant digits:
    // 0.042 → $0.0420, 0.0105 → $0.0105, the difference −0.0015 → -$0.00150.
    let cli = Cli::new(server);
    let output = cli
        .run(&[
            "telemetry",
            "summary",
            "--prompt",
            &priced,
            "--compare-to",
            "1.0.0",
        ])
        .await;
    assert_exit(&output, 0);
    let text = stdout(&output);
    for needle in [
        "1.0.0: cost $0.0420 over 4 priced calls, mean $0.0105 (95% CI -$0.00213 to $0.0231)",
        "1.1.0: cost $0.0180 over 2 priced calls, mean $0.00900 (95% CI -$0.0482 to $0.0662)",
        "1.1.0 vs 1.0.0: mean cost -$0.00150 (95% CI ",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}
