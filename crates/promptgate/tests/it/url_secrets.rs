//! Secrets that ride in configured URLs never leave the gateway: not in the `CONFIG_RELOADED`
//! audit entry (which can never be purged), not in `GET …/model-endpoints` (any
//! `ai:prompt:read` client), and a database password not in what `serve` or the CLI print.

use std::process::{Command, Output, Stdio};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::all_entries;
use crate::harness::*;

const WEBHOOK: &str = "https://hooks.example.invalid/services/T000/B000/XXXXSECRETwebhook";

/// Every secret the configuration below hides somewhere in a URL.
const URL_SECRETS: [&str; 10] = [
    "EPPASSWORDx1",
    "EPTOKENx2",
    "MODPASSWORDx3",
    "MODKEYx4",
    "XXXXSECRETwebhook",
    "B000",
    "OTELPASSWORDx6",
    "OTELTOKENx7",
    "DBPASSWORDx8",
    "DBQPASSx9",
];

fn config_with_url_secrets() -> String {
    format!(
        r#"
[server]
database_url = "postgres://app:DBPASSWORDx8@db.example.invalid/promptgate?sslmode=disable&password=DBQPASSx9"

[[model_endpoints]]
ref = "private/m"
provider = "openai"
base_url = "https://llmuser:EPPASSWORDx1@llm.example.invalid:8443/v1?token=EPTOKENx2"
model = "m"

[moderation]
url = "https://moduser:MODPASSWORDx3@moderation.example.invalid/v1?key=MODKEYx4"
fail_open = true

[exporters.webhook]
url = "{WEBHOOK}"

[exporters.otlp]
endpoint = "http://oteluser:OTELPASSWORDx6@127.0.0.1:9?auth=OTELTOKENx7"
"#
    )
}

#[track_caller]
fn assert_no_secret(text: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

#[tokio::test]
async fn config_reloaded_audit_entry_and_model_endpoints_hide_url_secrets() {
    let server = Server::start_with(Options::with_config(&config_with_url_secrets()));
    let admin = server.admin_token().await;

    let entries = all_entries(&server, &admin).await;
    assert_no_secret(
        &serde_json::to_string(&entries).unwrap(),
        &URL_SECRETS,
        "the audit log",
    );
    let config = entries
        .iter()
        .find(|e| e["action"] == "CONFIG_RELOADED")
        .unwrap_or_else(|| panic!("no CONFIG_RELOADED: {entries:#?}"));
    let after = &config["details"]["after"];
    // The webhook by its origin, with the whole URL's digest so a change still shows.
    let webhook = &after["exporters"]["webhook"];
    assert_eq!(
        webhook["url"],
        json!("https://hooks.example.invalid"),
        "{after}"
    );
    let digest: String = Sha256::digest(WEBHOOK.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(webhook["url_sha256"], json!(digest), "{after}");
    // Other URLs keep host, port and path.
    let endpoint = after["model_endpoints"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["ref"] == "private/m"))
        .unwrap_or_else(|| panic!("no endpoint: {after}"));
    assert_eq!(
        endpoint["base_url"],
        json!("https://llm.example.invalid:8443/v1")
    );
    assert!(endpoint["base_url_sha256"].is_string(), "{endpoint}");
    assert_eq!(
        after["moderation"]["url"],
        json!("https://moderation.example.invalid/v1")
    );
    assert_eq!(
        after["exporters"]["otlp"]["endpoint"],
        json!("http://127.0.0.1:9")
    );
    assert_eq!(
        after["server"]["database_url"],
        json!("postgres://app:***@db.example.invalid/promptgate?sslmode=disable")
    );

    // Any prompt reader lists the endpoints: no user-info, no query string.
    let reader = server.scoped_token("ai:prompt:read").await;
    let resp = server.get(MODEL_ENDPOINTS, Some(&reader)).await;
    let list = resp.ok(200);
    assert_no_secret(&resp.text, &URL_SECRETS, "GET model-endpoints");
    let listed = list["entities"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["ref"] == "private/m"))
        .unwrap_or_else(|| panic!("private/m is not listed: {list}"));
    assert_eq!(
        listed["baseUrl"],
        json!("https://llm.example.invalid:8443/v1")
    );
    assert!(!resp.text.contains("llmuser"), "{}", resp.text);

    // Nor did the gateway log them while starting and exporting.
    assert_no_secret(&server.log(), &URL_SECRETS, "the server log");
}

