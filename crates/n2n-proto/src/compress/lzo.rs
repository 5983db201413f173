//! LZO1X: an LZO1X-1 style compressor and a bounded decompressor, written
//! from the format description (the `lzo1x` and `minilzo-rs` crates are
//! GPL; `lzokay-native` grows its output `Vec` without a bound).
//!
//! The raw LZO1X stream (no header, no length) is what miniLZO's
//! `lzo1x_1_compress` produces and `lzo1x_decompress_safe` accepts. The
//! compressed bytes need not equal miniLZO's, only decode to the same data.

use super::CompressError;

/// log2 of the compressor's hash table size.
const D_BITS: u32 = 12;
/// Hash table entries.
pub(crate) const DICT_SIZE: usize = 1 << D_BITS;

const M2_MAX_LEN: usize = 8;
const M2_MAX_OFFSET: usize = 0x0800;
const M3_MAX_OFFSET: usize = 0x4000;
const M3_MAX_LEN: usize = 33;
const M4_MAX_LEN: usize = 9;
const M3_MARKER: u8 = 0x20;
const M4_MARKER: u8 = 0x10;
/// Largest input the compressor accepts (matches stay below 0xC000 back).
pub(crate) const MAX_INPUT: usize = 0xC000;

/// The compressor's hash table of recent positions.
pub(crate) type Dict = [u16; DICT_SIZE];

/// Output writer that fails instead of writing past `limit`.
struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

struct Full;

impl Out<'_> {
    #[inline]
    fn push(&mut self, b: u8) -> Result<(), Full> {
        *self.buf.get_mut(self.pos).ok_or(Full)? = b;
        self.pos += 1;
        Ok(())
    }

    #[inline]
    fn extend(&mut self, s: &[u8]) -> Result<(), Full> {
        self.buf
            .get_mut(self.pos..self.pos + s.len())
            .ok_or(Full)?
            .copy_from_slice(s);
        self.pos += s.len();
        Ok(())
    }

    /// ORs the trailing-literal count into the state bits of the previous
    /// match (its second-to-last byte).
    #[inline]
    fn or_state(&mut self, t: usize) -> Result<(), Full> {
        let i = self.pos.checked_sub(2).ok_or(Full)?;
        let b = self.buf.get_mut(i).ok_or(Full)?;
        *b |= t as u8;
        Ok(())
    }

    /// `0` followed by a 255-run length for an extended count.
    fn ext_len(&mut self, mut n: usize) -> Result<(), Full> {
        while n > 255 {
            n -= 255;
            self.push(0)?;
        }
        self.push(n as u8)
    }
}

