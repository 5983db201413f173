//! The field, part 1: NAT traversal with the real `edge` and `supernode` binaries.
//!
//! * `eim_nats_punch_through`: both edges behind their own endpoint-independent NAT: hole
//!   punching succeeds, both edges list each other as `p2p` at the peer's *public* (NAT)
//!   socket, and the supernode's forward counter stops growing while traffic flows.
//! * `symmetric_nat_stays_relayed`: one edge behind a symmetric NAT, the other behind an EIM
//!   NAT with port-restricted filtering: no direct path can exist, traffic still flows, relayed
//!   by the supernode, and neither edge reports the other as `p2p`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);

fn sn_addr() -> String {
    format!("{SN_IP}:{SN_PORT}")
}

#[test]
fn eim_nats_punch_through() {
    if !require_root("field/nat_eim_p2p") {
        return;
    }
    let mut sc = Scenario::new("field/nat_eim_p2p");
    let lab = Lab::new("fld_eim");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let site_a = NatSite::new(&lab, "a", 1, NatKind::EndpointIndependent, &wan).unwrap();
    let site_b = NatSite::new(&lab, "b", 2, NatKind::EndpointIndependent, &wan).unwrap();

    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let opts = |ip: &str, n: u16| {
        EdgeOpts::new("field1", &sn_addr())
            .addr(ip)
            .mac(mac(n))
            .port(50000 + n)
    };
    let a = Edge::start(&site_a.host, "edge-a", opts("10.200.1.1/24", 1)).unwrap();
    let b = Edge::start(&site_b.host, "edge-b", opts("10.200.1.2/24", 2)).unwrap();
    assert!(a.wait_registered(REG) && b.wait_registered(REG));
    assert!(sn.wait_edges(&[&mac(1), &mac(2)], REG));

    // First contact goes through the supernode, then the edges punch through their NATs.
    let t0 = Instant::now();
    assert!(
        wait_ping(&site_a.host, "10.200.1.2", REG),
        "no overlay ping"
    );
    sc.metric("first_ping_s", format!("{:.2}", t0.elapsed().as_secs_f64()));
    let relayed_before = sn.forwarded().unwrap();
    assert!(relayed_before > 0, "the first contact was not relayed");
    // Keep traffic flowing while the edges work out the direct path.
    let bg = GapProbe::start(&site_a.host, "bg-ping", "10.200.1.2", 200, 30).unwrap();
    let direct = a.wait_direct(&mac(2), REG) && b.wait_direct(&mac(1), REG);
    drop(bg);
    assert!(
        direct,
        "no direct path: a sees {:?}, b sees {:?}",
        a.peers(),
        b.peers()
    );
    sc.metric(
        "direct_after_s",
        format!("{:.2}", t0.elapsed().as_secs_f64()),
    );
    // Each edge reaches the other at the other router's public address: the mapping was
    // punched, not a LAN shortcut.
    let pb = a.peer(&mac(2)).unwrap();
    let pa = b.peer(&mac(1)).unwrap();
    assert!(
        pb.sockaddr
            .starts_with(&format!("{}:", site_b.router.wan_ip())),
        "{pb:?}"
    );
    assert!(
        pa.sockaddr
            .starts_with(&format!("{}:", site_a.router.wan_ip())),
        "{pa:?}"
    );

    // Steady state: traffic flows, the supernode relays nothing more.
    let f0 = sn.forwarded().unwrap();
    let p2p0 = a.packetstats().unwrap().get("p2p", "tx_pkt");
    let r = ping(&site_a.host, "10.200.1.2", 56, 15, false).unwrap();
    let f1 = sn.forwarded().unwrap();
    let p2p1 = a.packetstats().unwrap().get("p2p", "tx_pkt");
    assert_eq!(r.received, 15, "{r:?}");
    assert!(
        f1 - f0 <= 1,
        "supernode kept forwarding: {f0} -> {f1} during 15 pings"
    );
    assert!(p2p1 - p2p0 >= 15, "p2p tx {p2p0} -> {p2p1}");
    assert!(a.is_direct(&mac(2)) && b.is_direct(&mac(1)));
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap()));
    sc.metric("sn_fwd_delta", f1 - f0);
    // Throughput of the direct path; it stays direct and off the supernode.
    let _srv = iperf3_server(&site_b.host, 5201).unwrap();
    let f2 = sn.forwarded().unwrap();
    let t = iperf3_client(&site_a.host, "10.200.1.2".parse().unwrap(), 5201, 2, None).unwrap();
    sc.metric("mbps", format!("{:.1}", t.mbps));
    assert!(
        sn.forwarded().unwrap() - f2 <= 2,
        "iperf3 went through the supernode"
    );
    assert!(a.is_direct(&mac(2)) && b.is_direct(&mac(1)));
    for e in [&a, &b] {
        e.health().unwrap();
    }
    sn.health().unwrap();
}

