//! Helpers for the tests that run the `supernode` binary on loopback: the
//! process (free ports, bounded waits, killed by PID on drop), the
//! management port, and fake edges built on `n2n_proto`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use n2n_proto::he::{CommunityHe, HeKeyKind, StampGenerator};
use n2n_proto::types::{
    Auth, Community, CompressionId, DevAddr, DevDesc, Mac, PeerSock, TransformId,
};
use n2n_proto::wire::{
    self, Header, Message, Packet, QueryPeer, RegisterSuper, RegisterSuperAck, UnregisterSuper,
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_supernode");
/// Upper bound for any single wait.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running supernode process.
pub struct Sn {
    child: Child,
    pub port: u16,
    pub mgmt_port: u16,
    /// Where edges send to.
    pub addr: SocketAddr,
    /// Temporary directory (world-readable: the supernode drops root).
    pub dir: tempfile::TempDir,
    log_path: PathBuf,
}

impl Sn {
    /// `supernode -f -p 127.0.0.1:<free> -t <free> <extra…>`, ready when the
    /// management port answers.
    pub fn start(extra: &[&str]) -> Sn {
        Self::start_with(extra, |port| format!("127.0.0.1:{port}"))
    }

    /// Like [`Sn::start`] with the `-p` argument built from the port.
    pub fn start_with(extra: &[&str], p_arg: impl Fn(u16) -> String) -> Sn {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self::start_in(dir, extra, p_arg)
    }

    /// Start with a prepared directory (e.g. holding a community file).
    pub fn start_in(
        mut dir: tempfile::TempDir,
        extra: &[&str],
        p_arg: impl Fn(u16) -> String,
    ) -> Sn {
        let log_path = dir.path().join("supernode.log");
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = free_udp_port();
            let mut mgmt_port = free_udp_port();
            while mgmt_port == port {
                mgmt_port = free_udp_port();
            }
            let p = p_arg(port);
            let t = mgmt_port.to_string();
            let mut args = vec!["-f", "-p", &p, "-t", &t];
            args.extend_from_slice(extra);
            let log = File::create(&log_path).unwrap();
            let child = Command::new(BIN)
                .args(&args)
                .env_remove("N2N_FEDERATION")
                .env_remove("NOTIFY_SOCKET")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            let mut sn = Sn {
                child,
                port,
                mgmt_port,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                dir,
                log_path: log_path.clone(),
            };
            if sn.wait_ready() {
                return sn;
            }
            last_err = sn.log();
            // Port race with another test: try other ports.
            let _ = sn.child.kill();
            let _ = sn.child.wait();
            dir = std::mem::replace(&mut sn.dir, tempfile::tempdir().unwrap());
        }
        panic!("supernode did not start: {last_err}");
    }

    fn wait_ready(&mut self) -> bool {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let t = Instant::now();
        let mut b = [0u8; 2048];
        while t.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let _ = s.send_to(b"r 0 verbose", ("127.0.0.1", self.mgmt_port));
            if s.recv_from(&mut b).is_ok() {
                return true;
            }
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait (bounded) until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let t = Instant::now();
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if t.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Exit code, waiting at most `limit` (panics after).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                t.elapsed() <= limit,
                "supernode did not exit within {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send one management datagram, collect the replies: until `end` or
    /// `error` for JSON, until a short silence for text.
    pub fn ask(&self, req: &[u8]) -> Vec<String> {
        mgmt_ask(self.mgmt_port, req)
    }

    /// The `row` objects of a JSON reply (asserting begin … end framing).
    pub fn rows(&self, req: &str) -> Vec<Value> {
        let lines = self.ask(req.as_bytes());
        json_rows(&lines)
    }

    /// A `drops` row's count (0 if the row is missing).
    pub fn drop_count(&self, reason: &str) -> u64 {
        self.rows("r 99 drops")
            .iter()
            .find(|r| r["type"] == "drop" && r["reason"] == reason)
            .and_then(|r| r["count"].as_u64())
            .unwrap_or(0)
    }

    /// `/proc/<pid>/status` field in kB (VmRSS, VmHWM).
    pub fn status_kb(&self, field: &str) -> u64 {
        proc_status_kb(self.pid(), field)
    }
}

impl Drop for Sn {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn mgmt_ask(port: u16, req: &[u8]) -> Vec<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.send_to(req, ("127.0.0.1", port)).unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match s.recv_from(&mut b) {
            Ok((n, _)) => {
                let d = String::from_utf8_lossy(&b[..n]).into_owned();
                let json = d.starts_with('{');
                let done =
                    json && (d.contains("\"_type\":\"end\"") || d.contains("\"_type\":\"error\""));
                out.push(d);
                if done {
                    return out;
                }
                if !json {
                    // Text replies: read until a short silence.
                    s.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                }
            }
            Err(_) if !out.is_empty() && !out[0].starts_with('{') => return out,
            Err(e) => panic!(
                "management request {:?}: no (complete) reply: {e}; got {out:?}",
                String::from_utf8_lossy(req)
            ),
        }
    }
}

