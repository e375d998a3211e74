//! URLs as the gateway may show them: in an audit entry (which can never be purged), a log line,
//! an error message or an answer to a non-admin client.
//!
//! A configured URL can carry a secret in several places: user-info (`https://user:pass@host`),
//! the query string (`?token=…`, `?password=…`), the fragment, and, for webhooks of the Slack
//! kind (`https://hooks.example/services/T000/B000/XXXX`), the path itself. Every function here
//! keeps only what names *where* a URL points and drops the rest:
//!
//! - [`url_without_secrets`]: scheme, host, port and path (for model endpoints, the moderation
//!   endpoint, the OTLP collector, whose paths are API routes).
//! - [`url_origin`]: scheme, host and port only (for webhooks, whose path may be the secret).
//! - [`database_url_for_display`]: a database URL with its password and any password-like
//!   query parameter removed, keeping the user, host and database names that an operator needs
//!   to recognise it (`postgres://app:***@db:5432/promptgate`).
//! - [`url_sha256`]: a digest of the full text, so that a change stays visible where the URL
//!   itself is no longer shown whole.
//!
//! URLs are split as a browser (WHATWG) or `reqwest` would: the authority ends at the first
//! `/`, `?`, `#` or `\`, and the user-info is everything before its last `@`. Text whose host
//! part is not a plausible host (a password holding an unescaped `#`, say, which would leave
//! part of it where the port should be) is not shown at all: [`UNREADABLE`] takes its place.
//! Nothing is decoded or re-encoded, so what is shown is the configured text, cut.

use sha2::{Digest, Sha256};

/// What takes the place of a URL that cannot be split safely.
pub const UNREADABLE: &str = "(unreadable url)";

/// What takes the place of a database password.
pub const PASSWORD_MASK: &str = "***";

/// `url` without user-info, query string and fragment: `https://u:p@api.example/v1?key=k` →
/// `https://api.example/v1`. Scheme, host, port and path are kept as written.
pub fn url_without_secrets(url: &str) -> String {
    match Parts::split(url) {
        Some(parts) => format!("{}{}{}", parts.prefix(), parts.host, parts.path),
        None => unreadable(url),
    }
}

/// `url`'s origin only: `https://hooks.example/services/T000/B000/XXXX` →
/// `https://hooks.example`. For URLs whose path may itself be the secret (webhooks).
pub fn url_origin(url: &str) -> String {
    match Parts::split(url) {
        Some(parts) => format!("{}{}", parts.prefix(), parts.host),
        None => unreadable(url),
    }
}

/// Whether `url` holds anything [`url_without_secrets`] drops (user-info, a query string or a
/// fragment), i.e. whether showing it whole could show a secret.
pub fn url_has_secrets(url: &str) -> bool {
    url_without_secrets(url) != url
}

/// The SHA-256 of the whole text of `url`, lowercase hex: shown beside a cut URL so that a
/// change to the part that is not shown is still visible. Like any unsalted digest it lets
/// someone who can guess the whole URL confirm the guess, so it hides only secrets that cannot
/// be guessed (random tokens, not a dictionary password).
pub fn url_sha256(url: &str) -> String {
    sha256_hex(url)
}

/// The SHA-256 of `text`, lowercase hex: how the audit log shows a value it must not reveal
/// but whose change must stay visible (a header's token, a hashed system prompt).
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A database URL as it may be logged or shown: the password in user-info becomes
/// [`PASSWORD_MASK`] (the user name stays), password-like query parameters (`password`,
/// `sslpassword`, anything naming a password, secret or token) are dropped, and so is a
/// fragment. Handles `postgres://…`, `sqlite:` URLs with or without `//`, and libpq
/// `key=value` connection strings (`host=db password=…`), so that whatever an operator passes
/// as `--database-url` can be echoed in an error.
pub fn database_url_for_display(url: &str) -> String {
    // A SQLite URL's `//` starts a file path, not an authority: no host to check.
    let sqlite = url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"));
    if url.contains("://") && !sqlite {
        return match Parts::split(url) {
            Some(parts) => {
                let userinfo = match parts.userinfo {
                    Some(info) => match info.split_once(':') {
                        Some((user, _)) => format!("{user}:{PASSWORD_MASK}@"),
                        None => format!("{info}@"),
                    },
                    None => String::new(),
                };
                format!(
                    "{}{userinfo}{}{}{}",
                    parts.prefix(),
                    parts.host,
                    parts.path,
                    kept_query(parts.query)
                )
            }
            None => unreadable(url),
        };
    }
    if let Some((scheme, rest)) = split_scheme(url, ":") {
        // `sqlite:path?mode=rwc`, `sqlite::memory:`: no authority, a path and a query.
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        return format!("{scheme}:{path}{}", kept_query(query));
    }
    // libpq's `key=value …` form starts with a keyword (letters and `_`) and `=`; a path with a
    // query (`p.db?password=…`) does not.
    let first_key = url.split('=').next().unwrap_or_default().trim();
    if url.contains('=')
        && !first_key.is_empty()
        && first_key
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return libpq_for_display(url).unwrap_or_else(|| UNREADABLE.to_owned());
    }
    // A bare path (no scheme): only a query could carry a secret.
    let rest = url.split('#').next().unwrap_or_default();
    match rest.split_once('?') {
        Some((path, query)) => format!("{path}{}", kept_query(Some(query))),
        None => rest.to_owned(),
    }
}

