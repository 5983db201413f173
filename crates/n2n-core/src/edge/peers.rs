//! The peer tables (behaviour.md §5, §6.3, §7): pending and known P2P
//! peers, the known table's socket index, bridged hosts, AEAD replay
//! windows, and their purge timer.
//!
//! [`Peers`] owns all of it. Timer: [`Peers::poll_timeout`] /
//! [`Peers::handle_timeout`] (the 30 s purge), armed once the registration
//! reaches its main loop ([`Peers::start_purge`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use n2n_proto::transform::{AeadNonce, ReplayWindow};
use n2n_proto::types::{DevAddr, DevDesc, Mac, cookie};
use n2n_proto::wire::{PeerInfo, Register, RegisterAck};

use super::ctx::Ctx;
use super::machash::{MacHashState, MacMap};
use super::stats::DropReason;
use super::{Event, PeerRemoval, PeerSnapshot};
use crate::Now;

const PURGE_INTERVAL: Duration = Duration::from_secs(30);
const PURGE_AGE: Duration = Duration::from_secs(60);
const BRIDGE_AGE: Duration = Duration::from_secs(300);
/// AEAD replay windows of silent senders are forgotten after this long.
const REPLAY_AGE: Duration = Duration::from_secs(600);
const PENDING_COOKIE_AGE: Duration = Duration::from_secs(15);

/// One pending or known P2P peer.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub sock: Option<SocketAddr>,
    pub last_seen: Instant,
    /// Last time something arrived directly (known peers; `None` = never).
    pub last_p2p: Option<Instant>,
    pub last_sent_query: Option<Instant>,
    pub last_cookie: u32,
    pub dev_addr: DevAddr,
    pub desc: DevDesc,
    pub local: bool,
    /// Header-encryption `prev` stamp.
    pub he_prev: u64,
}

impl Peer {
    fn new(sock: Option<SocketAddr>, now: Now) -> Self {
        Self {
            sock,
            last_seen: now.mono,
            last_p2p: None,
            last_sent_query: None,
            last_cookie: 0,
            dev_addr: DevAddr::UNSPECIFIED,
            desc: DevDesc::EMPTY,
            local: false,
            he_prev: n2n_proto::he::initial_prev(now.he_stamp()),
        }
    }
}

/// A MAC-keyed peer table.
pub(super) type PeerTable = MacMap<Peer>;

/// The MAC of the entry whose socket is `sock`, if any.
fn find_by_sock(t: &PeerTable, sock: SocketAddr) -> Option<Mac> {
    t.iter()
        .find(|(_, p)| p.sock == Some(sock))
        .map(|(m, _)| *m)
}

/// A host learnt behind another edge (bridging, behaviour.md §6.3).
#[derive(Debug, Clone, Copy)]
struct BridgedHost {
    edge: Mac,
    last_seen: Instant,
}

/// A peer was heard from (behaviour.md §5.4): who, how, from where.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub mac: Mac,
    /// The REGISTER cookie, or the PACKET class (`cookie::FORWARDED` /
    /// `cookie::REGULAR`).
    pub cookie: u32,
    /// TAP address and description from a REGISTER.
    pub dev: Option<(DevAddr, DevDesc)>,
    /// The peer's socket (the message's SOCKET field or its source).
    pub sock: SocketAddr,
    /// Relayed by the supernode.
    pub from_sn: bool,
    /// Arrived on the local-discovery multicast socket.
    pub via_multicast: bool,
}

/// The pending/known peers, bridged hosts and replay windows of one edge.
#[derive(Debug)]
pub(super) struct Peers {
    /// P2P path confirmed. Changed only by [`Self::known_insert`] /
    /// [`Self::known_remove`] (with the socket index).
    known: PeerTable,
    /// How many `known` entries use each socket: spares the linear
    /// [`find_by_sock`] scan for every PACKET from a MAC that is not known
    /// (relayed traffic). An entry's `sock` never changes in place.
    known_socks: HashMap<SocketAddr, u32>,
    /// Trying to reach.
    pending: PeerTable,
    hosts: MacMap<BridgedHost>,
    /// AEAD replay windows per sending MAC, with the last use.
    replay: MacMap<(ReplayWindow, Instant)>,
    /// Last PACKET received directly from a peer.
    last_p2p_rx: Option<Instant>,
    /// Next purge run (`None`: not armed yet).
    purge_at: Option<Instant>,
}

