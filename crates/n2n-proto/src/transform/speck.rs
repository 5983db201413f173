//! Fast n2n Speck128-CTR (crypto.md §1.2). Output is identical to
//! [`Speck128::ctr_xor`]; the keystream is produced many counter blocks at a
//! time with explicit SIMD, chosen at run time:
//!
//! * AVX-512F: up to 4 × 8 lanes of `__m512i`, native 64-bit rotations;
//! * AVX2: up to 4 × 4 lanes of `__m256i`, rotate-by-8 as a byte shuffle;
//! * otherwise a portable 4-lane version.
//!
//! The SIMD bodies are safe code (value intrinsics inside
//! `#[target_feature]` functions, vectors converted to arrays with
//! `zerocopy`); only the run-time dispatch needs `unsafe` (module
//! `transform::dispatch`).

use crate::crypto::speck::Speck128;

#[inline(always)]
fn split_iv(iv: &[u8; 16]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    lo.copy_from_slice(&iv[..8]);
    let mut hi = [0u8; 8];
    hi.copy_from_slice(&iv[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

/// XORs `data` (at most `8 * ks.len()` bytes) with keystream words.
#[inline(always)]
fn xor_ks(data: &mut [u8], ks: &[u64]) {
    let full = data.len() / 8;
    let mut words = data.chunks_exact_mut(8);
    for (d, &k) in (&mut words).zip(ks) {
        let mut w = [0u8; 8];
        w.copy_from_slice(d);
        d.copy_from_slice(&(u64::from_le_bytes(w) ^ k).to_le_bytes());
    }
    let rest = words.into_remainder();
    if let Some(&k) = ks.get(full) {
        for (d, b) in rest.iter_mut().zip(k.to_le_bytes()) {
            *d ^= b;
        }
    }
}

/// Portable keystream: 4 blocks.
#[inline(always)]
fn keystream4(rk: &[u64], lo: u64, hi: u64) -> [u64; 8] {
    let mut x = [hi; 4];
    let mut y: [u64; 4] = core::array::from_fn(|i| lo.wrapping_add(i as u64));
    for &k in rk {
        for i in 0..4 {
            x[i] = (x[i].rotate_right(8).wrapping_add(y[i])) ^ k;
            y[i] = y[i].rotate_left(3) ^ x[i];
        }
    }
    [y[0], x[0], y[1], x[1], y[2], x[2], y[3], x[3]]
}

pub(crate) fn ctr_portable(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
    let (mut ctr, hi) = split_iv(iv);
    for chunk in data.chunks_mut(64) {
        xor_ks(chunk, &keystream4(rk, ctr, hi));
        ctr = ctr.wrapping_add(4);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::{split_iv, xor_ks};
    use core::arch::x86_64::*;

    /// AVX-512: blocks per full keystream pass, as 4 chains of 8 lanes
    /// (more independent work per round than the rotate latency needs).
    const BLOCKS: usize = 32;
    const C: usize = BLOCKS / 8;
    /// Keystream words per pass (two per block: `y`, then `x`).
    const WORDS: usize = 2 * BLOCKS;

    /// `8 C` keystream blocks (`W = 16 C` words) with AVX-512F.
    #[target_feature(enable = "avx512f")]
    fn keystream_avx512<const C: usize, const W: usize>(rk: &[u64], lo: u64, hi: u64) -> [u64; W] {
        let base = _mm512_set1_epi64(lo as i64);
        let step = _mm512_set1_epi64(8);
        let y0 = _mm512_add_epi64(base, _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
        let mut y = [y0; C];
        for i in 1..C {
            y[i] = _mm512_add_epi64(y[i - 1], step);
        }
        let mut x = [_mm512_set1_epi64(hi as i64); C];
        for &k in rk {
            let k = _mm512_set1_epi64(k as i64);
            for i in 0..C {
                x[i] = _mm512_xor_si512(_mm512_add_epi64(_mm512_ror_epi64::<8>(x[i]), y[i]), k);
                y[i] = _mm512_xor_si512(_mm512_rol_epi64::<3>(y[i]), x[i]);
            }
        }
        // Interleave to y0 x0 y1 x1 ...: elements 0..7 of `a`, 8..15 of `b`.
        let lo_idx = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
        let hi_idx = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
        let mut out = [0u64; W];
        for i in 0..C {
            let pair: [__m512i; 2] = [
                _mm512_permutex2var_epi64(y[i], lo_idx, x[i]),
                _mm512_permutex2var_epi64(y[i], hi_idx, x[i]),
            ];
            let words: [u64; 16] = zerocopy::transmute!(pair);
            out[16 * i..16 * i + 16].copy_from_slice(&words);
        }
        out
    }

    #[target_feature(enable = "avx512f")]
    pub(crate) fn ctr_avx512(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
        let (mut ctr, hi) = split_iv(iv);
        let mut chunks = data.chunks_exact_mut(8 * WORDS);
        for chunk in &mut chunks {
            xor_ks(chunk, &keystream_avx512::<C, WORDS>(rk, ctr, hi));
            ctr = ctr.wrapping_add(BLOCKS as u64);
        }
        // The tail with the smallest pass that covers it (a pass costs about
        // its latency when short, its throughput when long).
        let rest = chunks.into_remainder();
        match rest.len() {
            0 => {}
            1..=128 => xor_ks(rest, &keystream_avx512::<1, 16>(rk, ctr, hi)),
            129..=256 => xor_ks(rest, &keystream_avx512::<2, 32>(rk, ctr, hi)),
            257..=384 => xor_ks(rest, &keystream_avx512::<3, 48>(rk, ctr, hi)),
            _ => xor_ks(rest, &keystream_avx512::<C, WORDS>(rk, ctr, hi)),
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn ror8(x: __m256i) -> __m256i {
        // Byte j of each 64-bit word takes byte j + 1 (mod 8).
        let m = _mm256_set_epi8(
            8, 15, 14, 13, 12, 11, 10, 9, 0, 7, 6, 5, 4, 3, 2, 1, 8, 15, 14, 13, 12, 11, 10, 9, 0,
            7, 6, 5, 4, 3, 2, 1,
        );
        _mm256_shuffle_epi8(x, m)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn rol3(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi64::<3>(x), _mm256_srli_epi64::<61>(x))
    }

    /// `4 C` keystream blocks (`W = 8 C` words) with AVX2.
    #[target_feature(enable = "avx2")]
    fn keystream_avx2<const C: usize, const W: usize>(rk: &[u64], lo: u64, hi: u64) -> [u64; W] {
        let base = _mm256_set1_epi64x(lo as i64);
        let step = _mm256_set1_epi64x(4);
        let y0 = _mm256_add_epi64(base, _mm256_set_epi64x(3, 2, 1, 0));
        let mut y = [y0; C];
        for i in 1..C {
            y[i] = _mm256_add_epi64(y[i - 1], step);
        }
        let mut x = [_mm256_set1_epi64x(hi as i64); C];
        for &k in rk {
            let k = _mm256_set1_epi64x(k as i64);
            for i in 0..C {
                x[i] = _mm256_xor_si256(_mm256_add_epi64(ror8(x[i]), y[i]), k);
                y[i] = _mm256_xor_si256(rol3(y[i]), x[i]);
            }
        }
        let mut out = [0u64; W];
        for i in 0..C {
            let a = _mm256_unpacklo_epi64(y[i], x[i]); // y0 x0 y2 x2
            let b = _mm256_unpackhi_epi64(y[i], x[i]); // y1 x1 y3 x3
            let pair: [__m256i; 2] = [
                _mm256_permute2x128_si256::<0x20>(a, b),
                _mm256_permute2x128_si256::<0x31>(a, b),
            ];
            let words: [u64; 8] = zerocopy::transmute!(pair);
            out[8 * i..8 * i + 8].copy_from_slice(&words);
        }
        out
    }

    #[target_feature(enable = "avx2")]
    pub(crate) fn ctr_avx2(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
        let (mut ctr, hi) = split_iv(iv);
        // 16 blocks (4 chains) per pass: 8 ymm of state, no spills.
        let mut chunks = data.chunks_exact_mut(256);
        for chunk in &mut chunks {
            xor_ks(chunk, &keystream_avx2::<4, 32>(rk, ctr, hi));
            ctr = ctr.wrapping_add(16);
        }
        let rest = chunks.into_remainder();
        match rest.len() {
            0 => {}
            1..=64 => xor_ks(rest, &keystream_avx2::<1, 8>(rk, ctr, hi)),
            65..=128 => xor_ks(rest, &keystream_avx2::<2, 16>(rk, ctr, hi)),
            _ => xor_ks(rest, &keystream_avx2::<4, 32>(rk, ctr, hi)),
        }
    }
}

/// XORs `data` with the n2n Speck-CTR keystream of `key` for `iv`
/// (same output as [`Speck128::ctr_xor`], several times faster).
pub fn ctr_xor(key: &Speck128, iv: &[u8; 16], data: &mut [u8]) {
    super::dispatch::speck_ctr(key.round_keys(), iv, data);
}

/// Name of the implementation used on this CPU (`avx512`, `avx2`, `portable`).
pub fn backend() -> &'static str {
    super::dispatch::speck_backend()
}

/// Runs every implementation available on this CPU (for tests): pairs of
/// backend name and output.
#[doc(hidden)]
pub fn ctr_xor_all_backends(
    key: &Speck128,
    iv: &[u8; 16],
    data: &[u8],
) -> Vec<(&'static str, Vec<u8>)> {
    super::dispatch::speck_each(key.round_keys(), iv, data)
}
