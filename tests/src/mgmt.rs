//! Management-port queries and small UDP helpers, run in-process inside a namespace.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Error, Netns, Result, io_err};

/// Default bound of a management query.
pub const MGMT_TIMEOUT: Duration = Duration::from_secs(3);
/// A non-JSON (text) reply is considered complete after this long without a datagram.
const TEXT_IDLE: Duration = Duration::from_millis(500);

/// `_type` of a JSON reply line, tolerating the C implementation's unescaped values (falls back
/// to a substring search when the line is not valid JSON).
fn reply_type(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v.get("_type").and_then(|t| t.as_str()).map(str::to_string);
    }
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    let at = compact.find("\"_type\":\"")? + "\"_type\":\"".len();
    let rest = compact.get(at..)?;
    Some(rest.get(..rest.find('"')?)?.to_string())
}

/// Sends `request` (e.g. `"r 1 edges"`) to the management port `127.0.0.1:port` *inside* `ns`
/// and returns the reply datagrams (one string each, trailing newline removed), stopping at a
/// JSON line whose `_type` is `end` or `error`, after [`MGMT_TIMEOUT`], or (for text replies)
/// after 500 ms of silence following the first datagram.
pub fn mgmt_query(ns: &Netns, port: u16, request: &str) -> Result<Vec<String>> {
    mgmt_query_timeout(ns, port, request, MGMT_TIMEOUT)
}

/// [`mgmt_query`] with an explicit overall bound. An empty result means no reply at all.
pub fn mgmt_query_timeout(
    ns: &Netns,
    port: u16,
    request: &str,
    timeout: Duration,
) -> Result<Vec<String>> {
    MgmtClient::connect(ns, port)?.query(request, timeout)
}

/// A management-port client socket inside a namespace, for several queries or for
/// subscriptions (`s 1 peer`) whose events arrive later.
#[derive(Debug)]
pub struct MgmtClient {
    sock: UdpSocket,
    port: u16,
    ns_name: String,
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

impl MgmtClient {
    /// A socket on 127.0.0.1 inside `ns`, connected to `127.0.0.1:port` (so only that port's
    /// replies arrive and an ICMP "port unreachable" is reported as an error).
    pub fn connect(ns: &Netns, port: u16) -> Result<MgmtClient> {
        let sock = ns.udp_socket(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let dst = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        sock.connect(dst)
            .map_err(io_err(format!("connecting to {dst}")))?;
        Ok(MgmtClient {
            sock,
            port,
            ns_name: ns.name().to_string(),
        })
    }

    /// Sends one request datagram.
    pub fn send(&self, request: &str) -> Result<()> {
        self.sock.send(request.as_bytes()).map_err(io_err(format!(
            "sending mgmt request to port {}",
            self.port
        )))?;
        Ok(())
    }

    /// Receives one reply datagram (trailing newline removed) within `timeout`; `None` on
    /// timeout.
    pub fn recv_line(&self, timeout: Duration) -> Result<Option<String>> {
        let mut buf = vec![0u8; 65536];
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(io_err("set_read_timeout"))?;
        match self.sock.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
            }
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(Error::Other(format!(
                    "management port {} in {} refused (nothing listening)",
                    self.port, self.ns_name
                )))
            }
            Err(e) => Err(io_err("receiving mgmt reply")(e)),
        }
    }

    /// Sends `request` and collects replies like [`mgmt_query`].
    pub fn query(&self, request: &str, timeout: Duration) -> Result<Vec<String>> {
        self.send(request)?;
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let mut wait = deadline - now;
            if !lines.is_empty() {
                wait = wait.min(TEXT_IDLE);
            }
            let Some(line) = self.recv_line(wait)? else {
                break; // overall timeout, or quiet after a text reply
            };
            let t = reply_type(&line);
            lines.push(line);
            if matches!(t.as_deref(), Some("end" | "error")) {
                break;
            }
        }
        Ok(lines)
    }
}

/// The `row` objects of a JSON management reply, parsed. Lines that are not valid JSON are
/// skipped.
pub fn mgmt_rows(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_type").and_then(|t| t.as_str()) == Some("row"))
        .collect()
}

/// From `ns`, sends `payload` from a socket bound to `bind` to `dst` and returns the first reply
/// (from `dst`) within `timeout`.
pub fn udp_exchange(
    ns: &Netns,
    bind: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let sock = ns.udp_socket(bind)?;
    exchange_on(&sock, dst, payload, timeout)
}

fn exchange_on(
    sock: &UdpSocket,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    // resend a few times: the first datagram may be lost while ARP resolves
    let mut next_send = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: format!("UDP reply from {dst}"),
                after: timeout,
            });
        }
        if now >= next_send {
            sock.send_to(payload, dst)
                .map_err(io_err(format!("sending to {dst}")))?;
            next_send = now + Duration::from_millis(300);
        }
        let wait = next_send.min(deadline).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(io_err("set_read_timeout"))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == dst => return Ok(buf.get(..n).unwrap_or_default().to_vec()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => return Err(io_err(format!("receiving from {dst}"))(e)),
        }
    }
}

/// Asks a [`UdpEchoServer`] at `server` which source address `sock` appears as (a tiny STUN).
pub fn udp_whoami(sock: &UdpSocket, server: SocketAddr, timeout: Duration) -> Result<SocketAddr> {
    let reply = exchange_on(sock, server, b"whoami", timeout)?;
    let text = String::from_utf8_lossy(&reply);
    text.strip_prefix("seen ")
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| Error::Parse {
            what: "echo server reply".into(),
            detail: text.into_owned(),
        })
}

/// A UDP server thread inside a namespace that answers every datagram with
/// `seen <source ip:port>` and records the source addresses. Stops when dropped.
#[derive(Debug)]
pub struct UdpEchoServer {
    local: SocketAddr,
    seen: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl UdpEchoServer {
    /// Starts the server on `bind` (e.g. `0.0.0.0:3478`) inside `ns`.
    pub fn start(ns: &Netns, bind: SocketAddr) -> Result<UdpEchoServer> {
        let sock = ns.udp_socket(bind)?;
        let local = sock.local_addr().map_err(io_err("local_addr"))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(io_err("set_read_timeout"))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    seen2.lock().unwrap_or_else(|e| e.into_inner()).push(from);
                    let _ = sock.send_to(format!("seen {from}").as_bytes(), from);
                }
            }
        });
        Ok(UdpEchoServer {
            local,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Source addresses of all datagrams received so far (in order, with repeats).
    pub fn seen(&self) -> Vec<SocketAddr> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Distinct source addresses received so far.
    pub fn distinct_sources(&self) -> Vec<SocketAddrV4> {
        let mut v: Vec<SocketAddrV4> = self
            .seen()
            .into_iter()
            .filter_map(|a| match a {
                SocketAddr::V4(a) => Some(a),
                SocketAddr::V6(_) => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

impl Drop for UdpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reply_type;

    #[test]
    fn reply_types() {
        assert_eq!(
            reply_type(r#"{"_tag":"5","_type":"end","cmd":"edges"}"#).as_deref(),
            Some("end")
        );
        // unescaped quote inside a value: not valid JSON, still classified
        assert_eq!(
            reply_type(r#"{"_tag":"5","_type":"row","desc":"a"b"}"#).as_deref(),
            Some("row")
        );
        assert_eq!(reply_type("community: x").as_deref(), None);
    }
}
