//! TLS: `serve --tls-cert FILE --tls-key FILE` (or `[server] tls_cert_file`/`tls_key_file`)
//! serves HTTPS only, HTTP/2 or HTTP/1.1 by ALPN; SIGHUP re-reads the pair (new handshakes get
//! the new certificate, open connections keep working, a broken pair is refused and the old one
//! kept); a bad pair at start-up stops the start naming the file. Also HTTP/2 by prior knowledge
//! on the cleartext port.
//!
//! Certificates are made per test by rcgen: a CA of the test's own and a server certificate for
//! 127.0.0.1 signed by it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::connection_limits::{authority, http1_exchange};
use crate::harness::*;

/// A CA and a server certificate it signed, in PEM, and the server certificate in DER.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
}

fn pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("promptgate test CA {name}"));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("promptgate test server {name}"));
    params.serial_number = Some(SerialNumber::from_slice(uuid::Uuid::new_v4().as_bytes()));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
    }
}

/// Writes the pair into `dir` as `cert.pem` and `key.pem`, and answers the paths.
fn write_pair(dir: &Path, pki: &Pki) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    (cert, key)
}

/// Starts a gateway with `--tls-cert`/`--tls-key` on the pair (files in the server's
/// directory), and gives it an HTTPS client that trusts the pair's CA only.
fn start_tls(pki: &Pki, config: Option<&str>) -> (Server, PathBuf, PathBuf) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let (cert, key) = write_pair(dir.path(), pki);
    let mut server = Server::start_in(
        dir,
        Options {
            config: config.map(str::to_owned),
            extra_args: vec![
                "--tls-cert".to_owned(),
                cert.display().to_string(),
                "--tls-key".to_owned(),
                key.display().to_string(),
            ],
            ..Options::default()
        },
    );
    server.http = https_client(&pki.ca_pem, false);
    (server, cert, key)
}

fn https_client(ca_pem: &str, http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()]);
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

/// A TLS connection (ALPN `http/1.1`) to the server, trusting the given CAs, and the server
/// certificate it presented.
async fn tls_connect(server: &Server, cas: &[&str]) -> (TlsStream<TcpStream>, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        use rustls_pki_types::pem::PemObject;
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(authority(server)).await.unwrap();
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake failed: {e}; log:\n{}", server.log()));
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.to_vec())
        .expect("the server presented no certificate");
    (stream, leaf)
}

fn send_signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn https_serves_http2_and_http11_by_alpn_and_refuses_plain_http() {
    let ours = pki("a");
    let (server, _, _) = start_tls(&ours, None);
    assert!(
        server.base.starts_with("https://"),
        "the listening line does not say https: {}",
        server.base
    );

    // HTTP/2 is what ALPN picks when the client offers it.
    let response = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);

    // An authenticated API call over HTTPS.
    let token = server.admin_token().await;
    server.get(PROMPTS, Some(&token)).await.ok(200);

    // HTTP/1.1 when the client offers only that.
    let http1 = https_client(&ours.ca_pem, true);
    let response = http1.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);

    // Cleartext HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = server.url("/readyz").replacen("https://", "http://", 1);
    let result = plain.get(&url).send().await;
    assert!(
        result.is_err(),
        "plain HTTP on the TLS port was answered: {result:?}"
    );

    // A client that does not trust the CA is refused.
    let stranger = https_client(&pki("stranger").ca_pem, false);
    assert!(stranger.get(server.url("/readyz")).send().await.is_err());
}

#[tokio::test]
async fn sighup_reloads_the_pair_for_new_connections_and_keeps_open_ones() {
    let old = pki("old");
    let new = pki("new");
    let (server, cert, key) = start_tls(&old, None);
    let both = [old.ca_pem.as_str(), new.ca_pem.as_str()];

    let (mut open, leaf) = tls_connect(&server, &both).await;
    assert_eq!(
        leaf, old.cert_der,
        "before the reload: not the first certificate"
    );
    assert_eq!(http1_exchange(&mut open, "/healthz").await.0, 200);

    std::fs::write(&cert, &new.cert_pem).unwrap();
    std::fs::write(&key, &new.key_pem).unwrap();
    send_signal(&server, "HUP");
    server.wait_for_log("reloaded the TLS certificate", 1).await;

    // New handshakes get the new certificate.
    let (mut fresh, leaf) = tls_connect(&server, &both).await;
    assert_eq!(
        leaf, new.cert_der,
        "after the reload: not the new certificate"
    );
    assert_eq!(http1_exchange(&mut fresh, "/healthz").await.0, 200);
    let response = https_client(&new.ca_pem, false)
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // A client that trusts only the old CA is now refused.
    assert!(
        https_client(&old.ca_pem, false)
            .get(server.url("/readyz"))
            .send()
            .await
            .is_err()
    );

    // The connection opened before the reload still works.
    let (status, body) = http1_exchange(&mut open, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        open.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        old.cert_der
    );
}

