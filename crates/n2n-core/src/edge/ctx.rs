//! What every sub-machine of the edge reads or writes: the configuration,
//! this edge's identity, randomness, the header keys, the output path
//! (seal + queue), events and counters, and the control messages this edge
//! sends (behaviour.md §2–§5).
//!
//! The sub-machines ([`Registration`](super::registration::Registration),
//! [`Peers`](super::peers::Peers), [`DataShard`](super::datapath::DataShard))
//! own their state and get a `&mut Ctx` argument where they need to send,
//! draw random numbers, log an event or count: nothing is passed through
//! fields set around a call.

use std::collections::VecDeque;
use std::net::SocketAddr;

use n2n_proto::he::{CommunityHe, HeKeyKind};
use n2n_proto::types::{Auth, DevAddr, DevDesc, Mac, cookie};
use n2n_proto::wire::{
    self, Header, Message, QueryPeer, Register, RegisterAck, RegisterSuper, UnregisterSuper,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::Rng;

use super::auth::UserAuth;
use super::config::{EdgeConfig, P2pMode};
use super::datapath::HeSeal;
use super::stats::{DropReason, EdgeStats};
use super::{Event, MULTICAST_DISCOVERY};
use crate::Now;
use crate::output::{Output, Queued, Seal, Trailer};

/// Events and datagrams kept when the driver does not drain them.
pub(super) const MAX_QUEUED: usize = 4096;
/// Spare transmit buffers kept for reuse.
const MAX_FREE: usize = 64;

/// Who this edge is on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) struct Identity {
    /// TAP MAC (configured or random).
    pub mac: Mac,
    /// TAP address (0/0 until assigned by the supernode or DHCP).
    pub dev_addr: DevAddr,
    /// `-I`.
    pub desc: DevDesc,
    /// The random simple-id token of this run.
    pub token: Auth,
    /// The main socket's local address, when the driver told us.
    pub local_addr: Option<SocketAddr>,
}

/// The shared context of the edge's sub-machines.
#[derive(Debug)]
pub(super) struct Ctx {
    pub cfg: EdgeConfig,
    pub me: Identity,
    /// The one random stream of this edge (MAC, token, cookies, IVs, HE
    /// bytes, PING choice): drawn in a fixed order, so runs are
    /// reproducible from the seed.
    pub rng: ChaCha20Rng,
    /// Header keys when `-H` (always with user/password); changed only by
    /// [`Self::set_dynamic_key`], which counts `he_generation`.
    he: Option<CommunityHe>,
    /// How many times `he` changed: a data shard holding a copy of an
    /// older generation takes the new keys.
    he_generation: u64,
    /// User/password authentication (`-J`).
    pub auth: Option<UserAuth>,
    /// The seal step and the control-message queue.
    pub out: Output,
    events: VecDeque<Event>,
    pub stats: EdgeStats,
}

impl Ctx {
    pub(super) fn new(
        cfg: EdgeConfig,
        me: Identity,
        rng: ChaCha20Rng,
        he: Option<CommunityHe>,
        auth: Option<UserAuth>,
    ) -> Self {
        Self {
            cfg,
            me,
            rng,
            he,
            he_generation: 0,
            auth,
            out: Output::new(MAX_QUEUED, MAX_FREE),
            events: VecDeque::new(),
            stats: EdgeStats::default(),
        }
    }

    /// The header keys (`-H`).
    pub(super) fn he(&self) -> Option<&CommunityHe> {
        self.he.as_ref()
    }

    /// How many times the header keys changed.
    pub(super) fn he_generation(&self) -> u64 {
        self.he_generation
    }

    /// User/password: the dynamic key D handed over by the supernode
    /// (crypto.md §5.5). Nothing without `-H`.
    pub(super) fn set_dynamic_key(&mut self, d: &[u8; 16]) {
        if let Some(he) = self.he.as_mut() {
            he.set_dynamic_key(d);
            self.he_generation = self.he_generation.wrapping_add(1);
        }
    }

    /// P2P allowed (no `-S1`).
    pub(super) fn p2p(&self) -> bool {
        self.cfg.p2p == P2pMode::Enabled
    }

    /// P2P on and no `-e`: local-discovery multicast is used.
    pub(super) fn wants_multicast_discovery(&self) -> bool {
        self.p2p() && self.cfg.preferred_local.is_none()
    }

    // ------------------------------------------------------------------
    // Events

