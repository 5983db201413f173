//! State caps under a registration flood: 100 000 REGISTER_SUPER with
//! distinct MACs (one community, then one new community each), the
//! registered edges keep being relayed, the excess is counted as named
//! drops and the tables stay at their caps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sn_common;

use std::time::{Duration, Instant};

use n2n_core::supernode::{DropReason, SupernodeConfig};
use n2n_proto::types::{DevAddr, Mac};
use n2n_proto::wire::{self, Message};
use sn_common::{SN_MAC, Sim, TestEdge};

const FLOOD: u32 = 100_000;

fn flood_edge(community: &str, i: u32) -> TestEdge {
    let b = i.to_be_bytes();
    let mut e = TestEdge::new(community, 0, "198.18.7.1:40000", [10, 9, 0, 0]);
    e.mac = Mac([0x02, 0x77, b[0], b[1], b[2], b[3]]);
    e.sock = format!(
        "198.18.{}.{}:{}",
        8 + (i % 4),
        1 + (i % 200),
        1024 + (i % 60_000)
    )
    .parse()
    .unwrap();
    e.dev_addr = DevAddr::UNSPECIFIED;
    e.token = [b[3]; 16];
    e
}

/// a → b relayed exactly once to b's socket.
fn relayed(sim: &mut Sim, a: &TestEdge, b: &TestEdge) -> bool {
    let out = sim.feed(a.sock, &a.packet(b.mac, b"still here"));
    out.len() == 1 && out[0].0 == b.sock
}

fn caps(per_community: usize, total: usize, communities: usize) -> Sim {
    let mut cfg = SupernodeConfig::new(SN_MAC);
    cfg.max_edges_per_community = per_community;
    cfg.max_edges = total;
    cfg.max_communities = communities;
    Sim::new(cfg)
}

#[test]
fn flood_of_new_macs_in_one_community_is_capped() {
    let mut sim = caps(1000, 5000, 64);
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let b = TestEdge::new("net1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    sim.register(&a);
    sim.register(&b);
    let t = Instant::now();
    for i in 0..FLOOD {
        let e = flood_edge("net1", i);
        sim.feed(e.sock, &e.reg_super(i));
        if i % 10_000 == 0 {
            // The registered edges keep working during the flood, and refresh.
            assert!(relayed(&mut sim, &a, &b), "a→b at {i}");
            assert!(relayed(&mut sim, &b, &a), "b→a at {i}");
            sim.register(&a);
            sim.register(&b);
        }
    }
    let wall = t.elapsed();
    let full = sim.drops(DropReason::CommunityFull);
    let edges = sim.sn.edges().len();
    assert_eq!(edges, 1000);
    assert_eq!(full, u64::from(FLOOD) - 998);
    assert!(relayed(&mut sim, &a, &b));
    // A known edge still re-registers (ACK) in the full community.
    let (_, ack) = sim.register(&a);
    assert!(
        matches!(wire::decode(&ack), Ok((_, Message::RegisterSuperAck(_)))),
        "ACK expected"
    );
    println!(
        "flood 100000 new MACs, one community (cap 1000): {edges} edges kept, {full} community_full \
         drops, {:.0} registrations/s (debug core, incl. test encoding)",
        f64::from(FLOOD) / wall.as_secs_f64()
    );
    // After the purge the flood's entries are gone and new edges get in.
    sim.advance(Duration::from_secs(65));
    sim.register(&a);
    sim.register(&b);
    sim.advance(Duration::from_secs(30));
    sim.sn.handle_timeout(sim.now);
    assert_eq!(sim.sn.edges().len(), 2);
    let c = TestEdge::new("net1", 3, "198.51.100.3:5000", [10, 1, 0, 3]);
    sim.register(&c);
    assert!(relayed(&mut sim, &c, &a));
}

#[test]
fn flood_of_new_communities_is_capped() {
    let mut sim = caps(1000, 5000, 64);
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let b = TestEdge::new("net1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    sim.register(&a);
    sim.register(&b);
    for i in 0..FLOOD {
        let e = flood_edge(&format!("c{}", i % 20_000), i);
        sim.feed(e.sock, &e.reg_super(i));
        if i % 10_000 == 0 {
            assert!(relayed(&mut sim, &a, &b), "a→b at {i}");
        }
    }
    let communities = sim.sn.communities().len();
    let edges = sim.sn.edges().len();
    assert_eq!(communities, 64);
    // 63 flood communities hold 5 flood edges each (20 000 names, 5 rounds).
    assert_eq!(edges, 2 + 63 * 5);
    let limit = sim.drops(DropReason::CommunityLimit);
    assert_eq!(limit, u64::from(FLOOD) - 63 * 5);
    assert!(relayed(&mut sim, &a, &b) && relayed(&mut sim, &b, &a));
    println!(
        "flood 100000 new MACs over 20000 community names (cap 64): {communities} communities, \
         {edges} edges, {limit} community_limit drops"
    );
}

#[test]
fn total_edge_cap_spans_communities() {
    let mut sim = caps(1000, 1500, 64);
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let b = TestEdge::new("net1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    sim.register(&a);
    sim.register(&b);
    for i in 0..10_000 {
        let e = flood_edge(&format!("c{}", i % 4), i);
        sim.feed(e.sock, &e.reg_super(i));
    }
    assert_eq!(sim.sn.edges().len(), 1500);
    let full = sim.drops(DropReason::CommunityFull);
    let limit = sim.drops(DropReason::EdgeLimit);
    assert_eq!(full + limit, 10_000 - 1498);
    assert!(limit > 0, "full {full} limit {limit}");
    assert!(relayed(&mut sim, &a, &b));
    // Visible in management (our `drops` command).
    let out = sim
        .sn
        .handle_mgmt(sim.now, "127.0.0.1:1".parse().unwrap(), b"r 1 drops");
    let row = format!("\"reason\":\"edge_limit\",\"count\":{limit}");
    assert!(
        out.replies.iter().any(|l| l.contains(&row)),
        "{:?}",
        out.replies
    );
}

#[test]
fn ip_index_follows_moves_rekeys_and_purges() {
    let mut sim = caps(1000, 5000, 64);
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    sim.register(&a);
    // Another MAC with another token on a's address: NAK (ip_in_use).
    let mut spoof = TestEdge::new("net1", 9, "198.51.100.9:5000", [10, 1, 0, 1]);
    sim.register(&spoof);
    assert_eq!(sim.sn.stats().reg_super_nak, 1);
    // a moves to a new socket and a new address: the old one is free.
    let mut a2 = a.clone();
    a2.sock = "198.51.100.1:6000".parse().unwrap();
    a2.dev_addr = DevAddr::new([10, 1, 0, 50].into(), 24);
    sim.register(&a2);
    sim.register(&spoof);
    assert_eq!(sim.sn.stats().reg_super_nak, 1, "10.1.0.1 still held");
    // The new address is held now.
    spoof.dev_addr = a2.dev_addr;
    spoof.mac = Mac([2, 0, 0, 0, 0, 10]);
    sim.register(&spoof);
    assert_eq!(sim.sn.stats().reg_super_nak, 2);
}
