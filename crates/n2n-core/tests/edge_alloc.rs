//! The edge's PACKET path (encapsulate / decapsulate) allocates nothing
//! after warm-up: direct and relayed, every transform, with and without
//! header encryption and LZO compression.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_core::MAX_DATAGRAM;
use n2n_core::edge::{EdgeConfig, P2pMode, TapAddrMode};
use n2n_core::sim::{NodeId, Sim, ipv4_frame};
use n2n_core::supernode::SupernodeConfig;
use n2n_core::supernode::community_list::CommunityList;
use n2n_proto::types::{Community, CompressionId, DevAddr, Mac, TransformId};

#[global_allocator]
static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;

use n2n_testdata::allocations as allocs;

const SN: &str = "203.0.113.1:7654";

fn setup(t: u8, he: bool, comp: CompressionId, p2p: P2pMode) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(u64::from(t) * 7 + u64::from(he));
    let mut sc = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 0xfe]));
    sc.communities = Some(CommunityList::parse("rocks\n").unwrap());
    sim.add_supernode("sn", SN.parse().unwrap(), sc);
    let mk = |i: u8| {
        let mut c = EdgeConfig::new(Community::new("rocks").unwrap(), vec![SN.to_owned()]);
        c.mac = Mac([2, 0, 0, 0, 0, i]);
        c.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::new(10, 0, 0, i), 24));
        c.transform = TransformId::try_from(t).unwrap();
        c.key = if t == 1 {
            Vec::new()
        } else {
            b"s3cret".to_vec()
        };
        c.compression = comp;
        c.header_encryption = he;
        c.p2p = p2p;
        c
    };
    let a = sim.add_edge("a", "198.51.100.1:50001".parse().unwrap(), None, mk(1));
    let b = sim.add_edge("b", "198.51.100.2:50002".parse().unwrap(), None, mk(2));
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| {
        s.edge(a).is_registered() && s.edge(b).is_registered()
    }));
    (sim, a, b)
}

/// Moves `n` frames a→b and b→a by hand (encapsulate, then decapsulate at
/// the receiver, through the supernode when the datagram goes there);
/// returns the allocations counted during the edge calls only.
fn pump(sim: &mut Sim, a: NodeId, b: NodeId, n: usize) -> u64 {
    let sn_addr: SocketAddr = SN.parse().unwrap();
    let addr = |s: &Sim, x: NodeId| s.node(x).addr;
    let mut out = vec![0u8; MAX_DATAGRAM];
    let mut relay = vec![0u8; MAX_DATAGRAM];
    let mut tap = vec![0u8; MAX_DATAGRAM];
    let fa = ipv4_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        &[b'x'; 600],
    );
    let fb = ipv4_frame(
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 1],
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        &[b'y'; 600],
    );
    let mut counted = 0;
    for i in 0..n {
        let (x, y, f) = if i % 2 == 0 { (a, b, &fa) } else { (b, a, &fb) };
        let now = sim.now();
        let from = addr(sim, x);
        let before = allocs();
        let t = sim
            .edge_mut(x)
            .encapsulate(now, f, &mut out)
            .expect("dropped");
        counted += allocs() - before;
        let (src, dgram): (SocketAddr, &mut [u8]) = if t.dst == sn_addr {
            // Relay the way a supernode does (outside the counted calls).
            let mut dg = out[..t.len].to_vec();
            if sim.edge(x).config().header_encryption {
                let he = n2n_proto::he::CommunityHe::new(*sim.edge(x).community().field());
                let (_, d) = he.decrypt(&mut dg).unwrap();
                let n = n2n_proto::wire::relay_reencode(&dg[..d.len], from.into(), 1, &mut relay)
                    .unwrap();
                let stamp = now.he_stamp() + 0x10 * i as u64;
                let h = n2n_proto::wire::packet_header_len(Some(&from.into()));
                he.encrypt(
                    &mut relay[..n],
                    h,
                    stamp,
                    [1, 2, 3, 4],
                    n2n_proto::he::HeKeyKind::Dynamic,
                )
                .unwrap();
                (sn_addr, &mut relay[..n])
            } else {
                let n = n2n_proto::wire::relay_reencode(&dg, from.into(), 1, &mut relay).unwrap();
                (sn_addr, &mut relay[..n])
            }
        } else {
            assert_eq!(t.dst, addr(sim, y));
            (from, &mut out[..t.len])
        };
        let before = allocs();
        let got = sim
            .edge_mut(y)
            .decapsulate(now, src, dgram, false, &mut tap);
        counted += allocs() - before;
        assert_eq!(got.map(|n| &tap[..n]), Some(&f[..]), "frame {i}");
        sim.run_for(Duration::from_millis(1));
    }
    counted
}

