//! Network → edge: filtering, PACKET decoding and the control messages
//! (behaviour.md §2, §4, §5.3, §5.4).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_proto::he::{self, HeKeyKind};
use n2n_proto::transform::ReplayWindow;
use n2n_proto::types::{DevAddr, DevDesc, Mac, PeerSock, cookie};
use n2n_proto::wire::{
    Flags, HeaderView, Message, MsgType, PacketView, PeerInfo, RegisterAck, RegisterSuperAck,
    RegisterSuperNak,
};

use super::payload::PacketAad;
use super::peers::{Supernode, find_by_sock};
use super::{
    DropReason, Edge, Event, PENDING_COOKIE_AGE, PeerRemoval, Phase, Selection, SnWait, frame,
    rules,
};
use crate::time::Now;

/// Whose HE `prev` stamp a message is checked against.
#[derive(Clone, Copy)]
enum StampOwner {
    Supernode(usize),
    Peer(Mac),
}

/// Who sent a PACKET and how it arrived.
struct PacketSender {
    mac: Mac,
    dst: Mac,
    orig: SocketAddr,
    from_sn: bool,
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
    pub fn decapsulate(
        &mut self,
        now: Now,
        from: SocketAddr,
        datagram: &mut [u8],
        via_multicast: bool,
        out: &mut [u8],
    ) -> Option<usize> {
        let r = match self.decapsulate_inner(now, from, datagram, via_multicast, out) {
            Ok(n) => n,
            Err(r) => {
                self.stats.drop(r);
                None
            }
        };
        self.check_known_socks();
        r
    }

    fn decapsulate_inner(
        &mut self,
        now: Now,
        from: SocketAddr,
        datagram: &mut [u8],
        via_multicast: bool,
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        if self.stopped {
            return Err(DropReason::Stopped);
        }
        let (msg_len, stamp) = match &self.he {
            Some(he) => match he.decrypt(datagram) {
                Ok((_, d)) => (d.len, Some(d.stamp)),
                Err(_) => return Err(DropReason::HeDecryptFailed),
            },
            None => (datagram.len(), None),
        };
        let msg = datagram.get_mut(..msg_len).ok_or(DropReason::Malformed)?;
        let hv = HeaderView::new_checked(&*msg).map_err(|_| DropReason::Malformed)?;
        let flags = hv.flags();
        let from_sn = flags.contains(Flags::FROM_SUPERNODE);
        let sn_idx = if from_sn {
            Some(
                self.sn_index_by_addr(from)
                    .ok_or(DropReason::FromUnknownSupernode)?,
            )
        } else {
            None
        };
        if hv.community_field() != self.cfg.community.field().as_slice() {
            return Err(DropReason::WrongCommunity);
        }
        let ty = hv.msg_type().map_err(|_| DropReason::Malformed)?;
        if ty == MsgType::Packet {
            return self.rx_packet(now, from, msg, sn_idx, stamp, via_multicast, out);
        }
        let (_, m) = n2n_proto::wire::decode(msg).map_err(|_| DropReason::Malformed)?;
        match m {
            Message::Register(r) => self.rx_register(now, from, &r, sn_idx, stamp, via_multicast),
            Message::RegisterAck(a) => self.rx_register_ack(now, from, &a, sn_idx, stamp),
            Message::RegisterSuperAck(a) => self.rx_ack(now, from, &a, sn_idx, stamp),
            Message::RegisterSuperNak(n) => self.rx_nak(now, from, &n, sn_idx, stamp),
            Message::PeerInfo(p) => self.rx_peer_info(now, from, &p, sn_idx, stamp),
            Message::ReRegisterSuper => self.rx_re_register(now, sn_idx, stamp),
            Message::Packet(_)
            | Message::RegisterSuper(_)
            | Message::UnregisterSuper(_)
            | Message::QueryPeer(_) => Err(DropReason::UnexpectedMessage),
        }
        .map(|()| None)
    }

