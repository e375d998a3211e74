//! `promptgate invoke` and `promptgate chat`: the built binary against a gateway started by the
//! harness, with the connection given by flags and a `HOME` of its own (so no profile is read).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use promptgate_core::{SplitStrategy, TrafficSplit, VersionLabel};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use crate::fake_upstream::*;
use crate::harness::*;

const OFFLINE: &str = "[promptgate offline provider — no model was called]";
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

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

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("PROMPTGATE_URL")
            .env_remove("PROMPTGATE_CLIENT_ID")
            .env_remove("PROMPTGATE_CLIENT_SECRET")
            .env_remove("PROMPTGATE_DATABASE_URL")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", self.home.path())
            .args([
                "--url",
                &self.url,
                "--client-id",
                &self.id,
                "--client-secret",
                &self.secret,
            ])
            .args(args);
        cmd
    }

    /// Runs the CLI off the async runtime, so that a fake upstream in this process keeps
    /// answering while the CLI waits on the gateway.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let cmd = self.command(args);
        let input = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || match input {
            None => {
                let mut cmd = cmd;
                cmd.stdin(Stdio::null());
                run_bounded(cmd)
            }
            Some(text) => run_with_stdin(cmd, &text),
        })
        .await
        .unwrap()
    }
}

/// Runs `cmd` with `input` on standard input, then end of input; bounded in time.
fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(CLI_TIMEOUT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("{cmd:?} did not finish within {CLI_TIMEOUT:?}")
        }
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
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[track_caller]
fn stdout_json(output: &Output) -> Value {
    assert_success(output);
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(output)))
}

fn v(label: &str) -> VersionLabel {
    label.parse().unwrap()
}

/// The version sticky routing gives `session` of `prompt_id` under a 0.5/0.5 split.
fn sticky_version(prompt_id: &str, session: &str) -> String {
    let split = TrafficSplit::new(
        v("1.0.0"),
        SplitStrategy::Sticky,
        vec![(v("1.0.0"), 0.5), (v("1.1.0"), 0.5)],
    )
    .unwrap();
    split
        .choose_sticky(Uuid::parse_str(prompt_id).unwrap(), session)
        .to_string()
}

/// Adds version 1.1.0 with `system` and splits traffic 0.5/0.5, sticky.
async fn add_half_split(server: &Server, token: &str, id: &str, system: &str) {
    server
        .put(
            &prompt_path(id),
            token,
            &json!({"systemPrompt": system, "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    server
        .put(
            &prompt_path(id),
            token,
            &json!({"trafficDistribution": {"splitStrategy": "sticky", "versions": [
                {"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.5}]}}),
            None,
        )
        .await
        .ok(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_by_name_and_by_id_prints_the_answer() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("cli_support"))
        .await;
    let id = str_field(&created, "id");
    add_half_split(&server, &token, &id, "You are version one point one.").await;
    let cli = Cli::new(&server);
    let input = "Where is my order?";
    let answer = format!("{OFFLINE} You said: {input}");
    let expected = sticky_version(&id, "s-7");

    for prompt in ["cli_support", id.as_str()] {
        let output = cli
            .run(&["invoke", prompt, input, "--session", "s-7"], None)
            .await;
        assert_success(&output);
        assert_eq!(stdout(&output), format!("{answer}\n"), "{prompt}");
        let report = stderr(&output);
        assert!(
            report.contains("inv-") && report.contains(&format!("version {expected}")),
            "{prompt}: the report names the invocation and the session's version: {report}"
        );
    }

    let output = cli
        .run(
            &["invoke", "cli_support", input, "--session", "s-7", "--json"],
            None,
        )
        .await;
    let body = stdout_json(&output);
    assert_eq!(body["output"], json!(answer));
    assert_eq!(body["promptId"], json!(id));
    assert_eq!(body["version"], json!(expected));
    assert!(str_field(&body, "responseId").starts_with("inv-"), "{body}");

    // The session reaches the gateway: every session lands where sticky routing puts it.
    for i in 0..8 {
        let session = format!("cli-session-{i}");
        let output = cli
            .run(
                &["invoke", &id, "Hi", "--session", &session, "--json"],
                None,
            )
            .await;
        assert_eq!(
            stdout_json(&output)["version"],
            json!(sticky_version(&id, &session)),
            "{session}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_stream_prints_the_answer_as_it_comes() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("cli_stream"))
        .await;
    let id = str_field(&created, "id");
    let cli = Cli::new(&server);
    let input = "Stream this, please.";
    let answer = format!("{OFFLINE} You said: {input}");

    let output = cli
        .run(&["invoke", "cli_stream", input, "--stream"], None)
        .await;
    assert_success(&output);
    assert_eq!(stdout(&output), format!("{answer}\n"));
    assert!(
        stderr(&output).contains("version 1.0.0"),
        "{}",
        stderr(&output)
    );

    let output = cli
        .run(&["invoke", &id, input, "--stream", "--json"], None)
        .await;
    let body = stdout_json(&output);
    assert_eq!(
        body["output"],
        json!(answer),
        "the streamed text, assembled"
    );
    assert_eq!(body["version"], json!("1.0.0"));
    assert!(str_field(&body, "responseId").starts_with("inv-"), "{body}");

    let output = cli.run(&["invoke", "no_such_prompt", input], None).await;
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("no_such_prompt"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keeps_the_session_and_sends_the_earlier_turns() {
    let fake = Fake::start(vec![
        Reply::sse(&Flavor::OpenAi.full_stream(&["First ", "answer."], 2)),
        Reply::sse(&Flavor::OpenAi.full_stream(&["Second ", "answer."], 2)),
    ])
    .await;
    let gw = Gateway::start_with(fake, Endpoints::default()).await;
    let systems = [
        ("1.0.0", "You are version one."),
        ("1.1.0", "You are version one point one."),
    ];
    let id = gw
        .create_prompt(&prompt_on("cli_chat", OPENAI_REF, systems[0].1))
        .await;
    add_half_split(&gw.server, &gw.token, &id, systems[1].1).await;
    let cli = Cli::new(&gw.server);

    let output = cli
        .run(
            &["chat", "cli_chat", "--session", "chat-s1"],
            Some("first question\nsecond question\n"),
        )
        .await;
    assert_success(&output);
    assert_eq!(stdout(&output), "First answer.\nSecond answer.\n");

    let sent = gw.fake.requests();
    assert_eq!(sent.len(), 2, "one invocation per line: {sent:#?}");
    let version = sticky_version(&id, "chat-s1");
    let system = systems
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, s)| *s)
        .unwrap();
    assert_eq!(
        sent[0].json()["messages"],
        json!([
            {"role": "system", "content": system},
            {"role": "user", "content": "first question"}
        ])
    );
    assert_eq!(
        sent[1].json()["messages"],
        json!([
            {"role": "system", "content": system},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": "second question"}
        ]),
        "the second invocation carries the first turn"
    );
    let report = stderr(&output);
    assert_eq!(
        report.matches(&format!("version {version}")).count(),
        2,
        "both turns of session chat-s1 are served by {version}: {report}"
    );
    assert!(report.contains("chat-s1"), "{report}");
}