    pub(super) fn event(&mut self, e: Event) {
        if self.events.len() >= MAX_QUEUED {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    pub(super) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------
    // Output

    /// Count a datagram the full queue pushed out.
    pub(super) fn count_queued(&mut self, q: Queued) {
        if q == Queued::EvictedOldest {
            self.stats.drop(DropReason::QueueFull);
        }
    }

    /// The header-encryption stamp and pre-IV bytes of the next PACKET,
    /// when `-H` (the same draws as the seal of a control message).
    pub(super) fn packet_seal(&mut self, now: Now) -> Option<HeSeal> {
        self.he.as_ref()?;
        let stamp = self.out.next_stamp(now);
        let mut rand4 = [0u8; 4];
        self.rng.fill_bytes(&mut rand4);
        Some(HeSeal { stamp, rand4 })
    }

    /// Encode, header-encrypt (whole message) and queue one control
    /// message for `dst`, with IP TTL `ttl` (`None`: the socket's).
    pub(super) fn send(
        &mut self,
        now: Now,
        dst: SocketAddr,
        ttl: Option<u8>,
        msg: &Message<'_>,
        kind: HeKeyKind,
    ) {
        self.send_signed(now, dst, ttl, msg, kind, false);
    }

    /// [`send`](Self::send), with the user/password trailer when `signed`
    /// and user/password is on (REGISTER_SUPER, crypto.md §5.4).
    fn send_signed(
        &mut self,
        now: Now,
        dst: SocketAddr,
        ttl: Option<u8>,
        msg: &Message<'_>,
        kind: HeKeyKind,
        signed: bool,
    ) {
        let header = Header::new(self.cfg.community);
        let trailer = match &self.auth {
            Some(a) if signed => Trailer::Signed(a.secret()),
            _ => Trailer::None,
        };
        let seal = self.he.as_ref().map(|he| Seal {
            he,
            kind,
            header_len: None,
            trailer,
        });
        let r = self
            .out
            .send(now, &mut self.rng, dst, ttl, seal.as_ref(), |b| {
                wire::encode(&header, msg, b)
            });
        match r {
            Ok(q) => self.count_queued(q),
            Err(_) => self.stats.drop(DropReason::FrameTooLarge),
        }
    }

    // ------------------------------------------------------------------
    // The control messages of an edge

    /// REGISTER_SUPER to `dst` (the current supernode); `bootstrap` = the
    /// auto-IP request (null MAC, no address). Returns the cookie.
    pub(super) fn send_register_super(
        &mut self,
        now: Now,
        dst: Option<SocketAddr>,
        bootstrap: bool,
    ) -> u32 {
        let c = self.rng.next_u32();
        let (edge_mac, dev_addr) = if bootstrap {
            (Mac::NULL, DevAddr::UNSPECIFIED)
        } else {
            (self.me.mac, self.me.dev_addr)
        };
        let auth = match &mut self.auth {
            Some(a) => a.register_token(&mut self.rng),
            None => self.me.token,
        };
        let m = RegisterSuper {
            cookie: c,
            edge_mac,
            sock: self.cfg.preferred_local.map(Into::into),
            dev_addr,
            dev_desc: self.me.desc,
            auth,
            key_time: 0,
        };
        match dst {
            Some(dst) => self.send_signed(
                now,
                dst,
                None,
                &Message::RegisterSuper(m),
                HeKeyKind::Static,
                true,
            ),
            None => self.stats.drop(DropReason::NoSupernodeAddress),
        }
        c
    }

    /// UNREGISTER_SUPER to `dst`.
    pub(super) fn send_unregister_super(&mut self, now: Now, dst: SocketAddr) {
        let auth = match &self.auth {
            Some(a) => a.unregister_token(&mut self.rng),
            None => self.me.token,
        };
        let m = UnregisterSuper {
            auth,
            src_mac: self.me.mac,
        };
        self.send(
            now,
            dst,
            None,
            &Message::UnregisterSuper(m),
            HeKeyKind::Dynamic,
        );
    }

    /// QUERY_PEER for `target` to `dst` (`target` null: a PING).
    pub(super) fn send_query_peer(&mut self, now: Now, dst: SocketAddr, target: Mac) {
        let q = QueryPeer {
            src_mac: self.me.mac,
            target_mac: target,
            aflags: 0,
        };
        self.send(now, dst, None, &Message::QueryPeer(q), HeKeyKind::Dynamic);
    }

    /// REGISTER to a peer (direct, via the supernode or multicast), with IP
    /// TTL `ttl` (the `-L` spray) or the socket's. Nothing without P2P.
    pub(super) fn send_register(
        &mut self,
        now: Now,
        dst: SocketAddr,
        peer: Mac,
        cookie: u32,
        ttl: Option<u8>,
    ) {
        if !self.p2p() {
            return;
        }
        let m = Register {
            cookie,
            src_mac: self.me.mac,
            dst_mac: peer,
            sock: None,
            dev_addr: self.me.dev_addr,
            dev_desc: self.me.desc,
        };
        self.send(now, dst, ttl, &Message::Register(m), HeKeyKind::Dynamic);
    }

    /// REGISTER for `peer` through the supernode `sn`.
    pub(super) fn send_register_via_sn(&mut self, now: Now, sn: Option<SocketAddr>, peer: Mac) {
        match sn {
            Some(sn) => self.send_register(now, sn, peer, cookie::FORWARDED, None),
            None => self.stats.drop(DropReason::NoSupernodeAddress),
        }
    }

    /// REGISTER to the local-discovery group, when it is used.
    pub(super) fn send_multicast_register(&mut self, now: Now) {
        if self.wants_multicast_discovery() {
            self.send_register(now, MULTICAST_DISCOVERY, Mac::NULL, cookie::MCAST, None);
        }
    }

    /// REGISTER_ACK answering `cookie` of `peer` at `dst`.
    pub(super) fn send_register_ack(&mut self, now: Now, dst: SocketAddr, peer: Mac, cookie: u32) {
        let ack = RegisterAck {
            cookie,
            dst_mac: peer,
            src_mac: self.me.mac,
            sock: None,
        };
        self.send(
            now,
            dst,
            None,
            &Message::RegisterAck(ack),
            HeKeyKind::Dynamic,
        );
    }
}
