//! The field, part 2: daemons die and come back.
//!
//! * `supernode_killed_and_restarted`: the supernode is SIGKILLed and restarted on the same
//!   port while two pairs of edges (each edge behind its own EIM NAT) ping each other every
//!   100 ms. The P2P pair (default `-i 20`) keeps its direct path through the outage; the
//!   relayed pair (`-S1 -i 5`: every frame crosses the supernode) loses traffic while the
//!   supernode is gone and must resume within 5 s of the restart, which is bounded by the
//!   re-registration interval: a restarted supernode knows no edge until each one sends its
//!   next REGISTER_SUPER (C n2n has no faster signal, so with the default `-i 20` a relayed
//!   path can stay down for up to 20 s after a quick restart). Every edge is back in the
//!   supernode's table within its interval.
//! * `edge_killed_and_restarted_with_same_mac`: an edge is SIGKILLed (no UNREGISTER_SUPER) and
//!   restarted at once with the same MAC, address and port: its first registration is ACKed
//!   (no NAK from the spoofing protection) and the overlay works again within a few seconds.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);

/// The scenarios measure outages: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn sn_addr() -> String {
    format!("{SN_IP}:{SN_PORT}")
}

#[test]
fn supernode_killed_and_restarted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_root("field/supernode_restart") {
        return;
    }
    let mut sc = Scenario::new("field/supernode_restart");
    let lab = Lab::new("fld_snrst");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let sites: Vec<NatSite> = (1..=4)
        .map(|n| {
            NatSite::new(
                &lab,
                &format!("s{n}"),
                n,
                NatKind::EndpointIndependent,
                &wan,
            )
        })
        .collect::<Result<_>>()
        .unwrap();
    let mut sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();

    // P2P pair (defaults) and relayed pair (-S1, -i 5).
    let p_opts = |n: u16| {
        EdgeOpts::new("field3p", &sn_addr())
            .addr(&format!("10.200.3.{n}/24"))
            .mac(mac(0x30 + n))
            .port(50000 + n)
    };
    let r_opts = |n: u16| {
        EdgeOpts::new("field3r", &sn_addr())
            .addr(&format!("10.200.4.{n}/24"))
            .mac(mac(0x40 + n))
            .port(50000 + n)
            .no_p2p()
            .interval(5)
    };
    let p1 = Edge::start(&sites[0].host, "edge-p1", p_opts(1)).unwrap();
    let p2 = Edge::start(&sites[1].host, "edge-p2", p_opts(2)).unwrap();
    let r1 = Edge::start(&sites[2].host, "edge-r1", r_opts(1)).unwrap();
    let r2 = Edge::start(&sites[3].host, "edge-r2", r_opts(2)).unwrap();
    let all = [mac(0x31), mac(0x32), mac(0x41), mac(0x42)];
    let all_ref: Vec<&str> = all.iter().map(String::as_str).collect();
    assert!(sn.wait_edges(&all_ref, REG), "{:?}", sn.edge_macs());
    assert!(wait_ping(&sites[0].host, "10.200.3.2", REG));
    assert!(wait_ping(&sites[2].host, "10.200.4.2", REG));
    let bg = GapProbe::start(&sites[0].host, "warmup", "10.200.3.2", 200, 30).unwrap();
    assert!(p1.wait_direct(&mac(0x32), REG) && p2.wait_direct(&mac(0x31), REG));
    drop(bg);

    let probe_p = GapProbe::start(&sites[0].host, "probe-p2p", "10.200.3.2", 100, 90).unwrap();
    let probe_r = GapProbe::start(&sites[2].host, "probe-relay", "10.200.4.2", 100, 90).unwrap();
    sleep(Duration::from_secs(2));

    sn.kill(Signal::SIGKILL).unwrap();
    let t_kill = unix_now();
    sleep(Duration::from_secs(2));
    let t_restart = unix_now();
    let restarted = Instant::now();
    sn.restart().unwrap();

    // Every edge comes back within its re-registration interval (+ retries).
    let mut back = std::collections::BTreeMap::new();
    let deadline = Duration::from_secs(26);
    while back.len() < all.len() && restarted.elapsed() < deadline {
        for m in sn.edge_macs().unwrap_or_default() {
            back.entry(m)
                .or_insert_with(|| restarted.elapsed().as_secs_f64());
        }
        sleep(Duration::from_millis(100));
    }
    let rereg = |m: &str| back.get(m).copied();
    let relay_rereg = rereg(&all[2]).zip(rereg(&all[3])).map(|(a, b)| a.max(b));
    let p2p_rereg = rereg(&all[0]).zip(rereg(&all[1])).map(|(a, b)| a.max(b));
    // Give the relayed path a moment after its last edge is back.
    let settle = relay_rereg.unwrap_or(10.0) + 2.0 - restarted.elapsed().as_secs_f64();
    if settle > 0.0 {
        sleep(Duration::from_secs_f64(settle));
    }
    let tp = probe_p.finish().unwrap();
    let tr = probe_r.finish().unwrap();
    let end = unix_now();

    let p2p_gap = tp.max_gap(t_kill - 1.0, end - 0.5);
    let relay_gap = tr.max_gap(t_kill - 1.0, end - 0.5);
    let relay_resume = tr.first_reply_after(t_restart).map(|t| t - t_restart);
    sc.metric("downtime_s", format!("{:.2}", t_restart - t_kill));
    sc.metric("p2p_gap_s", format!("{p2p_gap:.2}"));
    sc.metric("relay_gap_s", format!("{relay_gap:.2}"));
    sc.metric(
        "relay_resume_after_restart_s",
        relay_resume.map_or("never".into(), |r| format!("{r:.2}")),
    );
    sc.metric(
        "p2p_edges_rereg_s",
        p2p_rereg.map_or("never".into(), |r| format!("{r:.1}")),
    );
    sc.metric(
        "relay_edges_rereg_s",
        relay_rereg.map_or("never".into(), |r| format!("{r:.1}")),
    );

    assert_eq!(
        back.len(),
        all.len(),
        "not all edges re-registered: {back:?}"
    );
    assert!(
        p2p_gap < 1.0,
        "the direct path broke while the supernode was down: gap {p2p_gap:.2} s"
    );
    let relay_resume = relay_resume.expect("relayed traffic never resumed");
    assert!(
        relay_resume <= 5.0,
        "relayed traffic resumed {relay_resume:.2} s after the restart (> 5 s)"
    );
    assert!(
        relay_gap >= t_restart - t_kill - 0.5,
        "relayed pings crossed a dead supernode? gap {relay_gap:.2} s"
    );
    for e in [&p1, &p2, &r1, &r2] {
        e.health().unwrap();
    }
    sn.health().unwrap();
}

