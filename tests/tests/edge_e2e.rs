//! End-to-end tests of the `edge` binary with the `supernode` binary in network namespaces:
//! underlay 198.18.0.0/24 on one switch, overlay 10.200.0.0/24 (static) or supernode-assigned.
//!
//! Every test needs root (`require_tools`: loud SKIP, or a failure under `N2N_E2E_REQUIRED=1`),
//! is bounded in time (every wait has a deadline, every command a timeout) and cleans up
//! (namespace and process guards, also when an assertion panics). The tests of this file run
//! one at a time (a lock) so that the throughput figures are not disturbed by each other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use n2n_tests::*;

const SN_IP: &str = "198.18.0.254";
const SN_PORT: u16 = 7654;
const SN_MGMT: u16 = 5645;
const EDGE_MGMT: u16 = 5644;
const KEY: &str = "e2e-secret-key";
const START: Duration = Duration::from_secs(15);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn gate(name: &str) -> bool {
    require_tools(name, &["ip", "ping", "iperf3", "sysctl"])
}

/// Writes to the real stderr (visible without `--nocapture`).
fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

struct Supernode {
    proc: Proc,
    ns: Netns,
}

impl Supernode {
    /// `supernode -f -p 7654 -t 5645 -v [extra]` at 198.18.0.254 on `wan`; waits until its
    /// management port answers.
    fn start(lab: &Lab, wan: &Bridge, extra: &[&str]) -> Supernode {
        let ns = lab.host_on("sn", wan, &format!("{SN_IP}/24")).unwrap();
        let bin = find_binary("supernode").unwrap();
        let bin = bin.to_str().unwrap();
        let port = SN_PORT.to_string();
        let mgmt = SN_MGMT.to_string();
        let mut args = vec![bin, "-f", "-p", &port, "-t", &mgmt, "-v"];
        args.extend_from_slice(extra);
        let proc = ns.spawn("supernode", &args).unwrap();
        let up = wait_until(START, Duration::from_millis(100), || {
            !mgmt_query_timeout(&ns, SN_MGMT, "r 1 communities", Duration::from_millis(300))
                .unwrap_or_default()
                .is_empty()
        });
        if !up {
            proc.dump();
            panic!("supernode did not come up");
        }
        Supernode { proc, ns }
    }

    fn forwarded(&self) -> u64 {
        let rows = mgmt_rows(&mgmt_query(&self.ns, SN_MGMT, "r 1 packetstats").unwrap());
        rows.iter()
            .find(|r| r["type"] == "forward")
            .and_then(|r| r["tx_pkt"].as_u64())
            .expect("forward row in packetstats")
    }

    fn edge_count(&self) -> usize {
        mgmt_rows(&mgmt_query(&self.ns, SN_MGMT, "r 1 edges").unwrap()).len()
    }
}

struct Edge {
    proc: Proc,
    ns: Netns,
    /// Overlay address (static, or read from the TAP after auto-IP).
    ip: String,
    underlay: String,
}

/// Options of one edge.
struct EdgeSpec<'a> {
    community: &'a str,
    /// `Some("10.200.0.1")` = `-a 10.200.0.1/24`; `None` = auto IP.
    ip: Option<&'a str>,
    args: Vec<&'a str>,
    env: Vec<(&'a str, &'a str)>,
}

impl<'a> EdgeSpec<'a> {
    fn new(community: &'a str, ip: Option<&'a str>, args: &[&'a str]) -> Self {
        EdgeSpec {
            community,
            ip,
            args: args.to_vec(),
            env: Vec::new(),
        }
    }
}

impl Edge {
    /// An edge in its own namespace at 198.18.0.`host` on `wan`; waits until it registered.
    fn start(lab: &Lab, wan: &Bridge, role: &str, host: u8, spec: &EdgeSpec<'_>) -> Edge {
        let (proc, ns, underlay) = Edge::spawn(lab, wan, role, host, spec);
        if !proc.wait_for_output("[OK] edge <<< ================ >>> supernode", START) {
            proc.dump();
            panic!("edge {role} did not register");
        }
        let ip = match spec.ip {
            Some(ip) => ip.to_owned(),
            None => {
                let mut got = None;
                wait_until(START, Duration::from_millis(100), || {
                    got = ns.addrs("edge0").ok().and_then(|a| a.first().copied());
                    got.is_some()
                });
                got.unwrap_or_else(|| {
                    proc.dump();
                    panic!("edge {role}: TAP has no address")
                })
                .to_string()
            }
        };
        Edge {
            proc,
            ns,
            ip,
            underlay,
        }
    }

    /// An edge with a static address (`spec.ip`) that is not expected to register.
    fn start_unregistered(
        lab: &Lab,
        wan: &Bridge,
        role: &str,
        host: u8,
        spec: &EdgeSpec<'_>,
    ) -> Edge {
        let (proc, ns, underlay) = Edge::spawn(lab, wan, role, host, spec);
        let ip = spec.ip.expect("a static address").to_owned();
        // The TAP exists once the address is configured.
        let up = wait_until(START, Duration::from_millis(100), || {
            ns.addrs("edge0").is_ok_and(|a| !a.is_empty())
        });
        if !up {
            proc.dump();
            panic!("edge {role}: no TAP");
        }
        Edge {
            proc,
            ns,
            ip,
            underlay,
        }
    }

