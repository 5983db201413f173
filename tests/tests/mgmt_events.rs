//! Management subscriptions of a running edge, with a small client that
//! speaks the protocol as C's `n2n-ctl --sub` does (`s <tag>:1:<password>
//! <topic>`, skip `replacing`, wait for `subscribe`, then read `event`s):
//!
//! * a `peer` subscriber sees action 4 (added to P2P) when a second edge
//!   appears and pings, then action 1 (purged) after that edge is killed;
//! * `post.test` reaches the `test` subscriber before the reply's `end`;
//! * a second `peer` subscriber replaces the first (`unsubscribed` to the
//!   old one, `replacing` then `subscribe` to the new), and `help.events`
//!   names it;
//! * at shutdown the subscriber gets action 2 (cleared) for the supernode.
//!
//! Namespaces `mg_sub-*`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const REG: Duration = Duration::from_secs(15);

/// A subscriber: its own UDP socket in the edge's namespace.
struct Client {
    sock: UdpSocket,
    edge: SocketAddr,
}

impl Client {
    fn new(ns: &Netns, port: u16) -> Client {
        let sock = ns.udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Client {
            sock,
            edge: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn send(&self, req: &str) {
        self.sock.send_to(req.as_bytes(), self.edge).unwrap();
    }

    /// The next datagram within `timeout`, as JSON.
    fn recv(&self, timeout: Duration) -> Option<Value> {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                return Some(serde_json::from_str(&text).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {text:?}");
                }));
            }
        }
        None
    }

    /// `n2n-ctl --sub <topic>`: subscribe, return the lines seen up to
    /// `subscribe`.
    fn subscribe(&self, tag: &str, topic: &str) -> Vec<Value> {
        self.send(&format!("s {tag}:1:n2n {topic}"));
        let mut seen = Vec::new();
        while let Some(v) = self.recv(Duration::from_secs(3)) {
            let ty = v["_type"].as_str().unwrap_or("").to_owned();
            assert_ne!(ty, "error", "{v}");
            seen.push(v);
            if ty == "subscribe" {
                return seen;
            }
        }
        panic!("no `subscribe` reply: {seen:?}");
    }

    /// Events until one matches `want`, within `timeout`.
    fn wait_event(&self, timeout: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(v) = self.recv(Duration::from_millis(500)) {
                eprintln!("event: {v}");
                if v["_type"] == "event" && want(&v) {
                    return Some(v);
                }
            }
        }
        None
    }
}

fn is_peer(v: &Value, action: u64, mac: &str) -> bool {
    v["action"] == action && v["macaddr"].as_str() == Some(mac)
}

