//! PACKET payload transforms (crypto.md §2): C n2n's five (null, Twofish,
//! AES, ChaCha20, Speck), byte-exact with C n2n 3.1.1, plus two
//! authenticated transforms of this implementation (see [`aead`]).
//!
//! | id | `-A` | transform | key | payload |
//! |---|---|---|---|---|
//! | 1 | `-A1` | null | none | frame |
//! | 2 | `-A2` | Twofish-256 CBC-CTS | pearson256(k) | CTS(R ‖ frame), 16 + len |
//! | 3 | `-A3` | AES-128/192/256 CBC-CTS | tail of pearson256(k) by length of k | CTS(R ‖ frame), 16 + len |
//! | 4 | `-A4` | ChaCha20 | pearson256(k) | IV ‖ frame ⊕ ks, 16 + len |
//! | 5 | `-A5` | Speck128/256-CTR | pearson256(k) | IV ‖ frame ⊕ ks, 16 + len |
//! | 6 | `-A6` | ChaCha20-Poly1305 (ours) | HKDF-SHA256 | nonce ‖ ct ‖ tag, 28 + len |
//! | 7 | `-A7` | AES-256-GCM (ours) | HKDF-SHA256 | nonce ‖ ct ‖ tag, 28 + len |
//!
//! No RNG is used: the caller passes 16 random bytes per packet (`R` / the
//! IV of transforms 2..5; ignored by 1, 6 and 7) and, once, a [`NonceSeed`]
//! for 6 and 7. Encryption and decryption write into caller buffers and do
//! not allocate.
//!
//! Transforms 2..5 have no integrity protection (as in C n2n): a wrong key
//! or a modified payload decrypts to garbage without an error.

pub mod aead;
mod aes;
mod chacha;
mod cts;
mod dispatch;
mod poly1305;
pub mod speck;
pub mod twofish;

use crate::crypto::pearson;
use crate::crypto::speck::Speck128;
pub use aead::{
    AEAD_OVERHEAD, AeadNonce, NonceSeed, PACKET_AAD_LEN, REPLAY_WINDOW, ReplayError, ReplayWindow,
    packet_aad,
};
use twofish::Twofish;

/// The payload transform id, PACKET byte 37 (45/57 with a socket), the one
/// name of this concept in every crate (also [`crate::types::TransformId`]).
///
/// Only known ids are values of this type; a PACKET's raw byte is kept as a
/// `u8` by [`crate::wire::Packet`] / [`crate::wire::PacketView`] so that an
/// unknown id still decodes and re-encodes byte-exactly. Convert with
/// [`TryFrom<u8>`] / [`from_wire`](Self::from_wire); the `-A<n>` number of
/// the command line is the wire value ([`from_cli_number`](Self::from_cli_number)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum TransformId {
    /// 1: no encryption.
    #[default]
    Null = 1,
    /// 2: Twofish-256 in CBC with ciphertext stealing.
    Twofish = 2,
    /// 3: AES (key size from the key length) in CBC with ciphertext stealing.
    Aes = 3,
    /// 4: ChaCha20.
    ChaCha20 = 4,
    /// 5: Speck128/256 in CTR mode.
    Speck = 5,
    /// 6: ChaCha20-Poly1305 (this implementation only).
    ChaCha20Poly1305 = 6,
    /// 7: AES-256-GCM (this implementation only).
    Aes256Gcm = 7,
}

impl TransformId {
    /// All ids, in wire order.
    pub const ALL: [TransformId; 7] = [
        Self::Null,
        Self::Twofish,
        Self::Aes,
        Self::ChaCha20,
        Self::Speck,
        Self::ChaCha20Poly1305,
        Self::Aes256Gcm,
    ];

    /// The largest [`overhead`](Self::overhead) of any transform (the AEADs').
    pub const MAX_OVERHEAD: usize = AEAD_OVERHEAD;

    /// The wire value.
    #[must_use]
    pub const fn to_wire(self) -> u8 {
        self as u8
    }

