//! The receive side's per-frame offload work in memory (issue 18): the
//! Internet checksum that the GRO coalescer verifies on every TCP segment
//! before it merges it, and the coalescer itself (verify, compare headers,
//! copy the payload) on a run of in-order segments.
//!
//! Groups:
//! * `offload/checksum/<bytes>`: [`n2n_offload::checksum::checksum`] of a
//!   1400-byte and a 64-byte buffer;
//! * `offload/coalesce/44x1448`: 44 consecutive 1448-byte-payload TCP/IPv4
//!   segments of one flow added to a [`Coalescer`], then taken as one
//!   super-frame (`Throughput::Bytes` of the segments);
//! * `offload/baseline/copy/1400`: copying 1400 bytes, the floor of any
//!   per-frame work that touches the payload, measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use n2n_offload::Coalescer;
use n2n_offload::checksum::{checksum, complete_checksum, fold, sum};

const SEGMENTS: usize = 44;
const PAYLOAD: usize = 1448;

/// An Ethernet/IPv4/TCP frame (20-byte TCP header, ACK) with sequence
/// number `seq` and `payload` pseudo-random bytes; both checksums right.
fn tcp_frame(seq: u32, payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 54 + payload];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&u16::try_from(40 + payload).unwrap().to_be_bytes());
    f[20] = 0x40; // DF
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 200, 0, 1]);
    f[30..34].copy_from_slice(&[10, 200, 0, 2]);
    let ip = checksum(&f[14..34]);
    f[24..26].copy_from_slice(&ip.to_be_bytes());
    f[34..36].copy_from_slice(&5201u16.to_be_bytes());
    f[36..38].copy_from_slice(&40000u16.to_be_bytes());
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[42..46].copy_from_slice(&7u32.to_be_bytes());
    f[46] = 5 << 4;
    f[47] = 0x10;
    f[48..50].copy_from_slice(&502u16.to_be_bytes());
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i * 7 + i / 13 + seq as usize) as u8;
    }
    // Pseudo-header sum in the checksum field, then complete it.
    let ps = fold(sum(&f[26..34], 6 + (f.len() - 34) as u64));
    f[50..52].copy_from_slice(&ps.to_be_bytes());
    complete_checksum(&mut f, 34, 16).unwrap();
    f
}

fn offload(c: &mut Criterion) {
    let mut g = c.benchmark_group("offload");
    let data: Vec<u8> = (0..1400).map(|i: usize| (i * 31 + i / 7) as u8).collect();
    for len in [1400usize, 64] {
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("checksum", len), &len, |b, &len| {
            b.iter(|| checksum(black_box(&data[..len])))
        });
    }
    let frames: Vec<Vec<u8>> = (0..SEGMENTS)
        .map(|i| tcp_frame(1000 + (i * PAYLOAD) as u32, PAYLOAD))
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut gro = Coalescer::new();
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(format!("coalesce/{SEGMENTS}x{PAYLOAD}"), |b| {
        b.iter(|| {
            for f in &frames {
                assert!(gro.add(black_box(f)), "not merged");
            }
            black_box(gro.take().len())
        })
    });
    let mut out = vec![0u8; 1400];
    g.throughput(Throughput::Bytes(1400));
    g.bench_function("baseline/copy/1400", |b| {
        b.iter(|| {
            out.copy_from_slice(black_box(&data));
            black_box(out[700])
        })
    });
    g.finish();
}

criterion_group!(benches, offload);
criterion_main!(benches);
