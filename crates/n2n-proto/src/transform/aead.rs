//! Authenticated payload transforms of this implementation (not in C n2n):
//! ChaCha20-Poly1305 (transform id 6, `-A6`) and AES-256-GCM (id 7, `-A7`).
//!
//! # Key
//!
//! `K = HKDF-SHA256(ikm = the -k string, salt = the 20-byte community field,
//! info = "n2n-rs payload transform 6 chacha20-poly1305 v1")` (or
//! `"... 7 aes-256-gcm v1"`), 32 bytes. The community field is the
//! NUL-padded name as it appears in the PACKET header. Different transforms
//! and different communities therefore never share a key.
//!
//! # Wire layout (the PACKET payload)
//!
//! ```text
//! nonce (12) = be32(prefix) || be64(counter)
//! ciphertext (len(frame), or of the compressed frame)
//! tag (16)
//! ```
//!
//! Overhead: 28 bytes. Compression, if any, is applied before encryption, as
//! for the other transforms.
//!
//! # Associated data
//!
//! The caller passes the header fields that must not be changed on the way,
//! in this order (35 bytes, see [`packet_aad`]): version (1), community field
//! (20), source MAC (6), destination MAC (6), compression id (1), transform id
//! (1). TTL, the flags word and the optional socket are **not** covered:
//! supernodes rewrite them when they relay. With header encryption on, the
//! AAD is computed over the decrypted header (the community field restored).
//!
//! # Nonce uniqueness
//!
//! All edges of a community share `K`, so the nonce must be unique across all
//! of them and across restarts. The sender keeps a 32-bit `prefix` chosen at
//! random when it starts and a 64-bit `counter` that starts at a caller
//! supplied value and is incremented for every packet
//! ([`NonceSeed`]). The counter never wraps: at `u64::MAX` encryption fails
//! with [`TransformError::NonceExhausted`]. Within one sender session the
//! nonces are therefore distinct. Across sessions:
//!
//! * the same sender restarting: if `start` is taken from a clock (Unix time
//!   in microseconds is recommended) the new session's counters lie above
//!   every counter of the previous session as long as that session sent on
//!   average fewer than one packet per microsecond, so no nonce repeats even
//!   if the new random prefix equals the old one;
//! * two different senders: their nonces can only collide if they drew the
//!   same 32-bit prefix (probability 2^-32 per pair) *and* their counter
//!   ranges overlap, which with clock-based starts requires that one started
//!   within "number of packets sent" microseconds of the other.
//!
//! The risk is thus far below the 2^-32 birthday figure of a bare random
//! prefix. A deployment that cannot provide a clock-based start should use a
//! start value persisted across restarts.
//!
//! One sender may encrypt on several threads ([`Transform::share`]): all
//! handles of one transform use the same prefix and draw their counters
//! from one shared atomic counter (`fetch_add`, one per packet), so the
//! sender's nonces stay unique and increase in the order they were drawn.
//! The receiver keeps one [`ReplayWindow`] per sender, which is why the
//! handles must not get their own prefixes (a second prefix is only accepted
//! above the newest counter: one thread's packets would refuse the other's)
//! or pre-reserved blocks of counters (an idle thread's block falls behind
//! the window). Packets of different threads overtaking each other on the
//! way stay accepted as long as they are less than [`REPLAY_WINDOW`]
//! counters apart.
//!
//! [`Transform::share`]: super::Transform::share
//!
//! # Replay protection
//!
//! After the tag verified, the receiver checks the nonce against the
//! [`ReplayWindow`] it keeps for the sending peer (source MAC):
//! a sliding bitmap of [`REPLAY_WINDOW`] counters (RFC 6479 / WireGuard
//! style). Duplicates and counters older than the window are rejected;
//! reordering within the window is accepted. A packet with a different
//! prefix (the peer restarted) is accepted only if its counter is above the
//! newest counter seen, which clock-based starts guarantee for a genuine
//! restart, so packets of an older session cannot be replayed into the
//! window. A window freshly created (receiver restart, new peer entry)
//! accepts the first counter it sees.
//!
//! Any holder of the community key can forge packets in the name of any
//! other member (the key is shared); the AEAD protects against outsiders.
//!
//! # Implementation
//!
//! AES-256-GCM is the `aes-gcm` crate (AES-NI/VAES and PCLMULQDQ picked at
//! run time). ChaCha20-Poly1305 is RFC 8439 composed here from the
//! `chacha20` crate's keystream and this crate's scalar Poly1305
//! (`transform::poly1305`); tests check it byte for byte against the
//! `chacha20poly1305` crate. Reason: `poly1305` 0.9.1 selects its AVX2
//! backend at run time, but its key set-up (`r^2`, `5·r` precomputation) and
//! tag finalisation are not compiled with AVX2 enabled, so every AVX2
//! intrinsic there becomes an out-of-line call. On 1290-byte packets that
//! made Poly1305 alone run at 0.84 GB/s, slower than its portable backend
//! (1.38 GB/s, `--cfg poly1305_backend="soft"`), and `chacha20poly1305` at
//! 0.50 GB/s; with `-C target-feature=+avx2` the crate reaches 3.6 GB/s
//! (Poly1305) and 0.92 GB/s (AEAD), which needs a non-portable build. The
//! radix-2^64 Poly1305 here gives about 1.1 GB/s for the whole AEAD with
//! default flags.