    fn spawn(
        lab: &Lab,
        wan: &Bridge,
        role: &str,
        host: u8,
        spec: &EdgeSpec<'_>,
    ) -> (Proc, Netns, String) {
        let underlay = format!("198.18.0.{host}");
        let ns = lab.host_on(role, wan, &format!("{underlay}/24")).unwrap();
        let bin = find_binary("edge").unwrap();
        let bin = bin.to_str().unwrap().to_owned();
        let sn = format!("{SN_IP}:{SN_PORT}");
        let mgmt = EDGE_MGMT.to_string();
        let addr = spec.ip.map(|ip| format!("{ip}/24"));
        let mut args: Vec<&str> = vec![
            &bin,
            "-f",
            "-c",
            spec.community,
            "-l",
            &sn,
            "-t",
            &mgmt,
            "-I",
            role,
        ];
        if let Some(a) = &addr {
            args.extend(["-a", a.as_str()]);
        }
        args.extend(spec.args.iter().copied());
        let proc = ns.spawn_env("edge", &args, &spec.env).unwrap();
        (proc, ns, underlay)
    }

    fn mgmt(&self, req: &str) -> Vec<serde_json::Value> {
        mgmt_rows(&mgmt_query(&self.ns, EDGE_MGMT, req).unwrap())
    }

    /// Waits until the peer `peer_ip` is listed with mode `p2p`.
    fn wait_p2p(&self, peer_underlay: &str) -> bool {
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            self.mgmt("r 1 edges").iter().any(|r| {
                r["mode"] == "p2p"
                    && r["sockaddr"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(&format!("{peer_underlay}:")))
            })
        })
    }

    /// Sum of the rows of our `drops` command.
    fn drops(&self) -> (u64, Vec<String>) {
        let rows = self.mgmt("r 1 drops");
        let drops: Vec<&serde_json::Value> = rows.iter().filter(|r| r["type"] == "drop").collect();
        (
            drops.iter().filter_map(|r| r["count"].as_u64()).sum(),
            drops
                .iter()
                .map(|r| format!("{}={}", r["reason"].as_str().unwrap_or("?"), r["count"]))
                .collect(),
        )
    }
}

/// Edges `{prefix}a` on host `host` and `{prefix}b` on host `host + 1`, both in `community`
/// with the same `args`, at 10.200.0.1 / 10.200.0.2 (`static_ip`) or supernode-assigned.
fn edge_pair(
    lab: &Lab,
    wan: &Bridge,
    prefix: &str,
    host: u8,
    community: &str,
    static_ip: bool,
    args: &[&str],
) -> (Edge, Edge) {
    let ip = |addr: &'static str| static_ip.then_some(addr);
    let a = Edge::start(
        lab,
        wan,
        &format!("{prefix}a"),
        host,
        &EdgeSpec::new(community, ip("10.200.0.1"), args),
    );
    let b = Edge::start(
        lab,
        wan,
        &format!("{prefix}b"),
        host + 1,
        &EdgeSpec::new(community, ip("10.200.0.2"), args),
    );
    (a, b)
}

fn ping_ok(from: &Edge, to: &str, size: usize, count: u32, df: bool) -> PingResult {
    let r = ping(&from.ns, to, size, count, df).unwrap();
    if r.received != count {
        from.proc.dump();
    }
    assert_eq!(
        r.received, count,
        "ping {to} -s {size} (df {df}) from {}: {r:?}",
        from.ip
    );
    r
}

/// The first pings may be lost while ARP resolves through the supernode: retry a little.
fn ping_until_ok(from: &Edge, to: &str) -> bool {
    wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        ping(&from.ns, to, 56, 1, false).is_ok_and(|r| r.received == 1)
    })
}

fn iperf(server: &Edge, client: &Edge, server_ip: &str, secs: u32) -> IperfResult {
    let _srv = iperf3_server(&server.ns, 5201).unwrap();
    iperf3_client(
        &client.ns,
        server_ip.parse::<IpAddr>().unwrap(),
        5201,
        secs,
        None,
    )
    .unwrap()
}