/// Rows of a JSON reply, checking the framing.
pub fn json_rows(lines: &[String]) -> Vec<Value> {
    let v: Vec<Value> = lines
        .iter()
        .map(|l| {
            assert!(l.ends_with('\n'), "{l:?}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))
        })
        .collect();
    assert!(v.len() >= 2, "{lines:?}");
    assert_eq!(v[0]["_type"], "begin", "{lines:?}");
    assert_eq!(v[v.len() - 1]["_type"], "end", "{lines:?}");
    v[1..v.len() - 1]
        .iter()
        .inspect(|r| assert_eq!(r["_type"], "row", "{lines:?}"))
        .cloned()
        .collect()
}

/// Field names of a JSON object, in order (serde_json keeps the order
/// with `preserve_order`; we parse by hand to be independent of that).
pub fn field_names(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    let mut depth = 0;
    let mut expect_key = false;
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                expect_key = true;
            }
            b'}' => depth -= 1,
            b',' if depth == 1 => expect_key = true,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if expect_key && depth == 1 {
                    names.push(line[start..j].to_owned());
                    expect_key = false;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

pub fn mac(last: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, last])
}

/// A fake edge: one UDP socket on 127.0.0.1 and the fields it registers
/// with; optionally header encryption with its community's static key.
pub struct Edge {
    pub sock: UdpSocket,
    pub sn: SocketAddr,
    pub community: Community,
    pub mac: Mac,
    pub token: [u8; 16],
    pub dev_addr: DevAddr,
    pub desc: DevDesc,
    pub he: Option<CommunityHe>,
    stamps: StampGenerator,
    cookie: u32,
}

impl Edge {
    /// An edge of `community` with MAC 02:00:00:00:00:`last`, address
    /// `10.200.0.<last>/24` (or none), description `e<last>`.
    pub fn new(sn: SocketAddr, community: &str, last: u8, ip: bool) -> Edge {
        let bind = if sn.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        Edge {
            sock,
            sn,
            community: Community::new(community).unwrap(),
            mac: mac(last),
            token: [last; 16],
            dev_addr: if ip {
                DevAddr::new([10, 200, 0, last].into(), 24)
            } else {
                DevAddr::UNSPECIFIED
            },
            desc: DevDesc::new(&format!("e{last}")),
            he: None,
            stamps: StampGenerator::new(),
            cookie: 0x1000 * u32::from(last),
        }
    }

    /// Use header encryption (the community's static keys).
    pub fn with_he(mut self) -> Edge {
        self.he = Some(CommunityHe::new(*self.community.field()));
        self
    }

    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn auth(&self) -> Auth {
        Auth::new(Auth::SCHEME_SIMPLE_ID, &self.token).unwrap()
    }

    pub fn header(&self) -> Header {
        Header::new(self.community)
    }

    /// Encode (and header-encrypt if configured) a message.
    pub fn encode(&mut self, h: &Header, m: &Message<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let n = wire::encode(h, m, &mut buf).unwrap();
        buf.truncate(n);
        if let Some(he) = &self.he {
            let hlen = match m {
                Message::Packet(p) => wire::packet_header_len(p.sock.as_ref()),
                _ => n,
            };
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let stamp = self.stamps.next(now.as_secs(), now.subsec_micros());
            he.encrypt(&mut buf, hlen, stamp, [9, 8, 7, 6], HeKeyKind::Dynamic)
                .unwrap();
        }
        buf
    }

    pub fn send(&mut self, h: &Header, m: &Message<'_>) {
        let d = self.encode(h, m);
        self.send_raw(&d);
    }

    pub fn send_raw(&self, d: &[u8]) {
        self.sock.send_to(d, self.sn).unwrap();
    }

