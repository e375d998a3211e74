//! The command-line test driver shared by the `cli_*` tests: the built binary against a gateway
//! started by the harness, with the connection given by flags and a `HOME` of its own, and the
//! assertions on its exit code and output.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::harness::*;

pub(crate) struct Cli {
    pub(crate) home: TempDir,
    url: String,
    id: String,
    secret: String,
}

impl Cli {
    pub(crate) fn new(server: &Server) -> Cli {
        Cli {
            home: tempfile::tempdir().unwrap(),
            url: server.base.clone(),
            id: server.admin_id.clone(),
            secret: server.admin_secret.clone(),
        }
    }

    /// Writes `text` to a file in the test's directory and answers its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
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
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        tokio::task::spawn_blocking(move || run_bounded(cmd))
            .await
            .unwrap()
    }

    /// Runs the CLI with `input` on standard input, then end of input; bounded in time.
    pub(crate) async fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = self.command(args);
        let input = input.to_owned();
        tokio::task::spawn_blocking(move || {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
            drop(stdin);
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(child.wait_with_output());
            });
            rx.recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{cmd:?} did not finish within 60 s"))
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// Runs the CLI with `--json` and answers its one JSON document.
    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all).await;
        assert_exit(&output, 0);
        serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}",
                stdout(&output)
            )
        })
    }
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
pub(crate) fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Asserts a failure with `code` whose standard error holds every one of `needles`.
#[track_caller]
pub(crate) fn assert_fails(output: &Output, code: i32, needles: &[&str]) {
    assert_exit(output, code);
    let text = stderr(output);
    for needle in needles {
        assert!(
            text.contains(needle),
            "{needle:?} missing from stderr:\n{text}"
        );
    }
}
