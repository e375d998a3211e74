//! The `promptgate audit …` commands against a real gateway, its database after it stopped, and
//! export files: what an outside auditor runs, including logs, heads and files that were
//! tampered with (exit 1 naming the first bad sequence), and usage errors (exit 2).

use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use promptgate_client::audit::rules;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::*;

/// A valid Ed25519 public key that is not the gateway's (RFC 8032, test 1).
const OTHER_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPaYiMlrwIaaPcHURo=";

/// The CLI with its own `HOME` and directory for files, connected to one gateway by flags.
struct AuditCli {
    home: TempDir,
    url: String,
    id: String,
    secret: String,
}

impl AuditCli {
    fn new(server: &Server) -> AuditCli {
        AuditCli {
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
            .stdin(Stdio::null());
        cmd.args(args);
        cmd
    }

    /// Runs with the gateway's URL and the admin's credentials.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(&[
            "--url",
            &self.url,
            "--client-id",
            &self.id,
            "--client-secret",
            &self.secret,
        ]);
        cmd.args(args);
        run_bounded(cmd)
    }

    /// Runs with no gateway and no credentials at all.
    fn offline(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args))
    }

    /// Runs a command that must succeed with `--json` and answers its one JSON document.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        assert_exit(&output, 0);
        serde_json::from_str(stdout(&output).trim())
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", stdout(&output)))
    }

    /// Writes `text` to a file in the test's directory and answers its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Appends a client entry with `{"n": n}` as its details.
    #[track_caller]
    fn append(&self, n: u64) {
        let details = json!({"n": n}).to_string();
        let output = self.run(&[
            "audit",
            "append",
            "--action",
            "REVIEW",
            "--details",
            &details,
            "--compliance-status",
            "VALIDATED",
            "--metadata",
            r#"{"sourceSystem": "cli-test"}"#,
        ]);
        assert_exit(&output, 0);
    }

    /// The gateway's public key, saved to a file.
    #[track_caller]
    fn public_key_file(&self) -> String {
        let output = self.run(&["audit", "public-key"]);
        assert_exit(&output, 0);
        self.file("gateway.pub", &stdout(&output))
    }

    /// The latest signed head, saved to a file; answers the path and the head.
    #[track_caller]
    fn checkpoint(&self, name: &str) -> (String, Value) {
        let output = self.run(&["audit", "checkpoint"]);
        assert_exit(&output, 0);
        let head: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
        (self.file(name, &stdout(&output)), head)
    }

    /// `audit export`, saved to a file; answers the path and its lines.
    #[track_caller]
    fn export(&self, name: &str) -> (String, Vec<String>) {
        let output = self.run(&["audit", "export"]);
        assert_exit(&output, 0);
        let text = stdout(&output);
        let lines = text.lines().map(str::to_owned).collect();
        (self.file(name, &text), lines)
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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

/// Asserts exit 1 and that standard output contains `needle`.
#[track_caller]
fn assert_invalid(output: &Output, needle: &str) {
    assert_exit(output, 1);
    assert!(
        stdout(output).contains(needle),
        "expected {needle:?} in:\n{}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// The head with one hex digit of its root changed (still well-formed).
fn with_altered_root(head: &Value) -> Value {
    let mut altered = head.clone();
    let root = head["rootHash"].as_str().unwrap();
    let first = if root.starts_with('0') { "1" } else { "0" };
    altered["rootHash"] = json!(format!("{first}{}", &root[1..]));
    altered
}

/// The sequence of the export line whose details are `{"n": n}`, and that line's index.
fn line_of(lines: &[String], n: u64) -> (usize, u64) {
    lines
        .iter()
        .enumerate()
        .find_map(|(i, line)| {
            let value: Value = serde_json::from_str(line).unwrap();
            (value["details"] == json!({"n": n})).then(|| (i, value["sequence"].as_u64().unwrap()))
        })
        .unwrap_or_else(|| panic!("no entry with n = {n}"))
}

/// Gives the entries from index `from` on new hashes for their current content, re-linking
/// each to the one before: a rewrite that the chain alone cannot see.
fn rechain(entries: &mut [Value], from: usize) {
    let mut prev = if from == 0 {
        rules::GENESIS_HASH
    } else {
        rules::merkle::from_hex(entries[from - 1]["hash"].as_str().unwrap()).unwrap()
    };
    for entry in entries.iter_mut().skip(from) {
        let object = entry.as_object_mut().unwrap();
        object.remove("hash");
        object.insert("prevHash".into(), json!(rules::merkle::to_hex(&prev)));
        let body = rules::canonical::to_canonical_string(entry);
        prev = rules::entry::chain_hash(&prev, body.as_bytes());
        entry["hash"] = json!(rules::merkle::to_hex(&prev));
    }
}

fn jsonl(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

#[tokio::test]
async fn public_key_prints_32_bytes_of_base64_and_its_id() {
    let server = Server::start();
    let cli = AuditCli::new(&server);
    let output = cli.run(&["audit", "public-key"]);
    assert_exit(&output, 0);
    let key = stdout(&output).trim().to_owned();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .unwrap();
    assert_eq!(raw.len(), 32);

    let printed = cli.json(&["audit", "public-key"]);
    assert_eq!(printed["publicKey"], json!(key));
    let id = printed["keyId"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    // The id is the one the gateway signs heads with.
    let (_, head) = cli.checkpoint("head.json");
    assert_eq!(head["keyId"], json!(id));
}

#[tokio::test]
async fn an_export_verifies_and_an_edited_or_deleted_line_is_named() {
    let server = Server::start();
    let token = server.admin_token().await;
    server
        .create_prompt(&token, &prompt_body("audited_prompt"))
        .await;
    let cli = AuditCli::new(&server);
    for n in 1..=5 {
        cli.append(n);
    }
    let key = cli.public_key_file();
    let (export, lines) = cli.export("audit.jsonl");

    // Entries 1..=treeSize in order, then the signed head, which has no sequence.
    let head: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let size = head["treeSize"].as_u64().unwrap();
    assert!(head.get("sequence").is_none() && head.get("signature").is_some());
    assert_eq!(lines.len() as u64, size + 1);
    let sequences: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(sequences, (1..=size).collect::<Vec<_>>());

    let valid = cli.offline(&["audit", "verify", "--file", &export, "--public-key", &key]);
    assert_exit(&valid, 0);
    assert!(
        stdout(&valid).contains("audit log valid"),
        "{}",
        stdout(&valid)
    );
    let report = cli.json(&["audit", "verify", "--file", &export, "--public-key", &key]);
    assert_eq!(report["valid"], json!(true));
    assert_eq!(report["entries"], json!(size));
    assert_eq!(report["rootHash"], head["rootHash"]);
    assert_eq!(report["signedHeadsChecked"], json!(1));
    assert_eq!(report["signaturesChecked"], json!(1));

    // One detail of one entry changed.
    let (index, sequence) = line_of(&lines, 3);
    let mut edited = lines.clone();
    let mut entry: Value = serde_json::from_str(&edited[index]).unwrap();
    entry["details"] = json!({"n": 33});
    edited[index] = entry.to_string();
    let edited_file = cli.file("edited.jsonl", &(edited.join("\n") + "\n"));
    let output = cli.offline(&["audit", "verify", "--file", &edited_file]);
    assert_invalid(&output, &format!("first bad sequence {sequence}: "));
    let output = cli.offline(&["audit", "verify", "--file", &edited_file, "--json"]);
    assert_exit(&output, 1);
    let report: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(report["valid"], json!(false));
    assert_eq!(report["firstInvalidSequence"], json!(sequence));

    // One line deleted.
    let (index, sequence) = line_of(&lines, 4);
    let mut deleted = lines.clone();
    deleted.remove(index);
    let deleted_file = cli.file("deleted.jsonl", &(deleted.join("\n") + "\n"));
    let output = cli.offline(&["audit", "verify", "--file", &deleted_file]);
    assert_invalid(&output, &format!("first bad sequence {sequence}: "));
    assert!(stdout(&output).contains("missing"), "{}", stdout(&output));

    // The last entry deleted: the chain is intact, but the signed head covers one more.
    let mut cut = lines.clone();
    cut.remove(lines.len() - 2);
    let cut_file = cli.file("cut.jsonl", &(cut.join("\n") + "\n"));
    let output = cli.offline(&["audit", "verify", "--file", &cut_file]);
    assert_invalid(&output, "covers more entries");

    // A line that is not JSON is named by its line.
    let mut garbled = lines.clone();
    garbled[1] = format!("x{}", garbled[1]);
    let garbled_file = cli.file("garbled.jsonl", &(garbled.join("\n") + "\n"));
    let output = cli.offline(&["audit", "verify", "--file", &garbled_file]);
    assert_invalid(
        &output,
        "first bad sequence 2: entry 2 cannot be read: line 2",
    );

    // Checked with another key, the untouched export's head is refused.
    let output = cli.offline(&[
        "audit",
        "verify",
        "--file",
        &export,
        "--public-key",
        OTHER_KEY,
    ]);
    assert_invalid(&output, "not validly signed");

    // Without its head line, with a key: nothing signed vouches for the entries.
    let headless = cli.file(
        "headless.jsonl",
        &(lines[..lines.len() - 1].join("\n") + "\n"),
    );
    let output = cli.offline(&["audit", "verify", "--file", &headless]);
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("no signed tree head"),
        "{}",
        stderr(&output)
    );
    let output = cli.offline(&["audit", "verify", "--file", &headless, "--public-key", &key]);
    assert_invalid(&output, "no signed tree head");
}

#[tokio::test]
async fn a_rewritten_and_rechained_log_no_longer_matches_an_old_head() {
    let server = Server::start();
    let cli = AuditCli::new(&server);
    for n in 1..=4 {
        cli.append(n);
    }
    let key = cli.public_key_file();
    let (_, lines) = cli.export("audit.jsonl");
    let old_head = cli.file("old-head.json", lines.last().unwrap());

    let mut entries: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (index, _) = line_of(&lines, 2);
    entries[index]["details"] = json!({"n": "rewritten"});
    rechain(&mut entries, index);

    // The chain alone cannot tell.
    let forged = cli.file("forged.jsonl", &jsonl(&entries));
    assert_exit(&cli.offline(&["audit", "verify", "--file", &forged]), 0);
    // The head kept from before can.
    let output = cli.offline(&[
        "audit",
        "verify",
        "--file",
        &forged,
        "--head",
        &old_head,
        "--public-key",
        &key,
    ]);
    assert_invalid(&output, "does not match the log");
    // So can the export's own head line, left in place.
    let mut with_head = jsonl(&entries);
    with_head.push_str(lines.last().unwrap());
    let forged_with_head = cli.file("forged-with-head.jsonl", &with_head);
    let output = cli.offline(&["audit", "verify", "--file", &forged_with_head]);
    assert_invalid(&output, "does not match the log");
}

#[tokio::test]
async fn verify_over_the_api_checks_the_checkpoint_and_saved_heads() {
    let server = Server::start();
    let cli = AuditCli::new(&server);
    cli.append(1);
    let key = cli.public_key_file();
    let (old_path, old) = cli.checkpoint("old.json");
    cli.append(2);

    let output = cli.run(&["audit", "verify", "--public-key", &key]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("audit log valid"),
        "{}",
        stdout(&output)
    );
    let report = cli.json(&["audit", "verify", "--head", &old_path, "--public-key", &key]);
    assert_eq!(report["valid"], json!(true));
    assert_eq!(report["signedHeadsChecked"], json!(2));
    assert_eq!(report["signaturesChecked"], json!(2));

    // The key given as a PEM file works the same way.
    let raw = base64::engine::general_purpose::STANDARD
        .decode(std::fs::read_to_string(&key).unwrap().trim())
        .unwrap();
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&raw);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    let pem_file = cli.file("gateway.pem", &pem);
    assert_exit(&cli.run(&["audit", "verify", "--public-key", &pem_file]), 0);

    // A saved head that was altered no longer matches, with or without the key.
    let tampered = cli.file("tampered.json", &with_altered_root(&old).to_string());
    let output = cli.run(&["audit", "verify", "--head", &tampered]);
    assert_invalid(
        &output,
        &format!(
            "the signed head of tree size {} does not match the log",
            old["treeSize"]
        ),
    );
    let output = cli.run(&["audit", "verify", "--head", &tampered, "--public-key", &key]);
    assert_invalid(&output, "not validly signed");

    // What is not a key or a head is a usage error, before anything is fetched.
    let not_json = cli.file("not-a-head.json", "treeSize: 3");
    let not_utf8 = cli.home.path().join("binary.pub");
    std::fs::write(&not_utf8, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let not_utf8 = not_utf8.display().to_string();
    for args in [
        vec!["audit", "verify", "--public-key", "not-a-key"],
        vec!["audit", "verify", "--public-key", &not_json],
        vec!["audit", "verify", "--public-key", &not_utf8],
        vec!["audit", "verify", "--head", &not_json],
        vec!["audit", "verify", "--head", "/no/such/head.json"],
        vec!["audit", "verify", "--file", "/no/such/export.jsonl"],
    ] {
        let output = cli.run(&args);
        assert_exit(&output, 2);
    }
}

#[tokio::test]
async fn prove_and_consistency_check_offline_and_refuse_a_tampered_head() {
    let server = Server::start();
    let cli = AuditCli::new(&server);
    for n in 1..=3 {
        cli.append(n);
    }
    let key = cli.public_key_file();
    let (old_path, old) = cli.checkpoint("old.json");
    for n in 4..=6 {
        cli.append(n);
    }
    let (new_path, new) = cli.checkpoint("new.json");
    assert!(new["treeSize"].as_u64() > old["treeSize"].as_u64());

    let output = cli.run(&["audit", "prove", "2", "--public-key", &key]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("entry 2 is in the tree"),
        "{}",
        stdout(&output)
    );
    let proven = cli.json(&[
        "audit",
        "prove",
        "2",
        "--head",
        &old_path,
        "--public-key",
        &key,
    ]);
    assert_eq!(proven["valid"], json!(true));
    assert_eq!(proven["treeSize"], old["treeSize"]);
    assert_eq!(proven["signatureChecked"], json!(true));

    let output = cli.run(&[
        "audit",
        "consistency",
        &old_path,
        &new_path,
        "--public-key",
        &key,
    ]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("consistent"),
        "{}",
        stdout(&output)
    );
    let consistent = cli.json(&["audit", "consistency", &old_path, &new_path]);
    assert_eq!(consistent["valid"], json!(true));
    assert_eq!(consistent["from"], old["treeSize"]);
    assert_eq!(consistent["to"], new["treeSize"]);

    // An altered head: its root is not the gateway's root at that size.
    let tampered = cli.file("tampered.json", &with_altered_root(&old).to_string());
    let output = cli.run(&["audit", "consistency", &tampered, &new_path]);
    assert_invalid(&output, "consistency proof INVALID");
    assert!(
        stdout(&output).contains("history was rewritten"),
        "{}",
        stdout(&output)
    );
    let output = cli.run(&[
        "audit",
        "consistency",
        &tampered,
        &new_path,
        "--public-key",
        &key,
    ]);
    assert_invalid(&output, "not validly signed");
    let output = cli.run(&["audit", "prove", "2", "--head", &tampered]);
    assert_invalid(&output, "inclusion proof INVALID");
    let output = cli.run(&["audit", "prove", "2", "--public-key", OTHER_KEY]);
    assert_invalid(&output, "not validly signed");

    // Heads in the wrong order, or an entry the head does not cover: usage errors.
    assert_exit(&cli.run(&["audit", "consistency", &new_path, &old_path]), 2);
    let beyond = (old["treeSize"].as_u64().unwrap() + 1).to_string();
    assert_exit(
        &cli.run(&["audit", "prove", &beyond, "--head", &old_path]),
        2,
    );
    assert_exit(&cli.run(&["audit", "prove", "0"]), 2);
}

/// Runs SQL on the server's database (either store) the way an operator with full access could.
async fn tamper(server: &Server, statements: &[(&str, Vec<Arg>)]) {
    let mut db = RawDb::open(server).await;
    for (sql, args) in statements {
        db.execute(sql, args).await.unwrap();
    }
    db.close().await;
}

/// The statement that lets the audit entries be updated again.
fn drop_update_guard(server: &Server) -> &'static str {
    match server.store {
        StoreKind::Sqlite => "DROP TRIGGER audit_entries_no_update",
        StoreKind::Postgres => "DROP TRIGGER audit_entries_append_only ON audit_entries",
    }
}

/// Every stored entry in its served form.
async fn stored_entries(server: &Server) -> Vec<Value> {
    let mut db = RawDb::open(server).await;
    let rows = db
        .fetch(
            "SELECT body, hash FROM audit_entries ORDER BY sequence",
            &[],
        )
        .await;
    db.close().await;
    rows.iter()
        .map(|row| {
            let mut entry: Value = serde_json::from_str(row[0].as_str().unwrap()).unwrap();
            entry["hash"] = row[1].clone();
            entry
        })
        .collect()
}

#[tokio::test]
async fn verify_reads_a_database_directly_after_the_server_stopped() {
    let mut server = Server::start();
    let cli = AuditCli::new(&server);
    for n in 1..=4 {
        cli.append(n);
    }
    let key = cli.public_key_file();
    cli.checkpoint("head.json");
    assert!(server.signal_and_wait("TERM").success());

    let output = server.cli(&["audit", "verify", "--public-key", &key]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("audit log valid"),
        "{}",
        stdout(&output)
    );
    let output = server.cli(&["audit", "verify", "--public-key", &key, "--json"]);
    assert_exit(&output, 0);
    let report: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    let heads = report["signedHeadsChecked"].as_u64().unwrap();
    assert!(heads >= 1, "{report}");
    assert_eq!(report["signaturesChecked"], json!(heads));

    // A database that is not there is refused, and not created.
    let missing = server.dir.path().join("missing.db");
    let output = run_cli(
        &["audit", "verify"],
        &format!("sqlite://{}", missing.display()),
    );
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("no database file"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists());
    assert_exit(&run_cli(&["audit", "verify"], "sqlite::memory:"), 2);
    if server.store == StoreKind::Postgres {
        // A PostgreSQL database that does not exist is an error, not a verdict.
        let (base, _) = server.db_url.rsplit_once('/').unwrap();
        let output = run_cli(&["audit", "verify"], &format!("{base}/no_such_database"));
        assert_exit(&output, 1);
        assert!(
            stderr(&output).contains("cannot open the database"),
            "{}",
            stderr(&output)
        );
    }
    // A URL of no database the store knows is an error, not a verdict.
    let output = run_cli(&["audit", "verify"], "nosuchdb://x/y");
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot open the database"),
        "{}",
        stderr(&output)
    );

    // One row's content edited in place (the trigger dropped first): named.
    let entries = stored_entries(&server).await;
    let victim = entries
        .iter()
        .find(|e| e["details"] == json!({"n": 2}))
        .unwrap();
    let sequence = victim["sequence"].as_u64().unwrap();
    let mut edited = victim.clone();
    edited.as_object_mut().unwrap().remove("hash");
    edited["details"] = json!({"n": 22});
    tamper(
        &server,
        &[
            (drop_update_guard(&server), vec![]),
            (
                "UPDATE audit_entries SET body = ?1 WHERE sequence = ?2",
                vec![
                    Arg::Text(rules::canonical::to_canonical_string(&edited)),
                    Arg::Int(sequence as i64),
                ],
            ),
        ],
    )
    .await;
    let output = server.cli(&["audit", "verify"]);
    assert_invalid(&output, &format!("first bad sequence {sequence}: "));

    // The whole log from there rewritten and re-chained, leaf hashes too: the chain is whole
    // again, but the signed heads stored beside it no longer match.
    let mut forged = stored_entries(&server).await;
    rechain(&mut forged, sequence as usize - 1);
    let mut statements = Vec::new();
    for entry in &forged[sequence as usize - 1..] {
        let mut body = entry.clone();
        let hash = body.as_object_mut().unwrap().remove("hash").unwrap();
        let body = rules::canonical::to_canonical_string(&body);
        let leaf = rules::merkle::to_hex(&rules::merkle::leaf_hash(body.as_bytes()));
        statements.push((
            "UPDATE audit_entries SET body = ?1, prev_hash = ?2, hash = ?3, leaf_hash = ?4 \
             WHERE sequence = ?5",
            vec![
                Arg::Text(body),
                Arg::Text(entry["prevHash"].as_str().unwrap().to_owned()),
                Arg::Text(hash.as_str().unwrap().to_owned()),
                Arg::Text(leaf),
                Arg::Int(entry["sequence"].as_i64().unwrap()),
            ],
        ));
    }
    tamper(&server, &statements).await;
    let output = server.cli(&["audit", "verify", "--json"]);
    assert_exit(&output, 1);
    let report: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(report["firstInvalidSequence"], Value::Null, "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("does not match the log"),
        "{report}"
    );

    // A row whose stored hash is not even hex cannot be decoded; it is named all the same.
    let corrupt = sequence + 1;
    tamper(
        &server,
        &[(
            "UPDATE audit_entries SET hash = 'zz' WHERE sequence = ?1",
            vec![Arg::Int(corrupt as i64)],
        )],
    )
    .await;
    let output = server.cli(&["audit", "verify"]);
    assert_invalid(
        &output,
        &format!(
            "first bad sequence {corrupt}: entry {corrupt} cannot be read: its database row is corrupt"
        ),
    );

    // A file that is not a database is an error, not a verdict.
    let not_a_database = server.dir.path().join("not-a.db");
    std::fs::write(&not_a_database, "this is not a database").unwrap();
    let output = run_cli(
        &["audit", "verify"],
        &format!("sqlite://{}", not_a_database.display()),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot open the database"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn list_shows_entries_as_a_table_or_json_with_filters() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("listed")).await;
    let cli = AuditCli::new(&server);
    for n in 1..=3 {
        cli.append(n);
    }

    let output = cli.run(&["audit", "list"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("SEQUENCE"), "{text}");
    assert!(
        text.contains("PROMPT_CREATED") && text.contains("REVIEW"),
        "{text}"
    );

    let all = cli.json(&["audit", "list", "--page-size", "1"]);
    let all = all.as_array().unwrap();
    let sequences: Vec<u64> = all
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=all.len() as u64).collect::<Vec<_>>());

    let reviews = cli.json(&[
        "audit",
        "list",
        "--action",
        "REVIEW",
        "--actor",
        &server.admin_id,
    ]);
    let reviews = reviews.as_array().unwrap();
    assert_eq!(reviews.len(), 3);
    assert!(reviews.iter().all(|e| e["action"] == json!("REVIEW")));
    assert!(reviews.iter().all(|e| e["actor"] == json!(server.admin_id)));

    let created = all
        .iter()
        .find(|e| e["action"] == json!("PROMPT_CREATED"))
        .unwrap();
    let prompt_id = created["promptId"].as_str().unwrap();
    let about = cli.json(&["audit", "list", "--prompt-id", prompt_id]);
    assert!(!about.as_array().unwrap().is_empty());
    assert!(
        about
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["promptId"] == json!(prompt_id))
    );

    assert_exit(&cli.run(&["audit", "list", "--page-size", "0"]), 2);
    assert_exit(&cli.run(&["audit", "list", "--page-size", "501"]), 2);
}

#[tokio::test]
async fn append_refuses_bad_json_locally_and_reserved_actions_at_the_gateway() {
    let server = Server::start();
    let cli = AuditCli::new(&server);
    let appended = cli.json(&[
        "audit",
        "append",
        "--action",
        "CREATE",
        "--details",
        r#"{"version": "1.0.0"}"#,
        "--timestamp",
        "2026-11-27T04:15:39Z",
    ]);
    assert_eq!(appended["action"], json!("CREATE"));
    assert_eq!(appended["actor"], json!(server.admin_id));
    assert_eq!(appended["details"], json!({"version": "1.0.0"}));
    assert!(appended["clientTimestamp"].is_string(), "{appended}");

    for flag in ["--details", "--metadata"] {
        let output = cli.run(&["audit", "append", "--action", "CREATE", flag, "{not json"]);
        assert_exit(&output, 2);
        assert!(stderr(&output).contains(flag), "{}", stderr(&output));
    }
    let output = cli.run(&["audit", "append", "--action", "PROMPT_CREATED"]);
    assert_exit(&output, 3);
}

#[test]
fn every_audit_command_has_an_example_in_its_help() {
    let home = tempfile::tempdir().unwrap();
    for command in [
        "list",
        "verify",
        "export",
        "public-key",
        "checkpoint",
        "prove",
        "consistency",
        "append",
    ] {
        let mut cmd = Command::new(BIN);
        cmd.env("HOME", home.path())
            .args(["audit", command, "--help"]);
        let output = run_bounded(cmd);
        assert_exit(&output, 0);
        let text = stdout(&output);
        assert!(
            text.contains("Example") && text.contains("promptgate audit "),
            "audit {command} --help has no example:\n{text}"
        );
    }
    // The export's help documents its format, the signed head as the last line included.
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "export", "--help"]);
    let text = stdout(&run_bounded(cmd));
    assert!(
        text.contains("JSON Lines") && text.contains("\"signature\""),
        "{text}"
    );
}

