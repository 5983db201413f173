//! The whole per-packet path of the sans-IO edge, in memory (issue 7 §2):
//! TAP frame → `Edge::encapsulate` (compress-less, encrypt, header, `-H`)
//! → datagram → `Edge::decapsulate` (`-H`, checks, decrypt, replay window,
//! peer tables) → TAP frame, between two edges that registered with a
//! supernode and know each other as direct P2P peers (set up with the
//! simulator, then driven by hand: no sockets, no queue).
//!
//! Groups:
//! * `edge_path/<transform>[+he]/<size>`: one frame a→b per iteration,
//!   frame sizes 64, 512 and 1400 bytes (Ethernet frame, `Throughput::Bytes`);
//! * `edge_path/baseline/<transform>/1400`: the same transform's encrypt +
//!   decrypt of 1400 bytes, no core, so `round trip / baseline` is the
//!   core's overhead ratio measured in the same run;
//! * `edge_path/baseline/he/1400`: header encryption + decryption of a
//!   1400-byte datagram alone (what `-H` adds at least), and
//!   `edge_path/baseline/he-checksums/1400`: its two pearson64 checksums.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use n2n_core::MAX_DATAGRAM;
use n2n_core::sim::fixture::{self, mac};
use n2n_core::sim::{NodeId, Sim};
use n2n_proto::he::{CommunityHe, HeKeyKind};
use n2n_proto::transform::{NonceSeed, Transform, packet_aad};
use n2n_proto::types::{Community, CompressionId, TransformId};
use n2n_proto::wire::{HEADER_LEN, Header, MsgType};

const SIZES: [usize; 3] = [64, 512, 1400];
const KEY: &[u8] = b"s3cret";
/// null, AES (-A3), ChaCha20 (-A4), Speck (-A5), ChaCha20-Poly1305 (-A6),
/// AES-256-GCM (-A7).
const TRANSFORMS: [TransformId; 6] = [
    TransformId::Null,
    TransformId::Aes,
    TransformId::ChaCha20,
    TransformId::Speck,
    TransformId::ChaCha20Poly1305,
    TransformId::Aes256Gcm,
];

/// An Ethernet/IPv4/UDP frame of exactly `size` bytes from edge `s` to `d`.
fn frame(s: u8, d: u8, size: usize) -> Vec<u8> {
    let f = fixture::frame(s, mac(d), fixture::ip(d), size, 12345);
    assert_eq!(f.len(), size);
    f
}

/// Two edges `a`, `b` with transform `t`, registered and direct P2P peers.
fn setup(t: TransformId, he: bool) -> (Sim, NodeId, NodeId) {
    let seed = u64::from(t.to_wire()) * 2 + u64::from(he);
    fixture::p2p_pair(seed, |i| {
        fixture::edge_config(i, t, KEY, he, CompressionId::None)
    })
}

/// One frame a→b: encapsulate at `a`, decapsulate at `b`; returns the
/// frame length written to `tap`.
#[inline(always)]
fn round_trip(
    sim: &mut Sim,
    (a, b): (NodeId, NodeId),
    from: SocketAddr,
    f: &[u8],
    out: &mut [u8],
    tap: &mut [u8],
) -> usize {
    let now = sim.now();
    let t = sim
        .edge_mut(a)
        .encapsulate(now, black_box(f), out)
        .expect("dropped at a");
    sim.edge_mut(b)
        .decapsulate(now, from, &mut out[..t.len], false, tap)
        .expect("dropped at b")
}

fn edge_path(c: &mut Criterion) {
    for t in TRANSFORMS {
        for he in [false, true] {
            let (mut sim, a, b) = setup(t, he);
            let from = sim.node(a).addr;
            let to = sim.node(b).addr;
            let name = format!("edge_path/{}{}", t.name(), if he { "+he" } else { "" });
            let mut g = c.benchmark_group(name);
            let mut out = vec![0u8; MAX_DATAGRAM];
            let mut tap = vec![0u8; MAX_DATAGRAM];
            for &size in &SIZES {
                let f = frame(1, 2, size);
                // The datagram goes straight to b, and b gets the frame back.
                let now = sim.now();
                let tx = sim.edge_mut(a).encapsulate(now, &f, &mut out).unwrap();
                assert_eq!(tx.dst, to, "{}: not sent P2P", t.name());
                let n = round_trip(&mut sim, (a, b), from, &f, &mut out, &mut tap);
                assert_eq!(&tap[..n], &f[..]);
                g.throughput(Throughput::Bytes(size as u64));
                g.bench_function(BenchmarkId::from_parameter(size), |bch| {
                    bch.iter(|| round_trip(&mut sim, (a, b), from, &f, &mut out, &mut tap))
                });
            }
            g.finish();
            let drops: Vec<_> = sim.edge(b).stats().nonzero_drops().collect();
            assert!(drops.is_empty(), "{}: drops at b: {drops:?}", t.name());
        }
    }
}

fn baseline(c: &mut Criterion) {
    let size = 1400;
    let community = *Community::new("rocks").unwrap().field();
    let mut g = c.benchmark_group("edge_path/baseline");
    g.throughput(Throughput::Bytes(size as u64));
    let f = frame(1, 2, size);
    let aad = packet_aad(3, &community, &mac(1), &mac(2), 0, 7);
    let mut payload = vec![0u8; MAX_DATAGRAM];
    let mut back = vec![0u8; MAX_DATAGRAM];
    for t in TRANSFORMS {
        let seed = NonceSeed {
            prefix: 0x1234_5678,
            start: 0,
        };
        let mut x = Transform::new(t, KEY, &community, seed).unwrap();
        g.bench_function(BenchmarkId::new(t.name(), size), |bch| {
            bch.iter(|| {
                let n = x
                    .encrypt(black_box(&f), [0x5a; 16], &aad, &mut payload)
                    .unwrap();
                x.decrypt(&payload[..n], &aad, &mut back).unwrap().len
            })
        });
    }
    // Header encryption of a 1400-byte PACKET alone: encrypt + decrypt.
    let he = CommunityHe::new(community);
    let mut dg = vec![0u8; size];
    let header = Header::new(Community::from_field(community));
    assert_eq!(header.emit(MsgType::Packet, &mut dg), Ok(HEADER_LEN));
    let mut stamp = n2n_proto::he::stamp_from_unix(1_767_225_600, 0);
    g.bench_function(BenchmarkId::new("he", size), |bch| {
        bch.iter(|| {
            stamp += 0x10;
            he.encrypt(
                black_box(&mut dg),
                40,
                stamp,
                [1, 2, 3, 4],
                HeKeyKind::Dynamic,
            )
            .unwrap();
            he.decrypt(&mut dg).unwrap().1.len
        })
    });
    // Its floor: the two pearson64 checksums over the whole datagram (one
    // to encrypt, one to check), a serial chain of 64-bit multiplies.
    g.bench_function(BenchmarkId::new("he-checksums", size), |bch| {
        bch.iter(|| {
            n2n_proto::crypto::pearson::hash64(black_box(&dg))
                ^ n2n_proto::crypto::pearson::hash64(black_box(&dg))
        })
    });
    g.finish();
}

criterion_group!(benches, edge_path, baseline);
criterion_main!(benches);