const DB_PASSWORD: &str = "hunter2SECRETxyz";

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The process failed, said where the database is, and never printed the password.
#[track_caller]
fn assert_refused_without_password(output: &Output, host: &str, what: &str) {
    let all = text(output);
    assert!(!output.status.success(), "{what} succeeded: {all}");
    assert!(
        all.contains("cannot open the database"),
        "{what} does not say what failed: {all}"
    );
    assert!(all.contains(host), "{what} does not name {host}: {all}");
    assert!(
        !all.contains(DB_PASSWORD),
        "{what} printed the password: {all}"
    );
    assert!(
        !all.contains("hunter2"),
        "{what} printed part of the password: {all}"
    );
}

#[tokio::test]
async fn the_database_password_is_never_printed() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    // Give up on the unreachable database quickly.
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[server]\ndatabase_acquire_timeout_ms = 500\n").unwrap();
    let urls = [
        format!("postgres://app:{DB_PASSWORD}@127.0.0.1:{port}/promptgate"),
        format!(
            "postgresql://app@127.0.0.1:{port}/promptgate?password={DB_PASSWORD}&sslmode=disable"
        ),
    ];
    for url in &urls {
        let mut serve = Command::new(BIN);
        serve
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
            .arg("--config")
            .arg(&config)
            .env_remove("PROMPTGATE_DATABASE_URL")
            .env_remove("PROMPTGATE_CONFIG")
            .env_remove("PROMPTGATE_ADMIN_CLIENT_ID")
            .env_remove("PROMPTGATE_ADMIN_CLIENT_SECRET")
            .stdin(Stdio::null());
        let output = run_bounded(serve);
        assert_refused_without_password(&output, "127.0.0.1", "serve");

        for args in [
            vec!["clients", "list"],
            vec!["clients", "disable", "nobody"],
            vec!["audit", "verify"],
        ] {
            let output = run_cli(&args, url);
            assert_refused_without_password(&output, "127.0.0.1", &args.join(" "));
        }
    }
    // A URL the store cannot read at all is echoed without its password too.
    for (url, place) in [
        (
            format!("mysql://app:{DB_PASSWORD}@127.0.0.1/promptgate"),
            "127.0.0.1",
        ),
        (
            format!("host=127.0.0.1 user=app password={DB_PASSWORD}"),
            "127.0.0.1",
        ),
        (
            format!(
                "sqlite://{}/p.db?password={DB_PASSWORD}",
                dir.path().display()
            ),
            "p.db",
        ),
    ] {
        let output = run_cli(&["clients", "list"], &url);
        assert_refused_without_password(&output, place, "clients list");
    }
    // `migrate` given the URLs the wrong way round.
    let mut migrate = Command::new(BIN);
    migrate
        .args([
            "migrate",
            "--from",
            &format!("postgres://app:{DB_PASSWORD}@127.0.0.1:{port}/a"),
            "--to",
            &format!("postgres://app:{DB_PASSWORD}@127.0.0.1:{port}/b"),
        ])
        .stdin(Stdio::null());
    let output = run_bounded(migrate);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(!text(&output).contains(DB_PASSWORD), "{}", text(&output));
}

#[tokio::test]
async fn serve_logs_its_database_without_the_password() {
    if !on_postgres() {
        // A SQLite URL has no password to hide; the refusals above run on both stores.
        eprintln!("skipped on sqlite: a PostgreSQL URL with a password is needed");
        return;
    }
    // The test server trusts local connections, so any password is accepted, and the gateway
    // starts and logs where it serves from.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db = create_test_database();
    let url = db.url().replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{DB_PASSWORD}@"),
        1,
    );
    assert!(url.contains(DB_PASSWORD), "{url}");
    // (The harness names a signing key file in the directory, as for any PostgreSQL run.)
    let server = Server::start_in(
        dir,
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    );
    server.wait_for_log("serving", 1).await;
    let log = server.log();
    let serving = log
        .lines()
        .find(|line| line.contains("serving"))
        .unwrap_or_else(|| panic!("no serving line: {log}"));
    assert!(serving.contains("127.0.0.1"), "{serving}");
    assert!(!log.contains(DB_PASSWORD), "{log}");
    // The server really was given the password.
    assert!(server.db_url.contains(DB_PASSWORD));
    drop(server);
    drop(db);
}
