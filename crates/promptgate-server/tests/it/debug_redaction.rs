//! Issue 17, item 3: `Debug` output of the server's values that hold secrets shows
//! `[redacted]` instead, so that a `{:?}` in a log line or a panic message leaks nothing.

use promptgate_core::ScopeSet;
use promptgate_server::ServeOptions;
use promptgate_server::auth::IssuedToken;
use promptgate_server::config::ConfigFile;
use promptgate_server::service::clients::NewClient;

const SECRET: &str = "s3cr3t-Xq9vLmPz7RtYw2Kb";
const DB_PASSWORD: &str = "hunter2-Pw9Zt7Qx";

#[test]
fn debug_of_new_client_issued_token_and_serve_options_hides_secrets() {
    let client = NewClient {
        client: promptgate_store::Client {
            id: "client-1".to_owned(),
            name: "support bot".to_owned(),
            secret_hash: "0".repeat(64),
            scopes: ScopeSet::all(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            disabled_at: None,
        },
        secret: SECRET.to_owned(),
    };
    let token = IssuedToken {
        token: SECRET.to_owned(),
        scopes: ScopeSet::all(),
        expires_in: 60,
    };
    let options = ServeOptions {
        listen: "127.0.0.1:0".to_owned(),
        database_url: format!("postgres://gateway:{DB_PASSWORD}@db.internal:5432/promptgate"),
        config: ConfigFile::default(),
        admin_credentials: Some(("admin-1".to_owned(), SECRET.to_owned())),
    };
    for (what, text) in [
        ("NewClient", format!("{client:?}")),
        ("IssuedToken", format!("{token:?}")),
        ("ServeOptions", format!("{options:?}")),
        ("NewClient (pretty)", format!("{client:#?}")),
        ("ServeOptions (pretty)", format!("{options:#?}")),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
        assert!(
            !text.contains(DB_PASSWORD),
            "{what} shows the password: {text}"
        );
        assert!(
            text.contains("[redacted]"),
            "{what} says nothing is hidden: {text}"
        );
    }
    // What is not secret is still there to debug with.
    assert!(format!("{client:?}").contains("client-1"));
    assert!(format!("{options:?}").contains("127.0.0.1:0"));
    assert!(format!("{options:?}").contains("admin-1"));
    assert!(
        format!("{options:?}").contains("db.internal"),
        "{options:?}"
    );
}

/// The configuration file holds exporter header values, a webhook URL whose path is its secret
/// and a database URL with a password: its `Debug` shows none of them.
#[test]
fn debug_of_the_configuration_hides_url_and_header_secrets() {
    let text = format!(
        "[server]\ndatabase_url = \"postgres://gateway:{DB_PASSWORD}@db.internal/promptgate\"\n\
         [exporters.webhook]\nurl = \"https://hooks.example.invalid/services/T0/B0/{SECRET}\"\n\
         headers = {{ Authorization = \"Bearer {SECRET}\" }}\n\
         [exporters.otlp]\nendpoint = \"https://user:{DB_PASSWORD}@otel.example.invalid\"\n\
         headers = {{ x-api-key = \"{SECRET}\" }}\n"
    );
    let config: ConfigFile = toml::from_str(&text).expect("a valid configuration");
    let exporters = config.exporters.as_ref().expect("exporters");
    for (what, shown) in [
        ("ConfigFile", format!("{config:?}")),
        ("webhook", format!("{:?}", exporters.webhook)),
        ("otlp", format!("{:?}", exporters.otlp)),
    ] {
        assert!(!shown.contains(SECRET), "{what} shows the secret: {shown}");
        assert!(
            !shown.contains(DB_PASSWORD),
            "{what} shows the password: {shown}"
        );
    }
    assert!(format!("{:?}", exporters.webhook).contains("hooks.example.invalid"));
    assert!(format!("{:?}", exporters.otlp).contains("x-api-key"));
}
