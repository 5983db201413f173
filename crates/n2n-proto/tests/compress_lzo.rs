//! LZO1X: test vector (test-vectors.md §5), round trips against an
//! independent implementation (`lzokay-native`), and hostile streams.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::compress::{
    self, CompressError, CompressionId, Compressor, Decompressor, MAX_FRAME_SIZE,
};
use n2n_testdata::{noise, pattern512, sample};
use proptest::prelude::*;

const LZO: CompressionId = CompressionId::Lzo;

fn vector() -> Vec<u8> {
    hex::decode(
        "0d000102030405060708090a0b0c0d0e0f2000bc3c0000020c0d0e0f000102030405060708090a0b0c0d0e0f110000",
    )
    .unwrap()
}

fn dec(data: &[u8]) -> Result<Vec<u8>, CompressError> {
    let mut out = vec![0u8; MAX_FRAME_SIZE];
    let n = compress::decompress(LZO, data, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn minilzo_vector_decompresses() {
    assert_eq!(dec(&vector()).unwrap(), pattern512());
    // The independent decoder agrees on the vector.
    assert_eq!(
        lzokay_native::decompress_all(&vector(), None).unwrap(),
        pattern512()
    );
}

#[test]
fn compresses_pattern_like_minilzo() {
    let mut out = [0u8; 600];
    let n = compress::compress(LZO, &pattern512(), &mut out)
        .unwrap()
        .unwrap();
    // Same algorithm as miniLZO's lzo1x_1_compress: same 47 bytes here
    // (not required for interoperability, but a good sign).
    assert_eq!(hex::encode(&out[..n]), hex::encode(vector()));
    assert_eq!(dec(&out[..n]).unwrap(), pattern512());
    assert_eq!(
        lzokay_native::decompress_all(&out[..n], None).unwrap(),
        pattern512()
    );
}

fn roundtrip(data: &[u8], c: &mut Compressor, d: &mut Decompressor) {
    let mut out = vec![0u8; 4096];
    match c.compress(LZO, data, &mut out).unwrap() {
        Some(n) => {
            assert!(n > 0 && n < data.len());
            let mut back = vec![0u8; MAX_FRAME_SIZE];
            let m = d.decompress(LZO, &out[..n], &mut back).unwrap();
            assert_eq!(&back[..m], data);
            // An independent decoder reads our stream.
            assert_eq!(
                lzokay_native::decompress_all(&out[..n], None).unwrap(),
                data
            );
        }
        None => {
            // Not shorter: check that the claim is true by forcing a big buffer
            // through the one-shot API (same answer) — nothing else to verify.
            assert_eq!(compress::compress(LZO, data, &mut out).unwrap(), None);
        }
    }
}

#[test]
fn roundtrip_all_sizes() {
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let mut compressed = 0;
    for n in 0..=MAX_FRAME_SIZE {
        let data = sample(n as u64, n);
        roundtrip(&data, &mut c, &mut d);
        if c.compress(LZO, &data, &mut [0u8; 4096]).unwrap().is_some() {
            compressed += 1;
        }
    }
    assert!(compressed > 1900, "{compressed}");
    // Incompressible data is sent as is.
    assert_eq!(
        c.compress(LZO, &noise(7, 1400), &mut [0u8; 4096]).unwrap(),
        None
    );
    assert_eq!(c.compress(LZO, &[], &mut [0u8; 64]).unwrap(), None);
    assert_eq!(
        c.compress(CompressionId::None, &[0; 100], &mut [0u8; 64])
            .unwrap(),
        None
    );
}

#[test]
fn decodes_independent_encoder() {
    for n in [1usize, 3, 20, 21, 100, 1000, 1400, 2048] {
        for seed in 0..8 {
            let data = sample(seed, n);
            let c = lzokay_native::compress(&data).unwrap();
            assert_eq!(dec(&c).unwrap(), data, "n={n} seed={seed}");
        }
    }
}

#[test]
fn exact_bound() {
    let zeros = vec![0u8; MAX_FRAME_SIZE];
    let c = lzokay_native::compress(&zeros).unwrap();
    assert_eq!(dec(&c).unwrap(), zeros);
    let c = lzokay_native::compress(&[0u8; MAX_FRAME_SIZE + 1]).unwrap();
    assert_eq!(
        dec(&c),
        Err(CompressError::TooLarge {
            limit: MAX_FRAME_SIZE
        })
    );
    // A smaller output buffer is the bound.
    let mut small = [0u8; 100];
    let c = lzokay_native::compress(&[1u8; 101]).unwrap();
    assert_eq!(
        compress::decompress(LZO, &c, &mut small),
        Err(CompressError::TooLarge { limit: 100 })
    );
}

#[test]
fn rle_bomb_is_refused() {
    // 4 literals "aaaa", then an M3 match of length 33 + 255 * 1_000_000
    // at distance 1, then the end marker: would expand to ~255 MB.
    let mut s = vec![21, b'a', b'a', b'a', b'a', 0x20];
    s.extend(std::iter::repeat_n(0u8, 1_000_000));
    s.extend([0xff, 0x00, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(
        dec(&s),
        Err(CompressError::TooLarge {
            limit: MAX_FRAME_SIZE
        })
    );
    // Same with an M4 match and a huge literal run.
    let mut s = vec![0x00];
    s.extend(std::iter::repeat_n(0u8, 100));
    s.push(1);
    assert!(dec(&s).is_err());
}

#[test]
fn bad_distance_and_trailing_data() {
    // Literal "ab" then an M2 match 3 bytes back with only 2 bytes output.
    let s = [19, b'a', b'b', 0x40 | (2 << 2), 0x00, 0x11, 0, 0];
    assert_eq!(dec(&s), Err(CompressError::LzoBadDistance));
    let mut s = vector();
    s.push(0);
    assert_eq!(dec(&s), Err(CompressError::LzoTrailingData(1)));
    assert_eq!(dec(&[]), Err(CompressError::LzoTruncated));
}

#[test]
fn every_truncation_is_an_error() {
    let mut out = [0u8; 4096];
    let data = sample(3, 1400);
    let n = compress::compress(LZO, &data, &mut out).unwrap().unwrap();
    for cut in 0..n {
        assert!(dec(&out[..cut]).is_err(), "cut {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, rng_seed: proptest::test_runner::RngSeed::Fixed(1), ..ProptestConfig::default() })]

    #[test]
    fn hostile_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), cap in 0usize..3000) {
        let mut out = vec![0u8; cap];
        if let Ok(n) = compress::decompress(LZO, &data, &mut out) {
            prop_assert!(n <= cap.min(MAX_FRAME_SIZE));
        }
    }

    #[test]
    fn roundtrip_random(data in proptest::collection::vec(0u8..4, 0..2048)) {
        let mut out = vec![0u8; 4096];
        if let Some(n) = compress::compress(LZO, &data, &mut out).unwrap() {
            prop_assert_eq!(dec(&out[..n]).unwrap(), data);
        }
    }
}
