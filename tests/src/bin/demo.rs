//! `n2n-demo`: a one-command tour of n2n-rs on this machine.
//!
//! ```text
//! sudo cargo run --release -p n2n-tests --bin n2n-demo      (or as root)
//! ```
//!
//! Builds the release `supernode` and `edge`, creates network namespaces (one switch, a
//! supernode host and two edge hosts on underlay 198.18.0.0/24; nothing is configured in the
//! root namespace), starts a supernode and two edges (AES, overlay 10.200.0.0/24), pings
//! across the overlay, runs a short iperf3, prints a summary (peers, direct or relayed, RTT,
//! Mbit/s) and removes everything again, also after Ctrl-C or a failure.
//!
//! Needs root. When `ip`, `ping` or `iperf3` is missing on a Debian-like system it installs
//! `iproute2 iputils-ping iperf3 nftables` with `apt-get`.
//!
//! Exit status: 0 success, 1 failure (or not root), 130 interrupted.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use n2n_tests::{
    Bridge, Lab, Netns, Proc, find_binary, iperf3_client, iperf3_server, mgmt_query, mgmt_rows,
    ping, wait_until,
};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

const COMMUNITY: &str = "demo";
const KEY: &str = "demo-secret";
const SN_IP: &str = "198.18.0.254";
const SN_PORT: u16 = 7654;
const SN_MGMT: u16 = 5645;
const EDGE_MGMT: u16 = 5644;
const WAIT: Duration = Duration::from_secs(15);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

type Result<T> = std::result::Result<T, String>;

fn interrupted() -> Result<()> {
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    if INTERRUPTED.load(Ordering::Relaxed) {
        if !ANNOUNCED.swap(true, Ordering::Relaxed) {
            eprintln!("\nn2n-demo: interrupted: stopping and cleaning up...");
        }
        Err("signal received".into())
    } else {
        Ok(())
    }
}

fn step(what: &str) -> Result<()> {
    interrupted()?;
    println!("==> {what}");
    Ok(())
}

extern "C" fn on_signal(_sig: nix::libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C / SIGTERM / SIGHUP set a flag that every step checks, so the demo unwinds through
/// its guards (processes killed, namespaces deleted) instead of dying on the spot. The handler
/// is reset to the default action in the child processes (exec), which get the terminal's
/// Ctrl-C themselves.
fn watch_signals() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe) and the previous
        // disposition is not needed.
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            eprintln!("n2n-demo: cannot catch {}: {e}", sig.as_str());
        }
    }
}

/// Installs the tools with apt-get when one is missing (Debian and derivatives).
fn ensure_tools() -> Result<()> {
    for tool in ["ip", "ping", "iperf3", "nft"] {
        n2n_tests::install::ensure_program(tool).map_err(|e| e.to_string())?;
    }
    Ok(())
}

struct Node {
    proc: Proc,
    ns: Netns,
    underlay: String,
    overlay: String,
}

fn fail_with_log(p: &Proc, what: &str) -> String {
    p.dump();
    format!("{what} (log above; files in {})", p.stderr_path().display())
}

fn start_edge(lab: &Lab, wan: &Bridge, bin: &str, n: u8) -> Result<Node> {
    let underlay = format!("198.18.0.{n}");
    let overlay = format!("10.200.0.{n}");
    let ns = lab
        .host_on(&format!("edge{n}"), wan, &format!("{underlay}/24"))
        .map_err(|e| e.to_string())?;
    let sn = format!("{SN_IP}:{SN_PORT}");
    let addr = format!("{overlay}/24");
    let mgmt = EDGE_MGMT.to_string();
    let desc = format!("edge{n}");
    let proc = ns
        .spawn(
            "edge",
            &[
                bin, "-f", "-c", COMMUNITY, "-k", KEY, "-A3", "-l", &sn, "-a", &addr, "-t", &mgmt,
                "-I", &desc,
            ],
        )
        .map_err(|e| e.to_string())?;
    if !proc.wait_for_output("[OK] edge <<< ================ >>> supernode", WAIT) {
        interrupted()?;
        return Err(fail_with_log(&proc, &format!("edge{n} did not register")));
    }
    println!("    edge{n}: {overlay}/24 on TAP edge0, underlay {underlay}, registered");
    Ok(Node {
        proc,
        ns,
        underlay,
        overlay,
    })
}

