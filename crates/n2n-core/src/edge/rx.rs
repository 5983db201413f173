//! Network → edge: filtering, PACKET decoding and the control messages
//! (behaviour.md §2, §4, §5.3, §5.4). Each message goes to the sub-machine
//! that owns what it changes; this file checks who sent it (supernode or
//! peer, header-encryption stamp) first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use n2n_proto::auth::ReceivedTrailer;
use n2n_proto::he::{self, HeKeyKind};
use n2n_proto::transform::AeadNonce;
use n2n_proto::types::{Mac, PeerSock, cookie};
use n2n_proto::wire::{
    Flags, HeaderView, Message, MsgType, PacketView, PeerInfo, Register, RegisterAck,
    RegisterSuperAck, RegisterSuperNak,
};

use super::Edge;
use super::datapath::{self, DataShard, HeOpened, Opened};
use super::frame;
use super::peers::Seen;
use super::registration::Acked;
use super::rules;
use super::stats::DropReason;
use crate::Now;

/// Whose HE `prev` stamp a message is checked against.
#[derive(Clone, Copy)]
enum StampOwner {
    Supernode(usize),
    Peer(Mac),
}

impl StampOwner {
    fn of(sn_idx: Option<usize>, mac: Mac) -> Self {
        match sn_idx {
            Some(i) => Self::Supernode(i),
            None => Self::Peer(mac),
        }
    }
}

/// How a datagram arrived.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    /// Its source.
    from: SocketAddr,
    /// FROM_SUPERNODE from supernode `i` of our list.
    sn_idx: Option<usize>,
    /// Its header-encryption stamp (with `-H`).
    stamp: Option<u64>,
    /// User/password: the trailer of a message under the static keys.
    trailer: Option<ReceivedTrailer>,
    /// On the local-discovery multicast socket.
    via_multicast: bool,
}

/// A socket field that can stand for the sender: present and not 127.0.0.1.
fn valid_peer_sock(s: Option<PeerSock>) -> Option<SocketAddr> {
    let s = s?.addr();
    match s.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST || ip.is_unspecified() => None,
        _ => Some(s),
    }
}

impl Edge {
    /// A datagram from the main socket (`via_multicast = false`) or the
    /// local-discovery multicast socket. Returns the length of a frame
    /// written to `out` (≥ [`MAX_DATAGRAM`](crate::MAX_DATAGRAM) bytes) for
    /// the TAP; control messages are handled here and their answers queued
    /// to `poll_transmit`. `datagram` is modified (header decryption).
    ///
    /// = [`DataShard::open`] then [`finish`](Self::finish) on the edge's
    /// own shard.
    pub fn decapsulate(
        &mut self,
        now: Now,
        from: SocketAddr,
        datagram: &mut [u8],
        via_multicast: bool,
        out: &mut [u8],
    ) -> Option<usize> {
        self.data.sync(&mut self.ctx);
        let opened = self.data.open(from, datagram, via_multicast, out);
        self.finish_with(now, opened, datagram, out, None)
    }

    /// The locked half of receiving a datagram, after
    /// [`DataShard::open`] on `shard` (a shard of this edge) with the same
    /// `datagram` and `out`: every check, in the order
    /// [`decapsulate`](Self::decapsulate) makes them (the payload decoded by
    /// `open` is looked at only where `decapsulate` would decode it, so the
    /// same drop is counted for every input), the peer tables, replay
    /// window, counters, bridging and `-R` rules; control messages are
    /// handled and their answers queued. Returns the length of the frame in
    /// `out` for the TAP.
    ///
    /// Also brings `shard` up to date (header keys, byte counters); a
    /// datagram `shard` could not decrypt with header keys that have
    /// changed since is opened again with the new ones.
    pub fn finish(
        &mut self,
        now: Now,
        opened: Opened,
        datagram: &mut [u8],
        out: &mut [u8],
        shard: &mut DataShard,
    ) -> Option<usize> {
        self.finish_with(now, opened, datagram, out, Some(shard))
    }

