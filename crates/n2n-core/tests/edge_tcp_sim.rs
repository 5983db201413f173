//! `-S2` edges (`P2pMode::SupernodeTcp`) in the simulator. The core does
//! not know the transport: the driver carries the datagrams for the
//! current supernode over its TCP connection, so the simulator's datagram
//! links model that connection. What is checked here is the core's side
//! of `-S2` (behaviour.md §2.2): one REGISTER_SUPER attempt per supernode
//! before failing over (faster than UDP's three, measured in the same
//! run), no P2P, no supernode PINGs, and an immediate REGISTER_SUPER when
//! the driver reports a (re)connection.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_core::edge::{EdgeConfig, Event, P2pMode, TapAddrMode};
use n2n_core::sim::{NodeId, Sim, ipv4_frame};
use n2n_core::supernode::SupernodeConfig;
use n2n_proto::types::{Community, DevAddr, Mac};

const SN1: &str = "203.0.113.1:7654";
const SN2: &str = "203.0.113.2:7654";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn cfg(last: u8, mode: P2pMode) -> EdgeConfig {
    let mut c = EdgeConfig::new(
        Community::new("rocks").unwrap(),
        vec![SN1.to_string(), SN2.to_string()],
    );
    c.mac = Mac([2, 0, 0, 0, 0, last]);
    c.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::new(10, 0, 0, last), 24));
    c.p2p = mode;
    c
}

fn frame(sim: &Sim, a: NodeId, b: NodeId, payload: &[u8]) -> Vec<u8> {
    let (ea, eb) = (sim.edge(a), sim.edge(b));
    ipv4_frame(
        ea.mac().0,
        eb.mac().0,
        ea.tap_addr().ip,
        eb.tap_addr().ip,
        payload,
    )
}

fn delivered(sim: &mut Sim, a: NodeId, b: NodeId, n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let f = frame(sim, a, b, format!("f{i}").as_bytes());
        sim.send_frame(a, &f);
        sim.run_for(Duration::from_millis(500));
        ok += sim.take_tap(b).iter().filter(|g| **g == f).count();
    }
    ok
}

struct World {
    sim: Sim,
    s1: NodeId,
    s2: NodeId,
    tcp: [NodeId; 2],
    udp: [NodeId; 2],
}

fn world(seed: u64) -> World {
    let mut sim = Sim::new(seed);
    let s1 = sim.add_supernode(
        "sn1",
        sa(SN1),
        SupernodeConfig::new(Mac([2, 0, 0, 0, 1, 1])),
    );
    let s2 = sim.add_supernode(
        "sn2",
        sa(SN2),
        SupernodeConfig::new(Mac([2, 0, 0, 0, 1, 2])),
    );
    let add = |sim: &mut Sim, n: u8, mode| {
        sim.add_edge(
            &format!("e{n}"),
            sa(&format!("198.51.100.{n}:5000")),
            None,
            cfg(n, mode),
        )
    };
    let tcp = [
        add(&mut sim, 1, P2pMode::SupernodeTcp),
        add(&mut sim, 2, P2pMode::SupernodeTcp),
    ];
    let udp = [
        add(&mut sim, 3, P2pMode::SupernodeOnly),
        add(&mut sim, 4, P2pMode::SupernodeOnly),
    ];
    assert!(
        sim.run_until_cond(Duration::from_secs(30), |s| s.supernode(s1).edges().len()
            == 4)
    );
    World {
        sim,
        s1,
        s2,
        tcp,
        udp,
    }
}

#[test]
fn tcp_edges_relay_through_the_supernode_only() {
    let mut w = world(1);
    let [a, b] = w.tcp;
    let [c, _] = w.udp;
    assert!(w.sim.edge(a).uses_tcp() && !w.sim.edge(c).uses_tcp());
    // No PING phase over TCP: the first -l supernode is taken at once.
    assert_eq!(w.sim.edge(a).current_supernode(), Some(sa(SN1)));
    assert_eq!(delivered(&mut w.sim, a, b, 5), 5);
    assert_eq!(delivered(&mut w.sim, a, c, 5), 5);
    assert_eq!(delivered(&mut w.sim, c, a, 5), 5);
    w.sim.run_for(Duration::from_secs(60));
    assert_eq!(delivered(&mut w.sim, b, a, 3), 3);
    for e in w.tcp {
        assert!(
            w.sim.edge(e).peers().iter().all(|p| !p.direct),
            "no P2P over -S2"
        );
    }
    let rows = w.sim.mgmt(a, "r 1 supernodes");
    assert!(
        rows.iter().any(|r| r.contains("\"proto\":\"TCP\"")),
        "{rows:?}"
    );
    let rows = w.sim.mgmt(c, "r 1 supernodes");
    assert!(rows.iter().all(|r| !r.contains("\"proto\"")), "{rows:?}");
}

#[test]
fn tcp_edges_fail_over_after_one_attempt() {
    let mut w = world(2);
    w.sim.run_for(Duration::from_secs(47));
    for e in w.tcp.iter().chain(&w.udp) {
        let _ = w.sim.take_events(*e);
    }
    w.sim.kill(w.s1);
    let t0 = w.sim.elapsed();
    let mut switched: [Option<Duration>; 4] = [None; 4];
    let ids = [w.tcp[0], w.tcp[1], w.udp[0], w.udp[1]];
    for _ in 0..600 {
        w.sim.run_for(Duration::from_millis(100));
        for (k, e) in ids.iter().enumerate() {
            if switched[k].is_none()
                && w.sim.take_events(*e).iter().any(|ev| {
                    matches!(ev, Event::SupernodeSwitched { to: Some(t), .. } if *t == sa(SN2))
                })
            {
                switched[k] = Some(w.sim.elapsed() - t0);
            }
        }
        if switched.iter().all(Option::is_some) {
            break;
        }
    }
    let s: Vec<Duration> = switched.iter().map(|x| x.expect("no failover")).collect();
    eprintln!(
        "failover after the kill: -S2 edges {:?} {:?}, UDP (-S1) edges {:?} {:?}",
        s[0], s[1], s[2], s[3]
    );
    // Same regular REGISTER_SUPER schedule: one attempt (TCP) switches
    // before three (UDP) do.
    assert!(s[0].max(s[1]) < s[2].min(s[3]), "{s:?}");
    assert!(
        w.sim
            .run_until_cond(Duration::from_secs(10), |x| x.supernode(w.s2).edges().len()
                == 4)
    );
    assert_eq!(delivered(&mut w.sim, w.tcp[0], w.udp[1], 3), 3);
}

#[test]
fn reconnection_registers_at_once() {
    let mut w = world(3);
    let [a, b] = w.tcp;
    w.sim.run_for(Duration::from_secs(3));
    // The supernode restarts; the driver's reconnection is reported.
    w.sim
        .restart_supernode(w.s1, SupernodeConfig::new(Mac([2, 0, 0, 0, 1, 1])));
    assert!(w.sim.supernode(w.s1).edges().is_empty());
    let now = w.sim.now();
    w.sim.edge_mut(a).tcp_connected(now);
    w.sim.edge_mut(b).tcp_connected(now);
    w.sim.flush(a);
    w.sim.flush(b);
    w.sim.run_for(Duration::from_millis(300));
    let n = w.sim.supernode(w.s1).edges().len();
    assert_eq!(n, 2, "both -S2 edges re-registered within 300 ms");
    assert_eq!(delivered(&mut w.sim, a, b, 3), 3);
}
