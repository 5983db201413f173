//! User/password authentication at the supernode (crypto.md §5,
//! behaviour.md §9.2–§9.5): the users of a community with their shared
//! secrets S_u, the community's dynamic key D, and the checks of
//! REGISTER_SUPER trailers and UNREGISTER_SUPER tokens. (Intake decrypts
//! these communities with [`n2n_proto::auth::decrypt_header`], which keeps
//! the trailer of the static-key attempt.)
//!
//! A community of the community file with at least one `* <user> <key>`
//! line gets a [`UserAuth`] when it is loaded: S_u = pearson256(X25519(prv_f,
//! pub_u)) for every user (prv_f from the clean federation name, crypto.md
//! §5.2) and D from the community field, the federation field (with the
//! `-F` residue) and the supernode's key_time (§5.6). Its header state is
//! "encrypted" from the start.
//!
//! REGISTER_SUPER in such a community ([`Supernode::on_register_super`]):
//! the user is looked up by `token[0..32]`; a listed user's trailer must
//! verify with its S_u (else the datagram is dropped silently, counted as
//! [`DropReason::BadTrailer`], as C does); an unlisted key or another auth
//! scheme gets a REGISTER_SUPER_NAK. The ACK carries the answer token
//! handing over D and the trailer signed with S_u; the NAK carries 16
//! random bytes. UNREGISTER_SUPER needs a token whose public key is a
//! listed user, and a registered MAC.
//!
//! key_time and D: [`Supernode::set_key_time`] sends RE_REGISTER_SUPER to
//! every registered edge of every user/password community (under the old
//! dynamic key), then recomputes every D. `reload_communities`
//! ([`Supernode::set_communities`]) calls it with a new key_time before it
//! drops the communities and loads the file again, so removed users lose the
//! key and new users are admitted without a restart. Unlike C (`key_time =
//! time(NULL)`), a reload always moves key_time forward, by at least one
//! second: two reloads within the same second would otherwise keep D, and
//! with it a removed user's access to the other edges' P2P traffic.
//!
//! [`Supernode::on_register_super`]: super::core::Supernode
//! [`DropReason::BadTrailer`]: super::stats::DropReason::BadTrailer

use std::collections::HashMap;

use n2n_proto::auth::{self, PrivateKey, PublicKey, SharedSecret, UserToken};
use n2n_proto::he::{self, HeKeyKind, NAME_FIELD_LEN};
use n2n_proto::types::Auth;
use n2n_proto::wire::{self, Header, Message};

use super::community_list::FixedCommunity;
use super::core::Supernode;
use super::io::{HeCtx, seal};
use crate::Now;

/// One user of a community: its shared secret S_u (with the cipher E_u).
#[derive(Debug, Clone)]
pub(crate) struct SnUser {
    pub(crate) secret: SharedSecret,
}

/// The user/password state of a community: its users by public key and its
/// dynamic key D.
#[derive(Debug, Clone)]
pub(crate) struct UserAuth {
    users: HashMap<PublicKey, SnUser>,
    dynamic_key: [u8; 16],
}

impl UserAuth {
    /// The users of `fc` (S_u with `prv_f`); `None` when it has none.
    pub(crate) fn new(
        fc: &FixedCommunity,
        prv_f: &PrivateKey,
        dynamic_key: [u8; 16],
    ) -> Option<Self> {
        if fc.users.is_empty() {
            return None;
        }
        let users = fc
            .users
            .iter()
            .map(|u| {
                let user = SnUser {
                    secret: prv_f.shared_secret(&u.public_key),
                };
                (u.public_key, user)
            })
            .collect();
        Some(Self { users, dynamic_key })
    }

    /// The user whose public key is `key`.
    pub(crate) fn user(&self, key: &PublicKey) -> Option<&SnUser> {
        self.users.get(key)
    }

    /// The user a scheme-2 `auth` block names by its `token[0..32]`, with
    /// the parsed token.
    pub(crate) fn user_of(&self, auth: &Auth) -> Option<(UserToken, &SnUser)> {
        let t = UserToken::from_auth(auth).ok()?;
        self.user(&t.public_key()).map(|u| (t, u))
    }

    /// D, handed over in every REGISTER_SUPER_ACK.
    pub(crate) fn dynamic_key(&self) -> &[u8; 16] {
        &self.dynamic_key
    }
}

/// The federation private key prv_f of the federation name field
/// `federation20` (clean name, residue ignored, crypto.md §5.2 and §6).
pub(crate) fn federation_private_key(federation20: &[u8; NAME_FIELD_LEN]) -> PrivateKey {
    PrivateKey::federation(auth::federation_key_name(federation20))
}

/// Whether the REGISTER_SUPER decrypted as `ctx` carries `user`'s valid
/// trailer (crypto.md §5.4). A registration under the dynamic keys has none
/// (C then compares against the encrypted zero hash: no match).
pub(super) fn trailer_verifies(ctx: Option<HeCtx>, user: &SnUser) -> bool {
    ctx.and_then(|c| c.trailer)
        .is_some_and(|t| user.secret.verify_trailer_hash(&t.hash, &t.trailer).is_ok())
}

/// Reload: the next key_time, at least one second after `current`.
pub(super) fn reload_key_time(now: Now, current: u32) -> u32 {
    let t = u32::try_from(now.unix_secs()).unwrap_or(u32::MAX);
    t.max(current.saturating_add(1))
}

impl Supernode {
    /// The key_time the dynamic keys are derived from (crypto.md §5.6).
    pub fn key_time(&self) -> u32 {
        self.key_time
    }

    /// Switch to `key_time` (crypto.md §5.6, §5.7): RE_REGISTER_SUPER to
    /// every registered edge of every user/password community, under the
    /// dynamic key still in force, then every community's D is recomputed.
    /// The edges re-register at once and their ACKs hand over the new D.
    /// Used by `reload_communities`; a federation adopting a peer's larger
    /// key_time calls it too.
    pub fn set_key_time(&mut self, now: Now, key_time: u32) {
        let fed = *self.cfg.federation.field();
        for comm in self.communities.values_mut() {
            let Some(ua) = comm.user_auth.as_mut() else {
                continue;
            };
            let header = Header::from_supernode(comm.field);
            let he = comm.he.as_ref().map(|k| (k, HeKeyKind::Dynamic));
            for e in comm.edges.values() {
                let sent = self.io.send(now, e.sock, seal(he, None, false), |b| {
                    wire::encode(&header, &Message::ReRegisterSuper, b)
                });
                if sent.is_ok() {
                    self.io.stats.re_register_sent =
                        self.io.stats.re_register_sent.saturating_add(1);
                }
            }
            let d = he::dynamic_key(comm.field.field(), &fed, key_time);
            ua.dynamic_key = d;
            if let Some(k) = comm.he.as_mut() {
                k.set_dynamic_key(&d);
            }
        }
        self.key_time = key_time;
    }
}
