//! AES with n2n's key-size rule (crypto.md §2.1) as a [`Cipher16`].

use super::cts::Cipher16;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};

/// Expanded AES key of the size chosen by the key string length.
#[derive(Clone)]
pub(crate) enum AesKey {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

impl core::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::A128(_) => "AesKey::A128",
            Self::A192(_) => "AesKey::A192",
            Self::A256(_) => "AesKey::A256",
        })
    }
}

impl AesKey {
    /// `key_string_len` is the length of the `-k` string; `h` = pearson256 of it.
    /// ≤ 22 → AES-128 with `h[16..32]`, 23..=32 → AES-192 with `h[8..32]`,
    /// ≥ 33 → AES-256 with `h[0..32]`.
    pub(crate) fn from_hash(key_string_len: usize, h: &[u8; 32]) -> Self {
        if key_string_len <= 22 {
            let mut k = [0u8; 16];
            k.copy_from_slice(&h[16..32]);
            Self::A128(Box::new(Aes128::new(&k.into())))
        } else if key_string_len <= 32 {
            let mut k = [0u8; 24];
            k.copy_from_slice(&h[8..32]);
            Self::A192(Box::new(Aes192::new(&k.into())))
        } else {
            Self::A256(Box::new(Aes256::new(&(*h).into())))
        }
    }

    /// Key size in bits (128, 192 or 256).
    pub(crate) fn bits(&self) -> u16 {
        match self {
            Self::A128(_) => 128,
            Self::A192(_) => 192,
            Self::A256(_) => 256,
        }
    }
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AesKey::A128($c) => $e,
            AesKey::A192($c) => $e,
            AesKey::A256($c) => $e,
        }
    };
}

impl Cipher16 for AesKey {
    #[inline]
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b: &mut Array<u8, _> = block.into();
        each!(self, c => c.encrypt_block(b))
    }

    #[inline]
    fn decrypt_block(&self, block: &mut [u8; 16]) {
        let b: &mut Array<u8, _> = block.into();
        each!(self, c => c.decrypt_block(b))
    }

    fn cbc_encrypt_zero_iv(&self, data: &mut [u8]) {
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
        each!(self, c => run(&**c, data))
    }

    fn decrypt_blocks(&self, data: &mut [u8]) {
        let (blocks, _) = Array::<u8, aes::cipher::consts::U16>::slice_as_chunks_mut(data);
        each!(self, c => c.decrypt_blocks(blocks))
    }
}
