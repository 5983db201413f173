//! Header encryption (`-H`), byte-exact with C n2n 3.1.1 (crypto.md §4).
//!
//! Everything here works in place on a raw datagram (`&mut [u8]`) and on the
//! 20-byte community *name field* (`[u8; 20]`, NUL padded). Nothing reads a
//! clock or an RNG: the time stamp and the 4 random bytes of the pre-IV are
//! arguments. Nothing allocates.
//!
//! * [`HeKeys`]: the pair (K_hdr: Speck128/128-CTR key, K_iv: Speck128/128-ECB
//!   key), static ([`HeKeys::from_community_field`]) or dynamic
//!   ([`HeKeys::from_dynamic_key`]).
//! * [`encrypt`] / [`decrypt`]: one message, one key pair, one name field.
//!   [`decrypt`] leaves the buffer byte-for-byte unchanged when it fails, so
//!   the caller can try the next candidate community on the same buffer.
//! * [`CommunityHe`]: a community's name field plus its static and optional
//!   dynamic keys, with the C try order (dynamic over the whole datagram, then
//!   static over `len − 16`). The name field is kept separately from the keys
//!   because of the federation quirk (crypto.md §6: keys from `*Federation`,
//!   name field `*rocksFed\0n…`).
//! * Time stamps: [`stamp_from_unix`], [`StampGenerator`], [`verify_stamp`],
//!   [`initial_prev`] (crypto.md §4.4, §4.5).
//! * [`dynamic_key`]: the user/password community key D (crypto.md §5.6).

use crate::crypto::pearson;
use crate::crypto::speck::Speck128;

/// Size of the community name field on the wire.
pub const NAME_FIELD_LEN: usize = 20;
/// Smallest datagram (and smallest header length) header encryption handles.
pub const MIN_LEN: usize = 24;
/// Length of the user/password trailer after static-key messages (crypto.md §5.4).
pub const TRAILER_LEN: usize = 16;
/// Allowed clock difference between sender and receiver: 16 s in stamp units.
pub const FRAME: u64 = 0x0000_0010_0000_0000;
/// Allowed reordering when jitter is tolerated: 160 ms in stamp units.
pub const JITTER: u64 = 0x0000_0000_2710_0000;
/// Bit 0 of a stamp: "counter-only" flag (crypto.md §4.4).
pub const STAMP_COUNTER_ONLY: u64 = 1;
/// The name field whose keys a C supernode uses for its federation, whatever
/// `-F` says (crypto.md §6 quirk 1): `*Federation`, NUL padded.
pub const DEFAULT_FEDERATION_FIELD: [u8; NAME_FIELD_LEN] = *b"*Federation\0\0\0\0\0\0\0\0\0";

const MAGIC: [u8; 2] = [0x6e, 0x32];
const IV_LEN: usize = 16;

/// Why header encryption or decryption failed, or why a stamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeError {
    /// Datagram shorter than 24 bytes (40 for an attempt that strips the trailer).
    #[error("datagram too short for header encryption")]
    TooShort,
    /// The decrypted magic is not `n2`: wrong keys, or not header-encrypted.
    #[error("header magic mismatch (wrong keys or not header-encrypted)")]
    BadMagic,
    /// The header length is outside `24..=len` (decrypt: after the magic
    /// matched; encrypt: the argument).
    #[error("header length {header_len} outside 24..={len}")]
    BadHeaderLen {
        /// The offending header length.
        header_len: usize,
        /// The length of the datagram it applies to.
        len: usize,
    },
    /// The checksum in the IV does not match the restored datagram: another
    /// community (or name field), or tampering.
    #[error("header checksum mismatch")]
    ChecksumMismatch,
    /// The stamp differs from the receiver's clock by 16 s or more.
    #[error("time stamp outside the ±16 s window")]
    StampOutOfWindow,
    /// The stamp is not newer than the sender's previous one (replay).
    #[error("time stamp not newer than the previous one (replay)")]
    StampReplayed,
}

