//! Self-tests of the topology helpers, using only system tools (no n2n binaries).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use n2n_tests::*;

const T: Duration = Duration::from_secs(5);

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn ns_list() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (a) Two hosts on an underlay switch reach each other; MTU and link state are effective.
#[test]
fn bridge_ping_and_mtu() {
    if !require_root("topology/bridge_ping_and_mtu") {
        return;
    }
    let mut sc = Scenario::new("topology/bridge_ping_and_mtu");
    let lab = Lab::new("bridge_ping");
    let wan = lab.bridge("sw").unwrap();
    let a = lab.netns("a").unwrap();
    let b = lab.netns("b").unwrap();
    wan.attach(&a, "eth0", Some("198.18.0.1/24")).unwrap();
    wan.attach(&b, "eth0", Some("198.18.0.2/24")).unwrap();
    assert_eq!(a.addrs("eth0").unwrap(), vec![Ipv4Addr::new(198, 18, 0, 1)]);

    let r = ping(&a, "198.18.0.2", 56, 3, false).unwrap();
    assert_eq!((r.sent, r.received), (3, 3), "{r:?}");
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap()));

    // An address nobody has: no replies (the helper can report failure).
    let r = ping(&a, "198.18.0.99", 56, 2, false).unwrap();
    assert_eq!(r.received, 0, "{r:?}");

    wan.set_mtu(1400).unwrap();
    assert_eq!(a.mtu("eth0").unwrap(), 1400);
    assert_eq!(wan.netns().mtu("br0").unwrap(), 1400);
    // 1372 + 8 (ICMP) + 20 (IP) = 1400 fits; 1373 with DF does not.
    let fits = ping(&a, "198.18.0.2", 1372, 2, true).unwrap();
    assert_eq!(fits.received, 2, "{fits:?}");
    let too_big = ping(&a, "198.18.0.2", 1373, 2, true).unwrap();
    assert_eq!(too_big.received, 0, "{too_big:?}");
    sc.metric("mtu", 1400);

    // Pulling the cable cuts the link; re-plugging restores it.
    wan.set_link(&b, "eth0", false).unwrap();
    assert_eq!(ping(&a, "198.18.0.2", 56, 2, false).unwrap().received, 0);
    wan.set_link(&b, "eth0", true).unwrap();
    assert!(wait_until(T, Duration::from_millis(100), || {
        ping(&a, "198.18.0.2", 56, 1, false).unwrap().received == 1
    }));
}

/// (b) Two hosts, each behind its own endpoint-independent NAT, reach a public server over UDP;
/// the server sees each router's WAN address (with the inside port preserved), and unsolicited
/// traffic from another public endpoint does not get through.
#[test]
fn nat_eim_udp() {
    if !require_root("topology/nat_eim_udp") {
        return;
    }
    let mut sc = Scenario::new("topology/nat_eim_udp");
    let lab = Lab::new("nat_eim");
    let wan = lab.bridge("wan").unwrap();
    let server = lab.host_on("server", &wan, "198.18.0.10/24").unwrap();
    let echo = UdpEchoServer::start(&server, sa("0.0.0.0", 3478)).unwrap();
    let server_addr = sa("198.18.0.10", 3478);

    let r1 = lab
        .nat_router(
            "r1",
            NatKind::EndpointIndependent,
            &wan,
            "198.18.0.1/24",
            "198.19.1.1/24",
        )
        .unwrap();
    let r2 = lab
        .nat_router(
            "r2",
            NatKind::EndpointIndependent,
            &wan,
            "198.18.0.2/24",
            "198.19.2.1/24",
        )
        .unwrap();
    let h1 = lab.host_behind("h1", &r1, "198.19.1.2/24").unwrap();
    let h2 = lab.host_behind("h2", &r2, "198.19.2.2/24").unwrap();

    for (host, router, port) in [(&h1, &r1, 40001u16), (&h2, &r2, 40002)] {
        let sock = host.udp_socket(sa("0.0.0.0", port)).unwrap();
        let me = udp_whoami(&sock, server_addr, T).unwrap();
        assert_eq!(
            me,
            SocketAddr::from((router.wan_ip(), port)),
            "mapping of {port}"
        );
        let reply = udp_exchange(host, sa("0.0.0.0", 0), server_addr, b"x", T).unwrap();
        assert!(reply.starts_with(b"seen 198.18.0."), "{reply:?}");
    }
    let seen = echo.distinct_sources();
    for want in [
        SocketAddrV4::new(r1.wan_ip(), 40001),
        SocketAddrV4::new(r2.wan_ip(), 40002),
    ] {
        assert!(seen.contains(&want), "server saw {seen:?}, not {want}");
    }
    assert!(
        !seen.iter().any(|a| a.ip().octets()[1] == 19),
        "an inside address leaked: {seen:?}"
    );

    // Filtering: a different public endpoint cannot reach h1 through its mapping.
    let h1_sock = h1.udp_socket(sa("0.0.0.0", 40011)).unwrap();
    assert_eq!(
        udp_whoami(&h1_sock, server_addr, T).unwrap(),
        SocketAddr::from((r1.wan_ip(), 40011))
    );
    let stranger = server.udp_socket(sa("0.0.0.0", 5555)).unwrap();
    stranger
        .send_to(b"unsolicited", SocketAddr::from((r1.wan_ip(), 40011)))
        .unwrap();
    h1_sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        h1_sock.recv_from(&mut buf).is_err(),
        "unsolicited packet got through the NAT"
    );
    sc.metric("mapping", "EIM, port kept");
}

