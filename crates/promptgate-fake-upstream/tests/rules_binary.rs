//! The binary's `--rules` mode, as the SDK compatibility script runs it: started as a process,
//! its address read from stdout, asked over a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The binary in `--rules` mode, killed when dropped.
struct Upstream {
    child: Child,
    address: String,
}

impl Upstream {
    fn start(extra: &[&str]) -> Upstream {
        let mut child = Command::new(env!("CARGO_BIN_EXE_promptgate-fake-upstream"))
            .args(["--listen", "127.0.0.1:0", "--rules", "--threads", "1"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("announcement {line:?}"))
            .to_owned();
        Upstream { child, address }
    }

    /// One POST; the status and the body (chunked framing left in: each event is one chunk).
    fn post(&self, path: &str, body: &Value) -> (u16, String) {
        let mut tcp = TcpStream::connect(&self.address).unwrap();
        let body = body.to_string();
        write!(
            tcp,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rules_mode_answers_tool_calls_and_results_in_both_formats() {
    let upstream = Upstream::start(&[]);
    let (status, body) = upstream.post(
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [{"role": "user", "content": "call add {\"a\": 1}"}],
            "tools": [{"type": "function", "function": {"name": "add"}}]}),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        r#"{"a":1}"#
    );

    let (status, body) = upstream.post(
        "/v1/messages",
        &json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "call add {\"a\": 1}"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "add",
                "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                "content": "2"}]}],
            "tools": [{"name": "add", "input_schema": {"type": "object"}}]}),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["content"][0]["text"], "The tool answered: 2");
    assert_eq!(answer["stop_reason"], "end_turn");

    let (status, body) = upstream.post(
        "/v1/messages",
        &json!({"model": "m", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "hello"}]}),
    );
    assert_eq!(status, 200);
    assert!(body.contains("event: message_stop"), "{body}");
    assert!(body.contains(r#""text":"Echo:""#), "{body}");
}

#[test]
fn the_benchmark_options_do_not_combine_with_rules() {
    let status = Command::new(env!("CARGO_BIN_EXE_promptgate-fake-upstream"))
        .args(["--rules", "--delay-ms", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}
