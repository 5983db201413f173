//! Placeholder: replaced by the real benchmark of this area.
use criterion::{Criterion, criterion_group, criterion_main};
use n2n_proto::crypto::pearson;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let data = [0u8; 1400];
    c.bench_function("pearson64_1400", |b| {
        b.iter(|| pearson::hash64(black_box(&data)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
