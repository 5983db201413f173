//! The edge's PACKET path (encapsulate / decapsulate) allocates nothing
//! after warm-up: direct and relayed, every transform, with and without
//! header encryption and LZO compression.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_core::MAX_DATAGRAM;
use n2n_core::edge::P2pMode;
use n2n_core::sim::{NodeId, Sim, fixture, ipv4_frame};
use n2n_proto::types::{CompressionId, TransformId};

#[global_allocator]
static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;

use n2n_testdata::allocations as allocs;

fn setup(t: u8, he: bool, comp: CompressionId, p2p: P2pMode) -> (Sim, NodeId, NodeId) {
    let t = TransformId::try_from(t).unwrap();
    let mut sim = Sim::new(u64::from(t.to_wire()) * 7 + u64::from(he));
    fixture::add_supernode(&mut sim, &[]);
    let mk = |i: u8| {
        let mut c = fixture::edge_config(i, t, b"s3cret", he, comp);
        c.p2p = p2p;
        c
    };
    let a = fixture::add_edge(&mut sim, "a", mk(1));
    let b = fixture::add_edge(&mut sim, "b", mk(2));
    fixture::register(&mut sim, &[a, b]);
    (sim, a, b)
}

/// Moves `n` frames a→b and b→a by hand (encapsulate, then decapsulate at
/// the receiver, through the supernode when the datagram goes there);
/// returns the allocations counted during the edge calls only.
fn pump(sim: &mut Sim, a: NodeId, b: NodeId, n: usize) -> u64 {
    let sn_addr: SocketAddr = fixture::SN.parse().unwrap();
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
    for t in [TransformId::ChaCha20, TransformId::Speck] {
        let mut sim = Sim::new(99);
        fixture::add_supernode(&mut sim, &[("a", "pa"), ("b", "pb")]);
        let mk = |i: u8, u: &str, p: &str| {
            let c = fixture::edge_config(i, t, b"s3cret", false, CompressionId::None);
            fixture::with_user(c, u, p)
        };
        let a = fixture::add_edge(&mut sim, "a", mk(1, "a", "pa"));
        let b = fixture::add_edge(&mut sim, "b", mk(2, "b", "pb"));
        fixture::register(&mut sim, &[a, b]);
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

/// `encapsulate_many` (the batched AES path and the one-by-one fallback)
/// allocates nothing after warm-up either.
#[test]
fn encapsulate_many_does_not_allocate() {
    use n2n_core::edge::ENCODE_BATCH;
    for (t, comp) in [
        (3u8, CompressionId::None),
        (3, CompressionId::Lzo),
        (4, CompressionId::None),
    ] {
        let (mut sim, a, b) = setup(t, true, comp, P2pMode::Enabled);
        for _ in 0..3 {
            pump(&mut sim, a, b, 4);
            sim.run_for(Duration::from_secs(1));
        }
        let f = ipv4_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            std::net::Ipv4Addr::new(10, 0, 0, 2),
            &[b'x'; 1300],
        );
        let frames = [&f[..]; ENCODE_BATCH];
        let mut bufs = vec![vec![0u8; MAX_DATAGRAM]; ENCODE_BATCH];
        let now = sim.now();
        let mut sent = 0;
        let mut counted = 0;
        for round in 0..3 {
            let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
            let mut tx = [None; ENCODE_BATCH];
            let before = allocs();
            sim.edge_mut(a)
                .encapsulate_many(now, &frames, &mut outs, &mut tx);
            if round > 0 {
                counted += allocs() - before;
            }
            sent += tx.iter().flatten().count();
        }
        assert_eq!(sent, 3 * ENCODE_BATCH, "transform {t} {comp}");
        assert_eq!(counted, 0, "transform {t} {comp}: {counted} allocations");
    }
}
