//! The `promptgate prompts …`, `model-endpoints` and `completions` commands: the built binary
//! against a gateway started by the harness, with the connection given by flags, by
//! `PROMPTGATE_*` variables or by a profile file, and its exit codes (2 usage, 3 API error,
//! 4 transport error).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::*;

/// How the CLI learns the gateway and its credentials.
enum Via {
    Flags,
    Env,
    /// Nothing: the profile file (or nothing at all) must supply them.
    Nothing,
}

/// The CLI with its own `HOME` (so no profile but the test's is read) and no inherited
/// `PROMPTGATE_*` variables.
struct Cli {
    home: TempDir,
    url: String,
    id: String,
    secret: String,
}

impl Cli {
    fn new(server: &Server) -> Cli {
        Cli {
            home: tempfile::tempdir().unwrap(),
            url: server.base.clone(),
            id: server.admin_id.clone(),
            secret: server.admin_secret.clone(),
        }
    }

    /// A CLI for commands that need no gateway.
    fn offline() -> Cli {
        Cli {
            home: tempfile::tempdir().unwrap(),
            url: String::new(),
            id: String::new(),
            secret: String::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Writes `text` to a file in the test's directory and answers its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn command(&self, via: Via, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("PROMPTGATE_URL")
            .env_remove("PROMPTGATE_CLIENT_ID")
            .env_remove("PROMPTGATE_CLIENT_SECRET")
            .env_remove("PROMPTGATE_DATABASE_URL")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", self.dir());
        match via {
            Via::Flags => {
                cmd.args([
                    "--url",
                    &self.url,
                    "--client-id",
                    &self.id,
                    "--client-secret",
                    &self.secret,
                ]);
            }
            Via::Env => {
                cmd.env("PROMPTGATE_URL", &self.url)
                    .env("PROMPTGATE_CLIENT_ID", &self.id)
                    .env("PROMPTGATE_CLIENT_SECRET", &self.secret);
            }
            Via::Nothing => {}
        }
        cmd.args(args);
        cmd
    }

    /// Runs with the connection given by flags.
    fn run(&self, args: &[&str]) -> Output {
        self.run_via(Via::Flags, args)
    }

    fn run_via(&self, via: Via, args: &[&str]) -> Output {
        let mut cmd = self.command(via, args);
        cmd.stdin(Stdio::null());
        run_bounded(cmd)
    }

    /// Runs with `input` on standard input.
    fn run_with_stdin(&self, via: Via, args: &[&str], input: &str) -> Output {
        let mut cmd = self.command(via, args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{cmd:?} did not finish within 30 s"))
            .unwrap()
    }

    /// Runs a command that must succeed with `--json` and answers the one JSON document it
    /// printed.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        success_json(&output)
    }

    /// `~/.config/promptgate/config.toml` with `mode`.
    fn write_profile(&self, base: &Path, text: &str, mode: u32) -> PathBuf {
        let dir = base.join("promptgate");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn profile_text(&self) -> String {
        format!(
            "url = {:?}\nclient_id = {:?}\nclient_secret = {:?}\n",
            self.url, self.id, self.secret
        )
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Asserts success and that standard output is exactly one JSON document.
#[track_caller]
fn success_json(output: &Output) -> Value {
    assert_success(output);
    serde_json::from_str(stdout(output).trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr: {}",
            stdout(output),
            stderr(output)
        )
    })
}

/// The names of the prompts the gateway lists, sorted, read over HTTP.
async fn names_on_server(server: &Server) -> Vec<String> {
    let token = server.admin_token().await;
    let body = server
        .get_query(PROMPTS, &token, &[("pageSize", "500")])
        .await
        .ok(200);
    let mut names: Vec<String> = body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_field(p, "name"))
        .collect();
    names.sort();
    names
}

/// Creates a prompt over HTTP and answers its id.
async fn create_over_http(server: &Server, name: &str) -> String {
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &full_prompt_body(name)).await;
    str_field(&created, "id")
}

// ---- prompts create ----

