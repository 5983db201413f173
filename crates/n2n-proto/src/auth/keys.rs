//! Key material of user/password authentication (crypto.md §5.2, §6):
//! private and public keys, the shared secret S and its cipher E, and the
//! federation's name field and key name.

use core::fmt;
use core::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::AuthError;
use super::keytext::{self, KeyText, KeyTextError};
use crate::crypto::pearson;
use crate::crypto::speck::Speck128;
use crate::he::{DEFAULT_FEDERATION_FIELD, NAME_FIELD_LEN, TRAILER_LEN};

/// Length of private keys, public keys and shared secrets.
pub const KEY_LEN: usize = 32;

/// n2n's X25519 "generator": 31 zero bytes then `09`, i.e. u = 9·2^248 read
/// little-endian. **Not** the RFC 7748 base point `09 00…00`, so no
/// library "public key from secret" helper can be used (crypto.md §1.3).
pub const GENERATOR: [u8; KEY_LEN] = {
    let mut g = [0u8; KEY_LEN];
    g[KEY_LEN - 1] = 9;
    g
};

/// The federation name C uses without `-F` / `N2N_FEDERATION` (and the
/// name whose key an edge uses without `-P`).
pub const DEFAULT_FEDERATION_NAME: &[u8] = b"Federation";

/// Longest federation name a C supernode keeps (`'*'` + 17 + NUL).
pub const FEDERATION_NAME_MAX: usize = 17;

/// RFC 7748 X25519 (clamped scalar, top bit of `u` ignored), via
/// `x25519-dalek`.
fn x25519(k: &[u8; KEY_LEN], u: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    x25519_dalek::x25519(*k, *u)
}

/// The bytes of a C string argument: up to the first NUL (C hashes
/// `strlen` bytes, so nothing after a NUL can matter).
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

/// `pearson256(pearson256(s))`, C's `generate_private_key`.
fn hash_twice(s: &[u8]) -> [u8; KEY_LEN] {
    let mut h = pearson::hash256(c_str(s));
    let k = pearson::hash256(&h);
    h.zeroize();
    k
}

/// An X25519 public key (pub_u of a user, or the federation key FED).
///
/// `Debug` and `Display` show the 43-character text `n2n-keygen` prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// A public key from its 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A public key from its 43-character text (`community.list`, `-P`).
    pub fn from_text(text: &[u8]) -> Result<Self, KeyTextError> {
        keytext::decode_key(text).map(Self)
    }

    /// The 43-character text.
    #[must_use]
    pub fn to_text(&self) -> KeyText {
        keytext::encode_key(&self.0)
    }

    /// FED of federation `name` (what `n2n-keygen -F name` prints):
    /// `X25519(pearson256(pearson256(name)), G)`. `name` is the clean name,
    /// without `'*'`, e.g. [`DEFAULT_FEDERATION_NAME`].
    #[must_use]
    pub fn federation(name: &[u8]) -> Self {
        PrivateKey::federation(name).public_key()
    }

    /// FED of the default federation `Federation`: the key an edge uses
    /// without `-P`.
    #[must_use]
    pub fn default_federation() -> Self {
        Self::federation(DEFAULT_FEDERATION_NAME)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_text(), f)
    }
}

impl FromStr for PublicKey {
    type Err = KeyTextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_text(s.as_bytes())
    }
}

