//! Test support (feature `test-postgres`): a real PostgreSQL server for integration tests, and a
//! fresh database for each test so that tests run in parallel without seeing each other.
//!
//! Other crates' tests use it as a dev-dependency:
//! ```toml
//! [dev-dependencies]
//! promptgate-store = { workspace = true, features = ["test-postgres"] }
//! ```
//! and then `let db = TestDatabase::create().await;` and `db.url()` as the `--database-url`.
//!
//! Where the server comes from, so that `cargo test --workspace` needs no set-up:
//! - If [`URL_VARIABLE`] (`PROMPTGATE_TEST_POSTGRES_URL`) is set, that server: the URL of a
//!   database on it whose role may `CREATE DATABASE` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
//! - Otherwise a throwaway cluster in `<target dir>/pg-test/shared`, started once and then
//!   reused by every test process (its port is in `<target dir>/pg-test/port`; a file lock,
//!   `<target dir>/pg-test/lock`, lets concurrent test binaries share it). It listens on a free
//!   loopback port only, trusts every local connection, and keeps `fsync` on. It keeps running
//!   after the tests; `pg_ctl -D <target dir>/pg-test/shared/data stop` stops it.
//! - PostgreSQL refuses to run as root, so as root the cluster is created and run as the
//!   `postgres` user (`runuser -u postgres -- …`), which the Debian packages create. If that user
//!   cannot reach the target directory (a workspace in a private home), the clusters live in
//!   `$TMPDIR/promptgate-pg-test` instead.
//! - With neither the variable nor the binaries (`initdb`, `pg_ctl` on `PATH` or in
//!   `/usr/lib/postgresql/*/bin`), the test fails saying what to install. It is not skipped.
//!
//! [`PrivateCluster`] is a server of a test's own, for tests that stop and start PostgreSQL.

#![allow(clippy::panic)] // Test support: failing loudly, with the reason, is its job.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The environment variable naming an existing PostgreSQL server to test against.
pub const URL_VARIABLE: &str = "PROMPTGATE_TEST_POSTGRES_URL";

/// A database of its own for one test, on the shared test server; dropped (with its
/// connections) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database, starting the shared test server first if this process has
    /// not yet.
    ///
    /// # Panics
    /// When no PostgreSQL can be had (the message says what to install or set), or the server
    /// refuses to create a database.
    pub async fn create() -> TestDatabase {
        let admin_url = match tokio::task::spawn_blocking(server_url).await {
            Ok(url) => url,
            Err(e) => panic!("starting the PostgreSQL test server failed: {e}"),
        };
        create_database(&admin_url).await
    }

    /// The URL of the database, for `PostgresStore::open` or `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own
        // with its own runtime can. Best effort: a database left over only takes disk space.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                    // The name is ours (`t_` and hex digits), not input.
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn create_database(admin_url: &str) -> TestDatabase {
    let name = format!("t_{}", Uuid::new_v4().simple());
    let mut conn = match PgConnection::connect(admin_url).await {
        Ok(conn) => conn,
        Err(e) => panic!("cannot connect to the PostgreSQL test server at {admin_url}: {e}"),
    };
    // CREATE DATABASE takes no parameters; the name is ours (`t_` and hex digits), not input.
    let sql = format!("CREATE DATABASE {name}");
    if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
        panic!("cannot create a test database on {admin_url}: {e}");
    }
    let _ = conn.close().await;
    TestDatabase {
        url: with_database(admin_url, &name),
        admin_url: admin_url.to_owned(),
        name,
    }
}

/// The URL of a database on the shared test server that may create databases: the variable's
/// value, or the throwaway cluster's (started or found running on first use in a process).
/// Blocks while it starts a cluster.
///
/// # Panics
/// When no PostgreSQL can be had; the message says what to install or set.
pub fn server_url() -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    match SERVER.get_or_init(|| match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => shared_cluster(),
    }) {
        Ok(url) => url.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// `postgres://u@h:1/postgres?x=y` with database `t_1` → `postgres://u@h:1/t_1?x=y`.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// Finds the shared cluster running, or starts it, under the cross-process lock.
fn shared_cluster() -> Result<String, String> {
    let base = pg_test_dir();
    fs::create_dir_all(&base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    let lock_path = base.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    // Held until `lock` is dropped at the end of this function (or the process dies).
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let cluster = Cluster::new(base.join("shared"))?;
    let port_file = base.join("port");
    let recorded = fs::read_to_string(&port_file)
        .ok()
        .and_then(|text| text.trim().parse::<u16>().ok());
    if let Some(port) = recorded
        && cluster.is_running()
        && TcpStream::connect(("127.0.0.1", port)).is_ok()
    {
        return Ok(cluster.url(port));
    }
    if cluster.is_running() {
        // Running on a port nobody recorded: start it again on one that is.
        cluster.stop("fast")?;
    }
    if !cluster.is_initialised() {
        cluster.init()?;
    }
    let port = cluster.start_on_free_port()?;
    fs::write(&port_file, port.to_string())
        .map_err(|e| format!("cannot write {}: {e}", port_file.display()))?;
    drop(lock);
    Ok(cluster.url(port))
}

/// A PostgreSQL server of one test's own, in a fresh directory under `<target dir>/pg-test/`,
/// for tests that stop and restart it. Stopped and deleted when dropped.
#[derive(Debug)]
pub struct PrivateCluster {
    cluster: Cluster,
    port: u16,
}

impl PrivateCluster {
    /// Creates and starts the cluster (a second or two). Blocks.
    ///
    /// # Panics
    /// When no PostgreSQL can be had or it does not start; the message says why.
    pub fn start() -> PrivateCluster {
        let started = (|| {
            let dir = pg_test_dir().join(format!("private-{}", Uuid::new_v4().simple()));
            let cluster = Cluster::new(dir)?;
            cluster.init()?;
            let port = cluster.start_on_free_port()?;
            Ok::<_, String>(PrivateCluster { cluster, port })
        })();
        started.unwrap_or_else(|why| panic!("{why}"))
    }

    /// The URL of its `postgres` database (superuser, no password).
    pub fn url(&self) -> String {
        self.cluster.url(self.port)
    }

    /// Stops the server the way an operator's restart does (`pg_ctl stop -m fast`: clients are
    /// disconnected, committed work is kept). Blocks until it is down.
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn stop(&self) {
        self.cluster
            .stop("fast")
            .unwrap_or_else(|why| panic!("{why}"));
    }

    /// Starts the stopped server again on the same port. Blocks until it accepts connections.
    ///
    /// # Panics
    /// When it does not start.
    pub fn restart(&self) {
        self.cluster
            .start(self.port)
            .unwrap_or_else(|why| panic!("{why}"));
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.cluster.is_running() {
            let _ = self.cluster.stop("immediate");
        }
        let _ = fs::remove_dir_all(&self.cluster.dir);
    }
}

/// Where the test clusters live: `<target dir>/pg-test`. The target directory is the nearest
/// ancestor of the test binary that holds cargo's `CACHEDIR.TAG`, so it follows
/// `CARGO_TARGET_DIR` and `--target-dir`. As root, the server runs as `postgres`, which cannot
/// reach a workspace inside a private folder (a home of mode 700); then the system's temp folder
/// holds them instead.
fn pg_test_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
            .map(Path::to_path_buf)
    });
    let target = from_exe
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .filter(|dir| dir.is_absolute())
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    if rustix::process::geteuid().is_root() && !postgres_can_reach(&target) {
        return std::env::temp_dir().join("promptgate-pg-test");
    }
    target.join("pg-test")
}