/// How `from` reaches `to` according to its management port: `p2p` or `pSp` (relayed).
fn path_mode(from: &Node, to: &Node) -> String {
    let rows = mgmt_rows(&mgmt_query(&from.ns, EDGE_MGMT, "r 1 edges").unwrap_or_default());
    rows.iter()
        .find(|r| {
            r["sockaddr"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{}:", to.underlay)))
                || r["ip4addr"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&to.overlay))
        })
        .and_then(|r| r["mode"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn forwarded(sn: &Netns) -> Option<u64> {
    let rows = mgmt_rows(&mgmt_query(sn, SN_MGMT, "r 1 packetstats").ok()?);
    rows.iter()
        .find(|r| r["type"] == "forward")
        .and_then(|r| r["tx_pkt"].as_u64())
}

fn demo() -> Result<()> {
    step("building edge and supernode (release; the first build takes a few minutes)")?;
    let edge_bin = find_binary("edge").map_err(|e| e.to_string())?;
    let sn_bin = find_binary("supernode").map_err(|e| e.to_string())?;
    let (edge_bin, sn_bin) = (
        edge_bin.to_string_lossy().into_owned(),
        sn_bin.to_string_lossy().into_owned(),
    );
    println!("    {edge_bin}\n    {sn_bin}");

    step("creating network namespaces: switch, supernode, edge1, edge2 (198.18.0.0/24)")?;
    let lab = Lab::new("n2n_demo");
    let wan = lab.bridge("switch").map_err(|e| e.to_string())?;

    step(&format!("starting the supernode on {SN_IP}:{SN_PORT}"))?;
    let sn_ns = lab
        .host_on("supernode", &wan, &format!("{SN_IP}/24"))
        .map_err(|e| e.to_string())?;
    let (port, mgmt) = (SN_PORT.to_string(), SN_MGMT.to_string());
    let sn = sn_ns
        .spawn("supernode", &[&sn_bin, "-f", "-p", &port, "-t", &mgmt])
        .map_err(|e| e.to_string())?;
    if !wait_until(WAIT, Duration::from_millis(100), || {
        !mgmt_query(&sn_ns, SN_MGMT, "r 1 communities")
            .unwrap_or_default()
            .is_empty()
            || INTERRUPTED.load(Ordering::Relaxed)
    }) {
        return Err(fail_with_log(&sn, "the supernode did not start"));
    }
    interrupted()?;

    step(&format!(
        "starting two edges (community '{COMMUNITY}', AES, overlay 10.200.0.0/24)"
    ))?;
    let e1 = start_edge(&lab, &wan, &edge_bin, 1)?;
    let e2 = start_edge(&lab, &wan, &edge_bin, 2)?;

    step("pinging across the overlay")?;
    // The first echo may be relayed while the peers punch their direct path.
    let first = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        INTERRUPTED.load(Ordering::Relaxed)
            || ping(&e1.ns, &e2.overlay, 56, 1, false).is_ok_and(|r| r.received == 1)
    });
    interrupted()?;
    if !first {
        e1.proc.dump();
        e2.proc.dump();
        return Err("no ping reply through the overlay".into());
    }
    let direct = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        INTERRUPTED.load(Ordering::Relaxed)
            || (path_mode(&e1, &e2) == "p2p" && path_mode(&e2, &e1) == "p2p")
    });
    interrupted()?;
    let p12 = ping(&e1.ns, &e2.overlay, 56, 10, false).map_err(|e| e.to_string())?;
    let p21 = ping(&e2.ns, &e1.overlay, 56, 10, false).map_err(|e| e.to_string())?;
    let big = ping(&e1.ns, &e2.overlay, 1472, 3, true).map_err(|e| e.to_string())?;
    interrupted()?;

    step("iperf3 (TCP, 3 s) edge1 -> edge2 through the tunnel")?;
    let fwd_before = forwarded(&sn_ns);
    let srv = iperf3_server(&e2.ns, 5201).map_err(|e| e.to_string())?;
    let ip = iperf3_client(
        &e1.ns,
        e2.overlay.parse::<IpAddr>().map_err(|e| e.to_string())?,
        5201,
        3,
        None,
    )
    .map_err(|e| e.to_string())?;
    drop(srv);
    let fwd_after = forwarded(&sn_ns);
    interrupted()?;

    let rtt = |r: &n2n_tests::PingResult| {
        r.rtt_avg_ms
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.3} ms"))
    };
    let mode = |m: String| match m.as_str() {
        "p2p" => "direct (p2p)".to_owned(),
        "pSp" => "relayed by the supernode".to_owned(),
        other => other.to_owned(),
    };
    let bar = "=".repeat(72);
    println!("\n{bar}\nn2n-rs demo summary\n{bar}");
    println!("supernode  {SN_IP}:{SN_PORT}   community '{COMMUNITY}', cipher AES (-A3)");
    for (n, e) in [(1, &e1), (2, &e2)] {
        println!(
            "edge{n}      overlay {:<12} underlay {}",
            e.overlay, e.underlay
        );
    }
    println!("edge1 -> edge2: {}", mode(path_mode(&e1, &e2)));
    println!("edge2 -> edge1: {}", mode(path_mode(&e2, &e1)));
    println!(
        "ping edge1 -> edge2: {}/{} replies, RTT {}",
        p12.received,
        p12.sent,
        rtt(&p12)
    );
    println!(
        "ping edge2 -> edge1: {}/{} replies, RTT {}",
        p21.received,
        p21.sent,
        rtt(&p21)
    );
    println!(
        "ping 1500-byte packets with DF: {}/{} replies, RTT {}",
        big.received,
        big.sent,
        rtt(&big)
    );
    println!("iperf3 TCP edge1 -> edge2: {:.0} Mbit/s", ip.mbps);
    if let (Some(a), Some(b)) = (fwd_before, fwd_after) {
        println!("packets the supernode relayed during iperf3: {}", b - a);
    }
    println!("{bar}");
    if p12.received == 0 || p21.received == 0 {
        return Err("pings failed".into());
    }
    if !direct {
        println!("note: the peers did not switch to a direct path within 10 s");
    }
    step("stopping edges and supernode, deleting the namespaces")?;
    Ok(())
}

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "n2n-demo: must run as root (it creates network namespaces and TAP devices), e.g.\n  \
             sudo -E cargo run --release -p n2n-tests --bin n2n-demo"
        );
        return ExitCode::FAILURE;
    }
    watch_signals();
    if let Err(e) = ensure_tools() {
        eprintln!("n2n-demo: {e}");
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    // Everything the demo creates is owned inside `demo()`: returning (or unwinding) drops
    // the process and namespace guards.
    let result = std::panic::catch_unwind(demo);
    match result {
        Ok(Ok(())) => {
            println!(
                "n2n-demo: done in {:.0} s, everything cleaned up",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Ok(Err(e)) if INTERRUPTED.load(Ordering::Relaxed) => {
            eprintln!("n2n-demo: interrupted ({e}); cleaned up");
            ExitCode::from(130)
        }
        Ok(Err(e)) => {
            eprintln!("n2n-demo: FAILED: {e}; cleaned up");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("n2n-demo: FAILED (panic); cleaned up");
            ExitCode::FAILURE
        }
    }
}
