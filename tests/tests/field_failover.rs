//! The field, part 3: two supernodes given with `-l` twice; the first one dies.
//!
//! Two independent (not federated: no `-l` between them) supernodes on the underlay.
//! Two pairs of edges behind their own EIM NATs list both (`-l sn1 -l sn2`); only the first
//! one runs while they start, so all of them choose it. Then the second one starts, the first
//! is SIGKILLed, and the edges must move to the second one (three unanswered REGISTER_SUPERs,
//! C's rule) with their default timers (`-i 20`). The P2P pair keeps its direct path through
//! the failover; the relayed pair (`-S1`) is cut until both of its edges have moved, which
//! takes up to one registration interval plus the retries (≤ 20 s + 3 × 2 s).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::thread::sleep;
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);
const SN2_IP: &str = "198.18.0.253";

#[test]
fn first_supernode_dies_edges_move_to_the_second() {
    if !require_root("field/supernode_failover") {
        return;
    }
    let mut sc = Scenario::new("field/supernode_failover");
    let lab = Lab::new("fld_fail");
    let (wan, sn1_host) = underlay(&lab).unwrap();
    let sn2_host = lab.host_on("sn2", &wan, &format!("{SN2_IP}/24")).unwrap();
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
    let sn1_addr = format!("{SN_IP}:{SN_PORT}");
    let sn2_addr = format!("{SN2_IP}:{SN_PORT}");
    let mut sn1 = Supernode::start(&sn1_host, "supernode-1", SupernodeOpts::default()).unwrap();

    let opts = |community: &str, net: u8, n: u16| {
        EdgeOpts::new(community, &sn1_addr)
            .supernode(&sn2_addr)
            .addr(&format!("10.200.{net}.{n}/24"))
            .mac(mac(u16::from(net) * 0x100 + n))
            .port(50000 + n)
    };
    let p1 = Edge::start(&sites[0].host, "edge-p1", opts("field4p", 6, 1)).unwrap();
    let p2 = Edge::start(&sites[1].host, "edge-p2", opts("field4p", 6, 2)).unwrap();
    let r1 = Edge::start(&sites[2].host, "edge-r1", opts("field4r", 7, 1).no_p2p()).unwrap();
    let r2 = Edge::start(&sites[3].host, "edge-r2", opts("field4r", 7, 2).no_p2p()).unwrap();
    let edges = [&p1, &p2, &r1, &r2];
    for e in edges {
        assert!(e.wait_registered(REG), "{:?}", e.supernodes());
    }
    assert!(wait_ping(&sites[0].host, "10.200.6.2", REG));
    assert!(wait_ping(&sites[2].host, "10.200.7.2", REG));
    let bg = GapProbe::start(&sites[0].host, "warmup", "10.200.6.2", 200, 30).unwrap();
    assert!(p1.wait_direct(&mac(0x602), REG) && p2.wait_direct(&mac(0x601), REG));
    drop(bg);

    // The standby supernode comes up; nobody moves to it while the first one is fine.
    let sn2 = Supernode::start(&sn2_host, "supernode-2", SupernodeOpts::default()).unwrap();
    sleep(Duration::from_secs(1));
    for e in edges {
        assert_eq!(e.registered_with(), Some(sn1_addr.clone()));
    }

    let probe_p = GapProbe::start(&sites[0].host, "probe-p2p", "10.200.6.2", 100, 90).unwrap();
    let probe_r = GapProbe::start(&sites[2].host, "probe-relay", "10.200.7.2", 100, 90).unwrap();
    sleep(Duration::from_secs(2));
    sn1.kill(Signal::SIGKILL).unwrap();
    let t_kill = unix_now();
    let killed = Instant::now();

    // Wait (bounded) until every edge is registered with the second supernode.
    let mut moved = [None; 4];
    while moved.iter().any(Option::is_none) && killed.elapsed() < Duration::from_secs(40) {
        for (i, e) in edges.iter().enumerate() {
            if moved[i].is_none() && e.registered_with().as_deref() == Some(sn2_addr.as_str()) {
                moved[i] = Some(killed.elapsed().as_secs_f64());
            }
        }
        sleep(Duration::from_millis(100));
    }
    let all_moved = moved.iter().flatten().count() == 4;
    // Let the relayed path settle once both of its edges are on the second supernode.
    sleep(Duration::from_secs(2));
    let tp = probe_p.finish().unwrap();
    let tr = probe_r.finish().unwrap();
    let end = unix_now();
    let p2p_gap = tp.max_gap(t_kill - 1.0, end - 0.5);
    let relay_gap = tr.max_gap(t_kill - 1.0, end - 0.5);
    let relay_resume = tr.first_reply_after(t_kill + 0.5).map(|t| t - t_kill);
    let fmt = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.1}"));
    sc.metric(
        "moved_after_s",
        moved.iter().map(|m| fmt(*m)).collect::<Vec<_>>().join("/"),
    );
    sc.metric("p2p_gap_s", format!("{p2p_gap:.2}"));
    sc.metric("relay_gap_s", format!("{relay_gap:.2}"));
    sc.metric("relay_resume_after_kill_s", fmt(relay_resume));

    assert!(all_moved, "not every edge moved within 40 s: {moved:?}");
    let sn2_edges = sn2.edge_macs().unwrap();
    for m in [0x601, 0x602, 0x701, 0x702] {
        assert!(sn2_edges.contains(&mac(m)), "{sn2_edges:?}");
    }
    assert!(
        p2p_gap < 1.0,
        "the direct path broke during the failover: {p2p_gap:.2} s"
    );
    let relay_resume = relay_resume.expect("relayed traffic never resumed");
    // One interval (20 s) + three retries 2 s apart + margin.
    assert!(
        relay_resume <= 30.0,
        "relayed traffic resumed only {relay_resume:.1} s after the kill"
    );
    assert!(
        ping(&sites[3].host, "10.200.7.1", 56, 3, false)
            .unwrap()
            .received
            >= 2
    );
    // The relayed pair really crosses the second supernode now.
    let f0 = sn2.forwarded().unwrap();
    ping(&sites[2].host, "10.200.7.2", 56, 3, false).unwrap();
    assert!(sn2.forwarded().unwrap() >= f0 + 6);
    for e in edges {
        e.health().unwrap();
    }
    sn2.health().unwrap();
}