impl HeError {
    /// How far the decryption got before failing (used to pick the most
    /// informative error when several attempts fail).
    fn progress(self) -> u8 {
        match self {
            HeError::TooShort => 0,
            HeError::BadMagic => 1,
            HeError::BadHeaderLen { .. } => 2,
            HeError::ChecksumMismatch => 3,
            HeError::StampOutOfWindow | HeError::StampReplayed => 4,
        }
    }
}

/// A header-encryption key pair: K_hdr (Speck128/128, CTR over the header)
/// and K_iv (Speck128/128, one ECB block: the IV).
#[derive(Clone)]
pub struct HeKeys {
    k_hdr: [u8; 16],
    k_iv: [u8; 16],
    hdr: Speck128,
    iv: Speck128,
}

impl core::fmt::Debug for HeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeKeys").finish_non_exhaustive()
    }
}

impl HeKeys {
    /// Keys from K_hdr: K_iv = pearson128(K_hdr).
    pub fn from_hdr_key(k_hdr: [u8; 16]) -> Self {
        let k_iv = pearson::hash128(&k_hdr);
        Self {
            hdr: Speck128::new_128(&k_hdr),
            iv: Speck128::new_128(&k_iv),
            k_hdr,
            k_iv,
        }
    }

    /// Static keys of a community: K_hdr = pearson128(name20).
    pub fn from_community_field(name20: &[u8; NAME_FIELD_LEN]) -> Self {
        Self::from_hdr_key(pearson::hash128(name20))
    }

    /// Dynamic keys from a user/password community key D: K_hdr = pearson128(D).
    pub fn from_dynamic_key(d: &[u8; 16]) -> Self {
        Self::from_hdr_key(pearson::hash128(d))
    }

    /// K_hdr, the Speck-CTR key.
    pub fn k_hdr(&self) -> &[u8; 16] {
        &self.k_hdr
    }

    /// K_iv, the Speck-ECB key of the IV block.
    pub fn k_iv(&self) -> &[u8; 16] {
        &self.k_iv
    }
}

/// Result of a successful [`decrypt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decrypted {
    /// The sender's time stamp T (check it with [`verify_stamp`]).
    pub stamp: u64,
    /// H: bytes `0..header_len` were encrypted (the rest is payload).
    pub header_len: usize,
    /// Length of the message the checksum covered: the whole datagram, or
    /// `len − 16` for the trailer variants (the trailer stays in the buffer
    /// after `len` bytes).
    pub len: usize,
    /// The 4 random bytes of the sender's pre-IV.
    pub rand4: [u8; 4],
}

#[inline(always)]
fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Encrypt the header of the plain message `buf` in place (crypto.md §4.2).
///
/// `buf` is the whole message (its length is L; the datagram does not
/// change length). Bytes `4..24` are set to `name20` first (the checksum
/// must cover the field the receiver restores). `header_len` is H, the
/// number of leading bytes to encrypt (24 ≤ H ≤ L, H ≤ 65535), `stamp` the
/// time stamp T and `rand4` the 4 random bytes of the pre-IV.
pub fn encrypt(
    buf: &mut [u8],
    header_len: usize,
    stamp: u64,
    rand4: [u8; 4],
    keys: &HeKeys,
    name20: &[u8; NAME_FIELD_LEN],
) -> Result<(), HeError> {
    let len = buf.len();
    if len < MIN_LEN {
        return Err(HeError::TooShort);
    }
    if header_len < MIN_LEN || header_len > len || header_len > usize::from(u16::MAX) {
        return Err(HeError::BadHeaderLen { header_len, len });
    }
    buf[4..24].copy_from_slice(name20);
    let c = pearson::hash64(buf);
    let mut flags = [0u8; 4];
    flags.copy_from_slice(&buf[0..4]);

    let mut iv = [0u8; IV_LEN];
    iv[0..4].copy_from_slice(&((c >> 32) as u32).to_be_bytes());
    iv[4..8].copy_from_slice(&((c as u32) ^ ((stamp >> 32) as u32)).to_be_bytes());
    iv[8..12].copy_from_slice(&(stamp as u32).to_be_bytes());
    iv[12..16].copy_from_slice(&rand4);
    keys.iv.encrypt_block(&mut iv);

    buf[0..16].copy_from_slice(&iv);
    buf[16..18].copy_from_slice(&MAGIC);
    buf[18..20].copy_from_slice(&(header_len as u16).to_be_bytes());
    buf[20..24].copy_from_slice(&flags);
    keys.hdr.ctr_xor(&iv, &mut buf[16..header_len]);
    Ok(())
}

