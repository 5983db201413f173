//! The field, part 6: hostile traffic against running daemons.
//!
//! A supernode and three edges on the underlay: A and B in community `field7` (pinging each
//! other throughout), C alone in community `other7`. An attacker host on the underlay sends
//! 100 000 random, truncated and mutated datagrams (mutations of every datagram captured from
//! C n2n 3.1.1, often retargeted at `field7`) to the supernode, another 100 000 to edge A's
//! main socket, 10 000 to A's discovery port, replays every captured datagram unchanged to
//! both, and throws garbage at both management ports. Afterwards:
//! * both daemons are alive, never printed a panic, and still forward (A ↔ B ping);
//! * the garbage shows up as drops under named reasons in both `packetstats`;
//! * peak RSS (VmHWM) of the supernode and the edges stays below 64 MiB;
//! * C never received a frame of `field7`: its TAP delivered nothing, it decoded no PACKET.
//!
//! Knobs: `N2N_HOSTILE_COUNT` (datagrams per target, default 100000), `N2N_E2E_SEED`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::thread::sleep;
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);
/// Datagrams per second per target (bursts of 500).
const RATE: f64 = 25_000.0;

fn count() -> usize {
    std::env::var("N2N_HOSTILE_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Sends `n` hostile datagrams from `sock` to each of `targets` (interleaved), paced at
/// [`RATE`] per target.
fn flood(
    sock: &UdpSocket,
    targets: &[(SocketAddr, usize)],
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    communities: &[&[u8]],
) -> usize {
    let start = Instant::now();
    let total: usize = targets.iter().map(|t| t.1).sum();
    let mut left: Vec<usize> = targets.iter().map(|t| t.1).collect();
    let mut sent = 0usize;
    let mut buf = Vec::with_capacity(2200);
    while sent < total {
        for (i, (dst, _)) in targets.iter().enumerate() {
            let n = left[i].min(500);
            for _ in 0..n {
                hostile_datagram(rng, seeds, communities, &mut buf);
                // Send errors (ICMP feedback, full buffers) are part of the game.
                let _ = sock.send_to(&buf, dst);
            }
            left[i] -= n;
            sent += n;
        }
        let due = start + Duration::from_secs_f64(sent as f64 / targets.len() as f64 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            sleep(wait);
        }
    }
    sent
}

fn mgmt_storm(ns: &Netns, port: u16, rng: &mut Rng, n: usize) {
    let sock = ns.udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
    let dst: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut buf = Vec::new();
    for i in 0..n {
        mgmt_garbage(rng, &mut buf);
        let _ = sock.send_to(&buf, dst);
        if i % 200 == 199 {
            sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn hostile_traffic_against_running_daemons() {
    if !require_root("field/hostile_traffic") {
        return;
    }
    let dir = n2n_testdata::captures_dir();
    let seeds = captured_datagrams(&dir).unwrap();
    assert!(
        seeds.len() > 100,
        "only {} captured datagrams in {dir:?}",
        seeds.len()
    );
    let n = count();
    let mut rng = Rng::from_env();
    eprintln!("hostile: seed N2N_E2E_SEED={} count {n}", rng.0);
    let mut sc = Scenario::new("field/hostile_traffic");
    sc.metric("seed", rng.0);

    let lab = Lab::new("fld_hostile");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let ha = lab.host_on("a", &wan, "198.18.0.1/24").unwrap();
    let hb = lab.host_on("b", &wan, "198.18.0.2/24").unwrap();
    let hc = lab.host_on("c", &wan, "198.18.0.3/24").unwrap();
    let attacker = lab.host_on("x", &wan, "198.18.0.66/24").unwrap();
    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let sn_addr = format!("{SN_IP}:{SN_PORT}");
    let opts = |c: &str, ip: &str, m: u16, port: u16| {
        EdgeOpts::new(c, &sn_addr).addr(ip).mac(mac(m)).port(port)
    };
    let a = Edge::start(
        &ha,
        "edge-a",
        opts("field7", "10.200.70.1/24", 0x701, 50001),
    )
    .unwrap();
    let b = Edge::start(
        &hb,
        "edge-b",
        opts("field7", "10.200.70.2/24", 0x702, 50002),
    )
    .unwrap();
    let c = Edge::start(
        &hc,
        "edge-c",
        opts("other7", "10.200.70.3/24", 0x703, 50003),
    )
    .unwrap();
    for e in [&a, &b, &c] {
        assert!(e.wait_registered(REG));
    }
    assert!(wait_ping(&ha, "10.200.70.2", REG));
    let c_tap0 = c.tap_counters().unwrap();
    let sn_drops0 = sn.packetstats().unwrap().total_drops();
    let a_drops0 = a.packetstats().unwrap().total_drops();

    // Traffic of ours flows during the whole attack (direct and, for broadcasts, relayed).
    let probe = GapProbe::start(&ha, "probe", "10.200.70.2", 200, 120).unwrap();
    let sn_dst: SocketAddr = sn_addr.parse().unwrap();
    let a_dst: SocketAddr = "198.18.0.1:50001".parse().unwrap();
    let a_disc: SocketAddr = "198.18.0.1:1968".parse().unwrap();
    let sock = attacker
        .udp_socket("0.0.0.0:40000".parse().unwrap())
        .unwrap();
    let names: [&[u8]; 4] = [b"field7", b"rocks", b"field7\0junk", b""];
    let t0 = Instant::now();
    let sent = flood(
        &sock,
        &[(sn_dst, n), (a_dst, n), (a_disc, n / 10)],
        &mut rng,
        &seeds,
        &names,
    );
    // Replays: every captured datagram, unchanged, three times to each.
    let mut replayed = 0;
    for _ in 0..3 {
        for (i, d) in seeds.iter().enumerate() {
            let _ = sock.send_to(d, sn_dst);
            let _ = sock.send_to(d, a_dst);
            replayed += 2;
            if i % 200 == 199 {
                sleep(Duration::from_millis(10));
            }
        }
    }
    mgmt_storm(&sn_host, SN_MGMT_PORT, &mut rng, 3000);
    mgmt_storm(&ha, EDGE_MGMT_PORT, &mut rng, 3000);
    let attack_s = t0.elapsed().as_secs_f64();
    sc.metric("sent", sent + replayed);
    sc.metric("attack_s", format!("{attack_s:.1}"));
    sleep(Duration::from_secs(2)); // let the daemons drain their sockets
    let trace = probe.finish().unwrap();

    // Still forwarding, alive, no panic.
    for e in [&a, &b, &c] {
        e.health().unwrap();
    }
    sn.health().unwrap();
    let after = ping(&ha, "10.200.70.2", 56, 10, false).unwrap();
    assert_eq!(after.received, 10, "A -> B after the attack: {after:?}");
    let during = trace.replies.len() as f64 / f64::from(trace.max_seq.max(1));
    sc.metric(
        "ping_ok_during_attack_pct",
        format!("{:.0}", 100.0 * during),
    );
    assert!(
        during > 0.8,
        "overlay pings mostly lost during the attack: {trace:?}"
    );

    // Drops counted under named reasons.
    let sn_stats = sn.packetstats().unwrap();
    let a_stats = a.packetstats().unwrap();
    let sn_drops = sn_stats.total_drops() - sn_drops0;
    let a_drops = a_stats.total_drops() - a_drops0;
    sc.metric("sn_drops", sn_drops);
    sc.metric("edge_drops", a_drops);
    eprintln!("supernode drops: {}", sn_stats.drops_summary());
    eprintln!("edge A drops: {}", a_stats.drops_summary());
    for (who, st, dropped, target) in [
        ("supernode", &sn_stats, sn_drops, n),
        ("edge", &a_stats, a_drops, n + n / 10),
    ] {
        let reasons = st.drops();
        assert!(
            reasons.iter().filter(|(_, c)| **c > 0).count() >= 3,
            "{who}: too few distinct drop reasons: {reasons:?}"
        );
        assert!(
            reasons.keys().all(|r| !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())),
            "{who}: unnamed drop reason: {reasons:?}"
        );
        assert!(
            dropped as f64 >= 0.5 * target as f64,
            "{who}: only {dropped} of {target} hostile datagrams counted as drops: {}",
            st.drops_summary()
        );
    }
    sc.metric(
        "sn_drop_reasons",
        sn_stats.drops_summary().split(' ').count(),
    );
    sc.metric(
        "edge_drop_reasons",
        a_stats.drops_summary().split(' ').count(),
    );

    // Memory stayed bounded.
    let sn_hwm = sn.vm_hwm_kib().unwrap();
    let a_hwm = a.vm_hwm_kib().unwrap();
    sc.metric("sn_hwm_kib", sn_hwm);
    sc.metric("edge_hwm_kib", a_hwm);
    assert!(sn_hwm < RSS_LIMIT_KIB, "supernode VmHWM {sn_hwm} KiB");
    assert!(a_hwm < RSS_LIMIT_KIB, "edge VmHWM {a_hwm} KiB");
    assert!(b.vm_hwm_kib().unwrap() < RSS_LIMIT_KIB);

    // The third community saw nothing of ours.
    let c_tap1 = c.tap_counters().unwrap();
    let c_stats = c.packetstats().unwrap();
    assert_eq!(
        c_tap1.0, c_tap0.0,
        "edge C wrote frames to its TAP: {c_tap0:?} -> {c_tap1:?}"
    );
    for ty in ["transop", "p2p", "super"] {
        assert_eq!(
            c_stats.get(ty, "rx_pkt"),
            0,
            "edge C received {ty}: {c_stats:?}"
        );
    }
    sc.metric("other_community_rx", c_tap1.0 - c_tap0.0);
}
