//! n2n's 6-bit ASCII text encoding of keys (crypto.md §1.3): what
//! `n2n-keygen` prints and what `community.list` user lines and the edge's
//! `-P` hold.
//!
//! Alphabet `0-9 A-Z a-z + -` (values 0..63 in that order). Encoding takes
//! the input bits most-significant first, 6 at a time, zero-filling the last
//! group; no padding character. Decoding appends 6 bits per character and
//! emits a byte whenever 8 bits are pending; bits left over at the end are
//! dropped. A 32-byte key is 43 characters.
//!
//! Decoding is strict where C is not: C logs a character outside the
//! alphabet and carries on with garbage bits, here it is a
//! [`KeyTextError::BadChar`] naming the position.

use core::fmt;

/// Length of the text of a 32-byte key.
pub const KEY_TEXT_LEN: usize = 43;

const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-";

/// Why key text could not be decoded (or an encoding did not fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyTextError {
    /// A key's text must be exactly 43 characters.
    #[error("key text is {0} characters long, {KEY_TEXT_LEN} expected")]
    BadLength(usize),
    /// A character outside `0-9 A-Z a-z + -`.
    #[error(
        "invalid character {byte:#04x} at position {pos} of the key text (allowed: 0-9 A-Z a-z + -)"
    )]
    BadChar {
        /// Position (0-based) in the text.
        pos: usize,
        /// The offending byte.
        byte: u8,
    },
    /// The output buffer is smaller than the encoding or decoding needs.
    #[error("output buffer of {have} bytes too small, {need} needed")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// Number of characters [`encode`] writes for `n` input bytes: ⌈8n / 6⌉.
#[must_use]
pub const fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(6)
}

/// Number of bytes [`decode`] writes for `n` characters: ⌊6n / 8⌋.
#[must_use]
pub const fn decoded_len(n: usize) -> usize {
    n * 6 / 8
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        b'a'..=b'z' => Some(c - b'a' + 36),
        b'+' => Some(62),
        b'-' => Some(63),
        _ => None,
    }
}

/// The first `need` bytes of `out`.
fn prefix(out: &mut [u8], need: usize) -> Result<&mut [u8], KeyTextError> {
    let have = out.len();
    out.get_mut(..need)
        .ok_or(KeyTextError::BufferTooSmall { need, have })
}

/// Encodes `input` into `out`; returns the number of characters written
/// ([`encoded_len`]).
pub fn encode(input: &[u8], out: &mut [u8]) -> Result<usize, KeyTextError> {
    let need = encoded_len(input.len());
    let out = prefix(out, need)?;
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut chars = out.iter_mut();
    let mut emit = |v: u32| {
        if let Some(c) = chars.next() {
            *c = ALPHABET[(v & 0x3f) as usize];
        }
    };
    for &b in input {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            emit(acc >> bits);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        emit(acc << (6 - bits));
    }
    Ok(need)
}

/// Decodes `text` into `out`; returns the number of bytes written
/// ([`decoded_len`]). Every character must be in the alphabet.
pub fn decode(text: &[u8], out: &mut [u8]) -> Result<usize, KeyTextError> {
    let need = decoded_len(text.len());
    let out = prefix(out, need)?;
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut bytes = out.iter_mut();
    for (pos, &byte) in text.iter().enumerate() {
        let v = value(byte).ok_or(KeyTextError::BadChar { pos, byte })?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if let Some(o) = bytes.next() {
                *o = (acc >> bits) as u8;
            }
            acc &= (1 << bits) - 1;
        }
    }
    Ok(need)
}

/// Decodes the 43-character text of a 32-byte key.
pub fn decode_key(text: &[u8]) -> Result<[u8; 32], KeyTextError> {
    if text.len() != KEY_TEXT_LEN {
        return Err(KeyTextError::BadLength(text.len()));
    }
    let mut key = [0u8; 32];
    decode(text, &mut key)?;
    Ok(key)
}

/// Encodes a 32-byte key as its 43-character text.
#[must_use]
pub fn encode_key(key: &[u8; 32]) -> KeyText {
    let mut t = [0u8; KEY_TEXT_LEN];
    // 43 characters is exactly encoded_len(32): cannot fail.
    let _ = encode(key, &mut t);
    KeyText(t)
}

/// The 43-character text of a 32-byte key (always ASCII).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyText([u8; KEY_TEXT_LEN]);

impl KeyText {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only alphabet characters are ever stored.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The text as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_TEXT_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyText({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_order() {
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(value(c), Some(i as u8));
        }
        let valid = (0u8..=255).filter(|&c| value(c).is_some()).count();
        assert_eq!(valid, 64);
    }

    #[test]
    fn sixteen_bytes() {
        // tests-auth.expected / test-vectors.md §6.
        let input: [u8; 16] = core::array::from_fn(|i| i as u8);
        let mut out = [0u8; 22];
        assert_eq!(encode(&input, &mut out), Ok(22));
        assert_eq!(&out, b"00420mG51WS82GeB30qE3m");
        let mut back = [0u8; 32];
        assert_eq!(decode(&out, &mut back), Ok(16));
        assert_eq!(back[..16], input);
        assert!(back[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn errors() {
        let mut small = [0u8; 21];
        assert_eq!(
            encode(&[0u8; 16], &mut small),
            Err(KeyTextError::BufferTooSmall { need: 22, have: 21 })
        );
        assert_eq!(
            decode(b"0000", &mut [0u8; 2]),
            Err(KeyTextError::BufferTooSmall { need: 3, have: 2 })
        );
        assert_eq!(
            decode(b"00=0", &mut [0u8; 3]),
            Err(KeyTextError::BadChar { pos: 2, byte: b'=' })
        );
        assert_eq!(decode_key(b"abc"), Err(KeyTextError::BadLength(3)));
        let mut t = *encode_key(&[7u8; 32]).as_bytes();
        t[42] = b' ';
        assert_eq!(
            decode_key(&t),
            Err(KeyTextError::BadChar {
                pos: 42,
                byte: b' '
            })
        );
        assert_eq!(encode(&[], &mut []), Ok(0));
        assert_eq!(decode(&[], &mut []), Ok(0));
    }

    #[test]
    fn key_round_trip_and_dropped_bits() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 37 + 5) as u8);
        let t = encode_key(&key);
        assert_eq!(t.as_str().len(), KEY_TEXT_LEN);
        assert_eq!(decode_key(t.as_bytes()), Ok(key));
        // The last character carries 4 key bits and 2 zero bits; C drops the
        // two, so does decode.
        let mut t2 = *t.as_bytes();
        let v = value(t2[42]).unwrap_or(0) | 0x3;
        t2[42] = ALPHABET[usize::from(v)];
        assert_eq!(decode_key(&t2), Ok(key));
    }
}
