//! The field, part 4: a lossy, reordering underlay.
//!
//! Every router's WAN egress and the supernode's uplink drop 1 % of the packets and reorder
//! them (25 % of the packets skip a 2 ms delay and overtake the others; kernel netem, or the
//! NFQUEUE emulation on kernels without `sch_netem`). A direct (P2P) pair and a relayed
//! (`-S1`) pair each complete a TCP `iperf3` run and keep their registrations. (That
//! registrations survive two minutes of loss and reordering is covered by the core's simulator
//! test `n2n-core/tests/edge_sim.rs::loss_and_reordering_keep_registration`.)
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;
use std::time::Duration;

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);
const SPEC: &str = "loss 1% delay 2ms reorder 25%";

#[test]
fn iperf3_completes_over_loss_and_reordering() {
    if !require_tools("field/loss_reorder", &["ip", "nft", "ping", "tc", "iperf3"]) {
        return;
    }
    let mut sc = Scenario::new("field/loss_reorder");
    let lab = Lab::new("fld_loss");
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
    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let sn_addr = format!("{SN_IP}:{SN_PORT}");
    let opts = |community: &str, net: u8, n: u16| {
        EdgeOpts::new(community, &sn_addr)
            .addr(&format!("10.200.{net}.{n}/24"))
            .mac(mac(u16::from(net) * 0x100 + n))
            .port(50000 + n)
    };
    let p1 = Edge::start(&sites[0].host, "edge-p1", opts("field5p", 8, 1)).unwrap();
    let p2 = Edge::start(&sites[1].host, "edge-p2", opts("field5p", 8, 2)).unwrap();
    let r1 = Edge::start(&sites[2].host, "edge-r1", opts("field5r", 9, 1).no_p2p()).unwrap();
    let r2 = Edge::start(&sites[3].host, "edge-r2", opts("field5r", 9, 2).no_p2p()).unwrap();
    let edges = [&p1, &p2, &r1, &r2];
    for e in edges {
        assert!(e.wait_registered(REG));
    }
    assert!(wait_ping(&sites[0].host, "10.200.8.2", REG));
    assert!(wait_ping(&sites[2].host, "10.200.9.2", REG));
    let bg = GapProbe::start(&sites[0].host, "warmup", "10.200.8.2", 200, 30).unwrap();
    assert!(p1.wait_direct(&mac(0x802), REG) && p2.wait_direct(&mac(0x801), REG));
    drop(bg);

    // Impair the whole underlay.
    let mut impairments = Vec::new();
    for s in &sites {
        impairments.push(netem(s.router.netns(), NAT_WAN_DEV, SPEC).unwrap());
    }
    impairments.push(netem(&sn_host, "eth0", SPEC).unwrap());
    sc.metric(
        "netem",
        if impairments[0].is_kernel() {
            "kernel"
        } else {
            "nfqueue"
        },
    );

    for (label, client, server_site, server_ip) in [
        ("p2p", &sites[0], &sites[1], "10.200.8.2"),
        ("relay", &sites[2], &sites[3], "10.200.9.2"),
    ] {
        let pr = ping(&client.host, server_ip, 56, 20, false).unwrap();
        let _srv = iperf3_server(&server_site.host, 5201).unwrap();
        let ip: IpAddr = server_ip.parse().unwrap();
        let r = iperf3_client(&client.host, ip, 5201, 3, None)
            .unwrap_or_else(|e| panic!("{label}: iperf3 over the lossy underlay failed: {e}"));
        assert!(r.mbps > 0.5, "{label}: {r:?}");
        assert!(pr.received >= 14, "{label}: {pr:?}");
        sc.metric(&format!("{label}_mbps"), format!("{:.1}", r.mbps));
        sc.metric(
            &format!("{label}_retransmits"),
            r.retransmits.map_or("?".into(), |n| n.to_string()),
        );
        sc.metric(
            &format!("{label}_ping_loss_pct"),
            format!("{:.0}", pr.loss_pct()),
        );
        if let Some(rtt) = pr.rtt_avg_ms {
            sc.metric(&format!("{label}_rtt_ms"), format!("{rtt:.2}"));
        }
    }
    let stats: Vec<ImpairStats> = impairments.iter().filter_map(|i| i.user_stats()).collect();
    if !stats.is_empty() {
        let seen: u64 = stats.iter().map(|s| s.seen).sum();
        let dropped: u64 = stats.iter().map(|s| s.dropped).sum();
        let reordered: u64 = stats.iter().map(|s| s.immediate).sum();
        assert!(dropped > 0 && reordered > 0, "impairment idle: {stats:?}");
        sc.metric("underlay_pkts", seen);
        sc.metric("underlay_dropped", dropped);
        sc.metric("underlay_reordered", reordered);
    }
    drop(impairments);
    // The registrations survived, the P2P pair is still direct.
    for e in edges {
        assert!(e.is_registered(), "{:?}", e.supernodes());
        e.health().unwrap();
    }
    assert!(p1.wait_direct(&mac(0x802), Duration::from_secs(5)));
    assert_eq!(sn.edge_macs().unwrap().len(), 4);
    sn.health().unwrap();
}
