//! Header encryption (crypto.md §4): encrypt and decrypt of a 1400-byte
//! PACKET (H = 38) and of a 79-byte REGISTER_SUPER (H = L), plus the cost of
//! rejecting a datagram of another community (what a supernode pays per
//! candidate community).
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use n2n_proto::he::{self, CommunityHe, HeKeys};
use std::hint::black_box;

fn field(name: &[u8]) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..name.len()].copy_from_slice(name);
    f
}

fn message(len: usize, name20: &[u8; 20]) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    m[0] = 3;
    m[1] = 2;
    m[4..24].copy_from_slice(name20);
    m
}

fn bench(c: &mut Criterion) {
    let name20 = field(b"mynetwork");
    let keys = HeKeys::from_community_field(&name20);
    let other = CommunityHe::new(field(b"othernet"));
    let stamp = 0x655e_0f80_000a_1230;
    let rand4 = [0x55, 0xb2, 0x77, 0xa1];

    for (label, len, h) in [("packet_1400_h38", 1400, 38), ("register_super_79", 79, 79)] {
        let plain = message(len, &name20);
        let mut wire = plain.clone();
        let enc = he::encrypt(&mut wire, h, stamp, rand4, &keys, &name20);
        assert!(enc.is_ok());
        assert!(he::decrypt(&mut wire.clone(), &keys, &name20).is_ok());
        assert!(other.decrypt(&mut wire.clone()).is_err());

        let mut g = c.benchmark_group(format!("he/{label}"));
        g.throughput(Throughput::Bytes(len as u64));
        // Encrypting in place repeatedly costs the same as encrypting the
        // plain message (the work does not depend on the content).
        let mut buf = plain.clone();
        g.bench_function("encrypt", |b| {
            b.iter(|| he::encrypt(black_box(&mut buf), h, stamp, rand4, &keys, &name20))
        });
        g.bench_function("decrypt", |b| {
            b.iter_batched_ref(
                || wire.clone(),
                |buf| he::decrypt(black_box(buf), &keys, &name20),
                BatchSize::SmallInput,
            )
        });
        // Another community: dynamic attempt then static (len − 16) attempt,
        // both refused on the magic, buffer untouched.
        let mut probe = wire.clone();
        g.bench_function("reject_other_community", |b| {
            b.iter(|| other.decrypt(black_box(&mut probe)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