#[test]
fn symmetric_nat_stays_relayed() {
    if !require_root("field/nat_symmetric_relay") {
        return;
    }
    let mut sc = Scenario::new("field/nat_symmetric_relay");
    let lab = Lab::new("fld_sym");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let site_a = NatSite::new(&lab, "a", 1, NatKind::Symmetric, &wan).unwrap();
    let site_b = NatSite::new(&lab, "b", 2, NatKind::EndpointIndependent, &wan).unwrap();

    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let opts = |ip: &str, n: u16| {
        EdgeOpts::new("field2", &sn_addr())
            .addr(ip)
            .mac(mac(n))
            .port(50000 + n)
    };
    let a = Edge::start(&site_a.host, "edge-a", opts("10.200.2.1/24", 1)).unwrap();
    let b = Edge::start(&site_b.host, "edge-b", opts("10.200.2.2/24", 2)).unwrap();
    assert!(a.wait_registered(REG) && b.wait_registered(REG));

    let t0 = Instant::now();
    assert!(
        wait_ping(&site_a.host, "10.200.2.2", REG),
        "no overlay ping"
    );
    sc.metric("first_ping_s", format!("{:.2}", t0.elapsed().as_secs_f64()));

    // Several seconds of traffic in both directions: time enough for every hole-punching
    // attempt (REGISTER, PEER_INFO, REGISTER_ACK) to have happened.
    let f0 = sn.forwarded().unwrap();
    let r = ping(&site_a.host, "10.200.2.2", 56, 25, false).unwrap();
    let rb = ping(&site_b.host, "10.200.2.1", 56, 5, false).unwrap();
    let f1 = sn.forwarded().unwrap();
    assert_eq!((r.received, rb.received), (25, 5), "{r:?} {rb:?}");
    // Every echo request and reply crossed the supernode.
    assert!(
        f1 - f0 >= 2 * 30,
        "supernode forwarded only {} datagrams for 30 pings",
        f1 - f0
    );
    for (e, peer) in [(&a, mac(2)), (&b, mac(1))] {
        let row = e.peer(&peer);
        assert!(
            row.as_ref().is_none_or(|p| p.mode != "p2p"),
            "{} claims a direct path through a symmetric NAT: {row:?}",
            e.opts().mac.clone().unwrap_or_default()
        );
        let st = e.packetstats().unwrap();
        assert_eq!(st.get("p2p", "rx_pkt"), 0, "direct PACKETs arrived: {st:?}");
    }
    let modes: Vec<String> = [a.peer(&mac(2)), b.peer(&mac(1))]
        .iter()
        .map(|p| p.as_ref().map_or("absent".into(), |p| p.mode.clone()))
        .collect();
    sc.metric("modes", modes.join("/"));
    sc.metric("rtt_ms", format!("{:.3}", r.rtt_avg_ms.unwrap()));
    sc.metric("sn_fwd_delta", f1 - f0);
    // Throughput of the relayed path.
    let _srv = iperf3_server(&site_b.host, 5201).unwrap();
    let f2 = sn.forwarded().unwrap();
    let t = iperf3_client(&site_a.host, "10.200.2.2".parse().unwrap(), 5201, 2, None).unwrap();
    sc.metric("mbps", format!("{:.1}", t.mbps));
    assert!(
        sn.forwarded().unwrap() - f2 > 1000,
        "iperf3 did not cross the supernode"
    );
    for e in [&a, &b] {
        e.health().unwrap();
    }
    sn.health().unwrap();
}
