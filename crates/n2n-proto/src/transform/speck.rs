//! Fast n2n Speck128-CTR (crypto.md §1.2): several counter blocks are
//! encrypted side by side in independent lanes so that LLVM turns the rounds
//! into SIMD code (AVX-512 `vprolq` rotations, AVX2, or SSE2), selected at
//! run time. Output is identical to [`Speck128::ctr_xor`].

use crate::crypto::speck::Speck128;

#[inline(always)]
fn keystream<const N: usize>(rk: &[u64], lo: u64, hi: u64) -> ([u64; N], [u64; N]) {
    let mut x = [hi; N];
    let mut y: [u64; N] = core::array::from_fn(|i| lo.wrapping_add(i as u64));
    for &k in rk {
        for i in 0..N {
            x[i] = (x[i].rotate_right(8).wrapping_add(y[i])) ^ k;
            y[i] = y[i].rotate_left(3) ^ x[i];
        }
    }
    (x, y)
}

#[inline(always)]
fn xor_word(d: &mut [u8], w: u64) {
    for (d, k) in d.iter_mut().zip(w.to_le_bytes()) {
        *d ^= k;
    }
}

#[inline(always)]
fn ctr_lanes<const N: usize>(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
    let mut lo_b = [0u8; 8];
    lo_b.copy_from_slice(&iv[..8]);
    let mut hi_b = [0u8; 8];
    hi_b.copy_from_slice(&iv[8..]);
    let mut ctr = u64::from_le_bytes(lo_b);
    let hi = u64::from_le_bytes(hi_b);

    let mut chunks = data.chunks_exact_mut(16 * N);
    for chunk in &mut chunks {
        let (x, y) = keystream::<N>(rk, ctr, hi);
        for (i, blk) in chunk.chunks_exact_mut(16).enumerate() {
            let (a, b) = blk.split_at_mut(8);
            xor_word(a, y[i]);
            xor_word(b, x[i]);
        }
        ctr = ctr.wrapping_add(N as u64);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let (x, y) = keystream::<N>(rk, ctr, hi);
        for (i, blk) in rest.chunks_mut(16).enumerate() {
            let (a, b) = blk.split_at_mut(blk.len().min(8));
            xor_word(a, y[i]);
            xor_word(b, x[i]);
        }
    }
}

fn ctr_portable(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
    ctr_lanes::<4>(rk, iv, data);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn ctr_avx2(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
    ctr_lanes::<8>(rk, iv, data);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
fn ctr_avx512(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
    ctr_lanes::<16>(rk, iv, data);
}

/// The only `unsafe` of this crate: calling a `#[target_feature]` function
/// after checking at run time that the CPU has the feature.
#[allow(unsafe_code)]
mod dispatch {
    pub(super) fn ctr(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU supports AVX-512F and AVX-512VL (checked
                // just above), which is all `ctr_avx512` requires; the
                // function body itself is safe code.
                return unsafe { super::ctr_avx512(rk, iv, data) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), which
                // is all `ctr_avx2` requires; its body is safe code.
                return unsafe { super::ctr_avx2(rk, iv, data) };
            }
        }
        super::ctr_portable(rk, iv, data);
    }
}

/// XORs `data` with the n2n Speck-CTR keystream of `key` for `iv`
/// (same output as [`Speck128::ctr_xor`], several times faster).
pub fn ctr_xor(key: &Speck128, iv: &[u8; 16], data: &mut [u8]) {
    dispatch::ctr(key.round_keys(), iv, data);
}
