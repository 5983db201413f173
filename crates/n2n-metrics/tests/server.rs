//! The HTTP server over real sockets on 127.0.0.1:0, with a raw TCP client: routes, status
//! codes, content types, HEAD, keep-alive, and the bounds (slow and oversized requests, the
//! connection limit, rendering off the runtime thread).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod expo;
mod samples;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use n2n_metrics::{
    EdgeExporter, Limits, MetricsServer, OPENMETRICS_CONTENT_TYPE, Provider, SupernodeExporter,
    channel, serve, serve_with,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends `raw` on a fresh connection and reads until the server closes it.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let read = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut buf = Vec::new();
        // A reset after the reply (unread request bytes) is fine: keep what arrived.
        let _ = s.read_to_end(&mut buf).await;
        buf
    };
    let buf = tokio::time::timeout(BOUND, read)
        .await
        .expect("reply in time");
    parse_reply(&buf)
}

async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    exchange(addr, req.as_bytes()).await
}

async fn supernode_server() -> MetricsServer {
    let ex = SupernodeExporter::new(Provider::fixed(samples::supernode(1)));
    serve(LOCAL, ex).await.unwrap()
}

const PROMETHEUS_ACCEPT: &str = "Accept: application/openmetrics-text;version=1.0.0;q=0.5,\
    application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2\r\n";

#[tokio::test]
async fn metrics_in_both_formats() {
    let (tx, rx) = channel(samples::edge(1));
    let server = serve(LOCAL, EdgeExporter::new(rx)).await.unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let r = get(addr, "/metrics", PROMETHEUS_ACCEPT).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    let m = expo::parse(&r.body, expo::Dialect::OpenMetrics).unwrap();
    assert_eq!(
        m.value("n2n_edge_tx_bytes_total", &[("path", "p2p")]),
        1000.0
    );

    tx.publish(samples::edge(3));
    let r = get(addr, "/metrics?x=1", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let m = expo::parse(&r.body, expo::Dialect::Prometheus).unwrap();
    assert_eq!(
        m.value("n2n_edge_tx_bytes_total", &[("path", "p2p")]),
        3000.0
    );
    println!("scrape excerpt:\n{}", &r.body[..r.body.len().min(1500)]);
    server.shutdown();
}

#[tokio::test]
async fn pages() {
    let server = supernode_server().await;
    let r = get(server.local_addr(), "/", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    assert!(r.body.contains("02:AB:CD:00:00:02") && r.body.contains("10.200.0.2/24"));
    assert!(!r.body.contains("<script>"));

    let edge = serve(LOCAL, EdgeExporter::new(Provider::fixed(samples::edge(1))))
        .await
        .unwrap();
    let r = get(edge.local_addr(), "/", "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("n2n edge") && r.body.contains("198.18.0.254:7654"));
}

#[tokio::test]
async fn not_found_and_method_not_allowed() {
    let server = supernode_server().await;
    let addr = server.local_addr();
    for path in ["/nope", "/metrics/", "/metricsx", "/favicon.ico"] {
        assert_eq!(get(addr, path, "").await.status, 404, "{path}");
    }
    for (method, path) in [
        ("POST", "/metrics"),
        ("DELETE", "/"),
        ("PUT", "/metrics"),
        ("OPTIONS", "/"),
    ] {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
        let r = exchange(addr, req.as_bytes()).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let r = exchange(
        addr,
        b"POST /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn head_has_no_body() {
    let server = supernode_server().await;
    let r = exchange(
        server.local_addr(),
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "{:?}", r.body);
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(len > 500, "{len}");
}

#[tokio::test]
async fn garbage_is_a_bad_request() {
    let server = supernode_server().await;
    let addr = server.local_addr();
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // a TLS ClientHello
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let r = exchange(addr, raw).await;
        assert_eq!(r.status, 400, "{raw:?}");
    }
    // The server is still fine.
    assert_eq!(get(addr, "/metrics", "").await.status, 200);
}

#[tokio::test]
async fn keep_alive_serves_several_requests() {
    let server = supernode_server().await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(req).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
}

fn tight() -> Limits {
    Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(500),
        connection_timeout: Duration::from_secs(3),
        max_header_bytes: 8192,
        max_headers: 16,
    }
}

#[tokio::test]
async fn slowloris_is_cut_off() {
    let ex = SupernodeExporter::new(Provider::fixed(samples::supernode(1)));
    let server = serve_with(LOCAL, ex, tight()).await.unwrap();
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    let mut sent = 0usize;
    // One header byte every 50 ms, for at most 10 s: the server must hang up long before.
    let closed = loop {
        if start.elapsed() > BOUND {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if s.write_all(b"X").await.is_err() {
            break true;
        }
        sent += 1;
        let mut b = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut b)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(_)) => break true, // an error reply, then close
            Err(_) => {}
        }
    };
    assert!(
        closed,
        "still open after {:?} and {sent} bytes",
        start.elapsed()
    );
    // Cut off by the header timeout (0.5 s), well before the 10 s bound.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn oversized_headers_are_refused_without_reading_them_all() {
    let ex = SupernodeExporter::new(Provider::fixed(samples::supernode(1)));
    let server = serve_with(LOCAL, ex, tight()).await.unwrap();
    let addr = server.local_addr();
    // 64 KiB of one header: over the 8 KiB bound.
    let mut req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 64 * 1024));
    req.extend(b"\r\n\r\n");
    let r = exchange(addr, &req).await;
    assert_eq!(r.status, 431);
    // Too many header fields.
    let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
    assert_eq!(get(addr, "/metrics", &many).await.status, 431);
    // A client that keeps sending: the server stops reading and hangs up; the write fails
    // instead of the server buffering it.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Big: ")
        .await
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut written = 0usize;
    let start = Instant::now();
    while start.elapsed() < BOUND {
        match tokio::time::timeout(Duration::from_secs(1), s.write_all(&chunk)).await {
            Ok(Ok(())) => written += chunk.len(),
            Ok(Err(_)) => break,
            Err(_) => break, // blocked: the server does not read any more
        }
    }
    assert!(written < 64 << 20, "server accepted {written} bytes");
    assert_eq!(get(addr, "/metrics", "").await.status, 200);
}

