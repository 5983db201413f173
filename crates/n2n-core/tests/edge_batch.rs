//! `Edge::encapsulate_many` against `Edge::encapsulate` of each frame: two
//! identically seeded simulations, one sending every group of frames one
//! by one, the other in one call, give the same datagrams byte for byte,
//! the same queued control messages and the same counters — for AES (the
//! batched CBC path, with and without `-H`; with LZO, where it falls
//! back), the other transforms (one by one inside; ChaCha20 also with
//! user/password, which AES cannot have), and
//! groups mixing P2P frames, frames for the supernode (unknown MAC),
//! broadcasts, frames too large, and more than four frames; and the same
//! with `route_many` + `DataShard::encode_many` on a shard (`--threads`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use n2n_core::MAX_DATAGRAM;
use n2n_core::edge::{ENCODE_BATCH, EdgeConfig};
use n2n_core::sim::fixture::{self, frame, ip, mac};
use n2n_core::sim::{NodeId, Sim};
use n2n_proto::types::{CompressionId, TransformId};
use std::net::Ipv4Addr;

/// (name, seed, edge config of edge i).
type Case = (&'static str, u64, Box<dyn Fn(u8) -> EdgeConfig>);

fn cases() -> Vec<Case> {
    let plain = |t: TransformId, he: bool, comp: CompressionId| {
        Box::new(move |i: u8| fixture::edge_config(i, t, b"s3cret", he, comp))
            as Box<dyn Fn(u8) -> EdgeConfig>
    };
    vec![
        (
            "aes",
            1,
            plain(TransformId::Aes, false, CompressionId::None),
        ),
        (
            "aes -H",
            2,
            plain(TransformId::Aes, true, CompressionId::None),
        ),
        (
            "aes lzo",
            3,
            plain(TransformId::Aes, false, CompressionId::Lzo),
        ),
        (
            "chacha20 -H",
            4,
            plain(TransformId::ChaCha20, true, CompressionId::None),
        ),
        (
            "aes-gcm",
            5,
            plain(TransformId::Aes256Gcm, false, CompressionId::None),
        ),
        (
            "null",
            6,
            plain(TransformId::Null, false, CompressionId::None),
        ),
    ]
}

/// The supernode and edges a, b (direct peers); with `userpw` logged in
/// as users a and b (ChaCha20 or Speck only).
fn setup(seed: u64, mk: &dyn Fn(u8) -> EdgeConfig, userpw: bool) -> (Sim, NodeId, NodeId) {
    if !userpw {
        return fixture::p2p_pair(seed, mk);
    }
    let mut sim = Sim::new(seed);
    fixture::add_supernode(&mut sim, &[("a", "pa"), ("b", "pb")]);
    let a = fixture::add_edge(&mut sim, "a", fixture::with_user(mk(1), "a", "pa"));
    let b = fixture::add_edge(&mut sim, "b", fixture::with_user(mk(2), "b", "pb"));
    fixture::register(&mut sim, &[a, b]);
    for _ in 0..5 {
        sim.send_frame(a, &frame(1, mac(2), ip(2), 100, 4001));
        sim.send_frame(b, &frame(2, mac(1), ip(1), 100, 4002));
        sim.run_for(Duration::from_millis(200));
    }
    assert!(sim.edge(a).peers().iter().any(|p| p.direct));
    (sim, a, b)
}

/// The groups of frames a sends: TSO-like runs of equal segments, mixed
/// sizes, other destinations, drops.
fn groups() -> Vec<Vec<Vec<u8>>> {
    let p2p = |size: usize, port: u16| frame(1, mac(2), ip(2), size, port);
    let seg = |k: usize| {
        (0..k)
            .map(|j| p2p(1376, 5000 + j as u16))
            .collect::<Vec<_>>()
    };
    vec![
        seg(1),
        seg(4),
        seg(ENCODE_BATCH),
        seg(7),
        vec![p2p(1376, 1), p2p(1376, 2), p2p(900, 3)],
        vec![
            p2p(60, 1),
            p2p(1514, 2),
            p2p(61, 3),
            p2p(77, 4),
            p2p(1400, 5),
        ],
        // Unknown MAC (via the supernode), too large, broadcast, P2P.
        vec![
            frame(1, mac(9), ip(9), 300, 1),
            p2p(2100, 2),
            frame(1, [0xff; 6], Ipv4Addr::new(10, 0, 0, 255), 200, 3),
            p2p(1376, 4),
            p2p(1376, 5),
        ],
    ]
}

/// Every datagram a builds for `groups` (one by one, or in one call per
/// group), the control datagrams it queued after each group, and its
/// counters at the end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    OneByOne,
    Many,
    /// `route_many` on a shard, `encode_many` on it, drops counted after.
    Shard,
}

