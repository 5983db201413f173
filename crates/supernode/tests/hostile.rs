//! Hostile input at full speed: 100 000 random and mutated datagrams (the
//! mutations start from every datagram of the C captures) on the main
//! port, plus garbage on the management port. Afterwards the supernode
//! must be alive, register a new edge, list it correctly, show the drops
//! in `drops`, and have stayed within a memory bound.
//!
//! Knobs: `N2N_HOSTILE_COUNT` (datagrams, default 100000),
//! `N2N_HOSTILE_SEED` (generator seed), `N2N_VECTORS_DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Edge, Sn};
use n2n_proto::types::Mac;

/// VmHWM bound for the supernode process (debug build included).
const RSS_LIMIT_KB: u64 = 64 * 1024;
/// Upper bound for the sending phase.
const SEND_LIMIT: Duration = Duration::from_secs(60);
/// Upper bound for the supernode to work through its socket backlog.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.byte();
        }
    }
}

/// Every UDP payload of every scenario's packets.jsonl.
fn seeds() -> Vec<Vec<u8>> {
    let dir = n2n_testdata::captures_dir();
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path().join("packets.jsonl");
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push(hex::decode(v["hex"].as_str().unwrap()).unwrap());
        }
    }
    out
}

const NAMES: [&[u8]; 4] = [b"rocks", b"hostile", b"x", b"rocks\0garbage"];

/// One hostile datagram into `out`.
fn generate(rng: &mut Rng, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
    out.clear();
    match rng.below(100) {
        // Pure random, mostly short.
        0..=14 => {
            let len = if rng.below(2) == 0 {
                rng.below(48)
            } else {
                rng.below(2100)
            };
            out.resize(len, 0);
            rng.fill(out);
        }
        // A plain-looking header with random type/flags/TTL and body.
        15..=24 => {
            let len = 24 + rng.below(200);
            out.resize(len, 0);
            rng.fill(out);
            out[0] = 3;
            out[2] = 0;
            out[3] = rng.byte() & 0x7f;
            let name = NAMES[rng.below(NAMES.len())];
            out[4..24].fill(0);
            let n = name.len().min(19);
            out[4..4 + n].copy_from_slice(&name[..n]);
            out[23] = 0;
        }
        // Mutations of captured datagrams.
        _ => {
            out.extend_from_slice(&seeds[rng.below(seeds.len())]);
            for _ in 0..1 + rng.below(4) {
                mutate(rng, seeds, out);
            }
        }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], d: &mut Vec<u8>) {
    let len = d.len();
    match rng.below(10) {
        0 | 1 => {
            // Flip one to eight bits.
            for _ in 0..1 + rng.below(8) {
                if len > 0 {
                    let i = rng.below(len);
                    d[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            if len > 0 {
                let i = rng.below(len);
                d[i] = rng.byte();
            }
        }
        3 => d.truncate(rng.below(len + 1)),
        4 => {
            let n = rng.below(300);
            for _ in 0..n {
                d.push(rng.byte());
            }
        }
        5 => {
            // TTL: 0, 1 or 255.
            if len > 1 {
                d[1] = [0, 1, 255][rng.below(3)];
            }
        }
        6 => {
            // Flags / type word.
            if len > 3 {
                d[2] = rng.byte();
                d[3] = rng.byte();
            }
        }
        7 => {
            // Splice the tail of another datagram.
            let other = &seeds[rng.below(seeds.len())];
            let at = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            d.truncate(at);
            d.extend_from_slice(&other[from..]);
        }
        8 => {
            // Another community name.
            if len >= 24 {
                let name = NAMES[rng.below(NAMES.len())];
                d[4..24].fill(0);
                let n = name.len().min(19);
                d[4..4 + n].copy_from_slice(&name[..n]);
            }
        }
        _ => {
            // Zero or 0xff a region.
            if len > 0 {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let v = if rng.below(2) == 0 { 0 } else { 0xff };
                d[a..b].fill(v);
            }
        }
    }
    d.truncate(2100);
}

/// Management garbage: random bytes, and mutated requests (never with the
/// right password, so never `stop`).
fn mgmt_garbage(rng: &mut Rng, out: &mut Vec<u8>) {
    const REQS: [&[u8]; 8] = [
        b"r 1 edges",
        b"r 2 communities",
        b"w 3:1:wrong stop",
        b"w 4 verbose 9",
        b"r 5 packetstats",
        b"s 6 edges",
        b"r 7:1:n2n help",
        b"w 8:1:bad reload_communities",
    ];
    out.clear();
    if rng.below(4) == 0 {
        let len = rng.below(600);
        out.resize(len, 0);
        rng.fill(out);
        // Keep most of them JSON-shaped (text requests get the whole
        // status page, one datagram per edge).
        if len > 2 && rng.below(2) == 0 {
            out[1] = b' ';
        }
    } else {
        out.extend_from_slice(REQS[rng.below(REQS.len())]);
        for _ in 0..rng.below(4) {
            let i = rng.below(out.len());
            match rng.below(3) {
                0 => out[i] = rng.byte(),
                1 => {
                    out.truncate(i.max(2));
                }
                _ => {
                    let n = rng.below(100);
                    for _ in 0..n {
                        out.push(rng.byte());
                    }
                }
            }
        }
    }
}

/// `(rx_queue bytes, drops)` of the UDP socket bound to `port` on
/// 127.0.0.1, from /proc/net/udp.
fn udp_queue(port: u16) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    let want = format!("0100007F:{port:04X}");
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) == Some(&want.as_str()) {
            let rx = f.get(4)?.split(':').nth(1)?;
            let rx = u64::from_str_radix(rx, 16).ok()?;
            let drops = f.last()?.parse().ok()?;
            return Some((rx, drops));
        }
    }
    None
}

