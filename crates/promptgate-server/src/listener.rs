//! The connection layer: the accept loop in front of the router.
//!
//! Every accepted connection gets, in order: a place among `[server] max_connections` (when all
//! are taken the loop stops accepting, and further clients wait in the kernel's backlog), an
//! optional TLS handshake (bounded by `header_read_timeout_ms`; ALPN offers `h2` and
//! `http/1.1`), and then hyper-util's automatic HTTP/1.1 or HTTP/2 server (in cleartext, HTTP/2
//! by prior knowledge). Each request carries the peer's address as
//! `axum::extract::ConnectInfo<SocketAddr>`.
//!
//! The limits, each from `[server]`:
//! - `max_header_bytes`: a request whose head (request target plus every header's name and
//!   value) is larger is answered 431 `request.headers.too.large`, naming the size, the limit and
//!   the setting. hyper's own read buffer (twice the limit) closes heads far beyond it.
//! - `header_read_timeout_ms`: a new connection must complete its first request head (after the
//!   TLS handshake, which has the same bound) within it; on a kept-alive HTTP/1.1 connection, a
//!   request head that has started to arrive must complete within it (slow-loris). Else the
//!   connection is closed.
//! - `idle_timeout_ms`: a connection with no request in flight and no new request arriving for
//!   this long is closed (gracefully: an HTTP/2 client gets a GOAWAY).
//!
//! Shutdown: the loop stops accepting, every connection is told to finish (HTTP/1.1 closes after
//! the response in flight, HTTP/2 sends GOAWAY and serves its open streams), and the loop returns
//! when the last connection has closed.
//!
//! TLS: the certificate chain and key are read from PEM files at start-up (a bad pair stops the
//! start with the file and the problem named) and again on every SIGHUP. New handshakes use the
//! new pair; connections already open keep theirs. A pair that cannot be used on SIGHUP is
//! logged and the old one stays.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use promptgate_api::ErrorBody;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::StartError;

/// The connection-level limits of `[server]`, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `max_header_bytes`.
    pub max_header_bytes: usize,
    /// `header_read_timeout_ms`.
    pub header_read_timeout: Duration,
    /// `idle_timeout_ms`.
    pub idle_timeout: Duration,
    /// `request_timeout_ms`.
    pub request_timeout: Duration,
    /// `max_connections`.
    pub max_connections: u32,
}

/// Default of `[server] max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default of `[server] header_read_timeout_ms`.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Default of `[server] idle_timeout_ms`.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default of `[server] max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;

/// Concurrent HTTP/2 streams per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// Header fields per HTTP/1.1 request head that hyper parses (more is a bare 431 from hyper).
pub const MAX_HEADER_FIELDS: usize = 512;
/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The error code of the 431 answer.
pub const HEADERS_TOO_LARGE: &str = "request.headers.too.large";

