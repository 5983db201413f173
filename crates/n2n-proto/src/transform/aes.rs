//! AES with n2n's key-size rule (crypto.md §2.1) as a [`Cipher16`].
//!
//! Decryption (parallel in CBC) uses the `aes` crate, which picks
//! AES-NI/VAES at run time. CBC *encryption* is a serial chain of block
//! encryptions, where the crate's per-block call costs about a third more
//! than the AES rounds themselves; with AES-NI present it is done here with
//! the round keys held in registers (`x86::cbc_encrypt`), from our own
//! FIPS-197 key expansion. Both paths give the same bytes (tests compare).

use super::cts::Cipher16;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};

/// The AES S-box, computed at compile time (multiplicative inverse in
/// GF(2^8) followed by the affine map).
const SBOX: [u8; 256] = {
    const fn mul(mut a: u8, mut b: u8) -> u8 {
        let mut r = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                r ^= a;
            }
            a = if a & 0x80 != 0 {
                (a << 1) ^ 0x1b
            } else {
                a << 1
            };
            b >>= 1;
        }
        r
    }
    let mut t = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        // x^254 = x^-1 (and 0 -> 0).
        let mut inv = 1u8;
        let mut i = 0;
        while i < 254 {
            inv = mul(inv, x as u8);
            i += 1;
        }
        if x == 0 {
            inv = 0;
        }
        t[x] = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
        x += 1;
    }
    t
};

/// FIPS-197 key expansion: `4 (Nr + 1)` words as round keys of 16 bytes.
fn expand_key(key: &[u8], out: &mut [[u8; 16]; 15]) {
    let nk = key.len() / 4;
    let nr = nk + 6;
    let mut w = [[0u8; 4]; 60];
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i].copy_from_slice(c);
    }
    let mut rcon = 1u8;
    for i in nk..4 * (nr + 1) {
        let mut t = w[i - 1];
        if i % nk == 0 {
            t = [
                SBOX[t[1] as usize] ^ rcon,
                SBOX[t[2] as usize],
                SBOX[t[3] as usize],
                SBOX[t[0] as usize],
            ];
            rcon = if rcon & 0x80 != 0 {
                (rcon << 1) ^ 0x1b
            } else {
                rcon << 1
            };
        } else if nk > 6 && i % nk == 4 {
            t = t.map(|b| SBOX[b as usize]);
        }
        for j in 0..4 {
            w[i][j] = w[i - nk][j] ^ t[j];
        }
    }
    for (r, rk) in out.iter_mut().enumerate().take(nr + 1) {
        for j in 0..4 {
            rk[4 * j..4 * j + 4].copy_from_slice(&w[4 * r + j]);
        }
    }
}

#[derive(Clone)]
enum Crate {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

macro_rules! each {
    ($cipher:expr, $c:ident => $e:expr) => {
        match $cipher {
            Crate::A128($c) => $e,
            Crate::A192($c) => $e,
            Crate::A256($c) => $e,
        }
    };
}

/// Expanded AES key of the size chosen by the key string length.
#[derive(Clone)]
pub(crate) struct AesKey {
    cipher: Crate,
    /// Encryption round keys (11, 13 or 15 used).
    rk: Box<[[u8; 16]; 15]>,
}

impl core::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AesKey({})", self.bits())
    }
}

impl AesKey {
    /// `key_string_len` is the length of the `-k` string; `h` = pearson256 of it.
    /// ≤ 22 → AES-128 with `h[16..32]`, 23..=32 → AES-192 with `h[8..32]`,
    /// ≥ 33 → AES-256 with `h[0..32]`.
    pub(crate) fn from_hash(key_string_len: usize, h: &[u8; 32]) -> Self {
        let mut rk = Box::new([[0u8; 16]; 15]);
        let cipher = if key_string_len <= 22 {
            let mut k = [0u8; 16];
            k.copy_from_slice(&h[16..32]);
            expand_key(&k, &mut rk);
            Crate::A128(Box::new(Aes128::new(&k.into())))
        } else if key_string_len <= 32 {
            let mut k = [0u8; 24];
            k.copy_from_slice(&h[8..32]);
            expand_key(&k, &mut rk);
            Crate::A192(Box::new(Aes192::new(&k.into())))
        } else {
            expand_key(h, &mut rk);
            Crate::A256(Box::new(Aes256::new(&(*h).into())))
        };
        Self { cipher, rk }
    }