#[tokio::test]
async fn create_from_a_file_then_get() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let file = cli.file("prompt.json", &full_prompt_body("from_file").to_string());
    let created = cli.json(&["prompts", "create", "--file", &file]);
    assert_eq!(created["name"], json!("from_file"));
    assert_eq!(created["status"], json!("ACTIVE"));
    assert_eq!(created["version"], json!("1.0.0"));
    assert_eq!(
        created["safetyGuardrails"]["blockedCategories"],
        json!(["violence", "hate_speech", "self_harm"])
    );
    let id = str_field(&created, "id");

    // The gateway has it.
    let token = server.admin_token().await;
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["name"], json!("from_file"));

    let got = cli.json(&["prompts", "get", &id]);
    assert_eq!(got["id"], json!(id));
    assert_eq!(
        got["systemPrompt"],
        json!("You are a helpful customer support agent.")
    );

    // Text for people: the fields and the ETag.
    let output = cli.run(&["prompts", "get", &id]);
    assert_success(&output);
    let text = stdout(&output);
    for expected in [
        id.as_str(),
        "from_file",
        "ACTIVE",
        "builtin/echo",
        "etag:",
        "You are a helpful customer support agent.",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
}

#[tokio::test]
async fn create_from_standard_input_with_the_connection_in_env_vars() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let output = cli.run_with_stdin(
        Via::Env,
        &["prompts", "create", "--file", "-", "--json"],
        &prompt_body("from_stdin").to_string(),
    );
    let created = success_json(&output);
    assert_eq!(created["name"], json!("from_stdin"));
    assert_eq!(names_on_server(&server).await, vec!["from_stdin"]);

    // Env vars work for the other commands too.
    let output = cli.run_via(Via::Env, &["prompts", "list", "--json"]);
    let listed = success_json(&output);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn create_from_flags() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let created = cli.json(&[
        "prompts",
        "create",
        "--name",
        "from_flags",
        "--model",
        "builtin/echo",
        "--system-prompt",
        "You are a concise support agent.",
        "--temperature",
        "0.3",
        "--version",
        "2.0.0",
        "--filters",
        "pii,profanity",
        "--max-tokens",
        "100",
    ]);
    assert_eq!(created["name"], json!("from_flags"));
    assert_eq!(created["modelEndpointRef"], json!("builtin/echo"));
    assert_eq!(
        created["systemPrompt"],
        json!("You are a concise support agent.")
    );
    assert_eq!(created["temperature"], json!(0.3));
    assert_eq!(created["version"], json!("2.0.0"));
    assert_eq!(created["versions"], json!(["2.0.0"]));
    assert_eq!(
        created["safetyGuardrails"]["contentFiltering"],
        json!(["pii", "profanity"])
    );
    assert_eq!(created["safetyGuardrails"]["maxTokens"], json!(100));

    // Without --json: a line for people.
    let output = cli.run(&[
        "prompts",
        "create",
        "--name",
        "for_people",
        "--model",
        "builtin/echo",
        "--system-prompt",
        "Hi.",
    ]);
    assert_success(&output);
    assert!(
        stdout(&output).contains("created prompt \"for_people\""),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        names_on_server(&server).await,
        vec!["for_people", "from_flags"]
    );
}

#[tokio::test]
async fn create_with_the_system_prompt_from_a_file_or_standard_input() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let text = "You are a support agent.\nAnswer in one sentence.";
    let file = cli.file("system.txt", text);
    let created = cli.json(&[
        "prompts",
        "create",
        "--name",
        "sp_file",
        "--model",
        "builtin/echo",
        "--system-prompt-file",
        &file,
    ]);
    assert_eq!(created["systemPrompt"], json!(text));
    assert_eq!(created["systemPromptTokens"], json!(o200k(text)));

    let output = cli.run_with_stdin(
        Via::Flags,
        &[
            "prompts",
            "create",
            "--name",
            "sp_stdin",
            "--model",
            "builtin/echo",
            "--system-prompt-file",
            "-",
            "--json",
        ],
        text,
    );
    assert_eq!(success_json(&output)["systemPrompt"], json!(text));
}

#[tokio::test]
async fn create_over_budget_fails_before_sending() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let output = cli.run(&[
        "prompts",
        "create",
        "--name",
        "too_long",
        "--model",
        "builtin/echo",
        "--system-prompt",
        "You are a helpful customer support agent for an online shop.",
        "--max-tokens",
        "3",
    ]);
    assert!(!output.status.success(), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(
        err.contains("the budget is 3") && err.contains("o200k_base"),
        "{err}"
    );
    assert!(names_on_server(&server).await.is_empty());
}