/// Sends from one inside socket to two destinations; returns the two external ports seen by the
/// servers.
fn ports_towards_two_destinations(kind: NatKind) -> (u16, u16) {
    let lab = Lab::new(&format!("nat_{kind:?}"));
    let wan = lab.bridge("wan").unwrap();
    let server = lab.netns("server").unwrap();
    wan.attach(&server, "eth0", Some("198.18.0.10/24")).unwrap();
    let s1 = UdpEchoServer::start(&server, sa("0.0.0.0", 3478)).unwrap();
    let s2 = UdpEchoServer::start(&server, sa("0.0.0.0", 3479)).unwrap();
    let r = lab
        .nat_router("r", kind, &wan, "198.18.0.1/24", "198.19.1.1/24")
        .unwrap();
    let h = lab.netns("h").unwrap();
    r.attach(&h, "eth0", "198.19.1.2/24").unwrap();
    let sock = h.udp_socket(sa("0.0.0.0", 40000)).unwrap();
    let a = udp_whoami(&sock, sa("198.18.0.10", 3478), T).unwrap();
    let b = udp_whoami(&sock, sa("198.18.0.10", 3479), T).unwrap();
    // Checked from the server side as well:
    let (seen1, seen2) = (s1.distinct_sources(), s2.distinct_sources());
    assert_eq!(seen1.len(), 1, "{seen1:?}");
    assert_eq!(seen2.len(), 1, "{seen2:?}");
    let (p1, p2) = (seen1[0].port(), seen2[0].port());
    assert_eq!((a.port(), b.port()), (p1, p2));
    assert_eq!((*seen1[0].ip(), *seen2[0].ip()), (r.wan_ip(), r.wan_ip()));
    (p1, p2)
}

/// (c) With the symmetric router the same inside socket appears with a different external port
/// per destination; with the EIM router (same procedure) it keeps one port.
#[test]
fn nat_symmetric_vs_eim() {
    if !require_root("topology/nat_symmetric_vs_eim") {
        return;
    }
    let mut sc = Scenario::new("topology/nat_symmetric_vs_eim");
    let (e1, e2) = ports_towards_two_destinations(NatKind::EndpointIndependent);
    assert_eq!((e1, e2), (40000, 40000), "EIM must keep one mapping");
    let (s1, s2) = ports_towards_two_destinations(NatKind::Symmetric);
    assert_ne!(s1, s2, "symmetric NAT must use a new port per destination");
    sc.metric("eim_ports", format!("{e1}/{e2}"))
        .metric("sym_ports", format!("{s1}/{s2}"));
}