fn run(sim: &mut Sim, a: NodeId, mode: Mode) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, String) {
    let now = sim.now();
    let mut shard = sim.edge(a).data_shard();
    let mut sent = Vec::new();
    let mut queued = Vec::new();
    let mut bufs: Vec<Vec<u8>> = (0..ENCODE_BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    for g in groups() {
        let e = sim.edge_mut(a);
        if mode != Mode::OneByOne {
            let frames: Vec<&[u8]> = g.iter().map(Vec::as_slice).collect();
            let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
            let mut tx = [None; ENCODE_BATCH];
            if mode == Mode::Many {
                e.encapsulate_many(now, &frames, &mut outs[..g.len()], &mut tx);
            } else {
                let (mut routes, mut results) = ([None; ENCODE_BATCH], [None; ENCODE_BATCH]);
                let outs = &mut outs[..g.len()];
                e.route_many(now, &frames, &mut shard, outs, &mut routes, &mut results);
                shard.encode_many(&frames, &routes, outs, &mut results);
                for (t, r) in tx.iter_mut().zip(results) {
                    match r {
                        Some(Ok(d)) => *t = Some(d),
                        Some(Err(why)) => e.count_drop(why),
                        None => {}
                    }
                }
                e.sync_shard(&mut shard);
            }
            for (t, o) in tx.iter().zip(&outs) {
                sent.push(t.map(|t| (t.dst, o[..t.len].to_vec())).map_or_else(
                    Vec::new,
                    |(d, v)| {
                        let mut x = d.to_string().into_bytes();
                        x.extend(v);
                        x
                    },
                ));
            }
        } else {
            for (i, f) in g.iter().enumerate() {
                let t = e.encapsulate(now, f, &mut bufs[i]);
                sent.push(t.map_or_else(Vec::new, |t| {
                    let mut x = t.dst.to_string().into_bytes();
                    x.extend(&bufs[i][..t.len]);
                    x
                }));
            }
            for _ in g.len()..ENCODE_BATCH {
                sent.push(Vec::new());
            }
        }
        while let Some(d) = e.poll_transmit() {
            let mut x = d.dst.to_string().into_bytes();
            x.extend(d.bytes());
            queued.push(x);
            e.recycle_transmit(d);
        }
    }
    (sent, queued, format!("{:?}", sim.edge(a).stats()))
}

#[test]
fn encapsulate_many_equals_encapsulate_of_each() {
    for (name, seed, mk) in cases() {
        for userpw in [false, true] {
            if userpw && !name.starts_with("chacha20") {
                continue;
            }
            let (mut one, a1, _) = setup(seed, &*mk, userpw);
            let want = run(&mut one, a1, Mode::OneByOne);
            for mode in [Mode::Many, Mode::Shard] {
                let (mut many, a2, _) = setup(seed, &*mk, userpw);
                let got = run(&mut many, a2, mode);
                let what = format!("{name} user/password {userpw} {mode:?}");
                assert_eq!(got.0.len(), want.0.len(), "{what}");
                for (k, (g, w)) in got.0.iter().zip(&want.0).enumerate() {
                    assert_eq!(g, w, "{what}: datagram {k}");
                }
                assert!(
                    want.0.iter().filter(|d| !d.is_empty()).count() >= 30,
                    "{what}"
                );
                assert_eq!(got.1, want.1, "{what}: queued");
                assert_eq!(got.2, want.2, "{what}: counters");
            }
        }
    }
}
