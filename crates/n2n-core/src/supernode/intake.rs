//! Intake (behaviour.md §9.1, crypto.md §4.8): which community a datagram
//! belongs to (plain or header-encrypted), decoding, the policy checks, the
//! dispatch to the handlers, and the RE_REGISTER_SUPER fast path (module
//! docs of [`super`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use n2n_proto::auth;
use n2n_proto::he::{self, HeError, HeKeyKind};
use n2n_proto::types::{Community, Mac};
use n2n_proto::wire::{self, Flags, HEADER_LEN, Header, HeaderView, Message};

use super::SupernodeEvent;
use super::core::Supernode;
use super::edges::{CommunityState, HeState, community_key};
use super::federation::Federation;
use super::io::{HeCtx, check_stamp, map_wire_err, seal};
use super::stats::DropReason;
use crate::Now;
use crate::output::{ConnId, Dest};

/// A decoded datagram on its way to a handler.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inbound<'a> {
    /// Source socket (UDP) or connection (TCP).
    pub from: Dest,
    /// The community's lookup key.
    pub key: Community,
    /// Its common header.
    pub hdr: Header,
    /// The plain message (relays re-encode it).
    pub msg: &'a [u8],
    /// Header-encryption key kind and stamp, when it was encrypted.
    pub he: Option<HeCtx>,
}

impl Inbound<'_> {
    /// FROM_SUPERNODE set (intake made sure the sender is a federation
    /// member, except for the federation's own REGISTER_SUPER).
    pub(super) fn by_supernode(&self) -> bool {
        self.hdr.flags.contains(Flags::FROM_SUPERNODE)
    }
}

/// The community of `inb`, once the header-encryption stamp is verified
/// (crypto.md §4.5; `jitter`: reordering tolerated) against the previous
/// one of its sender: the federation member at the source socket for
/// FROM_SUPERNODE datagrams, else the edge `mac`.
pub(super) fn sender_community<'c>(
    communities: &'c mut BTreeMap<Community, CommunityState>,
    fed: &mut Federation,
    now: Now,
    inb: &Inbound<'_>,
    mac: Mac,
    jitter: bool,
) -> Result<&'c mut CommunityState, DropReason> {
    let comm = communities
        .get_mut(&inb.key)
        .ok_or(DropReason::UnknownCommunity)?;
    let prev = if inb.by_supernode() {
        fed.stamp_prev_mut(inb.from.addr())
    } else {
        comm.edges.get_mut(&mac).map(|e| &mut e.stamp_prev)
    };
    check_stamp(inb.he, now.he_stamp(), prev, jitter)?;
    Ok(comm)
}

impl Supernode {
    /// Process one datagram received on the supernode's UDP socket. The
    /// buffer is decrypted in place. Answers and relays are queued for
    /// [`poll_transmit`](Self::poll_transmit); every drop is counted.
    pub fn handle_datagram(&mut self, now: Now, from: SocketAddr, datagram: &mut [u8]) {
        if let Err(r) = self.intake(now, Dest::Udp(from), datagram) {
            self.io.stats.count_drop(r);
        }
    }

    /// Process one message (one frame, its length prefix removed) received
    /// on TCP connection `conn` from `peer` (an edge using `-S2`): handled
    /// like a datagram; answers and relays to that edge are queued for the
    /// connection ([`Datagram::conn`](crate::Datagram::conn)).
    pub fn handle_tcp_frame(&mut self, now: Now, conn: ConnId, peer: SocketAddr, frame: &mut [u8]) {
        self.io.stats.tcp_frames = self.io.stats.tcp_frames.saturating_add(1);
        if let Err(r) = self.intake(now, Dest::Tcp(conn, peer), frame) {
            self.io.stats.count_drop(r);
        }
    }

    fn try_decrypt(&self, datagram: &mut [u8]) -> Result<(Community, HeCtx, usize), DropReason> {
        // Federation first: its traffic must never be read as a community's.
        match he::decrypt(
            datagram,
            self.federation_he.static_keys(),
            self.federation_he.name_field(),
        ) {
            Ok(d) => {
                return Ok((
                    self.fed.key,
                    HeCtx {
                        kind: HeKeyKind::Static,
                        stamp: d.stamp,
                        trailer: None,
                    },
                    d.len,
                ));
            }
            Err(HeError::ChecksumMismatch) => {
                // The federation keys opened it, but the name field is not
                // ours: another federation (-F), or a forgery. (A community
                // datagram does so only by a 2^-16 chance: try those first.)
                return match self.try_decrypt_communities(datagram) {
                    Err(DropReason::HeNoKey) => Err(DropReason::FederationForged),
                    r => r,
                };
            }
            Err(_) => {}
        }
        self.try_decrypt_communities(datagram)
    }

    fn try_decrypt_communities(
        &self,
        datagram: &mut [u8],
    ) -> Result<(Community, HeCtx, usize), DropReason> {
        for (k, c) in &self.communities {
            if c.he_state == HeState::Plain {
                continue;
            }
            let Some(keys) = &c.he else { continue };
            let r = if c.users {
                auth::decrypt_header(keys, datagram).ok()
            } else {
                keys.decrypt(datagram).ok().map(|(kind, d)| (kind, d, None))
            };
            if let Some((kind, d, trailer)) = r {
                return Ok((
                    *k,
                    HeCtx {
                        kind,
                        stamp: d.stamp,
                        trailer,
                    },
                    d.len,
                ));
            }
        }
        Err(DropReason::HeNoKey)
    }

