//! Supernode federation in the deterministic simulator (behaviour.md
//! §9.10): our supernodes federated with `-l`, our edges spread over them.
//! Covers forwarding (relayed then P2P across supernodes), ACK lists,
//! spoofing protection across supernodes, purge of dead members, failover
//! of edges to a learnt supernode, the member cap.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_core::edge::{EdgeConfig, Event, TapAddrMode};
use n2n_core::sim::{NodeId, Sim, ipv4_frame};
use n2n_core::supernode::{DropReason, FederationPeer, SupernodeConfig, SupernodeEvent};
use n2n_proto::types::{Community, DevAddr, Mac};

const SN1: &str = "203.0.113.1:7654";
const SN2: &str = "203.0.113.2:7654";
const SN3: &str = "203.0.113.3:7654";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A supernode configuration with `-l` peers.
fn sn_cfg(last: u8, peers: &[&str]) -> SupernodeConfig {
    let mut c = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, last]));
    c.supernodes = peers
        .iter()
        .map(|p| FederationPeer {
            name: (*p).to_owned(),
            addr: Some(sa(p)),
        })
        .collect();
    c
}

fn edge_cfg(mac_last: u8, ip: [u8; 4], sns: &[&str]) -> EdgeConfig {
    let mut c = EdgeConfig::new(
        Community::new("rocks").unwrap(),
        sns.iter().map(|s| s.to_string()).collect(),
    );
    c.mac = Mac([2, 0, 0, 0, 0, mac_last]);
    c.desc = format!("e{mac_last}");
    c.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::from(ip), 24));
    c
}

fn frame(sim: &Sim, a: NodeId, b: NodeId, payload: &[u8]) -> Vec<u8> {
    let ea = sim.edge(a);
    let eb = sim.edge(b);
    ipv4_frame(
        ea.mac().0,
        eb.mac().0,
        ea.tap_addr().ip,
        eb.tap_addr().ip,
        payload,
    )
}

/// `n` frames a→b one second apart; how many arrived intact.
fn exchange(sim: &mut Sim, a: NodeId, b: NodeId, n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let f = frame(sim, a, b, format!("ping {i}").as_bytes());
        sim.send_frame(a, &f);
        sim.run_for(Duration::from_secs(1));
        ok += sim.take_tap(b).iter().filter(|g| **g == f).count();
    }
    ok
}

fn registered(sim: &Sim, ids: &[NodeId]) -> bool {
    ids.iter().all(|&i| sim.edge(i).is_registered())
}

fn members(sim: &Sim, sn: NodeId) -> Vec<SocketAddr> {
    let mut v: Vec<_> = sim
        .supernode(sn)
        .federation()
        .into_iter()
        .filter_map(|m| m.addr)
        .collect();
    v.sort();
    v
}

/// sn1 `-l sn2`; edge a knows only sn1, edge b only sn2.
fn two_federated(seed: u64) -> (Sim, NodeId, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let s1 = sim.add_supernode("sn1", sa(SN1), sn_cfg(0xf1, &[SN2]));
    let s2 = sim.add_supernode("sn2", sa(SN2), sn_cfg(0xf2, &[]));
    sim.run_for(Duration::from_secs(1));
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, [10, 0, 0, 1], &[SN1]),
    );
    let b = sim.add_edge(
        "b",
        sa("198.51.100.2:50002"),
        None,
        edge_cfg(2, [10, 0, 0, 2], &[SN2]),
    );
    assert!(sim.run_until_cond(Duration::from_secs(10), |s| registered(s, &[a, b])));
    (sim, s1, s2, a, b)
}

#[test]
fn federated_supernodes_relay_then_p2p_and_share_lists() {
    let (mut sim, s1, s2, a, b) = two_federated(1);
    // Both supernodes know each other (sn2 learnt sn1 from its REGISTER_SUPER).
    assert_eq!(members(&sim, s1), vec![sa(SN2)]);
    assert_eq!(members(&sim, s2), vec![sa(SN1)]);
    assert_eq!(
        sim.supernode(s1).federation()[0].mac,
        Mac([2, 0, 0, 0, 0, 0xf2])
    );
    // Each edge learnt the other supernode from its ACK list.
    assert!(sim.edge(a).supernode_addrs().contains(&Some(sa(SN2))));
    assert!(sim.edge(b).supernode_addrs().contains(&Some(sa(SN1))));
    // a at sn1 reaches b at sn2 and back.
    assert_eq!(exchange(&mut sim, a, b, 5), 5);
    assert_eq!(exchange(&mut sim, b, a, 5), 5);
    // Then P2P: each has the other as a direct peer.
    sim.run_for(Duration::from_secs(5));
    assert!(
        sim.edge(a)
            .peers()
            .iter()
            .any(|p| p.mac == sim.edge(b).mac() && p.direct),
        "{:?}",
        sim.edge(a).peers()
    );
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    let st1 = sim.supernode(s1).stats();
    assert!(st1.fed_forwarded > 0 && st1.fed_reg_sent > 0);
    // Spread registrations: each supernode holds only its own edge.
    assert_eq!(sim.supernode(s1).edges().len(), 1);
    assert_eq!(sim.supernode(s2).edges().len(), 1);
    // Management: the federation's member first, as a -/- row.
    let rows = sim.mgmt(s1, "r 1 edges");
    assert!(
        rows[1].contains("\"community\":\"-/-\"") && rows[1].contains(SN2),
        "{rows:?}"
    );
    // Steady state for a few minutes: nothing dropped, members kept.
    sim.run_for(Duration::from_secs(180));
    assert_eq!(members(&sim, s1), vec![sa(SN2)]);
    assert_eq!(members(&sim, s2), vec![sa(SN1)]);
    assert_eq!(exchange(&mut sim, b, a, 3), 3);
    for s in [s1, s2] {
        let st = sim.supernode(s).stats();
        assert_eq!(st.drop_count(DropReason::FromUnknownSupernode), 0);
        assert_eq!(st.drop_count(DropReason::StampRejected), 0);
    }
}