    /// [`finish`](Self::finish) with `shard` (`None`: the edge's own).
    fn finish_with(
        &mut self,
        now: Now,
        mut opened: Opened,
        datagram: &mut [u8],
        out: &mut [u8],
        shard: Option<&mut DataShard>,
    ) -> Option<usize> {
        let was_running = self.reg.is_running();
        let shard = match shard {
            Some(s) => s,
            None => &mut self.data,
        };
        shard.sync(&mut self.ctx);
        if opened.generation != shard.generation()
            && matches!(opened.header, Err(DropReason::HeDecryptFailed))
        {
            // Opened with header keys that have changed since (the
            // user/password dynamic key arrived): once more with the
            // current ones. A failed header decryption leaves the datagram
            // as it was.
            opened = shard.open(opened.from, datagram, opened.via_multicast, out);
        }
        let r = match self.finish_opened(now, opened, datagram, out) {
            Ok(n) => n,
            Err(r) => {
                self.ctx.stats.drop(r);
                None
            }
        };
        if !was_running && self.reg.is_running() {
            // Bootstrap done (PONG or auto-IP answer): the purge starts.
            self.peers.start_purge(now);
        }
        self.peers.check_known_socks();
        r
    }

    fn finish_opened(
        &mut self,
        now: Now,
        opened: Opened,
        datagram: &mut [u8],
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        if self.stopped {
            return Err(DropReason::Stopped);
        }
        let HeOpened {
            len: msg_len,
            stamp,
            kind,
            trailer,
        } = opened.header?;
        let msg = datagram.get_mut(..msg_len).ok_or(DropReason::Malformed)?;
        let hv = HeaderView::new_checked(&*msg).map_err(|_| DropReason::Malformed)?;
        let msg_type = hv.msg_type().map_err(|_| DropReason::Malformed)?;
        if self.ctx.auth.is_some()
            && kind == HeKeyKind::Static
            && !matches!(
                msg_type,
                MsgType::RegisterSuperAck | MsgType::RegisterSuperNak
            )
        {
            // crypto.md §4.6: only registration answers use the static keys.
            return Err(DropReason::StaticKeyMisuse);
        }
        let sn_idx = if hv.flags().contains(Flags::FROM_SUPERNODE) {
            Some(
                self.reg
                    .index_by_addr(opened.from)
                    .ok_or(DropReason::FromUnknownSupernode)?,
            )
        } else {
            None
        };
        if hv.community_field() != self.ctx.cfg.community.field().as_slice() {
            return Err(DropReason::WrongCommunity);
        }
        let a = Arrival {
            from: opened.from,
            sn_idx,
            stamp,
            trailer,
            via_multicast: opened.via_multicast,
        };
        if msg_type == MsgType::Packet {
            return self.rx_packet(now, a, msg, opened.payload, out);
        }
        let (_, m) = n2n_proto::wire::decode(msg).map_err(|_| DropReason::Malformed)?;
        match m {
            Message::Register(r) => self.rx_register(now, a, &r),
            Message::RegisterAck(ack) => self.rx_register_ack(now, a, &ack),
            Message::RegisterSuperAck(ack) => self.rx_ack(now, a, &ack),
            Message::RegisterSuperNak(n) => self.rx_nak(now, a, &n),
            Message::PeerInfo(p) => self.rx_peer_info(now, a, &p),
            Message::ReRegisterSuper => {
                self.reg
                    .on_re_register(now, &mut self.ctx, a.sn_idx, a.stamp)
            }
            Message::Packet(_)
            | Message::RegisterSuper(_)
            | Message::UnregisterSuper(_)
            | Message::QueryPeer(_) => Err(DropReason::UnexpectedMessage),
        }
        .map(|()| None)
    }