/// Whether the `postgres` user can enter `dir` (and so every folder above it).
fn postgres_can_reach(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A cluster directory: `data/` (the cluster) and `postgres.log`, owned by the user the server
/// runs as.
#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// Whether to run the server as the `postgres` user (we are root).
    as_postgres: bool,
}

impl Cluster {
    fn new(dir: PathBuf) -> Result<Cluster, String> {
        let bin = find_binaries()?;
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres {
            let known = Command::new("id").arg("-u").arg("postgres").output();
            if !known.is_ok_and(|out| out.status.success()) {
                return Err(format!(
                    "PostgreSQL refuses to run as root and there is no `postgres` user to run \
                     the test server as; install the Debian package `postgresql` (it creates \
                     the user) or set {URL_VARIABLE} to a server's URL"
                ));
            }
        }
        Ok(Cluster {
            dir,
            bin,
            as_postgres,
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    fn is_initialised(&self) -> bool {
        self.data().join("PG_VERSION").is_file()
    }

    /// `pg_ctl status` exits 0 only when a server runs on this data directory.
    fn is_running(&self) -> bool {
        self.is_initialised()
            && self
                .command("pg_ctl")
                .arg("status")
                .arg("-D")
                .arg(self.data())
                .output()
                .is_ok_and(|out| out.status.success())
    }

    fn init(&self) -> Result<(), String> {
        // A directory left by an initdb that died half-way is of no use.
        match fs::remove_dir_all(self.data()) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot clear {}: {e}", self.data().display())),
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        if self.as_postgres {
            run(Command::new("chown").arg("postgres").arg(&self.dir))?;
        }
        run(self.command("initdb").arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]))?;
        let settings = "\n# promptgate test server\n\
                        listen_addresses = '127.0.0.1'\n\
                        unix_socket_directories = ''\n\
                        fsync = on\n\
                        max_connections = 300\n";
        let conf = self.data().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)
            .map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
        text.push_str(settings);
        fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))
    }

    /// Starts on a free loopback port; another process may take the port between our probe and
    /// the server's bind, so a failed start is tried again on another port.
    fn start_on_free_port(&self) -> Result<u16, String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            match self.start(port) {
                Ok(()) => return Ok(port),
                Err(why) => last_error = why,
            }
        }
        Err(last_error)
    }

    fn start(&self, port: u16) -> Result<(), String> {
        run(self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {port}")))
        .map_err(|why| {
            let log = fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("{why}\nserver log (last lines):\n{}", tail.join("\n"))
        })
    }

    fn stop(&self, mode: &str) -> Result<(), String> {
        run(self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "60", "-m", mode]))
    }

    /// A PostgreSQL program, run as the `postgres` user when we are root, from the cluster's
    /// directory (the test's own may not be readable by that user).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        if self.dir.is_dir() {
            command.current_dir(&self.dir);
        }
        command
    }
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, or Debian's newest
/// `/usr/lib/postgresql/<major>/bin`.
fn find_binaries() -> Result<PathBuf, String> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir))
    {
        return Ok(dir);
    }
    let mut majors: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no PostgreSQL server to test against: set {URL_VARIABLE} to the URL of one \
             (a role that may CREATE DATABASE), or install PostgreSQL's server programs \
             (`initdb`, `pg_ctl`; on Debian or Ubuntu: `apt-get install postgresql`)"
        )
    })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// Runs a command to completion; an error carries its output.
fn run(command: &mut Command) -> Result<(), String> {
    let described = format!("{command:?}");
    let output: Output = command
        .output()
        .map_err(|e| format!("cannot run {described}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{described} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_database_url_keeps_everything_but_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@db:5433/admin?sslmode=disable", "t_2"),
            "postgresql://u:p@db:5433/t_2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@db?sslmode=disable", "t_3"),
            "postgres://u@db/t_3?sslmode=disable"
        );
    }
}