    /// Next datagram (header-decrypted when configured), `None` after
    /// `timeout`.
    pub fn recv_within(&self, timeout: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut b = vec![0u8; 4096];
        let (n, from) = self.sock.recv_from(&mut b).ok()?;
        b.truncate(n);
        if let Some(he) = &self.he {
            assert!(
                !wire::looks_plain(&b),
                "plain datagram in an encrypted community"
            );
            let (_, d) = he.decrypt(&mut b).expect("cannot decrypt the header");
            b.truncate(d.len);
        }
        Some((from, b))
    }

    /// Next datagram, which must come within [`WAIT`].
    pub fn recv(&self) -> Vec<u8> {
        let (from, d) = self
            .recv_within(WAIT)
            .unwrap_or_else(|| panic!("edge {}: nothing received", self.mac));
        assert_eq!(from, self.sn, "datagram not from the supernode");
        d
    }

    /// Assert that nothing arrives for [`QUIET`].
    pub fn expect_nothing(&self, what: &str) {
        if let Some((from, d)) = self.recv_within(QUIET) {
            let desc = match wire::decode(&d) {
                Ok((h, m)) => format!("{h:?} {m:?}"),
                Err(e) => format!("undecodable ({e}) {}", hex::encode(&d)),
            };
            panic!(
                "edge {}: {what}: unexpected datagram from {from}: {desc}",
                self.mac
            );
        }
    }

    pub fn reg_super_msg(&mut self) -> RegisterSuper {
        self.cookie = self.cookie.wrapping_add(1);
        RegisterSuper {
            cookie: self.cookie,
            edge_mac: self.mac,
            sock: None,
            dev_addr: self.dev_addr,
            dev_desc: self.desc,
            auth: self.auth(),
            key_time: 0,
        }
    }

    /// Send REGISTER_SUPER, return (cookie sent, reply).
    pub fn register(&mut self) -> (u32, Vec<u8>) {
        let r = self.reg_super_msg();
        let h = self.header();
        self.send(&h, &Message::RegisterSuper(r));
        (r.cookie, self.recv())
    }

    /// Register and check the ACK's fields; returns the address it assigned.
    pub fn register_ok(&mut self, sn_mac: Option<Mac>) -> DevAddr {
        let (cookie, d) = self.register();
        let (h, m) = wire::decode(&d).unwrap();
        let Message::RegisterSuperAck(ack) = m else {
            panic!("edge {}: expected REGISTER_SUPER_ACK, got {m:?}", self.mac)
        };
        check_ack(&h, &ack, cookie, self.local(), sn_mac, self.community);
        ack.dev_addr
    }

    pub fn unregister(&mut self) {
        let h = self.header();
        let m = Message::UnregisterSuper(UnregisterSuper {
            auth: self.auth(),
            src_mac: self.mac,
        });
        self.send(&h, &m);
    }

    pub fn packet<'a>(&self, dst: Mac, payload: &'a [u8]) -> Message<'a> {
        Message::Packet(Packet {
            src_mac: self.mac,
            dst_mac: dst,
            sock: None,
            compression: CompressionId::None.into(),
            transform: TransformId::Null.into(),
            payload,
        })
    }

    pub fn send_packet(&mut self, dst: Mac, payload: &[u8]) {
        let h = self.header();
        let m = self.packet(dst, payload);
        self.send(&h, &m);
    }

    pub fn query(&mut self, target: Mac) {
        let h = self.header();
        let m = Message::QueryPeer(QueryPeer {
            src_mac: self.mac,
            target_mac: target,
            aflags: 0,
        });
        self.send(&h, &m);
    }
}

/// REGISTER_SUPER_ACK checks that do not depend on the scenario.
pub fn check_ack(
    h: &Header,
    ack: &RegisterSuperAck<'_>,
    cookie: u32,
    edge_sock: SocketAddr,
    sn_mac: Option<Mac>,
    community: Community,
) {
    use wire::Flags;
    assert!(h.flags.contains(Flags::FROM_SUPERNODE), "{h:?}");
    assert!(h.flags.contains(Flags::SOCKET), "{h:?}");
    assert_eq!(h.community, community);
    assert_eq!(ack.cookie, cookie, "cookie echoed");
    if let Some(m) = sn_mac {
        assert_eq!(ack.src_mac, m, "ACK srcMac = supernode MAC");
    }
    assert_eq!(ack.lifetime, 15);
    assert_eq!(
        ack.sock,
        PeerSock::from(edge_sock),
        "ACK sock = edge's socket"
    );
    assert_eq!(ack.auth, Auth::NONE);
    assert!(
        ack.sn_list.is_empty(),
        "no federation: no supernodes listed"
    );
    assert_eq!(ack.key_time, 0);
}