/// Supernode and two edges (AES): pings both ways at 56 and 1400 bytes and a full 1500-byte
/// packet with DF (the underlay datagram is fragmented: DF off on the edges' socket); peers go
/// direct and the supernode stops forwarding while iperf3 runs; READY=1 reaches sd_notify;
/// SIGTERM unregisters from the supernode and exits 0.
#[test]
fn two_edges_ping_mtu_iperf_direct() {
    const NAME: &str = "edge_e2e/two_edges_ping_mtu_iperf_direct";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_basic");
    let wan = lab.bridge("wan").unwrap();
    let sn = Supernode::start(&lab, &wan, &[]);

    let notify_path = lab.log_dir().join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let notify_env = notify_path.to_str().unwrap().to_owned();

    let mut spec1 = EdgeSpec::new("e2e", Some("10.200.0.1"), &["-A3", "-k", KEY]);
    spec1.env.push(("NOTIFY_SOCKET", &notify_env));
    let e1 = Edge::start(&lab, &wan, "e1", 1, &spec1);
    let e2 = Edge::start(
        &lab,
        &wan,
        "e2",
        2,
        &EdgeSpec::new("e2e", Some("10.200.0.2"), &["-A3", "-k", KEY]),
    );

    let mut b = [0u8; 512];
    // STATUS= lines ("not registered (trying …)") may come first.
    let mut msg = String::new();
    for _ in 0..20 {
        let n = notify.recv(&mut b).expect("sd_notify message from edge 1");
        msg = String::from_utf8_lossy(&b[..n]).into_owned();
        if !msg.starts_with("STATUS=") {
            break;
        }
    }
    assert!(msg.starts_with("READY=1"), "{msg}");

    assert!(ping_until_ok(&e1, &e2.ip), "first contact e1 -> e2");
    for (a, z) in [(&e1, &e2), (&e2, &e1)] {
        ping_ok(a, &z.ip, 56, 3, false);
        ping_ok(a, &z.ip, 1400, 3, false);
    }
    let full = ping_ok(&e1, &e2.ip, 1472, 3, true);
    sc.metric(
        "mtu1500_rtt_ms",
        format!("{:.3}", full.rtt_avg_ms.unwrap_or(0.0)),
    );

    assert!(e1.wait_p2p(&e2.underlay), "e1 never saw e2 as p2p");
    assert!(e2.wait_p2p(&e1.underlay), "e2 never saw e1 as p2p");
    let r = ping_ok(&e1, &e2.ip, 56, 5, false);
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap_or(0.0)));

    let fwd_before = sn.forwarded();
    let ip = iperf(&e2, &e1, &e2.ip, 3);
    let fwd_after = sn.forwarded();
    sc.metric("mbps", format!("{:.0}", ip.mbps));
    sc.metric("sn_forwarded_during_iperf", fwd_after - fwd_before);
    assert!(ip.mbps > 1.0, "{ip:?}");
    assert!(
        fwd_after - fwd_before < 10,
        "supernode kept forwarding while peers are direct: {fwd_before} -> {fwd_after}"
    );
    let p2p_tx = e1
        .mgmt("r 1 packetstats")
        .iter()
        .find(|r| r["type"] == "p2p")
        .and_then(|r| r["tx_pkt"].as_u64())
        .unwrap();
    assert!(p2p_tx > 1000, "iperf3 traffic must go p2p: {p2p_tx}");

    // SIGTERM: UNREGISTER_SUPER, exit 0, STOPPING=1.
    assert_eq!(sn.edge_count(), 2);
    e1.proc.signal(Signal::SIGTERM).unwrap();
    let st = e1.proc.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", e1.proc.stderr());
    // STATUS= updates may come before it; the last message is STOPPING=1.
    let mut last = String::new();
    while let Ok(n) = notify.recv(&mut b) {
        last = String::from_utf8_lossy(&b[..n]).into_owned();
        if last.starts_with("STOPPING=1") {
            break;
        }
        assert!(last.starts_with("STATUS="), "{last}");
    }
    assert!(last.starts_with("STOPPING=1"), "{last:?}");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || sn
            .edge_count()
            == 1),
        "supernode still lists the stopped edge"
    );
    assert!(e1.proc.stderr().contains("Packet stats:"));
    let _ = std::fs::remove_file(&notify_path);
}

/// Every payload transform, with and without header encryption (`-H`, the supernode locked to
/// a community list naming the communities), some with compression: the edges can ping.
#[test]
fn every_transform_and_header_encryption() {
    const NAME: &str = "edge_e2e/every_transform_and_header_encryption";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let lab = Lab::new("edge_xforms");
    let wan = lab.bridge("wan").unwrap();
    let mut combos: Vec<(String, Vec<&str>)> = Vec::new();
    for a in ["-A1", "-A2", "-A3", "-A4", "-A5", "-A6", "-A7"] {
        for he in [false, true] {
            let mut args = vec![a];
            if a != "-A1" {
                args.extend(["-k", KEY]);
            }
            if he {
                args.push("-H");
            }
            match (a, he) {
                ("-A2", false) => args.push("-z1"),
                ("-A5", true) => args.push("-z2"),
                _ => {}
            }
            let community = format!("x{}{}", &a[2..], if he { "h" } else { "" });
            combos.push((community, args));
        }
    }
    let list = lab.log_dir().join("communities.list");
    let names: Vec<&str> = combos.iter().map(|(c, _)| c.as_str()).collect();
    std::fs::write(&list, names.join("\n") + "\n").unwrap();
    let sn = Supernode::start(&lab, &wan, &["-c", list.to_str().unwrap()]);

    let mut failed = Vec::new();
    for (i, (community, args)) in combos.iter().enumerate() {
        let label = format!("{community} {}", args.join(" ").replace(KEY, "KEY"));
        let mut sc = Scenario::new(&format!("edge_e2e/transform {label}"));
        let host = u8::try_from(10 + 2 * i).unwrap();
        let (a, b) = edge_pair(&lab, &wan, community, host, community, true, args);
        let ok = ping_until_ok(&a, &b.ip);
        let r = ping(&a.ns, &b.ip, 1400, 3, false).unwrap();
        sc.metric("received", format!("{}/3", r.received));
        if let Some(rtt) = r.rtt_avg_ms {
            sc.metric("rtt_ms", format!("{rtt:.3}"));
        }
        if !ok || r.received != 3 {
            a.proc.dump();
            b.proc.dump();
            sc.fail("ping failed");
            failed.push(label);
        }
    }
    assert!(sn.proc.is_running(), "supernode died");
    assert!(failed.is_empty(), "failed combinations: {failed:?}");
}