#[tokio::test]
async fn sighup_with_a_broken_key_keeps_the_old_pair() {
    let good = pki("good");
    let other = pki("other");
    let (server, cert, key) = start_tls(&good, None);

    // A new certificate with a key file that is not a key.
    std::fs::write(&cert, &other.cert_pem).unwrap();
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    send_signal(&server, "HUP");
    server
        .wait_for_log("cannot reload the TLS certificate", 1)
        .await;
    assert!(
        server.log().contains(&key.display().to_string()),
        "the error does not name the key file:\n{}",
        server.log()
    );

    // Still serving, with the old certificate.
    let (mut stream, leaf) =
        tls_connect(&server, &[good.ca_pem.as_str(), other.ca_pem.as_str()]).await;
    assert_eq!(leaf, good.cert_der);
    assert_eq!(http1_exchange(&mut stream, "/healthz").await.0, 200);
    server.get("/readyz", None).await.ok(200);

    // A key that does not match the certificate is refused too.
    std::fs::write(&key, &good.key_pem).unwrap();
    send_signal(&server, "HUP");
    server
        .wait_for_log("cannot reload the TLS certificate", 2)
        .await;
    let (_, leaf) = tls_connect(&server, &[good.ca_pem.as_str(), other.ca_pem.as_str()]).await;
    assert_eq!(leaf, good.cert_der);

    // A good pair again is taken.
    std::fs::write(&key, &other.key_pem).unwrap();
    send_signal(&server, "HUP");
    server.wait_for_log("reloaded the TLS certificate", 1).await;
    let (_, leaf) = tls_connect(&server, &[good.ca_pem.as_str(), other.ca_pem.as_str()]).await;
    assert_eq!(leaf, other.cert_der);
}

#[tokio::test]
async fn a_bad_pair_at_start_up_stops_the_start_naming_the_file() {
    let pki = pki("start");
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let (cert, key) = write_pair(dir.path(), &pki);
    let missing = dir.path().join("missing-key.pem");

    // A missing key file, from the configuration.
    let config = format!(
        "[server]\ntls_cert_file = {}\ntls_key_file = {}\n",
        toml_string(&cert),
        toml_string(&missing)
    );
    let failed = match Server::try_start_in(dir.clone(), Options::with_config(&config)) {
        Ok(_) => panic!("the server started with a missing key file"),
        Err(failed) => failed,
    };
    assert!(
        !failed.status.is_some_and(|s| s.success()),
        "{}",
        failed.log
    );
    assert!(
        failed.log.contains(&missing.display().to_string()),
        "the error does not name the key file:\n{}",
        failed.log
    );

    // A key file that holds no key, from the flags.
    std::fs::write(&key, "not a key\n").unwrap();
    let failed = match Server::try_start_in(
        dir.clone(),
        Options {
            extra_args: vec![
                "--tls-cert".to_owned(),
                cert.display().to_string(),
                "--tls-key".to_owned(),
                key.display().to_string(),
            ],
            ..Options::default()
        },
    ) {
        Ok(_) => panic!("the server started with an invalid key file"),
        Err(failed) => failed,
    };
    assert!(
        !failed.status.is_some_and(|s| s.success()),
        "{}",
        failed.log
    );
    assert!(
        failed.log.contains(&key.display().to_string()) && failed.log.contains("private key"),
        "the error does not name the key file and the problem:\n{}",
        failed.log
    );
}

#[test]
fn tls_cert_without_tls_key_is_a_usage_error() {
    for args in [
        ["serve", "--tls-cert", "/nonexistent/cert.pem"],
        ["serve", "--tls-key", "/nonexistent/key.pem"],
    ] {
        let output = Command::new(BIN)
            .args(args)
            .env_remove("PROMPTGATE_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let other = if args[1] == "--tls-cert" {
            "--tls-key"
        } else {
            "--tls-cert"
        };
        assert!(stderr.contains(other), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn http2_by_prior_knowledge_on_the_cleartext_port() {
    let server = Server::start();
    assert!(server.base.starts_with("http://"), "{}", server.base);
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let response = h2c.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    // HTTP/1.1 on the same port, as before.
    let response = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status().as_u16(), 200);
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}
