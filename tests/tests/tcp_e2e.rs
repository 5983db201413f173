//! `-S2` end to end (issue 15): edges that reach the supernode over one TCP connection.
//!
//! * `tcp_edges_ping_iperf_restart_and_udp_blocked`: two `-S2` edges and two UDP `-S1` edges
//!   on one underlay switch with our supernode. The `-S2` edges ping each other and a UDP
//!   edge (both directions); the supernode lists them as `TCP`, the edges show their
//!   supernode as `TCP`; iperf3 through `-S2` beside `-S1` (UDP relayed) in the same run,
//!   both printed; with nftables dropping all UDP in the `-S2` edges' namespaces the tunnel
//!   keeps working; the supernode is SIGKILLed and restarted: the `-S2` edges reconnect,
//!   re-register and traffic resumes (gap printed, bounded).
//! * `tcp_failover_to_second_supernode`: `-S2` edges with two `-l` supernodes; the first is
//!   killed, they fail over to the second and traffic resumes (time printed).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(20);

/// Measurements: one scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn block_udp(ns: &Netns) {
    let rules = "table inet tcpblock {\n chain in { type filter hook input priority 0; \
                 policy accept;\n  meta l4proto udp counter drop\n }\n chain out { type filter \
                 hook output priority 0; policy accept;\n  meta l4proto udp counter drop\n }\n}\n";
    let path = std::env::temp_dir().join(format!(
        "n2n-tcpblock-{}-{}.nft",
        std::process::id(),
        ns.name()
    ));
    std::fs::write(&path, rules).unwrap();
    ns.exec(&["nft", "-f", path.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_file(&path);
}

fn udp_dropped(ns: &Netns) -> u64 {
    let out = ns
        .exec(&["nft", "list", "table", "inet", "tcpblock"])
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split("packets ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn edge_opts(community: &str, sns: &[String], n: u16, tcp: bool) -> EdgeOpts {
    let mut o = EdgeOpts::new(community, &sns[0])
        .addr(&format!("10.200.9.{n}/24"))
        .mac(mac(0x90 + n));
    for s in &sns[1..] {
        o = o.supernode(s);
    }
    if tcp { o.arg("-S2") } else { o.no_p2p() }
}

#[test]
fn tcp_edges_ping_iperf_restart_and_udp_blocked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_root("tcp/main") {
        return;
    }
    let mut sc = Scenario::new("tcp/main");
    let lab = Lab::new("tcp_main");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let hosts: Vec<Netns> = (1..=4)
        .map(|n| lab.host_on(&format!("e{n}"), &wan, &format!("198.18.0.{n}/24")))
        .collect::<Result<_>>()
        .unwrap();
    let mut sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let sns = vec![format!("{SN_IP}:{SN_PORT}")];
    let edges: Vec<Edge> = (1..=4u16)
        .map(|n| {
            let o = edge_opts("tcpnet", &sns, n, n <= 2).interval(5);
            Edge::start(&hosts[usize::from(n) - 1], &format!("edge{n}"), o).unwrap()
        })
        .collect();
    let macs: Vec<String> = (1..=4).map(|n| mac(0x90 + n)).collect();
    let all: Vec<&str> = macs.iter().map(String::as_str).collect();
    assert!(sn.wait_edges(&all, REG), "{:?}", sn.edge_macs());

    // -S2 ↔ -S2, -S2 ↔ UDP both ways.
    assert!(wait_ping(&hosts[0], "10.200.9.2", REG), "-S2 to -S2");
    assert!(wait_ping(&hosts[0], "10.200.9.3", REG), "-S2 to UDP");
    assert!(wait_ping(&hosts[2], "10.200.9.1", REG), "UDP to -S2");
    let rows = sn.mgmt("edges").unwrap();
    for (m, want) in [(&macs[0], "TCP"), (&macs[1], "TCP"), (&macs[2], "UDP")] {
        let r = rows
            .iter()
            .find(|r| {
                r["macaddr"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(m))
            })
            .unwrap_or_else(|| panic!("{m} not listed: {rows:?}"));
        assert_eq!(r["proto"], want, "{r:?}");
    }
    let s = edges[0].supernodes().unwrap();
    assert!(
        s.iter().any(|r| r["proto"] == "TCP" && r["current"] != 0),
        "{s:?}"
    );

    // iperf3: -S2 pair and -S1 pair, same run.
    let secs = 3;
    let _srv2 = iperf3_server(&hosts[1], 5201).unwrap();
    let _srv4 = iperf3_server(&hosts[3], 5201).unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let tcp_run = iperf3_client(&hosts[0], ip("10.200.9.2"), 5201, secs, None).unwrap();
    let udp_run = iperf3_client(&hosts[2], ip("10.200.9.4"), 5201, secs, None).unwrap();
    println!(
        "iperf3 TCP {secs} s through the supernode: -S2 {:.0} Mbit/s, -S1 (UDP relayed) {:.0} Mbit/s",
        tcp_run.mbps, udp_run.mbps
    );
    sc.metric("iperf_s2_mbps", format!("{:.0}", tcp_run.mbps));
    sc.metric("iperf_s1_mbps", format!("{:.0}", udp_run.mbps));
    assert!(tcp_run.mbps > 1.0 && udp_run.mbps > 1.0);

    // No UDP at all in the -S2 namespaces: still working.
    block_udp(&hosts[0]);
    block_udp(&hosts[1]);
    assert!(
        wait_ping(&hosts[0], "10.200.9.2", REG),
        "-S2 with UDP blocked"
    );
    assert!(
        wait_ping(&hosts[1], "10.200.9.3", REG),
        "-S2 (UDP blocked) to UDP edge"
    );
    let dropped = udp_dropped(&hosts[0]) + udp_dropped(&hosts[1]);
    println!(
        "UDP blocked in the -S2 namespaces: {dropped} UDP packets dropped by nftables, pings fine"
    );

    // Supernode killed and restarted: the -S2 edges reconnect.
    let probe = GapProbe::start(&hosts[0], "probe", "10.200.9.2", 100, 60).unwrap();
    sleep(Duration::from_secs(2));
    sn.kill(Signal::SIGKILL).unwrap();
    let t_kill = unix_now();
    sleep(Duration::from_secs(2));
    let t_restart = unix_now();
    let restarted = Instant::now();
    sn.restart().unwrap();
    let back = sn.wait_edges(&all[..2], Duration::from_secs(20));
    println!(
        "-S2 edges back in the restarted supernode's table after {:.1} s ({back})",
        restarted.elapsed().as_secs_f64()
    );
    sleep(Duration::from_secs(3));
    let trace = probe.finish().unwrap();
    let gap = trace.max_gap(t_kill - 1.0, unix_now() - 0.5);
    let resume = trace.first_reply_after(t_restart).map(|t| t - t_restart);
    println!(
        "supernode down {:.1} s: -S2 ping gap {gap:.2} s, resumed {} s after the restart",
        t_restart - t_kill,
        resume.map_or("never".into(), |r| format!("{r:.2}"))
    );
    sc.metric("restart_gap_s", format!("{gap:.2}"));
    let r = resume.expect("-S2 traffic never resumed after the supernode restart");
    assert!(r < 10.0, "-S2 traffic resumed {r:.2} s after the restart");
    for e in &edges {
        e.health().unwrap();
    }
    sn.health().unwrap();
}

#[test]
fn tcp_failover_to_second_supernode() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_root("tcp/failover") {
        return;
    }
    let mut sc = Scenario::new("tcp/failover");
    let lab = Lab::new("tcp_fo");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let sn2_host = lab.host_on("sn2", &wan, "198.18.0.253/24").unwrap();
    let hosts: Vec<Netns> = (1..=2)
        .map(|n| lab.host_on(&format!("e{n}"), &wan, &format!("198.18.0.{n}/24")))
        .collect::<Result<_>>()
        .unwrap();
    let mut sn1 = Supernode::start(&sn_host, "supernode1", SupernodeOpts::default()).unwrap();
    let sn2 = Supernode::start(&sn2_host, "supernode2", SupernodeOpts::default()).unwrap();
    let sns = vec![
        format!("{SN_IP}:{SN_PORT}"),
        format!("198.18.0.253:{SN_PORT}"),
    ];
    let edges: Vec<Edge> = (1..=2u16)
        .map(|n| {
            let o = edge_opts("tcpfo", &sns, n, true).interval(5);
            Edge::start(&hosts[usize::from(n) - 1], &format!("edge{n}"), o).unwrap()
        })
        .collect();
    let macs: Vec<String> = (1..=2).map(|n| mac(0x90 + n)).collect();
    let all: Vec<&str> = macs.iter().map(String::as_str).collect();
    assert!(sn1.wait_edges(&all, REG), "{:?}", sn1.edge_macs());
    assert!(wait_ping(&hosts[0], "10.200.9.2", REG));
    sn1.kill(Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    assert!(
        sn2.wait_edges(&all, Duration::from_secs(40)),
        "no failover to the second supernode: {:?}",
        sn2.edge_macs()
    );
    let registered = killed.elapsed().as_secs_f64();
    assert!(
        wait_ping(&hosts[0], "10.200.9.2", REG),
        "no traffic after failover"
    );
    let resumed = killed.elapsed().as_secs_f64();
    println!(
        "-S2 failover: both edges registered at the second supernode {registered:.1} s after the \
         first was killed, pings through it {resumed:.1} s after"
    );
    sc.metric("failover_s", format!("{resumed:.1}"));
    for e in &edges {
        e.health().unwrap();
    }
    sn2.health().unwrap();
}