/// A stand-in gateway that grants any token and serves `public_key` as its audit key: a real
/// gateway cannot be made to serve a key whose id is not its own.
async fn scripted_gateway(public_key: Value) -> String {
    let app = axum::Router::new()
        .route(
            "/oauth/token",
            axum::routing::post(|| async {
                axum::Json(json!({"access_token": "t", "token_type": "bearer",
                                  "expires_in": 3600, "scope": "ai:audit:read"}))
            }),
        )
        .route(
            &format!("{GW}/audit-logs/public-key"),
            axum::routing::get(move || {
                let key = public_key.clone();
                async move { axum::Json(key) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn public_key_refuses_a_key_whose_id_is_not_its_own() {
    let url = scripted_gateway(json!({"keyId": "0000000000000000", "publicKey": OTHER_KEY})).await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env("HOME", home.path())
        .env_remove("PROMPTGATE_URL")
        .args(["--url", &url, "--client-id", "c", "--client-secret", "s"])
        .args(["audit", "public-key"]);
    // The CLI blocks on its own process; the scripted gateway runs on this test's runtime.
    let output = tokio::task::spawn_blocking(move || run_bounded(cmd))
        .await
        .unwrap();
    assert_exit(&output, 1);
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("does not belong to this public key"),
        "{}",
        stderr(&output)
    );
}
