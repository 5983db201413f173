//! The receiving side of the trailer (crypto.md §4.3, §5.4): C's header
//! decryption in a user/password community, which hashes the received bytes
//! before the static-key attempt so that the trailer can be checked after
//! the message is known.

use super::AuthError;
use super::keys::{SharedSecret, split_trailer, trailer_hash};
use crate::he::{self, CommunityHe, Decrypted, HeError, HeKeyKind, TRAILER_LEN};

/// The trailer of a message decrypted with the static keys: `pearson128` of
/// the received bytes before it (taken before the header was decrypted in
/// place) and the 16 trailer bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedTrailer {
    /// `pearson128(datagram[..len − 16])` of the datagram as received.
    pub hash: [u8; 16],
    /// `datagram[len − 16..]`.
    pub trailer: [u8; TRAILER_LEN],
}

impl ReceivedTrailer {
    /// Does it verify with `secret` (the sender's S or S_u)?
    pub fn verify(&self, secret: &SharedSecret) -> Result<(), AuthError> {
        secret.verify_trailer_hash(&self.hash, &self.trailer)
    }
}

/// Header decryption as a C edge or supernode does it in a user/password
/// community (crypto.md §4.3): the dynamic keys over the whole datagram;
/// else the trailer hash of everything but the last 16 bytes, then the
/// static keys over `len − 16`. Returns the key kind, the decryption and,
/// for the static attempt, the trailer to verify (only REGISTER_SUPER and
/// its ACK carry a real one). On failure `buf` is unchanged and the most
/// advanced error of the two attempts is returned.
pub fn decrypt_header(
    keys: &CommunityHe,
    buf: &mut [u8],
) -> Result<(HeKeyKind, Decrypted, Option<ReceivedTrailer>), HeError> {
    let e1 = match he::decrypt(buf, keys.dynamic_keys(), keys.name_field()) {
        Ok(d) => return Ok((HeKeyKind::Dynamic, d, None)),
        Err(e) => e,
    };
    let Ok((msg, trailer)) = split_trailer(buf) else {
        return Err(e1);
    };
    let rt = ReceivedTrailer {
        hash: trailer_hash(msg),
        trailer: *trailer,
    };
    match he::decrypt_without_trailer(buf, keys.static_keys(), keys.name_field()) {
        Ok(d) => Ok((HeKeyKind::Static, d, Some(rt))),
        Err(HeError::TooShort | HeError::BadMagic) => Err(e1),
        Err(e2) => Err(e2),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::{PublicKey, UserKeys};

    fn community() -> CommunityHe {
        let mut he = CommunityHe::new(*b"rocks\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        he.set_dynamic_key(&[0x42; 16]);
        he
    }

    fn message(n: usize) -> Vec<u8> {
        let mut m = vec![0u8; n];
        m[..4].copy_from_slice(&[3, 2, 0, 5]);
        for (i, b) in m.iter_mut().enumerate().skip(24) {
            *b = i as u8;
        }
        m
    }

    #[test]
    fn static_attempt_keeps_the_trailer_and_dynamic_has_none() {
        let he = community();
        let keys = UserKeys::new(b"alice", b"alicepw", &PublicKey::default_federation());
        let plain = message(60);
        let mut buf = plain.clone();
        buf.resize(60 + TRAILER_LEN, 0);
        he.encrypt(&mut buf[..60], 60, 1 << 40, [1, 2, 3, 4], HeKeyKind::Static)
            .unwrap();
        keys.secret().append_trailer(&mut buf, 60).unwrap();
        let (kind, d, rt) = decrypt_header(&he, &mut buf).unwrap();
        assert_eq!((kind, d.len), (HeKeyKind::Static, 60));
        assert_eq!(&buf[4..24], he.name_field());
        assert_eq!(&buf[24..60], &plain[24..60]);
        let rt = rt.unwrap();
        assert_eq!(rt.verify(keys.secret()), Ok(()));
        let other = UserKeys::new(b"bob", b"bobpw", &PublicKey::default_federation());
        assert_eq!(rt.verify(other.secret()), Err(AuthError::BadTrailer));

        let mut buf = plain.clone();
        he.encrypt(&mut buf, 60, 1 << 40, [1, 2, 3, 4], HeKeyKind::Dynamic)
            .unwrap();
        let (kind, d, rt) = decrypt_header(&he, &mut buf).unwrap();
        assert_eq!((kind, d.len, rt), (HeKeyKind::Dynamic, 60, None));

        // Neither key: an error, the buffer untouched.
        let mut junk = plain.clone();
        junk[0] = 0x99;
        let copy = junk.clone();
        assert!(decrypt_header(&he, &mut junk).is_err());
        assert_eq!(junk, copy);
        let mut short = vec![0x55u8; 30];
        assert!(decrypt_header(&he, &mut short).is_err());
    }
}