    fn check_stamp(
        &mut self,
        now: Now,
        stamp: Option<u64>,
        owner: StampOwner,
        jitter: bool,
    ) -> Result<(), DropReason> {
        let Some(stamp) = stamp else { return Ok(()) };
        let prev = match owner {
            StampOwner::Supernode(i) => self.reg.stamp_prev_mut(i),
            StampOwner::Peer(mac) => self.peers.stamp_prev_mut(mac),
        };
        he::verify_stamp(stamp, now.he_stamp(), prev, jitter)
            .map_err(|_| DropReason::HeStampRejected)
    }

    // ------------------------------------------------------------------
    // PACKET

    /// `payload`: what [`DataShard::open`] decoded into `out`.
    fn rx_packet(
        &mut self,
        now: Now,
        a: Arrival,
        msg: &mut [u8],
        payload: Option<Result<(usize, Option<AeadNonce>), DropReason>>,
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        if self.reg.last_sup().is_none() {
            return Err(DropReason::NotRegistered);
        }
        let bytes = msg.len() as u64;
        let view = PacketView::new_checked(&*msg).map_err(|_| DropReason::Malformed)?;
        let src_mac = view.src_mac();
        let pkt_dst = view.dst_mac();
        self.check_stamp(now, a.stamp, StampOwner::of(a.sn_idx, src_mac), true)?;
        if src_mac == self.ctx.me.mac {
            return Err(DropReason::OwnPacket);
        }
        let from_sn = a.sn_idx.is_some();
        let sender = Seen {
            mac: src_mac,
            cookie: if from_sn {
                cookie::FORWARDED
            } else {
                cookie::REGULAR
            },
            dev: None,
            sock: valid_peer_sock(view.sock()).unwrap_or(a.from),
            from_sn,
            via_multicast: a.via_multicast,
        };
        // C updates its peer tables before looking at the payload. With
        // our authenticated transforms only authentic packets may do that.
        let aead = self.data.is_aead();
        if !aead {
            self.packet_sender_seen(now, &sender, pkt_dst, bytes);
        }
        // `open` decodes every PACKET that gets this far: `None` cannot
        // happen (a shard of another edge).
        let (n, nonce) = payload.unwrap_or(Err(DropReason::Malformed))?;
        if let Some(nonce) = nonce {
            self.peers.check_replay(now, src_mac, nonce)?;
        }
        if aead {
            self.packet_sender_seen(now, &sender, pkt_dst, bytes);
        }
        self.ctx.stats.transop_rx += 1;
        let f = out.get(..n).ok_or(DropReason::FrameTooLarge)?;
        let cfg = &self.ctx.cfg;
        datapath::check_incoming(cfg, &self.ctx.me, f)?;
        if cfg.routing {
            let inner_src = frame::src_mac(f);
            if inner_src != src_mac && !inner_src.is_multi_or_broadcast() {
                self.peers.learn_bridged(now, inner_src, src_mac);
            }
        }
        if !rules::allows(&cfg.traffic_rules, f) {
            return Err(DropReason::TrafficRule);
        }
        Ok(Some(n))
    }

    /// Peer-table and counter updates for a received PACKET (behaviour.md
    /// §5.3).
    fn packet_sender_seen(&mut self, now: Now, s: &Seen, pkt_dst: Mac, bytes: u64) {
        let sn = self.reg.current_supernode();
        self.peers.packet_seen(now, &mut self.ctx, s, sn);
        if s.from_sn {
            self.ctx.stats.super_rx_bytes += bytes;
        } else {
            self.ctx.stats.p2p_rx_bytes += bytes;
        }
        if s.from_sn {
            // C refreshes last_sup with every PACKET the supernode relays.
            self.reg.supernode_seen(now);
            self.ctx.stats.super_rx += 1;
            if pkt_dst.is_multi_or_broadcast() {
                self.ctx.stats.super_broadcast_rx += 1;
            }
        }
    }

    // ------------------------------------------------------------------
    // REGISTER / REGISTER_ACK / PEER_INFO: the peer tables

