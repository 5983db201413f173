//! The helpers themselves: the allocator counts, the vectors load.
#![allow(clippy::unwrap_used)]

use n2n_testdata::{CountingAlloc, allocations_during, scenarios};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn counting_alloc_counts_allocations_and_reallocations() {
    let n = allocations_during(|| {
        let mut v: Vec<u8> = Vec::with_capacity(1);
        v.extend_from_slice(&[0; 64]);
        std::hint::black_box(&v);
    });
    assert_eq!(n, 2, "one alloc + one realloc");
    let mut v = Vec::<u8>::with_capacity(16);
    assert_eq!(
        allocations_during(|| {
            v.push(1);
            std::hint::black_box(&v);
        }),
        0
    );
}

#[test]
fn scenarios_load_every_capture() {
    let all = scenarios();
    assert!(all.len() >= 12);
    assert!(all.iter().all(|s| s.name != "unit-expected"));
    for s in &all {
        assert!(!s.packets.is_empty(), "{}", s.name);
        assert_eq!(s.packets.len(), s.decoded.len(), "{}", s.name);
        assert!(s.manifest["community"].is_string(), "{}", s.name);
        assert!(s.packets.iter().all(|p| p.bytes.len() >= 20), "{}", s.name);
    }
    let aes = all.iter().find(|s| s.name == "aes").unwrap();
    assert_eq!(aes.path.file_name().unwrap(), "aes");
}
