//! zstd: test vector (test-vectors.md §5), a libzstd frame, round trips,
//! and hostile frames (bounded output, no large allocation, no panic).
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::compress::{
    self, CompressError, CompressionId, Compressor, Decompressor, MAX_FRAME_SIZE,
};
use n2n_testdata::{noise, pattern512, sample};
use proptest::prelude::*;

const ZSTD: CompressionId = CompressionId::Zstd;

/// test-vectors.md §5 (ZSTD_compress level 7 of the 512-byte pattern).
const VECTOR: &str = "28b52ffd600001bd000080000102030405060708090a0b0c0d0e0f0100da479d4b";

/// `zstd -7 --no-check` (libzstd 1.5.4) of [`mixed1400`].
const LIBZSTD_1400: &str = "28b52ffd607804e50a00f4114142434445464748494a4b4c4d4e4f505152535455565758595ac6cdd4dbe2e9f0f7030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8040b121920272e353c434a51585f666d747b828990979ea5acb3bac1c8cfd6dde4ebf2f9050c131a21282f363d444b525960676e757c838a5c636a71787f868d949ba2a9b0b7bec5ccd3dae1e8eff6020910171e252c333a41484f565d646b727980878e959ca3aab1b8bfedf400070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9e0e7eef501080f161d242b323940474e555758838a91989fa6adb4bbc2c9d0d7dee5ecf3fa060d141b222930373e454c535a61686f767d848b9299a0a7aeb5bcc3cad1d8dfe64f504748595a122050c212b179f84540f43cf1b398023f1110bd277e96a7c03f02a2f713ff2994fe117c16a730fa17a1758b4b6402a35f11f082fc1c50e3353af1";

fn mixed1400() -> Vec<u8> {
    (0..1400u32)
        .map(|i| {
            if (i / 100) % 2 == 1 {
                ((i * 7) % 251) as u8
            } else {
                0x41 + (i % 26) as u8
            }
        })
        .collect()
}

fn dec(data: &[u8]) -> Result<Vec<u8>, CompressError> {
    let mut out = vec![0u8; MAX_FRAME_SIZE];
    let n = compress::decompress(ZSTD, data, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn enc(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; 4096];
    let n = Compressor::new().compress(ZSTD, data, &mut out).unwrap()?;
    out.truncate(n);
    Some(out)
}

#[test]
fn c_vector_decompresses() {
    assert_eq!(dec(&hex::decode(VECTOR).unwrap()).unwrap(), pattern512());
    assert_eq!(
        dec(&hex::decode(LIBZSTD_1400).unwrap()).unwrap(),
        mixed1400()
    );
}

#[test]
fn roundtrip_all_sizes() {
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let mut compressed = 0;
    let mut out = vec![0u8; 4096];
    let mut back = vec![0u8; MAX_FRAME_SIZE];
    for n in (0..=MAX_FRAME_SIZE).step_by(7).chain([MAX_FRAME_SIZE]) {
        let data = sample(n as u64, n);
        if let Some(k) = c.compress(ZSTD, &data, &mut out).unwrap() {
            assert!(k > 0 && k < data.len());
            let m = d.decompress(ZSTD, &out[..k], &mut back).unwrap();
            assert_eq!(&back[..m], &data[..], "n={n}");
            compressed += 1;
        }
    }
    assert!(compressed > 250, "{compressed}");
    assert_eq!(c.compress(ZSTD, &noise(9, 1400), &mut out).unwrap(), None);
    // Our frames look like ZSTD_compress's: single segment, size, no checksum.
    let f = enc(&pattern512()).unwrap();
    assert_eq!(&f[..7], &[0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x00, 0x01]);
}

/// Our frames decode with the reference implementation (`zstd` is installed
/// when missing; a loud skip without it, a failure with N2N_E2E_REQUIRED=1).
#[test]
fn libzstd_decodes_our_frames() {
    if !n2n_tests::install::tool_available("libzstd_decodes_our_frames", "zstd") {
        return;
    }
    for data in [mixed1400(), sample(5, 2048), sample(6, 5000), pattern512()] {
        let mut out = vec![0u8; 8192];
        let n = Compressor::new()
            .compress(ZSTD, &data, &mut out)
            .unwrap()
            .unwrap();
        if !libzstd_roundtrip(&out[..n], &data) {
            eprintln!("zstd binary not found: cross-check against libzstd skipped");
            return;
        }
    }
}

/// `false` if the `zstd` binary is missing; panics if it disagrees.
fn libzstd_roundtrip(frame: &[u8], data: &[u8]) -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("zstd")
        .args(["-d", "-q", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    child.stdin.take().unwrap().write_all(frame).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "libzstd rejected our frame");
    assert_eq!(out.stdout, data);
    true
}

fn header(fhd: u8, extra: &[u8]) -> Vec<u8> {
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, fhd];
    v.extend_from_slice(extra);
    v
}