use super::TransformError;
use super::chacha::{self, Core};
use super::poly1305::Poly1305;
use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{Aes256Gcm, KeyInit};
use chacha20::cipher::array::Array;
use chacha20::cipher::{KeyIvInit, StreamCipherCore};
use hkdf::Hkdf;
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Nonce length on the wire.
pub const NONCE_LEN: usize = 12;
/// Tag length on the wire.
pub const TAG_LEN: usize = 16;
/// Total overhead of an AEAD payload (nonce + tag).
pub const AEAD_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of the associated data built by [`packet_aad`].
pub const PACKET_AAD_LEN: usize = 35;

/// HKDF info string of transform 6.
pub const INFO_CHACHA20_POLY1305: &[u8] = b"n2n-rs payload transform 6 chacha20-poly1305 v1";
/// HKDF info string of transform 7.
pub const INFO_AES256_GCM: &[u8] = b"n2n-rs payload transform 7 aes-256-gcm v1";

/// The nonce of an AEAD packet: sender prefix and counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AeadNonce {
    /// 32-bit per-session random prefix of the sender.
    pub prefix: u32,
    /// 64-bit per-packet counter.
    pub counter: u64,
}

impl AeadNonce {
    /// `be32(prefix) || be64(counter)`.
    pub fn to_bytes(self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..4].copy_from_slice(&self.prefix.to_be_bytes());
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// Parses the 12 nonce bytes.
    pub fn from_bytes(b: &[u8; NONCE_LEN]) -> Self {
        let [p0, p1, p2, p3, c @ ..] = *b;
        Self {
            prefix: u32::from_be_bytes([p0, p1, p2, p3]),
            counter: u64::from_be_bytes(c),
        }
    }
}

/// How a sender's nonces start (see the module docs on uniqueness).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonceSeed {
    /// Random, drawn once when the edge starts.
    pub prefix: u32,
    /// First counter value; Unix time in microseconds is recommended.
    pub start: u64,
}

/// Builds the 35-byte associated data of a PACKET (module docs).
pub fn packet_aad(
    version: u8,
    community: &[u8; 20],
    src_mac: &[u8; 6],
    dst_mac: &[u8; 6],
    compression: u8,
    transform: u8,
) -> [u8; PACKET_AAD_LEN] {
    let mut a = [0u8; PACKET_AAD_LEN];
    a[0] = version;
    a[1..21].copy_from_slice(community);
    a[21..27].copy_from_slice(src_mac);
    a[27..33].copy_from_slice(dst_mac);
    a[33] = compression;
    a[34] = transform;
    a
}