#[test]
fn subscriptions_and_peer_events() {
    if !require_root("mgmt/subscriptions") {
        return;
    }
    let lab = Lab::new("mg_sub");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let ha = lab.host_on("a", &wan, "198.18.0.1/24").unwrap();
    let hb = lab.host_on("b", &wan, "198.18.0.2/24").unwrap();
    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let sn_addr = format!("{SN_IP}:{SN_PORT}");
    let opts = |n: u16| {
        EdgeOpts::new("mgsub", &sn_addr)
            .addr(&format!("10.200.9.{n}/24"))
            .mac(mac(0x90 + n))
            .port(50000 + n)
    };
    let mut a = Edge::start(&ha, "edge-a", opts(1)).unwrap();
    let port = a.opts().mgmt_port;
    assert!(sn.wait_edges(&[&mac(0x91)], REG));

    // Without the password: badauth; an unknown topic: unknowntopic.
    let c1 = Client::new(&ha, port);
    c1.send("s 1 peer");
    assert_eq!(c1.recv(REG).unwrap()["error"], "badauth");
    c1.send("s 1:1:n2n nosuch");
    assert_eq!(c1.recv(REG).unwrap()["error"], "unknowntopic");

    let first = c1.subscribe("p1", "peer");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["_tag"], "p1");
    assert_eq!(first[0]["topic"], "peer");

    // post.test reaches the test subscriber.
    let t = Client::new(&ha, port);
    t.subscribe("t1", "test");
    let q = Client::new(&ha, port);
    q.send("r 9 post.test hello world");
    let ev = t.recv(REG).expect("test event");
    assert_eq!(ev["_type"], "event");
    assert_eq!(ev["_tag"], "t1");
    assert_eq!(ev["test"], "hello world");
    let mut reply = Vec::new();
    while let Some(v) = q.recv(Duration::from_secs(1)) {
        reply.push(v["_type"].as_str().unwrap_or("").to_owned());
    }
    assert_eq!(reply, ["begin", "row", "end"]);

    // A second edge appears and talks: added to P2P.
    let mut b = Edge::start(&hb, "edge-b", opts(2)).unwrap();
    assert!(sn.wait_edges(&[&mac(0x91), &mac(0x92)], REG));
    assert!(wait_ping(&ha, "10.200.9.2", REG));
    let b_mac = mac(0x92).to_ascii_uppercase();
    let added = c1
        .wait_event(REG, |v| is_peer(v, 4, &b_mac))
        .expect("no 'added to P2P' event for the second edge");
    assert_eq!(added["_tag"], "p1");
    assert_eq!(added["sockaddr"], "198.18.0.2:50002");

    // It goes (SIGKILL: no goodbye): purged once it timed out.
    b.kill(Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    let purged = c1.wait_event(Duration::from_secs(150), |v| is_peer(v, 1, &b_mac));
    eprintln!("purged after {:.0} s", killed.elapsed().as_secs_f64());
    assert!(purged.is_some(), "no 'purged' event for the killed edge");

    // Replacing: the old subscriber is told, the new one gets both lines.
    let c2 = Client::new(&ha, port);
    let seen = c2.subscribe("p2", "peer");
    let types: Vec<&str> = seen.iter().map(|v| v["_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["replacing", "subscribe"], "{seen:?}");
    let old = c1
        .recv(REG)
        .expect("no 'unsubscribed' to the old subscriber");
    assert_eq!(old["_type"], "unsubscribed");
    assert_eq!(old["_tag"], "p1");
    assert_eq!(old["topic"], "peer");
    q.send("r 10 help.events");
    let mut rows = Vec::new();
    while let Some(v) = q.recv(Duration::from_secs(1)) {
        rows.push(v);
    }
    let peer_row = rows
        .iter()
        .find(|r| r["topic"] == "peer")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(peer_row["tag"], "p2");
    assert_eq!(
        peer_row["sockaddr"],
        c2.sock.local_addr().unwrap().to_string()
    );

    // Shutdown: the supernode entry is cleared.
    a.kill(Signal::SIGTERM).unwrap();
    let sn_mac_seen = c2.wait_event(REG, |v| v["action"] == 2);
    assert!(
        sn_mac_seen.is_some(),
        "no 'cleared' event at shutdown:\n{}",
        a.stderr()
    );
    assert!(
        c1.recv(Duration::from_secs(1)).is_none(),
        "the old subscriber still gets events"
    );
    sn.health().unwrap();
}

/// Without `-f` the command returns only once the TAP is up and has its
/// address (C daemonizes after configuring the TAP); a TAP that cannot be
/// created makes the command fail with the daemon's message.
#[test]
fn daemon_returns_after_the_tap_is_configured() {
    if !require_root("mgmt/daemon_ready") {
        return;
    }
    let lab = Lab::new("mg_dmn");
    let (wan, _sn_host) = underlay(&lab).unwrap();
    let h = lab.host_on("a", &wan, "198.18.0.1/24").unwrap();
    let bin = find_binary("edge").unwrap();
    let bin = bin.to_string_lossy().into_owned();
    let sn = format!("{SN_IP}:{SN_PORT}");
    let base = [
        bin.as_str(),
        "-c",
        "mgdmn",
        "-k",
        "s3cret",
        "-l",
        sn.as_str(),
        "-a",
        "10.200.8.1/24",
        "-t",
        "5644",
    ];
    let mut args = base.to_vec();
    args.extend(["-d", "mgd0"]);
    let started = Instant::now();
    let (ok, out, err) = h.exec_status(&args, Duration::from_secs(20)).unwrap();
    let took = started.elapsed();
    // Right when the command returned: the address is there.
    let show = h.exec(&["ip", "addr", "show", "mgd0"]);
    eprintln!(
        "edge returned after {:.2} s: {ok} {out:?} {err:?}",
        took.as_secs_f64()
    );
    // Stop the daemon through its management port before asserting.
    let c = Client::new(&h, 5644);
    c.send("w 1:1:n2n stop");
    let _ = c.recv(Duration::from_secs(3));
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        h.exec(&["ip", "link", "show", "mgd0"]).is_err()
    });
    assert!(ok, "edge without -f failed: {err}");
    let show = show.unwrap();
    assert!(show.contains("inet 10.200.8.1/24"), "{show}");
    assert!(show.contains("UP"), "{show}");
    assert!(gone, "the daemon did not stop");

    // A TAP the kernel refuses (eth0 exists and is no TAP): the parent
    // fails with the reason.
    let mut args = base.to_vec();
    args.extend(["-d", "eth0"]);
    let (ok, _out, err) = h.exec_status(&args, Duration::from_secs(20)).unwrap();
    assert!(!ok, "edge without -f succeeded with TAP eth0");
    assert!(err.starts_with("edge: "), "{err:?}");
    eprintln!("bad TAP: {err:?}");
}