// A flag given with --file must not be dropped without a word: either it applies or the
// command is refused as a usage error.
#[tokio::test]
async fn create_with_a_file_does_not_silently_ignore_other_flags() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let file = cli.file("prompt.json", &prompt_body("file_and_flags").to_string());
    let output = cli.run(&[
        "prompts",
        "create",
        "--file",
        &file,
        "--temperature",
        "1.5",
        "--max-tokens",
        "3",
        "--json",
    ]);
    if output.status.code() == Some(2) {
        assert!(names_on_server(&server).await.is_empty());
        return;
    }
    let created = success_json(&output);
    assert_eq!(
        (
            &created["temperature"],
            &created["safetyGuardrails"]["maxTokens"]
        ),
        (&json!(1.5), &json!(3)),
        "--temperature 1.5 --max-tokens 3 were ignored: {created}"
    );
}

// ---- prompts list, versions, update, split, archive ----

#[tokio::test]
async fn list_as_a_table_and_as_json() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let mut ids = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        ids.push(create_over_http(&server, name).await);
    }
    let output = cli.run(&["prompts", "list"]);
    assert_success(&output);
    let text = stdout(&output);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    for column in ["ID", "STATUS", "VERSION", "MODEL", "NAME"] {
        assert!(header.contains(column), "{column} missing:\n{text}");
    }
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (id, name) in ids.iter().zip(["alpha", "beta", "gamma"]) {
        assert!(
            rows.iter()
                .any(|r| r.contains(id.as_str()) && r.contains(name) && r.contains("ACTIVE")),
            "no row for {name}:\n{text}"
        );
    }

    let listed = cli.json(&["prompts", "list"]);
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_field(p, "name"))
        .collect();
    names.sort();
    assert_eq!(names, vec!["alpha", "beta", "gamma"]);

    let filtered = cli.json(&["prompts", "list", "--name", "be*"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered[0]["name"], json!("beta"));
    let archived = cli.json(&["prompts", "list", "--status", "ARCHIVED"]);
    assert_eq!(archived, json!([]));
}

#[tokio::test]
async fn list_reads_every_page() {
    let server = Server::start();
    let cli = Cli::new(&server);
    // More than the CLI's page size of 100.
    let token = server.admin_token().await;
    for i in 0..103 {
        server
            .post(PROMPTS, Some(&token), &prompt_body(&format!("p{i:03}")))
            .await
            .ok(201);
    }
    let listed = cli.json(&["prompts", "list"]);
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_field(p, "name"))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 103);
}