    /// Parses a wire value (1..=7).
    #[must_use]
    pub const fn from_wire(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Null,
            2 => Self::Twofish,
            3 => Self::Aes,
            4 => Self::ChaCha20,
            5 => Self::Speck,
            6 => Self::ChaCha20Poly1305,
            7 => Self::Aes256Gcm,
            _ => return None,
        })
    }

    /// The transform of `-A<n>` (`n` in 1..=7, the wire value). C's rule
    /// that a key without `-A` (or with `-A1`) means AES is
    /// [`select`](Self::select).
    #[must_use]
    pub const fn from_cli_number(n: u8) -> Option<Self> {
        Self::from_wire(n)
    }

    /// The number written after `-A` (the wire value).
    #[must_use]
    pub const fn cli_number(self) -> u8 {
        self.to_wire()
    }

    /// Lower-case name as used in logs, management and decoder output
    /// (also the [`Display`](core::fmt::Display) form).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Twofish => "twofish",
            Self::Aes => "aes",
            Self::ChaCha20 => "chacha20",
            Self::Speck => "speck",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
            Self::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// The cipher's usual spelling, for messages to users ("AES",
    /// "ChaCha20-Poly1305", ...).
    #[must_use]
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Twofish => "Twofish",
            Self::Aes => "AES",
            Self::ChaCha20 => "ChaCha20",
            Self::Speck => "Speck",
            Self::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            Self::Aes256Gcm => "AES-256-GCM",
        }
    }

    /// Whether the transform needs a key.
    #[must_use]
    pub const fn needs_key(self) -> bool {
        !matches!(self, Self::Null)
    }

    /// Whether the transform authenticates (6, 7).
    #[must_use]
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::ChaCha20Poly1305 | Self::Aes256Gcm)
    }

    /// Bytes the payload is longer than the (compressed) frame.
    #[must_use]
    pub const fn overhead(self) -> usize {
        match self {
            Self::Null => 0,
            Self::Twofish | Self::Aes | Self::ChaCha20 | Self::Speck => 16,
            Self::ChaCha20Poly1305 | Self::Aes256Gcm => AEAD_OVERHEAD,
        }
    }

    /// C n2n's selection rule from `-A<n>` and `-k`: `-k` without `-A`, or
    /// with `-A1`, gives AES; neither gives null; `-A2..7` need a key.
    pub fn select(a: Option<u8>, key: Option<&[u8]>) -> Result<Self, TransformError> {
        match (a, key) {
            (None | Some(1), Some(_)) => Ok(Self::Aes),
            (None | Some(1), None) => Ok(Self::Null),
            (Some(v), key) => {
                let id = Self::from_wire(v).ok_or(TransformError::UnknownTransform(v))?;
                if key.is_none() {
                    return Err(TransformError::KeyRequired(id));
                }
                Ok(id)
            }
        }
    }
}

impl TryFrom<u8> for TransformId {
    type Error = TransformError;
    fn try_from(v: u8) -> Result<Self, TransformError> {
        Self::from_wire(v).ok_or(TransformError::UnknownTransform(v))
    }
}

impl From<TransformId> for u8 {
    fn from(id: TransformId) -> u8 {
        id.to_wire()
    }
}

impl core::fmt::Display for TransformId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a transform could not be set up or a payload not be produced or
/// decoded. Each variant is a named drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// Transform id not in 1..=7.
    #[error("unknown transform id {0}")]
    UnknownTransform(u8),
    /// `-A2..7` without `-k`.
    #[error("transform {0} needs a key")]
    KeyRequired(TransformId),
    /// The payload is shorter than the transform's overhead.
    #[error("payload too short: {len} bytes, at least {min} needed")]
    PayloadTooShort {
        /// Payload length.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// The output buffer cannot hold the result.
    #[error("output buffer too small: {need} bytes needed, {have} available")]
    OutputTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// AEAD tag mismatch: wrong key, tampered header fields or payload.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The AEAD nonce counter reached its end; a new key/session is needed.
    #[error("nonce counter exhausted")]
    NonceExhausted,
    /// A cipher library refused its input (cannot happen with checked sizes).
    #[error("internal cipher error")]
    Internal,
}

/// Result of [`Transform::decrypt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decrypted {
    /// Number of plaintext bytes written to `out`.
    pub len: usize,
    /// For AEAD transforms: the packet's nonce, to be checked with the
    /// peer's [`ReplayWindow`]. `None` for transforms 1..5.
    pub nonce: Option<AeadNonce>,
}

enum Kind {
    Null,
    Twofish(Box<Twofish>),
    Aes(aes::AesKey),
    ChaCha20([u8; 32]),
    Speck(Box<Speck128>),
    Aead(aead::AeadState),
}

