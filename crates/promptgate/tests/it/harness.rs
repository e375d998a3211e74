//! Starts a real `promptgate serve` process and talks to it.
//!
//! A [`Server`] owns the child process, the temporary directory that holds its configuration
//! (and, on SQLite, its database), and everything the process wrote to stdout and stderr. When a
//! test panics, the captured output is printed so the failure can be read next to the server's
//! own log.
//!
//! The store is chosen by `PROMPTGATE_TEST_STORE` ([`store_kind`]): `sqlite` (the default), a file
//! in the test's temporary directory; or `postgres`, a fresh database of the test's own on the
//! PostgreSQL test server of `promptgate_store::testing`, kept for as long as the temporary
//! directory is (so a restart, or a second server in the same directory, sees the same data).
//! Under PostgreSQL the generated configuration names an audit signing key file in the
//! temporary directory, where the SQLite default would put it.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use promptgate_store::testing::TestDatabase;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_promptgate");

/// The base path of the gateway API, written `…` in API.md.
pub const GW: &str = "/api/v2/ai/llm/gateway";
pub const PROMPTS: &str = "/api/v2/ai/llm/gateway/prompts";
pub const MODEL_ENDPOINTS: &str = "/api/v2/ai/llm/gateway/model-endpoints";
pub const CLIENTS: &str = "/api/v2/oauth/clients";

pub const ALL_SCOPES: [&str; 6] = [
    "ai:prompt:read",
    "ai:prompt:write",
    "ai:gateway:write",
    "ai:telemetry:read",
    "ai:audit:read",
    "admin",
];

const START_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const LISTENING: &str = "promptgate listening on ";

/// The store the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// The variable that chooses the store: `sqlite` (or unset) or `postgres`.
pub const STORE_VARIABLE: &str = "PROMPTGATE_TEST_STORE";

/// The store this run tests, from [`STORE_VARIABLE`]. Any other value is an error, not a
/// silent fall-back to SQLite.
pub fn store_kind() -> StoreKind {
    static KIND: OnceLock<StoreKind> = OnceLock::new();
    *KIND.get_or_init(|| match std::env::var(STORE_VARIABLE) {
        Err(std::env::VarError::NotPresent) => StoreKind::Sqlite,
        Ok(value) => match value.trim() {
            "" | "sqlite" => StoreKind::Sqlite,
            "postgres" | "postgresql" => StoreKind::Postgres,
            other => panic!("{STORE_VARIABLE}={other:?}: expected sqlite or postgres"),
        },
        Err(e) => panic!("{STORE_VARIABLE}: {e}"),
    })
}

pub fn on_postgres() -> bool {
    store_kind() == StoreKind::Postgres
}

/// For the few tests that are about the SQLite file itself: answers true (and says so on
/// stderr, so the skip is visible with `--nocapture` and in a failing run's output) when this
/// run is on PostgreSQL.
pub fn skip_on_postgres(why: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on postgres: {why}");
        true
    } else {
        false
    }
}

/// The PostgreSQL databases of live temporary directories: a directory's database lives as long
/// as the directory (matched by the `Arc`, not the path), so a restart or a second server in the
/// same directory finds the same data. Entries of dropped directories are dropped (and with them
/// the database) on the next look-up, or when the last server of a directory goes.
struct SharedDatabase {
    dir: std::sync::Weak<TempDir>,
    db: Arc<TestDatabase>,
}

static DATABASES: Mutex<Vec<SharedDatabase>> = Mutex::new(Vec::new());

fn database_of(dir: &Arc<TempDir>) -> Arc<TestDatabase> {
    let mut gone = Vec::new();
    {
        let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
        let (live, dead): (Vec<_>, Vec<_>) = std::mem::take(&mut *databases)
            .into_iter()
            .partition(|shared| shared.dir.strong_count() > 0);
        *databases = live;
        gone.extend(dead);
        if let Some(found) = databases.iter().find(|shared| {
            shared
                .dir
                .upgrade()
                .is_some_and(|live| Arc::ptr_eq(&live, dir))
        }) {
            return found.db.clone();
        }
    }
    // Dropping a database talks to the server; not under the lock.
    drop(gone);
    let db = Arc::new(create_test_database());
    DATABASES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(SharedDatabase {
            dir: Arc::downgrade(dir),
            db: db.clone(),
        });
    db
}

