//! The Internet checksum (RFC 1071) and completing a partial one.

use crate::bytes::put16;
use crate::tso::OffloadError;

/// One's-complement sum of `data` (as big-endian 16-bit words) added to
/// `acc`, not folded.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_be_bytes(w);
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let rest = chunks.remainder();
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
        // The classic IPv4 header example.
        let ip = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&ip), 0xb861);
    }
}
