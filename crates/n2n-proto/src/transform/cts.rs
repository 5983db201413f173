//! n2n's CBC with ciphertext stealing (crypto.md §2.3), generic over a
//! 16-byte block cipher. Used by the AES (3) and Twofish (2) transforms.
//!
//! `encode(frame) = CBC_0(R || frame || zero pad)` with the last two blocks
//! swapped and the output truncated to `16 + len(frame)` bytes when the length
//! is not a multiple of 16 ("CS2"); `R` is the 16-byte random preamble, which
//! acts as the IV since the CBC IV itself is zero.
//!
//! On decode C n2n checks that the padding bytes of the rebuilt last block are
//! zero. With the rebuild described in crypto.md those bytes are zero by
//! construction (they are `D[r..] ⊕ D[r..]`), so the check can never fail and
//! is not repeated here: a wrong key or a corrupted payload simply yields a
//! garbage frame, exactly as in C n2n. These transforms have no integrity.

use super::TransformError;

/// A 16-byte block cipher as the CTS code needs it.
pub(crate) trait Cipher16 {
    fn encrypt_block(&self, block: &mut [u8; 16]);
    fn decrypt_block(&self, block: &mut [u8; 16]);

    /// CBC-encrypts `data` (a multiple of 16 bytes) in place with a zero IV.
    fn cbc_encrypt_zero_iv(&self, data: &mut [u8]) {
        let mut prev = [0u8; 16];
        for chunk in data.chunks_exact_mut(16) {
            let mut b = [0u8; 16];
            for ((b, c), p) in b.iter_mut().zip(chunk.iter()).zip(prev) {
                *b = c ^ p;
            }
            self.encrypt_block(&mut b);
            chunk.copy_from_slice(&b);
            prev = b;
        }
    }

    /// ECB-decrypts `data` (a multiple of 16 bytes) in place.
    fn decrypt_blocks(&self, data: &mut [u8]) {
        for chunk in data.chunks_exact_mut(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(chunk);
            self.decrypt_block(&mut b);
            chunk.copy_from_slice(&b);
        }
    }
}

#[inline]
fn xor_in_place(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

#[inline]
fn block_at(data: &[u8], at: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    if let Some(s) = data.get(at..at + 16) {
        b.copy_from_slice(s);
    }
    b
}

/// Encodes `frame` into `out`; returns the payload length `16 + frame.len()`.
pub(crate) fn encrypt<C: Cipher16>(
    c: &C,
    preamble: &[u8; 16],
    frame: &[u8],
    out: &mut [u8],
) -> Result<usize, TransformError> {
    let len = 16 + frame.len();
    let have = out.len();
    let out = out
        .get_mut(..len)
        .ok_or(TransformError::OutputTooSmall { need: len, have })?;
    out[..16].copy_from_slice(preamble);
    out[16..].copy_from_slice(frame);

    let full = len / 16 * 16;
    let r = len % 16;
    let (head, tail) = out.split_at_mut(full);
    c.cbc_encrypt_zero_iv(head);
    if r != 0 {
        // full >= 16 because len >= 16.
        let prev = block_at(head, full - 16); // C_{n-1}
        let mut last = [0u8; 16];
        last[..r].copy_from_slice(tail);
        xor_in_place(&mut last, &prev);
        c.encrypt_block(&mut last); // C_n
        head[full - 16..].copy_from_slice(&last);
        tail.copy_from_slice(&prev[..r]);
    }
    Ok(len)
}

/// Decodes payload `ct` into `out`; returns the frame length `ct.len() - 16`.
pub(crate) fn decrypt<C: Cipher16>(
    c: &C,
    ct: &[u8],
    out: &mut [u8],
) -> Result<usize, TransformError> {
    let n = ct.len();
    if n < 16 {
        return Err(TransformError::PayloadTooShort { len: n, min: 16 });
    }
    let flen = n - 16;
    let have = out.len();
    let out = out
        .get_mut(..flen)
        .ok_or(TransformError::OutputTooSmall { need: flen, have })?;
    let r = n % 16;
    if r == 0 {
        // Q_i = D(C_i) ^ C_{i-1}; the frame is Q_2..Q_m.
        out.copy_from_slice(&ct[16..]);
        c.decrypt_blocks(out);
        xor_in_place(out, &ct[..flen]);
        return Ok(flen);
    }

    // p: offset of the last full ciphertext block (which is C_n, swapped).
    let p = (n / 16 - 1) * 16;
    let mut d = block_at(ct, p);
    c.decrypt_block(&mut d); // P_n ^ C_{n-1}
    let mut cn1 = d;
    cn1[..r].copy_from_slice(&ct[n - r..]); // rebuilt C_{n-1}

    // Blocks S_1..S_{m-2} = ct[0..p], S_{m-1} = cn1, S_m = ct[p..p+16].
    if p >= 32 {
        out[..p - 16].copy_from_slice(&ct[16..p]);
        c.decrypt_blocks(&mut out[..p - 16]);
        xor_in_place(&mut out[..p - 16], &ct[..p - 16]);
    }
    if p >= 16 {
        let mut q = cn1;
        c.decrypt_block(&mut q);
        xor_in_place(&mut q, &ct[p - 16..p]);
        out[p - 16..p].copy_from_slice(&q);
    }
    // Q_m = D(S_m) ^ S_{m-1} = d ^ cn1; its bytes r.. are zero by construction.
    for (i, o) in out[p..].iter_mut().enumerate() {
        *o = d[i] ^ cn1[i];
    }
    Ok(flen)
}