/// An X25519 private key (prv_u or prv_f). Zeroed on drop; `Debug` does
/// not show it.
#[derive(Clone)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// A private key from its 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes (for tests and key files; keep them out of logs).
    #[must_use]
    pub const fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// prv_u of an edge (`-I user -J password`):
    /// `pearson256(pearson256(password)) ⊕ pearson256(user)`. Both are
    /// taken as C strings: bytes after a NUL are ignored.
    #[must_use]
    pub fn user(user: &[u8], password: &[u8]) -> Self {
        let mut k = hash_twice(password);
        let mut u = pearson::hash256(c_str(user));
        for (k, u) in k.iter_mut().zip(&u) {
            *k ^= u;
        }
        u.zeroize();
        Self(k)
    }

    /// prv_f of federation `name` (clean name without `'*'`, see
    /// [`federation_key_name`]): `pearson256(pearson256(name))`.
    #[must_use]
    pub fn federation(name: &[u8]) -> Self {
        Self(hash_twice(name))
    }

    /// The public key `X25519(self, G)` with n2n's [`GENERATOR`].
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519(&self.0, &GENERATOR))
    }

    /// The shared secret with `peer`: `S = pearson256(X25519(self, peer))`
    /// (edge: peer = FED; supernode: peer = pub_u, giving S_u).
    #[must_use]
    pub fn shared_secret(&self, peer: &PublicKey) -> SharedSecret {
        let mut dh = x25519(&self.0, &peer.0);
        let s = SharedSecret::from_bytes(pearson::hash256(&dh));
        dh.zeroize();
        s
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A shared secret S (edge) or S_u (supernode, per user) and its cipher E:
/// Speck128/128 keyed with `S[0..16]`. The bytes are zeroed on drop;
/// `Debug` does not show them.
///
/// Everything the token and trailer constructions need is a method here:
/// [`trailer`](Self::trailer) / [`verify_trailer`](Self::verify_trailer)
/// (crypto.md §5.4), [`user_token`](Self::user_token) (§5.3),
/// [`answer`](Self::answer) and [`open_answer`](Self::open_answer) (§5.5).
#[derive(Clone)]
pub struct SharedSecret {
    s: [u8; KEY_LEN],
    e: Speck128,
}

impl SharedSecret {
    /// A shared secret from its 32 bytes.
    #[must_use]
    pub fn from_bytes(s: [u8; KEY_LEN]) -> Self {
        let mut k = [0u8; 16];
        k.copy_from_slice(&s[..16]);
        let e = Speck128::new_128(&k);
        k.zeroize();
        Self { s, e }
    }

    /// The 32 bytes (for tests; keep them out of logs).
    #[must_use]
    pub const fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.s
    }

    /// `S[0..16]`, the half mixed into the dynamic key hand-over.
    pub(crate) fn first_half(&self) -> [u8; 16] {
        let mut h = [0u8; 16];
        h.copy_from_slice(&self.s[..16]);
        h
    }

    /// E: Speck128/128-encrypt one block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.e.encrypt_block(block);
    }

    /// E⁻¹: Speck128/128-decrypt one block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        self.e.decrypt_block(block);
    }

    /// The trailer of an already header-encrypted message:
    /// `E(pearson128(encrypted))` (crypto.md §5.4).
    #[must_use]
    pub fn trailer(&self, encrypted: &[u8]) -> [u8; TRAILER_LEN] {
        self.trailer_of_hash(&trailer_hash(encrypted))
    }

    /// The trailer for a hash from [`trailer_hash`]: `E(hash)`.
    #[must_use]
    pub fn trailer_of_hash(&self, hash: &[u8; 16]) -> [u8; TRAILER_LEN] {
        let mut t = *hash;
        self.e.encrypt_block(&mut t);
        t
    }

    /// Appends the trailer of the encrypted message `buf[..msg_len]` at
    /// `buf[msg_len..msg_len + 16]`; returns the datagram length
    /// `msg_len + 16`.
    pub fn append_trailer(&self, buf: &mut [u8], msg_len: usize) -> Result<usize, AuthError> {
        let need = msg_len.saturating_add(TRAILER_LEN);
        if buf.len() < need {
            return Err(AuthError::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        let t = self.trailer(&buf[..msg_len]);
        buf[msg_len..need].copy_from_slice(&t);
        Ok(need)
    }

    /// Checks the trailer of a whole received datagram (still
    /// header-encrypted): its last 16 bytes must be
    /// `E(pearson128(the bytes before))`.
    pub fn verify_trailer(&self, datagram: &[u8]) -> Result<(), AuthError> {
        let (msg, trailer) = split_trailer(datagram)?;
        self.verify_trailer_hash(&trailer_hash(msg), trailer)
    }

    /// Checks a trailer against a hash taken with [`trailer_hash`] before
    /// the header was decrypted in place (the supernode's order: hash,
    /// decrypt, find the user, check). Constant-time comparison.
    pub fn verify_trailer_hash(
        &self,
        hash: &[u8; 16],
        trailer: &[u8; TRAILER_LEN],
    ) -> Result<(), AuthError> {
        let want = self.trailer_of_hash(hash);
        if bool::from(want.ct_eq(trailer)) {
            Ok(())
        } else {
            Err(AuthError::BadTrailer)
        }
    }
}

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.s.zeroize();
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// The hash a trailer protects: `pearson128` of the header-encrypted
/// message bytes (everything before the trailer).
#[must_use]
pub fn trailer_hash(encrypted: &[u8]) -> [u8; 16] {
    pearson::hash128(encrypted)
}

/// Splits a received datagram into the message and its 16-byte trailer.
/// The message must be at least 24 bytes (a header-encrypted message).
pub fn split_trailer(datagram: &[u8]) -> Result<(&[u8], &[u8; TRAILER_LEN]), AuthError> {
    let len = datagram.len();
    if len < crate::he::MIN_LEN + TRAILER_LEN {
        return Err(AuthError::TooShortForTrailer(len));
    }
    let (msg, t) = datagram.split_at(len - TRAILER_LEN);
    let t: &[u8; TRAILER_LEN] = t
        .try_into()
        .map_err(|_| AuthError::TooShortForTrailer(len))?;
    Ok((msg, t))
}

/// An edge's user/password keys: pub_u (sent in every token) and the
/// shared secret S with the federation key. prv_u is not kept.
#[derive(Clone)]
pub struct UserKeys {
    public: PublicKey,
    secret: SharedSecret,
}

impl UserKeys {
    /// Keys of user `user` with `password` (C strings: up to a NUL)
    /// towards federation key `federation` (`-P`, or
    /// [`PublicKey::default_federation`]).
    #[must_use]
    pub fn new(user: &[u8], password: &[u8], federation: &PublicKey) -> Self {
        let prv = PrivateKey::user(user, password);
        Self {
            public: prv.public_key(),
            secret: prv.shared_secret(federation),
        }
    }

    /// pub_u.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// S (and E).
    #[must_use]
    pub fn secret(&self) -> &SharedSecret {
        &self.secret
    }
}

impl fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserKeys")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The federation name field a C supernode starts with when
/// `N2N_FEDERATION=name` is set: `'*' + name` (at most
/// [`FEDERATION_NAME_MAX`] bytes of it, up to a NUL), NUL padded. With
/// `name` = `Federation` this is [`DEFAULT_FEDERATION_FIELD`]. The
/// federation's header keys come from this field (crypto.md §6 quirk 1).
#[must_use]
pub fn federation_field(name: &[u8]) -> [u8; NAME_FIELD_LEN] {
    federation_field_renamed(&[0u8; NAME_FIELD_LEN], name)
}

/// The federation name field after `-F name` (crypto.md §6 quirk 2):
/// `'*' + name + NUL` (name cut to [`FEDERATION_NAME_MAX`] bytes) written
/// over `field` without clearing the rest, e.g. over
/// [`DEFAULT_FEDERATION_FIELD`] `-F rocksFed` gives `*rocksFed\0n\0…`.
/// This is what goes into the community field, the header checksum and the
/// dynamic key derivation.
#[must_use]
pub fn federation_field_renamed(field: &[u8; NAME_FIELD_LEN], name: &[u8]) -> [u8; NAME_FIELD_LEN] {
    let name = c_str(name);
    let name = name.get(..FEDERATION_NAME_MAX).unwrap_or(name);
    let mut f = *field;
    f[0] = b'*';
    f[1..=name.len()].copy_from_slice(name);
    f[name.len() + 1] = 0;
    f
}

/// The C supernode's default federation field after `-F name`:
/// [`federation_field_renamed`] over [`DEFAULT_FEDERATION_FIELD`].
#[must_use]
pub fn federation_field_from_option(name: &[u8]) -> [u8; NAME_FIELD_LEN] {
    federation_field_renamed(&DEFAULT_FEDERATION_FIELD, name)
}

/// The name a supernode derives prv_f from (crypto.md §5.2, §6): the
/// field's bytes after a leading `'*'` up to the first NUL, i.e. the clean
/// (possibly truncated) name, residue ignored.
#[must_use]
pub fn federation_key_name(field: &[u8; NAME_FIELD_LEN]) -> &[u8] {
    c_str(field.strip_prefix(b"*").unwrap_or(field))
}