/// One edge with a wrong key: no traffic gets through, the receiving edge counts drops, and
/// nothing crashes. Checked with AES-CBC (unauthenticated: garbage frames are dropped by the
/// frame checks) and ChaCha20-Poly1305 (authentication failure).
#[test]
fn wrong_key_blocks_traffic_and_counts_drops() {
    const NAME: &str = "edge_e2e/wrong_key_blocks_traffic_and_counts_drops";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let lab = Lab::new("edge_wrongkey");
    let wan = lab.bridge("wan").unwrap();
    let sn = Supernode::start(&lab, &wan, &[]);
    for (i, cipher) in ["-A3", "-A6"].into_iter().enumerate() {
        let mut sc = Scenario::new(&format!("edge_e2e/wrong_key {cipher}"));
        let community = format!("wk{i}");
        let host = u8::try_from(1 + 2 * i).unwrap();
        let a = Edge::start(
            &lab,
            &wan,
            &format!("wk{i}a"),
            host,
            &EdgeSpec::new(&community, Some("10.200.0.1"), &[cipher, "-k", KEY]),
        );
        let b = Edge::start(
            &lab,
            &wan,
            &format!("wk{i}b"),
            host + 1,
            &EdgeSpec::new(
                &community,
                Some("10.200.0.2"),
                &[cipher, "-k", "not-the-key"],
            ),
        );
        let r = ping(&a.ns, &b.ip, 56, 5, false).unwrap();
        let r2 = ping(&b.ns, &a.ip, 56, 3, false).unwrap();
        sc.metric("received", r.received + r2.received);
        assert_eq!(r.received + r2.received, 0, "{r:?} {r2:?}");
        let (da, la) = a.drops();
        let (db, lb) = b.drops();
        sc.metric("drops", da + db);
        assert!(
            da > 0 && db > 0,
            "wrong-key frames must be counted as drops: a {la:?}, b {lb:?}"
        );
        if cipher == "-A6" {
            assert!(
                la.iter()
                    .chain(lb.iter())
                    .any(|l| l.starts_with("payload_decrypt_failed=") && !l.ends_with("=0")),
                "AEAD failures must be named: {la:?} {lb:?}"
            );
        }
        assert!(a.proc.is_running() && b.proc.is_running(), "an edge died");
    }
    assert!(sn.proc.is_running(), "supernode died");
}

/// Edges without `-a` get their address from the supernode (bootstrap before the TAP exists),
/// report it on the management port and can ping each other.
#[test]
fn auto_ip_edges_can_ping() {
    const NAME: &str = "edge_e2e/auto_ip_edges_can_ping";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_autoip");
    let wan = lab.bridge("wan").unwrap();
    let _sn = Supernode::start(&lab, &wan, &[]);
    let (a, b) = edge_pair(&lab, &wan, "", 1, "auto", false, &["-A4", "-k", KEY]);
    assert_ne!(a.ip, b.ip);
    let info = a.mgmt("r 1 info");
    assert_eq!(info[0]["ip4addr"], a.ip.as_str(), "{info:?}");
    let net = |ip: &str| ip.rsplit_once('.').map(|(n, _)| n.to_owned());
    assert_eq!(net(&a.ip), net(&b.ip), "same community, same /24");
    sc.metric("a", &a.ip).metric("b", &b.ip);
    assert!(
        ping_until_ok(&a, &b.ip),
        "auto-IP ping {} -> {}",
        a.ip,
        b.ip
    );
    let r = ping_ok(&b, &a.ip, 56, 3, false);
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap_or(0.0)));
}

/// RTT and throughput through the tunnel vs the raw underlay (veth + bridge), same run, for
/// null, AES and ChaCha20; prints a table. Each row must carry traffic (the numbers depend on
/// the machine and the build profile; run with `--release` for meaningful ones).
#[test]
fn tunnel_vs_veth_rtt_and_throughput() {
    const NAME: &str = "edge_e2e/tunnel_vs_veth";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let lab = Lab::new("edge_perf");
    let wan = lab.bridge("wan").unwrap();
    let _sn = Supernode::start(&lab, &wan, &[]);
    let secs = 3;
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    let mut underlay_done = false;
    for (i, (label, args)) in [
        ("null (-A1)", vec!["-A1"]),
        ("AES (-A3)", vec!["-A3", "-k", KEY]),
        ("ChaCha20 (-A4)", vec!["-A4", "-k", KEY]),
    ]
    .into_iter()
    .enumerate()
    {
        let community = format!("perf{i}");
        let host = u8::try_from(1 + 2 * i).unwrap();
        let (a, b) = edge_pair(&lab, &wan, &format!("p{i}"), host, &community, true, &args);
        if !underlay_done {
            underlay_done = true;
            let r = ping(&a.ns, &b.underlay, 56, 10, false).unwrap();
            assert_eq!(r.received, 10);
            let ip = iperf(&b, &a, &b.underlay, secs);
            rows.push(("raw veth (underlay)".into(), r.rtt_avg_ms.unwrap(), ip.mbps));
            let mut sc = Scenario::new("edge_e2e/perf raw veth");
            sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap()))
                .metric("mbps", format!("{:.0}", ip.mbps));
        }
        let mut sc = Scenario::new(&format!("edge_e2e/perf tunnel {label}"));
        assert!(ping_until_ok(&a, &b.ip));
        assert!(a.wait_p2p(&b.underlay), "{label}: not direct");
        let r = ping_ok(&a, &b.ip, 56, 10, false);
        let ip = iperf(&b, &a, &b.ip, secs);
        assert!(ip.mbps > 1.0, "{label}: {ip:?}");
        sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap()))
            .metric("mbps", format!("{:.0}", ip.mbps));
        rows.push((format!("tunnel {label}"), r.rtt_avg_ms.unwrap(), ip.mbps));
    }
    let base = rows.first().map_or(1.0, |r| r.2).max(1e-9);
    let mut t = String::from(
        "\nedge_e2e: RTT (ping, 56 bytes) and TCP throughput (iperf3, 3 s), same run\n",
    );
    t += &format!(
        "{:<26} {:>9} {:>11} {:>9}\n",
        "path", "RTT ms", "Mbit/s", "of veth"
    );
    for (name, rtt, mbps) in &rows {
        t += &format!(
            "{name:<26} {rtt:>9.3} {mbps:>11.0} {:>8.1}%\n",
            100.0 * mbps / base
        );
    }
    say(&t);
}