#[tokio::test]
async fn connection_limit() {
    let ex = SupernodeExporter::new(Provider::fixed(samples::supernode(1)));
    let server = serve_with(LOCAL, ex, tight()).await.unwrap();
    let addr = server.local_addr();
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // A started request holds its slot.
        s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        idle.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = get(addr, "/metrics", "").await;
    assert_eq!(r.status, 503);
    drop(idle);
    // Slots come back when the connections close.
    let start = Instant::now();
    loop {
        let r = get(addr, "/metrics", "").await;
        if r.status == 200 {
            break;
        }
        assert!(start.elapsed() < BOUND, "still {}", r.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rendering_does_not_stall_the_runtime_thread() {
    // A current-thread runtime (as the daemons use) with a ticker standing in for the driver
    // loop; the provider is slow (300 ms). The ticker must keep ticking while a scrape waits.
    let ticks = Arc::new(AtomicU64::new(0));
    let t = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            t.fetch_add(1, Ordering::Relaxed);
        }
    });
    let slow = Provider::from_fn(|| {
        std::thread::sleep(Duration::from_millis(300));
        Arc::new(samples::supernode(1))
    });
    let server = serve(LOCAL, SupernodeExporter::new(slow)).await.unwrap();
    let before = ticks.load(Ordering::Relaxed);
    let r = get(server.local_addr(), "/metrics", "").await;
    let during = ticks.load(Ordering::Relaxed) - before;
    assert_eq!(r.status, 200);
    // 300 ms at 10 ms per tick ≈ 30; a blocked thread would give ~0.
    assert!(during >= 10, "only {during} ticks while rendering");
    ticker.abort();
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let first = supernode_server().await;
    let addr = first.local_addr();
    let ex = SupernodeExporter::new(Provider::fixed(samples::supernode(1)));
    let err = serve(addr, ex).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("cannot listen for metrics on {addr}")),
        "{msg}"
    );
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let server = supernode_server().await;
    let addr = server.local_addr();
    assert_eq!(get(addr, "/metrics", "").await.status, 200);
    drop(server);
    tokio::task::yield_now().await;
    let start = Instant::now();
    while TcpStream::connect(addr).await.is_ok() {
        assert!(start.elapsed() < BOUND, "still accepting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
