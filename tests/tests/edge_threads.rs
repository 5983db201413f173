//! `edge --threads` end to end (issue 18 item 4): edges with two data-path threads (two TAP
//! queues, two `SO_REUSEPORT` sockets on one port) beside a single-threaded one.
//!
//! * `two_data_path_threads_keep_every_flow_in_order`: edges A and B with `--threads 2`, C
//!   with one thread, one supernode. Both threaded edges run the extra thread (`edge-dp1`
//!   in `/proc/<pid>/task`); 1472-byte DF pings A↔B, A↔C, B↔C; UDP ordering: four iperf3
//!   UDP streams A→B and four C→A at the same time, every stream must arrive with
//!   `out_of_order` 0 (the tunnel keeps each flow on one thread); TCP: four streams A→B,
//!   retransmissions printed and bounded (no storm: ≤ 2 % of the segments). The CPU time of
//!   each thread of A and B is printed. The whole e2e suite also runs with `N2N_THREADS=2`
//!   in `.ci/run` (every scenario with two data-path threads).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use n2n_tests::scenario::*;
use n2n_tests::*;
use serde_json::Value;

const REG: Duration = Duration::from_secs(20);

/// `iperf3 -J` client run from `ns` to `server` with `extra` arguments: the JSON.
fn iperf3_json(ns: &Netns, server: &str, port: u16, extra: &[&str]) -> Value {
    let p = port.to_string();
    let mut argv = vec![
        "iperf3",
        "-J",
        "-c",
        server,
        "-p",
        &p,
        "--connect-timeout",
        "2000",
    ];
    argv.extend_from_slice(extra);
    let (_ok, out, err) = ns.exec_status(&argv, Duration::from_secs(40)).unwrap();
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("iperf3 JSON ({e}): {out} {err}"));
    assert!(v.get("error").is_none(), "iperf3: {v}");
    v
}

/// Per-stream `(packets, lost, out_of_order)` of a UDP run.
fn udp_streams(v: &Value) -> Vec<(u64, u64, u64)> {
    v["end"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let u = &s["udp"];
            let n = |k: &str| u[k].as_u64().unwrap_or_else(|| panic!("no {k} in {u}"));
            (n("packets"), n("lost_packets"), n("out_of_order"))
        })
        .collect()
}

/// `(thread name, utime + stime ticks)` of each thread of `pid`.
fn thread_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let ticks = n2n_tests::perf::parse_stat_ticks(&stat).unwrap_or(0);
        out.push((comm.trim().to_owned(), ticks));
    }
    out.sort();
    out
}

#[test]
fn two_data_path_threads_keep_every_flow_in_order() {
    if !require_root("threads/order") {
        return;
    }
    for tool in ["iperf3", "ping"] {
        n2n_tests::install::ensure_program(tool).unwrap();
    }
    let mut sc = Scenario::new("threads/order");
    let lab = Lab::new("threads");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let hosts: Vec<Netns> = (1..=3)
        .map(|n| lab.host_on(&format!("e{n}"), &wan, &format!("198.18.0.{n}/24")))
        .collect::<Result<_>>()
        .unwrap();
    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let sn_addr = format!("{SN_IP}:{SN_PORT}");
    let edges: Vec<Edge> = (1..=3u16)
        .map(|n| {
            let mut o = EdgeOpts::new("threads", &sn_addr)
                .addr(&format!("10.200.18.{n}/24"))
                .mac(mac(0xa0 + n));
            // A and B with two threads, C as C n2n runs: one.
            o = o.arg("--threads").arg(if n <= 2 { "2" } else { "1" });
            Edge::start(&hosts[usize::from(n) - 1], &format!("edge{n}"), o).unwrap()
        })
        .collect();
    let macs: Vec<String> = (1..=3).map(|n| mac(0xa0 + n)).collect();
    let all: Vec<&str> = macs.iter().map(String::as_str).collect();
    assert!(sn.wait_edges(&all, REG), "{:?}", sn.edge_macs());

    for (from, to) in [(0, "10.200.18.2"), (0, "10.200.18.3"), (1, "10.200.18.3")] {
        assert!(wait_ping(&hosts[from], to, REG), "{from} -> {to}");
        let r = ping(&hosts[from], to, 1472, 3, true).unwrap();
        assert_eq!(r.received, 3, "1472-byte DF pings {from} -> {to}: {r:?}");
    }
    for e in &edges[..2] {
        let names: Vec<String> = thread_ticks(e.pid().unwrap())
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert!(names.iter().any(|n| n == "edge-dp1"), "{names:?}");
    }
    let before: Vec<_> = edges[..2]
        .iter()
        .map(|e| thread_ticks(e.pid().unwrap()))
        .collect();

    // UDP: four streams A→B and four C→A at once; each must arrive in order.
    let _srv_b = iperf3_server(&hosts[1], 5201).unwrap();
    let _srv_a = iperf3_server(&hosts[0], 5202).unwrap();
    let udp = ["-u", "-b", "40M", "-l", "1200", "-P", "4", "-t", "3"];
    let (ab, ca) = std::thread::scope(|s| {
        let ab = s.spawn(|| iperf3_json(&hosts[0], "10.200.18.2", 5201, &udp));
        let ca = s.spawn(|| iperf3_json(&hosts[2], "10.200.18.1", 5202, &udp));
        (ab.join().unwrap(), ca.join().unwrap())
    });
    for (what, v) in [("A->B", &ab), ("C->A", &ca)] {
        let streams = udp_streams(v);
        println!("UDP {what}: (packets, lost, out of order) per stream {streams:?}");
        assert_eq!(streams.len(), 4, "{what}");
        for (i, &(packets, lost, ooo)) in streams.iter().enumerate() {
            assert!(
                packets > 0 && lost < packets,
                "{what} stream {i}: {streams:?}"
            );
            assert_eq!(
                ooo, 0,
                "{what} stream {i} arrived out of order: {streams:?}"
            );
        }
    }

    // TCP: four streams A→B, retransmissions reported and bounded.
    let tcp = iperf3_json(&hosts[0], "10.200.18.2", 5201, &["-P", "4", "-t", "3"]);
    let sent = &tcp["end"]["sum_sent"];
    let bytes = sent["bytes"].as_f64().unwrap();
    let retr = sent["retransmits"].as_u64().unwrap();
    let mbps = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
        / 1e6;
    let segments = (bytes / 1448.0).max(1.0);
    println!(
        "TCP A->B, 4 streams, --threads 2: {mbps:.0} Mbit/s, {retr} retransmissions of ~{segments:.0} segments"
    );
    sc.metric("tcp_mbps", format!("{mbps:.0}"));
    sc.metric("tcp_retransmits", retr);
    assert!(
        (retr as f64) <= segments / 50.0,
        "retransmission storm: {retr} of ~{segments:.0} segments"
    );
    for (i, e) in edges[..2].iter().enumerate() {
        let after = thread_ticks(e.pid().unwrap());
        let busy: Vec<String> = after
            .iter()
            .map(|(name, t)| {
                let t0 = before[i]
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, t)| *t);
                format!("{name} {}", t - t0.min(*t))
            })
            .collect();
        println!(
            "edge{}: CPU ticks per thread during the runs: {busy:?}",
            i + 1
        );
    }
    for e in &edges {
        e.health().unwrap();
    }
    sn.health().unwrap();
}