/// Killing the supernode does not take the edges down, and a peer that stays direct keeps
/// working (the P2P path does not depend on the supernode while it is fresh).
#[test]
fn direct_path_survives_supernode_loss_briefly() {
    const NAME: &str = "edge_e2e/direct_path_survives_supernode_loss";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_snloss");
    let wan = lab.bridge("wan").unwrap();
    let sn = Supernode::start(&lab, &wan, &[]);
    let (a, b) = edge_pair(&lab, &wan, "", 1, "loss", true, &[]);
    assert!(ping_until_ok(&a, &b.ip));
    assert!(a.wait_p2p(&b.underlay) && b.wait_p2p(&a.underlay));
    let t0 = Instant::now();
    sn.proc.kill().unwrap();
    let r = ping_ok(&a, &b.ip, 56, 5, false);
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap_or(0.0)))
        .metric(
            "after_sn_loss_s",
            format!("{:.1}", t0.elapsed().as_secs_f64()),
        );
    assert!(a.proc.is_running() && b.proc.is_running());
}

/// Removes `/etc/netns/<ns>` (the per-namespace `/etc/hosts` overlay of `ip netns exec`).
struct EtcNetns(std::path::PathBuf);

impl EtcNetns {
    fn hosts(ns: &Netns, text: &str) -> EtcNetns {
        let dir = std::path::Path::new("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), text).unwrap();
        EtcNetns(dir)
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Supernode given by host name (resolved by the edge; an unresolvable first `-l` entry is
/// kept, reported and skipped), and an edge that reaches the supernode over IPv6 (dual-stack
/// main socket, listed by the supernode with its IPv6 socket): both register and can ping
/// each other.
#[test]
fn supernode_by_name_and_over_ipv6() {
    const NAME: &str = "edge_e2e/supernode_by_name_and_over_ipv6";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_names");
    let wan = lab.bridge("wan").unwrap();
    let sn = Supernode::start(&lab, &wan, &[]);
    let enable_v6 = |ns: &Netns, addr: &str| {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "0").unwrap();
        ns.sysctl("net.ipv6.conf.eth0.disable_ipv6", "0").unwrap();
        ns.ip(&["-6", "addr", "add", addr, "dev", "eth0", "nodad"])
            .unwrap();
    };
    enable_v6(&sn.ns, "fd00:18::fe/64");
    // The supernode binds [::]:7654 at start; IPv6 was off then: restart it.
    sn.proc.kill().unwrap();
    let port = SN_PORT.to_string();
    let mgmt = SN_MGMT.to_string();
    let bin = find_binary("supernode").unwrap();
    let sn_proc = sn
        .ns
        .spawn(
            "supernode-v6",
            &[bin.to_str().unwrap(), "-f", "-p", &port, "-t", &mgmt, "-v"],
        )
        .unwrap();
    assert!(wait_until(START, Duration::from_millis(100), || {
        !mgmt_query_timeout(
            &sn.ns,
            SN_MGMT,
            "r 1 communities",
            Duration::from_millis(300),
        )
        .unwrap_or_default()
        .is_empty()
    }));

    // By name: /etc/hosts of the edge's namespace maps the name to the supernode.
    let named_ns = lab.host_on("named", &wan, "198.18.0.1/24").unwrap();
    let _hosts = EtcNetns::hosts(&named_ns, "198.18.0.254 supernode.n2n.test\n");
    let edge_bin = find_binary("edge").unwrap();
    let edge_bin = edge_bin.to_str().unwrap();
    let mgmt_e = EDGE_MGMT.to_string();
    let named = named_ns
        .spawn(
            "edge",
            &[
                edge_bin,
                "-f",
                "-c",
                "names",
                "-l",
                "no-such-host.invalid:7654",
                "-l",
                "supernode.n2n.test:7654",
                "-a",
                "10.200.0.1/24",
                "-t",
                &mgmt_e,
            ],
        )
        .unwrap();
    // Over IPv6.
    let v6_ns = lab.host_on("v6", &wan, "198.18.0.3/24").unwrap();
    enable_v6(&v6_ns, "fd00:18::3/64");
    let v6 = v6_ns
        .spawn(
            "edge",
            &[
                edge_bin,
                "-f",
                "-c",
                "names",
                "-l",
                "[fd00:18::fe]:7654",
                "-a",
                "10.200.0.3/24",
                "-t",
                &mgmt_e,
            ],
        )
        .unwrap();
    for (p, what) in [(&named, "named"), (&v6, "v6")] {
        if !p.wait_for_output("[OK] edge <<< ================ >>> supernode", START) {
            p.dump();
            sn_proc.dump();
            panic!("{what} edge did not register");
        }
    }
    assert!(
        named
            .stderr()
            .contains("supernode.n2n.test:7654 to 198.18.0.254:7654")
    );
    assert!(
        named
            .stderr()
            .contains("fails to resolve supernode host no-such-host.invalid:7654")
    );
    let rows = mgmt_rows(&mgmt_query(&sn.ns, SN_MGMT, "r 1 edges").unwrap());
    let socks: Vec<&str> = rows.iter().filter_map(|r| r["sockaddr"].as_str()).collect();
    assert!(
        socks.iter().any(|s| s.contains("fd00:18::3")),
        "IPv6 edge not listed by its IPv6 socket: {socks:?}"
    );
    sc.metric("edge_sockets", socks.join(" "));

    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        ping(&named_ns, "10.200.0.3", 56, 1, false).is_ok_and(|r| r.received == 1)
    });
    if !ok {
        named.dump();
        v6.dump();
    }
    assert!(ok, "named edge -> IPv6 edge through the supernode");
    let r = ping(&v6_ns, "10.200.0.1", 1400, 3, false).unwrap();
    assert_eq!(r.received, 3, "{r:?}");
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap_or(0.0)));
}