    pub(super) fn sn_index_by_addr(&self, from: SocketAddr) -> Option<usize> {
        self.sns.iter().position(|s| s.addr == Some(from))
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
            StampOwner::Supernode(i) => self.sns.get_mut(i).map(|s| &mut s.he_prev),
            StampOwner::Peer(mac) => match self.known.get_mut(&mac) {
                Some(p) => Some(&mut p.he_prev),
                None => self.pending.get_mut(&mac).map(|p| &mut p.he_prev),
            },
        };
        he::verify_stamp(stamp, now.he_stamp(), prev, jitter)
            .map_err(|_| DropReason::HeStampRejected)
    }

    fn owner(sn_idx: Option<usize>, mac: Mac) -> StampOwner {
        match sn_idx {
            Some(i) => StampOwner::Supernode(i),
            None => StampOwner::Peer(mac),
        }
    }

    // ------------------------------------------------------------------
    // PACKET

    #[allow(clippy::too_many_arguments)]
    fn rx_packet(
        &mut self,
        now: Now,
        from: SocketAddr,
        msg: &mut [u8],
        sn_idx: Option<usize>,
        stamp: Option<u64>,
        via_multicast: bool,
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        if self.last_sup.is_none() {
            return Err(DropReason::NotRegistered);
        }
        let view = PacketView::new_checked(&*msg).map_err(|_| DropReason::Malformed)?;
        let src_mac = view.src_mac();
        let pkt_dst = view.dst_mac();
        self.check_stamp(now, stamp, Self::owner(sn_idx, src_mac), true)?;
        if src_mac == self.mac {
            return Err(DropReason::OwnPacket);
        }
        let sender = PacketSender {
            mac: src_mac,
            dst: pkt_dst,
            orig: valid_peer_sock(view.sock()).unwrap_or(from),
            from_sn: sn_idx.is_some(),
            via_multicast,
        };
        // C updates its peer tables before looking at the payload. With
        // our authenticated transforms only authentic packets may do that.
        let aead = self.payload.is_aead();
        if !aead {
            self.packet_sender_seen(now, &sender);
        }
        if view.transform() != self.payload.transform().to_wire() {
            return Err(DropReason::WrongTransform);
        }
        let aad = PacketAad {
            community: self.cfg.community.field(),
            src_mac: src_mac.0,
            dst_mac: pkt_dst.0,
        };
        let (n, nonce) = self.payload.decode(
            view.compression(),
            view.payload(),
            &aad,
            &mut self.scratch,
            out,
        )?;
        if let Some(nonce) = nonce {
            let w = self
                .replay
                .entry(src_mac)
                .or_insert_with(|| (ReplayWindow::new(), now.mono));
            w.0.check_and_update(nonce)
                .map_err(|_| DropReason::PayloadReplay)?;
            w.1 = now.mono;
        }
        if aead {
            self.packet_sender_seen(now, &sender);
        }
        self.stats.transop_rx += 1;
        let f = out.get(..n).ok_or(DropReason::FrameTooLarge)?;
        if n < frame::ETH_HEADER_LEN {
            return Err(DropReason::FrameTooShort);
        }
        let inner_dst = frame::dst_mac(f);
        if inner_dst.is_multicast() && !self.cfg.multicast {
            return Err(DropReason::MulticastDisabled);
        }
        if !self.cfg.routing && !inner_dst.is_multi_or_broadcast() && inner_dst != self.mac {
            // C writes it to the TAP, whose kernel side discards it (the
            // TAP is not promiscuous without bridging). Dropping it here
            // also stops the garbage a wrong key produces with the C
            // transforms, which have no integrity check.
            return Err(DropReason::ForeignDestinationMac);
        }
        if !self.cfg.routing
            && !inner_dst.is_multi_or_broadcast()
            && let Some(ip) = frame::ipv4_dst(f)
            && ip != self.dev_addr.ip
        {
            return Err(DropReason::ForeignDestinationIp);
        }
        if self.cfg.routing {
            let inner_src = frame::src_mac(f);
            if inner_src != src_mac && !inner_src.is_multi_or_broadcast() {
                match self.hosts.get_mut(&inner_src) {
                    Some(h) => {
                        h.edge = src_mac;
                        h.last_seen = now.mono;
                    }
                    None => {
                        self.hosts.insert(
                            inner_src,
                            super::BridgedHost {
                                edge: src_mac,
                                last_seen: now.mono,
                            },
                        );
                    }
                }
            }
        }
        if !rules::allows(&self.cfg.traffic_rules, f) {
            return Err(DropReason::TrafficRule);
        }
        Ok(Some(n))
    }

    /// Peer-table and counter updates for a received PACKET (behaviour.md
    /// §5.3).
    fn packet_sender_seen(&mut self, now: Now, s: &PacketSender) {
        if !s.from_sn && !self.pending.is_empty() {
            // Direct traffic: stop trying to reach it through pending.
            self.pending.remove(&s.mac);
        }
        let c = if s.from_sn {
            cookie::FORWARDED
        } else {
            cookie::REGULAR
        };
        self.peer_seen(now, s.mac, c, None, s.orig, s.from_sn, s.via_multicast);
        if s.from_sn {
            // C refreshes last_sup with every PACKET the supernode relays.
            self.last_sup = Some(now.mono);
            self.stats.super_rx += 1;
            if s.dst.is_multi_or_broadcast() {
                self.stats.super_broadcast_rx += 1;
            }
        } else {
            self.stats.p2p_rx += 1;
            self.last_p2p_rx = Some(now.mono);
        }
    }

    // ------------------------------------------------------------------
    // Peer bookkeeping (behaviour.md §5.4)

    #[allow(clippy::too_many_arguments)]
    fn peer_seen(
        &mut self,
        now: Now,
        mac: Mac,
        cookie: u32,
        dev: Option<(DevAddr, DevDesc)>,
        sock: SocketAddr,
        from_sn: bool,
        via_multicast: bool,
    ) {
        // One lookup for the usual case (a known peer).
        let p = match self.known.get_mut(&mac) {
            Some(p) => p,
            None => {
                if let Some(old) = self.known_by_sock(sock)
                    && let Some(mut p) = self.known_remove(old)
                {
                    p.last_cookie = 0;
                    self.known_insert(mac, p);
                }
                let Some(p) = self.known.get_mut(&mac) else {
                    self.register_with_new_peer(now, mac, dev, sock, from_sn, via_multicast);
                    return;
                };
                p
            }
        };
        if !from_sn {
            p.last_p2p = Some(now.mono);
        }
        if via_multicast {
            p.local = true;
        }
        // aged = `now − last_seen ≥ 1 s`, without the Instant subtraction.
        let aged = || {
            p.last_seen
                .checked_add(Duration::from_secs(1))
                .is_some_and(|t| now.mono >= t)
        };
        if !(cookie > p.last_cookie || aged()) {
            return;
        }
        if sock.ip().is_unspecified() || mac.is_multi_or_broadcast() {
            return;
        }
        if p.sock == Some(sock) {
            p.last_seen = now.mono;
        } else if !from_sn {
            // The peer moved.
            self.remove_peer(mac, true, PeerRemoval::Moved);
            self.register_with_new_peer(now, mac, dev, sock, from_sn, via_multicast);
        }
    }

    fn register_with_new_peer(
        &mut self,
        now: Now,
        mac: Mac,
        dev: Option<(DevAddr, DevDesc)>,
        sock: SocketAddr,
        from_sn: bool,
        via_multicast: bool,
    ) {
        if mac.is_multi_or_broadcast() || mac.is_null() {
            return;
        }
        if let Some(p) = self.pending.get_mut(&mac) {
            p.sock = Some(sock);
        } else {
            let mut p = self.new_peer(Some(sock), now);
            p.local = via_multicast;
            self.pending.insert(mac, p);
            self.push_event(Event::PeerAdded {
                mac,
                sock: Some(sock),
                direct: false,
            });
            if from_sn {
                match self.cfg.register_ttl {
                    1 => {}
                    0 => self.send_register(now, sock, mac, cookie::REGULAR),
                    ttl => {
                        self.tx_ttl = Some(ttl);
                        for k in 0..16u16 {
                            let mut s = sock;
                            s.set_port(sock.port().wrapping_add(k));
                            self.send_register(now, s, mac, cookie::PORT);
                        }
                        self.tx_ttl = None;
                    }
                }
                if self.p2p() {
                    self.send_register_via_sn(now, mac);
                }
            } else {
                self.send_register(now, sock, mac, cookie::REGULAR);
            }
            self.send_multicast_register(now);
        }
        if let Some(p) = self.pending.get_mut(&mac) {
            p.last_seen = now.mono;
            if let Some((a, d)) = dev {
                p.dev_addr = a;
                p.desc = d;
            }
        }
    }

    // ------------------------------------------------------------------
    // REGISTER / REGISTER_ACK

    fn rx_register(
        &mut self,
        now: Now,
        from: SocketAddr,
        reg: &n2n_proto::wire::Register,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
        via_multicast: bool,
    ) -> Result<(), DropReason> {
        let via_mcast = via_multicast && reg.dst_mac.is_null();
        if via_mcast && reg.src_mac == self.mac {
            return Err(DropReason::RegisterNotForUs);
        }
        if !via_mcast && reg.dst_mac != self.mac {
            return Err(DropReason::RegisterNotForUs);
        }
        self.check_stamp(now, stamp, Self::owner(sn_idx, reg.src_mac), via_mcast)?;
        let from_sn = sn_idx.is_some();
        let orig = valid_peer_sock(reg.sock).unwrap_or(from);
        if !from_sn {
            self.pending.remove(&reg.src_mac);
            if self.p2p() {
                let ack = RegisterAck {
                    cookie: reg.cookie,
                    dst_mac: reg.src_mac,
                    src_mac: self.mac,
                    sock: None,
                };
                self.queue_msg(now, orig, &Message::RegisterAck(ack), HeKeyKind::Dynamic);
            }
        }
        self.peer_seen(
            now,
            reg.src_mac,
            reg.cookie,
            Some((reg.dev_addr, reg.dev_desc)),
            orig,
            from_sn,
            via_mcast,
        );
        Ok(())
    }

    fn rx_register_ack(
        &mut self,
        now: Now,
        from: SocketAddr,
        ack: &RegisterAck,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
    ) -> Result<(), DropReason> {
        self.check_stamp(now, stamp, Self::owner(sn_idx, ack.src_mac), false)?;
        if !self.p2p() {
            return Err(DropReason::UnexpectedMessage);
        }
        let key = if self.pending.contains_key(&ack.src_mac) {
            ack.src_mac
        } else if let Some(k) = find_by_sock(&self.pending, from) {
            k
        } else if self.known.contains_key(&ack.src_mac) {
            // ACKs for already known peers change nothing.
            return Ok(());
        } else {
            return Err(DropReason::AckFromUnknownPeer);
        };
        let Some(mut p) = self.pending.remove(&key) else {
            return Err(DropReason::AckFromUnknownPeer);
        };
        let mac = ack.src_mac;
        if let Some(old) = self.known_by_sock(from)
            && let Some(mut k) = self.known_remove(old)
        {
            // An entry already uses this path: reuse it under the new MAC.
            k.last_cookie = 0;
            k.last_p2p = Some(now.mono);
            k.last_seen = now.mono;
            if old != mac {
                self.push_event(Event::PeerRemoved {
                    mac: old,
                    sock: k.sock,
                    direct: true,
                    reason: PeerRemoval::Replaced,
                });
                self.push_event(Event::PeerAdded {
                    mac,
                    sock: k.sock,
                    direct: true,
                });
            }
            self.known_insert(mac, k);
            return Ok(());
        }
        if ack.cookie > p.last_cookie
            || now.mono.saturating_duration_since(p.last_seen) > PENDING_COOKIE_AGE
        {
            p.sock = Some(from);
            p.last_cookie = ack.cookie;
        }
        p.last_p2p = Some(now.mono);
        p.last_seen = now.mono;
        let sock = p.sock;
        if let Some(old) = self.known_insert(mac, p) {
            self.push_event(Event::PeerRemoved {
                mac,
                sock: old.sock,
                direct: true,
                reason: PeerRemoval::Replaced,
            });
        }
        self.push_event(Event::PeerAdded {
            mac,
            sock,
            direct: true,
        });
        Ok(())
    }

    // ------------------------------------------------------------------
    // PEER_INFO (answers and PONGs)

    fn rx_peer_info(
        &mut self,
        now: Now,
        from: SocketAddr,
        pi: &PeerInfo,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
    ) -> Result<(), DropReason> {
        let Some(idx) = sn_idx else {
            return Err(DropReason::BadPeerInfo);
        };
        self.check_stamp(now, stamp, StampOwner::Supernode(idx), true)?;
        if valid_peer_sock(Some(pi.sock)).is_none() {
            return Err(DropReason::BadPeerInfo);
        }
        if pi.is_pong() {
            return self.rx_pong(now, from, pi);
        }
        let pub_sock = pi.sock.addr();
        if let Some(p) = self.pending.get_mut(&pi.mac) {
            p.sock = Some(pub_sock);
        } else if !self.known.contains_key(&pi.mac) {
            return Err(DropReason::UnsolicitedPeerInfo);
        }
        if let Some(pref) = valid_peer_sock(pi.preferred_sock) {
            self.send_register(now, pref, pi.mac, cookie::LOCAL);
        }
        self.send_register(now, pub_sock, pi.mac, cookie::REGULAR);
        Ok(())
    }

    fn rx_pong(&mut self, now: Now, from: SocketAddr, pi: &PeerInfo) -> Result<(), DropReason> {
        let idx = self
            .sns
            .iter()
            .position(|s| !s.mac.is_null() && s.mac == pi.src_mac)
            .or_else(|| self.sn_index_by_addr(from))
            .ok_or(DropReason::UnknownPong)?;
        let peers = (self.known.len() + self.pending.len()) as u64;
        let he_factor = if self.he.is_some() { 2 } else { 1 };
        let common = self.pending.len() as u64 * he_factor / (self.sns.len().max(1) as u64);
        let cur = self.cur;
        let selection = self.cfg.selection;
        let Some(sn) = self.sns.get_mut(idx) else {
            return Err(DropReason::UnknownPong);
        };
        sn.last_seen = Some(now.mono);
        sn.uptime = pi.uptime;
        sn.version = pi.version;
        if sn.mac.is_null() {
            sn.mac = pi.src_mac;
        }
        sn.criterion = match selection {
            Selection::Load => {
                let mut c = u64::from(pi.load.swap_bytes()) + common;
                if idx == cur {
                    c = c * peers / (peers + 1);
                }
                c
            }
            Selection::Rtt => sn.ping_sent.map_or(0, |t| {
                (now.mono.saturating_duration_since(t).as_micros() / 1024) as u64
            }),
            Selection::Mac => {
                let m = sn.mac.0;
                u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
            }
        };
        if matches!(self.phase, Phase::Pinging { .. }) {
            self.finish_pinging(now);
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // REGISTER_SUPER_ACK / NAK

    fn rx_ack(
        &mut self,
        now: Now,
        from: SocketAddr,
        ack: &RegisterSuperAck<'_>,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
    ) -> Result<(), DropReason> {
        let idx = sn_idx
            .or_else(|| self.sn_index_by_addr(from))
            .ok_or(DropReason::FromUnknownSupernode)?;
        self.check_stamp(now, stamp, StampOwner::Supernode(idx), false)?;
        match self.phase {
            Phase::Pinging { .. } => Err(DropReason::UnsolicitedAck),
            Phase::AddrRequest { cookie, .. } => {
                if cookie != Some(ack.cookie) {
                    return Err(DropReason::StaleCookie);
                }
                self.learn_sn_mac(idx, ack.src_mac);
                if idx != self.cur {
                    let old = self.cur;
                    self.cur = idx;
                    self.switch_event(old, super::SwitchReason::Bootstrap);
                }
                if !ack.dev_addr.is_unspecified() {
                    self.dev_addr = ack.dev_addr;
                    self.push_event(Event::AssignAddress(ack.dev_addr));
                }
                self.enter_running(now);
                Ok(())
            }
            Phase::Running => {
                if self.sn_wait == SnWait::Registered {
                    return Err(DropReason::UnsolicitedAck);
                }
                if ack.cookie != self.reg_cookie {
                    return Err(DropReason::StaleCookie);
                }
                self.sn_wait = SnWait::Registered;
                self.attempts = super::ATTEMPTS;
                self.learn_sn_mac(idx, ack.src_mac);
                self.learn_supernodes(now, ack);
                let first = self.last_sup.is_none();
                self.last_sup = Some(now.mono);
                if !self.sn_confirmed {
                    self.sn_confirmed = true;
                    self.push_event(Event::Registered {
                        supernode: from,
                        first,
                    });
                }
                if first {
                    self.send_gratuitous_arps(now);
                }
                Ok(())
            }
        }
    }

    fn learn_sn_mac(&mut self, idx: usize, mac: Mac) {
        if let Some(sn) = self.sns.get_mut(idx)
            && sn.mac.is_null()
        {
            sn.mac = mac;
        }
    }

    fn learn_supernodes(&mut self, now: Now, ack: &RegisterSuperAck<'_>) {
        for e in ack.sn_list.iter() {
            let Some(sock) = e.sock() else { continue };
            let addr = sock.addr();
            let known = self
                .sns
                .iter()
                .any(|s| s.addr == Some(addr) || (!e.mac.is_null() && s.mac == e.mac));
            if known || e.mac == self.mac {
                continue;
            }
            let prev = he::initial_prev(now.he_stamp());
            self.sns
                .push(Supernode::new(None, Some(addr), e.mac, true, prev));
            self.push_event(Event::SupernodeLearned {
                sock: addr,
                mac: e.mac,
            });
        }
    }

    fn rx_nak(
        &mut self,
        now: Now,
        from: SocketAddr,
        nak: &RegisterSuperNak,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
    ) -> Result<(), DropReason> {
        let idx = sn_idx
            .or_else(|| self.sn_index_by_addr(from))
            .ok_or(DropReason::FromUnknownSupernode)?;
        self.check_stamp(now, stamp, StampOwner::Supernode(idx), false)?;
        let expected = match self.phase {
            Phase::AddrRequest { cookie, .. } => cookie,
            Phase::Running if self.sn_wait == SnWait::Waiting => Some(self.reg_cookie),
            _ => None,
        };
        if expected != Some(nak.cookie) {
            return Err(DropReason::StaleCookie);
        }
        self.push_event(Event::RegistrationNak { supernode: from });
        Ok(())
    }
}
