//! The connection-level limits of `[server]`: the head size (431 naming
//! `[server] max_header_bytes`), the header read timeout (slow-loris), the idle timeout of
//! kept-alive connections, and `max_connections`; plus HTTP/2 by prior knowledge (h2c) on the
//! cleartext port.
//!
//! Time bounds are generous (the machine is shared): a test asserts that something happens
//! well before the bound that would be hit without the feature, never how fast it happens.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// How long a test waits for the server to close a connection: far above the 1 s timeouts it
/// configures, far below the other timeouts in force.
const CLOSE_BOUND: Duration = Duration::from_secs(15);

/// The `host:port` of the server's base URL.
pub fn authority(server: &Server) -> String {
    server
        .base
        .split("://")
        .nth(1)
        .unwrap_or_else(|| panic!("no scheme in {}", server.base))
        .to_owned()
}

/// One HTTP/1.1 request on a connection the caller holds, and its answer: status and body
/// (by `Content-Length`). The connection stays open for another request.
pub async fn http1_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    path: &str,
) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    read_response(stream).await
}

/// Reads one HTTP/1.1 response with a `Content-Length` body.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> (u16, String) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "the connection closed before a whole response head: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length: {head:?}"));
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed in the middle of a body");
        received.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned();
    (status, body)
}

/// Waits (up to `bound`) for the server to close the connection: a read that answers 0 bytes or
/// an error. Panics if the server sends data instead, or if the bound passes.
async fn assert_closed_by_server(stream: &mut TcpStream, bound: Duration, what: &str) {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(bound, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!(
            "{what}: the server sent data instead of closing: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => panic!("{what}: the server did not close the connection within {bound:?}"),
    }
}

#[tokio::test]
async fn a_head_over_max_header_bytes_gets_431_naming_the_setting() {
    let server = Server::start_with(Options::with_config("[server]\nmax_header_bytes = 8192\n"));
    let request_id = uuid::Uuid::new_v4().to_string();
    let refused = server
        .send(
            server
                .request(Method::GET, "/readyz")
                .header("X-Request-Id", &request_id)
                .header("X-Padding", "a".repeat(10 * 1024)),
        )
        .await;
    let body = refused.error(431, "request.headers.too.large");
    assert_eq!(body["contextId"], json!(request_id), "{refused}");
    assert_eq!(body["messageParams"]["limit"], "8192", "{refused}");
    assert_eq!(
        body["messageParams"]["setting"], "[server] max_header_bytes",
        "{refused}"
    );
    let size: usize = body["messageParams"]["size"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("messageParams.size: {refused}"));
    assert!(size > 10 * 1024, "{refused}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("8192") && message.contains("[server] max_header_bytes"),
        "{refused}"
    );

    // Just under the limit passes, on a fresh client (the refused connection was closed).
    let ok = server
        .send(
            server
                .request(Method::GET, "/readyz")
                .header("X-Padding", "a".repeat(7 * 1024)),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok}");

    // The same limit under HTTP/2 (h2c by prior knowledge).
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let response = h2
        .get(server.url("/readyz"))
        .header("X-Padding", "a".repeat(10 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status().as_u16(), 431);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "request.headers.too.large", "{body}");
    assert_eq!(
        body["messageParams"]["setting"],
        "[server] max_header_bytes"
    );
}

#[tokio::test]
async fn a_head_that_never_completes_is_closed_after_the_header_read_timeout() {
    let server = Server::start_with(Options::with_config(
        "[server]\nheader_read_timeout_ms = 1000\nidle_timeout_ms = 120000\n",
    ));
    let authority = authority(&server);

    // A slow-loris: the request line, then nothing.
    let mut slow = TcpStream::connect(&authority).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // A connection that sends nothing at all.
    let mut silent = TcpStream::connect(&authority).await.unwrap();

    // Meanwhile the server answers everyone else.
    server.get("/healthz", None).await.ok(200);

    assert_closed_by_server(&mut slow, CLOSE_BOUND, "half a request head").await;
    assert_closed_by_server(&mut silent, CLOSE_BOUND, "no request at all").await;

    // On a kept-alive connection, a second head that stalls is closed too.
    let mut kept = TcpStream::connect(&authority).await.unwrap();
    let (status, _) = http1_exchange(&mut kept, "/healthz").await;
    assert_eq!(status, 200);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    assert_closed_by_server(&mut kept, CLOSE_BOUND, "a stalled second head").await;

    server.get("/healthz", None).await.ok(200);
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    // The header read timeout is far above the bound, so only the idle timeout can close it.
    let server = Server::start_with(Options::with_config(
        "[server]\nidle_timeout_ms = 1000\nheader_read_timeout_ms = 120000\n",
    ));
    let mut stream = TcpStream::connect(authority(&server)).await.unwrap();
    // Kept alive: two requests on the one connection.
    for _ in 0..2 {
        let (status, body) = http1_exchange(&mut stream, "/healthz").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_closed_by_server(&mut stream, CLOSE_BOUND, "an idle kept-alive connection").await;

    // An HTTP/2 connection (h2c) idles out too; a new request opens a new one and works.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let first = h2.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(first.version(), reqwest::Version::HTTP_2);
    assert_eq!(first.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A request may race the server's close on a loaded machine (as with any idle timeout);
    // clients retry such a request once.
    let second = match h2.get(server.url("/healthz")).send().await {
        Ok(response) => response,
        Err(_) => h2.get(server.url("/healthz")).send().await.unwrap(),
    };
    assert_eq!(second.status().as_u16(), 200);
}

#[tokio::test]
async fn beyond_max_connections_a_connection_waits_until_one_closes() {
    // Timeouts far above the test's length, so that only the test closes connections.
    let server = Server::start_with(Options::with_config(
        "[server]\nmax_connections = 2\nheader_read_timeout_ms = 120000\n\
         idle_timeout_ms = 120000\n",
    ));
    let authority = authority(&server);
    let mut first = TcpStream::connect(&authority).await.unwrap();
    let mut second = TcpStream::connect(&authority).await.unwrap();
    // Both are served, and stay open (kept alive).
    assert_eq!(http1_exchange(&mut first, "/healthz").await.0, 200);
    assert_eq!(http1_exchange(&mut second, "/healthz").await.0, 200);

    // A third connection is accepted by the kernel but not served.
    let mut third = TcpStream::connect(&authority).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(1500), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection was answered while two were open: {early:?}"
    );

    // One closes: the third is served.
    drop(first);
    let (status, _) = tokio::time::timeout(Duration::from_secs(30), read_response(&mut third))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the third connection was not served after one closed; log:\n{}",
                server.log()
            )
        });
    assert_eq!(status, 200);
    // And the second still works.
    assert_eq!(http1_exchange(&mut second, "/healthz").await.0, 200);
}