/// The certificate chain and private key files of `--tls-cert` / `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate or key cannot be used: the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", file.display())]
pub struct TlsError {
    /// The file at fault.
    pub file: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

fn tls_error(file: &Path, problem: impl Into<String>) -> TlsError {
    TlsError {
        file: file.to_owned(),
        problem: problem.into(),
    }
}

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads the chain and the key and checks that they belong together.
pub fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let pem_problem = |e: rustls_pki_types::pem::Error, what: &str| match e {
        rustls_pki_types::pem::Error::Io(e) => format!("cannot read the file: {e}"),
        rustls_pki_types::pem::Error::NoItemsFound => format!("no {what} in the file"),
        other => format!("not a valid PEM file: {other}"),
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| tls_error(&files.cert, pem_problem(e, "certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&files.cert, pem_problem(e, "certificate")))?;
    if chain.is_empty() {
        return Err(tls_error(
            &files.cert,
            "no certificate (a PEM \"CERTIFICATE\" block) in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        tls_error(
            &files.key,
            pem_problem(
                e,
                "private key (a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)",
            ),
        )
    })?;
    CertifiedKey::from_der(chain, key, &crypto_provider()).map_err(|e| {
        tls_error(
            &files.key,
            format!(
                "the key cannot be used with the certificate of {}: {e}",
                files.cert.display()
            ),
        )
    })
}

/// The server's certificate, replaced as a whole on reload; each handshake takes the current one.
#[derive(Debug)]
struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    fn set(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

struct Tls {
    files: TlsFiles,
    acceptor: TlsAcceptor,
    cert: Arc<ReloadableCert>,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Tls {
    fn new(files: &TlsFiles) -> Result<Tls, StartError> {
        let key = load_certified_key(files).map_err(StartError::Tls)?;
        let cert = Arc::new(ReloadableCert {
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Tls(tls_error(&files.cert, e.to_string())))?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Registered now, before the gateway says it listens, so that a SIGHUP sent from then
        // on reloads and never takes the default action (ending the process).
        #[cfg(unix)]
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| {
                StartError::Tls(tls_error(
                    &files.cert,
                    format!("cannot listen for SIGHUP to reload it: {e}"),
                ))
            })?;
        Ok(Tls {
            files: files.clone(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert,
            #[cfg(unix)]
            hangup,
        })
    }

    /// Re-reads the pair on every SIGHUP; a pair that cannot be used leaves the old one.
    #[cfg(unix)]
    async fn reload_on_hangup(
        mut hangup: tokio::signal::unix::Signal,
        files: TlsFiles,
        cert: Arc<ReloadableCert>,
    ) {
        while hangup.recv().await.is_some() {
            let loaded = {
                let files = files.clone();
                tokio::task::spawn_blocking(move || load_certified_key(&files)).await
            };
            match loaded {
                Ok(Ok(key)) => {
                    cert.set(key);
                    tracing::info!(
                        cert = %files.cert.display(),
                        key = %files.key.display(),
                        "reloaded the TLS certificate"
                    );
                }
                Ok(Err(err)) => tracing::error!(
                    error = %err,
                    "cannot reload the TLS certificate on SIGHUP; still serving the previous one"
                ),
                Err(err) => tracing::error!(error = %err, "the TLS certificate reload failed"),
            }
        }
    }
}

/// The bound listening socket with its limits and, under TLS, its certificate.
pub struct Listener {
    tcp: TcpListener,
    limits: ConnectionLimits,
    tls: Option<Tls>,
    local_addr: SocketAddr,
}

impl Listener {
    /// Binds `addr`; with `tls`, loads the pair (a `StartError::Tls` names the file at fault).
    pub async fn bind(
        addr: &str,
        limits: ConnectionLimits,
        tls: Option<&TlsFiles>,
    ) -> Result<Listener, StartError> {
        // The certificate first: a bad file is reported before the port is taken.
        let tls = tls.map(Tls::new).transpose()?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let local_addr = tcp.local_addr().map_err(|source| StartError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        Ok(Listener {
            tcp,
            limits,
            tls,
            local_addr,
        })
    }

    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves `router` until `shutdown` completes; then stops accepting, lets every connection
    /// finish what it has in flight, and returns when the last one has closed.
    pub async fn serve<F>(self, router: Router, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Listener {
            tcp, limits, tls, ..
        } = self;
        let (acceptor, reloader) = match tls {
            Some(tls) => {
                #[cfg(unix)]
                let reloader = Some(tokio::spawn(Tls::reload_on_hangup(
                    tls.hangup,
                    tls.files.clone(),
                    tls.cert.clone(),
                )));
                #[cfg(not(unix))]
                let reloader: Option<tokio::task::JoinHandle<()>> = None;
                (Some(tls.acceptor), reloader)
            }
            None => (None, None),
        };
        let builder = Arc::new(http_builder(&limits));
        let permits = Arc::new(Semaphore::new(
            usize::try_from(limits.max_connections.max(1)).unwrap_or(usize::MAX),
        ));
        let (stop_tx, stop_rx) = watch::channel(false);
        // Each connection holds a sender; `recv` answers `None` once they are all gone.
        let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
        let shutdown = shutdown;
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) if is_connection_error(&err) => continue,
                    Err(err) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::error!(error = %err, "cannot accept a connection");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(
                stream,
                peer,
                acceptor.clone(),
                builder.clone(),
                router.clone(),
                limits,
                stop_rx.clone(),
                permit,
                open_tx.clone(),
            ));
        }
        drop(tcp);
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        let _ = stop_tx.send(true);
        drop(open_tx);
        let _ = open_rx.recv().await;
        Ok(())
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

fn http_builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper's own header read timeout is off: ours (in `serve_connection`) covers the first
    // request and slow heads without also cutting kept-alive connections at that bound.
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(None)
        .max_headers(MAX_HEADER_FIELDS)
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(16 * 1024));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(
            u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
        )
        .keep_alive_interval(Some(H2_KEEP_ALIVE))
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    builder
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    _open: mpsc::Sender<()>,
) {
    let Some(acceptor) = acceptor else {
        serve_connection(stream, peer, &builder, router, limits, stop).await;
        return;
    };
    if *stop.borrow() {
        return;
    }
    let handshake = tokio::select! {
        result = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)) => result,
        _ = stop.changed() => return,
    };
    match handshake {
        Ok(Ok(tls)) => serve_connection(tls, peer, &builder, router, limits, stop).await,
        Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
        Err(_) => tracing::debug!(
            %peer,
            "closed a connection whose TLS handshake took longer than [server] header_read_timeout_ms"
        ),
    }
}

/// Serves one connection until it closes, closing it on the header read and idle timeouts and
/// gracefully at shutdown.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    builder: &Builder<TokioExecutor>,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request| {
            handle(
                request,
                peer,
                router.clone(),
                activity.clone(),
                limits.max_header_bytes,
            )
        })
    };
    let io = TokioIo::new(Tracked {
        inner: io,
        activity: activity.clone(),
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // Since when the connection has been closing (shutdown or idle), if it is.
    let mut closing: Option<Instant> = None;
    if *stop.borrow() {
        conn.as_mut().graceful_shutdown();
        closing = Some(Instant::now());
    }
    loop {
        let deadline = activity.deadline(&limits, closing);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = activity.changed.notified() => {}
            () = sleep_until(deadline) => {
                if activity.deadline(&limits, closing).is_some_and(|d| d > Instant::now()) {
                    continue;
                }
                if closing.is_some() {
                    // Nothing in flight and the close is taking too long: drop it.
                    return;
                }
                if activity.waiting_for_head() {
                    tracing::debug!(
                        %peer,
                        "closed a connection that did not send a request head within \
                         [server] header_read_timeout_ms"
                    );
                    return;
                }
                tracing::debug!(%peer, "closing a connection idle for [server] idle_timeout_ms");
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What one request does on its way to the router: it counts as in flight until its response
/// body is done, carries the peer address, and is refused 431 when its head is too large.
async fn handle(
    mut request: Request<Incoming>,
    peer: SocketAddr,
    router: Router,
    activity: Arc<Activity>,
    max_header_bytes: usize,
) -> Result<Response<TrackedBody>, Infallible> {
    let guard = activity.begin(request.version());
    request.extensions_mut().insert(ConnectInfo(peer));
    let size = head_size(&request);
    let response = if size > max_header_bytes {
        headers_too_large(&request, peer, size, max_header_bytes)
    } else {
        match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    Ok(response.map(|inner| TrackedBody {
        inner,
        _guard: guard,
    }))
}

/// The size of a request head as `max_header_bytes` counts it: the request line (method, target,
/// version) and each header line (`name: value` and its line end).
pub fn head_size<B>(request: &Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |pq| pq.as_str().len());
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + headers + 2
}

fn headers_too_large<B>(
    request: &Request<B>,
    peer: SocketAddr,
    size: usize,
    limit: usize,
) -> Response<axum::body::Body> {
    let (request_id, echoed) = match request.headers().get("x-request-id") {
        Some(value) if !value.is_empty() && value.to_str().is_ok() => {
            (value.to_str().unwrap_or_default().to_owned(), value.clone())
        }
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"));
            (id, value)
        }
    };
    let setting = "[server] max_header_bytes";
    let body = ErrorBody {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.as_u16(),
        code: HEADERS_TOO_LARGE.to_owned(),
        message: format!(
            "the request line and headers are {size} bytes; the limit is {limit} ({setting})"
        ),
        message_with_params: "the request line and headers are {size} bytes; the limit is \
                              {limit} ({setting})"
            .to_owned(),
        message_params: [
            ("size".to_owned(), size.to_string()),
            ("limit".to_owned(), limit.to_string()),
            ("setting".to_owned(), setting.to_owned()),
        ]
        .into_iter()
        .collect(),
        context_id: request_id.clone(),
        details: Vec::new(),
        errors: Vec::new(),
    };
    tracing::debug!(
        context_id = ?request_id,
        %peer,
        size,
        limit,
        code = HEADERS_TOO_LARGE,
        "request refused"
    );
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = Response::new(axum::body::Body::from(json));
    *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-request-id", echoed);
    if request.version() < Version::HTTP_2 {
        // Whatever body follows such a head is not read: the connection ends here.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// What a connection is doing, for its timeouts.
struct Activity {
    state: Mutex<ActivityState>,
    /// Signalled when a deadline may have moved (a head starts, the last request ends).
    changed: Notify,
}

struct ActivityState {
    /// Requests whose response is not done.
    in_flight: usize,
    /// When the connection opened, or when its last request ended.
    since: Instant,
    /// When bytes of a new request head arrived on an idle HTTP/1.1 connection.
    head_started: Option<Instant>,
    /// Whether any request has arrived.
    served: bool,
    /// HTTP/2: bytes between requests are pings and window updates, not heads.
    multiplexed: bool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                since: Instant::now(),
                head_started: None,
                served: false,
                multiplexed: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn begin(self: &Arc<Self>, version: Version) -> RequestGuard {
        let mut state = self.lock();
        state.in_flight += 1;
        state.served = true;
        state.head_started = None;
        if version == Version::HTTP_2 {
            state.multiplexed = true;
        }
        RequestGuard {
            activity: self.clone(),
        }
    }

    fn read(&self) {
        let mut state = self.lock();
        if state.in_flight == 0
            && state.served
            && !state.multiplexed
            && state.head_started.is_none()
        {
            state.head_started = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// Whether the connection is (or should be) receiving a request head, rather than idle.
    fn waiting_for_head(&self) -> bool {
        let state = self.lock();
        !state.served || state.head_started.is_some()
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is in
    /// flight.
    fn deadline(&self, limits: &ConnectionLimits, closing: Option<Instant>) -> Option<Instant> {
        let state = self.lock();
        if state.in_flight > 0 {
            return None;
        }
        if let Some(closing) = closing {
            return Some(closing.max(state.since) + limits.header_read_timeout);
        }
        if !state.served {
            return Some(state.since + limits.header_read_timeout);
        }
        if let Some(started) = state.head_started {
            return Some(started + limits.header_read_timeout);
        }
        Some(state.since + limits.idle_timeout)
    }
}

/// A request in flight: dropped with its response body (or with the request, if it never got
/// one).
struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.since = Instant::now();
            state.head_started = None;
            drop(state);
            self.activity.changed.notify_one();
        }
    }
}

/// A response body that keeps its request counted as in flight until it is done.
pub struct TrackedBody {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's byte stream, noting when a new request head starts to arrive.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_header_bytes: 8192,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 4,
        }
    }

    #[tokio::test]
    async fn handlers_see_the_peer_address_and_shutdown_waits_for_requests_in_flight() {
        use axum::routing::get;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        async fn peer(ConnectInfo(addr): ConnectInfo<SocketAddr>) -> String {
            addr.to_string()
        }
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }
        let router = Router::new()
            .route("/peer", get(peer))
            .route("/slow", get(slow));
        let listener = Listener::bind("127.0.0.1:0", limits(), None).await.unwrap();
        let addr = listener.local_addr();
        assert!(!listener.is_tls());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(listener.serve(router, async {
            let _ = stopped.await;
        }));

        let mut stream = TcpStream::connect(addr).await.unwrap();
        let me = stream.local_addr().unwrap();
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&me.to_string()), "{answer} vs {me}");

        // A request in flight when shutdown starts is answered; then `serve` returns.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    }

    #[test]
    fn a_missing_or_empty_certificate_file_is_named() {
        let dir = std::env::temp_dir().join(format!("promptgate-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        let err = load_certified_key(&files).unwrap_err();
        assert_eq!(err.file, files.cert);
        assert!(err.problem.contains("cannot read"), "{err}");
        std::fs::write(&files.cert, "no PEM here\n").unwrap();
        let err = load_certified_key(&files).unwrap_err();
        assert_eq!(err.file, files.cert);
        assert!(err.problem.contains("no certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn head_size_counts_the_request_line_and_each_header() {
        let request = Request::builder()
            .method("GET")
            .uri("/healthz?x=1")
            .header("host", "a")
            .body(())
            .unwrap_or_default();
        // "GET /healthz?x=1 HTTP/1.1\r\n" + "host: a\r\n" + "\r\n"
        assert_eq!(head_size(&request), 27 + 9 + 2);
    }

    #[test]
    fn an_idle_connection_waits_for_its_first_head_then_for_the_idle_timeout() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            ..limits()
        };
        let activity = Arc::new(Activity::new());
        let opened = activity.lock().since;
        assert_eq!(
            activity.deadline(&limits, None),
            Some(opened + Duration::from_secs(1))
        );
        assert!(activity.waiting_for_head());
        let guard = activity.begin(Version::HTTP_11);
        assert_eq!(activity.deadline(&limits, None), None);
        drop(guard);
        let since = activity.lock().since;
        assert_eq!(
            activity.deadline(&limits, None),
            Some(since + Duration::from_secs(5))
        );
        assert!(!activity.waiting_for_head());
        activity.read();
        assert!(activity.waiting_for_head());
        let started = activity.lock().head_started.unwrap_or(since);
        assert_eq!(
            activity.deadline(&limits, None),
            Some(started + Duration::from_secs(1))
        );
    }
}