fn uid_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// `-u/-g`: the edge runs as the given user once the TAP is configured and still carries
/// traffic; without `-f` the edge becomes a daemon (the started process exits 0) that answers
/// on the management port and exits on `w … stop`.
#[test]
fn privilege_drop_daemon_and_management_stop() {
    const NAME: &str = "edge_e2e/privilege_drop_daemon_and_management_stop";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_daemon");
    let wan = lab.bridge("wan").unwrap();
    let _sn = Supernode::start(&lab, &wan, &[]);
    let a = Edge::start(
        &lab,
        &wan,
        "a",
        1,
        &EdgeSpec::new(
            "daemon",
            Some("10.200.0.1"),
            &["-u", "65534", "-g", "65534"],
        ),
    );
    assert!(
        a.proc
            .wait_for_output("dropping privileges to uid=65534, gid=65534", START)
    );
    assert_eq!(
        uid_of(a.proc.pid()),
        Some(65534),
        "effective uid of the edge"
    );

    let b_ns = lab.host_on("b", &wan, "198.18.0.2/24").unwrap();
    let edge_bin = find_binary("edge").unwrap();
    let mgmt = EDGE_MGMT.to_string();
    let starter = b_ns
        .spawn(
            "edge-daemon",
            &[
                edge_bin.to_str().unwrap(),
                "-c",
                "daemon",
                "-l",
                "198.18.0.254:7654",
                "-a",
                "10.200.0.2/24",
                "-t",
                &mgmt,
            ],
        )
        .unwrap();
    let st = starter.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(0),
        "the starting process returns once the daemon runs: {}",
        starter.stderr()
    );
    assert!(
        wait_until(START, Duration::from_millis(200), || {
            mgmt_rows(&mgmt_query(&b_ns, EDGE_MGMT, "r 1 info").unwrap_or_default())
                .first()
                .is_some_and(|r| r["ip4addr"] == "10.200.0.2")
        }),
        "daemon does not answer on its management port"
    );
    assert!(
        ping_until_ok(&a, "10.200.0.2"),
        "ping to the daemon's overlay address"
    );
    let r = ping_ok(&a, "10.200.0.2", 56, 3, false);
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap_or(0.0)));

    let pids = || ns_pids(&b_ns);
    assert!(!pids().unwrap_or_default().is_empty(), "daemon process");
    let reply = mgmt_query(&b_ns, EDGE_MGMT, "w 1:1:n2n stop").unwrap();
    assert!(
        reply.iter().any(|l| l.contains("keep_running")),
        "{reply:?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            pids().unwrap_or_default().is_empty()
        }),
        "daemon still running after management stop"
    );
}

/// PIDs of the processes in a namespace (`ip netns pids`).
fn ns_pids(ns: &Netns) -> Option<Vec<u32>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", ns.name()])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
    )
}