#[tokio::test]
async fn update_with_flags_and_with_a_file_then_versions() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = create_over_http(&server, "versioned").await;

    let updated = cli.json(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.1.0",
        "--system-prompt",
        "You are concise.",
    ]);
    assert_eq!(updated["version"], json!("1.1.0"));
    assert_eq!(updated["systemPrompt"], json!("You are concise."));
    assert_eq!(updated["versions"], json!(["1.0.0", "1.1.0"]));

    let file = cli.file(
        "update.json",
        &json!({"systemPrompt": "You are terse.", "temperature": 0.7}).to_string(),
    );
    let output = cli.run(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.2.0",
        "--file",
        &file,
    ]);
    assert_success(&output);
    assert!(
        stdout(&output).contains("updated prompt \"versioned\""),
        "{}",
        stdout(&output)
    );
    let token = server.admin_token().await;
    let v12 = server
        .get(&version_path(&id, "1.2.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v12["systemPrompt"], json!("You are terse."));
    assert_eq!(v12["temperature"], json!(0.7));

    let versions = cli.json(&["prompts", "versions", &id]);
    let labels: Vec<String> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| str_field(v, "version"))
        .collect();
    assert_eq!(labels, vec!["1.2.0", "1.1.0", "1.0.0"], "newest first");

    let output = cli.run(&["prompts", "versions", &id]);
    assert_success(&output);
    let text = stdout(&output);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].starts_with("1.2.0"), "{text}");
    assert!(rows.iter().all(|r| r.contains(&server.admin_id)), "{text}");

    // A stale --if-match is the gateway's 412: an API error.
    let stale = cli.run(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.3.0",
        "--system-prompt",
        "x",
        "--if-match",
        "\"stale\"",
    ]);
    assert_exit(&stale, 3);
    assert!(
        stderr(&stale).contains("changed since"),
        "{}",
        stderr(&stale)
    );
    let labels = cli.json(&["prompts", "versions", &id]);
    assert_eq!(labels.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn split_then_archive() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = create_over_http(&server, "split_me").await;
    let output = cli.run(&[
        "prompts",
        "update",
        &id,
        "--version",
        "1.1.0",
        "--system-prompt",
        "You are concise.",
    ]);
    assert_success(&output);

    let split = cli.json(&[
        "prompts",
        "split",
        &id,
        "1.0.0=0.9",
        "1.1.0=0.1",
        "--strategy",
        "random",
    ]);
    let traffic = &split["trafficDistribution"];
    assert_eq!(traffic["splitStrategy"], json!("random"), "{split}");
    let weights: Vec<(String, f64)> = traffic["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (str_field(w, "version"), w["weight"].as_f64().unwrap()))
        .collect();
    assert_eq!(weights.len(), 2, "{split}");
    assert_eq!(weights[0].0, "1.0.0");
    assert!((weights[0].1 - 0.9).abs() < 1e-9, "{split}");
    assert_eq!(weights[1].0, "1.1.0");
    assert!((weights[1].1 - 0.1).abs() < 1e-9, "{split}");
    // The gateway stored it.
    let token = server.admin_token().await;
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["trafficDistribution"], *traffic);

    // Text for people, with the default strategy (sticky).
    let output = cli.run(&["prompts", "split", &id, "1.0.0=0.5", "1.1.0=0.5"]);
    assert_success(&output);
    let text = stdout(&output);
    assert!(
        text.contains("1.0.0=0.500") && text.contains("1.1.0=0.500") && text.contains("sticky"),
        "{text}"
    );

    let archived = cli.json(&["prompts", "archive", &id]);
    assert_eq!(archived["status"], json!("ARCHIVED"));
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["status"], json!("ARCHIVED"));
    let listed = cli.json(&["prompts", "list", "--status", "ARCHIVED"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn chat_policy_sets_the_v1_policy_without_a_version() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = create_over_http(&server, "policy_me").await;
    let set = cli.json(&[
        "prompts",
        "chat-policy",
        &id,
        "--system-message",
        "prepend",
        "--allow-caller-settings",
        "true",
    ]);
    assert_eq!(
        set["chatCompletions"],
        json!({"systemMessage": "prepend", "allowCallerSettings": true}),
        "{set}"
    );
    assert_eq!(set["versions"], json!(["1.0.0"]));
    let token = server.admin_token().await;
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["chatCompletions"], set["chatCompletions"]);

    // One part alone keeps the other; the text output says what holds.
    let output = cli.run(&[
        "prompts",
        "chat-policy",
        &id,
        "--allow-caller-settings",
        "false",
    ]);
    assert_success(&output);
    let text = stdout(&output);
    assert!(
        text.contains("prepend the caller's system message; caller settings ignored"),
        "{text}"
    );
    // Nothing to set is a usage error; an unknown mode is the gateway's 400 (exit 3), naming
    // the field, and changes nothing.
    assert_exit(&cli.run(&["prompts", "chat-policy", &id]), 2);
    let output = cli.run(&["prompts", "chat-policy", &id, "--system-message", "append"]);
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("systemMessage"),
        "{}",
        stderr(&output)
    );
    let stored = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(stored["chatCompletions"]["systemMessage"], "prepend");
}

// ---- prompts optimize (offline) ----

const BASE: &str = "You are a helpful customer support agent.";

fn examples() -> Vec<(String, String)> {
    [
        ("Where is my order?", "Could you share your order number?"),
        ("I want a refund.", "Which item would you like to return?"),
        ("Do you ship abroad?", "Yes, to most countries."),
        ("My parcel arrived damaged.", "Please send a photo."),
        ("Can I change my address?", "Yes, until the order ships."),
    ]
    .iter()
    .map(|(i, o)| ((*i).to_owned(), (*o).to_owned()))
    .collect()
}