fn forget_database_of(dir: &Arc<TempDir>) {
    let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    databases.retain(|shared| {
        shared
            .dir
            .upgrade()
            .is_some_and(|live| !Arc::ptr_eq(&live, dir))
    });
}

/// A fresh database on the PostgreSQL test server, from synchronous code that may run inside a
/// test's runtime (which must not be blocked on): a thread with a runtime of its own.
pub fn create_test_database() -> TestDatabase {
    std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(TestDatabase::create())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Where the audit signing key of a server in `dir` lives: the SQLite default's place, named in
/// the configuration under PostgreSQL.
pub fn key_file_in(dir: &Path) -> PathBuf {
    dir.join("promptgate.db.audit-key.pem")
}

/// The configuration text with `[audit] signing_key_file` set to `key`, unless it sets one
/// already. Text that is not TOML is left as it is (the server refuses it before it needs a
/// key); otherwise lines are only added, so line numbers in the server's messages stay right.
fn with_signing_key_file(config: &str, key: &Path) -> String {
    let Ok(parsed) = config.parse::<toml::Table>() else {
        return config.to_owned();
    };
    let audit = parsed.get("audit");
    if audit.and_then(|a| a.get("signing_key_file")).is_some() {
        return config.to_owned();
    }
    let line = format!(
        "signing_key_file = {}",
        toml::Value::String(key.display().to_string())
    );
    if audit.is_none() {
        let mut text = config.to_owned();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("[audit]\n{line}\n"));
        return text;
    }
    let mut out = String::new();
    let mut added = false;
    for row in config.split_inclusive('\n') {
        out.push_str(row);
        let header = row.split('#').next().unwrap_or("").trim();
        if !added && header == "[audit]" {
            if !row.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
            out.push('\n');
            added = true;
        }
    }
    assert!(
        added,
        "cannot find the [audit] table in the test's config:\n{config}"
    );
    out
}

/// How the admin client comes to exist.
#[derive(Clone, Debug)]
pub enum Admin {
    /// `PROMPTGATE_ADMIN_CLIENT_ID` / `PROMPTGATE_ADMIN_CLIENT_SECRET` are set to these.
    Env { id: String, secret: String },
    /// No admin variables; the server is expected to create the admin client and print it.
    Printed,
    /// No admin variables; the database already holds this admin client (a restart).
    Existing { id: String, secret: String },
}

#[derive(Clone, Debug)]
pub struct Options {
    pub admin: Admin,
    /// The text of a TOML configuration file, written to `config.toml` and passed with `--config`.
    pub config: Option<String>,
    /// Extra environment variables of the server process.
    pub env: Vec<(String, String)>,
    /// Pass listen address, database URL and config path through `PROMPTGATE_*` variables
    /// instead of flags.
    pub settings_from_env: bool,
    /// A database of the test's own (e.g. a `PrivateCluster`'s) instead of the one the harness
    /// chooses for the directory.
    pub database_url: Option<String>,
    /// More arguments of `serve` (such as `--tls-cert FILE --tls-key FILE`), after the others.
    pub extra_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            admin: Admin::Env {
                id: uuid::Uuid::new_v4().to_string(),
                secret: random_secret(),
            },
            config: None,
            env: Vec::new(),
            settings_from_env: false,
            database_url: None,
            extra_args: Vec::new(),
        }
    }
}

impl Options {
    pub fn with_config(config: &str) -> Self {
        Options {
            config: Some(config.to_owned()),
            ..Options::default()
        }
    }
}

/// A random 43-character secret (256 bits in base64url would be 43 characters too).
pub fn random_secret() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}")[..43].to_owned()
}

pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub dir: Arc<TempDir>,
    /// The SQLite file (under PostgreSQL, where it would be; it does not exist).
    pub db_path: PathBuf,
    /// What the server got as `--database-url`.
    pub db_url: String,
    pub store: StoreKind,
    /// The PostgreSQL database, shared with every server of the same directory.
    pg: Option<Arc<TestDatabase>>,
    pub admin_id: String,
    pub admin_secret: String,
    pub options: Options,
    log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
}