pub(crate) fn derive_key(info: &[u8], key: &[u8], community: &[u8; 20]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(community), key);
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 255 * 32 limit: cannot fail.
    let _ = hk.expand(info, &mut okm);
    okm
}

#[derive(Clone)]
pub(crate) enum AeadCipher {
    ChaCha20Poly1305([u8; 32]),
    Aes256Gcm(Box<Aes256Gcm>),
}

fn ct_eq(a: &[u8; 16], b: &[u8]) -> bool {
    if b.len() != 16 {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    d == 0
}

fn chacha_poly_tag(poly_key: &[u8; 32], aad: &[u8], ct: &[u8]) -> [u8; 16] {
    let mut mac = Poly1305::new(poly_key);
    mac.update_padded(aad);
    mac.update_padded(ct);
    mac.update_words(aad.len() as u64, ct.len() as u64);
    mac.finalize()
}

/// Core positioned at block 1 plus the one-time Poly1305 key from block 0.
fn chacha_init(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> (Core, [u8; 32]) {
    let mut core = Core::new(key.into(), nonce.into());
    let mut block0 = Array::default();
    core.write_keystream_block(&mut block0);
    let mut pk = [0u8; 32];
    pk.copy_from_slice(&block0[..32]);
    (core, pk)
}

impl AeadCipher {
    /// Encrypts `pt` into `ct` (same length); returns the tag.
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        pt: &[u8],
        ct: &mut [u8],
    ) -> Result<[u8; 16], TransformError> {
        match self {
            Self::ChaCha20Poly1305(key) => {
                let (mut core, pk) = chacha_init(key, nonce);
                ct.copy_from_slice(pt);
                chacha::apply(&mut core, ct);
                Ok(chacha_poly_tag(&pk, aad, ct))
            }
            Self::Aes256Gcm(c) => {
                let buf = InOutBuf::new(pt, ct).map_err(|_| TransformError::Internal)?;
                let tag = c
                    .encrypt_inout_detached(nonce.into(), aad, buf)
                    .map_err(|_| TransformError::Internal)?;
                let mut t = [0u8; 16];
                t.copy_from_slice(&tag);
                Ok(t)
            }
        }
    }

    /// Verifies and decrypts `ct` into `pt` (same length).
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ct: &[u8],
        tag: &[u8],
        pt: &mut [u8],
    ) -> Result<(), TransformError> {
        match self {
            Self::ChaCha20Poly1305(key) => {
                let (mut core, pk) = chacha_init(key, nonce);
                if !ct_eq(&chacha_poly_tag(&pk, aad, ct), tag) {
                    return Err(TransformError::AuthenticationFailed);
                }
                pt.copy_from_slice(ct);
                chacha::apply(&mut core, pt);
                Ok(())
            }
            Self::Aes256Gcm(c) => {
                let buf = InOutBuf::new(ct, pt).map_err(|_| TransformError::Internal)?;
                let tag = Array::try_from(tag).map_err(|_| TransformError::Internal)?;
                c.decrypt_inout_detached(nonce.into(), aad, buf, &tag)
                    .map_err(|_| TransformError::AuthenticationFailed)
            }
        }
    }
}

/// The nonces of one sender: its prefix and the counter shared by all
/// handles of its transform ([`AeadState::share`]).
#[derive(Clone)]
struct NonceSource {
    prefix: u32,
    /// First counter of the session.
    start: u64,
    /// Nonces drawn so far: the next counter is `start + taken`. It cannot
    /// wrap (2^64 draws); once `start + taken` overflows every draw fails.
    taken: Arc<AtomicU64>,
}

impl NonceSource {
    fn at(&self, taken: u64) -> Option<AeadNonce> {
        self.start.checked_add(taken).map(|counter| AeadNonce {
            prefix: self.prefix,
            counter,
        })
    }