/// A URL split into the parts this module keeps or drops, borrowed from the text.
struct Parts<'a> {
    /// The scheme without `://`, when the text has one.
    scheme: Option<&'a str>,
    /// Before the authority's last `@`.
    userinfo: Option<&'a str>,
    /// Host and port, checked to look like one.
    host: &'a str,
    /// From the authority's end to `?` or `#`.
    path: &'a str,
    /// Between `?` and `#`.
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    /// Splits `url`; `None` when the host part is not a plausible host (so that nothing is
    /// shown rather than a piece of a secret that landed there).
    fn split(url: &'a str) -> Option<Parts<'a>> {
        let (scheme, rest) = match split_scheme(url, "://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, url),
        };
        let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((info, host)) => (Some(info), host),
            None => (None, authority),
        };
        if !is_plausible_host(host) {
            return None;
        }
        let tail = tail.split('#').next().unwrap_or_default();
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (tail, None),
        };
        Some(Parts {
            scheme,
            userinfo,
            host,
            path,
            query,
        })
    }

    /// `scheme://`, or nothing for text without a scheme.
    fn prefix(&self) -> String {
        self.scheme.map(|s| format!("{s}://")).unwrap_or_default()
    }
}

/// `(scheme, rest)` when `url` starts with an RFC 3986 scheme followed by `separator`.
fn split_scheme<'a>(url: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    let (scheme, rest) = url.split_once(separator)?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some((scheme, rest))
}

/// `[v6]` or `[v6]:port`, or a registered name / IPv4 address with an optional numeric port;
/// empty for URLs without a host (`file:///x`).
fn is_plausible_host(host: &str) -> bool {
    let port_ok = |port: &str| port.is_empty() || port.chars().all(|c| c.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        // Hex digits, `:` and `.` (an embedded IPv4), `%` and a zone id's letters.
        let address_ok = !address.is_empty()
            && address
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":.%".contains(c));
        return address_ok
            && match after.strip_prefix(':') {
                Some(port) => port_ok(port),
                None => after.is_empty(),
            };
    }
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c))
        && port_ok(port)
}

/// `?…` with the parameters that may hold a secret left out (or nothing when none is left).
fn kept_query(query: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_secret_name(pair.split('=').next().unwrap_or_default()))
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// Whether a parameter named `name` (percent-encoded or not, any letter case) may hold a
/// secret: `password`, `sslpassword`, `pass`, `pwd`, or a name with `password`, `secret`,
/// `token` or `key` in it (`sslkey` names a file, but dropping it costs nothing).
fn is_secret_name(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    matches!(name.as_str(), "pass" | "pwd")
        || ["password", "passwd", "secret", "token", "key"]
            .iter()
            .any(|word| name.contains(word))
}

/// `%XX` escapes decoded where they form ASCII; anything else kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
            && byte.is_ascii()
        {
            out.push(char::from(byte));
            i += 3;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// A libpq `key=value` connection string with its secret-like keys left out; `None` when it
/// does not read as one (an unterminated quote), so that the caller shows nothing of it.
fn libpq_for_display(text: &str) -> Option<String> {
    let mut kept = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace())?;
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start().strip_prefix('=')?.trim_start();
        let value_len = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find_map(|(i, c)| {
                let end = !escaped && c == '\'';
                escaped = !escaped && c == '\\';
                end.then_some(i)
            })?;
            close + 2
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        let value = &rest[..value_len];
        if key.is_empty() {
            return None;
        }
        if !is_secret_name(key) {
            kept.push(format!("{key}={value}"));
        }
        rest = rest[value_len..].trim_start();
    }
    Some(kept.join(" "))
}