impl Peers {
    pub(super) fn new(hash: MacHashState) -> Self {
        Self {
            known: MacMap::with_hasher(hash),
            known_socks: HashMap::new(),
            pending: MacMap::with_hasher(hash),
            hosts: MacMap::with_hasher(hash),
            replay: MacMap::with_hasher(hash),
            last_p2p_rx: None,
            purge_at: None,
        }
    }

    // ------------------------------------------------------------------
    // Views

    pub(super) fn known(&self) -> &PeerTable {
        &self.known
    }

    pub(super) fn pending(&self) -> &PeerTable {
        &self.pending
    }

    pub(super) fn last_p2p_rx(&self) -> Option<Instant> {
        self.last_p2p_rx
    }

    /// Some known peer is not a local-discovery one.
    pub(super) fn has_remote_known(&self) -> bool {
        self.known.values().any(|p| !p.local)
    }

    /// Sockets of the known peers (broadcast while the supernode is lost).
    pub(super) fn known_socks(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.known.values().filter_map(|p| p.sock)
    }

    /// Known peers silent for more than `age`: (socket, MAC, last cookie).
    pub(super) fn silent_known(
        &self,
        now: Now,
        age: Duration,
    ) -> impl Iterator<Item = (SocketAddr, Mac, u32)> + '_ {
        self.known
            .iter()
            .filter(move |(_, p)| now.mono.saturating_duration_since(p.last_seen) > age)
            .filter_map(|(m, p)| p.sock.map(|s| (s, *m, p.last_cookie)))
    }

    /// Pending and known peers, known first, by MAC.
    pub(super) fn snapshots(&self) -> Vec<PeerSnapshot> {
        let snap = |(m, p): (&Mac, &Peer), direct| PeerSnapshot {
            mac: *m,
            sock: p.sock,
            direct,
            local: p.local,
            dev_addr: p.dev_addr,
            desc: p.desc,
        };
        let mut v: Vec<_> = self.known.iter().map(|e| snap(e, true)).collect();
        v.extend(self.pending.iter().map(|e| snap(e, false)));
        v.sort_by_key(|p| (!p.direct, p.mac));
        v
    }

    /// The header-encryption `prev` stamp of `mac` (known, else pending).
    pub(super) fn stamp_prev_mut(&mut self, mac: Mac) -> Option<&mut u64> {
        match self.known.get_mut(&mac) {
            Some(p) => Some(&mut p.he_prev),
            None => self.pending.get_mut(&mac).map(|p| &mut p.he_prev),
        }
    }

    // ------------------------------------------------------------------
    // Timer

    /// Arm the purge timer (the registration entered its main loop).
    pub(super) fn start_purge(&mut self, now: Now) {
        self.purge_at = Some(now.mono + PURGE_INTERVAL);
    }

    /// The next purge run, once armed.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.purge_at
    }

    /// Purge pending/known peers and bridged hosts when due (behaviour.md
    /// §7). Known peers are kept while the supernode is lost
    /// (`sn_registered` false).
    pub(super) fn handle_timeout(&mut self, now: Now, ctx: &mut Ctx, sn_registered: bool) {
        if self.purge_at.is_none_or(|t| now.mono < t) {
            return;
        }
        self.purge_at = Some(now.mono + PURGE_INTERVAL);
        let old = |p: &Peer| now.mono.saturating_duration_since(p.last_seen) > PURGE_AGE;
        let gone: Vec<Mac> = self
            .pending
            .iter()
            .filter(|(_, p)| old(p))
            .map(|(m, _)| *m)
            .collect();
        for m in gone {
            self.remove(ctx, m, false, PeerRemoval::Purged);
        }
        if sn_registered {
            let gone: Vec<Mac> = self
                .known
                .iter()
                .filter(|(_, p)| old(p))
                .map(|(m, _)| *m)
                .collect();
            for m in gone {
                self.remove(ctx, m, true, PeerRemoval::Purged);
            }
        }
        self.hosts
            .retain(|_, h| now.mono.saturating_duration_since(h.last_seen) <= BRIDGE_AGE);
        self.replay
            .retain(|_, (_, t)| now.mono.saturating_duration_since(*t) <= REPLAY_AGE);
    }

    // ------------------------------------------------------------------
    // Table primitives

    /// Remove from the pending (`direct` false) or known table, with the
    /// event.
    fn remove(&mut self, ctx: &mut Ctx, mac: Mac, direct: bool, reason: PeerRemoval) {
        let p = if direct {
            self.known_remove(mac)
        } else {
            self.pending.remove(&mac)
        };
        if let Some(p) = p {
            ctx.event(Event::PeerRemoved {
                mac,
                sock: p.sock,
                direct,
                reason,
            });
        }
    }

    /// Insert into the known table (and its socket index).
    fn known_insert(&mut self, mac: Mac, p: Peer) -> Option<Peer> {
        if let Some(s) = p.sock {
            *self.known_socks.entry(s).or_insert(0) += 1;
        }
        let old = self.known.insert(mac, p);
        if let Some(o) = &old {
            self.known_socks_release(o.sock);
        }
        old
    }

    /// Remove from the known table (and its socket index).
    fn known_remove(&mut self, mac: Mac) -> Option<Peer> {
        let p = self.known.remove(&mac)?;
        self.known_socks_release(p.sock);
        Some(p)
    }

    fn known_socks_release(&mut self, sock: Option<SocketAddr>) {
        if let Some(s) = sock
            && let Some(n) = self.known_socks.get_mut(&s)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.known_socks.remove(&s);
            }
        }
    }

    /// The known entry using `sock`, if any: [`find_by_sock`], but without
    /// the scan when no entry uses it.
    fn known_by_sock(&self, sock: SocketAddr) -> Option<Mac> {
        if !self.known_socks.contains_key(&sock) {
            return None;
        }
        find_by_sock(&self.known, sock)
    }

    /// Debug test builds (unit tests, the `sim` feature): the socket index
    /// matches the known table.
    #[cfg(all(debug_assertions, any(test, feature = "sim")))]
    pub(super) fn check_known_socks(&self) {
        // Allocation-free (the allocation tests run debug builds).
        let with_sock = self.known.values().filter(|p| p.sock.is_some()).count();
        let indexed: u32 = self.known_socks.values().sum();
        debug_assert_eq!(
            with_sock, indexed as usize,
            "known socket index out of sync"
        );
        for (s, &n) in &self.known_socks {
            let c = self.known.values().filter(|p| p.sock == Some(*s)).count();
            debug_assert_eq!(c, n as usize, "known socket index out of sync for {s}");
        }
    }

    #[cfg(not(all(debug_assertions, any(test, feature = "sim"))))]
    pub(super) fn check_known_socks(&self) {}

    // ------------------------------------------------------------------
    // The data path

    /// `-r`: the edge a bridged host `dst` sits behind, else `dst`.
    pub(super) fn bridge_route(&self, dst: Mac) -> Mac {
        match self.hosts.get(&dst) {
            Some(h) => h.edge,
            None => dst,
        }
    }

    /// `-r`: `host` (a frame's source MAC) sits behind edge `edge`.
    pub(super) fn learn_bridged(&mut self, now: Now, host: Mac, edge: Mac) {
        match self.hosts.get_mut(&host) {
            Some(h) => {
                h.edge = edge;
                h.last_seen = now.mono;
            }
            None => {
                self.hosts.insert(
                    host,
                    BridgedHost {
                        edge,
                        last_seen: now.mono,
                    },
                );
            }
        }
    }

    /// The direct socket for a unicast PACKET to `mac`: a known peer heard
    /// from directly within `fresh`. A known peer that went silent goes
    /// back to the supernode path (removed, event).
    pub(super) fn direct_sock(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        mac: Mac,
        fresh: Duration,
    ) -> Option<SocketAddr> {
        let p = self.known.get(&mac)?;
        let is_fresh = p
            .last_p2p
            // = `now − t < fresh`, without the Instant subtraction.
            .is_some_and(|t| t.checked_add(fresh).is_some_and(|end| now.mono < end));
        if is_fresh && let Some(s) = p.sock {
            return Some(s);
        }
        self.remove(ctx, mac, true, PeerRemoval::Stale);
        None
    }

    /// AEAD: accept `nonce` from `mac` only once (per-sender window).
    pub(super) fn check_replay(
        &mut self,
        now: Now,
        mac: Mac,
        nonce: AeadNonce,
    ) -> Result<(), DropReason> {
        let w = self
            .replay
            .entry(mac)
            .or_insert_with(|| (ReplayWindow::new(), now.mono));
        w.0.check_and_update(nonce)
            .map_err(|_| DropReason::PayloadReplay)?;
        w.1 = now.mono;
        Ok(())
    }

    /// Unknown destination: make sure a pending entry exists and ask the
    /// supernode `sn` about it, at most once per interval (behaviour.md
    /// §5.2).
    pub(super) fn query(&mut self, now: Now, ctx: &mut Ctx, mac: Mac, sn: Option<SocketAddr>) {
        if let Entry::Vacant(e) = self.pending.entry(mac) {
            e.insert(Peer::new(None, now));
            ctx.event(Event::PeerAdded {
                mac,
                sock: None,
                direct: false,
            });
        }
        let interval = ctx.cfg.register_interval;
        let Some(p) = self.pending.get_mut(&mac) else {
            return;
        };
        let due = p
            .last_sent_query
            .is_none_or(|t| now.mono.saturating_duration_since(t) > interval);
        if !due {
            return;
        }
        p.last_sent_query = Some(now.mono);
        ctx.send_register_via_sn(now, sn, mac);
        if let Some(sn) = sn {
            ctx.send_query_peer(now, sn, mac);
        }
    }

    /// A PACKET from `s.mac` (behaviour.md §5.3): peer tables and counters.
    pub(super) fn packet_seen(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        s: &Seen,
        sn: Option<SocketAddr>,
    ) {
        if !s.from_sn && !self.pending.is_empty() {
            // Direct traffic: stop trying to reach it through pending.
            self.pending.remove(&s.mac);
        }
        self.seen(now, ctx, s, sn);
        if !s.from_sn {
            ctx.stats.p2p_rx += 1;
            self.last_p2p_rx = Some(now.mono);
        }
    }

    // ------------------------------------------------------------------
    // Peer bookkeeping (behaviour.md §5.4)

    /// A peer was heard from: refresh, move or start registering with it.
    /// `sn` is the current supernode (REGISTERs through it).
    pub(super) fn seen(&mut self, now: Now, ctx: &mut Ctx, s: &Seen, sn: Option<SocketAddr>) {
        // One lookup for the usual case (a known peer).
        let p = match self.known.get_mut(&s.mac) {
            Some(p) => p,
            None => {
                if let Some(old) = self.known_by_sock(s.sock)
                    && let Some(mut p) = self.known_remove(old)
                {
                    p.last_cookie = 0;
                    self.known_insert(s.mac, p);
                }
                let Some(p) = self.known.get_mut(&s.mac) else {
                    self.register_with_new(now, ctx, s, sn);
                    return;
                };
                p
            }
        };
        if !s.from_sn {
            p.last_p2p = Some(now.mono);
        }
        if s.via_multicast {
            p.local = true;
        }
        // aged = `now − last_seen ≥ 1 s`, without the Instant subtraction.
        let aged = || {
            p.last_seen
                .checked_add(Duration::from_secs(1))
                .is_some_and(|t| now.mono >= t)
        };
        if !(s.cookie > p.last_cookie || aged()) {
            return;
        }
        if s.sock.ip().is_unspecified() || s.mac.is_multi_or_broadcast() {
            return;
        }
        if p.sock == Some(s.sock) {
            p.last_seen = now.mono;
        } else if !s.from_sn {
            // The peer moved.
            self.remove(ctx, s.mac, true, PeerRemoval::Moved);
            self.register_with_new(now, ctx, s, sn);
        }
    }

    fn register_with_new(&mut self, now: Now, ctx: &mut Ctx, s: &Seen, sn: Option<SocketAddr>) {
        let (mac, sock) = (s.mac, s.sock);
        if mac.is_multi_or_broadcast() || mac.is_null() {
            return;
        }
        if let Some(p) = self.pending.get_mut(&mac) {
            p.sock = Some(sock);
        } else {
            let mut p = Peer::new(Some(sock), now);
            p.local = s.via_multicast;
            self.pending.insert(mac, p);
            ctx.event(Event::PeerAdded {
                mac,
                sock: Some(sock),
                direct: false,
            });
            if s.from_sn {
                match ctx.cfg.register_ttl {
                    1 => {}
                    0 => ctx.send_register(now, sock, mac, cookie::REGULAR, None),
                    ttl => {
                        // `-L`: open our NAT towards the 16 ports the peer's
                        // NAT may use next, with a TTL that expires before
                        // reaching it.
                        for k in 0..16u16 {
                            let mut d = sock;
                            d.set_port(sock.port().wrapping_add(k));
                            ctx.send_register(now, d, mac, cookie::PORT, Some(ttl));
                        }
                    }
                }
                if ctx.p2p() {
                    ctx.send_register_via_sn(now, sn, mac);
                }
            } else {
                ctx.send_register(now, sock, mac, cookie::REGULAR, None);
            }
            ctx.send_multicast_register(now);
        }
        if let Some(p) = self.pending.get_mut(&mac) {
            p.last_seen = now.mono;
            if let Some((a, d)) = s.dev {
                p.dev_addr = a;
                p.desc = d;
            }
        }
    }

    // ------------------------------------------------------------------
    // REGISTER / REGISTER_ACK / PEER_INFO

    /// A REGISTER for us from `orig` (its SOCKET field or source); direct
    /// ones are answered with REGISTER_ACK.
    pub(super) fn on_register(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        reg: &Register,
        seen: &Seen,
        sn: Option<SocketAddr>,
    ) {
        if !seen.from_sn {
            self.pending.remove(&reg.src_mac);
            if ctx.p2p() {
                ctx.send_register_ack(now, seen.sock, reg.src_mac, reg.cookie);
            }
        }
        self.seen(now, ctx, seen, sn);
    }

    /// A REGISTER_ACK from `from`: the pending peer becomes known.
    pub(super) fn on_register_ack(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        from: SocketAddr,
        ack: &RegisterAck,
    ) -> Result<(), DropReason> {
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
                ctx.event(Event::PeerRemoved {
                    mac: old,
                    sock: k.sock,
                    direct: true,
                    reason: PeerRemoval::Replaced,
                });
                ctx.event(Event::PeerAdded {
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
            ctx.event(Event::PeerRemoved {
                mac,
                sock: old.sock,
                direct: true,
                reason: PeerRemoval::Replaced,
            });
        }
        ctx.event(Event::PeerAdded {
            mac,
            sock,
            direct: true,
        });
        Ok(())
    }

    /// The supernode's answer to our QUERY_PEER (not a PONG): REGISTER to
    /// the peer's preferred (LAN) socket, if any, and to its public one.
    pub(super) fn on_peer_info(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        pi: &PeerInfo,
        preferred: Option<SocketAddr>,
    ) -> Result<(), DropReason> {
        let pub_sock = pi.sock.addr();
        if let Some(p) = self.pending.get_mut(&pi.mac) {
            p.sock = Some(pub_sock);
        } else if !self.known.contains_key(&pi.mac) {
            return Err(DropReason::UnsolicitedPeerInfo);
        }
        if let Some(pref) = preferred {
            ctx.send_register(now, pref, pi.mac, cookie::LOCAL, None);
        }
        ctx.send_register(now, pub_sock, pi.mac, cookie::REGULAR, None);
        Ok(())
    }
}
