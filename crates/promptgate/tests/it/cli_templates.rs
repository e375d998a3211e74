//! Prompt templates from the command line: `prompts create/update --variables-schema FILE
//! --template-messages FILE`, `prompts render`, `prompts label`, and `invoke --var --vars-file
//! --label`: the built binary against a gateway started by the harness (a fake upstream where
//! the test must see what the model was sent), with the connection given by flags and a `HOME`
//! of its own. Every usage error is found before a request is sent (exit 2); the gateway's
//! refusals exit 3 and name the field.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli_kit::*;
use crate::fake_upstream::*;
use crate::harness::*;

const OFFLINE: &str = "[promptgate offline provider — no model was called]";

/// The test prompts' system prompt: two variables, one with a default.
const SYSTEM: &str = "You are the support agent of {{company}}; the customer is {{customer_name}}.";

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "customer_name": {"type": "string", "maxLength": 50},
            "company": {"type": "string", "default": "Acme"},
            "tier": {"enum": ["gold", "silver"], "default": "silver"}
        },
        "required": ["customer_name"]
    })
}

fn messages() -> Value {
    json!([
        {"role": "user", "content": "I am on the {{tier}} plan."},
        {"role": "assistant", "content": "Noted."}
    ])
}

/// Creates the templated prompt `name` on `model` through the CLI and answers its id.
async fn create_templated(cli: &Cli, name: &str, model: &str) -> String {
    let schema_file = cli.file("schema.json", &schema().to_string());
    let messages_file = cli.file("messages.json", &messages().to_string());
    let created = cli
        .json(&[
            "prompts",
            "create",
            "--name",
            name,
            "--model",
            model,
            "--system-prompt",
            SYSTEM,
            "--variables-schema",
            &schema_file,
            "--template-messages",
            &messages_file,
        ])
        .await;
    assert_eq!(created["variablesSchema"], schema());
    assert_eq!(created["templateMessages"], messages());
    str_field(&created, "id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_with_template_files_then_render() {
    let server = Server::start();
    let token = server.admin_token().await;
    let cli = Cli::new(&server);
    let id = create_templated(&cli, "cli_tpl", "builtin/echo").await;

    // The gateway stored the template, and lists its variables.
    let v1 = server
        .get(&version_path(&id, "1.0.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v1["systemPrompt"], json!(SYSTEM));
    assert_eq!(v1["variablesSchema"], schema());
    assert_eq!(v1["templateMessages"], messages());
    let required: Vec<(String, bool)> = v1["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (str_field(v, "name"), v["required"].as_bool().unwrap()))
        .collect();
    assert!(
        required.contains(&("customer_name".into(), true))
            && required.contains(&("tier".into(), false)),
        "{required:?}"
    );

    // The text view shows the variables (required ones marked) and the template's turns.
    let shown = cli.run(&["prompts", "get", &id]).await;
    assert_exit(&shown, 0);
    let text = stdout(&shown);
    for expected in [
        "customer_name*",
        "labels:        none",
        "user:          I am on the {{tier}} plan.",
        "assistant:     Noted.",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }

    // A version without the schema and without template messages.
    let empty = cli.file("empty.json", "[]");
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.1.0",
        "--system-prompt",
        "Hello {{customer_name}}.",
        "--remove-variables-schema",
        "--template-messages",
        &empty,
    ])
    .await;
    let v2 = server
        .get(&version_path(&id, "1.1.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v2["variablesSchema"], Value::Null, "{v2}");
    assert_eq!(
        v2["templateMessages"],
        Value::Null,
        "left out when none: {v2}"
    );
    assert_eq!(
        v2["variables"],
        json!([{"name": "customer_name", "required": true}])
    );

    // And one with a schema again, from a file.
    let loose = json!({"type": "object", "properties": {"customer_name": {"type": "string"}}});
    let loose_file = cli.file("loose.json", &loose.to_string());
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.2.0",
        "--variables-schema",
        &loose_file,
    ])
    .await;
    let v3 = server
        .get(&version_path(&id, "1.2.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v3["variablesSchema"], loose);
    assert_eq!(
        v3["systemPrompt"],
        json!("Hello {{customer_name}}."),
        "kept from 1.1.0"
    );

    // Render: --var wins over --vars-file; the defaults fill the rest.
    let vars = cli.file("vars.json", r#"{"customer_name": "File", "tier": "gold"}"#);
    let rendered = cli
        .json(&[
            "prompts",
            "render",
            &id,
            "--version",
            "1.0.0",
            "--vars-file",
            &vars,
            "--var",
            "customer_name=Jane",
        ])
        .await;
    assert_eq!(
        rendered["systemPrompt"],
        json!("You are the support agent of Acme; the customer is Jane.")
    );
    assert_eq!(rendered["version"], json!("1.0.0"));
    assert_eq!(
        rendered["templateMessages"][0]["content"],
        json!("I am on the gold plan.")
    );
    assert_eq!(
        rendered["systemPromptTokens"],
        json!(o200k(
            "You are the support agent of Acme; the customer is Jane."
        ))
    );
    assert_eq!(
        rendered["variables"],
        json!({"customer_name": "Jane", "company": "Acme", "tier": "gold"})
    );

    // The text form: each rendered text under a heading with its token count.
    let output = cli
        .run(&[
            "prompts",
            "render",
            &id,
            "--version",
            "1.0.0",
            "--var",
            "customer_name=Jane",
        ])
        .await;
    assert_exit(&output, 0);
    let text = stdout(&output);
    let system_tokens = o200k("You are the support agent of Acme; the customer is Jane.");
    let user_tokens = rendered["templateMessages"][0]["tokens"].as_u64().unwrap();
    for expected in [
        format!("prompt {id} version 1.0.0 (o200k_base)"),
        format!("--- system prompt ({system_tokens} tokens)"),
        "You are the support agent of Acme; the customer is Jane.".to_owned(),
        format!("--- user ({user_tokens} tokens)"),
        "I am on the silver plan.".to_owned(),
        "--- assistant (".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} missing:\n{text}");
    }

    // Without --version: the default version (1.0.0); the gateway's checks name the field.
    let missing = cli.run(&["prompts", "render", &id]).await;
    assert_fails(&missing, 3, &["variables.customer_name"]);
    let unknown = cli
        .run(&[
            "prompts",
            "render",
            &id,
            "--var",
            "customer_name=Jane",
            "--var",
            "custmer=x",
        ])
        .await;
    assert_fails(&unknown, 3, &["variables.custmer"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_created_moved_and_deleted() {
    let server = Server::start();
    let token = server.admin_token().await;
    let cli = Cli::new(&server);
    let id = create_templated(&cli, "cli_labels", "builtin/echo").await;
    cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.1.0",
        "--system-prompt",
        "Hi {{customer_name}}.",
    ])
    .await;

    let created = cli
        .json(&["prompts", "label", &id, "production", "1.1.0"])
        .await;
    assert_eq!(created["labels"], json!({"production": "1.1.0"}));
    let output = cli
        .run(&["prompts", "label", &id, "staging", "1.0.0"])
        .await;
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.contains("label staging now points at 1.0.0 on prompt \"cli_labels\"")
            && text.contains("labels:        production=1.1.0 staging=1.0.0"),
        "{text}"
    );
    // Moved, with the prompt's ETag as a precondition.
    let etag = server.get(&prompt_path(&id), Some(&token)).await.etag();
    let moved = cli
        .json(&[
            "prompts",
            "label",
            &id,
            "production",
            "1.0.0",
            "--if-match",
            &etag,
        ])
        .await;
    assert_eq!(
        moved["labels"],
        json!({"production": "1.0.0", "staging": "1.0.0"})
    );
    let stale = cli
        .run(&[
            "prompts",
            "label",
            &id,
            "production",
            "1.1.0",
            "--if-match",
            &etag,
        ])
        .await;
    assert_fails(&stale, 3, &["changed since it was read"]);

    // The label serves renders.
    let rendered = cli
        .json(&[
            "prompts",
            "render",
            &id,
            "--label",
            "production",
            "--var",
            "customer_name=Jane",
        ])
        .await;
    assert_eq!(rendered["version"], json!("1.0.0"));

    let deleted = cli
        .json(&["prompts", "label", &id, "production", "--delete"])
        .await;
    assert_eq!(deleted["labels"], json!({"staging": "1.0.0"}));
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["labels"], json!({"staging": "1.0.0"}));

    // The gateway's refusals: a label that is not there, an unknown version, a bad name.
    let again = cli
        .run(&["prompts", "label", &id, "production", "--delete"])
        .await;
    assert_fails(&again, 3, &["not found", "production"]);
    let unknown_version = cli.run(&["prompts", "label", &id, "qa", "9.9.9"]).await;
    assert_fails(&unknown_version, 3, &["version 9.9.9 does not exist"]);
    let bad_name = cli
        .run(&["prompts", "label", &id, "Production", "1.0.0"])
        .await;
    assert_fails(&bad_name, 3, &["Production", "is not a label name"]);
    let render_gone = cli
        .run(&[
            "prompts",
            "render",
            &id,
            "--label",
            "production",
            "--var",
            "customer_name=Jane",
        ])
        .await;
    assert_fails(&render_gone, 3, &["not found", "production"]);

    // Usage errors, before any request: neither a version nor --delete, or both.
    let neither = cli.run(&["prompts", "label", &id, "qa"]).await;
    assert_fails(&neither, 2, &["<VERSION>"]);
    let both = cli
        .run(&["prompts", "label", &id, "qa", "1.0.0", "--delete"])
        .await;
    assert_fails(&both, 2, &["--delete"]);
    let render_both = cli
        .run(&[
            "prompts",
            "render",
            &id,
            "--label",
            "staging",
            "--version",
            "1.0.0",
        ])
        .await;
    assert_fails(&render_both, 2, &["--label", "--version"]);
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(
        stored["labels"],
        json!({"staging": "1.0.0"}),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_template_files_are_refused_before_any_request() {
    let server = Server::start();
    let token = server.admin_token().await;
    let cli = Cli::new(&server);
    let not_json = cli.file("not_json.json", "{\"type\": ");
    let a_list = cli.file("a_list.json", "[1, 2]");
    let an_object = cli.file("an_object.json", r#"{"role": "user", "content": "Hi"}"#);
    let no_content = cli.file("no_content.json", r#"[{"role": "user"}]"#);
    let absent = cli.home.path().join("absent.json").display().to_string();
    let cli = &cli;
    let create = |flag: &'static str, file: String| async move {
        let output = cli
            .run(&[
                "prompts",
                "create",
                "--name",
                "never",
                "--model",
                "builtin/echo",
                "--system-prompt",
                "Hi {{name}}.",
                flag,
                &file,
            ])
            .await;
        (output, file)
    };
    for (flag, file, why) in [
        ("--variables-schema", not_json.clone(), "not valid JSON"),
        ("--variables-schema", a_list.clone(), "an array"),
        ("--variables-schema", absent.clone(), "cannot read"),
        ("--template-messages", not_json.clone(), "not valid JSON"),
        ("--template-messages", an_object.clone(), "an object"),
        ("--template-messages", no_content.clone(), "\"content\""),
    ] {
        let (output, file) = create(flag, file).await;
        assert_fails(&output, 2, &[flag, &file, why]);
    }
    let listed = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(listed["entities"], json!([]), "no prompt was created");

    // The same files on update: no version is added.
    let (created, _) = server
        .create_prompt(&token, &prompt_body("cli_files"))
        .await;
    let id = str_field(&created, "id");
    for (flag, file) in [
        ("--variables-schema", &not_json),
        ("--template-messages", &a_list),
    ] {
        let output = cli
            .run(&["prompts", "update", &id, "--version", "1.1.0", flag, file])
            .await;
        assert_fails(&output, 2, &[flag, file.as_str()]);
    }
    let both = cli
        .run(&[
            "prompts",
            "update",
            &id,
            "--version",
            "1.1.0",
            "--variables-schema",
            &a_list,
            "--remove-variables-schema",
        ])
        .await;
    assert_fails(&both, 2, &["--remove-variables-schema"]);
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["versions"], json!(["1.0.0"]), "no version was added");

    // A schema the gateway refuses (it does not declare a placeholder): its 400 says which.
    let narrow = cli.file(
        "narrow.json",
        r#"{"type": "object", "properties": {"other": {"type": "string"}}}"#,
    );
    let (output, _) = create("--variables-schema", narrow).await;
    assert_fails(&output, 3, &["{{name}} is not declared in variablesSchema"]);
}

/// Adds version 1.1.0 with `system_prompt` to prompt `id` and points `staging` at it.
async fn add_staging_version(cli: &Cli, id: &str, system_prompt: &str) {
    cli.json(&[
        "prompts",
        "update",
        id,
        "--version",
        "1.1.0",
        "--system-prompt",
        system_prompt,
    ])
    .await;
    cli.json(&["prompts", "label", id, "staging", "1.1.0"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_sends_variables_and_a_label() {
    let fake = Fake::start(vec![
        Reply::json(200, &Flavor::OpenAi.answer("First.", 5, 1)),
        Reply::json(200, &Flavor::OpenAi.answer("Second.", 5, 1)),
    ])
    .await;
    let gw = Gateway::start_with(fake, Endpoints::default()).await;
    let cli = Cli::new(&gw.server);
    let id = create_templated(&cli, "cli_vars", OPENAI_REF).await;
    add_staging_version(
        &cli,
        &id,
        "Staging agent of {{company}} for {{customer_name}}.",
    )
    .await;

    // By name, with the file's variables, one of them overridden by --var, through the label.
    let vars = cli.file("vars.json", r#"{"customer_name": "File", "tier": "gold"}"#);
    let answer = cli
        .json(&[
            "invoke",
            "cli_vars",
            "Where is my order?",
            "--var",
            "customer_name=Jane",
            "--vars-file",
            &vars,
            "--label",
            "staging",
        ])
        .await;
    assert_eq!(answer["version"], json!("1.1.0"));
    assert_eq!(answer["output"], json!("First."));
    let sent = gw.fake.only_request();
    assert_eq!(
        sent.json()["messages"],
        json!([
            {"role": "system", "content": "Staging agent of Acme for Jane."},
            {"role": "user", "content": "I am on the gold plan."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Where is my order?"}
        ]),
        "the template's turns come between the system prompt and the input"
    );

    // Text output, by id, pinned to a version, with only --var.
    let output = cli
        .run(&[
            "invoke",
            &id,
            "Hi",
            "--version",
            "1.0.0",
            "--var",
            "customer_name=Joe",
        ])
        .await;
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "Second.\n");
    assert!(
        stderr(&output).contains("version 1.0.0"),
        "{}",
        stderr(&output)
    );
    let sent = gw.fake.requests();
    assert_eq!(
        sent[1].json()["messages"][0]["content"],
        json!("You are the support agent of Acme; the customer is Joe.")
    );

    // Telemetry records the label and the variable names, never their values.
    let token = gw.token.clone();
    let server = &gw.server;
    let recorded = eventually(Duration::from_secs(10), || async {
        let list = server
            .get_query(
                "/api/v2/ai/llm/gateway/telemetry",
                &token,
                &[("label", "staging")],
            )
            .await
            .ok(200);
        list["entities"].as_array().is_some_and(|e| e.len() == 1)
    })
    .await;
    assert!(recorded, "the labelled invocation is recorded");
    let listed = cli
        .json(&["telemetry", "list", "--prompt", &id, "--label", "staging"])
        .await;
    let records = listed.as_array().unwrap();
    assert_eq!(records.len(), 1, "{listed}");
    assert_eq!(records[0]["label"], json!("staging"));
    let mut names: Vec<String> = records[0]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["customer_name", "tier"]);
    assert!(!listed.to_string().contains("Jane"), "{listed}");

    // Usage errors: nothing reaches the gateway (the fake saw two requests, still).
    let not_json = cli.file("not_json.json", "{");
    let a_list = cli.file("a_list.json", "[\"Jane\"]");
    for (args, needles) in [
        (
            vec!["--var", "customer_name"],
            vec!["--var", "customer_name", "NAME=VALUE"],
        ),
        (vec!["--var", "=Jane"], vec!["--var", "no name"]),
        (
            vec!["--vars-file", not_json.as_str()],
            vec!["--vars-file", not_json.as_str(), "not valid JSON"],
        ),
        (
            vec!["--vars-file", a_list.as_str()],
            vec!["--vars-file", a_list.as_str(), "not a JSON object"],
        ),
        (
            vec!["--label", "staging", "--version", "1.0.0"],
            vec!["--label", "--version"],
        ),
    ] {
        let mut all = vec!["invoke", "cli_vars", "Hi"];
        all.extend(args.iter().copied());
        let output = cli.run(&all).await;
        assert_fails(&output, 2, &needles);
    }
    assert_eq!(
        gw.fake.requests().len(),
        2,
        "no usage error reached the model"
    );

    // The gateway's refusals name the variable or the label, and call no model.
    let missing = cli
        .run(&["invoke", "cli_vars", "Hi", "--label", "staging"])
        .await;
    assert_fails(&missing, 3, &["variables.customer_name"]);
    let wrong = cli
        .run(&[
            "invoke",
            "cli_vars",
            "Hi",
            "--var",
            "customer_name=Jane",
            "--var",
            "tier=bronze",
        ])
        .await;
    assert_fails(&wrong, 3, &["variables.tier"]);
    let unknown_label = cli
        .run(&[
            "invoke",
            "cli_vars",
            "Hi",
            "--label",
            "nowhere",
            "--var",
            "customer_name=Jane",
        ])
        .await;
    assert_fails(&unknown_label, 3, &["not found", "nowhere"]);
    assert_eq!(
        gw.fake.requests().len(),
        2,
        "no refused invocation reached the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sends_the_variables_and_the_label_with_every_message() {
    let fake = Fake::start(vec![
        Reply::sse(&Flavor::OpenAi.full_stream(&["First."], 1)),
        Reply::sse(&Flavor::OpenAi.full_stream(&["Second."], 1)),
    ])
    .await;
    let gw = Gateway::start_with(fake, Endpoints::default()).await;
    let cli = Cli::new(&gw.server);
    let id = create_templated(&cli, "cli_chat_vars", OPENAI_REF).await;
    add_staging_version(&cli, &id, "Agent for {{customer_name}}.").await;
    let output = cli
        .run_with_stdin(
            &[
                "chat",
                "cli_chat_vars",
                "--label",
                "staging",
                "--var",
                "customer_name=Jane",
            ],
            "one\ntwo\n",
        )
        .await;
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "First.\nSecond.\n");
    let sent = gw.fake.requests();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        assert_eq!(
            request.json()["messages"][0],
            json!({"role": "system", "content": "Agent for Jane."}),
            "both turns are served by the label's version with the variables"
        );
    }
    let bad = cli
        .run_with_stdin(
            &["chat", "cli_chat_vars", "--var", "customer_name"],
            "one\n",
        )
        .await;
    assert_fails(&bad, 2, &["--var", "NAME=VALUE"]);
    assert_eq!(gw.fake.requests().len(), 2, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_prompt_is_invoked_as_before() {
    let server = Server::start();
    let token = server.admin_token().await;
    server
        .create_prompt(&token, &prompt_body("cli_plain"))
        .await;
    let cli = Cli::new(&server);
    let output = cli.run(&["invoke", "cli_plain", "Hello"]).await;
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), format!("{OFFLINE} You said: Hello\n"));
    // A variable the prompt does not declare is refused by the gateway.
    let output = cli
        .run(&["invoke", "cli_plain", "Hello", "--var", "name=x"])
        .await;
    assert_fails(&output, 3, &["variables.name"]);
}
