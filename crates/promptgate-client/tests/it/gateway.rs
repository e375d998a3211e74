//! A real gateway in this process, on a loopback port, with a known admin client and a database
//! of its own: a SQLite file in its own temporary directory or, with
//! `PROMPTGATE_TEST_STORE=postgres`, a fresh database on the PostgreSQL test server of
//! `promptgate_store::testing` (its audit signing key then in the temporary directory).

use promptgate_client::Client;
use promptgate_server::config::{AuditSection, ConfigFile};
use promptgate_server::{Gateway, ServeOptions};
use promptgate_store::testing::TestDatabase;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// Whether this run tests on PostgreSQL (`PROMPTGATE_TEST_STORE=postgres`); SQLite otherwise.
pub fn on_postgres() -> bool {
    match std::env::var("PROMPTGATE_TEST_STORE") {
        Err(std::env::VarError::NotPresent) => false,
        Ok(value) => match value.trim() {
            "" | "sqlite" => false,
            "postgres" | "postgresql" => true,
            other => panic!("PROMPTGATE_TEST_STORE={other:?}: expected sqlite or postgres"),
        },
        Err(e) => panic!("PROMPTGATE_TEST_STORE: {e}"),
    }
}

pub struct TestGateway {
    pub base_url: String,
    pub admin_id: String,
    pub admin_secret: String,
    shutdown: Option<oneshot::Sender<()>>,
    // Kept for the gateway's lifetime: they hold the database (and the key file). Dropped after
    // the shutdown signal (fields drop after `Drop::drop`).
    _dir: TempDir,
    _postgres: Option<TestDatabase>,
}

/// 32 random hex digits.
pub fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let admin_id = format!("admin-{}", random_hex());
        let admin_secret = random_hex();
        let mut config = ConfigFile::default();
        let (database_url, postgres) = if on_postgres() {
            let db = TestDatabase::create().await;
            // The default key file lives beside a SQLite file only.
            config.audit = Some(AuditSection {
                signing_key_file: Some(dir.path().join("audit-key.pem").display().to_string()),
                ..AuditSection::default()
            });
            (db.url().to_owned(), Some(db))
        } else {
            (format!("sqlite://{}/t.db", dir.path().display()), None)
        };
        let gateway = Gateway::bind(ServeOptions {
            listen: "127.0.0.1:0".into(),
            database_url,
            config,
            admin_credentials: Some((admin_id.clone(), admin_secret.clone())),
        })
        .await
        .unwrap_or_else(|e| panic!("the gateway does not start: {e:?}"));
        let base_url = format!("http://{}", gateway.local_addr);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(gateway.run(async move {
            let _ = rx.await;
        }));
        TestGateway {
            base_url,
            admin_id,
            admin_secret,
            shutdown: Some(tx),
            _dir: dir,
            _postgres: postgres,
        }
    }

    /// A client with the admin's credentials (every scope).
    pub fn admin(&self) -> Client {
        self.client(&self.admin_id, &self.admin_secret)
    }

    pub fn client(&self, id: &str, secret: &str) -> Client {
        Client::builder()
            .base_url(&self.base_url)
            .client_credentials(id, secret)
            .build()
            .unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
