//! The Internet checksum (RFC 1071) and completing a partial one.

use crate::bytes::put16;
use crate::tso::OffloadError;

/// One's-complement sum of `data` (as big-endian 16-bit words) added to
/// `acc`, not folded.
///
/// The bulk is summed as native-order 32-bit words in 64 bits (no byte
/// swaps, no carries to propagate: the compiler vectorises it), folded,
/// and swapped to big-endian once: the one's-complement sum does not
/// depend on byte order (RFC 1071 §2(B)) and a 32-bit word is two 16-bit
/// words modulo 0xffff. The result is congruent modulo 0xffff to the
/// word-by-word sum, and 0 only when that is 0, so [`fold`] gives the same.
pub fn sum(data: &[u8], acc: u64) -> u64 {
    let mut words = data.chunks_exact(4);
    let native: u64 = (&mut words)
        .map(|c| u64::from(u32::from_ne_bytes(c.try_into().unwrap_or([0; 4]))))
        .sum();
    let mut acc = acc + u64::from(u16::from_be(fold(native)));
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let Some(&last) = pairs.remainder().first() {
        acc += u64::from(last) << 8;
    }
    acc
}

/// Fold a sum to 16 bits (not inverted).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 0xffff.
    u16::try_from(acc).unwrap_or(0xffff)
}

/// The Internet checksum of `data` (inverted fold).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Complete a partial checksum (`NEEDS_CSUM`): the field at
/// `start + offset` holds the pseudo-header sum; the one's complement of
/// the sum from `start` to the end goes there.
pub fn complete_checksum(
    frame: &mut [u8],
    start: usize,
    offset: usize,
) -> Result<(), OffloadError> {
    let at = start
        .checked_add(offset)
        .filter(|&a| a + 2 <= frame.len() && start < frame.len())
        .ok_or(OffloadError::BadChecksumOffset)?;
    let c = match checksum(frame.get(start..).unwrap_or_default()) {
        0 => 0xffff,
        c => c,
    };
    put16(frame, at, c).ok_or(OffloadError::BadChecksumOffset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: RFC 1071 over 16-bit words.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for p in data.chunks(2) {
            let w = u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]);
            s += u32::from(w);
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn checksum_matches_reference() {
        let mut x: u32 = 12345;
        let data: Vec<u8> = (0..3001)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        for len in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 1500, 3001] {
            assert_eq!(checksum(&data[..len]), naive(&data[..len]), "{len}");
        }
        // Chained sums with an accumulator, at every split and offset.
        for start in 0..6 {
            for len in 0..80 {
                let d = &data[start..start + len];
                for split in [0, len / 3, len / 2] {
                    let split = split & !1;
                    let acc = 0x1_2345 + start as u64;
                    let got = fold(sum(&d[split..], sum(&d[..split], acc)));
                    let mut want = naive(d);
                    // naive is inverted; add acc the RFC 1071 way.
                    let mut s = u64::from(!want) + acc;
                    while s > 0xffff {
                        s = (s & 0xffff) + (s >> 16);
                    }
                    want = s as u16;
                    assert_eq!(got, want, "start {start} len {len} split {split}");
                }
            }
        }
        // The classic IPv4 header example.
        let ip = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&ip), 0xb861);
    }
}
