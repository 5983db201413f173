//! Loopback load on the real `supernode` binary (issue 13 items 4, 5b):
//! many registered edges (distinct MACs behind a few UDP sockets), the
//! registration handling rate, the supernode's RSS, the relay rate with few
//! and with many edges registered (same run), and a REGISTER_SUPER flood of
//! new MACs (and of new community names) while two registered test clients
//! keep being relayed. Used by the `n2n-sn-load` binary (numbers) and by the
//! supernode's `flood` test (bounds).
//!
//! Everything runs on 127.0.0.1 in the current namespace, on ports the
//! kernel picks; the supernode is a child process killed by PID on drop.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use n2n_proto::types::{Auth, Community, CompressionId, DevAddr, DevDesc, Mac, TransformId};
use n2n_proto::wire::{self, Header, Message, Packet, RegisterSuper};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The `supernode` binary.
    pub bin: PathBuf,
    /// Extra supernode arguments (caps).
    pub args: Vec<String>,
    /// Edges to register (the baseline is [`BASELINE_EDGES`]).
    pub edges: usize,
    /// Communities they are spread over.
    pub communities: usize,
    /// UDP sockets the edges share.
    pub sockets: usize,
    /// PACKETs per relay measurement.
    pub relay_packets: usize,
    /// REGISTER_SUPER of new MACs in the flood (over the load communities).
    pub flood: usize,
    /// REGISTER_SUPER with new community names (one new MAC each).
    pub flood_communities: usize,
}

/// Edges registered for the relay baseline.
pub const BASELINE_EDGES: usize = 16;

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// RSS (KiB) after start.
    pub rss_start_kb: u64,
    /// RSS with the baseline edges.
    pub rss_baseline_kb: u64,
    /// RSS with all edges.
    pub rss_loaded_kb: u64,
    /// RSS after the floods.
    pub rss_flood_kb: u64,
    /// Peak RSS (VmHWM) at the end.
    pub rss_peak_kb: u64,
    /// Edges acknowledged.
    pub registered: usize,
    /// REGISTER_SUPER answered per second (new edges, windowed).
    pub reg_rate: f64,
    /// Relay rate (PACKETs/s through the supernode) with the baseline.
    pub relay_rate_baseline: f64,
    /// Relay rate with all edges.
    pub relay_rate_loaded: f64,
    /// Relayed PACKETs lost (baseline, loaded).
    pub relay_lost: (usize, usize),
    /// Flood datagrams the supernode processed per second.
    pub flood_rate: f64,
    /// Edges the supernode lists after the floods.
    pub edges_after_flood: usize,
    /// The test clients were relayed during and after the floods.
    pub relayed_during_flood: usize,
    /// Relay checks during the flood.
    pub relay_checks: usize,
    /// Non-zero drop counters at the end (management `packetstats`).
    pub drops: Vec<(String, u64)>,
}

impl LoadReport {
    /// A drop counter by name.
    pub fn drop_count(&self, name: &str) -> u64 {
        self.drops
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    }
}

struct Sn {
    child: Child,
    addr: SocketAddr,
    mgmt: u16,
}

