//! Tools and structured output from the command line: `prompts create/update --tools FILE
//! --tool-choice --response-format` and their `--remove-…` flags, `prompts get`/`versions`
//! showing them, `invoke` printing tool calls, `parsed` and `outputErrors` and continuing with
//! `--messages-file`, `chat` asking for a tool's result, and `telemetry summary` with the
//! schema-valid rate. The built binary against a gateway started by the harness, on the offline
//! provider (`builtin/echo`: `call NAME {JSON}` is answered with that call, a tool's result with
//! "The tool answered: …", and its text is never JSON). Usage errors exit 2 before any request
//! and name the flag; the gateway's refusals exit 3 and name the field.

use serde_json::{Value, json};

use crate::cli_kit::*;
use crate::harness::*;

const ARGS: &str = r#"{"id": "A-1"}"#;

#[track_caller]
fn assert_holds(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

fn order_parameters() -> Value {
    json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]})
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_order",
            "description": "Looks an order up by its id.", "parameters": order_parameters()}},
        {"type": "function", "function": {"name": "cancel_order", "parameters": order_parameters()}}
    ])
}

fn answer_schema() -> Value {
    json!({"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]})
}

/// Creates a prompt on the offline provider with `flags` (after the name, model and system
/// prompt) and answers its JSON.
async fn create(cli: &Cli, name: &str, flags: &[&str]) -> Value {
    let mut args = vec![
        "prompts",
        "create",
        "--name",
        name,
        "--model",
        "builtin/echo",
        "--system-prompt",
        "You look orders up.",
    ];
    args.extend_from_slice(flags);
    cli.json(&args).await
}

/// The prompt `order_desk` with the two tools; answers its id.
async fn order_desk(cli: &Cli) -> String {
    let tools_file = cli.file("tools.json", &tools().to_string());
    let created = create(cli, "order_desk", &["--tools", &tools_file]).await;
    str_field(&created, "id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_with_tool_flags_then_show_them() {
    let server = Server::start();
    let token = server.admin_token().await;
    let cli = Cli::new(&server);
    let tools_file = cli.file("tools.json", &tools().to_string());
    let spec = json!({"name": "answer", "schema": answer_schema(), "strict": true});
    let spec_file = cli.file("answer.json", &spec.to_string());
    let created = create(
        &cli,
        "order_desk",
        &[
            "--tools",
            &tools_file,
            "--tool-choice",
            "get_order",
            "--response-format",
            &spec_file,
        ],
    )
    .await;
    let id = str_field(&created, "id");
    assert_eq!(created["tools"], tools());
    assert_eq!(
        created["toolChoice"],
        json!({"type": "function", "function": {"name": "get_order"}})
    );
    assert_eq!(
        created["responseFormat"],
        json!({"type": "json_schema", "json_schema": spec})
    );

    // The text view shows each tool, the choice and the format.
    let shown = cli.run(&["prompts", "get", &id]).await;
    assert_exit(&shown, 0);
    assert_holds(
        &stdout(&shown),
        &[
            "tool:          get_order — Looks an order up by its id.; parameters {",
            "tool:          cancel_order; parameters {",
            "tool choice:   function get_order",
            "output format: json_schema answer (strict); schema {",
        ],
    );

    // Each removed: the stored version has none of them.
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.1.0",
        "--remove-tools",
        "--remove-tool-choice",
        "--remove-response-format",
    ])
    .await;
    let v2 = server
        .get(&version_path(&id, "1.1.0"), Some(&token))
        .await
        .ok(200);
    for field in ["tools", "toolChoice", "responseFormat"] {
        assert_eq!(v2[field], Value::Null, "{field} left out when none: {v2}");
    }
    // Set again with words: a required call and any JSON.
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.2.0",
        "--tools",
        &tools_file,
        "--tool-choice",
        "required",
        "--response-format",
        "json_object",
    ])
    .await;
    let v3 = server
        .get(&version_path(&id, "1.2.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v3["tools"], tools());
    assert_eq!(v3["toolChoice"], json!("required"));
    assert_eq!(v3["responseFormat"], json!({"type": "json_object"}));

    // Left out, a new version keeps them; the versions table counts tools and names formats.
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.3.0",
        "--system-prompt",
        "Be brief.",
    ])
    .await;
    let v4 = server
        .get(&version_path(&id, "1.3.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v4["tools"], tools());
    assert_eq!(v4["toolChoice"], json!("required"));
    let table = cli.run(&["prompts", "versions", &id]).await;
    assert_exit(&table, 0);
    let text = stdout(&table);
    assert_holds(&text, &["TOOLS", "OUTPUT"]);
    let row = |version: &str| {
        text.lines()
            .find(|l| l.starts_with(version))
            .unwrap_or_else(|| panic!("no row for {version}:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(&row("1.0.0")[3..5], ["2", "json_schema"], "{text}");
    assert_eq!(&row("1.1.0")[3..5], ["0", "-"], "{text}");
    assert_eq!(&row("1.2.0")[3..5], ["2", "json_object"], "{text}");

    // The whole responseFormat object, as OpenAI writes it, is read too.
    let whole = cli.file(
        "whole.json",
        &json!({"type": "json_schema", "json_schema": spec}).to_string(),
    );
    let updated = cli
        .json(&[
            "prompts",
            "update",
            &id,
            "--version",
            "1.4.0",
            "--response-format",
            &whole,
        ])
        .await;
    assert_eq!(
        updated["responseFormat"],
        json!({"type": "json_schema", "json_schema": spec})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_prints_tool_calls_and_continues_with_a_messages_file() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = order_desk(&cli).await;
    let asked = format!("call get_order {ARGS}");

    let answer = cli.json(&["invoke", &id, &asked]).await;
    assert_eq!(answer["finishReason"], json!("tool_calls"));
    let call = &answer["toolCalls"][0];
    assert_eq!(call["name"], json!("get_order"));
    assert_eq!(call["arguments"], json!(ARGS));
    let call_id = str_field(call, "id");

    // The text form: the call is the answer, on standard output; the finish reason is noted.
    let text = cli.run(&["invoke", &id, &asked]).await;
    assert_exit(&text, 0);
    assert_eq!(
        stdout(&text),
        format!("tool call {call_id}: get_order {ARGS}\n")
    );
    assert_holds(&stderr(&text), &["finish tool_calls"]);
    // Streamed, the same.
    let streamed = cli.run(&["invoke", &id, &asked, "--stream"]).await;
    assert_exit(&streamed, 0);
    assert_eq!(
        stdout(&streamed),
        format!("tool call {call_id}: get_order {ARGS}\n")
    );

    // The conversation goes on from a file: the call and the tool's result, no new input.
    let turns = json!([
        {"role": "user", "content": asked},
        {"role": "assistant", "content": "", "toolCalls": [call]},
        {"role": "tool", "toolCallId": call_id, "content": "{\"status\": \"shipped\"}"}
    ]);
    let turns_file = cli.file("turns.json", &turns.to_string());
    let finished = cli
        .run(&["invoke", &id, "--messages-file", &turns_file])
        .await;
    assert_exit(&finished, 0);
    assert_holds(
        &stdout(&finished),
        &[r#"The tool answered: {"status": "shipped"}"#],
    );
    assert!(
        !stderr(&finished).contains("finish"),
        "{}",
        stderr(&finished)
    );
    // Read from standard input, and with something more to say.
    let piped = cli
        .run_with_stdin(
            &["invoke", &id, "Thanks!", "--messages-file", "-", "--json"],
            &turns.to_string(),
        )
        .await;
    assert_exit(&piped, 0);
    let piped: Value = serde_json::from_str(&stdout(&piped)).unwrap();
    assert_eq!(piped["finishReason"], json!("stop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_asks_for_a_tools_result_and_sends_it_back() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = order_desk(&cli).await;
    let output = cli
        .run_with_stdin(
            &["chat", &id],
            &format!("call get_order {ARGS}\n{{\"status\": \"shipped\"}}\n\n"),
        )
        .await;
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert_holds(
        &out,
        &[
            &format!("get_order {ARGS}"),
            r#"The tool answered: {"status": "shipped"}"#,
        ],
    );
    assert_holds(&stderr(&output), &["result of get_order ("]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_outputs_are_reported_and_summarised_with_the_schema_valid_rate() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let spec_file = cli.file(
        "answer.json",
        &json!({"name": "answer", "schema": answer_schema()}).to_string(),
    );
    let created = create(&cli, "json_desk", &["--response-format", &spec_file]).await;
    let id = str_field(&created, "id");
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.1.0",
        "--response-format",
        "json_object",
    ])
    .await;

    // The offline provider never answers JSON: parsed is null, with the reasons.
    let answer = cli
        .json(&["invoke", &id, "Where is my order?", "--version", "1.0.0"])
        .await;
    assert_eq!(answer["parsed"], Value::Null);
    assert!(
        answer.as_object().unwrap().contains_key("parsed"),
        "{answer}"
    );
    let errors = answer["outputErrors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{answer}");
    let text = cli
        .run(&["invoke", &id, "Where is my order?", "--version", "1.1.0"])
        .await;
    assert_exit(&text, 0);
    assert_holds(
        &stderr(&text),
        &["the output does not match the response format:\n  "],
    );
    assert_holds(&stdout(&text), &["You said: Where is my order?"]);

    let summary = cli
        .run(&[
            "telemetry",
            "summary",
            "--prompt",
            &id,
            "--compare-to",
            "1.0.0",
        ])
        .await;
    assert_exit(&summary, 0);
    let text = stdout(&summary);
    assert_holds(
        &text,
        &[
            "1.0.0: schema-valid 0.00% (0 of 1; 95% CI 0.00% to ",
            "1.1.0: schema-valid 0.00% (0 of 1; 95% CI 0.00% to ",
            "1.1.0 vs 1.0.0: schema-valid rate",
        ],
    );
    let json = cli.json(&["telemetry", "summary", "--prompt", &id]).await;
    let rate = &json["entities"][0]["schemaValidRate"];
    assert_eq!(
        (rate["count"].clone(), rate["valid"].clone()),
        (json!(1), json!(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tool_flags_are_usage_errors_naming_the_flag_before_any_request() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let create_args = |flag: &'static str, value: String| {
        vec![
            "prompts".to_owned(),
            "create".to_owned(),
            "--name".to_owned(),
            "broken".to_owned(),
            "--model".to_owned(),
            "builtin/echo".to_owned(),
            "--system-prompt".to_owned(),
            "x".to_owned(),
            flag.to_owned(),
            value,
        ]
    };
    let missing = cli.home.path().join("missing.json").display().to_string();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            create_args("--tools", missing.clone()),
            vec!["--tools", "missing.json", "cannot read"],
        ),
        (
            create_args("--tools", cli.file("broken.json", "[{")),
            vec!["--tools", "broken.json", "not valid JSON"],
        ),
        (
            create_args(
                "--tools",
                cli.file("object.json", r#"{"type": "function"}"#),
            ),
            vec![
                "--tools",
                "object.json",
                "expected a JSON array",
                "not an object",
            ],
        ),
        (
            create_args(
                "--tools",
                cli.file("nameless.json", r#"[{"type": "function"}]"#),
            ),
            vec![
                "--tools",
                "nameless.json",
                "item 0 has no \"function\".\"name\"",
            ],
        ),
        (
            create_args("--tool-choice", String::new()),
            vec!["--tool-choice is empty"],
        ),
        (
            create_args("--response-format", missing.clone()),
            vec![
                "--response-format",
                "missing.json",
                "cannot read",
                "text, json_object",
            ],
        ),
        (
            create_args(
                "--response-format",
                cli.file("unnamed.json", r#"{"schema": {"type": "object"}}"#),
            ),
            vec!["--response-format", "unnamed.json", "no string \"name\""],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = cli.run(&args).await;
        assert_fails(&output, 2, &needles);
    }
    // Removing and setting the same thing at once is clap's usage error.
    let tools_file = cli.file("tools.json", &tools().to_string());
    let both = cli
        .run(&[
            "prompts",
            "update",
            "01a21b90-f811-7001-9495-3ba146e3a674",
            "--version",
            "1.1.0",
            "--tools",
            &tools_file,
            "--remove-tools",
        ])
        .await;
    assert_fails(&both, 2, &["--remove-tools", "--tools"]);
    // invoke: a bad messages file, and no input without a tool's result to answer.
    let id = "01a21b90-f811-7001-9495-3ba146e3a674";
    let turns = cli.file("turns.json", r#"[{"content": "hi"}]"#);
    let bad_turns = cli
        .run(&["invoke", id, "hi", "--messages-file", &turns])
        .await;
    assert_fails(
        &bad_turns,
        2,
        &[
            "--messages-file",
            "turns.json",
            "item 0 has no string \"role\"",
        ],
    );
    let user_last = cli.file("user.json", r#"[{"role": "user", "content": "hi"}]"#);
    let no_input = cli
        .run(&["invoke", id, "--messages-file", &user_last])
        .await;
    assert_fails(&no_input, 2, &["give what the user says", "tool's result"]);
    let both_stdin = cli.run(&["invoke", id, "-", "--messages-file", "-"]).await;
    assert_fails(
        &both_stdin,
        2,
        &["the input and --messages-file", "standard input"],
    );

    // None of them reached the gateway: nothing was created.
    let listed = cli.json(&["prompts", "list"]).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_refusal_of_tool_settings_names_the_field() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let duplicate = json!([
        {"type": "function", "function": {"name": "get_order", "parameters": order_parameters()}},
        {"type": "function", "function": {"name": "get_order", "parameters": order_parameters()}}
    ]);
    let file = cli.file("dup.json", &duplicate.to_string());
    let output = cli
        .run(&[
            "prompts",
            "create",
            "--name",
            "dup",
            "--model",
            "builtin/echo",
            "--system-prompt",
            "x",
            "--tools",
            &file,
        ])
        .await;
    assert_fails(
        &output,
        3,
        &[
            "invalid tool settings",
            "tools[1].function.name",
            "contextId",
        ],
    );

    let id = order_desk(&cli).await;
    let unknown = cli
        .run(&[
            "prompts",
            "update",
            &id,
            "--version",
            "1.1.0",
            "--tool-choice",
            "missing_tool",
        ])
        .await;
    assert_fails(&unknown, 3, &["toolChoice"]);
}