/// Decrypt the header of `buf` in place (crypto.md §4.3), the whole buffer
/// being the message.
///
/// On success the buffer holds the plain message (version/TTL/flags and the
/// name field restored) and the stamp is returned; the caller still has to
/// [`verify_stamp`] it. On any error the buffer is left exactly as it was,
/// so the next candidate community can be tried on it.
pub fn decrypt(
    buf: &mut [u8],
    keys: &HeKeys,
    name20: &[u8; NAME_FIELD_LEN],
) -> Result<Decrypted, HeError> {
    let len = buf.len();
    if len < MIN_LEN {
        return Err(HeError::TooShort);
    }
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&buf[0..16]);

    // Keystream block 0 is E(IV): check magic and length before touching buf.
    let mut ks0 = iv;
    keys.hdr.encrypt_block(&mut ks0);
    if buf[16] ^ ks0[0] != MAGIC[0] || buf[17] ^ ks0[1] != MAGIC[1] {
        return Err(HeError::BadMagic);
    }
    let header_len = usize::from(u16::from_be_bytes([buf[18] ^ ks0[2], buf[19] ^ ks0[3]]));
    if !(MIN_LEN..=len).contains(&header_len) {
        return Err(HeError::BadHeaderLen { header_len, len });
    }

    let mut saved = [0u8; MIN_LEN];
    saved.copy_from_slice(&buf[0..MIN_LEN]);
    xor_keystream(keys, &iv, &ks0, &mut buf[16..header_len]);

    let mut pre = iv;
    keys.iv.decrypt_block(&mut pre);
    let c_hi = be32(&pre[0..4]);
    let s = (u64::from(be32(&pre[4..8])) << 32) | u64::from(be32(&pre[8..12]));

    buf.copy_within(20..24, 0);
    buf[4..24].copy_from_slice(name20);
    let c = pearson::hash64(buf);
    if (c >> 32) as u32 != c_hi {
        // Restore: undo the keystream, then put the first 24 bytes back.
        xor_keystream(keys, &iv, &ks0, &mut buf[16..header_len]);
        buf[0..MIN_LEN].copy_from_slice(&saved);
        return Err(HeError::ChecksumMismatch);
    }
    Ok(Decrypted {
        stamp: s ^ ((c & 0xffff_ffff) << 32),
        header_len,
        len,
        rand4: [pre[12], pre[13], pre[14], pre[15]],
    })
}

/// The static-key attempt of C edges and supernodes: [`decrypt`] over the
/// first `len − 16` bytes, the last 16 being the user/password trailer
/// (crypto.md §4.3, §5.4). The trailer bytes are never modified.
pub fn decrypt_without_trailer(
    buf: &mut [u8],
    keys: &HeKeys,
    name20: &[u8; NAME_FIELD_LEN],
) -> Result<Decrypted, HeError> {
    let len = buf.len();
    if len < MIN_LEN + TRAILER_LEN {
        return Err(HeError::TooShort);
    }
    decrypt(&mut buf[..len - TRAILER_LEN], keys, name20)
}

/// XOR `data` (= buf[16..H]) with the Speck-CTR keystream for `iv`, whose
/// first block `ks0` is already known.
fn xor_keystream(keys: &HeKeys, iv: &[u8; IV_LEN], ks0: &[u8; IV_LEN], data: &mut [u8]) {
    let (first, rest) = data.split_at_mut(data.len().min(IV_LEN));
    for (d, k) in first.iter_mut().zip(ks0) {
        *d ^= k;
    }
    if !rest.is_empty() {
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&iv[0..8]);
        let next = u64::from_le_bytes(lo).wrapping_add(1);
        let mut iv1 = *iv;
        iv1[0..8].copy_from_slice(&next.to_le_bytes());
        keys.hdr.ctr_xor(&iv1, rest);
    }
}

