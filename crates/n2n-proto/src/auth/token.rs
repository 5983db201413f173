//! The 48-byte scheme-2 tokens (crypto.md §5.3, §5.5, §5.8): the edge's
//! token in REGISTER_SUPER / UNREGISTER_SUPER and the supernode's answer in
//! REGISTER_SUPER_ACK, with the dynamic key hand-over.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::AuthError;
use super::keys::{KEY_LEN, PublicKey, SharedSecret, UserKeys};
use crate::types::Auth;

/// Length of a challenge c (and of the dynamic key D).
pub const CHALLENGE_LEN: usize = 16;
/// Length of a scheme-2 token.
pub const TOKEN_LEN: usize = KEY_LEN + CHALLENGE_LEN;

fn token_bytes(token: &[u8]) -> Result<[u8; TOKEN_LEN], AuthError> {
    token
        .try_into()
        .map_err(|_| AuthError::BadTokenSize(token.len()))
}

fn token_of_auth(auth: &Auth) -> Result<[u8; TOKEN_LEN], AuthError> {
    if auth.scheme() != Auth::SCHEME_USER_PASSWORD {
        return Err(AuthError::WrongScheme(auth.scheme()));
    }
    token_bytes(auth.token())
}

fn auth_of(bytes: &[u8; TOKEN_LEN]) -> Auth {
    // 48 bytes is exactly the largest token an Auth holds: never fails.
    Auth::new(Auth::SCHEME_USER_PASSWORD, bytes).unwrap_or_default()
}

fn block(b: &[u8]) -> [u8; CHALLENGE_LEN] {
    let mut out = [0u8; CHALLENGE_LEN];
    for (o, i) in out.iter_mut().zip(b) {
        *o = *i;
    }
    out
}

fn xor3(a: &[u8; 16], b: &[u8; 16], c: &[u8; 16]) -> [u8; 16] {
    core::array::from_fn(|i| a[i] ^ b[i] ^ c[i])
}

/// An edge's token (REGISTER_SUPER, UNREGISTER_SUPER):
/// `pub_u ‖ E(c)` (crypto.md §5.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserToken([u8; TOKEN_LEN]);

impl UserToken {
    /// The token of `keys` for challenge `c` (16 fresh random bytes, new
    /// for every REGISTER_SUPER and UNREGISTER_SUPER).
    #[must_use]
    pub fn new(keys: &UserKeys, challenge: &[u8; CHALLENGE_LEN]) -> Self {
        keys.secret().user_token(keys.public_key(), challenge)
    }

    /// `token[0..32]`: the user's public key (the supernode looks the user
    /// up by an exact match).
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        let mut k = [0u8; KEY_LEN];
        k.copy_from_slice(&self.0[..KEY_LEN]);
        PublicKey::from_bytes(k)
    }

    /// `token[32..48]`: the encrypted challenge E(c).
    #[must_use]
    pub fn encrypted_challenge(&self) -> [u8; CHALLENGE_LEN] {
        block(&self.0[KEY_LEN..])
    }

    /// The challenge c, decrypted with the user's secret (supernode: S_u).
    #[must_use]
    pub fn challenge(&self, secret: &SharedSecret) -> [u8; CHALLENGE_LEN] {
        let mut c = self.encrypted_challenge();
        secret.decrypt_block(&mut c);
        c
    }
}

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserToken({})", self.public_key())
    }
}

/// A supernode's answer token in REGISTER_SUPER_ACK (crypto.md §5.5):
/// `E_u(rx[32..48]) ‖ rx[16..32] ‖ E_u(c ⊕ D ⊕ S_u[0..16])`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnswerToken([u8; TOKEN_LEN]);

impl fmt::Debug for AnswerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnswerToken(<48 bytes>)")
    }
}

/// The byte and auth-block conversions both 48-byte tokens share.
macro_rules! token_bytes_impl {
    ($t:ident) => {
        impl $t {
            /// From its bytes (exactly 48).
            pub fn from_bytes(token: &[u8]) -> Result<Self, AuthError> {
                token_bytes(token).map(Self)
            }

            /// From a decoded auth block: scheme 2, 48 bytes.
            pub fn from_auth(auth: &Auth) -> Result<Self, AuthError> {
                token_of_auth(auth).map(Self)
            }

            /// The auth block (scheme 2, token_size 48).
            #[must_use]
            pub fn to_auth(&self) -> Auth {
                auth_of(&self.0)
            }

            /// The 48 bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
                &self.0
            }
        }
    };
}

token_bytes_impl!(UserToken);
token_bytes_impl!(AnswerToken);

impl SharedSecret {
    /// Edge (S): the token `public ‖ E(challenge)`.
    #[must_use]
    pub fn user_token(&self, public: &PublicKey, challenge: &[u8; CHALLENGE_LEN]) -> UserToken {
        let mut t = [0u8; TOKEN_LEN];
        t[..KEY_LEN].copy_from_slice(public.as_bytes());
        let mut c = *challenge;
        self.encrypt_block(&mut c);
        t[KEY_LEN..].copy_from_slice(&c);
        UserToken(t)
    }

    /// Supernode (S_u of the user whose public key is in `rx`): the answer
    /// handing over the community's dynamic key `dynamic_key` (D).
    #[must_use]
    pub fn answer(&self, rx: &UserToken, dynamic_key: &[u8; CHALLENGE_LEN]) -> AnswerToken {
        let enc_c = rx.encrypted_challenge();
        let c = rx.challenge(self);
        let mut a = [0u8; TOKEN_LEN];
        let mut first = enc_c;
        self.encrypt_block(&mut first);
        a[..16].copy_from_slice(&first);
        a[16..32].copy_from_slice(&rx.0[16..32]);
        let mut s = self.first_half();
        let mut last = xor3(&c, dynamic_key, &s);
        s.zeroize();
        self.encrypt_block(&mut last);
        a[32..].copy_from_slice(&last);
        AnswerToken(a)
    }

    /// Edge (S): checks that `answer` echoes `challenge` (the edge's last
    /// one), `E⁻¹(E⁻¹(ans[0..16])) = c`, and returns the dynamic key
    /// `D = E⁻¹(ans[32..48]) ⊕ c ⊕ S[0..16]`. A stale or forged answer is
    /// [`AuthError::ChallengeMismatch`]. The trailer is checked separately
    /// ([`SharedSecret::verify_trailer`]).
    pub fn open_answer(
        &self,
        answer: &AnswerToken,
        challenge: &[u8; CHALLENGE_LEN],
    ) -> Result<[u8; CHALLENGE_LEN], AuthError> {
        let mut echo = block(&answer.0[..16]);
        self.decrypt_block(&mut echo);
        self.decrypt_block(&mut echo);
        if !bool::from(echo.ct_eq(challenge)) {
            return Err(AuthError::ChallengeMismatch);
        }
        let mut d = block(&answer.0[32..]);
        self.decrypt_block(&mut d);
        let mut s = self.first_half();
        let key = xor3(&d, challenge, &s);
        s.zeroize();
        Ok(key)
    }
}