    /// The nonce the next [`Self::take`] returns, if any is left.
    fn peek(&self) -> Option<AeadNonce> {
        self.at(self.taken.load(Ordering::Relaxed))
    }

    /// Draws the next nonce (`None`: exhausted). Only uniqueness matters,
    /// hence `Relaxed`.
    fn take(&self) -> Option<AeadNonce> {
        self.at(self.taken.fetch_add(1, Ordering::Relaxed))
    }
}

/// Sender and receiver state of an AEAD transform. Deliberately not
/// `Clone`: two independent copies would hand out the same nonces; a
/// [`share`](Self::share)d handle draws from the same counter.
pub(crate) struct AeadState {
    cipher: AeadCipher,
    nonces: NonceSource,
}

impl AeadState {
    pub(crate) fn new(cipher: AeadCipher, seed: NonceSeed) -> Self {
        Self {
            cipher,
            nonces: NonceSource {
                prefix: seed.prefix,
                start: seed.start,
                taken: Arc::new(AtomicU64::new(0)),
            },
        }
    }

    /// A second handle: same key, same prefix, same counter.
    pub(crate) fn share(&self) -> Self {
        Self {
            cipher: self.cipher.clone(),
            nonces: self.nonces.clone(),
        }
    }

    /// The nonce the next [`Self::encrypt`] will use, if any is left (with
    /// shared handles: unless another handle encrypts first).
    pub(crate) fn next_nonce(&self) -> Option<AeadNonce> {
        self.nonces.peek()
    }

    pub(crate) fn encrypt(
        &mut self,
        frame: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TransformError> {
        let len = frame.len() + AEAD_OVERHEAD;
        let have = out.len();
        let out = out
            .get_mut(..len)
            .ok_or(TransformError::OutputTooSmall { need: len, have })?;
        // Drawn once the packet's size is known to fit: a nonce is consumed
        // only by a packet that is produced (the cipher itself cannot fail
        // on checked sizes; if it did, the drawn nonce would simply be
        // skipped, which is harmless).
        let nonce = self.nonces.take().ok_or(TransformError::NonceExhausted)?;
        let nb = nonce.to_bytes();
        let (n, rest) = out.split_at_mut(NONCE_LEN);
        let (ct, tag) = rest.split_at_mut(frame.len());
        let t = self.cipher.seal(&nb, aad, frame, ct)?;
        n.copy_from_slice(&nb);
        tag.copy_from_slice(&t);
        Ok(len)
    }

    pub(crate) fn decrypt(
        &self,
        payload: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, AeadNonce), TransformError> {
        let n = payload.len();
        if n < AEAD_OVERHEAD {
            return Err(TransformError::PayloadTooShort {
                len: n,
                min: AEAD_OVERHEAD,
            });
        }
        let flen = n - AEAD_OVERHEAD;
        let have = out.len();
        let out = out
            .get_mut(..flen)
            .ok_or(TransformError::OutputTooSmall { need: flen, have })?;
        let mut nb = [0u8; NONCE_LEN];
        nb.copy_from_slice(&payload[..NONCE_LEN]);
        let ct = &payload[NONCE_LEN..n - TAG_LEN];
        let tag = &payload[n - TAG_LEN..];
        self.cipher.open(&nb, aad, ct, tag, out)?;
        Ok((flen, AeadNonce::from_bytes(&nb)))
    }
}

/// Number of packets behind the newest one that are still accepted: 8128,
/// WireGuard's window. A sender encrypting on several threads with one
/// counter reorders its packets by as many counters as the other threads
/// draw while one of them is held up between taking its nonce and sending
/// (preempted: milliseconds, thousands of packets at high rates); 1 KiB per
/// sending peer.
pub const REPLAY_WINDOW: u64 = (WORDS as u64 - 1) * 64;
const WORDS: usize = 128;

/// Why [`ReplayWindow::check_and_update`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// This (prefix, counter) was already accepted.
    #[error("replayed packet: counter {counter} already accepted")]
    Duplicate {
        /// The repeated counter.
        counter: u64,
    },
    /// The counter is older than the window.
    #[error("packet too old: counter {counter}, newest {newest}")]
    TooOld {
        /// The rejected counter.
        counter: u64,
        /// Newest counter accepted so far.
        newest: u64,
    },
    /// A different prefix whose counter is not above the newest one seen:
    /// a packet of an older session of the peer.
    #[error("packet of a stale session: prefix {prefix:#010x}, counter {counter}")]
    StaleSession {
        /// The packet's prefix.
        prefix: u32,
        /// The packet's counter.
        counter: u64,
    },
}

