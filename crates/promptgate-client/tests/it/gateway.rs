//! A real gateway in this process, on a loopback port, with its own SQLite file in its own
//! temporary directory and a known admin client.

use promptgate_client::Client;
use promptgate_server::config::ConfigFile;
use promptgate_server::{Gateway, ServeOptions};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestGateway {
    pub base_url: String,
    pub admin_id: String,
    pub admin_secret: String,
    shutdown: Option<oneshot::Sender<()>>,
    // Kept for the gateway's lifetime: it holds the database.
    _dir: TempDir,
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
        let gateway = Gateway::bind(ServeOptions {
            listen: "127.0.0.1:0".into(),
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            config: ConfigFile::default(),
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