/// What a process that was expected to fail at start-up did.
pub struct FailedStart {
    pub status: Option<ExitStatus>,
    pub log: String,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Server {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Server::start_in(dir, options)
    }

    pub fn start_in(dir: Arc<TempDir>, options: Options) -> Server {
        match Server::try_start_in(dir, options) {
            Ok(server) => server,
            Err(failed) => panic!(
                "the server did not start (exit status {:?}); its output:\n{}",
                failed.status, failed.log
            ),
        }
    }

    /// Starts the server and waits until it listens, or until it exits.
    pub fn try_start_in(dir: Arc<TempDir>, options: Options) -> Result<Server, FailedStart> {
        let db_path = dir.path().join("promptgate.db");
        let (store, pg, db_url) = match &options.database_url {
            Some(url) if url.starts_with("sqlite:") => (StoreKind::Sqlite, None, url.clone()),
            Some(url) => (StoreKind::Postgres, None, url.clone()),
            None => match store_kind() {
                StoreKind::Sqlite => (
                    StoreKind::Sqlite,
                    None,
                    format!("sqlite://{}", db_path.display()),
                ),
                StoreKind::Postgres => {
                    let db = database_of(&dir);
                    let url = db.url().to_owned();
                    (StoreKind::Postgres, Some(db), url)
                }
            },
        };
        // The default key file lives beside a SQLite file only; elsewhere, name one where that
        // default would be.
        let config_text = match store {
            StoreKind::Sqlite => options.config.clone(),
            StoreKind::Postgres => Some(with_signing_key_file(
                options.config.as_deref().unwrap_or(""),
                &key_file_in(dir.path()),
            )),
        };
        let mut cmd = Command::new(BIN);
        cmd.arg("serve");
        cmd.env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("PROMPTGATE_ADMIN_CLIENT_ID")
            .env_remove("PROMPTGATE_ADMIN_CLIENT_SECRET")
            .env_remove("PROMPTGATE_LISTEN")
            .env_remove("PROMPTGATE_DATABASE_URL")
            .env_remove("PROMPTGATE_CONFIG");
        let config_path = config_text.as_ref().map(|text| {
            // A second server in the same directory (a replica) with another configuration
            // must not change the file a restart of the first would read.
            let mut path = dir.path().join("config.toml");
            if std::fs::read_to_string(&path).is_ok_and(|existing| existing != *text) {
                path = dir
                    .path()
                    .join(format!("config-{}.toml", uuid::Uuid::new_v4().simple()));
            }
            std::fs::write(&path, text).unwrap();
            path
        });
        if options.settings_from_env {
            cmd.env("PROMPTGATE_LISTEN", "127.0.0.1:0")
                .env("PROMPTGATE_DATABASE_URL", &db_url);
            if let Some(path) = &config_path {
                cmd.env("PROMPTGATE_CONFIG", path);
            }
        } else {
            cmd.args(["--listen", "127.0.0.1:0", "--database-url", &db_url]);
            if let Some(path) = &config_path {
                cmd.arg("--config").arg(path);
            }
        }
        cmd.args(&options.extra_args);
        if let Admin::Env { id, secret } = &options.admin {
            cmd.env("PROMPTGATE_ADMIN_CLIENT_ID", id)
                .env("PROMPTGATE_ADMIN_CLIENT_SECRET", secret);
        }
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();

        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push_str(&format!("[stderr] {line}\n"));
                    // The receiver goes away once the server listens; keep draining anyway.
                    let _ = tx.send(line);
                }
            });
        }
        let mut stdout = child.stdout.take().unwrap();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    match stdout.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            pending.extend_from_slice(&buf[..n]);
                            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                                let line: Vec<u8> = pending.drain(..=pos).collect();
                                let line = String::from_utf8_lossy(&line);
                                log.lock().unwrap().push_str(&format!("[stdout] {line}"));
                            }
                        }
                    }
                }
            });
        }

        let deadline = Instant::now() + START_TIMEOUT;
        let mut stderr_lines: Vec<String> = Vec::new();
        let mut base = None;
        while base.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(pos) = line.find(LISTENING) {
                        let rest = &line[pos + LISTENING.len()..];
                        let url: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || ":/.[]".contains(*c))
                            .collect();
                        base = Some(url.trim_end_matches('/').to_owned());
                    }
                    stderr_lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    let log = log.lock().unwrap().clone();
                    return Err(FailedStart {
                        status,
                        log: format!("(no listening line within {START_TIMEOUT:?})\n{log}"),
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed: the process is exiting.
                    let status = wait_bounded(&mut child);
                    // Give the stdout thread a moment to flush what it read.
                    std::thread::sleep(Duration::from_millis(50));
                    let log = log.lock().unwrap().clone();
                    return Err(FailedStart { status, log });
                }
            }
        }
        let base = base.unwrap();

        let (admin_id, admin_secret) = match &options.admin {
            Admin::Env { id, secret } | Admin::Existing { id, secret } => {
                (id.clone(), secret.clone())
            }
            Admin::Printed => {
                // The announcement normally comes before the listening line; allow a little
                // while for it to come after.
                let mut creds = parse_admin_announcement(&stderr_lines.join("\n"));
                let deadline = Instant::now() + Duration::from_secs(5);
                while creds.is_none() && Instant::now() < deadline {
                    if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                        stderr_lines.push(line);
                    }
                    creds = parse_admin_announcement(&stderr_lines.join("\n"));
                }
                match creds {
                    Some(c) => c,
                    None => {
                        let _ = child.kill();
                        let _ = child.wait();
                        let log = log.lock().unwrap().clone();
                        return Err(FailedStart {
                            status: None,
                            log: format!("(no admin client announcement on stderr)\n{log}"),
                        });
                    }
                }
            }
        };

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Ok(Server {
            child: Some(child),
            base,
            dir,
            db_path,
            db_url,
            store,
            pg,
            admin_id,
            admin_secret,
            options,
            log,
            http,
        })
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log holds `needle` `count` times: a line written just after
    /// the one the start waited for may not have been read from the pipe yet.
    pub async fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{count}) in the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal (`TERM`, `INT`) and waits (bounded) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let pid = self.pid();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
        assert!(status.unwrap().success(), "kill -{signal} {pid} failed");
        let mut child = self.child.take().unwrap();
        match wait_bounded(&mut child) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not exit within {EXIT_TIMEOUT:?} of SIG{signal}; its output:\n{}",
                    self.log()
                )
            }
        }
    }

    /// Stops this server with SIGTERM (asserting a clean exit) and starts another on the same
    /// directory and database.
    pub fn restart(mut self) -> Server {
        let status = self.signal_and_wait("TERM");
        assert!(
            status.success(),
            "SIGTERM: exit status {status:?}; output:\n{}",
            self.log()
        );
        let admin = match &self.options.admin {
            Admin::Env { id, secret } => Admin::Env {
                id: id.clone(),
                secret: secret.clone(),
            },
            Admin::Printed | Admin::Existing { .. } => Admin::Existing {
                id: self.admin_id.clone(),
                secret: self.admin_secret.clone(),
            },
        };
        let options = Options {
            admin,
            ..self.options.clone()
        };
        Server::start_in(self.dir.clone(), options)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn send(&self, builder: RequestBuilder) -> Resp {
        let request = builder.build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        let response = self.http.execute(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Resp {
            status,
            headers,
            text,
            what,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(auth(self.request(Method::GET, path), token))
            .await
    }

    pub async fn get_query(&self, path: &str, token: &str, query: &[(&str, &str)]) -> Resp {
        self.send(
            self.request(Method::GET, path)
                .bearer_auth(token)
                .query(query),
        )
        .await
    }

    /// The telemetry record of the invocation `response_id` of prompt `prompt_id`, waiting for
    /// the writer (which stores every 200 ms) for at most 10 s.
    pub async fn telemetry_record(&self, token: &str, prompt_id: &str, response_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = self
                .get_query(
                    "/api/v2/ai/llm/gateway/telemetry",
                    token,
                    &[("promptId", prompt_id), ("pageSize", "500")],
                )
                .await
                .ok(200);
            if let Some(entity) = page["entities"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == response_id)
            {
                return entity.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no telemetry record {response_id}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send(auth(self.request(Method::POST, path), token).json(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value, if_match: Option<&str>) -> Resp {
        let mut builder = self
            .request(Method::PUT, path)
            .bearer_auth(token)
            .json(body);
        if let Some(etag) = if_match {
            builder = builder.header("If-Match", etag);
        }
        self.send(builder).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(auth(self.request(Method::DELETE, path), token))
            .await
    }

    /// `POST /oauth/token` with a form body and, optionally, HTTP Basic credentials.
    pub async fn token_request(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        let mut builder = self.request(Method::POST, "/oauth/token").form(form);
        if let Some((id, secret)) = basic {
            builder = builder.basic_auth(id, Some(secret));
        }
        self.send(builder).await
    }

    /// An access token for the client, optionally narrowed to `scope`.
    pub async fn token(&self, id: &str, secret: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let resp = self.token_request(&form, Some((id, secret))).await;
        let body = resp.ok(200);
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {resp}"))
            .to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token(&self.admin_id, &self.admin_secret, None).await
    }

    /// An admin token narrowed to the given scopes.
    pub async fn scoped_token(&self, scope: &str) -> String {
        self.token(&self.admin_id, &self.admin_secret, Some(scope))
            .await
    }

    /// Creates an OAuth client over the admin API and answers `(id, secret)`.
    pub async fn create_client(
        &self,
        admin_token: &str,
        name: &str,
        scopes: &[&str],
    ) -> (String, String) {
        let resp = self
            .post(
                CLIENTS,
                Some(admin_token),
                &json!({"name": name, "scopes": scopes}),
            )
            .await;
        let body = resp.ok(201);
        (
            str_field(&body, "clientId"),
            str_field(&body, "clientSecret"),
        )
    }

    /// Creates a prompt, asserting 201, and answers the body and the ETag.
    pub async fn create_prompt(&self, token: &str, body: &Value) -> (Value, String) {
        let resp = self.post(PROMPTS, Some(token), body).await;
        let created = resp.ok(201);
        let etag = resp.etag();
        (created, etag)
    }

    /// Runs the CLI with `args` followed by `--database-url` of this server's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_cli(args, &self.db_url)
    }

    /// Every row of every table, rendered as text in a stable order, from whichever store the
    /// server runs on; equal dumps mean equal stored state.
    pub async fn dump(&self) -> String {
        match self.store {
            StoreKind::Sqlite => dump_database(&self.db_path).await,
            StoreKind::Postgres => dump_postgres(&self.db_url).await,
        }
    }

    /// A connection of its own to the server's PostgreSQL database, for raw SQL.
    ///
    /// # Panics
    /// On SQLite.
    pub async fn pg(&self) -> PgConnection {
        assert_eq!(
            self.store,
            StoreKind::Postgres,
            "pg() is for PostgreSQL runs"
        );
        PgConnection::connect(&self.db_url).await.unwrap()
    }

    /// Starts a second gateway on the same database (and signing key): a replica.
    pub fn start_replica(&self) -> Server {
        self.start_replica_with(self.options.config.clone())
    }

    /// A replica with a configuration of its own (e.g. its own exporter target).
    pub fn start_replica_with(&self, config: Option<String>) -> Server {
        let options = Options {
            admin: Admin::Existing {
                id: self.admin_id.clone(),
                secret: self.admin_secret.clone(),
            },
            config,
            env: self.options.env.clone(),
            settings_from_env: false,
            database_url: self.options.database_url.clone(),
            extra_args: self.options.extra_args.clone(),
        };
        // The same directory: the same SQLite file or PostgreSQL database, the same key file.
        Server::start_in(self.dir.clone(), options)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The last holder of the directory: its database goes with this server.
        if self.pg.is_some() && Arc::strong_count(&self.dir) == 1 {
            forget_database_of(&self.dir);
        }
        if std::thread::panicking() {
            eprintln!(
                "---- promptgate output ({}) ----\n{}---- end ----",
                self.base,
                self.log()
            );
        }
    }
}

fn wait_bounded(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses the first-start announcement:
/// `client id:     <id>` and `client secret: <secret>` lines.
pub fn parse_admin_announcement(text: &str) -> Option<(String, String)> {
    let mut id = None;
    let mut secret = None;
    for line in text.lines() {
        if let Some((_, rest)) = line.split_once("client id:") {
            id = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some((_, rest)) = line.split_once("client secret:") {
            secret = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    Some((id?, secret?))
}

pub fn run_cli(args: &[&str], db_url: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--database-url", db_url])
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("PROMPTGATE_DATABASE_URL")
        .stdin(Stdio::null());
    run_bounded(cmd)
}

/// Runs a command to completion within a bounded time and answers its output.
pub fn run_bounded(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(EXIT_TIMEOUT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("{cmd:?} did not finish within {EXIT_TIMEOUT:?}")
        }
    }
}

fn auth(builder: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

/// One HTTP answer, with its body read as text so that a failing assertion can show it.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub what: String,
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} → {} {:?} body: {}",
            self.what, self.status, self.headers, self.text
        )
    }
}

impl Resp {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self}"))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[track_caller]
    pub fn etag(&self) -> String {
        let etag = self
            .header("etag")
            .unwrap_or_else(|| panic!("no ETag header: {self}"));
        assert!(
            etag.ends_with('"') && (etag.starts_with('"') || etag.starts_with("W/\"")),
            "the ETag is not a quoted string: {etag:?}"
        );
        etag
    }

    /// Asserts the status and answers the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status: {self}");
        self.json()
    }

    /// Asserts that this is an API error (the Genesys ErrorBody of API.md) with this status and
    /// code, and answers the body.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status: {self}");
        let body = self.json();
        assert_error_body(&body, status, code, self);
        let request_id = self
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id: {self}"));
        assert_eq!(
            body["contextId"],
            json!(request_id),
            "contextId is not the X-Request-Id: {self}"
        );
        body
    }

    /// The `fieldName`s of the error body's `details`, sorted.
    #[track_caller]
    pub fn field_names(&self) -> BTreeSet<String> {
        let body = self.json();
        body["details"]
            .as_array()
            .unwrap_or_else(|| panic!("no details array: {self}"))
            .iter()
            .filter_map(|d| d["fieldName"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Checks the ErrorBody shape: `status`, `code`, `message`, `contextId`, `details` and `errors`.
#[track_caller]
pub fn assert_error_body(body: &Value, status: u16, code: &str, resp: &Resp) {
    assert_eq!(body["status"], json!(status), "ErrorBody.status: {resp}");
    assert_eq!(body["code"], json!(code), "ErrorBody.code: {resp}");
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("ErrorBody.message: {resp}"));
    assert!(!message.is_empty(), "empty ErrorBody.message: {resp}");
    assert!(body["contextId"].is_string(), "ErrorBody.contextId: {resp}");
    assert!(
        body["details"].is_array(),
        "ErrorBody.details must be an array: {resp}"
    );
    assert!(
        body["errors"].is_array(),
        "ErrorBody.errors must be an array: {resp}"
    );
    if let Some(params) = body.get("messageParams").filter(|p| !p.is_null()) {
        assert!(
            params.is_object(),
            "ErrorBody.messageParams must be an object: {resp}"
        );
    }
    // No internals ever leak into a message.
    for leak in [
        "SELECT ",
        "INSERT ",
        "sqlx",
        "sqlite://",
        "panicked at",
        "/tmp/",
    ] {
        assert!(
            !message.contains(leak),
            "the message leaks {leak:?}: {resp}"
        );
    }
}

#[track_caller]
pub fn str_field(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {body}"))
        .to_owned()
}

/// A minimal valid create body.
pub fn prompt_body(name: &str) -> Value {
    json!({
        "name": name,
        "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You are a helpful customer support agent.",
        "version": "1.0.0"
    })
}

/// The create body of API.md's example, on the offline endpoint.
pub fn full_prompt_body(name: &str) -> Value {
    json!({
        "name": name,
        "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You are a helpful customer support agent.",
        "temperature": 0.2,
        "safetyGuardrails": {
            "contentFiltering": ["pii", "profanity"],
            "maxTokens": 1500,
            "blockedCategories": ["violence", "hate_speech", "self_harm"]
        },
        "version": "1.0.0",
        "trafficDistribution": {"defaultVersion": "1.0.0"}
    })
}

pub fn prompt_path(id: &str) -> String {
    format!("{PROMPTS}/{id}")
}

pub fn versions_path(id: &str) -> String {
    format!("{PROMPTS}/{id}/versions")
}

pub fn version_path(id: &str, version: &str) -> String {
    format!("{PROMPTS}/{id}/versions/{version}")
}

/// The exact token count of `text` with OpenAI's o200k_base encoding.
pub fn o200k(text: &str) -> usize {
    static BPE: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().unwrap())
        .encode_ordinary(text)
        .len()
}

/// The exact token count of `text` with OpenAI's cl100k_base encoding.
pub fn cl100k(text: &str) -> usize {
    static BPE: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().unwrap())
        .encode_ordinary(text)
        .len()
}

/// Whether `s` looks like an RFC 3339 UTC time (`2026-11-27T04:15:39Z`, fractions allowed).
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b.len() == 20
            || (b[19] == b'.' && b[20..b.len() - 1].iter().all(u8::is_ascii_digit) && b.len() > 21))
}

pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Renders a value of `messageParams` for comparison; the contract shows them as strings.
pub fn param(body: &Value, name: &str) -> Value {
    body["messageParams"][name].clone()
}

/// Polls `check` every 100 ms until it answers true or `limit` passes; answers whether it did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Renders every row of every table of the SQLite file as text, in a stable order.
///
/// Table and column names cannot be bound as parameters, so they are quoted as identifiers; they
/// come from the database's own schema, not from input.
///
/// The database is opened read-only; SQLite's own `quote()` renders each value (text quoted,
/// blobs as hex, reals in full precision), so two dumps are equal exactly when the stored values
/// are.
pub async fn dump_database(path: &Path) -> String {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .read_only(true);
    let mut conn = options.connect().await.unwrap();
    let tables: Vec<String> =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
    assert!(!tables.is_empty(), "the database has no tables");
    let mut out = String::new();
    for table in tables {
        let quoted_table = quote_ident(&table);
        let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA table_info({quoted_table})"
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("name"))
        .collect();
        let rendered = columns
            .iter()
            .map(|c| format!("quote({})", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" || ' | ' || ");
        let order = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {rendered} FROM {quoted_table} ORDER BY {order}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        out.push_str(&format!(
            "== {table} ({}) {} rows\n",
            columns.join(", "),
            rows.len()
        ));
        for row in rows {
            let line: Option<String> = row.get(0);
            out.push_str(&line.unwrap_or_default());
            out.push('\n');
        }
    }
    conn.close().await.unwrap();
    out
}