/// Per-peer anti-replay window over AEAD nonces (see the module docs).
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Prefix of the current session and newest counter, once one packet
    /// was accepted.
    newest: Option<AeadNonce>,
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            newest: None,
            bits: [0; WORDS],
        }
    }
}

impl ReplayWindow {
    /// An empty window: the first packet is accepted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The newest accepted nonce.
    pub fn newest(&self) -> Option<AeadNonce> {
        self.newest
    }

    /// Forgets everything (e.g. when the peer entry is recreated).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn slot(counter: u64) -> (usize, u64) {
        (
            ((counter / 64) % WORDS as u64) as usize,
            1u64 << (counter % 64),
        )
    }

    /// Checks `nonce` without recording it.
    pub fn check(&self, nonce: AeadNonce) -> Result<(), ReplayError> {
        let Some(newest) = self.newest else {
            return Ok(());
        };
        let c = nonce.counter;
        if nonce.prefix != newest.prefix {
            return if c > newest.counter {
                Ok(())
            } else {
                Err(ReplayError::StaleSession {
                    prefix: nonce.prefix,
                    counter: c,
                })
            };
        }
        if c > newest.counter {
            return Ok(());
        }
        if newest.counter - c >= REPLAY_WINDOW {
            return Err(ReplayError::TooOld {
                counter: c,
                newest: newest.counter,
            });
        }
        let (w, b) = Self::slot(c);
        if self.bits[w] & b != 0 {
            return Err(ReplayError::Duplicate { counter: c });
        }
        Ok(())
    }

    /// Checks `nonce` and records it if accepted. Call only after the
    /// packet's tag verified.
    pub fn check_and_update(&mut self, nonce: AeadNonce) -> Result<(), ReplayError> {
        self.check(nonce)?;
        let c = nonce.counter;
        match self.newest {
            Some(n) if n.prefix == nonce.prefix => {
                if c > n.counter {
                    let old_word = n.counter / 64;
                    let new_word = c / 64;
                    let steps = (new_word - old_word).min(WORDS as u64);
                    for i in 1..=steps {
                        self.bits[((old_word + i) % WORDS as u64) as usize] = 0;
                    }
                    self.newest = Some(nonce);
                }
            }
            _ => {
                // First packet, or a newer session of the peer.
                self.bits = [0; WORDS];
                self.newest = Some(nonce);
            }
        }
        let (w, b) = Self::slot(c);
        self.bits[w] |= b;
        Ok(())
    }
}

pub(crate) fn new_cipher(
    id: super::TransformId,
    key: &[u8],
    community: &[u8; 20],
) -> Option<AeadCipher> {
    match id {
        super::TransformId::ChaCha20Poly1305 => Some(AeadCipher::ChaCha20Poly1305(derive_key(
            INFO_CHACHA20_POLY1305,
            key,
            community,
        ))),
        super::TransformId::Aes256Gcm => {
            let k = derive_key(INFO_AES256_GCM, key, community);
            Some(AeadCipher::Aes256Gcm(Box::new(Aes256Gcm::new(&k.into()))))
        }
        _ => None,
    }
}
