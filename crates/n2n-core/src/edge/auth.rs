//! User/password authentication of the edge (crypto.md §5, behaviour.md
//! §2.2, §2.3), on the primitives of [`n2n_proto::auth`].
//!
//! With [`EdgeConfig::user_password`](super::EdgeConfig::user_password):
//!
//! * header encryption is on; the static keys come from the community
//!   name, the dynamic keys start from a *random* D, so before the first
//!   REGISTER_SUPER_ACK nothing but registration messages can be exchanged
//!   (crypto.md §5.5);
//! * every REGISTER_SUPER (also the bootstrap one) carries the scheme-2
//!   token `pub_u ‖ E(c)` with a fresh random challenge c, is encrypted with
//!   the static keys and signed with the trailer `E(pearson128(encrypted))`;
//! * a REGISTER_SUPER_ACK is accepted only under the static keys, with a
//!   trailer that verifies with S and an answer that echoes the last
//!   challenge (`E⁻¹(E⁻¹(ans[0..16])) = c`); then the dynamic keys switch to
//!   `D = E⁻¹(ans[32..48]) ⊕ c ⊕ S[0..16]`. A stale or replayed ACK (older
//!   challenge), a forged one (no valid trailer) or one of another user is
//!   a counted drop;
//! * any other message under the static keys is dropped;
//! * PACKETs are header-encrypted over the header plus up to 16 payload
//!   bytes (the cipher's IV, crypto.md §4.6);
//! * UNREGISTER_SUPER carries a token with a fresh challenge (dynamic keys,
//!   no trailer);
//! * RE_REGISTER_SUPER (the supernode's key is about to change): a
//!   REGISTER_SUPER at once, and the next regular one set back by a random
//!   0 .. 3·interval/4 s (behaviour.md §2.3).

use n2n_proto::auth::{
    AnswerToken, CHALLENGE_LEN, ReceivedTrailer, SharedSecret, UserKeys, UserToken,
};
use n2n_proto::types::Auth;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::Rng;

use super::stats::DropReason;

/// The user/password state of an edge: its keys and the challenge of its
/// last REGISTER_SUPER.
#[derive(Debug, Clone)]
pub(super) struct UserAuth {
    keys: UserKeys,
    challenge: [u8; CHALLENGE_LEN],
}

impl UserAuth {
    pub(super) fn new(keys: UserKeys) -> Self {
        Self {
            keys,
            challenge: [0; CHALLENGE_LEN],
        }
    }

    /// S, which signs our REGISTER_SUPER trailers.
    pub(super) fn secret(&self) -> &SharedSecret {
        self.keys.secret()
    }

    /// The auth block of a REGISTER_SUPER: a fresh challenge, remembered
    /// for the check of the answer.
    pub(super) fn register_token(&mut self, rng: &mut ChaCha20Rng) -> Auth {
        rng.fill_bytes(&mut self.challenge);
        UserToken::new(&self.keys, &self.challenge).to_auth()
    }

    /// The auth block of an UNREGISTER_SUPER: a fresh challenge of its own
    /// (an ACK still in flight keeps its challenge).
    pub(super) fn unregister_token(&self, rng: &mut ChaCha20Rng) -> Auth {
        let mut c = [0u8; CHALLENGE_LEN];
        rng.fill_bytes(&mut c);
        UserToken::new(&self.keys, &c).to_auth()
    }

    /// Checks a REGISTER_SUPER_ACK (crypto.md §5.5): its trailer (present
    /// only when it was under the static keys) and its answer to our last
    /// challenge. Returns the dynamic key D it hands over.
    pub(super) fn open_ack(
        &self,
        trailer: Option<ReceivedTrailer>,
        answer: &Auth,
    ) -> Result<[u8; CHALLENGE_LEN], DropReason> {
        trailer
            .ok_or(DropReason::BadTrailer)?
            .verify(self.keys.secret())
            .map_err(|_| DropReason::BadTrailer)?;
        let ans = AnswerToken::from_auth(answer).map_err(|_| DropReason::BadAnswer)?;
        self.keys
            .secret()
            .open_answer(&ans, &self.challenge)
            .map_err(|_| DropReason::BadAnswer)
    }
}
