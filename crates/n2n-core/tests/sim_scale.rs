//! Scale in the deterministic simulator (issue 13 item 5a): edges in 100
//! communities on one supernode, and on 5 federated supernodes (each `-l`
//! the other four; edges are given every supernode's address). Prints the
//! time to converge (simulated and wall), the control datagrams per second
//! at steady state, the fan-out of one broadcast and, federated, the
//! re-convergence after one supernode dies; asserts that everything
//! converged and the fan-out count.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use n2n_core::edge::{EdgeConfig, TapAddrMode};
use n2n_core::sim::{NodeId, Sim, ipv4_frame};
use n2n_core::supernode::{FederationPeer, SupernodeConfig};
use n2n_proto::types::{Community, DevAddr, Mac};

struct Net {
    sim: Sim,
    supernodes: Vec<NodeId>,
    /// Edges by community.
    edges: Vec<Vec<NodeId>>,
}

fn build(supernodes: usize, communities: usize, per_community: usize) -> Net {
    let mut sim = Sim::new(13);
    let sn_addrs: Vec<String> = (0..supernodes)
        .map(|i| format!("198.19.0.{}:7654", i + 1))
        .collect();
    let supernodes = sn_addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut cfg = SupernodeConfig::new(Mac([2, 0, 0, 0, 0xfe, i as u8]));
            cfg.max_edges_per_community = per_community.max(1);
            if supernodes > 1 {
                cfg.supernodes = sn_addrs
                    .iter()
                    .filter(|o| *o != a)
                    .map(|o| FederationPeer {
                        name: o.clone(),
                        addr: o.parse().ok(),
                    })
                    .collect();
            }
            sim.add_supernode(&format!("sn{i}"), a.parse().unwrap(), cfg)
        })
        .collect();
    let mut edges = Vec::new();
    let mut k = 0usize;
    for c in 0..communities {
        let mut ids = Vec::new();
        for i in 0..per_community {
            let mut cfg =
                EdgeConfig::new(Community::new(&format!("c{c}")).unwrap(), sn_addrs.clone());
            let b = (k as u32).to_be_bytes();
            cfg.mac = Mac([2, 0x10, b[0], b[1], b[2], b[3]]);
            cfg.desc = format!("e{k}");
            cfg.tap_addr = TapAddrMode::Static(DevAddr::new(
                Ipv4Addr::new(10, 200, (i / 250) as u8, (i % 250 + 1) as u8),
                16,
            ));
            let addr: SocketAddr = format!("198.18.{}.{}:50000", k / 250, k % 250 + 1)
                .parse()
                .unwrap();
            ids.push(sim.add_edge(&format!("e{k}"), addr, None, cfg));
            k += 1;
        }
        edges.push(ids);
    }
    Net {
        sim,
        supernodes,
        edges,
    }
}

fn registered(net: &Net) -> usize {
    net.edges
        .iter()
        .flatten()
        .filter(|&&e| net.sim.edge(e).is_registered())
        .count()
}

/// Every live supernode knows every other live one (federation lists
/// complete).
fn federation_complete(net: &Net) -> bool {
    let live: Vec<NodeId> = net
        .supernodes
        .iter()
        .copied()
        .filter(|&s| net.sim.node(s).up)
        .collect();
    live.iter().all(|&s| {
        net.sim
            .supernode(s)
            .federation()
            .iter()
            .filter(|f| f.alive)
            .count()
            >= live.len() - 1
    })
}

fn held(net: &Net) -> usize {
    net.supernodes
        .iter()
        .map(|&s| net.sim.supernode(s).edges().len())
        .sum()
}

