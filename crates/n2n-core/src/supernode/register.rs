//! Registration (behaviour.md §9.2–§9.4): REGISTER_SUPER (auto IP, the
//! edge table update, ACK or NAK) and UNREGISTER_SUPER. The edge table
//! itself (communities and their edges, keyed by MAC) is in
//! [`super::edges`].

use n2n_proto::he::{self, HeKeyKind};
use n2n_proto::types::{Auth, Community, DevAddr, PeerSock};
use n2n_proto::wire::{
    self, Flags, Header, Message, RegisterSuper, RegisterSuperAck, RegisterSuperNak, SnListBuf,
    UnregisterSuper,
};

use super::SupernodeEvent;
use super::autoip::choose_host_by;
use super::core::Supernode;
use super::edges::{EdgeChange, Registration};
use super::federation::send_to_federation;
use super::intake::{Inbound, sender_community};
use super::io::{check_stamp, seal, seal_signed};
use super::stats::{DropReason, RefuseReason};
use super::users;
use crate::Now;

/// Registration lifetime announced in REGISTER_SUPER_ACK.
pub const REGISTRATION_LIFETIME: u16 = 15;

/// The ACK carries an assigned address when the request's is 0,
/// 255.255.255.255, prefix 0 or link-local (behaviour.md §9.3).
fn wants_auto_ip(a: DevAddr) -> bool {
    a.ip.is_unspecified() || a.ip.is_broadcast() || a.prefix == 0 || a.ip.is_link_local()
}

