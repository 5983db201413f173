//! ChaCha20 keystream for the n2n ChaCha20 transform (crypto.md §1.3, §2.4).
//!
//! State words 12..16 are the 16-byte IV verbatim: word 12 is a 32-bit block
//! counter starting at `LE32(iv[0..4])`, words 13..16 the nonce `iv[4..16]`.
//! When the counter passes `0xffff_ffff` it wraps to 0 without touching the
//! nonce (C n2n's built-in ChaCha20; OpenSSL builds would carry into word 13
//! instead; crypto.md accepts either). The `chacha20` crate refuses to run
//! past the end of the counter space, so the keystream is produced here in
//! two segments, each by a fresh core positioned explicitly: nothing panics
//! or fails for any IV.

use chacha20::cipher::array::Array;
use chacha20::cipher::{KeyIvInit, StreamCipherCore};
use chacha20::{ChaChaCore, R20, variants::Ietf};

pub(crate) type Core = ChaChaCore<R20, Ietf>;

/// XORs `data` with the keystream of `core` from its current position.
pub(crate) fn apply(core: &mut Core, data: &mut [u8]) {
    let (blocks, tail) = Array::<u8, _>::slice_as_chunks_mut(data);
    core.apply_keystream_blocks(blocks);
    if !tail.is_empty() {
        let mut ks = Array::default();
        core.write_keystream_block(&mut ks);
        for (d, k) in tail.iter_mut().zip(ks.iter()) {
            *d ^= k;
        }
    }
}

fn apply_segment(key: &[u8; 32], nonce: &[u8; 12], ctr: u32, data: &mut [u8]) {
    let mut core = Core::new(key.into(), nonce.into());
    core.set_block_pos(ctr);
    apply(&mut core, data);
}

/// XORs `data` with the n2n ChaCha20 keystream for `key` and `iv`.
pub(crate) fn xor(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let ctr = u32::from_le_bytes([iv[0], iv[1], iv[2], iv[3]]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&iv[4..16]);
    // Bytes that fit before the counter wraps (a u64 avoids overflow).
    let before_wrap = ((1u64 << 32) - u64::from(ctr)) * 64;
    let split = usize::try_from(before_wrap).map_or(data.len(), |b| b.min(data.len()));
    let (first, rest) = data.split_at_mut(split);
    apply_segment(key, &nonce, ctr, first);
    if !rest.is_empty() {
        apply_segment(key, &nonce, 0, rest);
    }
}