#[inline(always)]
fn le32(s: &[u8], i: usize) -> u32 {
    match s.get(i..i + 4) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

#[inline(always)]
fn dindex(dv: u32) -> usize {
    (dv.wrapping_mul(0x1824_429d) >> (32 - D_BITS)) as usize
}

/// Emits a literal run of `lits`; `first`: nothing was written yet and this
/// is the only literal run (miniLZO uses the `17 + t` form only then).
fn literals(o: &mut Out<'_>, lits: &[u8], first: bool) -> Result<(), Full> {
    let t = lits.len();
    if t == 0 {
        return Ok(());
    }
    if first && t <= 238 {
        o.push(17 + t as u8)?;
    } else if t <= 3 {
        o.or_state(t)?;
    } else if t <= 18 {
        o.push((t - 3) as u8)?;
    } else {
        o.push(0)?;
        o.ext_len(t - 18)?;
    }
    o.extend(lits)
}

fn emit_match(o: &mut Out<'_>, m_len: usize, m_off: usize) -> Result<(), Full> {
    if m_len <= M2_MAX_LEN && m_off <= M2_MAX_OFFSET {
        let off = m_off - 1;
        o.push((((m_len - 1) << 5) | ((off & 7) << 2)) as u8)?;
        o.push((off >> 3) as u8)?;
    } else if m_off <= M3_MAX_OFFSET {
        let off = m_off - 1;
        if m_len <= M3_MAX_LEN {
            o.push(M3_MARKER | (m_len - 2) as u8)?;
        } else {
            o.push(M3_MARKER)?;
            o.ext_len(m_len - M3_MAX_LEN)?;
        }
        o.push((off << 2) as u8)?;
        o.push((off >> 6) as u8)?;
    } else {
        let off = m_off - 0x4000;
        let hi = ((off >> 11) & 8) as u8;
        if m_len <= M4_MAX_LEN {
            o.push(M4_MARKER | hi | (m_len - 2) as u8)?;
        } else {
            o.push(M4_MARKER | hi)?;
            o.ext_len(m_len - M4_MAX_LEN)?;
        }
        o.push((off << 2) as u8)?;
        o.push((off >> 6) as u8)?;
    }
    Ok(())
}

fn compress_inner(src: &[u8], o: &mut Out<'_>, dict: &mut Dict) -> Result<(), Full> {
    dict.fill(0);
    let n = src.len();
    let mut ii = 0usize; // start of pending literals
    if n > 20 {
        let ip_end = n - 20;
        let mut ip = 4usize;
        let mut advance = true;
        loop {
            if advance {
                ip += 1 + ((ip - ii) >> 5);
            }
            advance = true;
            if ip >= ip_end {
                break;
            }
            let dv = le32(src, ip);
            let di = dindex(dv);
            let m_pos = usize::from(dict[di]);
            dict[di] = ip as u16;
            if m_pos >= ip || dv != le32(src, m_pos) {
                continue;
            }
            // A match of at least 4 bytes.
            literals(o, &src[ii..ip], false)?;
            let mut m_len = 4;
            while ip + m_len < ip_end && src[ip + m_len] == src[m_pos + m_len] {
                m_len += 1;
            }
            emit_match(o, m_len, ip - m_pos)?;
            ip += m_len;
            ii = ip;
            // The next candidate is the byte right after the match.
            advance = false;
        }
    }
    literals(o, &src[ii..], o.pos == 0)?;
    o.push(M4_MARKER | 1)?;
    o.push(0)?;
    o.push(0)
}

/// Compresses `src` into `out`; `None` if the result does not fit in `out`
/// or `src` is longer than [`MAX_INPUT`].
pub(crate) fn compress(src: &[u8], out: &mut [u8], dict: &mut Dict) -> Option<usize> {
    if src.len() > MAX_INPUT {
        return None;
    }
    let mut o = Out { buf: out, pos: 0 };
    compress_inner(src, &mut o, dict).ok()?;
    Some(o.pos)
}

/// Input cursor for the decompressor.
struct In<'a> {
    d: &'a [u8],
    p: usize,
}

