//! Forwarding (behaviour.md §9.5–§9.8): PACKET and REGISTER relay to the
//! destination edge (or every edge of the community for broadcasts), and
//! the answers to QUERY_PEER: PONG for a PING, PEER_INFO for a lookup.
//!
//! Federation: a unicast destination that is not in the community's edge
//! table goes to the associated supernode, else to every federation member
//! seen within 90 s (never flooded to the community's own edges); a
//! broadcast from an edge goes to the members too. From a member, only
//! local delivery (no loops).

use n2n_proto::he::HeKeyKind;
use n2n_proto::types::{Community, Mac, PeerSock};
use n2n_proto::wire::{
    self, Flags, Header, HeaderView, Packet, PeerInfo, QueryPeer, Register, WireError,
};

use super::core::Supernode;
use super::federation::{Federation, send_to_federation};
use super::intake::{Inbound, sender_community};
use super::io::{Io, check_stamp, seal};
use super::stats::DropReason;
use crate::Now;
use crate::output::Seal;

impl Supernode {
    pub(super) fn on_packet(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        p: &Packet<'_>,
    ) -> Result<(), DropReason> {
        let Inbound {
            from,
            key,
            hdr,
            msg,
            ..
        } = *inb;
        let from_sn = inb.by_supernode();
        let comm = sender_community(
            &mut self.communities,
            &mut self.fed,
            now,
            inb,
            p.src_mac,
            true,
        )?;
        let sender = PeerSock::from(from.addr());
        let ttl = hdr.ttl.saturating_sub(1);
        let field = comm.field;
        // From an edge: re-encoded (SOCKET|FROM_SUPERNODE, TTL − 1, its
        // socket). From a supernode: unchanged (behaviour.md §9.5).
        let mut hlen = if from_sn {
            wire::packet_header_len(p.sock.as_ref())
        } else {
            wire::packet_header_len(Some(&sender))
        };
        if comm.users {
            // crypto.md §4.6: the stream cipher's IV is hidden too.
            hlen += p.payload.len().min(16);
        }
        let write = |b: &mut [u8]| {
            if from_sn {
                copy_clean(msg, &field, b)
            } else {
                relay(msg, sender, ttl, &field, b)
            }
        };
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        let io = &mut self.io;
        if p.dst_mac.is_multi_or_broadcast() {
            let mut first = true;
            for e in comm.edges.values() {
                if e.mac == p.src_mac {
                    continue;
                }
                if first {
                    io.send(now, e.sock, seal(he, Some(hlen), false), write)?;
                    first = false;
                } else {
                    let _ = io.out.push_copy_of_last(e.sock);
                }
                io.stats.broadcast = io.stats.broadcast.saturating_add(1);
                io.stats.last_fwd = now.unix_secs();
            }
            if !from_sn {
                // And to the federation (behaviour.md §9.9); a supernode
                // receiving it delivers it to its own edges only.
                if first {
                    send_to_federation(
                        &self.fed,
                        io,
                        now,
                        seal(he, Some(hlen), false),
                        None,
                        write,
                    )?;
                } else {
                    for t in self.fed.forward_targets(now.mono, None) {
                        if io.out.push_copy_of_last(t).is_some() {
                            io.stats.fed_forwarded = io.stats.fed_forwarded.saturating_add(1);
                        }
                    }
                }
            }
            if !first && let Some(e) = comm.edges.get_mut(&p.src_mac) {
                e.relayed = e.relayed.saturating_add(1);
            }
            Ok(())
        } else if let Some(e) = comm.edges.get(&p.dst_mac) {
            io.send(now, e.sock, seal(he, Some(hlen), false), write)?;
            io.stats.fwd = io.stats.fwd.saturating_add(1);
            io.stats.last_fwd = now.unix_secs();
            if let Some(e) = comm.edges.get_mut(&p.src_mac) {
                e.relayed = e.relayed.saturating_add(1);
            }
            Ok(())
        } else if from_sn {
            Err(DropReason::UnknownDestination)
        } else {
            let sealing = seal(he, Some(hlen), false);
            let n = forward_unknown(&self.fed, io, now, key, p.dst_mac, sealing, write)?;
            if n == 0 {
                return Err(DropReason::UnknownDestination);
            }
            io.stats.fwd = io.stats.fwd.saturating_add(1);
            io.stats.last_fwd = now.unix_secs();
            if let Some(e) = comm.edges.get_mut(&p.src_mac) {
                e.relayed = e.relayed.saturating_add(1);
            }
            Ok(())
        }
    }