    /// Key size in bits (128, 192 or 256).
    pub(crate) fn bits(&self) -> u16 {
        match self.cipher {
            Crate::A128(_) => 128,
            Crate::A192(_) => 192,
            Crate::A256(_) => 256,
        }
    }

    /// CBC encryption with the `aes` crate (the path without AES-NI).
    pub(crate) fn cbc_encrypt_portable(&self, data: &mut [u8]) {
        fn run<C: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>>(
            c: &C,
            data: &mut [u8],
        ) {
            let mut prev = Array::<u8, aes::cipher::consts::U16>::default();
            let (blocks, _) = Array::<u8, aes::cipher::consts::U16>::slice_as_chunks_mut(data);
            for b in blocks {
                for (x, p) in b.iter_mut().zip(prev.iter()) {
                    *x ^= p;
                }
                c.encrypt_block(b);
                prev = *b;
            }
        }
        each!(&self.cipher, c => run(&**c, data))
    }
}

impl Cipher16 for AesKey {
    #[inline]
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b: &mut Array<u8, _> = block.into();
        each!(&self.cipher, c => c.encrypt_block(b))
    }

    #[inline]
    fn decrypt_block(&self, block: &mut [u8; 16]) {
        let b: &mut Array<u8, _> = block.into();
        each!(&self.cipher, c => c.decrypt_block(b))
    }

    fn cbc_encrypt_zero_iv(&self, data: &mut [u8]) {
        let done = match self.cipher {
            Crate::A128(_) => super::dispatch::aes_cbc_encrypt::<11>(&self.rk, data),
            Crate::A192(_) => super::dispatch::aes_cbc_encrypt::<13>(&self.rk, data),
            Crate::A256(_) => super::dispatch::aes_cbc_encrypt::<15>(&self.rk, data),
        };
        if !done {
            self.cbc_encrypt_portable(data);
        }
    }

    fn cbc_encrypt_zero_iv_x4(&self, bufs: [&mut [u8]; 4]) {
        let done = match self.cipher {
            Crate::A128(_) => super::dispatch::aes_cbc_encrypt_x4::<11>(&self.rk, bufs),
            Crate::A192(_) => super::dispatch::aes_cbc_encrypt_x4::<13>(&self.rk, bufs),
            Crate::A256(_) => super::dispatch::aes_cbc_encrypt_x4::<15>(&self.rk, bufs),
        };
        if let Err(bufs) = done {
            for b in bufs {
                self.cbc_encrypt_portable(b);
            }
        }
    }

    fn decrypt_blocks(&self, data: &mut [u8]) {
        let (blocks, _) = Array::<u8, aes::cipher::consts::U16>::slice_as_chunks_mut(data);
        each!(&self.cipher, c => c.decrypt_blocks(blocks))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use core::arch::x86_64::*;

    /// CBC encryption with a zero IV, `NK` round keys (11, 13, 15) from
    /// `rk`, using AES-NI. Safe code; requires the `aes` CPU feature.
    #[target_feature(enable = "aes")]
    pub(crate) fn cbc_encrypt<const NK: usize>(rk: &[[u8; 16]; 15], data: &mut [u8]) {
        let k: [__m128i; NK] = core::array::from_fn(|i| zerocopy::transmute!(rk[i]));
        let mut prev = _mm_setzero_si128();
        for chunk in data.chunks_exact_mut(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(chunk);
            let p: __m128i = zerocopy::transmute!(b);
            let mut x = _mm_xor_si128(_mm_xor_si128(p, prev), k[0]);
            for key in &k[1..NK - 1] {
                x = _mm_aesenc_si128(x, *key);
            }
            x = _mm_aesenclast_si128(x, k[NK - 1]);
            prev = x;
            let o: [u8; 16] = zerocopy::transmute!(x);
            chunk.copy_from_slice(&o);
        }
    }

    /// [`cbc_encrypt`] of four independent buffers (each its own chain,
    /// zero IV), their blocks interleaved: one chain's `aesenc` waits for
    /// the one before (CBC), four chains keep the AES unit busy — about
    /// 3.5× the frames per second of four calls to [`cbc_encrypt`] on
    /// 1400-byte frames. Buffers may differ in length (multiples of 16):
    /// past the shortest, each finishes alone.
    #[target_feature(enable = "aes")]
    pub(crate) fn cbc_encrypt_x4<const NK: usize>(rk: &[[u8; 16]; 15], mut bufs: [&mut [u8]; 4]) {
        let k: [__m128i; NK] = core::array::from_fn(|i| zerocopy::transmute!(rk[i]));
        let blocks = bufs.iter().map(|b| b.len() / 16).min().unwrap_or(0);
        let mut prev = [_mm_setzero_si128(); 4];
        let load = |b: &[u8], j: usize| -> __m128i {
            let mut a = [0u8; 16];
            if let Some(s) = b.get(j * 16..j * 16 + 16) {
                a.copy_from_slice(s);
            }
            zerocopy::transmute!(a)
        };
        let store = |b: &mut [u8], j: usize, x: __m128i| {
            let o: [u8; 16] = zerocopy::transmute!(x);
            if let Some(d) = b.get_mut(j * 16..j * 16 + 16) {
                d.copy_from_slice(&o);
            }
        };
        for j in 0..blocks {
            let mut x: [__m128i; 4] = core::array::from_fn(|l| {
                _mm_xor_si128(_mm_xor_si128(load(bufs[l], j), prev[l]), k[0])
            });
            for key in &k[1..NK - 1] {
                for v in &mut x {
                    *v = _mm_aesenc_si128(*v, *key);
                }
            }
            for (l, v) in x.iter_mut().enumerate() {
                *v = _mm_aesenclast_si128(*v, k[NK - 1]);
                prev[l] = *v;
                store(bufs[l], j, *v);
            }
        }
        // The rest of each longer buffer, chained on from its last block.
        for (b, p) in bufs.iter_mut().zip(prev) {
            let mut p = p;
            for j in blocks..b.len() / 16 {
                let mut x = _mm_xor_si128(_mm_xor_si128(load(b, j), p), k[0]);
                for key in &k[1..NK - 1] {
                    x = _mm_aesenc_si128(x, *key);
                }
                x = _mm_aesenclast_si128(x, k[NK - 1]);
                p = x;
                store(b, j, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbox_spot_values() {
        // FIPS-197 figure 7.
        assert_eq!(SBOX[0x00], 0x63);
        assert_eq!(SBOX[0x53], 0xed);
        assert_eq!(SBOX[0xff], 0x16);
    }

    #[test]
    fn aes_ni_cbc_equals_crate_cbc() {
        let mut s = 0x5555_1234_u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        };
        for len in [22usize, 32, 40] {
            for _ in 0..20 {
                let h: [u8; 32] = core::array::from_fn(|_| next());
                let k = AesKey::from_hash(len, &h);
                let data: Vec<u8> = (0..16 * 90).map(|_| next()).collect();
                let mut a = data.clone();
                k.cbc_encrypt_zero_iv(&mut a);
                let mut b = data.clone();
                k.cbc_encrypt_portable(&mut b);
                assert_eq!(a, b, "key string length {len}");
            }
        }
    }
}