#[test]
fn edge_killed_and_restarted_with_same_mac() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_root("field/edge_restart_same_mac") {
        return;
    }
    let mut sc = Scenario::new("field/edge_restart_same_mac");
    let lab = Lab::new("fld_edrst");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let s1 = NatSite::new(&lab, "s1", 1, NatKind::EndpointIndependent, &wan).unwrap();
    let s2 = NatSite::new(&lab, "s2", 2, NatKind::EndpointIndependent, &wan).unwrap();
    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let opts = |n: u16| {
        EdgeOpts::new("field3e", &sn_addr())
            .addr(&format!("10.200.5.{n}/24"))
            .mac(mac(0x50 + n))
            .port(50000 + n)
    };
    let mut a = Edge::start(&s1.host, "edge-a", opts(1)).unwrap();
    let b = Edge::start(&s2.host, "edge-b", opts(2)).unwrap();
    assert!(sn.wait_edges(&[&mac(0x51), &mac(0x52)], REG));
    assert!(wait_ping(&s2.host, "10.200.5.1", REG));

    let probe = GapProbe::start(&s2.host, "probe", "10.200.5.1", 100, 60).unwrap();
    sleep(Duration::from_secs(1));
    let refused_before = sn.stderr().matches("refused registration").count();
    a.kill(Signal::SIGKILL).unwrap();
    let t_kill = unix_now();
    sleep(Duration::from_millis(500));
    let t_restart = unix_now();
    let restarted = Instant::now();
    a.restart().unwrap();
    let registered = a.wait_registered(Duration::from_secs(10));
    let reg_after = restarted.elapsed().as_secs_f64();
    // Traffic must flow again; then look at the outage.
    let flowing = wait_ping(&s2.host, "10.200.5.1", Duration::from_secs(10));
    sleep(Duration::from_secs(1));
    let t = probe.finish().unwrap();
    let end = unix_now();
    let gap = t.max_gap(t_kill - 1.0, end - 0.3);
    let resume = t.first_reply_after(t_restart).map(|r| r - t_restart);
    let refused = sn.stderr().matches("refused registration").count() - refused_before;
    let naks = a.stderr().matches("NAK").count();
    sc.metric("registered_after_s", format!("{reg_after:.2}"));
    sc.metric("gap_s", format!("{gap:.2}"));
    sc.metric(
        "resume_after_restart_s",
        resume.map_or("never".into(), |r| format!("{r:.2}")),
    );
    sc.metric("naks", refused);

    assert_eq!(
        refused,
        0,
        "the supernode refused the restarted edge:\n{}",
        sn.stderr()
    );
    assert_eq!(naks, 0, "the restarted edge saw a NAK:\n{}", a.stderr());
    assert!(registered, "restarted edge not registered within 10 s");
    assert!(reg_after < 5.0, "first registration took {reg_after:.2} s");
    assert!(flowing, "no traffic after the restart");
    let resume = resume.unwrap();
    assert!(
        resume <= 5.0,
        "traffic resumed {resume:.2} s after the restart"
    );
    for e in [&a, &b] {
        e.health().unwrap();
    }
    sn.health().unwrap();
}