    pub(super) fn on_register(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        r: &Register,
    ) -> Result<(), DropReason> {
        let Inbound {
            from,
            key,
            hdr,
            msg,
            ..
        } = *inb;
        let from_sn = inb.by_supernode();
        let comm = sender_community(
            &mut self.communities,
            &mut self.fed,
            now,
            inb,
            r.src_mac,
            false,
        )?;
        if r.dst_mac.is_multi_or_broadcast() {
            return Err(DropReason::MulticastRegister);
        }
        let sender = PeerSock::from(from.addr());
        let ttl = hdr.ttl.saturating_sub(1);
        let field = comm.field;
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        let write = |b: &mut [u8]| {
            if from_sn {
                copy_clean(msg, &field, b)
            } else {
                relay(msg, sender, ttl, &field, b)
            }
        };
        if let Some(e) = comm.edges.get(&r.dst_mac) {
            self.io.send(now, e.sock, seal(he, None, false), write)?;
        } else if from_sn {
            return Err(DropReason::UnknownDestination);
        } else {
            let n = forward_unknown(
                &self.fed,
                &mut self.io,
                now,
                key,
                r.dst_mac,
                seal(he, None, false),
                write,
            )?;
            if n == 0 {
                return Err(DropReason::UnknownDestination);
            }
        }
        self.io.stats.fwd = self.io.stats.fwd.saturating_add(1);
        self.io.stats.last_fwd = now.unix_secs();
        Ok(())
    }

    pub(super) fn on_query_peer(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        q: &QueryPeer,
    ) -> Result<(), DropReason> {
        let Inbound {
            from,
            key,
            hdr,
            msg,
            he: ctx,
        } = *inb;
        let now_stamp = now.he_stamp();
        let header = Header::from_supernode(key);
        if q.is_ping() {
            if inb.by_supernode() {
                return Err(DropReason::UnexpectedType);
            }
            let allowed = self.allows(&key);
            let he = match self.communities.get_mut(&key) {
                Some(comm) => {
                    check_stamp(
                        ctx,
                        now_stamp,
                        comm.edges.get_mut(&q.src_mac).map(|e| &mut e.stamp_prev),
                        true,
                    )?;
                    comm.active_he().map(|k| (k, HeKeyKind::Dynamic))
                }
                None if allowed => None,
                None => return Err(DropReason::CommunityNotAllowed),
            };
            let uptime = now
                .mono
                .saturating_duration_since(self.start.mono)
                .as_secs();
            let pong = PeerInfo {
                aflags: 0,
                src_mac: self.cfg.mac,
                mac: Mac::NULL,
                sock: PeerSock::from(from.addr()),
                preferred_sock: None,
                load: 0,
                uptime: u32::try_from(uptime).unwrap_or(u32::MAX),
                version: PeerInfo::version_field(&self.cfg.version),
            };
            return self
                .io
                .send(now, from, seal(he, None, false), |b| pong.emit(&header, b));
        }
        let from_sn = inb.by_supernode();
        let comm = sender_community(
            &mut self.communities,
            &mut self.fed,
            now,
            inb,
            q.src_mac,
            true,
        )?;
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        let Some(target) = comm.edges.get(&q.target_mac) else {
            if from_sn {
                return Err(DropReason::UnknownDestination);
            }
            // Ask the federation (flags |= FROM_SUPERNODE, TTL − 1); the
            // answer comes back through us (on_peer_info).
            let field = comm.field;
            let ttl = hdr.ttl.saturating_sub(1);
            let n = send_to_federation(
                &self.fed,
                &mut self.io,
                now,
                seal(he, None, false),
                None,
                |b| {
                    let n = copy_clean(msg, &field, b)?;
                    let mut v = HeaderView::new_checked(&mut b[..n])?;
                    let mut f = v.flags();
                    f.insert(Flags::FROM_SUPERNODE);
                    v.set_flags(f);
                    v.set_ttl(ttl);
                    Ok(n)
                },
            )?;
            if n == 0 {
                return Err(DropReason::UnknownDestination);
            }
            return Ok(());
        };
        let info = PeerInfo {
            aflags: 0,
            src_mac: q.src_mac,
            mac: target.mac,
            sock: PeerSock::from(target.sock.addr()),
            preferred_sock: target.preferred,
            load: 0,
            uptime: 0,
            version: [0; wire::VERSION_FIELD_LEN],
        };
        self.io
            .send(now, from, seal(he, None, false), |b| info.emit(&header, b))
    }