    fn rx_register(&mut self, now: Now, a: Arrival, reg: &Register) -> Result<(), DropReason> {
        let via_mcast = a.via_multicast && reg.dst_mac.is_null();
        if via_mcast && reg.src_mac == self.ctx.me.mac {
            return Err(DropReason::RegisterNotForUs);
        }
        if !via_mcast && reg.dst_mac != self.ctx.me.mac {
            return Err(DropReason::RegisterNotForUs);
        }
        self.check_stamp(
            now,
            a.stamp,
            StampOwner::of(a.sn_idx, reg.src_mac),
            via_mcast,
        )?;
        let seen = Seen {
            mac: reg.src_mac,
            cookie: reg.cookie,
            dev: Some((reg.dev_addr, reg.dev_desc)),
            sock: valid_peer_sock(reg.sock).unwrap_or(a.from),
            from_sn: a.sn_idx.is_some(),
            via_multicast: via_mcast,
        };
        let sn = self.reg.current_supernode();
        self.peers.on_register(now, &mut self.ctx, reg, &seen, sn);
        Ok(())
    }

    fn rx_register_ack(
        &mut self,
        now: Now,
        a: Arrival,
        ack: &RegisterAck,
    ) -> Result<(), DropReason> {
        self.check_stamp(now, a.stamp, StampOwner::of(a.sn_idx, ack.src_mac), false)?;
        if !self.ctx.p2p() {
            return Err(DropReason::UnexpectedMessage);
        }
        self.peers.on_register_ack(now, &mut self.ctx, a.from, ack)
    }

    /// PEER_INFO: a PONG (registration) or the answer to a QUERY_PEER
    /// (peer tables).
    fn rx_peer_info(&mut self, now: Now, a: Arrival, pi: &PeerInfo) -> Result<(), DropReason> {
        let Some(idx) = a.sn_idx else {
            return Err(DropReason::BadPeerInfo);
        };
        self.check_stamp(now, a.stamp, StampOwner::Supernode(idx), true)?;
        if valid_peer_sock(Some(pi.sock)).is_none() {
            return Err(DropReason::BadPeerInfo);
        }
        if pi.is_pong() {
            return self
                .reg
                .on_pong(now, &mut self.ctx, a.from, pi, &self.peers);
        }
        let preferred = valid_peer_sock(pi.preferred_sock);
        self.peers.on_peer_info(now, &mut self.ctx, pi, preferred)
    }

    // ------------------------------------------------------------------
    // REGISTER_SUPER_ACK / NAK: the registration

    /// The supernode a REGISTER_SUPER_ACK/NAK is from: FROM_SUPERNODE or
    /// not, it must come from one of ours.
    fn answering_supernode(&self, a: &Arrival) -> Result<usize, DropReason> {
        a.sn_idx
            .or_else(|| self.reg.index_by_addr(a.from))
            .ok_or(DropReason::FromUnknownSupernode)
    }

    fn rx_ack(
        &mut self,
        now: Now,
        a: Arrival,
        ack: &RegisterSuperAck<'_>,
    ) -> Result<(), DropReason> {
        let idx = self.answering_supernode(&a)?;
        self.check_stamp(now, a.stamp, StampOwner::Supernode(idx), false)?;
        // User/password: the supernode's trailer and its answer to our last
        // challenge, which hands over the dynamic key (crypto.md §5.5).
        let dynamic_key = match &self.ctx.auth {
            Some(ua) => Some(ua.open_ack(a.trailer, &ack.auth)?),
            None => None,
        };
        let acked = self.reg.on_ack(now, &mut self.ctx, a.from, idx, ack)?;
        if let Some(d) = dynamic_key {
            self.ctx.set_dynamic_key(&d);
        }
        if acked == (Acked::Registered { first: true }) {
            self.send_gratuitous_arps(now);
        }
        Ok(())
    }

    fn rx_nak(&mut self, now: Now, a: Arrival, nak: &RegisterSuperNak) -> Result<(), DropReason> {
        let idx = self.answering_supernode(&a)?;
        self.check_stamp(now, a.stamp, StampOwner::Supernode(idx), false)?;
        self.reg.on_nak(&mut self.ctx, a.from, nak)
    }
}