    fn intake(&mut self, now: Now, from: Dest, datagram: &mut [u8]) -> Result<(), DropReason> {
        if datagram.len() < HEADER_LEN {
            return Err(DropReason::TooShort);
        }
        // crypto.md §4.8: plain or encrypted, and which community.
        let (key, ctx, len) = if wire::looks_plain(datagram) {
            let hv = HeaderView::new_checked(&*datagram).map_err(map_wire_err)?;
            let key = community_key(hv.community_field());
            if key == self.fed.key {
                return Err(DropReason::FederationPlain);
            }
            if let Some(c) = self.communities.get(&key)
                && c.he_state == HeState::Encrypted
            {
                return Err(DropReason::HeDowngrade);
            }
            (key, None, datagram.len())
        } else {
            let (k, c, l) = self.try_decrypt(datagram)?;
            (k, Some(c), l)
        };
        let msg: &[u8] = datagram.get(..len).unwrap_or(&[]);
        let (hdr, m) = wire::decode(msg).map_err(map_wire_err)?;
        if let Some(c) = self.communities.get_mut(&key)
            && c.he_state == HeState::Unknown
        {
            c.he_state = if ctx.is_some() {
                HeState::Encrypted
            } else {
                HeState::Plain
            };
            self.io.event(SupernodeEvent::HeLocked {
                community: key,
                encrypted: ctx.is_some(),
            });
        }
        let is_fed = key == self.fed.key;
        if hdr.flags.contains(Flags::FROM_SUPERNODE)
            && self.fed.index_by_addr(from.addr()).is_none()
            && !(is_fed && matches!(m, Message::RegisterSuper(_)))
        {
            // behaviour.md §9.1 step 5: only a supernode's own registration
            // in the federation may come from an unknown socket.
            return Err(DropReason::FromUnknownSupernode);
        }
        if hdr.ttl == 0 {
            return Err(DropReason::TtlExpired);
        }
        if is_fed {
            let inb = Inbound {
                from,
                key,
                hdr,
                msg,
                he: ctx,
            };
            return self.on_federation(now, &inb, &m);
        }
        if let (Some(c), Some(comm)) = (ctx, self.communities.get(&key))
            && comm.users
            && c.kind == HeKeyKind::Static
            && !matches!(
                m,
                Message::RegisterSuper(_)
                    | Message::RegisterSuperAck(_)
                    | Message::RegisterSuperNak(_)
            )
        {
            return Err(DropReason::StaticKeyMisuse);
        }
        let from_sn = hdr.flags.contains(Flags::FROM_SUPERNODE);
        let probe = match &m {
            _ if from_sn => None,
            Message::Packet(p) => Some(p.src_mac),
            Message::Register(r) => Some(r.src_mac),
            Message::QueryPeer(q) if !q.is_ping() => Some(q.src_mac),
            _ => None,
        };
        let inb = Inbound {
            from,
            key,
            hdr,
            msg,
            he: ctx,
        };
        let res = match m {
            Message::RegisterSuper(r) => self.on_register_super(now, &inb, &r),
            Message::UnregisterSuper(u) => self.on_unregister_super(now, &inb, &u),
            Message::Packet(p) => self.on_packet(now, &inb, &p),
            Message::Register(r) => self.on_register(now, &inb, &r),
            Message::QueryPeer(q) => self.on_query_peer(now, &inb, &q),
            Message::PeerInfo(p) if from_sn => self.on_peer_info(now, &inb, &p),
            Message::RegisterSuperNak(n) if from_sn => self.on_nak(now, &inb, &n),
            _ => Err(DropReason::UnexpectedType),
        };
        if let Some(mac) = probe
            && !matches!(
                res,
                Err(DropReason::StampRejected | DropReason::TooLong | DropReason::StaticKeyMisuse)
            )
        {
            self.re_register_unknown(now, from, key, mac);
        }
        res
    }

    /// The RE_REGISTER_SUPER fast path (module docs of [`super`]): tell a
    /// sender that is not registered in `key` to re-register now.
    fn re_register_unknown(&mut self, now: Now, from: Dest, key: Community, mac: Mac) {
        if mac == self.cfg.mac || mac.is_multi_or_broadcast() {
            return;
        }
        let he = match self.communities.get(&key) {
            Some(comm) => {
                if comm.edges.get(&mac).is_some_and(|e| e.sock == from) {
                    return;
                }
                comm.active_he().map(|k| (k, HeKeyKind::Dynamic))
            }
            None if self.allows(&key) => None,
            None => return,
        };
        if !self.rereg.allow(from.addr(), now.mono) {
            self.io.stats.re_register_limited = self.io.stats.re_register_limited.saturating_add(1);
            return;
        }
        let header = Header::from_supernode(key);
        if self
            .io
            .send(now, from, seal(he, None, false), |b| {
                wire::encode(&header, &Message::ReRegisterSuper, b)
            })
            .is_ok()
        {
            self.io.stats.re_register_sent = self.io.stats.re_register_sent.saturating_add(1);
        }
    }
}