#[test]
fn spoofed_mac_at_another_supernode_is_refused_there() {
    let (mut sim, s1, s2, a, _b) = two_federated(2);
    // An impostor with a's MAC (another random token) registers at sn2.
    let mut ci = edge_cfg(1, [10, 0, 0, 9], &[SN2]);
    ci.desc = "impostor".into();
    let c = sim.add_edge("c", sa("198.51.100.9:50009"), None, ci);
    sim.run_for(Duration::from_secs(8));
    // sn2 forwarded the registration, sn1 refused it (a holds the MAC), the
    // NAK reached the impostor through sn2, which dropped it.
    let ev = sim.take_events(c);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::RegistrationNak { .. })),
        "{ev:?}"
    );
    assert!(
        !sim.supernode(s2)
            .edges()
            .iter()
            .any(|e| e.mac == Mac([2, 0, 0, 0, 0, 1])),
        "the impostor is not registered at sn2"
    );
    assert!(sim.supernode(s1).stats().reg_super_nak > 0);
    // a is still registered at sn1 and unaffected.
    assert!(sim.edge(a).is_registered());
    assert_eq!(sim.supernode(s1).edges()[0].sock, sa("198.51.100.1:50001"));
}

#[test]
fn learnt_member_purged_and_edges_fail_over() {
    // sn1 -l sn2, sn3 -l sn2: sn1 learns sn3 from sn2's ACK list.
    let mut sim = Sim::new(3);
    let s1 = sim.add_supernode("sn1", sa(SN1), sn_cfg(0xf1, &[SN2]));
    let s2 = sim.add_supernode("sn2", sa(SN2), sn_cfg(0xf2, &[]));
    let s3 = sim.add_supernode("sn3", sa(SN3), sn_cfg(0xf3, &[SN2]));
    assert!(sim.run_until_cond(Duration::from_secs(60), |s| {
        members(s, s1).len() == 2 && members(s, s3).len() == 2 && members(s, s2).len() == 2
    }));
    assert_eq!(members(&sim, s1), vec![sa(SN2), sa(SN3)]);
    // Edges: a knows only sn3, b only sn1.
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, [10, 0, 0, 1], &[SN3]),
    );
    let b = sim.add_edge(
        "b",
        sa("198.51.100.2:50002"),
        None,
        edge_cfg(2, [10, 0, 0, 2], &[SN1]),
    );
    assert!(sim.run_until_cond(Duration::from_secs(10), |s| registered(s, &[a, b])));
    sim.run_for(Duration::from_secs(25));
    // a learnt both other supernodes.
    let known = sim.edge(a).supernode_addrs();
    assert!(
        known.contains(&Some(sa(SN1))) && known.contains(&Some(sa(SN2))),
        "{known:?}"
    );
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    // sn3 dies: a fails over to a learnt supernode.
    sim.take_events(a);
    let t0 = sim.now().mono;
    sim.kill(s3);
    assert!(
        sim.run_until_cond(Duration::from_secs(90), |s| {
            s.edge(a).is_registered() && s.edge(a).current_supernode() != Some(sa(SN3))
        }),
        "a re-registered elsewhere"
    );
    let failover = sim.now().mono - t0;
    eprintln!("simulated failover of a after its supernode died: {failover:?}");
    assert!(failover < Duration::from_secs(60));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert_eq!(exchange(&mut sim, b, a, 3), 3);
    // sn3 is learnt at sn1 (purged after 90 s of silence); sn2 keeps
    // nothing it did not configure either.
    sim.run_for(Duration::from_secs(110));
    assert_eq!(members(&sim, s1), vec![sa(SN2)]);
    assert_eq!(members(&sim, s2), vec![sa(SN1)]);
    let purged = &sim.node(s1).sn_events;
    assert!(
        purged.iter().any(|(_, e)| matches!(
            e,
            SupernodeEvent::FederationPurged { sock: Some(s), .. } if *s == sa(SN3)
        )),
        "{purged:?}"
    );
}

#[test]
fn member_cap_counts_the_excess() {
    let mut sim = Sim::new(4);
    let mut cfg = sn_cfg(0xf1, &[]);
    cfg.max_federation = 2;
    let s1 = sim.add_supernode("sn1", sa(SN1), cfg);
    for i in 2..6u8 {
        let addr = format!("203.0.113.{i}:7654");
        sim.add_supernode(&format!("sn{i}"), sa(&addr), sn_cfg(0xf0 + i, &[SN1]));
    }
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.supernode(s1).federation().len(), 2);
    assert!(
        sim.supernode(s1)
            .stats()
            .drop_count(DropReason::FederationFull)
            >= 2
    );
}