    /// PEER_INFO from a federation member answering a QUERY_PEER we
    /// forwarded (behaviour.md §9.5): remember where the target is, pass it
    /// on to the asking edge (TTL − 1).
    pub(super) fn on_peer_info(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        pi: &PeerInfo,
    ) -> Result<(), DropReason> {
        let Inbound {
            from,
            key,
            hdr,
            msg,
            ..
        } = *inb;
        let comm = sender_community(
            &mut self.communities,
            &mut self.fed,
            now,
            inb,
            pi.src_mac,
            false,
        )?;
        if pi.src_mac.is_null() {
            return Err(DropReason::UnexpectedType);
        }
        let dst = comm
            .edges
            .get(&pi.src_mac)
            .ok_or(DropReason::UnknownDestination)?
            .sock;
        let field = comm.field;
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        let ttl = hdr.ttl.saturating_sub(1);
        self.fed.associate(key, pi.mac, from.addr(), now.mono);
        self.io.send(now, dst, seal(he, None, false), |b| {
            let n = copy_clean(msg, &field, b)?;
            HeaderView::new_checked(&mut b[..n])?.set_ttl(ttl);
            Ok(n)
        })
    }
}

/// A unicast for `dst` that is not a local edge, from an edge: to the
/// associated supernode, else to every federation member seen within 90 s
/// (behaviour.md §9.8). Returns how many got it.
fn forward_unknown<F>(
    fed: &Federation,
    io: &mut Io,
    now: Now,
    community: Community,
    dst: Mac,
    sealing: Option<Seal<'_>>,
    write: F,
) -> Result<usize, DropReason>
where
    F: FnOnce(&mut [u8]) -> Result<usize, WireError>,
{
    match fed.associated(community, dst, now.mono) {
        Some(sn) => {
            io.send(now, sn.into(), sealing, write)?;
            io.stats.fed_forwarded = io.stats.fed_forwarded.saturating_add(1);
            Ok(1)
        }
        None => send_to_federation(fed, io, now, sealing, None, write),
    }
}

/// The message copied as it is, the community field rewritten clean.
fn copy_clean(msg: &[u8], field: &Community, out: &mut [u8]) -> Result<usize, WireError> {
    let n = msg.len();
    let have = out.len();
    let dst = out
        .get_mut(..n)
        .ok_or(WireError::Truncated { need: n, have })?;
    dst.copy_from_slice(msg);
    HeaderView::new_checked(&mut *dst)?.set_community(field);
    Ok(n)
}

/// PACKET/REGISTER relay re-encode (TTL, SOCKET|FROM_SUPERNODE, sender's
/// socket) with the community field rewritten clean (no residue crosses).
fn relay(
    msg: &[u8],
    sender: PeerSock,
    ttl: u8,
    field: &Community,
    out: &mut [u8],
) -> Result<usize, WireError> {
    let n = wire::relay_reencode(msg, sender, ttl, out)?;
    HeaderView::new_checked(&mut *out)?.set_community(field);
    Ok(n)
}