/// A keyed payload transform: encrypts frames into PACKET payloads and back.
///
/// Not `Clone`: for the AEAD transforms it owns the nonce counter, and an
/// independent copy would reuse nonces. A second handle for another thread
/// is [`share`](Self::share): the same key and, for the AEADs, the same
/// nonce prefix and counter (drawn atomically), so that all handles of one
/// sender never repeat a nonce and the receiver's one replay window per
/// sender accepts all of them (see [`aead`]'s module docs).
pub struct Transform {
    id: TransformId,
    kind: Kind,
}

impl core::fmt::Debug for Transform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Transform");
        d.field("id", &self.id);
        if let Kind::Aes(k) = &self.kind {
            d.field("aes_bits", &k.bits());
        }
        d.finish_non_exhaustive()
    }
}

impl Transform {
    /// Sets up transform `id` from the raw `-k` key string (ignored for null)
    /// and the 20-byte community field (used by the AEAD key derivation).
    /// `nonce_seed` is only used by the AEAD transforms 6 and 7.
    pub fn new(
        id: TransformId,
        key: &[u8],
        community: &[u8; 20],
        nonce_seed: NonceSeed,
    ) -> Result<Self, TransformError> {
        let kind = match id {
            TransformId::Null => Kind::Null,
            TransformId::Twofish => Kind::Twofish(Box::new(Twofish::new(&pearson::hash256(key)))),
            TransformId::Aes => {
                Kind::Aes(aes::AesKey::from_hash(key.len(), &pearson::hash256(key)))
            }
            TransformId::ChaCha20 => Kind::ChaCha20(pearson::hash256(key)),
            TransformId::Speck => Kind::Speck(Box::new(Speck128::new_256(&pearson::hash256(key)))),
            TransformId::ChaCha20Poly1305 | TransformId::Aes256Gcm => {
                let c = aead::new_cipher(id, key, community).ok_or(TransformError::Internal)?;
                Kind::Aead(aead::AeadState::new(c, nonce_seed))
            }
        };
        Ok(Self { id, kind })
    }

    /// Another handle on this transform, e.g. for a second thread: the same
    /// key schedule (copied) and, for the AEAD transforms, the same nonce
    /// prefix and counter, shared: each [`encrypt`](Self::encrypt) of any
    /// handle draws the next counter (`fetch_add`). Handles are `Send`.
    #[must_use]
    pub fn share(&self) -> Self {
        let kind = match &self.kind {
            Kind::Null => Kind::Null,
            Kind::Twofish(c) => Kind::Twofish(c.clone()),
            Kind::Aes(c) => Kind::Aes(c.clone()),
            Kind::ChaCha20(k) => Kind::ChaCha20(*k),
            Kind::Speck(c) => Kind::Speck(c.clone()),
            Kind::Aead(s) => Kind::Aead(s.share()),
        };
        Self { id: self.id, kind }
    }

    /// The transform id.
    pub fn id(&self) -> TransformId {
        self.id
    }

    /// Bytes the payload is longer than the frame (0, 16 or 28).
    pub fn overhead(&self) -> usize {
        self.id.overhead()
    }

    /// AES key size in bits for transform 3, `None` otherwise.
    pub fn aes_key_bits(&self) -> Option<u16> {
        match &self.kind {
            Kind::Aes(k) => Some(k.bits()),
            _ => None,
        }
    }

    /// For AEAD transforms, the nonce the next [`Self::encrypt`] will use
    /// (unless a [`share`](Self::share)d handle encrypts first).
    pub fn next_nonce(&self) -> Option<AeadNonce> {
        match &self.kind {
            Kind::Aead(s) => s.next_nonce(),
            _ => None,
        }
    }

    /// Whether [`Self::encrypt_many`] encrypts several frames faster than
    /// [`Self::encrypt`] of each: AES (`-A3`), whose CBC chains it
    /// interleaves.
    pub fn encrypts_in_batches(&self) -> bool {
        matches!(self.kind, Kind::Aes(_))
    }

    /// [`Self::encrypt`] of several frames: job `i` is (random bytes,
    /// frame, output), its payload length or error goes to `lens[i]`; the
    /// same bytes as [`Self::encrypt`] of each in turn. AES interleaves the
    /// CBC chains of four frames; any other transform encrypts one after
    /// the other (with no associated data: only for transforms 1..5).
    pub fn encrypt_many(
        &mut self,
        jobs: &mut [(&[u8; 16], &[u8], &mut [u8])],
        lens: &mut [Result<usize, TransformError>],
    ) {
        if let Kind::Aes(c) = &self.kind {
            return cts::encrypt_many(c, jobs, lens);
        }
        for ((random, frame, out), l) in jobs.iter_mut().zip(lens.iter_mut()) {
            *l = self.encrypt(frame, **random, &[], out);
        }
    }