/// (d) Guards delete every namespace and kill the processes, also when a panic unwinds through
/// the guarded scope; a process ignoring SIGTERM is SIGKILLed.
#[test]
fn cleanup_after_drop_and_panic() {
    if !require_root("topology/cleanup_after_drop_and_panic") {
        return;
    }
    let mut sc = Scenario::new("topology/cleanup_after_drop_and_panic");
    let made: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let pids: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    // Normal scope: everything dropped at the end.
    {
        let lab = Lab::new("cleanup");
        let wan = lab.bridge("wan").unwrap();
        let r = lab
            .nat_router(
                "r",
                NatKind::Symmetric,
                &wan,
                "198.18.0.1/24",
                "198.19.1.1/24",
            )
            .unwrap();
        let h = lab.netns("h").unwrap();
        r.attach(&h, "eth0", "198.19.1.2/24").unwrap();
        let p = h.spawn("sleeper", &["sleep", "60"]).unwrap();
        // A process whose guard is leaked: the namespace guard still kills it.
        let leaked = h.spawn("leaked", &["sleep", "60"]).unwrap();
        pids.lock().unwrap().extend([p.pid(), leaked.pid()]);
        std::mem::forget(leaked);
        let list = ns_list();
        for n in [wan.netns().name(), r.netns().name(), h.name()] {
            assert!(list.contains(n), "{n} missing from {list}");
            made.lock().unwrap().push(n.to_string());
        }
    }
    // Panicking scope.
    let res = std::panic::catch_unwind(|| {
        let lab = Lab::new("cleanup_panic");
        let a = lab.netns("a").unwrap();
        let b = lab.netns("b").unwrap();
        veth(&a, "v0", &b, "v0").unwrap();
        let p = a
            .spawn("stubborn", &["sh", "-c", "trap '' TERM; sleep 60"])
            .unwrap();
        pids.lock().unwrap().push(p.pid());
        made.lock()
            .unwrap()
            .extend([a.name().to_string(), b.name().to_string()]);
        panic!("deliberate panic inside a guarded scope");
    });
    assert!(res.is_err());

    let list = ns_list();
    let made = made.into_inner().unwrap();
    assert_eq!(made.len(), 5);
    for n in &made {
        assert!(
            !list.contains(n.as_str()),
            "namespace {n} left behind: {list}"
        );
    }
    for pid in pids.into_inner().unwrap() {
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmd.starts_with("sleep"), "pid {pid} ({cmd:?}) still alive");
    }
    sc.metric("namespaces_checked", made.len());
}

/// Proc: output capture, bounded waits, SIGTERM/SIGKILL.
#[test]
fn proc_lifecycle() {
    if !require_root("topology/proc_lifecycle") {
        return;
    }
    let lab = Lab::new("proc");
    let ns = lab.netns("n").unwrap();
    let p = ns
        .spawn(
            "talker",
            &["sh", "-c", "echo hello; echo oops >&2; exec sleep 30"],
        )
        .unwrap();
    assert!(p.wait_for_output("hello", T));
    assert!(p.wait_for_output("oops", T));
    assert!(!p.wait_for_output("never printed", Duration::from_millis(200)));
    assert!(p.is_running());
    assert_eq!(p.wait_timeout(Duration::from_millis(100)).unwrap(), None);
    let t0 = Instant::now();
    let st = p.kill().unwrap();
    assert!(!st.success());
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "SIGTERM should suffice"
    );
    assert!(!p.is_running());

    let stubborn = ns
        .spawn(
            "stubborn",
            &[
                "sh",
                "-c",
                "trap '' TERM; echo ready; while :; do sleep 0.1; done",
            ],
        )
        .unwrap();
    assert!(stubborn.wait_for_output("ready", T));
    let t0 = Instant::now();
    stubborn.kill().unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );

    let quick = ns.spawn("true", &["true"]).unwrap();
    let st = quick.wait_timeout(T).unwrap().unwrap();
    assert!(st.success());
    // exec runs inside the namespace: only lo is there
    let links = ns.exec(&["ip", "-o", "link"]).unwrap();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert_eq!(
        ns.sysctl_get("net.ipv6.conf.all.disable_ipv6").unwrap(),
        "1"
    );
    assert!(ns.exec(&["false"]).is_err());
    assert!(matches!(
        ns.exec_timeout(&["sleep", "5"], Duration::from_millis(300)),
        Err(Error::Timeout { .. })
    ));
}