#[test]
fn hostile_flood_then_still_serving() {
    let count: usize = std::env::var("N2N_HOSTILE_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("N2N_HOSTILE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let seeds = seeds();
    assert!(
        seeds.len() >= 400,
        "only {} captured datagrams",
        seeds.len()
    );

    let mut sn = Sn::start(&[]);
    let pid = sn.pid();
    let rss_before = sn.status_kb("VmRSS");
    let (_, drops_before) = udp_queue(sn.port).expect("supernode socket in /proc/net/udp");

    let senders: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mgmt = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(seed | 1);
    let mut buf = Vec::with_capacity(4096);
    let mut mbuf = Vec::with_capacity(1024);
    let mut sent = 0usize;
    let mut mgmt_sent = 0usize;
    let t0 = Instant::now();
    for i in 0..count {
        generate(&mut rng, &seeds, &mut buf);
        if senders[i % senders.len()].send_to(&buf, sn.addr).is_ok() {
            sent += 1;
        }
        if i % 250 == 0 {
            mgmt_garbage(&mut rng, &mut mbuf);
            if mgmt.send_to(&mbuf, ("127.0.0.1", sn.mgmt_port)).is_ok() {
                mgmt_sent += 1;
            }
        }
        if i % 1024 == 0 && t0.elapsed() > SEND_LIMIT {
            eprintln!("hostile: send phase bounded at {SEND_LIMIT:?} after {i} datagrams");
            break;
        }
    }
    let send_time = t0.elapsed();
    // Wait until the supernode has worked through its socket backlog.
    let t1 = Instant::now();
    loop {
        let (rx, _) = udp_queue(sn.port).unwrap_or((0, 0));
        if rx == 0 {
            break;
        }
        assert!(sn.alive(), "supernode died; log:\n{}", sn.log());
        assert!(
            t1.elapsed() < DRAIN_LIMIT,
            "backlog of {rx} bytes not drained"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let busy = t0.elapsed();
    let (_, drops_after) = udp_queue(sn.port).unwrap_or((0, drops_before));
    let kernel_drops = drops_after.saturating_sub(drops_before);
    let processed = (sent as u64).saturating_sub(kernel_drops);
    assert!(sn.alive(), "supernode died; log:\n{}", sn.log());

    // Still serving: a new edge registers and is listed correctly.
    let mut e = Edge::new(sn.addr, "after-the-storm", 0x42, true);
    e.register_ok(None);
    let rows = sn.rows("r 1 edges");
    let row = rows
        .iter()
        .find(|r| r["community"] == "after-the-storm")
        .unwrap_or_else(|| panic!("new edge not listed among {} rows", rows.len()));
    assert_eq!(row["macaddr"], "02:00:00:00:00:42");
    assert_eq!(row["sockaddr"], e.local().to_string());
    assert_eq!(row["ip4addr"], "10.200.0.66/24");
    let mut peer = Edge::new(sn.addr, "after-the-storm", 0x43, true);
    peer.register_ok(None);
    e.send_packet(peer.mac, b"still relaying");
    let d = peer.recv();
    assert!(matches!(
        n2n_proto::wire::decode(&d).unwrap().1,
        n2n_proto::wire::Message::Packet(p) if p.payload == b"still relaying"
    ));
    e.query(Mac::NULL);
    let _pong = e.recv();

    // The drops are counted by reason.
    let stats = sn.rows("r 2 drops");
    let drop = |reason: &str| {
        stats
            .iter()
            .find(|r| r["type"] == "drop" && r["reason"] == reason)
            .and_then(|r| r["count"].as_u64())
            .unwrap_or_else(|| panic!("no drop row {reason}: {stats:?}"))
    };
    let total_drops: u64 = stats
        .iter()
        .filter(|r| r["type"] == "drop")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    for reason in [
        "too_short",
        "he_no_key",
        "unsupported_type",
        "ttl_expired",
        "undecodable",
    ] {
        assert!(drop(reason) > 0, "{reason}: {stats:?}");
    }
    assert!(
        total_drops > processed / 4,
        "{total_drops} drops for {processed} processed datagrams: {stats:?}"
    );
    let edges_listed = rows.len();
    let communities = sn.rows("r 3 communities").len();

    assert!(sn.alive());
    let rss_after = sn.status_kb("VmRSS");
    let hwm = sn.status_kb("VmHWM");
    let sent_rate = sent as f64 / send_time.as_secs_f64();
    let processed_rate = processed as f64 / busy.as_secs_f64();
    eprintln!(
        "hostile: pid {pid}: sent {sent} datagrams in {:.2} s ({sent_rate:.0}/s), kernel dropped \
         {kernel_drops}, supernode processed {processed} in {:.2} s ({processed_rate:.0}/s); \
         {mgmt_sent} management garbage datagrams; {total_drops} counted drops; {edges_listed} \
         edges, {communities} communities listed; VmRSS {rss_before} kB before, {rss_after} kB \
         after, VmHWM {hwm} kB",
        send_time.as_secs_f64(),
        busy.as_secs_f64()
    );
    let mut scenario = n2n_tests::Scenario::new("supernode_hostile_flood");
    scenario
        .metric("sent", sent)
        .metric("sent_per_s", format!("{sent_rate:.0}"))
        .metric("processed_per_s", format!("{processed_rate:.0}"))
        .metric("kernel_drops", kernel_drops)
        .metric("counted_drops", total_drops)
        .metric("rss_kb_before", rss_before)
        .metric("rss_kb_after", rss_after)
        .metric("hwm_kb", hwm);
    assert!(
        hwm < RSS_LIMIT_KB,
        "VmHWM {hwm} kB ≥ {RSS_LIMIT_KB} kB (RSS before {rss_before} kB)"
    );
    // Log lines of hostile registrations must not carry raw control bytes.
    let log = sn.log();
    assert!(
        !log.bytes().any(|b| b < 0x20 && b != b'\n'),
        "control characters in the log"
    );
}