/// A C supernode's "is this datagram plain?" test (crypto.md §4.8):
/// `len ≥ 24`, byte 23 = 0, byte 0 = 3, `(flags & 0x1f) ≤ 11`, `flags < 0x80`.
pub fn looks_plain(buf: &[u8]) -> bool {
    match buf.get(..MIN_LEN) {
        Some(h) => {
            let flags = u16::from_be_bytes([h[2], h[3]]);
            h[23] == 0 && h[0] == 3 && (flags & 0x1f) <= 11 && flags < 0x0080
        }
        None => false,
    }
}

/// Which key pair of a [`CommunityHe`] is meant or was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeKeyKind {
    /// Keys from the name (or the federation's key source): REGISTER_SUPER,
    /// _ACK, _NAK in user/password communities.
    Static,
    /// Keys from the dynamic key D (= the static keys when none is set).
    Dynamic,
}

/// Header encryption state of one community: the 20-byte name field used
/// for the checksum, the static keys and, in user/password communities, the
/// dynamic keys.
#[derive(Debug, Clone)]
pub struct CommunityHe {
    name20: [u8; NAME_FIELD_LEN],
    static_keys: HeKeys,
    dynamic_keys: Option<HeKeys>,
}

impl CommunityHe {
    /// A community whose static keys come from its own name field.
    pub fn new(name20: [u8; NAME_FIELD_LEN]) -> Self {
        Self::with_static_keys(name20, HeKeys::from_community_field(&name20))
    }

    /// A community whose name field and keys differ: the federation, whose
    /// keys come from [`DEFAULT_FEDERATION_FIELD`] (or `*$N2N_FEDERATION`)
    /// while the field carries the `-F` name with residue (crypto.md §6).
    pub fn with_static_keys(name20: [u8; NAME_FIELD_LEN], static_keys: HeKeys) -> Self {
        Self {
            name20,
            static_keys,
            dynamic_keys: None,
        }
    }

    /// Use dynamic keys from D (user/password community, crypto.md §5.5).
    pub fn set_dynamic_key(&mut self, d: &[u8; 16]) {
        self.dynamic_keys = Some(HeKeys::from_dynamic_key(d));
    }

    /// Drop the dynamic keys: dynamic = static again.
    pub fn clear_dynamic_key(&mut self) {
        self.dynamic_keys = None;
    }

    /// Whether a dynamic key is set.
    pub fn has_dynamic_key(&self) -> bool {
        self.dynamic_keys.is_some()
    }

    /// The 20-byte name field the checksum restores.
    pub fn name_field(&self) -> &[u8; NAME_FIELD_LEN] {
        &self.name20
    }

    /// The static keys.
    pub fn static_keys(&self) -> &HeKeys {
        &self.static_keys
    }

    /// The dynamic keys (the static keys when no dynamic key is set).
    pub fn dynamic_keys(&self) -> &HeKeys {
        self.dynamic_keys.as_ref().unwrap_or(&self.static_keys)
    }

    /// The key pair of `kind`.
    pub fn keys(&self, kind: HeKeyKind) -> &HeKeys {
        match kind {
            HeKeyKind::Static => &self.static_keys,
            HeKeyKind::Dynamic => self.dynamic_keys(),
        }
    }

    /// [`encrypt`] with this community's name field and the keys of `kind`.
    pub fn encrypt(
        &self,
        buf: &mut [u8],
        header_len: usize,
        stamp: u64,
        rand4: [u8; 4],
        kind: HeKeyKind,
    ) -> Result<(), HeError> {
        encrypt(buf, header_len, stamp, rand4, self.keys(kind), &self.name20)
    }

    /// Decrypt as C does (crypto.md §4.3): dynamic keys over the whole
    /// datagram, then static keys over `len − 16` (trailer excluded; see
    /// [`Decrypted::len`]). Returns which attempt succeeded: `Dynamic` for
    /// the first (even when no dynamic key is set and the keys are the
    /// static ones), `Static` for the trailer attempt. On failure the
    /// buffer is unchanged and the most advanced error is returned.
    pub fn decrypt(&self, buf: &mut [u8]) -> Result<(HeKeyKind, Decrypted), HeError> {
        let e1 = match decrypt(buf, self.dynamic_keys(), &self.name20) {
            Ok(d) => return Ok((HeKeyKind::Dynamic, d)),
            Err(e) => e,
        };
        match decrypt_without_trailer(buf, &self.static_keys, &self.name20) {
            Ok(d) => Ok((HeKeyKind::Static, d)),
            Err(e2) if e2.progress() > e1.progress() => Err(e2),
            Err(_) => Err(e1),
        }
    }
}