/// mgmt_query against a fake management port: JSON replies end at `end`/`error`, text replies
/// at silence; nothing listening is an error.
#[test]
fn mgmt_query_fake_server() {
    if !require_root("topology/mgmt_query_fake_server") {
        return;
    }
    let lab = Lab::new("mgmt");
    let ns = lab.netns("n").unwrap();
    let sock = ns.udp_socket(sa("127.0.0.1", 5644)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let server = thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut requests = Vec::new();
        for _ in 0..4 {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let replies: Vec<String> = if req == "r 7 edges" {
                vec![
                    r#"{"_tag":"7","_type":"begin","cmd":"edges"}"#.into(),
                    r#"{"_tag":"7","_type":"row","macaddr":"02:00:00:00:00:01","desc":"a"b"}"#
                        .into(),
                    r#"{"_tag":"7","_type":"row","macaddr":"02:00:00:00:00:02"}"#.into(),
                    r#"{"_tag":"7","_type":"end","cmd":"edges"}"#.into(),
                    r#"{"_tag":"7","_type":"row","late":"ignored"}"#.into(),
                ]
            } else if req == "s 9 peer" {
                sock.send_to(b"{\"_tag\":\"9\",\"_type\":\"subscribe\"}\n", from)
                    .unwrap();
                thread::sleep(Duration::from_millis(300));
                vec![
                    r#"{"_tag":"9","_type":"event","action":4,"macaddr":"02:00:00:00:00:03"}"#
                        .into(),
                ]
            } else if req.starts_with("w ") {
                vec![r#"{"_tag":"8","_type":"error","error":"badauth"}"#.into()]
            } else {
                vec!["community: x".into(), "edges: 0".into()]
            };
            for r in replies {
                sock.send_to(format!("{r}\n").as_bytes(), from).unwrap();
            }
            requests.push(req);
        }
        requests
    });
    let lines = mgmt_query(&ns, 5644, "r 7 edges").unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let rows = mgmt_rows(&lines);
    assert_eq!(
        rows.len(),
        1,
        "the row with an unescaped quote is not valid JSON: {rows:?}"
    );
    assert_eq!(rows[0]["macaddr"], "02:00:00:00:00:02");
    let err = mgmt_query(&ns, 5644, "w 8 stop").unwrap();
    assert_eq!(err.len(), 1);
    let t0 = Instant::now();
    let text = mgmt_query(&ns, 5644, "\n").unwrap();
    assert_eq!(
        text,
        vec!["community: x".to_string(), "edges: 0".to_string()]
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    // A subscription: the event arrives later on the same client socket.
    let client = MgmtClient::connect(&ns, 5644).unwrap();
    client.send("s 9 peer").unwrap();
    let sub = client.recv_line(T).unwrap().unwrap();
    assert!(sub.contains("subscribe"), "{sub}");
    let ev = client.recv_line(T).unwrap().unwrap();
    assert!(ev.contains(r#""action":4"#), "{ev}");
    assert_eq!(client.recv_line(Duration::from_millis(100)).unwrap(), None);
    assert_eq!(server.join().unwrap().len(), 4);
    // Nothing listens on this port.
    assert!(mgmt_query_timeout(&ns, 5645, "r 1 info", Duration::from_millis(500)).is_err());
}

/// netem (kernel qdisc or the userspace NFQUEUE fallback): delay, loss and reorder are real.
#[test]
fn netem_delay_loss_reorder() {
    if !require_tools(
        "topology/netem_delay_loss_reorder",
        &["ip", "ping", "tc", "iptables"],
    ) {
        return;
    }
    let mut sc = Scenario::new("topology/netem_delay_loss_reorder");
    let lab = Lab::new("netem");
    let a = lab.netns("a").unwrap();
    let b = lab.netns("b").unwrap();
    veth(&a, "eth0", &b, "eth0").unwrap();
    a.addr_add("eth0", "198.18.5.1/24").unwrap();
    b.addr_add("eth0", "198.18.5.2/24").unwrap();
    let base = ping(&a, "198.18.5.2", 56, 3, false).unwrap();
    assert_eq!(base.received, 3);

    let n = netem(&a, "eth0", "delay 40ms").unwrap();
    sc.metric(
        "backend",
        if n.is_kernel() {
            "sch_netem"
        } else {
            "nfqueue"
        },
    );
    let d = ping(&a, "198.18.5.2", 56, 5, false).unwrap();
    assert_eq!(d.received, 5, "{d:?}");
    let rtt = d.rtt_avg_ms.unwrap();
    assert!((38.0..150.0).contains(&rtt), "rtt {rtt} with 40 ms delay");
    sc.metric("delay40_rtt_ms", format!("{rtt:.1}"));
    drop(n);
    let after = ping(&a, "198.18.5.2", 56, 3, false).unwrap();
    assert!(after.rtt_avg_ms.unwrap() < 20.0, "{after:?}");

    // 50% loss on one direction: of 60 pings, far from 0 and far from 60 come back.
    let n = netem(&a, "eth0", "loss 50%").unwrap();
    let l = ping(&a, "198.18.5.2", 56, 60, false).unwrap();
    assert!((10..=50).contains(&l.received), "{l:?}");
    sc.metric("loss50_received", format!("{}/{}", l.received, l.sent));
    drop(n);

    // Reorder: with a delay and 50% of packets sent at once, a UDP sequence arrives out of order.
    let _n = netem(&a, "eth0", "delay 10ms reorder 50%").unwrap();
    let rx = b.udp_socket(sa("198.18.5.2", 9000)).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let tx = a.udp_socket(sa("198.18.5.1", 0)).unwrap();
    for i in 0u32..200 {
        tx.send_to(&i.to_be_bytes(), sa("198.18.5.2", 9000))
            .unwrap();
        thread::sleep(Duration::from_micros(200));
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    while let Ok((4, _)) = rx.recv_from(&mut buf) {
        got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
        if got.len() == 200 {
            break;
        }
    }
    let inversions = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(got.len(), 200, "no loss configured");
    assert!(
        inversions > 5,
        "expected reordering, got {inversions} inversions"
    );
    sc.metric("reorder_inversions", inversions);
}

/// iperf3 helper: TCP throughput across a veth link.
#[test]
fn iperf3_over_veth() {
    if !require_tools("topology/iperf3_over_veth", &["ip", "iperf3"]) {
        return;
    }
    let mut sc = Scenario::new("topology/iperf3_over_veth");
    let lab = Lab::new("iperf");
    let a = lab.netns("a").unwrap();
    let b = lab.netns("b").unwrap();
    veth(&a, "eth0", &b, "eth0").unwrap();
    a.addr_add("eth0", "198.18.6.1/24").unwrap();
    b.addr_add("eth0", "198.18.6.2/24").unwrap();
    let _srv = iperf3_server(&b, 5201).unwrap();
    let r = iperf3_client(&a, "198.18.6.2".parse().unwrap(), 5201, 1, None).unwrap();
    assert!(r.mbps > 10.0, "{r:?}");
    sc.metric("tcp_mbps", format!("{:.0}", r.mbps));
    let u = iperf3_client(&a, "198.18.6.2".parse().unwrap(), 5201, 1, Some(20)).unwrap();
    assert!(u.mbps > 5.0 && u.lost_percent.is_some(), "{u:?}");
    sc.metric("udp20_mbps", format!("{:.1}", u.mbps));
}

/// find_binary builds and finds a workspace binary (this crate's own `e2e-summary`).
#[test]
fn find_binary_builds_workspace_bin() {
    let p = find_binary("e2e-summary").unwrap();
    assert!(p.is_file(), "{p:?}");
    assert!(
        p.starts_with(target_dir()),
        "{p:?} not under {:?}",
        target_dir()
    );
    assert!(find_binary("no-such-binary-xyz").is_err());
}
