//! `promptgate migrate --from sqlite://… --to postgres://…` end to end: a SQLite database built
//! by a real gateway (prompts, versions, a traffic split, clients created and disabled,
//! invocations with feedback, audit entries, signed heads) is copied into PostgreSQL; every table
//! matches, the audit chain verifies there, and a gateway started on the copy serves the same
//! prompts and verifies the log against the heads signed before the move. Refusals exit 3, usage
//! errors 2. These tests choose their stores themselves, whatever `PROMPTGATE_TEST_STORE` says.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promptgate_audit::ChainVerifier;
use promptgate_store::testing::TestDatabase;
use promptgate_store::{AuditFilter, PromptFilter, Store, TelemetryFilter};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::harness::{BIN, CLIENTS, GW, PROMPTS, prompt_body, prompt_path, run_bounded, str_field};

const AUDIT: &str = "/api/v2/ai/llm/gateway/audit-logs";

fn migrate(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("migrate")
        .args(args)
        .env_remove("PROMPTGATE_DATABASE_URL");
    run_bounded(cmd)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tables both schemas share, with the rows each holds, compared as counts.
const TABLES: [&str; 8] = [
    "clients",
    "access_tokens",
    "prompts",
    "prompt_versions",
    "invocations",
    "exporter_cursors",
    "audit_entries",
    "audit_tree_heads",
];

async fn sqlite_counts(url: &str) -> Vec<(String, i64)> {
    let mut conn = SqliteConnection::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in TABLES {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        out.push((table.to_owned(), n));
    }
    conn.close().await.unwrap();
    out
}

async fn postgres_counts(url: &str) -> Vec<(String, i64)> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in TABLES {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        out.push((table.to_owned(), n));
    }
    conn.close().await.unwrap();
    out
}

/// The audit log's stored columns, exactly, in order.
type AuditRow = (i64, String, String, String, String, String, String);

