//! Issue 16, items 3–5 end to end: `--metrics` on a running test network (supernode + three
//! edges in namespaces, prefix `mt`): the counters move with traffic, P2P for two edges that
//! reach each other, via the supernode for a `-S1` edge; the supernode's status page from the
//! live supernode in headless chromium; and the systemd watchdog of both daemons, with the
//! test playing systemd (its own `NOTIFY_SOCKET` and `WATCHDOG_USEC`), through SIGSTOP and
//! SIGCONT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use n2n_tests::browser;
use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);
const METRICS_PORT: u16 = 9645;
const SN_METRICS: &str = "198.18.0.254:9646";

/// `GET path` on `addr` from inside `ns`: (status code, body).
fn http_get(ns: &Netns, addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let raw = ns
        .run_in(move || -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(req.as_bytes())?;
            let mut v = Vec::new();
            s.read_to_end(&mut v)?;
            Ok(v)
        })
        .unwrap()
        .unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// The samples of a Prometheus text scrape: `name{labels}` → value.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn scrape(ns: &Netns, addr: SocketAddr) -> BTreeMap<String, f64> {
    let (code, body) = http_get(ns, addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    samples(&body)
}

fn val(m: &BTreeMap<String, f64>, k: &str) -> f64 {
    *m.get(k)
        .unwrap_or_else(|| panic!("{k} not in the scrape: {:?}", m.keys().collect::<Vec<_>>()))
}

/// A TCP relay from 127.0.0.1 in the root namespace to `target` inside `ns`, so that the
/// browser (root namespace) can load the page. Runs until `stop` is set.
fn relay(
    ns: &Netns,
    target: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    use std::sync::atomic::Ordering;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let local = l.local_addr().unwrap();
    let ns_path = format!("/run/netns/{}", ns.name());
    let h = std::thread::spawn(move || {
        let t_end = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < t_end {
            let Ok((down, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let ns_path = ns_path.clone();
            std::thread::spawn(move || {
                // This thread enters the namespace: the upstream socket lives there.
                let file = std::fs::File::open(&ns_path).ok()?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
                let mut up = TcpStream::connect_timeout(&target, Duration::from_secs(3)).ok()?;
                let mut down = down;
                down.set_nonblocking(false).ok()?;
                let _ = down.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = up.set_read_timeout(Some(Duration::from_secs(20)));
                let mut d2 = down.try_clone().ok()?;
                let mut u2 = up.try_clone().ok()?;
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut d2);
                    let _ = d2.shutdown(std::net::Shutdown::Both);
                });
                let _ = std::io::copy(&mut down, &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
                Some(())
            });
        }
    });
    (local, h)
}