impl Supernode {
    pub(super) fn on_register_super(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        reg: &RegisterSuper,
    ) -> Result<(), DropReason> {
        let Inbound {
            from, key, he: ctx, ..
        } = *inb;
        if !self.communities.contains_key(&key) {
            if !self.allows(&key) {
                return Err(DropReason::CommunityNotAllowed);
            }
            if self.communities.len() >= self.cfg.max_communities {
                return Err(DropReason::CommunityLimit);
            }
            self.create_dynamic(key);
        }
        self.check_edge_room(&key, reg)?;
        let own_mac = self.cfg.mac;
        let spoofing_protection = self.cfg.spoofing_protection;
        let now_stamp = now.he_stamp();
        let from_sn = inb.by_supernode();
        // An edge's registration forwarded by another supernode: checked
        // against the local table, never added (behaviour.md §9.3).
        let forwarded = from_sn && reg.sock.is_some();
        let comm = sender_community(
            &mut self.communities,
            &mut self.fed,
            now,
            inb,
            reg.edge_mac,
            false,
        )?;
        // User/password (crypto.md §5.4, §5.5): a listed user's trailer must
        // verify (else a silent drop, as C); an unlisted key is refused below.
        let user = match &comm.user_auth {
            None => None,
            Some(ua) => match ua.user_of(&reg.auth) {
                Some((token, u)) => {
                    if !users::trailer_verifies(ctx, u) {
                        return Err(DropReason::BadTrailer);
                    }
                    Some((token, u.secret.clone(), *ua.dynamic_key()))
                }
                None => None,
            },
        };
        if reg.edge_mac == own_mac {
            return Err(DropReason::OwnMac);
        }
        let stats = &mut self.io.stats;
        stats.reg_super = stats.reg_super.saturating_add(1);
        stats.last_reg_super = now.unix_secs();

        let refuse = match (comm.users, &user) {
            (false, _) | (true, Some(_)) => Ok(()),
            (true, None) if reg.auth.scheme() == Auth::SCHEME_USER_PASSWORD => {
                Err(RefuseReason::UnknownUser)
            }
            (true, None) => Err(RefuseReason::AuthSchemeMismatch),
        };
        let assigned = if refuse.is_ok() && !forwarded && wants_auto_ip(reg.dev_addr) {
            comm.subnet
                .and_then(|s| {
                    choose_host_by(s, reg.dev_desc.bytes(), |a| comm.edges.ip_in_use(a))
                        .map(|ip| DevAddr::new(ip, s.bits))
                })
                .unwrap_or(DevAddr::UNSPECIFIED)
        } else {
            DevAddr::UNSPECIFIED
        };
        let r = Registration {
            mac: reg.edge_mac,
            dev_addr: reg.dev_addr,
            desc: reg.dev_desc,
            // A forwarded registration carries the edge's public socket.
            sock: match (forwarded, reg.sock) {
                (true, Some(s)) => s.addr().into(),
                _ => from,
            },
            preferred: if forwarded { None } else { reg.sock },
            cookie: reg.cookie,
            auth: reg.auth,
            now: now.mono,
            now_unix: now.unix_secs(),
            stamp_prev: ctx.map_or_else(|| he::initial_prev(now_stamp), |c| c.stamp),
        };
        let outcome = match refuse {
            Err(r) => Err(r),
            Ok(()) if reg.edge_mac.is_null() => Ok(None), // bootstrap: not stored
            Ok(()) if forwarded => comm.check_edge(&r).map(|()| None),
            Ok(()) if from_sn => Ok(None), // a supernode's own: check only
            Ok(()) => comm
                .update_edge(&r, spoofing_protection, &mut self.seq)
                .map(Some),
        };
        let he_static = comm.active_he().map(|k| (k, HeKeyKind::Static));
        let header = Header {
            ttl: wire::DEFAULT_TTL,
            flags: Flags::SOCKET | Flags::FROM_SUPERNODE,
            community: comm.field,
        };
        match outcome {
            Err(reason) => {
                let nak = RegisterSuperNak {
                    cookie: reg.cookie,
                    src_mac: reg.edge_mac,
                    auth: Auth::NONE,
                };
                self.io.stats.count_refusal(reason);
                self.io.event(SupernodeEvent::EdgeRefused {
                    community: key,
                    mac: reg.edge_mac,
                    sock: r.sock.addr(),
                    reason,
                });
                self.io
                    .send(now, from, seal(he_static, None, comm.users), |b| {
                        nak.emit(&header, b)
                    })
            }
            Ok(_) if forwarded => {
                // The edge is at the supernode `from` now.
                if let Some(e) = comm.edges.remove(&reg.edge_mac) {
                    self.io.event(SupernodeEvent::EdgeMoved {
                        community: key,
                        mac: e.mac,
                        supernode: from.addr(),
                    });
                }
                self.fed.associate(key, reg.edge_mac, from.addr(), now.mono);
                Ok(())
            }
            Ok(change) => {
                let ip = if assigned.is_unspecified() {
                    reg.dev_addr
                } else {
                    assigned
                };
                if let Some(ch) = change
                    && ch != EdgeChange::Refreshed
                {
                    self.io.event(SupernodeEvent::EdgeRegistered {
                        community: key,
                        mac: reg.edge_mac,
                        sock: from.addr(),
                        ip,
                    });
                }
                if !from_sn && !reg.edge_mac.is_null() {
                    // Spread it over the federation (behaviour.md §9.3):
                    // SOCKET|FROM_SUPERNODE, TTL 2, the edge's public socket,
                    // static key, the user's trailer.
                    self.fed.assoc.remove(&(key, reg.edge_mac));
                    let fwd = RegisterSuper {
                        sock: Some(PeerSock::from(from.addr())),
                        ..*reg
                    };
                    let sealing = match &user {
                        Some((_, secret, _)) => {
                            comm.active_he().and_then(|k| seal_signed(k, secret))
                        }
                        None => seal(he_static, None, false),
                    };
                    let fhdr = Header {
                        ttl: wire::DEFAULT_TTL,
                        flags: Flags::SOCKET | Flags::FROM_SUPERNODE,
                        community: comm.field,
                    };
                    let _ = send_to_federation(&self.fed, &mut self.io, now, sealing, None, |b| {
                        wire::encode(&fhdr, &Message::RegisterSuper(fwd), b)
                    });
                }
                // The answer token hands over D; the trailer is the user's.
                let (auth, sealing) = match &user {
                    Some((token, secret, d)) => (
                        secret.answer(token, d).to_auth(),
                        comm.active_he().and_then(|k| seal_signed(k, secret)),
                    ),
                    None => (Auth::NONE, seal(he_static, None, false)),
                };
                let mut list = SnListBuf::new();
                self.fed.fill_list(now.mono, from.addr(), &mut list);
                let ack = RegisterSuperAck {
                    cookie: reg.cookie,
                    src_mac: own_mac,
                    dev_addr: assigned,
                    lifetime: REGISTRATION_LIFETIME,
                    sock: PeerSock::from(from.addr()),
                    auth,
                    sn_list: list.as_list(),
                    key_time: 0,
                };
                self.io.send(now, from, sealing, |b| ack.emit(&header, b))
            }
        }
    }