#[test]
fn packet_path_does_not_allocate_after_warm_up() {
    for t in 1..=7u8 {
        for he in [false, true] {
            for comp in [CompressionId::None, CompressionId::Lzo] {
                for p2p in [P2pMode::Enabled, P2pMode::SupernodeOnly] {
                    let (mut sim, a, b) = setup(t, he, comp, p2p);
                    // Warm-up through the simulator: hole punching, peer
                    // tables, replay windows.
                    for _ in 0..3 {
                        pump(&mut sim, a, b, 4);
                        sim.run_for(Duration::from_secs(1));
                    }
                    let direct = sim.edge(a).peers().iter().any(|p| p.direct);
                    assert_eq!(direct, p2p == P2pMode::Enabled, "transform {t} he {he}");
                    let n = pump(&mut sim, a, b, 40);
                    assert_eq!(
                        n, 0,
                        "transform {t} he {he} {comp} {p2p:?}: {n} allocations"
                    );
                }
            }
        }
    }
}

/// User/password (`-J`): the PACKET path with the dynamic key and the
/// IV-covering header encryption allocates nothing either (P2P; the warm-up
/// goes through the simulated supernode).
#[test]
fn user_password_packet_path_does_not_allocate() {
    use n2n_proto::auth::{PrivateKey, PublicKey, UserKeys};
    for t in [TransformId::ChaCha20, TransformId::Speck] {
        let mut sim = Sim::new(99);
        let mut sc = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 0xfe]));
        let mut list = String::from("rocks\n");
        for (u, p) in [("a", "pa"), ("b", "pb")] {
            let k = PrivateKey::user(u.as_bytes(), p.as_bytes()).public_key();
            list.push_str(&format!("* {u} {k}\n"));
        }
        sc.communities = Some(CommunityList::parse(&list).unwrap());
        sim.add_supernode("sn", SN.parse().unwrap(), sc);
        let mk = |i: u8, u: &str, p: &str| {
            let mut c = EdgeConfig::new(Community::new("rocks").unwrap(), vec![SN.to_owned()]);
            c.mac = Mac([2, 0, 0, 0, 0, i]);
            c.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::new(10, 0, 0, i), 24));
            c.transform = t;
            c.key = b"s3cret".to_vec();
            c.desc = u.to_owned();
            c.user_password = Some(UserKeys::new(
                u.as_bytes(),
                p.as_bytes(),
                &PublicKey::default_federation(),
            ));
            c
        };
        let a = sim.add_edge(
            "a",
            "198.51.100.1:50001".parse().unwrap(),
            None,
            mk(1, "a", "pa"),
        );
        let b = sim.add_edge(
            "b",
            "198.51.100.2:50002".parse().unwrap(),
            None,
            mk(2, "b", "pb"),
        );
        assert!(sim.run_until_cond(Duration::from_secs(5), |s| {
            s.edge(a).is_registered() && s.edge(b).is_registered()
        }));
        for i in 0..6u8 {
            let (x, y) = if i % 2 == 0 { (a, b) } else { (b, a) };
            let f = ipv4_frame(
                sim.edge(x).mac().0,
                sim.edge(y).mac().0,
                sim.edge(x).tap_addr().ip,
                sim.edge(y).tap_addr().ip,
                b"warm-up",
            );
            sim.send_frame(x, &f);
            sim.run_for(Duration::from_secs(1));
        }
        assert!(sim.edge(a).peers().iter().any(|p| p.direct), "{t}: direct");
        pump(&mut sim, a, b, 4);
        let n = pump(&mut sim, a, b, 40);
        assert_eq!(n, 0, "{t}: {n} allocations");
    }
}