/// The PostgreSQL counterpart of [`dump_database`]: every row of every table of the `public`
/// schema, each rendered by PostgreSQL's own row-to-text conversion (text quoted where needed,
/// bytea as hex, floats and times in full precision), sorted.
pub async fn dump_postgres(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    assert!(!tables.is_empty(), "the database has no tables");
    let mut out = String::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect();
        let sql = format!(
            "SELECT dumped_row::text FROM {} AS dumped_row ORDER BY 1",
            quote_ident(&table)
        );
        let rows: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        out.push_str(&format!(
            "== {table} ({}) {} rows\n",
            columns.join(", "),
            rows.len()
        ));
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    conn.close().await.unwrap();
    out
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value bound to a [`RawDb`] statement. `Uuid` is text on SQLite and a `uuid` on PostgreSQL
/// (the `id` and `prompt_id` columns).
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    Text(String),
    Uuid(String),
    Null,
}

impl From<i64> for Arg {
    fn from(value: i64) -> Arg {
        Arg::Int(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Arg {
        Arg::Text(value.to_owned())
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Arg {
        Arg::Text(value)
    }
}

impl From<&String> for Arg {
    fn from(value: &String) -> Arg {
        Arg::Text(value.clone())
    }
}

/// A connection of the test's own to the server's database, whichever store it is, for what an
/// operator with full access could do behind the gateway's back. Statements are written with
/// SQLite's placeholders (`?` or `?N`); on PostgreSQL they become `$N`. What differs beyond
/// that (triggers, `INSERT OR REPLACE`) the test writes per store, by [`RawDb::kind`].
pub enum RawDb {
    Sqlite(sqlx::SqliteConnection),
    Postgres(PgConnection),
}

impl RawDb {
    pub async fn open(server: &Server) -> RawDb {
        match server.store {
            StoreKind::Sqlite => RawDb::Sqlite(
                SqliteConnectOptions::from_str(&server.db_url)
                    .unwrap()
                    .busy_timeout(Duration::from_secs(20))
                    .connect()
                    .await
                    .unwrap(),
            ),
            StoreKind::Postgres => RawDb::Postgres(server.pg().await),
        }
    }

    pub fn kind(&self) -> StoreKind {
        match self {
            RawDb::Sqlite(_) => StoreKind::Sqlite,
            RawDb::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// Runs one statement; answers the rows it affected, or the database's error as text.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, String> {
        match self {
            RawDb::Sqlite(conn) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(*v),
                        Arg::Text(v) | Arg::Uuid(v) => query.bind(v.clone()),
                        Arg::Null => query.bind(None::<String>),
                    };
                }
                query
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(|e| e.to_string())
            }
            RawDb::Postgres(conn) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(pg_placeholders(sql)));
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(*v),
                        Arg::Text(v) => query.bind(v.clone()),
                        Arg::Uuid(v) => query.bind(uuid::Uuid::parse_str(v).unwrap()),
                        Arg::Null => query.bind(None::<String>),
                    };
                }
                query
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Runs a query; each row's columns as JSON: integers as numbers, text as strings, NULL as
    /// null.
    pub async fn fetch(&mut self, sql: &str, args: &[Arg]) -> Vec<Vec<Value>> {
        fn column<'r, R: Row>(row: &'r R, i: usize) -> Value
        where
            usize: sqlx::ColumnIndex<R>,
            Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                return v.map_or(Value::Null, |v| json!(v));
            }
            match row.try_get::<Option<String>, _>(i) {
                Ok(v) => v.map_or(Value::Null, Value::String),
                Err(e) => panic!("column {i} is neither an integer nor text: {e}"),
            }
        }
        fn rows<R: Row>(rows: &[R]) -> Vec<Vec<Value>>
        where
            usize: sqlx::ColumnIndex<R>,
            for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            rows.iter()
                .map(|row| (0..row.len()).map(|i| column(row, i)).collect())
                .collect()
        }
        match self {
            RawDb::Sqlite(conn) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(*v),
                        Arg::Text(v) | Arg::Uuid(v) => query.bind(v.clone()),
                        Arg::Null => query.bind(None::<String>),
                    };
                }
                rows(&query.fetch_all(&mut *conn).await.unwrap())
            }
            RawDb::Postgres(conn) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(pg_placeholders(sql)));
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(*v),
                        Arg::Text(v) => query.bind(v.clone()),
                        Arg::Uuid(v) => query.bind(uuid::Uuid::parse_str(v).unwrap()),
                        Arg::Null => query.bind(None::<String>),
                    };
                }
                rows(&query.fetch_all(&mut *conn).await.unwrap())
            }
        }
    }

    pub async fn close(self) {
        match self {
            RawDb::Sqlite(conn) => conn.close().await.unwrap(),
            RawDb::Postgres(conn) => conn.close().await.unwrap(),
        }
    }
}

/// SQLite's `?` and `?N` placeholders as PostgreSQL's `$N` (the statements here have no `?` in
/// literals).
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        if digits.is_empty() {
            next += 1;
            digits = next.to_string();
        }
        out.push('$');
        out.push_str(&digits);
    }
    out
}

/// A readable line-by-line difference of two dumps, for assertion messages.
pub fn diff_lines(before: &str, after: &str) -> String {
    let a: BTreeSet<&str> = before.lines().collect();
    let b: BTreeSet<&str> = after.lines().collect();
    let mut out = String::new();
    for line in a.difference(&b) {
        out.push_str(&format!("- {line}\n"));
    }
    for line in b.difference(&a) {
        out.push_str(&format!("+ {line}\n"));
    }
    out
}
