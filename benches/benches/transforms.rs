//! Payload transforms: encrypt and decrypt of every transform at 64, 512,
//! 1290 (C n2n's reference size) and 1400 bytes, plus LZO/zstd, plus
//! `transform/aes/encrypt_many/8x1400`: eight 1400-byte frames through
//! `Transform::encrypt_many` (four CBC chains interleaved) next to
//! `transform/aes/encrypt_each/8x1400`, the same eight with `encrypt`, in
//! the same run (the ratio is the batch's gain; per-element throughput).
#![allow(clippy::unwrap_used)]
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use n2n_proto::compress::{CompressionId, Compressor, Decompressor};
use n2n_proto::transform::{NonceSeed, Transform, TransformId, packet_aad};
use std::hint::black_box;

const SIZES: [usize; 4] = [64, 512, 1290, 1400];

fn frame(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 13) as u8).collect()
}

fn transforms(c: &mut Criterion) {
    let community = *b"rocks\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let aad = packet_aad(
        3,
        &community,
        &[2, 0, 0, 0, 0, 1],
        &[2, 0, 0, 0, 0, 2],
        1,
        6,
    );
    let seed = NonceSeed {
        prefix: 0x1234_5678,
        start: 0,
    };
    for id in TransformId::ALL {
        let mut g = c.benchmark_group(format!("transform/{}", id.name()));
        for &size in &SIZES {
            let mut t = Transform::new(id, b"s3cret", &community, seed).unwrap();
            let f = frame(size);
            let mut payload = vec![0u8; size + 64];
            let mut back = vec![0u8; size + 64];
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new("encrypt", size), |b| {
                b.iter(|| {
                    t.encrypt(black_box(&f), [0x5a; 16], &aad, &mut payload)
                        .unwrap()
                })
            });
            let n = t.encrypt(&f, [0x5a; 16], &aad, &mut payload).unwrap();
            g.bench_function(BenchmarkId::new("decrypt", size), |b| {
                b.iter(|| {
                    t.decrypt(black_box(&payload[..n]), &aad, &mut back)
                        .unwrap()
                })
            });
        }
        g.finish();
    }
}

fn compression(c: &mut Criterion) {
    // An ICMP-echo-like frame: header then a repeating ping pattern.
    let f: Vec<u8> = (0..1290)
        .map(|i| if i < 42 { i as u8 } else { (i % 48) as u8 })
        .collect();
    for id in [CompressionId::Lzo, CompressionId::Zstd] {
        let mut g = c.benchmark_group(format!("compress/{}", id.name()));
        g.throughput(Throughput::Bytes(f.len() as u64));
        let mut comp = Compressor::new();
        let mut dec = Decompressor::new();
        let mut out = vec![0u8; 4096];
        let mut back = vec![0u8; 2048];
        g.bench_function("compress/1290", |b| {
            b.iter(|| comp.compress(id, black_box(&f), &mut out).unwrap())
        });
        let n = comp.compress(id, &f, &mut out).unwrap().unwrap();
        g.bench_function("decompress/1290", |b| {
            b.iter(|| dec.decompress(id, black_box(&out[..n]), &mut back).unwrap())
        });
        g.finish();
    }
}

fn aes_batch(c: &mut Criterion) {
    const N: usize = 8;
    let community = *b"rocks\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let seed = NonceSeed {
        prefix: 0,
        start: 0,
    };
    let mut t = Transform::new(TransformId::Aes, b"s3cret", &community, seed).unwrap();
    let f = frame(1400);
    let randoms: [[u8; 16]; N] = core::array::from_fn(|i| [i as u8; 16]);
    let mut outs = vec![vec![0u8; 1400 + 64]; N];
    let mut g = c.benchmark_group("transform/aes");
    g.throughput(Throughput::Bytes((N * 1400) as u64));
    g.bench_function(format!("encrypt_each/{N}x1400"), |b| {
        b.iter(|| {
            for (o, r) in outs.iter_mut().zip(&randoms) {
                t.encrypt(black_box(&f), *r, &[], o).unwrap();
            }
        })
    });
    g.bench_function(format!("encrypt_many/{N}x1400"), |b| {
        b.iter(|| {
            let mut jobs: Vec<(&[u8; 16], &[u8], &mut [u8])> = randoms
                .iter()
                .zip(outs.iter_mut())
                .map(|(r, o)| (r, black_box(&f[..]), &mut o[..]))
                .collect();
            let mut lens = [Ok(0); N];
            t.encrypt_many(&mut jobs, &mut lens);
            black_box(lens)
        })
    });
    g.finish();
}

criterion_group!(benches, transforms, compression, aes_batch);
criterion_main!(benches);