    /// The caps (`--max-edges-per-community`, `--max-edges`): a
    /// registration that would add an entry to a full table is dropped
    /// without an answer (a NAK would make the edge log a wrong reason; it
    /// keeps retrying and gets in once there is room). Known MACs, an
    /// address taken over by a re-keyed entry and the bootstrap null MAC add
    /// nothing and always pass.
    fn check_edge_room(&self, key: &Community, reg: &RegisterSuper) -> Result<(), DropReason> {
        let Some(comm) = self.communities.get(key) else {
            return Ok(());
        };
        let adds = !reg.edge_mac.is_null()
            && !comm.edges.contains_key(&reg.edge_mac)
            && comm.edges.mac_by_ip(reg.dev_addr.ip).is_none();
        if !adds {
            return Ok(());
        }
        if comm.edges.len() >= self.cfg.max_edges_per_community {
            return Err(DropReason::CommunityFull);
        }
        // O(communities), only for a registration that adds an entry.
        let total: usize = self.communities.values().map(|c| c.edges.len()).sum();
        if total >= self.cfg.max_edges {
            return Err(DropReason::EdgeLimit);
        }
        Ok(())
    }

    /// REGISTER_SUPER_NAK from a federation member (behaviour.md §9.5): the
    /// refused edge is ours: pass the NAK on (TTL − 1, static key) and
    /// remove the edge.
    pub(super) fn on_nak(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        nak: &RegisterSuperNak,
    ) -> Result<(), DropReason> {
        let Inbound { from, key, hdr, .. } = *inb;
        let comm = sender_community(
            &mut self.communities,
            &mut self.fed,
            now,
            inb,
            nak.src_mac,
            false,
        )?;
        let Some(e) = comm.edges.remove(&nak.src_mac) else {
            return Err(DropReason::UnknownEdge);
        };
        let header = Header {
            ttl: hdr.ttl.saturating_sub(1),
            flags: hdr.flags,
            community: comm.field,
        };
        let he_static = comm.active_he().map(|k| (k, HeKeyKind::Static));
        self.io.event(SupernodeEvent::EdgeRefusedByFederation {
            community: key,
            mac: e.mac,
            supernode: from.addr(),
        });
        self.io
            .send(now, e.sock, seal(he_static, None, comm.users), |b| {
                nak.emit(&header, b)
            })
    }

    pub(super) fn on_unregister_super(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        u: &UnregisterSuper,
    ) -> Result<(), DropReason> {
        let Inbound { key, he: ctx, .. } = *inb;
        if inb.by_supernode() {
            return Err(DropReason::UnexpectedType);
        }
        let now_stamp = now.he_stamp();
        let comm = self
            .communities
            .get_mut(&key)
            .ok_or(DropReason::UnknownCommunity)?;
        let edge = comm.edges.get_mut(&u.src_mac);
        let Some(edge) = edge else {
            check_stamp(ctx, now_stamp, None, false)?;
            return Err(DropReason::UnknownEdge);
        };
        check_stamp(ctx, now_stamp, Some(&mut edge.stamp_prev), false)?;
        // crypto.md §5.8: in a user/password community any listed user's
        // token will do (C does not bind it to the registered edge).
        let auth_ok = match &comm.user_auth {
            Some(ua) => ua.user_of(&u.auth).is_some(),
            None => super::edges::auth_matches(&edge.auth, &u.auth),
        };
        if !auth_ok {
            return Err(DropReason::AuthMismatch);
        }
        comm.edges.remove(&u.src_mac);
        self.io.event(SupernodeEvent::EdgeUnregistered {
            community: key,
            mac: u.src_mac,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_ip_request_rule() {
        use std::net::Ipv4Addr;
        assert!(wants_auto_ip(DevAddr::UNSPECIFIED));
        assert!(wants_auto_ip(DevAddr::new(Ipv4Addr::BROADCAST, 24)));
        assert!(wants_auto_ip(DevAddr::new(Ipv4Addr::new(10, 0, 0, 1), 0)));
        assert!(wants_auto_ip(DevAddr::new(
            Ipv4Addr::new(169, 254, 1, 1),
            16
        )));
        assert!(!wants_auto_ip(DevAddr::new(Ipv4Addr::new(10, 0, 0, 1), 24)));
    }
}
