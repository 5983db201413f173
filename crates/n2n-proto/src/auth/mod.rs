//! User/password authentication, byte-exact with C n2n 3.1.1 (crypto.md
//! §5.2–§5.8, §6).
//!
//! Sans-IO like the rest of the crate: challenges and random bytes are
//! arguments, nothing reads a clock or an RNG, nothing allocates.
//!
//! * Key material: [`PrivateKey::user`] (prv_u from `-I`/`-J`),
//!   [`PrivateKey::federation`] (prv_f), [`PrivateKey::public_key`] with
//!   n2n's non-standard X25519 [`GENERATOR`] `00…0009`,
//!   [`PrivateKey::shared_secret`] (S / S_u, with the Speck128/128 cipher E
//!   keyed by its first half), [`UserKeys`] (an edge's pub_u and S), and
//!   the federation name field with C's residue quirk
//!   ([`federation_field_from_option`], [`federation_key_name`]).
//! * Key text ([`keytext`]): the 43-character 6-bit ASCII of `n2n-keygen`,
//!   `community.list` and `-P`.
//! * Tokens ([`UserToken`], [`AnswerToken`]): `pub_u ‖ E(c)` in
//!   REGISTER_SUPER / UNREGISTER_SUPER; the supernode's answer
//!   ([`SharedSecret::answer`]) and the edge's check of it with the
//!   extraction of the dynamic key D ([`SharedSecret::open_answer`]).
//! * Trailer: `E(pearson128(encrypted message))` after static-key messages
//!   ([`SharedSecret::append_trailer`], [`SharedSecret::verify_trailer`],
//!   [`trailer_hash`] + [`SharedSecret::verify_trailer_hash`] for the
//!   supernode's hash-before-decrypt order, [`split_trailer`]), and the
//!   receiving side: [`decrypt_header`] (C's dynamic-then-static attempt
//!   that keeps the [`ReceivedTrailer`] of the static one).
//! * The dynamic key D itself is [`crate::he::dynamic_key`] (re-exported
//!   here as [`dynamic_key`]); header keys from it are
//!   [`crate::he::HeKeys::from_dynamic_key`].
//!
//! Secrets ([`PrivateKey`], [`SharedSecret`]) are zeroed on drop and never
//! shown by `Debug`. (The expanded Speck round keys inside a
//! [`SharedSecret`] are not zeroed: `crypto::speck` does not offer it.)

pub mod keytext;

mod keys;
mod received;
mod token;

pub use keys::{
    DEFAULT_FEDERATION_NAME, FEDERATION_NAME_MAX, GENERATOR, KEY_LEN, PrivateKey, PublicKey,
    SharedSecret, UserKeys, federation_field, federation_field_from_option,
    federation_field_renamed, federation_key_name, split_trailer, trailer_hash,
};
pub use keytext::{KEY_TEXT_LEN, KeyText, KeyTextError};
pub use received::{ReceivedTrailer, decrypt_header};
pub use token::{AnswerToken, CHALLENGE_LEN, TOKEN_LEN, UserToken};

pub use crate::he::{TRAILER_LEN, dynamic_key};

/// Why a user/password token, answer or trailer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The auth block's scheme is not 2 (user/password).
    #[error("auth scheme {0} is not user/password (2)")]
    WrongScheme(u16),
    /// A scheme-2 token must be exactly 48 bytes.
    #[error("user/password token is {0} bytes long, {TOKEN_LEN} expected")]
    BadTokenSize(usize),
    /// A datagram with a trailer has at least 24 + 16 bytes.
    #[error("datagram of {0} bytes is too short to carry a 16-byte trailer")]
    TooShortForTrailer(usize),
    /// The trailer does not match: another user's key, or tampering.
    #[error("trailer does not verify (wrong user key or tampered message)")]
    BadTrailer,
    /// The answer does not echo the edge's last challenge: stale, replayed
    /// or forged REGISTER_SUPER_ACK, or another user's key.
    #[error("answer token does not echo the last challenge (stale or forged)")]
    ChallengeMismatch,
    /// The caller's buffer cannot hold the result.
    #[error("buffer of {have} bytes too small, {need} needed")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// H (bytes to header-encrypt) of a PACKET in a user/password community
/// (crypto.md §4.6): the packet header plus up to 16 payload bytes, so the
/// payload cipher's IV is hidden too.
#[must_use]
pub const fn packet_encrypted_len(packet_header_len: usize, payload_len: usize) -> usize {
    const IV_LEN: usize = 16;
    packet_header_len
        + if payload_len < IV_LEN {
            payload_len
        } else {
            IV_LEN
        }
}