    /// Encrypts `frame` into `out` (at least `frame.len() + overhead()`
    /// bytes); returns the payload length.
    ///
    /// `random`: 16 fresh random bytes (preamble of AES/Twofish, IV of
    /// ChaCha20/Speck; unused by null and the AEADs). `aad`: the associated
    /// data of AEAD transforms ([`packet_aad`]); ignored by 1..5.
    pub fn encrypt(
        &mut self,
        frame: &[u8],
        random: [u8; 16],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TransformError> {
        let need = frame.len() + self.overhead();
        let have = out.len();
        match &mut self.kind {
            Kind::Null => {
                out.get_mut(..frame.len())
                    .ok_or(TransformError::OutputTooSmall { need, have })?
                    .copy_from_slice(frame);
                Ok(frame.len())
            }
            Kind::Twofish(c) => cts::encrypt(&**c, &random, frame, out),
            Kind::Aes(c) => cts::encrypt(c, &random, frame, out),
            Kind::ChaCha20(key) => {
                let body = stream_prepare(&random, frame, out)?;
                chacha::xor(key, &random, body);
                Ok(need)
            }
            Kind::Speck(key) => {
                let body = stream_prepare(&random, frame, out)?;
                speck::ctr_xor(key, &random, body);
                Ok(need)
            }
            Kind::Aead(s) => s.encrypt(frame, aad, out),
        }
    }

    /// Decrypts `payload` into `out` (at least `payload.len() - overhead()`
    /// bytes). For AEAD transforms the returned nonce must then be checked
    /// with the sending peer's [`ReplayWindow`].
    pub fn decrypt(
        &self,
        payload: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<Decrypted, TransformError> {
        let plain = |len| Decrypted { len, nonce: None };
        match &self.kind {
            Kind::Null => {
                let have = out.len();
                out.get_mut(..payload.len())
                    .ok_or(TransformError::OutputTooSmall {
                        need: payload.len(),
                        have,
                    })?
                    .copy_from_slice(payload);
                Ok(plain(payload.len()))
            }
            Kind::Twofish(c) => cts::decrypt(&**c, payload, out).map(plain),
            Kind::Aes(c) => cts::decrypt(c, payload, out).map(plain),
            Kind::ChaCha20(key) => {
                let (iv, body) = stream_split(payload, out)?;
                chacha::xor(key, &iv, body);
                Ok(plain(body.len()))
            }
            Kind::Speck(key) => {
                let (iv, body) = stream_split(payload, out)?;
                speck::ctr_xor(key, &iv, body);
                Ok(plain(body.len()))
            }
            Kind::Aead(s) => s.decrypt(payload, aad, out).map(|(len, n)| Decrypted {
                len,
                nonce: Some(n),
            }),
        }
    }
}

/// Writes `iv || frame` to `out`, returns the part to XOR.
fn stream_prepare<'a>(
    iv: &[u8; 16],
    frame: &[u8],
    out: &'a mut [u8],
) -> Result<&'a mut [u8], TransformError> {
    let need = 16 + frame.len();
    let have = out.len();
    let out = out
        .get_mut(..need)
        .ok_or(TransformError::OutputTooSmall { need, have })?;
    let (head, body) = out.split_at_mut(16);
    head.copy_from_slice(iv);
    body.copy_from_slice(frame);
    Ok(body)
}

/// Splits `IV || ct`, copies `ct` to `out`, returns the IV and the part to XOR.
fn stream_split<'a>(
    payload: &[u8],
    out: &'a mut [u8],
) -> Result<([u8; 16], &'a mut [u8]), TransformError> {
    let (iv, ct) = payload
        .split_first_chunk::<16>()
        .ok_or(TransformError::PayloadTooShort {
            len: payload.len(),
            min: 16,
        })?;
    let have = out.len();
    let body = out
        .get_mut(..ct.len())
        .ok_or(TransformError::OutputTooSmall {
            need: ct.len(),
            have,
        })?;
    body.copy_from_slice(ct);
    Ok((*iv, body))
}