/// Packets leaving `ns` over UDP with IP TTL 3 and with TTL 64 (nftables counters of table
/// `inet ttlspray`, installed by [`install_ttl_counters`]).
fn ttl_counts(ns: &Netns) -> (u64, u64) {
    let out = ns
        .exec(&["nft", "list", "table", "inet", "ttlspray"])
        .unwrap_or_default();
    let count = |tag: &str| {
        out.lines()
            .find(|l| l.contains(tag))
            .and_then(|l| l.split("packets ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (count("ip ttl 3"), count("ip ttl 64"))
}

fn install_ttl_counters(ns: &Netns) {
    let rules = "table inet ttlspray {\n chain out { type filter hook output priority 0; \
                 policy accept;\n  meta l4proto udp ip ttl 3 counter\n  \
                 meta l4proto udp ip ttl 64 counter\n }\n}\n";
    let path = std::env::temp_dir().join(format!("n2n-ttlspray-{}.nft", std::process::id()));
    std::fs::write(&path, rules).unwrap();
    ns.exec(&["nft", "-f", path.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_file(&path);
}

/// `-L 3` (behaviour.md §5.4): an edge that first hears of a peer through the supernode sprays
/// 16 REGISTERs with IP TTL 3 at the peer's ports, then puts the socket's TTL back: every
/// later datagram (the pings) leaves with the default TTL 64 and the tunnel works.
#[test]
fn register_ttl_spray_uses_short_ttl() {
    const NAME: &str = "edge_e2e/register_ttl_spray";
    let _g = serial();
    if !require_tools(NAME, &["ip", "ping", "nft"]) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_ttl");
    let wan = lab.bridge("wan").unwrap();
    let _sn = Supernode::start(&lab, &wan, &[]);
    let spec = |ip| EdgeSpec::new("ttl", Some(ip), &["-L", "3"]);
    let a = Edge::start(&lab, &wan, "a", 1, &spec("10.200.0.1"));
    // Counters before b exists: b's gratuitous ARP, relayed by the supernode, is how a
    // first hears of b.
    install_ttl_counters(&a.ns);
    let b = Edge::start(&lab, &wan, "b", 2, &spec("10.200.0.2"));
    install_ttl_counters(&b.ns);
    assert!(ping_until_ok(&a, &b.ip));
    let (short_a, normal_before) = ttl_counts(&a.ns);
    ping_ok(&a, &b.ip, 56, 5, false);
    let (short_after, normal_after) = ttl_counts(&a.ns);
    let (short_b, _) = ttl_counts(&b.ns);
    sc.metric("ttl3_datagrams_a", short_a.to_string())
        .metric("ttl3_datagrams_b", short_b.to_string());
    assert!(
        short_a >= 16,
        "edge a sent {short_a} datagrams with TTL 3 (expected the 16-port spray)"
    );
    assert_eq!(short_after, short_a, "only the spray has TTL 3");
    assert!(
        normal_after >= normal_before + 5,
        "pings after the spray leave with TTL 64 ({normal_before} -> {normal_after})"
    );
}

/// `ping -D` reply times (Unix seconds) in a finished ping's output.
fn ping_reply_times(out: &str) -> Vec<f64> {
    out.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// User/password authentication with our binaries: community file lines from our
/// `n2n-keygen`, edges with `-J` on the command line or `N2N_PASSWORD`.
///
/// * alice, bob, carol (listed users) register and ping each other;
/// * mallory (bob's name, a wrong password) and dave (not listed yet) are refused: nothing of
///   theirs gets through in either direction, their drops are counted, their logs say "user or
///   password not recognised";
/// * no password appears in any log, management reply, or bob's `/proc/PID/cmdline` (`-J`
///   overwritten);
/// * carol's line removed and dave's added, `reload_communities` (management `w`): carol stops
///   reaching alice — measured from the reload to her last echo reply (`ping -D`, 50 ms
///   interval) and must stay below one registration interval (20 s) — while alice and bob go on
///   and dave is admitted without a restart.
#[test]
fn user_password_auth_wrong_password_and_revocation() {
    const NAME: &str = "edge_e2e/user_password_auth_wrong_password_and_revocation";
    let _g = serial();
    if !gate(NAME) {
        return;
    }
    let mut sc = Scenario::new(NAME);
    let lab = Lab::new("edge_userpw");
    let wan = lab.bridge("wan").unwrap();
    let keygen = find_binary("n2n-keygen").unwrap();
    const USERS: [(&str, &str); 4] = [
        ("alice", "alice-Pw-1x"),
        ("bob", "bob-Pw-2y"),
        ("carol", "carol-Pw-3z"),
        ("dave", "dave-Pw-4w"),
    ];
    let pw = |u: &str| USERS.iter().find(|x| x.0 == u).unwrap().1;
    let line = |u: &str| {
        let o = std::process::Command::new(&keygen)
            .args([u, pw(u)])
            .output()
            .unwrap();
        assert!(o.status.success(), "n2n-keygen {u}");
        String::from_utf8(o.stdout).unwrap().trim_end().to_owned()
    };
    let file = lab.log_dir().join("community.list");
    let write_list = |names: &[&str]| {
        let mut t = String::from("# user/password community\nrocks\n");
        for n in names {
            t.push_str(&line(n));
            t.push('\n');
        }
        std::fs::write(&file, t).unwrap();
    };
    write_list(&["alice", "bob", "carol"]);
    let sn = Supernode::start(&lab, &wan, &["-c", file.to_str().unwrap()]);
    let cipher = ["-A4", "-k", KEY];
    let by_env = |ip: &'static str, user: &'static str| EdgeSpec {
        community: "rocks",
        ip: Some(ip),
        args: cipher.to_vec(),
        env: vec![("N2N_PASSWORD", pw(user))],
    };
    let alice = Edge::start(&lab, &wan, "alice", 1, &by_env("10.200.0.1", "alice"));
    let mut bob_args = cipher.to_vec();
    bob_args.extend(["-J", pw("bob")]);
    let bob = Edge::start(
        &lab,
        &wan,
        "bob",
        2,
        &EdgeSpec::new("rocks", Some("10.200.0.2"), &bob_args),
    );
    let carol = Edge::start(&lab, &wan, "carol", 3, &by_env("10.200.0.3", "carol"));
    assert!(ping_until_ok(&alice, &bob.ip), "alice -> bob");
    ping_ok(&alice, &bob.ip, 56, 3, false);
    ping_ok(&bob, &alice.ip, 1400, 3, false);
    assert!(ping_until_ok(&carol, &alice.ip), "carol -> alice");
    assert!(ping_until_ok(&carol, &bob.ip), "carol -> bob");

    // Refused: a wrong password for bob's name, and a user not (yet) listed.
    let mut m_args = cipher.to_vec();
    m_args.extend(["-I", "bob", "-J", "wrong-password"]);
    let mallory = Edge::start_unregistered(
        &lab,
        &wan,
        "mallory",
        4,
        &EdgeSpec::new("rocks", Some("10.200.0.4"), &m_args),
    );
    let dave = Edge::start_unregistered(&lab, &wan, "dave", 5, &by_env("10.200.0.5", "dave"));
    for e in [&mallory, &dave] {
        assert!(
            e.proc
                .wait_for_output("user or password not recognised", START),
            "refusal logged"
        );
    }
    let r1 = ping(&mallory.ns, &alice.ip, 56, 3, false).unwrap();
    let r2 = ping(&alice.ns, &mallory.ip, 56, 3, false).unwrap();
    let r3 = ping(&dave.ns, &bob.ip, 56, 2, false).unwrap();
    sc.metric("refused_received", r1.received + r2.received + r3.received);
    assert_eq!(
        r1.received + r2.received + r3.received,
        0,
        "{r1:?} {r2:?} {r3:?}"
    );
    let (dm, lm) = mallory.drops();
    sc.metric("refused_edge_drops", dm);
    assert!(dm > 0, "mallory's frames are counted drops: {lm:?}");
    assert!(
        lm.iter()
            .any(|l| l.starts_with("not_registered=") && !l.ends_with("=0")),
        "{lm:?}"
    );

    // The passwords are nowhere to be seen.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", bob.proc.pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("-J"), "{cmdline}");
    assert!(
        !cmdline.contains(pw("bob")),
        "ps shows the password: {cmdline}"
    );
    let mut shown = String::new();
    for e in [&alice, &bob, &carol, &mallory, &dave] {
        for req in [
            "r 1 info",
            "r 1 edges",
            "r 1 supernodes",
            "r 1 packetstats",
            "r 1 drops",
            "r 1 timestamps",
            "r 1 communities",
            "",
        ] {
            shown.push_str(
                &mgmt_query(&e.ns, EDGE_MGMT, req)
                    .unwrap_or_default()
                    .join("\n"),
            );
        }
        shown.push_str(&e.proc.stdout());
        shown.push_str(&e.proc.stderr());
    }
    for req in ["r 1 edges", "r 1 communities", "r 1 packetstats", ""] {
        shown.push_str(
            &mgmt_query(&sn.ns, SN_MGMT, req)
                .unwrap_or_default()
                .join("\n"),
        );
    }
    shown.push_str(&sn.proc.stdout());
    shown.push_str(&sn.proc.stderr());
    for (u, p) in USERS {
        assert!(!shown.contains(p), "{u}'s password shown");
    }
    assert!(shown.contains("alice"), "the logs and replies were read");

    // Revocation: carol pings alice every 50 ms while her line is removed.
    let bg = carol
        .ns
        .spawn(
            "ping",
            &[
                "ping", "-n", "-D", "-i", "0.05", "-W", "1", "-w", "12", &alice.ip,
            ],
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    write_list(&["alice", "bob", "dave"]);
    let t_reload = unix_now();
    let reply = mgmt_query(&sn.ns, SN_MGMT, "w 1:1:n2n reload_communities")
        .unwrap()
        .join("\n");
    assert!(!reply.contains("error"), "{reply}");
    let t_recovered = {
        let ok = ping_until_ok(&alice, &bob.ip);
        assert!(ok, "alice -> bob after the reload");
        unix_now()
    };
    assert!(
        bg.wait_timeout(Duration::from_secs(20)).unwrap().is_some(),
        "background ping ends"
    );
    let times = ping_reply_times(&bg.stdout());
    let before = times.iter().filter(|t| **t < t_reload).count();
    let last_after = times
        .iter()
        .copied()
        .filter(|t| *t >= t_reload)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    let revoke_ms = last_after.map_or(0.0, |t| (t - t_reload) * 1000.0);
    let replies_after = times.iter().filter(|t| **t >= t_reload).count();
    say(&format!(
        "{NAME}: carol's echo replies: {before} before the reload, {replies_after} after; \
         last one {revoke_ms:.0} ms after it; alice -> bob ok again {:.0} ms after it\n",
        (t_recovered - t_reload) * 1000.0
    ));
    sc.metric("carol_replies_before_reload", before);
    sc.metric("carol_replies_after_reload", replies_after);
    sc.metric("revocation_ms", format!("{revoke_ms:.0}"));
    sc.metric(
        "others_recovered_ms",
        format!("{:.0}", (t_recovered - t_reload) * 1000.0),
    );
    assert!(
        before > 20,
        "carol reached alice before the reload: {before}"
    );
    assert!(revoke_ms < 20_000.0, "revocation took {revoke_ms} ms");
    // Later on: carol gets nothing through in either direction, dave is in.
    assert!(
        carol
            .proc
            .wait_for_output("user or password not recognised", START)
    );
    let r = ping(&carol.ns, &alice.ip, 56, 3, false).unwrap();
    let r2 = ping(&bob.ns, &carol.ip, 56, 3, false).unwrap();
    assert_eq!(r.received + r2.received, 0, "{r:?} {r2:?}");
    assert!(
        dave.proc.wait_for_output(
            "[OK] edge <<< ================ >>> supernode",
            Duration::from_secs(30)
        ),
        "dave admitted without a restart"
    );
    assert!(ping_until_ok(&dave, &alice.ip), "dave -> alice");
    ping_ok(&bob, &dave.ip, 56, 3, false);
    ping_ok(&alice, &bob.ip, 56, 3, false);
    for e in [&alice, &bob, &carol, &mallory, &dave] {
        assert!(e.proc.is_running(), "an edge died");
    }
    assert!(sn.proc.is_running(), "supernode died");
}