async fn sqlite_audit_rows(url: &str) -> Vec<AuditRow> {
    let mut conn = SqliteConnection::connect(url).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT sequence, id, actor, action, body, prev_hash || ' ' || hash, leaf_hash \
         FROM audit_entries ORDER BY sequence",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}

async fn postgres_audit_rows(url: &str) -> Vec<AuditRow> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT sequence, id::text, actor, action, body, prev_hash || ' ' || hash, leaf_hash \
         FROM audit_entries ORDER BY sequence",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}

/// What the store reads back of every table, for comparing two databases through one lens.
async fn read_back(store: &dyn Store) -> Vec<String> {
    let mut out = vec![
        format!("{:?}", store.list_clients().await.unwrap()),
        format!("{:?}", store.disabled_client_ids().await.unwrap()),
    ];
    let prompts = store
        .list_prompts(&PromptFilter::default(), None, 500)
        .await
        .unwrap();
    out.push(format!("{prompts:?}"));
    for p in &prompts {
        let mut versions = store.list_versions(p.id).await.unwrap();
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        out.push(format!("{versions:?}"));
    }
    out.push(format!(
        "{:?}",
        store
            .list_invocations(&TelemetryFilter::default(), None, 500)
            .await
            .unwrap()
    ));
    for exporter in ["webhook", "otlp"] {
        out.push(format!(
            "{:?}",
            store.exporter_cursor(exporter).await.unwrap()
        ));
    }
    out.push(format!(
        "{:?}",
        store
            .list_audit(&AuditFilter::default(), None, 5_000)
            .await
            .unwrap()
    ));
    out.push(format!("{:?}", store.tree_heads().await.unwrap()));
    out
}

/// What [`gateway_built_sqlite`] made.
struct Built {
    /// Holds the database and the audit signing key the gateway used.
    dir: Arc<tempfile::TempDir>,
    url: String,
    prompt_id: String,
    responses: Vec<String>,
}

/// A webhook receiver on a loopback port that answers 200 and counts the records it got.
async fn webhook_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::post;
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<Value>| {
            let counter = counter.clone();
            async move {
                let n = body["metrics"].as_array().map_or(0, Vec::len);
                counter.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

/// A `promptgate serve` process of these tests' own on a database they choose (the suite's
/// harness picks the store from the environment; these tests need SQLite, then PostgreSQL).
struct LocalGateway {
    child: Option<Child>,
    base: String,
    http: reqwest::Client,
    token: String,
    log: Arc<Mutex<String>>,
}

impl LocalGateway {
    /// Starts `serve` on `database_url` with `config`, the admin client from the environment
    /// variables (created on an empty database, else signing in), and gets an admin token.
    async fn start(dir: &Path, database_url: &str, config: &str, admin: (&str, &str)) -> Self {
        let config_path = dir.join(format!("config-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .arg("--config")
            .arg(&config_path)
            .env("PROMPTGATE_ADMIN_CLIENT_ID", admin.0)
            .env("PROMPTGATE_ADMIN_CLIENT_SECRET", admin.1)
            .env_remove("PROMPTGATE_DATABASE_URL")
            .env_remove("PROMPTGATE_LISTEN")
            .env_remove("PROMPTGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (listening, address) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("promptgate listening on ") {
                        let _ = listening.send(line[at + 24..].trim().to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let mut gateway = LocalGateway {
            child: Some(child),
            base: String::new(),
            http: reqwest::Client::new(),
            token: String::new(),
            log,
        };
        gateway.base =
            tokio::task::spawn_blocking(move || address.recv_timeout(Duration::from_secs(60)))
                .await
                .unwrap()
                .unwrap_or_else(|_| panic!("the gateway did not start"));
        let token: Value = gateway
            .http
            .post(format!("{}/oauth/token", gateway.base))
            .basic_auth(admin.0, Some(admin.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        gateway.token = str_field(&token, "access_token");
        gateway
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> Value {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the gateway did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status:?}\n{}", self.log.lock().unwrap());
    }
}

impl Drop for LocalGateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- promptgate output ----\n{}", self.log.lock().unwrap());
        }
    }
}

const ADMIN_ID: &str = "migrate-admin";
const ADMIN_SECRET: &str = "migrate-admin-secret-0123456789";

/// A SQLite database filled by a real gateway, which is then stopped.
async fn gateway_built_sqlite() -> Built {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("promptgate.db").display());
    // A webhook exporter, so that the outbox has a cursor to carry over.
    let (hook, delivered) = webhook_receiver().await;
    let server = LocalGateway::start(
        dir.path(),
        &url,
        &format!("[exporters.webhook]\nurl = \"{hook}\"\nflush_interval_ms = 50\n"),
        (ADMIN_ID, ADMIN_SECRET),
    )
    .await;
    let created = server.post(PROMPTS, &prompt_body("support_agent")).await;
    let id = str_field(&created, "id");
    server.post(PROMPTS, &prompt_body("sales_agent")).await;
    server
        .put(
            &prompt_path(&id),
            &json!({"systemPrompt": "You are terse.", "version": "1.1.0"}),
        )
        .await;
    server
        .put(
            &prompt_path(&id),
            &json!({"trafficDistribution": {"versions": [
                {"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.5}]}}),
        )
        .await;
    let bot = server
        .post(
            CLIENTS,
            &json!({"name": "bot", "scopes": ["ai:gateway:write"]}),
        )
        .await;
    server
        .post(
            &format!("{CLIENTS}/{}/disable", str_field(&bot, "clientId")),
            &json!({}),
        )
        .await;
    let mut responses = Vec::new();
    for n in 0..6 {
        let answer = server
            .post(
                &format!("{GW}/invocations"),
                &json!({"promptId": id, "userInput": format!("Hello {n}"), "sessionId": format!("s{n}")}),
            )
            .await;
        responses.push(str_field(&answer, "responseId"));
    }
    server
        .post(
            &format!("{GW}/invocations/{}/feedback", responses[0]),
            &json!({"score": 0.75, "comment": "useful"}),
        )
        .await;
    server
        .post(
            AUDIT,
            &json!({"action": "NOTE", "details": {"text": "reviewed ✓"}}),
        )
        .await;
    server.get(&format!("{AUDIT}/checkpoint")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.load(std::sync::atomic::Ordering::SeqCst) < responses.len() {
        assert!(
            Instant::now() < deadline,
            "the webhook did not get every record"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
    Built {
        dir,
        url,
        prompt_id: id,
        responses,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_moves_a_gateways_sqlite_database_into_postgres_with_the_chain_intact() {
    let built = gateway_built_sqlite().await;
    let (sqlite_url, prompt_id, responses) = (&built.url, &built.prompt_id, &built.responses);
    let target = TestDatabase::create().await;

    let out = migrate(&["--from", sqlite_url, "--to", target.url(), "--json"]);
    assert!(
        out.status.success(),
        "{:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Every table: the same row counts, and the report says so.
    let counts = sqlite_counts(sqlite_url).await;
    assert_eq!(counts, postgres_counts(target.url()).await);
    for (table, n) in &counts {
        assert_eq!(report[table], json!(n), "{table} in {report}");
    }
    assert_eq!(report["replaced_nul_values"], json!(0));
    assert!(
        counts.iter().all(|(_, n)| *n > 0),
        "every table has rows: {counts:?}"
    );
    // The audit log byte for byte.
    assert_eq!(
        sqlite_audit_rows(sqlite_url).await,
        postgres_audit_rows(target.url()).await
    );
    // Every row, as the store reads it back.
    let sqlite = promptgate_store::open(sqlite_url).await.unwrap();
    let pg = promptgate_store::open(target.url()).await.unwrap();
    assert_eq!(read_back(&*sqlite).await, read_back(&*pg).await);
    // The chain verifies on PostgreSQL.
    let entries = pg
        .list_audit(&AuditFilter::default(), None, 5_000)
        .await
        .unwrap();
    let mut verifier = ChainVerifier::new();
    for entry in &entries {
        verifier.push(&entry.to_value());
    }
    let chain = verifier.report();
    assert!(chain.is_valid(), "{:?}", chain.first_break);
    assert_eq!(chain.entries, sqlite.audit_size().await.unwrap());
    sqlite.close().await;
    pg.close().await;

    // A gateway on the copy, with the signing key of the original, serves the same prompt and
    // verifies the log, including the head signed before the move.
    // `serve` keeps the key beside a SQLite file; on PostgreSQL it is named in the config.
    let key = built.dir.path().join("promptgate.db.audit-key.pem");
    assert!(key.is_file());
    let config = format!(
        "[audit]\nsigning_key_file = {}\n",
        toml::Value::String(key.display().to_string())
    );
    // The clients came along: no admin is created, the original one signs in.
    let server = LocalGateway::start(
        built.dir.path(),
        target.url(),
        &config,
        (ADMIN_ID, ADMIN_SECRET),
    )
    .await;
    let verified = server.get(&format!("{AUDIT}/verify")).await;
    assert_eq!(verified["valid"], json!(true), "{verified}");
    assert!(
        verified["signedHeadsChecked"].as_u64().unwrap() >= 1,
        "{verified}"
    );
    let prompt = server.get(&prompt_path(prompt_id)).await;
    assert_eq!(prompt["name"], json!("support_agent"));
    server
        .post(
            &format!("{GW}/invocations"),
            &json!({"promptId": prompt_id, "userInput": "Hello again"}),
        )
        .await;
    let listed = server
        .get(&format!("{GW}/telemetry?promptId={prompt_id}"))
        .await;
    let ids: Vec<&str> = listed["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), responses.len() + 1, "{listed}");
    assert_eq!(
        &ids[..responses.len()],
        responses.as_slice(),
        "old records first, in order"
    );
    server.stop();

    // A second run finds the target in use: refused, exit 3, nothing changed.
    let before = postgres_counts(target.url()).await;
    let again = migrate(&["--from", sqlite_url, "--to", target.url()]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(postgres_counts(target.url()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_prints_counts_and_refuses_a_damaged_log_with_exit_3() {
    let built = gateway_built_sqlite().await;
    let sqlite_url = &built.url;
    // The text report names every table.
    let target = TestDatabase::create().await;
    let out = migrate(&["--from", sqlite_url, "--to", target.url()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for table in TABLES {
        assert!(stdout.contains(table), "{table} missing from:\n{stdout}");
    }
    assert!(
        !stdout.contains(target.url()),
        "the target URL is not echoed"
    );

    // An edited audit entry: refused before anything is written, naming the entry.
    let mut conn = SqliteConnection::connect(sqlite_url).await.unwrap();
    sqlx::raw_sql(
        "DROP TRIGGER audit_entries_no_update; \
         UPDATE audit_entries SET body = replace(body, 'reviewed', 'approved') \
         WHERE action = 'NOTE';",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let edited: i64 =
        sqlx::query_scalar("SELECT sequence FROM audit_entries WHERE action = 'NOTE'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    let fresh = TestDatabase::create().await;
    let out = migrate(&["--from", sqlite_url, "--to", fresh.url()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("does not verify"), "{stderr}");
    assert!(stderr.contains(&format!("entry {edited}")), "{stderr}");
    assert!(
        postgres_counts(fresh.url())
            .await
            .iter()
            .all(|(_, n)| *n == 0),
        "nothing was written"
    );
}

#[test]
fn migrate_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("absent.db").display());
    for (args, expected) in [
        (
            vec![
                "--from",
                "postgres://127.0.0.1/x",
                "--to",
                "postgres://127.0.0.1/y",
            ],
            "must be a SQLite database",
        ),
        (
            vec!["--from", missing.as_str(), "--to", "sqlite://other.db"],
            "must be a PostgreSQL database",
        ),
        (
            vec!["--from", missing.as_str(), "--to", "postgres://127.0.0.1/y"],
            "no SQLite database at",
        ),
        (vec!["--from", missing.as_str()], "--to"),
    ] {
        let out = migrate(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(
        !dir.path().join("absent.db").exists(),
        "a missing source is never created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_to_an_unreachable_server_fails_with_exit_3_without_its_password() {
    let built = gateway_built_sqlite().await;
    let sqlite_url = &built.url;
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let to = format!("postgres://gw:s3cret-pw@127.0.0.1:{port}/promptgate");
    let out = migrate(&["--from", sqlite_url, "--to", &to]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot write the PostgreSQL database"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
}