#[test]
fn metrics_move_with_traffic_and_status_page_shows_the_edges() {
    let name = "metrics/e2e";
    if !require_root(name) {
        return;
    }
    let mut sc = Scenario::new(name);
    let lab = Lab::new("mt_met");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let hosts: Vec<Netns> = (1..=3)
        .map(|i| {
            lab.host_on(&format!("e{i}"), &wan, &format!("198.18.0.{i}/24"))
                .unwrap()
        })
        .collect();
    let sopts = SupernodeOpts {
        extra: vec!["--metrics".into(), SN_METRICS.into()],
        ..Default::default()
    };
    let sn = Supernode::start(&sn_host, "supernode", sopts).unwrap();
    let sn_addr = format!("{SN_IP}:{SN_PORT}");
    let edges: Vec<Edge> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let n = i as u16 + 1;
            let mut o = EdgeOpts::new("mtnet", &sn_addr)
                .addr(&format!("10.200.0.{n}/24"))
                .mac(mac(0x700 + n))
                .port(51000 + n)
                .arg("-I")
                .arg(&format!("mt-edge{n}"))
                .arg(&format!("--metrics={METRICS_PORT}"));
            if n == 3 {
                o = o.no_p2p();
            }
            Edge::start(h, "edge", o).unwrap()
        })
        .collect();
    for e in &edges {
        assert!(e.wait_registered(REG), "{}", e.stderr());
    }
    let m_addr: SocketAddr = format!("127.0.0.1:{METRICS_PORT}").parse().unwrap();
    let sn_m: SocketAddr = SN_METRICS.parse().unwrap();

    // Bad requests.
    assert_eq!(http_get(&hosts[0], m_addr, "/nope").0, 404);
    let (code, _) = hosts[0]
        .run_in(move || {
            let mut s = TcpStream::connect(m_addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"NONSENSE\x01 / HTTP/9\r\n\r\n").unwrap();
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            (
                String::from_utf8_lossy(&v)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_owned(),
                (),
            )
        })
        .unwrap();
    assert_eq!(code, "400");

    // Warm up the paths: e1 <-> e2 P2P, e1 <-> e3 relayed (e3 has -S1).
    assert!(wait_ping(&hosts[0], "10.200.0.2", REG));
    assert!(wait_ping(&hosts[0], "10.200.0.3", REG));
    assert!(edges[0].wait_direct(&mac(0x702), REG), "e1-e2 not P2P");
    std::thread::sleep(Duration::from_millis(1500));

    let before: Vec<_> = hosts.iter().map(|h| scrape(h, m_addr)).collect();
    let sn_before = scrape(&sn_host, sn_m);
    const N: u64 = 50;
    let r = ping_every(
        &hosts[0],
        "10.200.0.2",
        1000,
        N as u32,
        false,
        Duration::from_millis(20),
    )
    .unwrap();
    assert_eq!(r.received, N as u32, "{r:?}");
    let r = ping_every(
        &hosts[0],
        "10.200.0.3",
        1000,
        N as u32,
        false,
        Duration::from_millis(20),
    )
    .unwrap();
    assert_eq!(r.received, N as u32, "{r:?}");
    std::thread::sleep(Duration::from_millis(1500)); // > one publish period
    let after: Vec<_> = hosts.iter().map(|h| scrape(h, m_addr)).collect();
    let sn_after = scrape(&sn_host, sn_m);

    let d = |i: usize, k: &str| val(&after[i], k) - val(&before[i], k);
    let tx_p2p = r#"n2n_edge_tx_packets_total{path="p2p"}"#;
    let tx_sn = r#"n2n_edge_tx_packets_total{path="supernode"}"#;
    let rx_p2p = r#"n2n_edge_rx_packets_total{path="p2p"}"#;
    let rx_sn = r#"n2n_edge_rx_packets_total{path="supernode"}"#;
    let txb_p2p = r#"n2n_edge_tx_bytes_total{path="p2p"}"#;
    // e1 sent N echo requests P2P to e2 and N via the supernode to e3.
    assert!(d(0, tx_p2p) >= N as f64, "e1 p2p tx moved {}", d(0, tx_p2p));
    assert!(
        d(0, tx_sn) >= N as f64,
        "e1 supernode tx moved {}",
        d(0, tx_sn)
    );
    assert!(
        d(0, txb_p2p) >= (N * 1000) as f64,
        "e1 p2p bytes {}",
        d(0, txb_p2p)
    );
    assert!(d(1, rx_p2p) >= N as f64 && d(1, tx_p2p) >= N as f64);
    // e3 (-S1) only ever uses the supernode.
    assert!(d(2, rx_sn) >= N as f64 && d(2, tx_sn) >= N as f64);
    assert_eq!(val(&after[2], tx_p2p), 0.0);
    assert_eq!(val(&after[2], rx_p2p), 0.0);
    assert_eq!(val(&after[0], r#"n2n_edge_peers{mode="p2p"}"#), 1.0);
    assert_eq!(val(&after[0], "n2n_edge_supernode_up"), 1.0);
    assert!(val(&after[0], "process_resident_memory_bytes") > 1e6);
    assert!(
        after[0]
            .keys()
            .any(|k| k.starts_with("n2n_edge_build_info{version="))
    );
    // The supernode relayed e1 <-> e3 (2 N at least), not e1 <-> e2.
    let fwd = r#"n2n_supernode_forwarded_packets_total{kind="unicast"}"#;
    let sn_fwd = val(&sn_after, fwd) - val(&sn_before, fwd);
    assert!(sn_fwd >= (2 * N) as f64, "supernode forwarded {sn_fwd}");
    assert!(
        sn_fwd < (4 * N) as f64,
        "P2P traffic went via the supernode: {sn_fwd}"
    );
    assert_eq!(
        val(&sn_after, r#"n2n_supernode_edges{community="mtnet"}"#),
        3.0
    );
    assert_eq!(val(&sn_after, "n2n_supernode_communities"), 1.0);
    sc.metric("e1_p2p_tx_pkts", d(0, tx_p2p))
        .metric("e1_sn_tx_pkts", d(0, tx_sn))
        .metric("sn_fwd_pkts", sn_fwd);
    let (_, body) = http_get(&hosts[0], m_addr, "/metrics");
    let excerpt: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("n2n_edge_") && !l.contains("drops"))
        .collect();
    loud(&format!("edge 1 scrape excerpt:\n{}", excerpt.join("\n")));

    // The status page from the live supernode, in chromium.
    if browser::require_browser(name) {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (local, relay_thread) = relay(&sn_host, sn_m, stop.clone());
        let out = target_dir().join("n2n-e2e").join("status_page_live");
        let page = browser::capture(&format!("http://{local}/"), &out, (1280, 900)).unwrap();
        for n in 1..=3u16 {
            let m = mac(0x700 + n).to_ascii_uppercase();
            assert!(page.dom.contains(&m), "{m} not on the page:\n{}", page.dom);
            for needle in [
                format!("10.200.0.{n}/24"),
                format!("mt-edge{n}"),
                format!("198.18.0.{n}:{}", 51000 + n),
            ] {
                assert!(page.dom.contains(&needle), "{needle} not on the page");
            }
        }
        assert!(page.dom.contains("community <code>mtnet</code> (3 edges)"));
        assert!(page.dom.contains("*Federation"));
        let png = browser::png_stats(&page.screenshot).unwrap();
        assert!(png.is_nontrivial(), "{png:?}");
        loud(&format!(
            "live status page screenshot: {} ({png:?})",
            page.screenshot.display()
        ));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = relay_thread.join();
    }
    for e in &edges {
        e.health().unwrap();
    }
    sn.health().unwrap();
}

/// What the test, playing systemd, received: (time, message).
fn collect(sock: &UnixDatagram, until: Instant, out: &mut Vec<(Instant, String)>) {
    let mut b = [0u8; 1024];
    while Instant::now() < until {
        let left = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        sock.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = sock.recv(&mut b) {
            out.push((
                Instant::now(),
                String::from_utf8_lossy(&b[..n]).into_owned(),
            ));
        }
    }
}

/// Plays systemd for `proc`: READY=1, STATUS=, WATCHDOG=1 at least every usec/2, none while
/// stopped, again after SIGCONT. Returns the status lines seen.
fn check_watchdog(
    label: &str,
    proc: &Proc,
    sock: &UnixDatagram,
    usec: u64,
    ready_within: Duration,
) -> Vec<String> {
    let half = Duration::from_micros(usec / 2);
    let mut msgs = Vec::new();
    let t0 = Instant::now();
    // Until READY, then 3 s more.
    let deadline = t0 + ready_within;
    while !msgs
        .iter()
        .any(|(_, m): &(Instant, String)| m.contains("READY=1"))
        && Instant::now() < deadline
    {
        collect(sock, Instant::now() + Duration::from_millis(200), &mut msgs);
    }
    assert!(
        msgs.iter().any(|(_, m)| m.contains("READY=1")),
        "{label}: no READY=1: {msgs:?}"
    );
    let start = Instant::now();
    collect(sock, start + Duration::from_secs(3), &mut msgs);
    let dogs: Vec<Instant> = msgs
        .iter()
        .filter(|(t, m)| *t >= start && m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    assert!(
        dogs.len() >= 4,
        "{label}: {} keep-alives in 3 s",
        dogs.len()
    );
    let mut prev = start;
    let mut max_gap = Duration::ZERO;
    for t in &dogs {
        max_gap = max_gap.max(t.saturating_duration_since(prev));
        prev = *t;
    }
    assert!(
        max_gap <= half,
        "{label}: keep-alive gap {max_gap:?} > {half:?}"
    );

    // Stuck loop: SIGSTOP → silence; SIGCONT → keep-alives again.
    proc.signal(Signal::SIGSTOP).unwrap();
    let stopped = Instant::now();
    let mut during = Vec::new();
    collect(sock, stopped + Duration::from_secs(2), &mut during);
    let late: Vec<_> = during
        .iter()
        .filter(|(t, m)| {
            m == "WATCHDOG=1" && t.saturating_duration_since(stopped) > Duration::from_millis(100)
        })
        .collect();
    proc.signal(Signal::SIGCONT).unwrap();
    assert!(
        late.is_empty(),
        "{label}: keep-alives while stopped: {late:?}"
    );
    let resumed = Instant::now();
    let mut after = Vec::new();
    collect(sock, resumed + Duration::from_secs(1), &mut after);
    let n_after = after.iter().filter(|(_, m)| m == "WATCHDOG=1").count();
    assert!(
        n_after >= 2,
        "{label}: {n_after} keep-alives within 1 s after SIGCONT"
    );
    loud(&format!(
        "{label}: {} keep-alives in 3 s, max gap {max_gap:?} (limit {half:?}); 0 while stopped; {n_after} in 1 s after SIGCONT",
        dogs.len()
    ));
    msgs.iter()
        .chain(after.iter())
        .flat_map(|(_, m)| m.lines())
        .filter_map(|l| l.strip_prefix("STATUS="))
        .map(str::to_owned)
        .collect()
}

fn world_writable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut d = p.parent();
    while let Some(dir) = d {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o011)).unwrap();
        }
        d = dir.parent();
    }
}

