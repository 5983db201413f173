//! Forwarding (behaviour.md §9.5–§9.8): PACKET and REGISTER relay to the
//! destination edge (or every edge of the community for broadcasts), and
//! the answers to QUERY_PEER: PONG for a PING, PEER_INFO for a lookup.
//!
//! Where federation plugs in: a unicast destination that is not in the
//! community's edge table is dropped ([`DropReason::UnknownDestination`])
//! today; with `-l` peers it goes to the other supernodes instead, and
//! broadcasts go to them too.

use n2n_proto::he::HeKeyKind;
use n2n_proto::types::{Community, Mac, PeerSock};
use n2n_proto::wire::{self, Header, HeaderView, Packet, PeerInfo, QueryPeer, Register, WireError};

use super::core::Supernode;
use super::intake::{Inbound, sender_community};
use super::io::{check_stamp, seal};
use super::stats::DropReason;
use crate::Now;

impl Supernode {
    pub(super) fn on_packet(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        p: &Packet<'_>,
    ) -> Result<(), DropReason> {
        let Inbound { from, hdr, msg, .. } = *inb;
        let comm = sender_community(&mut self.communities, now, inb, p.src_mac, true)?;
        let sender = PeerSock::from(from.addr());
        let ttl = hdr.ttl.saturating_sub(1);
        let mut hlen = wire::packet_header_len(Some(&sender));
        if comm.users {
            // crypto.md §4.6: the stream cipher's IV is hidden too.
            hlen += p.payload.len().min(16);
        }
        let field = comm.field;
        let write = |b: &mut [u8]| relay(msg, sender, ttl, &field, b);
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
            if !first && let Some(e) = comm.edges.get_mut(&p.src_mac) {
                e.relayed = e.relayed.saturating_add(1);
            }
            Ok(())
        } else {
            let dst = comm
                .edges
                .get(&p.dst_mac)
                .ok_or(DropReason::UnknownDestination)?
                .sock;
            io.send(now, dst, seal(he, Some(hlen), false), write)?;
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
        let Inbound { from, hdr, msg, .. } = *inb;
        let comm = sender_community(&mut self.communities, now, inb, r.src_mac, false)?;
        if r.dst_mac.is_multi_or_broadcast() {
            return Err(DropReason::MulticastRegister);
        }
        let dst = comm
            .edges
            .get(&r.dst_mac)
            .ok_or(DropReason::UnknownDestination)?
            .sock;
        let sender = PeerSock::from(from.addr());
        let ttl = hdr.ttl.saturating_sub(1);
        let field = comm.field;
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        self.io.send(now, dst, seal(he, None, false), |b| {
            relay(msg, sender, ttl, &field, b)
        })?;
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
            from, key, he: ctx, ..
        } = *inb;
        let now_stamp = now.he_stamp();
        let header = Header::from_supernode(key);
        if q.is_ping() {
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
        let comm = sender_community(&mut self.communities, now, inb, q.src_mac, true)?;
        let target = comm
            .edges
            .get(&q.target_mac)
            .ok_or(DropReason::UnknownDestination)?;
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
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        self.io
            .send(now, from, seal(he, None, false), |b| info.emit(&header, b))
    }
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
