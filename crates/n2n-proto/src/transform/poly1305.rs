//! Poly1305 (RFC 8439 §2.5), radix 2^64 with 128-bit products.
//!
//! Written here because `poly1305` 0.9.1's run-time-detected AVX2 backend is
//! slower than its portable one on packet-sized messages: its key set-up and
//! finalisation call AVX2 intrinsics from functions that are not compiled
//! with AVX2 enabled, so every intrinsic becomes an out-of-line call (see the
//! module docs of `aead`). This scalar version runs at ~1 cycle/byte.
//!
//! Only what ChaCha20-Poly1305 needs is provided: the message is a sequence
//! of zero-padded 16-byte blocks, all with the 2^128 bit set.

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[derive(Clone)]
pub(crate) struct Poly1305 {
    r0: u64,
    r1: u64,
    s1: u64,
    h0: u64,
    h1: u64,
    h2: u64,
    pad0: u64,
    pad1: u64,
}

impl Poly1305 {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let r0 = le64(&key[0..8]) & 0x0fff_fffc_0fff_ffff;
        let r1 = le64(&key[8..16]) & 0x0fff_fffc_0fff_fffc;
        Self {
            r0,
            r1,
            s1: r1 + (r1 >> 2),
            h0: 0,
            h1: 0,
            h2: 0,
            pad0: le64(&key[16..24]),
            pad1: le64(&key[24..32]),
        }
    }

    /// Absorbs one 16-byte block with the 2^128 bit set.
    #[inline(always)]
    fn block(&mut self, m0: u64, m1: u64) {
        let (h0, c) = self.h0.overflowing_add(m0);
        let t = u128::from(self.h1) + u128::from(m1) + u128::from(c);
        let h1 = t as u64;
        let h2 = self.h2 + (t >> 64) as u64 + 1;

        let (r0, r1, s1) = (
            u128::from(self.r0),
            u128::from(self.r1),
            u128::from(self.s1),
        );
        let d0 = u128::from(h0) * r0 + u128::from(h1) * s1;
        let d1 = u128::from(h0) * r1 + u128::from(h1) * r0 + u128::from(h2) * s1;
        let d2 = h2 * self.r0;

        let d1 = d1 + (d0 >> 64);
        let d2 = d2 + (d1 >> 64) as u64;
        // d2 holds bits 128..; everything at and above 2^130 folds back times 5.
        let c = (d2 >> 2) * 5;
        let (h0, c0) = (d0 as u64).overflowing_add(c);
        let (h1, c1) = (d1 as u64).overflowing_add(u64::from(c0));
        self.h0 = h0;
        self.h1 = h1;
        self.h2 = (d2 & 3) + u64::from(c1);
    }

    /// Absorbs `data`, zero-padded to a multiple of 16 bytes.
    #[inline]
    pub(crate) fn update_padded(&mut self, data: &[u8]) {
        let mut chunks = data.chunks_exact(16);
        for c in &mut chunks {
            self.block(le64(&c[0..8]), le64(&c[8..16]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 16];
            b[..rest.len()].copy_from_slice(rest);
            self.block(le64(&b[0..8]), le64(&b[8..16]));
        }
    }

    /// Absorbs one block made of two little-endian words.
    pub(crate) fn update_words(&mut self, a: u64, b: u64) {
        self.block(a, b);
    }

    /// The tag `(h mod 2^130-5) + s mod 2^128`.
    pub(crate) fn finalize(self) -> [u8; 16] {
        // Fully reduce: h < 2^130 + small, compute h - p and select.
        let (mut h0, mut h1, mut h2) = (self.h0, self.h1, self.h2);
        let c = (h2 >> 2) * 5;
        h2 &= 3;
        let (a, c0) = h0.overflowing_add(c);
        let (b, c1) = h1.overflowing_add(u64::from(c0));
        h0 = a;
        h1 = b;
        h2 += u64::from(c1);

        // g = h + 5; if g >= 2^130 then h >= p and the result is g - 2^130.
        let (g0, c0) = h0.overflowing_add(5);
        let (g1, c1) = h1.overflowing_add(u64::from(c0));
        let g2 = h2 + u64::from(c1);
        let mask = 0u64.wrapping_sub(g2 >> 2); // all ones if g >= 2^130
        h0 = (h0 & !mask) | (g0 & mask);
        h1 = (h1 & !mask) | (g1 & mask);

        let (t0, c) = h0.overflowing_add(self.pad0);
        let t1 = h1.wrapping_add(self.pad1).wrapping_add(u64::from(c));
        let mut tag = [0u8; 16];
        tag[..8].copy_from_slice(&t0.to_le_bytes());
        tag[8..].copy_from_slice(&t1.to_le_bytes());
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::Poly1305;
    use poly1305::universal_hash::{KeyInit, UniversalHash};

    fn reference(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        let mut p = poly1305::Poly1305::new(key.into());
        p.update_padded(data);
        p.finalize().into()
    }

    fn ours(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        let mut p = Poly1305::new(key);
        p.update_padded(data);
        p.finalize()
    }

    #[test]
    fn matches_reference_on_extremes_and_random() {
        let mut s = 0x0123_4567_89ab_cdefu64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        };
        let fills = [0x00u8, 0xff, 0x01, 0xfe];
        for len in (0..300).chain([1024, 2048]) {
            for &kf in &fills {
                for &df in &fills {
                    let key = [kf; 32];
                    let data = vec![df; len];
                    assert_eq!(ours(&key, &data), reference(&key, &data), "{kf} {df} {len}");
                }
            }
            let key: [u8; 32] = core::array::from_fn(|_| next());
            let data: Vec<u8> = (0..len).map(|_| next()).collect();
            assert_eq!(ours(&key, &data), reference(&key, &data), "random {len}");
        }
    }
}