fn jsonl(examples: &[(String, String)]) -> String {
    examples
        .iter()
        .map(|(i, o)| json!({"input": i, "output": o}).to_string() + "\n")
        .collect()
}

/// The contract's rendering: the base, a blank line, `Examples:`, then User/Assistant lines.
fn render(base: &str, examples: &[&(String, String)]) -> String {
    let mut out = format!("{base}\n\nExamples:\n");
    for (input, output) in examples {
        out.push_str(&format!("User: {input}\nAssistant: {output}\n"));
    }
    out
}

fn indices(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn optimize_drops_the_oldest_examples_to_fit_without_a_gateway() {
    let cli = Cli::offline();
    let all = examples();
    let file = cli.file("examples.jsonl", &jsonl(&all));
    // Exactly the two newest fit.
    let expected = render(BASE, &[&all[3], &all[4]]);
    let limit = o200k(&expected);
    let limit_text = limit.to_string();
    let args = [
        "prompts",
        "optimize",
        "--base",
        BASE,
        "--examples",
        &file,
        "--limit",
        &limit_text,
        "--json",
    ];
    let fitted = success_json(&cli.run_via(Via::Nothing, &args));
    assert_eq!(indices(&fitted["dropped"]), vec![0, 1, 2], "{fitted}");
    assert_eq!(fitted["prompt"], json!(expected));
    let tokens = fitted["tokens"].as_u64().unwrap() as usize;
    assert!(tokens <= limit, "{tokens} > {limit}");
    assert_eq!(tokens, o200k(&expected));
    assert_eq!(
        fitted["droppedExamples"][0]["input"],
        json!("Where is my order?")
    );

    // The same from standard input and a base file, as text: the prompt on stdout.
    let base_file = cli.file("base.txt", BASE);
    let output = cli.run_with_stdin(
        Via::Nothing,
        &[
            "prompts",
            "optimize",
            "--base-file",
            &base_file,
            "--examples",
            "-",
            "--limit",
            &limit_text,
        ],
        &jsonl(&all),
    );
    assert_success(&output);
    assert_eq!(stdout(&output).trim_end(), expected.trim_end());
}

#[test]
fn optimize_keep_recent_skips_only_an_example_that_is_too_long() {
    let cli = Cli::offline();
    let mut all = examples();
    all[2].1 = "This answer is far too long to fit. ".repeat(20);
    let file = cli.file("examples.jsonl", &jsonl(&all));
    // Everything but the long example fits.
    let limit = o200k(&render(BASE, &[&all[0], &all[1], &all[3], &all[4]]));
    let limit_text = limit.to_string();
    let run = |strategy: &str| {
        success_json(&cli.run_via(
            Via::Nothing,
            &[
                "prompts",
                "optimize",
                "--base",
                BASE,
                "--examples",
                &file,
                "--limit",
                &limit_text,
                "--strategy",
                strategy,
                "--json",
            ],
        ))
    };
    let recent = run("keep-recent");
    assert_eq!(indices(&recent["dropped"]), vec![2], "{recent}");
    assert!(
        recent["tokens"].as_u64().unwrap() as usize <= limit,
        "{recent}"
    );
    // Drop-oldest stops at the long one: everything up to it goes.
    let oldest = run("drop-oldest");
    assert_eq!(indices(&oldest["dropped"]), vec![0, 1, 2], "{oldest}");
    assert!(
        oldest["tokens"].as_u64().unwrap() as usize <= limit,
        "{oldest}"
    );
}

// ---- model-endpoints and completions ----

#[tokio::test]
async fn model_endpoints_as_a_table_and_as_json() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let output = cli.run(&["model-endpoints"]);
    assert_success(&output);
    let text = stdout(&output);
    assert!(text.starts_with("REF"), "{text}");
    let echo = text
        .lines()
        .find(|l| l.starts_with("builtin/echo"))
        .unwrap_or_else(|| panic!("no builtin/echo row:\n{text}"));
    assert!(echo.contains("yes") && echo.contains("offline"), "{echo}");

    let listed = cli.json(&["model-endpoints"]);
    let refs: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| str_field(e, "ref"))
        .collect();
    assert!(refs.contains(&"builtin/echo".to_owned()), "{listed}");
    assert!(refs.contains(&"openai/gpt-4o-mini".to_owned()), "{listed}");
}