impl In<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, CompressError> {
        let b = *self.d.get(self.p).ok_or(CompressError::LzoTruncated)?;
        self.p += 1;
        Ok(b)
    }

    #[inline]
    fn le16(&mut self) -> Result<usize, CompressError> {
        let lo = self.byte()?;
        let hi = self.byte()?;
        Ok(usize::from(u16::from_le_bytes([lo, hi])))
    }

    /// `base` + 255 per zero byte + the first non-zero byte.
    fn ext_len(&mut self, base: usize) -> Result<usize, CompressError> {
        let mut n = base;
        loop {
            match self.byte()? {
                0 => n = n.saturating_add(255),
                b => return Ok(n.saturating_add(usize::from(b))),
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CompressError> {
        let s = self
            .d
            .get(self.p..self.p.saturating_add(n))
            .ok_or(CompressError::LzoTruncated)?;
        self.p += n;
        Ok(s)
    }
}

fn copy_literals(
    inp: &mut In<'_>,
    out: &mut [u8],
    op: &mut usize,
    n: usize,
) -> Result<(), CompressError> {
    let limit = out.len();
    let dst = out
        .get_mut(*op..op.saturating_add(n))
        .ok_or(CompressError::TooLarge { limit })?;
    dst.copy_from_slice(inp.take(n)?);
    *op += n;
    Ok(())
}

fn copy_match(
    out: &mut [u8],
    op: &mut usize,
    dist: usize,
    len: usize,
) -> Result<(), CompressError> {
    let limit = out.len();
    if dist == 0 || dist > *op {
        return Err(CompressError::LzoBadDistance);
    }
    let end = op.saturating_add(len);
    if end > limit {
        return Err(CompressError::TooLarge { limit });
    }
    let from = *op - dist;
    if dist >= len {
        out.copy_within(from..from + len, *op);
    } else {
        for i in 0..len {
            out[*op + i] = out[from + i];
        }
    }
    *op = end;
    Ok(())
}

/// Decompresses a raw LZO1X stream into `out`, never writing more than
/// `out.len()` bytes (more output is [`CompressError::TooLarge`]). The
/// stream must end with the end marker and contain nothing after it.
pub(crate) fn decompress(src: &[u8], out: &mut [u8]) -> Result<usize, CompressError> {
    let mut inp = In { d: src, p: 0 };
    let mut op = 0usize;
    // Number of literals copied by the previous instruction (4 = "4 or more").
    let mut state: usize = 0;

    let first = *src.first().ok_or(CompressError::LzoTruncated)?;
    if first >= 22 {
        inp.p = 1;
        copy_literals(&mut inp, out, &mut op, usize::from(first - 17))?;
        state = 4;
    } else if first >= 18 {
        inp.p = 1;
        let n = usize::from(first - 17);
        copy_literals(&mut inp, out, &mut op, n)?;
        state = n;
    }

    loop {
        let inst = inp.byte()?;
        let (dist, len, next_state);
        if inst >= 64 {
            // M2: 1-2 byte copy within 2 kB.
            let h = usize::from(inp.byte()?);
            dist = (h << 3) + usize::from((inst >> 2) & 7) + 1;
            len = usize::from(inst >> 5) + 1;
            next_state = usize::from(inst & 3);
        } else if inst >= 32 {
            // M3: within 16 kB.
            len = match inst & 31 {
                0 => inp.ext_len(31)?.saturating_add(2),
                l => usize::from(l) + 2,
            };
            let v = inp.le16()?;
            dist = (v >> 2) + 1;
            next_state = v & 3;
        } else if inst >= 16 {
            // M4: 16..48 kB back; distance 16384 exactly is the end marker.
            len = match inst & 7 {
                0 => inp.ext_len(7)?.saturating_add(2),
                l => usize::from(l) + 2,
            };
            let v = inp.le16()?;
            let d = (usize::from(inst & 8) << 11) + (v >> 2);
            if d == 0 {
                let rest = src.len() - inp.p;
                if rest != 0 {
                    return Err(CompressError::LzoTrailingData(rest));
                }
                return Ok(op);
            }
            dist = d + 0x4000;
            next_state = v & 3;
        } else if state == 0 {
            // Literal run of 4 or more.
            let n = match inst {
                0 => inp.ext_len(15)?.saturating_add(3),
                l => usize::from(l) + 3,
            };
            copy_literals(&mut inp, out, &mut op, n)?;
            state = 4;
            continue;
        } else if state < 4 {
            // M1: 2 bytes within 1 kB, after 1..3 literals.
            let h = usize::from(inp.byte()?);
            dist = (h << 2) + usize::from(inst >> 2) + 1;
            len = 2;
            next_state = usize::from(inst & 3);
        } else {
            // M1: 3 bytes 2..3 kB back, after a literal run of 4 or more.
            let h = usize::from(inp.byte()?);
            dist = (h << 2) + usize::from(inst >> 2) + 2049;
            len = 3;
            next_state = usize::from(inst & 3);
        }
        copy_match(out, &mut op, dist, len)?;
        state = next_state;
        copy_literals(&mut inp, out, &mut op, state)?;
    }
}
