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

    /// [`Self::cbc_encrypt_zero_iv`] of four buffers (lengths multiples
    /// of 16, may differ); a cipher may interleave them.
    fn cbc_encrypt_zero_iv_x4(&self, bufs: [&mut [u8]; 4]) {
        for b in bufs {
            self.cbc_encrypt_zero_iv(b);
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
    let len = prepare(preamble, frame, out)?;
    let out = out.get_mut(..len).unwrap_or_default();
    let (head, _) = out.split_at_mut(len / 16 * 16);
    c.cbc_encrypt_zero_iv(head);
    steal(c, out);
    Ok(len)
}

/// [`encrypt`] of several frames (`jobs`: preamble, frame, output; the
/// payload length or the error of each goes to `lens`), the CBC chains of
/// four at a time interleaved ([`Cipher16::cbc_encrypt_zero_iv_x4`]). The
/// same bytes as [`encrypt`] of each.
pub(crate) fn encrypt_many<C: Cipher16>(
    c: &C,
    jobs: &mut [(&[u8; 16], &[u8], &mut [u8])],
    lens: &mut [Result<usize, TransformError>],
) {
    let mut ready: [usize; 4] = [0; 4];
    let mut n = 0;
    let count = jobs.len().min(lens.len());
    for i in 0..count {
        let (Some((pre, frame, out)), Some(l)) = (jobs.get_mut(i), lens.get_mut(i)) else {
            break;
        };
        *l = prepare(pre, frame, out);
        if l.is_ok() {
            ready[n] = i;
            n += 1;
        }
        if n == 4 || (i + 1 == count && n > 0) {
            cbc_group(c, jobs, lens, &ready[..n]);
            n = 0;
        }
    }
}

/// The CBC and stealing steps of the prepared jobs `idx` (at most four).
fn cbc_group<C: Cipher16>(
    c: &C,
    jobs: &mut [(&[u8; 16], &[u8], &mut [u8])],
    lens: &[Result<usize, TransformError>],
    idx: &[usize],
) {
    let len_of = |i: usize| {
        lens.get(i)
            .and_then(|l| l.as_ref().ok().copied())
            .unwrap_or(0)
    };
    if let &[a, b, c3, d] = idx {
        // Four distinct jobs (indices rise): split the slice to borrow each.
        let (x, rest) = jobs.split_at_mut(b);
        let (y, rest) = rest.split_at_mut(c3 - b);
        let (z, w) = rest.split_at_mut(d - c3);
        if let (Some(ja), Some(jb), Some(jc), Some(jd)) =
            (x.get_mut(a), y.first_mut(), z.first_mut(), w.first_mut())
        {
            let heads = [
                head(ja.2, len_of(a)),
                head(jb.2, len_of(b)),
                head(jc.2, len_of(c3)),
                head(jd.2, len_of(d)),
            ];
            c.cbc_encrypt_zero_iv_x4(heads);
            for (j, i) in [(ja, a), (jb, b), (jc, c3), (jd, d)] {
                if let Some(out) = j.2.get_mut(..len_of(i)) {
                    steal(c, out);
                }
            }
            return;
        }
    }
    for &i in idx {
        if let Some(j) = jobs.get_mut(i) {
            let len = len_of(i);
            c.cbc_encrypt_zero_iv(head(j.2, len));
            if let Some(out) = j.2.get_mut(..len) {
                steal(c, out);
            }
        }
    }
}

/// The whole blocks of a `len`-byte payload in `out`.
fn head(out: &mut [u8], len: usize) -> &mut [u8] {
    out.get_mut(..len / 16 * 16).unwrap_or_default()
}

/// Writes `preamble || frame` into `out`; the payload length.
fn prepare(preamble: &[u8; 16], frame: &[u8], out: &mut [u8]) -> Result<usize, TransformError> {
    let len = 16 + frame.len();
    let have = out.len();
    let out = out
        .get_mut(..len)
        .ok_or(TransformError::OutputTooSmall { need: len, have })?;
    out[..16].copy_from_slice(preamble);
    out[16..].copy_from_slice(frame);
    Ok(len)
}

/// Ciphertext stealing on `out` (the payload, its whole blocks already
/// CBC-encrypted): the last partial block, if any.
fn steal<C: Cipher16>(c: &C, out: &mut [u8]) {
    let len = out.len();
    let full = len / 16 * 16;
    let r = len % 16;
    if r == 0 || full < 16 {
        return;
    }
    let (head, tail) = out.split_at_mut(full);
    let prev = block_at(head, full - 16); // C_{n-1}
    let mut last = [0u8; 16];
    last[..r].copy_from_slice(tail);
    xor_in_place(&mut last, &prev);
    c.encrypt_block(&mut last); // C_n
    head[full - 16..].copy_from_slice(&last);
    tail.copy_from_slice(&prev[..r]);
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