#[test]
fn completions_for_bash() {
    let cli = Cli::offline();
    let output = cli.run_via(Via::Nothing, &["completions", "bash"]);
    assert_success(&output);
    let script = stdout(&output);
    assert!(script.contains("complete -F"), "{script}");
    for word in [
        "promptgate",
        "prompts",
        "model-endpoints",
        "optimize",
        "split",
    ] {
        assert!(script.contains(word), "{word} missing from the script");
    }
}

#[test]
fn every_prompts_command_has_an_example_in_its_help() {
    let cli = Cli::offline();
    let commands: &[&[&str]] = &[
        &["prompts", "create"],
        &["prompts", "get"],
        &["prompts", "list"],
        &["prompts", "versions"],
        &["prompts", "update"],
        &["prompts", "split"],
        &["prompts", "archive"],
        &["prompts", "optimize"],
        &["model-endpoints"],
        &["completions"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let output = cli.run_via(Via::Nothing, &args);
        assert_success(&output);
        let text = stdout(&output);
        assert!(
            text.contains("Example") && text.contains("promptgate "),
            "{command:?} --help has no example:\n{text}"
        );
    }
}

// ---- the connection: profile file ----

#[tokio::test]
async fn a_0600_profile_supplies_the_connection() {
    let server = Server::start();
    let cli = Cli::new(&server);
    create_over_http(&server, "via_profile").await;
    // $HOME/.config/promptgate/config.toml
    cli.write_profile(&cli.dir().join(".config"), &cli.profile_text(), 0o600);
    let output = cli.run_via(Via::Nothing, &["prompts", "list", "--json"]);
    let listed = success_json(&output);
    assert_eq!(listed[0]["name"], json!("via_profile"), "{listed}");

    // $XDG_CONFIG_HOME/promptgate/config.toml wins over $HOME's.
    let xdg = tempfile::tempdir().unwrap();
    cli.write_profile(xdg.path(), &cli.profile_text(), 0o600);
    cli.write_profile(
        &cli.dir().join(".config"),
        "url = \"http://127.0.0.1:1\"\n",
        0o600,
    );
    let mut cmd = cli.command(Via::Nothing, &["model-endpoints", "--json"]);
    cmd.env("XDG_CONFIG_HOME", xdg.path()).stdin(Stdio::null());
    success_json(&run_bounded(cmd));
}

#[tokio::test]
async fn flags_and_env_complete_and_override_the_profile() {
    let server = Server::start();
    let cli = Cli::new(&server);
    // The profile names an unreachable gateway and only the id.
    let profile = format!("url = \"http://127.0.0.1:1\"\nclient_id = {:?}\n", cli.id);
    cli.write_profile(&cli.dir().join(".config"), &profile, 0o600);
    let mut cmd = cli.command(
        Via::Nothing,
        &[
            "--url",
            &cli.url,
            "--client-secret",
            &cli.secret,
            "model-endpoints",
            "--json",
        ],
    );
    cmd.stdin(Stdio::null());
    success_json(&run_bounded(cmd));

    let mut cmd = cli.command(Via::Nothing, &["model-endpoints", "--json"]);
    cmd.env("PROMPTGATE_URL", &cli.url)
        .env("PROMPTGATE_CLIENT_SECRET", &cli.secret)
        .stdin(Stdio::null());
    success_json(&run_bounded(cmd));
}

#[tokio::test]
async fn a_profile_readable_by_others_is_refused() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let path = cli.write_profile(&cli.dir().join(".config"), &cli.profile_text(), 0o644);
    let output = cli.run_via(Via::Nothing, &["prompts", "list"]);
    assert!(!output.status.success(), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
}

// ---- exit codes ----

#[tokio::test]
async fn usage_errors_exit_2() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = create_over_http(&server, "usage").await;
    let token = server.admin_token().await;
    let before = server.get(&prompt_path(&id), Some(&token)).await.ok(200);

    let unknown_flag = cli.run(&["prompts", "list", "--bogus"]);
    assert_exit(&unknown_flag, 2);
    assert!(
        stderr(&unknown_flag).contains("--bogus"),
        "{}",
        stderr(&unknown_flag)
    );

    let missing = cli.run(&["prompts", "create", "--name", "no_model"]);
    assert_exit(&missing, 2);

    let bad_sum = cli.run(&["prompts", "split", &id, "1.0.0=0.5", "1.1.0=0.6"]);
    assert_exit(&bad_sum, 2);
    assert!(stderr(&bad_sum).contains("sum"), "{}", stderr(&bad_sum));

    // Nothing reached the gateway.
    let after = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(before, after);
    assert_eq!(names_on_server(&server).await, vec!["usage"]);
}