/// `p3(x) = pearson128(pearson128(pearson128(x)))`.
fn p3(x: &[u8]) -> [u8; 16] {
    pearson::hash128(&pearson::hash128(&pearson::hash128(x)))
}

/// The dynamic key D of a user/password community (crypto.md §5.6):
/// `D = Speck128/128-encrypt_{Kd}(p3(le32(key_time)))` with
/// `Kd = p3(community20) ⊕ p3(federation20)`. `federation20` is the
/// supernode's federation name field *with* the `-F` residue (crypto.md §6).
pub fn dynamic_key(
    community20: &[u8; NAME_FIELD_LEN],
    federation20: &[u8; NAME_FIELD_LEN],
    key_time: u32,
) -> [u8; 16] {
    let a = p3(community20);
    let b = p3(federation20);
    let kd: [u8; 16] = core::array::from_fn(|i| a[i] ^ b[i]);
    let mut block = p3(&key_time.to_le_bytes());
    Speck128::new_128(&kd).encrypt_block(&mut block);
    block
}

/// The stamp of a wall-clock time: `(secs << 32) | (micros << 12)`, counter
/// and flags 0. `micros` above 999 999 is clamped.
pub fn stamp_from_unix(secs: u64, micros: u32) -> u64 {
    (secs << 32) | (u64::from(micros.min(999_999)) << 12)
}

/// The `prev` a new peer entry starts with: `now_stamp − FRAME`.
pub fn initial_prev(now_stamp: u64) -> u64 {
    now_stamp.wrapping_sub(FRAME)
}

/// Issues strictly increasing stamps (crypto.md §4.4).
///
/// A stamp is `(secs << 32) | (micros << 12) | (counter << 4)`. When the
/// clock has not advanced past the previous stamp (same microsecond, or the
/// clock went backwards) the previous stamp plus one counter step is issued
/// instead; a counter overflow carries into the microseconds. The
/// counter-only flag (bit 0) is never set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StampGenerator {
    prev: u64,
}

impl StampGenerator {
    /// A generator that has issued nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next stamp for the wall-clock time `secs`.`micros`.
    pub fn next(&mut self, secs: u64, micros: u32) -> u64 {
        let base = stamp_from_unix(secs, micros);
        let t = if base > self.prev {
            base
        } else {
            self.prev.wrapping_add(0x10) & !0xf
        };
        self.prev = t;
        t
    }

    /// The last stamp issued (0 before the first).
    pub fn last(&self) -> u64 {
        self.prev
    }
}

/// Time stamp check (crypto.md §4.5).
///
/// Rejects `stamp` if it is 16 s or more away from `now_stamp`
/// ([`HeError::StampOutOfWindow`]). With `prev` (the sender's last accepted
/// stamp) it also requires `stamp − prev > 0`, or `> −JITTER` when `jitter`
/// is allowed (`−JITTER << 8` for counter-only stamps), else
/// [`HeError::StampReplayed`]; on success `prev` becomes `max(prev, stamp)`.
pub fn verify_stamp(
    stamp: u64,
    now_stamp: u64,
    prev: Option<&mut u64>,
    jitter: bool,
) -> Result<(), HeError> {
    let diff = stamp.wrapping_sub(now_stamp) as i64;
    if diff.unsigned_abs() >= FRAME {
        return Err(HeError::StampOutOfWindow);
    }
    if let Some(prev) = prev {
        let mut d = stamp.wrapping_sub(*prev) as i64;
        if jitter {
            let shift = if stamp & STAMP_COUNTER_ONLY != 0 {
                8
            } else {
                0
            };
            d = d.wrapping_add((JITTER << shift) as i64);
        }
        if d <= 0 {
            return Err(HeError::StampReplayed);
        }
        if stamp > *prev {
            *prev = stamp;
        }
    }
    Ok(())
}
