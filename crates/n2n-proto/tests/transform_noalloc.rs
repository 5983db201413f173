//! The per-packet paths do not allocate: every transform's encrypt and
//! decrypt, and LZO compression/decompression with reused state. (zstd goes
//! through `ruzstd`, which allocates internally; its count is only printed.)
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::compress::{CompressionId, Compressor, Decompressor};
use n2n_proto::transform::{NonceSeed, Transform, TransformId, packet_aad};

#[global_allocator]
static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;

use n2n_testdata::allocations_during as allocations;

#[test]
fn transforms_do_not_allocate() {
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
        prefix: 1,
        start: 1,
    };
    let frame: Vec<u8> = (0..1400).map(|i| i as u8).collect();
    let mut payload = vec![0u8; 1500];
    let mut back = vec![0u8; 1500];
    for key_len in [6usize, 30, 40] {
        let key = vec![b'k'; key_len];
        for id in TransformId::ALL {
            let mut t = Transform::new(id, &key, &community, seed).unwrap();
            for len in [0usize, 14, 60, 1290, 1400] {
                let n = allocations(|| {
                    let p = t
                        .encrypt(&frame[..len], [3; 16], &aad, &mut payload)
                        .unwrap();
                    let d = t.decrypt(&payload[..p], &aad, &mut back).unwrap();
                    assert_eq!(&back[..d.len], &frame[..len]);
                });
                assert_eq!(n, 0, "{id} ({key_len}-byte key) allocated for {len} bytes");
            }
        }
    }
}

#[test]
fn lzo_does_not_allocate() {
    let frame: Vec<u8> = (0..1290).map(|i| (i % 48) as u8).collect();
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let mut out = vec![0u8; 2048];
    let mut back = vec![0u8; 2048];
    let n = allocations(|| {
        for _ in 0..10 {
            let k = c
                .compress(CompressionId::Lzo, &frame, &mut out)
                .unwrap()
                .unwrap();
            let m = d
                .decompress(CompressionId::Lzo, &out[..k], &mut back)
                .unwrap();
            assert_eq!(&back[..m], &frame[..]);
        }
    });
    assert_eq!(n, 0);
    // One-shot LZO functions too.
    let n = allocations(|| {
        let k = n2n_proto::compress::compress(CompressionId::Lzo, &frame, &mut out)
            .unwrap()
            .unwrap();
        n2n_proto::compress::decompress(CompressionId::Lzo, &out[..k], &mut back).unwrap();
    });
    assert_eq!(n, 0);

    // zstd: reported, not asserted (ruzstd allocates internally).
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let k = c
        .compress(CompressionId::Zstd, &frame, &mut out)
        .unwrap()
        .unwrap();
    d.decompress(CompressionId::Zstd, &out[..k], &mut back)
        .unwrap();
    let nc = allocations(|| {
        c.compress(CompressionId::Zstd, &frame, &mut out).unwrap();
    });
    let nd = allocations(|| {
        d.decompress(CompressionId::Zstd, &out[..k], &mut back)
            .unwrap();
    });
    eprintln!("zstd after warm-up: {nc} allocations per compress, {nd} per decompress");
}