/// [`UNREADABLE`], after the scheme when one can be read, so the kind of URL is still known.
fn unreadable(url: &str) -> String {
    match split_scheme(url, "://") {
        Some((scheme, _)) => format!("{scheme}://{UNREADABLE}"),
        None => UNREADABLE.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_query_and_fragment_leave_urls() {
        assert_eq!(
            url_without_secrets("https://user:pass@api.example.com:8443/v1?token=SECRET#frag"),
            "https://api.example.com:8443/v1"
        );
        assert_eq!(
            url_without_secrets("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(
            url_without_secrets("http://127.0.0.1:9"),
            "http://127.0.0.1:9"
        );
        assert!(url_has_secrets("https://u@h/"));
        assert!(url_has_secrets("https://h/?k=v"));
        assert!(!url_has_secrets("https://h/v1"));
    }

    #[test]
    fn a_webhook_is_shown_by_its_origin() {
        assert_eq!(
            url_origin("https://hooks.example.invalid/services/T000/B000/XXXXSECRET"),
            "https://hooks.example.invalid"
        );
        assert_eq!(
            url_origin("http://u:p@[::1]:8080/hook?x=1"),
            "http://[::1]:8080"
        );
        assert_eq!(url_origin("https://h"), "https://h");
    }

    #[test]
    fn odd_urls_are_cut_or_withheld_never_shown_with_their_secret() {
        // IPv6 hosts, with and without user-info and port.
        assert_eq!(
            url_without_secrets("http://user:pw@[2001:db8::1]:4318/v1?a=b"),
            "http://[2001:db8::1]:4318/v1"
        );
        assert_eq!(url_without_secrets("http://[::1]/x"), "http://[::1]/x");
        // An `@` in the path is the path's, not user-info.
        assert_eq!(
            url_without_secrets("https://h.example/pkgs/@scope/name"),
            "https://h.example/pkgs/@scope/name"
        );
        // The last `@` of the authority ends the user-info (an unescaped `@` in a password).
        assert_eq!(
            url_without_secrets("https://us@er:p@ss@h.example/p"),
            "https://h.example/p"
        );
        // Percent-encoded user-info.
        assert_eq!(
            url_without_secrets("https://us%40er:p%40ss%3A@h.example/"),
            "https://h.example/"
        );
        // No scheme.
        assert_eq!(
            url_without_secrets("user:pass@h.example/v1?key=SECRET"),
            "h.example/v1"
        );
        // A `#` or `/` in an unescaped password would put part of it where the port goes:
        // nothing is shown then.
        for url in [
            "https://user:pa#SECRET@h.example/",
            "https://user:pa/SECRET@h.example/",
            "https://user:pa?SECRET@h.example/",
            "http://[::1/x",
            "http://h.example:80x/",
        ] {
            let shown = url_without_secrets(url);
            assert!(
                !shown.contains("SECRET") && !shown.contains("pa"),
                "{url} → {shown}"
            );
            assert!(shown.ends_with(UNREADABLE), "{url} → {shown}");
            assert_eq!(url_origin(url), shown);
        }
        assert_eq!(url_without_secrets(""), "");
    }

    #[test]
    fn the_digest_covers_the_whole_url() {
        let a = url_sha256("https://h/services/A");
        assert_eq!(a.len(), 64);
        assert_ne!(a, url_sha256("https://h/services/B"));
        assert_eq!(
            url_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn database_passwords_are_masked_in_user_info_and_query() {
        assert_eq!(
            database_url_for_display("postgres://app:s3cret@db:5432/promptgate"),
            "postgres://app:***@db:5432/promptgate"
        );
        assert_eq!(
            database_url_for_display(
                "postgres://gw:s3cret@db.internal:5432/promptgate?sslmode=require&password=p2&SSLPassword=p3#x"
            ),
            "postgres://gw:***@db.internal:5432/promptgate?sslmode=require"
        );
        assert_eq!(
            database_url_for_display("postgresql://gw@db/promptgate?pass%77ord=p"),
            "postgresql://gw@db/promptgate"
        );
        assert_eq!(database_url_for_display("postgres://db"), "postgres://db");
        assert_eq!(
            database_url_for_display("postgres://u:p@[::1]:5432/x"),
            "postgres://u:***@[::1]:5432/x"
        );
        assert_eq!(
            database_url_for_display("postgres://u:p#SECRET@db/x"),
            "postgres://(unreadable url)"
        );
    }

    #[test]
    fn sqlite_urls_and_bare_paths_keep_their_path() {
        assert_eq!(
            database_url_for_display("sqlite://data/promptgate.db?mode=rwc"),
            "sqlite://data/promptgate.db?mode=rwc"
        );
        assert_eq!(
            database_url_for_display("sqlite:promptgate.db?password=SECRET&mode=rwc"),
            "sqlite:promptgate.db?mode=rwc"
        );
        assert_eq!(
            database_url_for_display("sqlite::memory:"),
            "sqlite::memory:"
        );
        assert_eq!(
            database_url_for_display("sqlite://my data/p.db"),
            "sqlite://my data/p.db"
        );
        assert_eq!(
            database_url_for_display("sqlite:///var/lib/p.db?key=SECRET"),
            "sqlite:///var/lib/p.db"
        );
        assert_eq!(
            database_url_for_display("promptgate.db?password=SECRET"),
            "promptgate.db"
        );
    }

    #[test]
    fn libpq_connection_strings_lose_their_password() {
        assert_eq!(
            database_url_for_display("host=db user=app password=SECRET dbname=promptgate"),
            "host=db user=app dbname=promptgate"
        );
        assert_eq!(
            database_url_for_display("host=db password = 'SE CR\\'ET' sslpassword=S2 port=5432"),
            "host=db port=5432"
        );
        assert_eq!(
            database_url_for_display("host=db password='SECRET"),
            UNREADABLE
        );
        assert_eq!(
            database_url_for_display("host=db password=a?SECRET"),
            "host=db"
        );
    }
}