#[test]
fn watchdog_keepalives_stop_when_stuck_and_resume() {
    let name = "metrics/watchdog";
    if !require_root(name) {
        return;
    }
    let mut sc = Scenario::new(name);
    let lab = Lab::new("mt_wd");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let e_host = lab.host_on("e1", &wan, "198.18.0.1/24").unwrap();
    let dir = lab.log_dir().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    const USEC: u64 = 1_000_000;
    let usec = USEC.to_string();

    let sn_sock_path = dir.join("notify-supernode");
    let _ = std::fs::remove_file(&sn_sock_path);
    let sn_sock = UnixDatagram::bind(&sn_sock_path).unwrap();
    // The daemons drop privileges (as systemd's socket, this one is writable by everyone).
    world_writable(&sn_sock_path);
    let sn_bin = find_binary("supernode").unwrap();
    let mut argv = vec![sn_bin.to_string_lossy().into_owned()];
    argv.extend(SupernodeOpts::default().args(None));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let sn = sn_host
        .spawn_env(
            "supernode",
            &argv,
            &[
                ("NOTIFY_SOCKET", sn_sock_path.to_str().unwrap()),
                ("WATCHDOG_USEC", &usec),
            ],
        )
        .unwrap();
    let sn_status = check_watchdog("supernode", &sn, &sn_sock, USEC, Duration::from_secs(5));
    assert!(
        sn_status.iter().any(|s| s.starts_with("listening on UDP")),
        "{sn_status:?}"
    );

    let e_sock_path = dir.join("notify-edge");
    let _ = std::fs::remove_file(&e_sock_path);
    let e_sock = UnixDatagram::bind(&e_sock_path).unwrap();
    world_writable(&e_sock_path);
    let e_bin = find_binary("edge").unwrap();
    let mut argv = vec![e_bin.to_string_lossy().into_owned()];
    argv.extend(
        EdgeOpts::new("mtwd", &format!("{SN_IP}:{SN_PORT}"))
            .addr("10.200.0.1/24")
            .mac(mac(0x7a1))
            .args(),
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let edge = e_host
        .spawn_env(
            "edge",
            &argv,
            &[
                ("NOTIFY_SOCKET", e_sock_path.to_str().unwrap()),
                ("WATCHDOG_USEC", &usec),
            ],
        )
        .unwrap();
    let e_status = check_watchdog("edge", &edge, &e_sock, USEC, REG);
    let want = format!("registered to {SN_IP}:{SN_PORT}");
    assert!(
        e_status.iter().any(|s| s.starts_with(&want)),
        "{e_status:?}"
    );
    // Later status lines carry the peer summary.
    assert!(
        e_status
            .iter()
            .any(|s| s == &format!("{want}, 0 peers p2p, 0 relayed")),
        "{e_status:?}"
    );
    sc.metric("watchdog_usec", USEC);
    assert!(sn.is_running() && edge.is_running());
    loud(&format!(
        "supernode STATUS= lines: {sn_status:?}\nedge STATUS= lines: {e_status:?}"
    ));
}