/// Block header: last flag, type (0 raw, 1 RLE, 2 compressed), size.
fn block(last: bool, ty: u32, size: u32) -> [u8; 3] {
    let v = u32::from(last) | (ty << 1) | (size << 3);
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

#[test]
fn declared_size_over_bound() {
    // Single segment, 2-byte FCS = 256 + 0xffff, one RLE block.
    let mut f = header(0x60, &[0xff, 0xff]);
    f.extend(block(true, 1, 65791));
    f.push(0);
    assert_eq!(
        dec(&f),
        Err(CompressError::TooLarge {
            limit: MAX_FRAME_SIZE
        })
    );
    // A smaller output buffer is the bound.
    let frame = enc(&pattern512()).unwrap();
    assert_eq!(
        compress::decompress(ZSTD, &frame, &mut [0u8; 511]),
        Err(CompressError::TooLarge { limit: 511 })
    );
}

#[test]
fn rle_bomb_without_declared_size() {
    // Window 2048 (log 11), no content size; RLE blocks of 2048 bytes:
    // one is fine, the second goes over the bound.
    let one = {
        let mut f = header(0x00, &[1 << 3]);
        f.extend(block(true, 1, 2048));
        f.push(7);
        f
    };
    assert_eq!(dec(&one).unwrap(), vec![7u8; 2048]);
    let mut f = header(0x00, &[1 << 3]);
    f.extend(block(false, 1, 2048));
    f.push(7);
    f.extend(block(true, 1, 2048));
    f.push(7);
    assert_eq!(
        dec(&f),
        Err(CompressError::TooLarge {
            limit: MAX_FRAME_SIZE
        })
    );
    // One RLE block of 1 MB in a frame whose window is 2048: refused by the
    // block size limit before anything is produced.
    let mut f = header(0x00, &[1 << 3]);
    f.extend(block(true, 1, (1 << 20) - 1));
    f.push(7);
    assert!(dec(&f).is_err());
    // Thousands of raw blocks totalling more than the bound.
    let mut f = header(0x00, &[1 << 3]);
    for _ in 0..3 {
        f.extend(block(false, 0, 1000));
        f.extend([1u8; 1000]);
    }
    f.extend(block(true, 0, 0));
    assert_eq!(
        dec(&f),
        Err(CompressError::TooLarge {
            limit: MAX_FRAME_SIZE
        })
    );
}

#[test]
fn large_window_is_refused_before_allocation() {
    // Window 2^40: never allocated.
    let mut f = header(0x00, &[30 << 3]);
    f.extend(block(true, 1, 10));
    f.push(7);
    assert_eq!(dec(&f), Err(CompressError::ZstdUnsupported));
    // Dictionary frames are unsupported.
    let mut f = header(0x21, &[5, 10]);
    f.extend(block(true, 0, 0));
    assert_eq!(dec(&f), Err(CompressError::ZstdUnsupported));
}

#[test]
fn compressed_block_over_bound() {
    // A genuine compressed frame of 4000 bytes (window and size patched to
    // look small): a compressed block producing more than the window/bound.
    let data: Vec<u8> = (0..4000).map(|i| (i % 16) as u8).collect();
    let f = enc(&data).unwrap();
    // Replace "single segment, 2-byte FCS" by "window 2048, no FCS".
    assert_eq!(f[4], 0x60);
    let mut g = header(0x00, &[1 << 3]);
    g.extend_from_slice(&f[7..]);
    assert!(dec(&g).is_err());
    // Declared size too small for the content.
    let mut h = header(0x20, &[10]);
    h.extend_from_slice(&f[7..]);
    assert!(dec(&h).is_err());
}

#[test]
fn size_mismatch_and_trailing_data() {
    let mut f = enc(&pattern512()).unwrap();
    f.push(0);
    assert_eq!(dec(&f), Err(CompressError::ZstdTrailingData(1)));
    // Declared 600 bytes, contains 512.
    let f = enc(&pattern512()).unwrap();
    let mut g = header(0x60, &(600u16 - 256).to_le_bytes());
    g.extend_from_slice(&f[7..]);
    assert_eq!(dec(&g), Err(CompressError::ZstdSizeMismatch));
    assert_eq!(dec(b"not zstd"), Err(CompressError::ZstdHeader));
    assert_eq!(dec(&[]), Err(CompressError::ZstdHeader));
}

#[test]
fn every_truncation_is_an_error() {
    let f = hex::decode(LIBZSTD_1400).unwrap();
    for cut in 0..f.len() {
        assert!(dec(&f[..cut]).is_err(), "cut {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, rng_seed: proptest::test_runner::RngSeed::Fixed(2), ..ProptestConfig::default() })]

    /// Random bodies after a plausible header, and bit flips of real frames.
    #[test]
    fn hostile_frames_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        fhd in any::<u8>(),
        flip in 0usize..4000,
        bit in 0u8..8,
    ) {
        let mut d = Decompressor::new();
        let mut out = vec![0u8; MAX_FRAME_SIZE];
        let mut f = header(fhd, &[]);
        f.extend_from_slice(&body);
        if let Ok(n) = d.decompress(ZSTD, &f, &mut out) {
            prop_assert!(n <= MAX_FRAME_SIZE);
        }
        let mut g = hex::decode(LIBZSTD_1400).unwrap();
        let i = flip % g.len();
        g[i] ^= 1 << bit;
        if let Ok(n) = d.decompress(ZSTD, &g, &mut out) {
            prop_assert!(n <= MAX_FRAME_SIZE);
        }
    }
}
