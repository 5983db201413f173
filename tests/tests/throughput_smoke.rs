//! The throughput harness (`n2n-throughput`, `n2n_tests::perf`) end to end.
//!
//! * `raw_veth_baseline`, `direct_filter_*`, `harness_*_fake_*`: run now; they prove the
//!   harness's own plumbing (namespaces, iperf3/ping, nftables filter, waiting for the tunnel,
//!   CPU/RSS metering, failure reporting, clean-up) with system tools and stand-in edges.
//! * `quick_smoke_through_real_binaries`: `--quick` through the real edge and supernode;
//!   run through the real release binaries.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use n2n_tests::perf::{self, PerfLab};
use n2n_tests::*;
use serde_json::Value;

/// Harness runs measure throughput: one at a time, so they do not skew each other.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scratch(test: &str) -> PathBuf {
    let d = target_dir()
        .join("n2n-e2e")
        .join("throughput-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Output of one bounded harness run.
struct HarnessRun {
    pid: u32,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    json: Option<Value>,
    elapsed: Duration,
}

/// Runs `n2n-throughput <args> --json <dir>/report.json` with extra environment, killing it
/// (by PID) after `limit`.
fn harness(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> HarnessRun {
    let json_path = dir.join("report.json");
    let (out_path, err_path) = (dir.join("harness.stdout"), dir.join("harness.stderr"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_n2n-throughput"));
    cmd.args(args)
        .arg("--json")
        .arg(&json_path)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(30) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "n2n-throughput {args:?} did not finish within {limit:?} (killed); stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = HarnessRun {
        pid,
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        json: std::fs::read_to_string(&json_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok()),
        elapsed: start.elapsed(),
    };
    eprintln!(
        "----- n2n-throughput {args:?}: {} in {:.1} s\n{}\n{}",
        run.status,
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    run
}

/// No namespace of the harness process (`n2nt-<pid>-…`) is left.
fn assert_no_namespaces_of(pid: u32) {
    let prefix = format!("{NS_PREFIX}{pid}-");
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

/// Every PID written to `pid_file` by a stand-in is gone.
fn assert_pids_gone(pid_file: &Path) {
    let text = std::fs::read_to_string(pid_file).unwrap_or_default();
    let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(!pids.is_empty(), "the stand-ins never started");
    for pid in pids {
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "stand-in pid {pid} still running");
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Checks the baseline part of a report: positive throughput, packets/s, RTT, all pings back.
fn assert_baseline(j: &Value) {
    let b = &j["baseline"];
    assert!(b["error"].is_null(), "baseline error: {}", b["error"]);
    assert!(f(&b["tcp_mbps"]["median"]) > 0.0, "{b}");
    assert!(f(&b["udp"]["rx_pps_median"]) > 0.0, "{b}");
    assert!(f(&b["rtt_ms"]) > 0.0, "{b}");
    assert_eq!(b["ping"]["received"], b["ping"]["sent"], "{b}");
}

/// The raw veth baseline through the harness binary: TCP, small-packet UDP, ping between the
/// edge namespaces' underlay addresses; table on stdout, JSON written.
#[test]
fn raw_veth_baseline() {
    if !require_tools("throughput/raw_veth_baseline", &["ip", "nft", "iperf3"]) {
        return;
    }
    let _g = serial();
    let mut sc = Scenario::new("throughput/raw_veth_baseline");
    let dir = scratch("baseline");
    let run = harness(
        &dir,
        &["--baseline-only", "--quick", "--runs", "2"],
        &[],
        Duration::from_secs(120),
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stdout.contains("raw veth (underlay)"), "{}", run.stdout);
    let j = run.json.expect("JSON report");
    assert_baseline(&j);
    assert_eq!(j["ok"], true);
    assert_eq!(j["tunnel"].as_array().map(Vec::len), Some(0));
    let b = &j["baseline"];
    assert_eq!(b["tcp_mbps"]["runs"].as_array().map(Vec::len), Some(2));
    assert_eq!(b["udp"]["runs"].as_array().map(Vec::len), Some(2));
    assert_eq!(b["udp"]["payload_bytes"], 64);
    // nothing but TCP crosses the edges during the TCP runs: no UDP receive-buffer drops
    for who in ["edge_a", "edge_b"] {
        assert_eq!(b["rcvbuf_errors_delta"]["during_tcp"][who], 0, "{b}");
        assert!(b["rcvbuf_errors_delta"]["during_udp"][who].is_u64(), "{b}");
    }
    sc.metric("tcp_mbps", format!("{:.0}", f(&b["tcp_mbps"]["median"])));
    sc.metric(
        "udp_kpps",
        format!("{:.1}", f(&b["udp"]["rx_pps_median"]) / 1e3),
    );
    sc.metric("rtt_ms", format!("{:.3}", f(&b["rtt_ms"])));
    assert_no_namespaces_of(run.pid);
}

/// The relayed-mode filter drops UDP between the two edges (both ways, on input, so sending
/// does not fail) and counts what was sent, while
/// the supernode stays reachable over UDP and the edges still reach each other over ICMP; the
/// P2P variant only counts; removing it restores direct UDP.
#[test]
fn direct_filter_blocks_only_edge_to_edge_udp() {
    if !require_tools("throughput/direct_filter", &["ip", "nft"]) {
        return;
    }
    let _sc = Scenario::new("throughput/direct_filter");
    let lab = PerfLab::new("thr_filter").unwrap();
    let sa = |ip: std::net::Ipv4Addr, port| SocketAddr::new(IpAddr::V4(ip), port);
    let echo_b = UdpEchoServer::start(&lab.b, sa(perf::EDGE_B_IP, 7000)).unwrap();
    let echo_a = UdpEchoServer::start(&lab.a, sa(perf::EDGE_A_IP, 7000)).unwrap();
    let echo_sn = UdpEchoServer::start(&lab.sn, sa(perf::SN_IP, 7000)).unwrap();
    let t = Duration::from_millis(1500);
    let a_any = sa(std::net::Ipv4Addr::UNSPECIFIED, 0);

    lab.install_direct_filter(true).unwrap();
    let to_b = udp_exchange(&lab.a, a_any, echo_b.local_addr(), b"x", t);
    assert!(
        matches!(to_b, Err(Error::Timeout { .. })),
        "A->B UDP passed: {to_b:?}"
    );
    let to_a = udp_exchange(&lab.b, a_any, echo_a.local_addr(), b"x", t);
    assert!(
        matches!(to_a, Err(Error::Timeout { .. })),
        "B->A UDP passed: {to_a:?}"
    );
    assert!(echo_b.seen().is_empty() && echo_a.seen().is_empty());
    for ns in [&lab.a, &lab.b] {
        udp_exchange(ns, a_any, echo_sn.local_addr(), b"sn", t).unwrap();
    }
    let p = ping(&lab.a, &perf::EDGE_B_IP.to_string(), 56, 2, false).unwrap();
    assert_eq!(p.received, 2, "{p:?}");
    let sent = lab.direct_udp_packets().unwrap();
    assert!(sent >= 2, "direct packets not counted: {sent}");

    lab.install_direct_filter(false).unwrap(); // replaces the table, counters restart
    assert_eq!(lab.direct_udp_packets().unwrap(), 0);
    udp_exchange(&lab.a, a_any, echo_b.local_addr(), b"y", t).unwrap();
    let counted = lab.direct_udp_packets().unwrap();
    assert!(counted >= 2, "request + reply should be counted: {counted}");

    lab.remove_direct_filter();
    assert!(lab.direct_udp_packets().is_err(), "table still present");
    udp_exchange(&lab.b, a_any, echo_a.local_addr(), b"z", t).unwrap();
}

/// The whole tunnel path of the harness with stand-ins: the "edge" on side A links the two
/// edge namespaces with a veth pair carrying the overlay addresses (edge B's stand-in just
/// waits), the "supernode" waits. Every row must be measured (throughput, CPU, RSS), and the
/// stand-ins must be gone afterwards.
#[test]
fn harness_measures_a_fake_tunnel() {
    if !require_tools("throughput/fake_tunnel", &["ip", "nft", "iperf3"]) {
        return;
    }
    let _g = serial();
    let mut sc = Scenario::new("throughput/fake_tunnel");
    let dir = scratch("fake_tunnel");
    let pids = dir.join("pids");
    // `ip netns exec` and `env` exec, so the parent of the stand-in is the harness itself.
    let edge = write_script(
        &dir,
        "fake-edge",
        r#"echo $$ >> "$FAKE_PIDS"
case "$*" in
*10.200.0.1/24*)
    B=$(ls /run/netns | grep -E "^n2nt-$PPID-[0-9]+-throughput-edge_b$" | head -n 1)
    [ -n "$B" ] || { echo "fake-edge: no edge_b namespace" >&2; exit 2; }
    ip link del n2n0 2>/dev/null
    ip link add n2n0 type veth peer name n2n0 netns "$B" || exit 2
    ip addr add 10.200.0.1/24 dev n2n0 && ip link set n2n0 up || exit 2
    ip -n "$B" addr add 10.200.0.2/24 dev n2n0 && ip -n "$B" link set n2n0 up || exit 2
    ;;
esac
exec sleep 300
"#,
    );
    let sn = write_script(
        &dir,
        "fake-sn",
        "echo $$ >> \"$FAKE_PIDS\"\nexec sleep 300\n",
    );
    let run = harness(
        &dir,
        &["--quick", "--ciphers", "null"],
        &[
            ("N2N_BIN_EDGE", edge.to_str().unwrap()),
            ("N2N_BIN_SUPERNODE", sn.to_str().unwrap()),
            ("FAKE_PIDS", pids.to_str().unwrap()),
        ],
        Duration::from_secs(180),
    );
    assert!(run.status.success(), "{}", run.stderr);
    let j = run.json.expect("JSON report");
    assert_baseline(&j);
    let rows = j["tunnel"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["null p2p", "null relayed"]);
    for r in rows {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["cipher_flag"], "-A1");
        assert!(f(&r["tcp_mbps"]["median"]) > 0.0, "{r}");
        assert!(f(&r["tcp_ratio_to_raw"]) > 0.0, "{r}");
        assert!(f(&r["udp"]["rx_pps_median"]) > 0.0, "{r}");
        assert!(r["added_rtt_ms"].is_number(), "{r}");
        assert!(r["added_rtt_median_ms"].is_number(), "{r}");
        for who in ["edge_a", "edge_b", "supernode"] {
            // sleep(1) uses no CPU but has a resident set
            assert!(f(&r["cpu_pct_during_tcp"][who]) >= 0.0, "{r}");
            assert!(f(&r["peak_rss_kib"][who]) > 0.0, "{r}");
        }
        // the veth "tunnel" bypasses the underlay: no direct edge-to-edge UDP at all
        assert_eq!(r["direct_udp_packets"], 0, "{r}");
        assert!(
            r["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().starts_with("tunnel up after")),
            "{r}"
        );
    }
    assert!(
        run.stdout.contains("null p2p") && run.stdout.contains("null relayed"),
        "{}",
        run.stdout
    );
    sc.metric(
        "fake_tunnel_mbps",
        format!("{:.0}", f(&rows[0]["tcp_mbps"]["median"])),
    );
    assert_no_namespaces_of(run.pid);
    assert_pids_gone(&pids);
}

/// Failures are reported, bounded and cleaned up: the P2P stand-in edges never bring a tunnel
/// up (the harness must give up after `--up-timeout`), the relayed ones exit at once with a
/// message (the harness must report it right away, with that message).
#[test]
fn harness_reports_fake_edges_that_fail() {
    if !require_tools("throughput/fake_failures", &["ip", "nft", "iperf3"]) {
        return;
    }
    let _g = serial();
    let _sc = Scenario::new("throughput/fake_failures");
    let dir = scratch("fake_failures");
    let pids = dir.join("pids");
    let edge = write_script(
        &dir,
        "fake-edge",
        r#"echo $$ >> "$FAKE_PIDS"
case "$*" in
*-S1*) echo "fake edge: cannot reach the supernode" >&2; exit 3 ;;
esac
exec sleep 300
"#,
    );
    let sn = write_script(
        &dir,
        "fake-sn",
        "echo $$ >> \"$FAKE_PIDS\"\nexec sleep 300\n",
    );
    let run = harness(
        &dir,
        &["--quick", "--ciphers", "null", "--up-timeout", "3"],
        &[
            ("N2N_BIN_EDGE", edge.to_str().unwrap()),
            ("N2N_BIN_SUPERNODE", sn.to_str().unwrap()),
            ("FAKE_PIDS", pids.to_str().unwrap()),
        ],
        Duration::from_secs(150),
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let j = run.json.expect("JSON report");
    assert_eq!(j["ok"], false);
    assert_baseline(&j);
    let rows = j["tunnel"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let p2p = rows[0]["error"].as_str().unwrap();
    assert!(
        p2p.contains("timed out after 3s") && p2p.contains("no ping reply from 10.200.0.2"),
        "{p2p}"
    );
    let relayed = rows[1]["error"].as_str().unwrap();
    assert!(
        relayed.contains("exited (exit status: 3)")
            && relayed.contains("fake edge: cannot reach the supernode"),
        "{relayed}"
    );
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    // baseline (~10 s) + supernode wait (3 s) + up-timeout (3 s) + set-up: well under a minute
    assert!(run.elapsed < Duration::from_secs(60), "{:?}", run.elapsed);
    assert_no_namespaces_of(run.pid);
    assert_pids_gone(&pids);
}

/// `--quick` through the real release edge and supernode: positive raw throughput and, for
/// null and AES, P2P and relayed, a positive tunnel throughput.
#[test]
fn quick_smoke_through_real_binaries() {
    if !require_tools("throughput/quick_smoke", &["ip", "nft", "iperf3"]) {
        return;
    }
    let _g = serial();
    let mut sc = Scenario::new("throughput/quick_smoke");
    let dir = scratch("quick_smoke");
    // includes `cargo build --release` of edge and supernode when they are stale
    let run = harness(&dir, &["--quick"], &[], Duration::from_secs(45 * 60));
    let j = run.json.expect("JSON report");
    assert_baseline(&j);
    assert!(j["fatal"].is_null(), "{}", j["fatal"]);
    assert!(run.stdout.contains("raw veth (underlay)"), "{}", run.stdout);
    let rows = j["tunnel"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["null p2p", "null relayed", "aes p2p", "aes relayed"]
    );
    for r in rows {
        let name = r["name"].as_str().unwrap();
        assert!(r["error"].is_null(), "{name}: {}", r["error"]);
        let mbps = f(&r["tcp_mbps"]["median"]);
        assert!(mbps > 0.0, "{name}: {r}");
        assert!(run.stdout.contains(name), "{}", run.stdout);
        sc.metric(
            &format!("{}_mbps", name.replace(' ', "_")),
            format!("{mbps:.0}"),
        );
    }
    assert!(run.status.success(), "{}", run.stderr);
    assert_no_namespaces_of(run.pid);
}