/// Converge, measure steady state and one broadcast; returns the number of
/// edges registered.
fn scale(supernodes: usize, communities: usize, per_community: usize) -> usize {
    let wall = Instant::now();
    let mut net = build(supernodes, communities, per_community);
    let total = communities * per_community;
    let build_wall = wall.elapsed();
    let t = Instant::now();
    let mut sim_t = Duration::ZERO;
    while sim_t < Duration::from_secs(60)
        && (registered(&net) < total || held(&net) < total || !federation_complete(&net))
    {
        net.sim.run_for(Duration::from_millis(100));
        sim_t += Duration::from_millis(100);
    }
    let converge_wall = t.elapsed();
    let reg = registered(&net);
    // Steady state: 60 s of simulated time (three registration intervals).
    net.sim.record = true;
    let t = Instant::now();
    net.sim.run_for(Duration::from_secs(60));
    let steady_wall = t.elapsed();
    let sn_nodes = &net.supernodes;
    let control = net.sim.trace.len();
    let via_sn = net
        .sim
        .trace
        .iter()
        .filter(|d| sn_nodes.contains(&d.from_node) || sn_nodes.contains(&d.to_node))
        .count();
    net.sim.trace.clear();
    // One broadcast frame from the first edge of community 0.
    let src = net.edges[0][0];
    let before: u64 = sn_nodes
        .iter()
        .map(|&s| net.sim.supernode(s).stats().broadcast)
        .sum();
    let e = net.sim.edge(src);
    let f = ipv4_frame(
        e.mac().0,
        [0xff; 6],
        e.tap_addr().ip,
        Ipv4Addr::new(10, 200, 255, 255),
        b"broadcast",
    );
    net.sim.send_frame(src, &f);
    net.sim.run_for(Duration::from_millis(200));
    let fanout: u64 = sn_nodes
        .iter()
        .map(|&s| net.sim.supernode(s).stats().broadcast)
        .sum::<u64>()
        - before;
    let got = net.edges[0][1..]
        .iter()
        .filter(|&&id| net.sim.take_tap(id).contains(&f))
        .count();
    net.sim.record = false;
    println!(
        "sim scale: {supernodes} supernode(s), {total} edges in {communities} communities \
         (build {:.2} s wall)\n  converged: {reg}/{total} edges registered, {} held, in {:.1} s \
         simulated / {:.2} s wall\n  steady state: {:.0} datagrams/s in all, {:.0}/s to or from \
         supernodes (60 s simulated in {:.2} s wall)\n  one broadcast: {fanout} unicast copies by \
         the supernode, {got} of {} edges got it (at {total} edges in one community: {} copies)",
        build_wall.as_secs_f64(),
        held(&net),
        sim_t.as_secs_f64(),
        converge_wall.as_secs_f64(),
        control as f64 / 60.0,
        via_sn as f64 / 60.0,
        steady_wall.as_secs_f64(),
        per_community - 1,
        total - 1,
    );
    assert_eq!(fanout, (per_community - 1) as u64);
    assert_eq!(got, per_community - 1);
    if supernodes > 1 {
        reconverge(&mut net, total);
    }
    reg
}

/// One supernode dies: time until every edge is registered and held again
/// (by the others) and the federation lists have dropped it.
fn reconverge(net: &mut Net, total: usize) {
    let dead = net.supernodes[0];
    let orphans = net.sim.supernode(dead).edges().len();
    net.sim.kill(dead);
    let live: Vec<NodeId> = net.supernodes[1..].to_vec();
    let held_live = |net: &Net| -> usize {
        live.iter()
            .map(|&s| net.sim.supernode(s).edges().len())
            .sum()
    };
    let t = Instant::now();
    let mut sim_t = Duration::ZERO;
    // The dead supernode's edges are still listed (not yet purged) on the
    // others only once they re-registered there: wait for all of them.
    while sim_t < Duration::from_secs(180) && held_live(net) < total {
        net.sim.run_for(Duration::from_millis(500));
        sim_t += Duration::from_millis(500);
    }
    let held_all = held_live(net);
    println!(
        "  re-convergence after killing sn0 ({orphans} of its edges): {held_all}/{total} edges \
         held by the other supernodes after {:.1} s simulated / {:.2} s wall",
        sim_t.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        held_all, total,
        "not every edge moved off the dead supernode"
    );
}

#[test]
fn baseline_16_edges_one_community() {
    assert_eq!(scale(1, 1, 16), 16);
}

/// 100 communities; edges per community from `N2N_SIM_SCALE_PER_COMMUNITY`
/// (default 10: 1 000 edges in the suite; 100 gives the 10 000 of the
/// issue, which still takes minutes of wall time, see the note).
#[test]
fn edges_in_100_communities_one_supernode() {
    let per = std::env::var("N2N_SIM_SCALE_PER_COMMUNITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    assert_eq!(scale(1, 100, per), 100 * per);
}

/// The same on 5 federated supernodes (edges per community as above;
/// default 1 000 edges), then one supernode killed.
#[test]
fn edges_in_100_communities_five_federated_supernodes() {
    let per = std::env::var("N2N_SIM_SCALE_PER_COMMUNITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    assert_eq!(scale(5, 100, per), 100 * per);
}