// Values clap cannot check are still usage errors (exit 2), like weights that do not sum to 1.
#[tokio::test]
async fn malformed_values_are_usage_errors() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let id = create_over_http(&server, "usage").await;
    let examples = cli.file("examples.jsonl", &jsonl(&examples()));
    let cases: Vec<Vec<&str>> = vec![
        vec!["prompts", "split", &id, "1.0.0"],
        vec!["prompts", "split", &id, "1.0.0=ninety"],
        vec!["prompts", "split", &id, "1.0.0=1", "--strategy", "sideways"],
        vec![
            "prompts",
            "optimize",
            "--base",
            BASE,
            "--examples",
            &examples,
            "--limit",
            "100",
            "--strategy",
            "newest",
        ],
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|args| (args, cli.run(args)))
        .filter(|(_, output)| output.status.code() != Some(2))
        .map(|(args, output)| {
            format!(
                "{} exited {:?}: {}",
                args.join(" "),
                output.status.code(),
                stderr(&output).trim()
            )
        })
        .collect();
    assert!(wrong.is_empty(), "not exit 2:\n{}", wrong.join("\n"));
    // Nothing changed on the gateway.
    let token = server.admin_token().await;
    let prompt = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(prompt["versions"], json!(["1.0.0"]));
}

#[test]
fn a_missing_url_or_credentials_is_a_usage_error() {
    let cli = Cli::offline();
    let output = cli.run_via(Via::Nothing, &["prompts", "list"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--url"), "{}", stderr(&output));
}

#[tokio::test]
async fn api_errors_exit_3_with_the_servers_message_and_context_id() {
    let server = Server::start();
    let cli = Cli::new(&server);
    let unknown = uuid::Uuid::new_v4().to_string();
    let token = server.admin_token().await;
    let answer = server
        .get(&prompt_path(&unknown), Some(&token))
        .await
        .error(404, "not.found");
    let message = str_field(&answer, "message");

    let output = cli.run(&["prompts", "get", &unknown]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains(&message),
        "the server's message {message:?} missing:\n{err}"
    );
    let context_id = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("contextId:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no contextId line:\n{err}"));
    assert!(is_uuid(context_id), "{context_id:?}");
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));

    // A duplicate name: 409.
    create_over_http(&server, "dup").await;
    let file = cli.file("dup.json", &prompt_body("dup").to_string());
    let output = cli.run(&["prompts", "create", "--file", &file]);
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("contextId:"),
        "{}",
        stderr(&output)
    );

    // Wrong credentials: 401.
    let mut cmd = cli.command(
        Via::Nothing,
        &[
            "--url",
            &cli.url,
            "--client-id",
            &cli.id,
            "--client-secret",
            "wrong-secret-wrong-secret",
            "prompts",
            "list",
        ],
    );
    cmd.stdin(Stdio::null());
    let output = run_bounded(cmd);
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("unauthorized"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn transport_errors_exit_4() {
    let cli = Cli {
        url: "http://127.0.0.1:1".into(),
        id: "someone".into(),
        secret: "some-secret-some-secret".into(),
        ..Cli::offline()
    };
    for args in [
        vec!["prompts", "list"],
        vec!["prompts", "get", "01a21b90-f811-7001-9495-3ba146e3a674"],
        vec!["model-endpoints"],
    ] {
        let output = cli.run(&args);
        assert_exit(&output, 4);
        assert!(
            stderr(&output).contains("cannot reach the gateway"),
            "{}",
            stderr(&output)
        );
    }
}