impl Drop for Sn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Sn {
    fn start(cfg: &LoadConfig) -> Result<Sn, String> {
        let io = |e: std::io::Error| e.to_string();
        let port = free_port().map_err(io)?;
        let mut mgmt = free_port().map_err(io)?;
        while mgmt == port {
            mgmt = free_port().map_err(io)?;
        }
        let child = Command::new(&cfg.bin)
            .args([
                "-f",
                "-p",
                &format!("127.0.0.1:{port}"),
                "-t",
                &mgmt.to_string(),
            ])
            .args(&cfg.args)
            .env_remove("N2N_FEDERATION")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", cfg.bin.display()))?;
        let sn = Sn {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            mgmt,
        };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if sn.packetstats().is_ok() {
                return Ok(sn);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("supernode did not answer on its management port".into())
    }

    fn status_kb(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn ask(&self, req: &str) -> Result<Vec<serde_json::Value>, String> {
        let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.send_to(req.as_bytes(), ("127.0.0.1", self.mgmt))
            .map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        let mut b = vec![0u8; 65536];
        loop {
            let (n, _) = s.recv_from(&mut b).map_err(|e| format!("{req}: {e}"))?;
            let v: serde_json::Value =
                serde_json::from_slice(&b[..n]).map_err(|e| e.to_string())?;
            match v["_type"].as_str() {
                Some("row") => rows.push(v),
                Some("end") => return Ok(rows),
                Some("error") => return Err(format!("{req}: {v}")),
                _ => {}
            }
        }
    }

    /// C's `packetstats` rows and our `drops` rows.
    fn packetstats(&self) -> Result<Vec<serde_json::Value>, String> {
        let mut rows = self.ask("r 1 packetstats")?;
        rows.extend(self.ask("r 2 drops")?);
        Ok(rows)
    }

    /// REGISTER_SUPER handled: counted ones plus those dropped by a cap
    /// before the count.
    fn reg_handled(&self) -> u64 {
        let rows = self.packetstats().unwrap_or_default();
        rows.iter()
            .filter(|r| {
                r["type"] == "reg_super"
                    || (r["type"] == "drop"
                        && matches!(
                            r["reason"].as_str(),
                            Some("community_full" | "edge_limit" | "community_limit")
                        ))
            })
            .filter_map(|r| r["rx_pkt"].as_u64().or_else(|| r["count"].as_u64()))
            .sum()
    }

    fn drops(&self) -> Vec<(String, u64)> {
        let rows = self.packetstats().unwrap_or_default();
        rows.iter()
            .filter(|r| r["type"] == "drop")
            .filter_map(|r| Some((r["reason"].as_str()?.to_owned(), r["count"].as_u64()?)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }

    fn edges_listed(&self) -> usize {
        self.ask("r 1 edges").map_or(0, |r| r.len())
    }
}

fn community(name: &str) -> Community {
    Community::new(name).unwrap_or_else(|_| Community::from_field([b'x'; 20]))
}

fn load_mac(i: usize) -> Mac {
    let b = (i as u32).to_be_bytes();
    Mac([0x02, 0x5a, b[0], b[1], b[2], b[3]])
}

fn reg_super(buf: &mut [u8], comm: Community, mac: Mac, cookie: u32) -> usize {
    let token = [mac.0[5] ^ 0x5a; 16];
    let r = RegisterSuper {
        cookie,
        edge_mac: mac,
        sock: None,
        dev_addr: DevAddr::UNSPECIFIED,
        dev_desc: DevDesc::new("load"),
        auth: Auth::new(Auth::SCHEME_SIMPLE_ID, &token).unwrap_or(Auth::NONE),
        key_time: 0,
    };
    wire::encode(&Header::new(comm), &Message::RegisterSuper(r), buf).unwrap_or(0)
}

fn is_ack(d: &[u8]) -> Option<u32> {
    match wire::decode(d) {
        Ok((_, Message::RegisterSuperAck(a))) => Some(a.cookie),
        _ => None,
    }
}

/// A registered test client on its own socket.
struct Client {
    sock: UdpSocket,
    mac: Mac,
    comm: Community,
}

impl Client {
    fn new(comm: Community, mac: Mac) -> Result<Client, String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        Ok(Client { sock, mac, comm })
    }

    /// REGISTER_SUPER until ACKed (3 tries, 1 s each).
    fn register(&self, sn: SocketAddr) -> bool {
        let mut b = vec![0u8; 2048];
        self.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .ok();
        for attempt in 0..15u32 {
            let n = reg_super(&mut b, self.comm, self.mac, 0xc0de_0000 + attempt);
            if self.sock.send_to(&b[..n], sn).is_err() {
                continue;
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(200) {
                match self.sock.recv_from(&mut b) {
                    Ok((m, _)) if is_ack(&b[..m]) == Some(0xc0de_0000 + attempt) => return true,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        false
    }

    fn packet(&self, buf: &mut [u8], dst: Mac, seq: u32) -> usize {
        let payload = seq.to_be_bytes().repeat(25); // 100 bytes
        let p = Packet {
            src_mac: self.mac,
            dst_mac: dst,
            sock: None,
            compression: CompressionId::None.into(),
            transform: TransformId::Null.into(),
            payload: &payload,
        };
        wire::encode(&Header::new(self.comm), &Message::Packet(p), buf).unwrap_or(0)
    }
}

/// One packet a → b relayed within 1 s?
fn relayed_once(sn: SocketAddr, a: &Client, b: &Client) -> bool {
    let mut buf = vec![0u8; 2048];
    b.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .ok();
    for seq in 0..10 {
        let n = a.packet(&mut buf, b.mac, 0xfeed_0000 + seq);
        let _ = a.sock.send_to(&buf[..n], sn);
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(100) {
            match b.sock.recv_from(&mut buf) {
                Ok((m, _)) => {
                    if let Ok((_, Message::Packet(p))) = wire::decode(&buf[..m])
                        && p.src_mac == a.mac
                    {
                        return true;
                    }
                }
                Err(_) => break,
            }
        }
    }
    false
}

/// PACKETs/s a → b through the supernode, at most 256 in flight (a window
/// that stalls 50 ms counts as lost); returns (received/s, lost).
fn relay_rate(sn: SocketAddr, a: &Client, b: &Client, count: usize) -> (f64, usize) {
    let mut buf = vec![0u8; 2048];
    let mut rbuf = vec![0u8; 2048];
    b.sock.set_nonblocking(true).ok();
    let (mut sent, mut got, mut lost) = (0usize, 0usize, 0usize);
    let t = Instant::now();
    let mut last_progress = Instant::now();
    while got + lost < count {
        while sent < count && sent - got - lost < 256 {
            let n = a.packet(&mut buf, b.mac, sent as u32);
            if a.sock.send_to(&buf[..n], sn).is_err() {
                break;
            }
            sent += 1;
        }
        let mut any = false;
        while let Ok((m, _)) = b.sock.recv_from(&mut rbuf) {
            if m > 0 && got + lost < sent {
                got += 1;
                any = true;
            }
        }
        if any {
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_millis(50) {
            lost += sent - got - lost;
            last_progress = Instant::now();
        }
    }
    let el = t.elapsed().as_secs_f64();
    b.sock.set_nonblocking(false).ok();
    (got as f64 / el, lost)
}

/// Register edges `from..to` over `socks`, windowed on the ACKs; returns
/// how many were acknowledged.
fn register_range(
    sn: SocketAddr,
    socks: &[UdpSocket],
    comms: &[Community],
    from: usize,
    to: usize,
) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut acked = vec![false; to - from];
    let mut n_acked = 0;
    for round in 0..4 {
        let mut next = from;
        let mut in_flight = 0usize;
        let mut last = Instant::now();
        loop {
            while next < to && in_flight < 128 {
                if !acked[next - from] {
                    let n = reg_super(
                        &mut buf,
                        comms[next % comms.len()],
                        load_mac(next),
                        next as u32,
                    );
                    let _ = socks[next % socks.len()].send_to(&buf[..n], sn);
                    in_flight += 1;
                }
                next += 1;
            }
            let mut any = false;
            for s in socks {
                while let Ok((m, _)) = s.recv_from(&mut buf) {
                    if let Some(c) = is_ack(&buf[..m]) {
                        let c = c as usize;
                        if (from..to).contains(&c) && !acked[c - from] {
                            acked[c - from] = true;
                            n_acked += 1;
                        }
                        in_flight = in_flight.saturating_sub(1);
                        any = true;
                    }
                }
            }
            if any {
                last = Instant::now();
            } else if last.elapsed() > Duration::from_millis(300) {
                if next >= to {
                    break;
                }
                in_flight = 0; // lost: open the window again
                last = Instant::now();
            }
            if n_acked == to - from {
                return n_acked;
            }
        }
        let _ = round;
    }
    n_acked
}

/// Send `count` REGISTER_SUPER made by `make` in batches of 200, each
/// batch waited for on the supernode's reg_super counter (so the flood is
/// processed, not lost in a socket buffer); relay a → b checked every
/// 10 000. Returns (processed/s, relay checks passed, relay checks).
fn flood(
    sn: &Sn,
    socks: &[UdpSocket],
    count: usize,
    make: impl Fn(usize, &mut [u8]) -> usize,
    a: &Client,
    b: &Client,
) -> (f64, usize, usize) {
    let mut buf = vec![0u8; 2048];
    let mut sink = vec![0u8; 2048];
    let base = sn.reg_handled();
    let t = Instant::now();
    let (mut ok, mut checks) = (0, 0);
    let mut i = 0;
    while i < count {
        let end = (i + 200).min(count);
        for j in i..end {
            let n = make(j, &mut buf);
            let _ = socks[j % socks.len()].send_to(&buf[..n], sn.addr);
        }
        i = end;
        let w = Instant::now();
        while sn.reg_handled() < base + i as u64 && w.elapsed() < Duration::from_millis(200) {
            for s in socks {
                while s.recv_from(&mut sink).is_ok() {}
            }
        }
        for s in socks {
            while s.recv_from(&mut sink).is_ok() {}
        }
        if i % 10_000 == 0 {
            checks += 1;
            // Registered clients refresh as edges do (every 20 s by default).
            a.register(sn.addr);
            b.register(sn.addr);
            if relayed_once(sn.addr, a, b) {
                ok += 1;
            }
        }
    }
    let processed = sn.reg_handled().saturating_sub(base);
    (processed as f64 / t.elapsed().as_secs_f64(), ok, checks)
}

/// Run the whole load (see the module docs).
pub fn run(cfg: &LoadConfig) -> Result<LoadReport, String> {
    let sn = Sn::start(cfg)?;
    let mut rep = LoadReport {
        rss_start_kb: sn.status_kb("VmRSS"),
        ..LoadReport::default()
    };
    let comms: Vec<Community> = (0..cfg.communities.max(1))
        .map(|i| community(&format!("load{i}")))
        .collect();
    let socks: Vec<UdpSocket> = (0..cfg.sockets.max(1))
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(s)
        })
        .collect::<Result<_, String>>()?;
    let a = Client::new(comms[0], Mac([0x02, 0xaa, 0, 0, 0, 1]))?;
    let b = Client::new(comms[0], Mac([0x02, 0xbb, 0, 0, 0, 2]))?;
    if !(a.register(sn.addr) && b.register(sn.addr)) {
        return Err("test clients not registered".into());
    }
    let base = BASELINE_EDGES.saturating_sub(2).min(cfg.edges);
    rep.registered = register_range(sn.addr, &socks, &comms, 0, base);
    rep.rss_baseline_kb = sn.status_kb("VmRSS");
    (rep.relay_rate_baseline, rep.relay_lost.0) = relay_rate(sn.addr, &a, &b, cfg.relay_packets);

    let t = Instant::now();
    let n = register_range(sn.addr, &socks, &comms, base, cfg.edges);
    rep.reg_rate = n as f64 / t.elapsed().as_secs_f64();
    rep.registered += n;
    rep.rss_loaded_kb = sn.status_kb("VmRSS");
    // Keep the test clients fresh (60 s edge timeout) and measure again.
    a.register(sn.addr);
    b.register(sn.addr);
    (rep.relay_rate_loaded, rep.relay_lost.1) = relay_rate(sn.addr, &a, &b, cfg.relay_packets);

    let first = cfg.edges + 1_000_000;
    let (r1, ok1, c1) = flood(
        &sn,
        &socks,
        cfg.flood,
        |j, buf| reg_super(buf, comms[j % comms.len()], load_mac(first + j), j as u32),
        &a,
        &b,
    );
    let second = first + cfg.flood;
    let (r2, ok2, c2) = flood(
        &sn,
        &socks,
        cfg.flood_communities,
        |j, buf| {
            reg_super(
                buf,
                community(&format!("flood{j}")),
                load_mac(second + j),
                j as u32,
            )
        },
        &a,
        &b,
    );
    let total = (cfg.flood + cfg.flood_communities) as f64;
    rep.flood_rate = if total > 0.0 {
        let w1 = cfg.flood as f64 / total;
        r1 * w1 + r2 * (1.0 - w1)
    } else {
        0.0
    };
    a.register(sn.addr);
    b.register(sn.addr);
    let after = relayed_once(sn.addr, &a, &b) && relayed_once(sn.addr, &b, &a);
    rep.relayed_during_flood = ok1 + ok2 + usize::from(after);
    rep.relay_checks = c1 + c2 + 1;
    rep.rss_flood_kb = sn.status_kb("VmRSS");
    rep.rss_peak_kb = sn.status_kb("VmHWM");
    rep.edges_after_flood = sn.edges_listed();
    rep.drops = sn.drops();
    Ok(rep)
}
