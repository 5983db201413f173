//! The HTTP server: hyper's HTTP/1 server on the daemon's tokio runtime.
//!
//! * `GET`/`HEAD /metrics` → the exposition (OpenMetrics or Prometheus text, negotiated from
//!   `Accept`), `GET`/`HEAD /` → the page; any other path → 404; another method on one of
//!   these paths → 405 with `Allow: GET, HEAD`; a request hyper cannot parse → 400 (431 for
//!   oversized headers), answered by hyper itself.
//! * Rendering runs on tokio's blocking pool ([`tokio::task::spawn_blocking`]), never on the
//!   driver's thread: a current-thread runtime's data path only ever waits for socket I/O of
//!   the server. The snapshot comes from a [`Provider`](crate::Provider), which holds no lock
//!   the driver needs for longer than an `Arc` clone.
//! * Bounded, see [`Limits`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::{Exporter, Format};

/// Bounds of the server. With the defaults it holds at most
/// `max_connections × (read buffer + one response)` bytes: 16 × (16 KiB + response), where a
/// metrics response is a few KiB (44 KiB measured with [`MAX_COMMUNITY_SERIES`](crate::MAX_COMMUNITY_SERIES)
/// communities of worst-case names) and the status page below 1 MiB (920 KiB measured with
/// [`MAX_EDGES_LISTED`](crate::html::MAX_EDGES_LISTED) rows of worst-case escaped text): about
/// 16 MiB in the very worst case, whatever clients send. Each connection lives at most
/// `connection_timeout`; a request's head must arrive within `header_read_timeout`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; one more is answered `503` and closed at once.
    pub max_connections: usize,
    /// A request's line and headers must arrive within this time (also the idle time of a
    /// kept-alive connection), else the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection is closed after this time whatever it does (slow readers of responses,
    /// endless keep-alive).
    pub connection_timeout: Duration,
    /// Request line + headers larger than this are answered `431` and the connection closed.
    /// Also hyper's read buffer size (at least 8 KiB, hyper's minimum).
    pub max_header_bytes: usize,
    /// More header fields than this are answered `431`.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 16,
            header_read_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_headers: 32,
        }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for metrics on {addr}: {source}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What bind/listen said.
    #[source]
    pub source: std::io::Error,
}

/// A running server. Dropping it (or [`MetricsServer::shutdown`]) stops accepting and closes
/// every open connection.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (the real port when bound to port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server.
    pub fn shutdown(self) {}
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves `exporter` with the default [`Limits`] on the current tokio
/// runtime (call it from inside the runtime).
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve<E: Exporter>(
    addr: SocketAddr,
    exporter: E,
) -> Result<MetricsServer, ServeError> {
    serve_with(addr, exporter, Limits::default()).await
}

/// [`serve`] with explicit limits.
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve_with<E: Exporter>(
    addr: SocketAddr,
    exporter: E,
    limits: Limits,
) -> Result<MetricsServer, ServeError> {
    let err = |source| ServeError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local_addr = listener.local_addr().map_err(err)?;
    let task = tokio::spawn(accept_loop(listener, Arc::new(exporter), limits));
    Ok(MetricsServer { local_addr, task })
}

const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

async fn accept_loop<E: Exporter>(listener: TcpListener, exporter: Arc<E>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let builder = Arc::new(builder);
    // Owned here: aborting this task drops the set, which aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            // EMFILE and friends: do not spin; the connections in flight will end.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // Best effort, never waits: a fresh socket's send buffer is empty.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let (exporter, builder, timeout) = (
            Arc::clone(&exporter),
            Arc::clone(&builder),
            limits.connection_timeout,
        );
        conns.spawn(async move {
            let _permit = permit;
            connection(stream, exporter, &builder, timeout).await;
        });
    }
}

async fn connection<E: Exporter>(
    stream: TcpStream,
    exporter: Arc<E>,
    builder: &http1::Builder,
    timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| respond(Arc::clone(&exporter), req));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    // Errors (client gone, timeouts, parse errors already answered) end the connection.
    let _ = tokio::time::timeout(timeout, conn).await;
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Metrics,
    Index,
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Scripts and remote loads are refused even if a value ever slipped through unescaped.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn respond<E: Exporter>(
    exporter: Arc<E>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = match req.uri().path() {
        "/metrics" => Route::Metrics,
        "/" | "/index.html" => Route::Index,
        _ => {
            return Ok(plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /\n",
            ));
        }
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: only GET and HEAD\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let rendered = tokio::task::spawn_blocking(move || match route {
        Route::Metrics => exporter.metrics(format),
        Route::Index => exporter.index_html(),
    })
    .await;
    let Ok(body) = rendered else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering failed\n",
        ));
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    let content_type = match route {
        Route::Metrics => format.content_type(),
        Route::Index => "text/html; charset=utf-8",
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Route::Index = route {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    Ok(r)
}
