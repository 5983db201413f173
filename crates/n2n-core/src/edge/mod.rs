//! The sans-IO n2n edge (behaviour.md §1–§8), wire-compatible with C n2n
//! 3.1.1.
//!
//! Contract: mutate with [`Edge::encapsulate`], [`Edge::decapsulate`],
//! [`Edge::handle_timeout`], [`Edge::handle_mgmt`], [`Edge::shutdown`]; then
//! drain [`Edge::poll_transmit`] (handing each datagram back with
//! [`Edge::recycle_transmit`]) and [`Edge::poll_event`] until both return
//! `None`; then ask [`Edge::poll_timeout`] when to call `handle_timeout`
//! next. Nothing here reads a clock, the OS RNG or a socket.
//!
//! The data path (`encapsulate` / `decapsulate` of PACKETs) writes into
//! caller buffers and does not allocate; control messages and their answers
//! go through the shared output queue ([`crate::output`]) drained by
//! `poll_transmit`.
//!
//! # Structure
//!
//! [`Edge`] is a composition of owned sub-machines; its methods route each
//! input to them and merge their outputs:
//!
//! * `Ctx` (`ctx.rs`): configuration, identity, the one RNG, header keys,
//!   the output path (seal + queue), events, counters, and the control
//!   messages an edge sends. Passed as `&mut Ctx` to the others.
//! * `Registration` (`registration.rs`): supernode list and selection,
//!   bootstrap (PING round, auto-IP request), REGISTER_SUPER cadence,
//!   attempts, failover, sweep; PONG / ACK / NAK / RE_REGISTER_SUPER.
//! * `Peers` (`peers.rs`): pending/known peers, the socket index, bridged
//!   hosts, AEAD replay windows, purge; REGISTER / REGISTER_ACK /
//!   PEER_INFO bookkeeping.
//! * [`DataShard`] (`datapath.rs`): the per-packet crypto — payload
//!   transform and compression, the PACKET header template, a copy of the
//!   header keys, scratch; and the frame checks. The edge owns one; more
//!   serve a multi-threaded driver (below).
//! * `UserAuth` (`auth.rs`): user/password authentication (`-J`): tokens,
//!   trailers, the check of the supernode's answer and the dynamic key.
//!
//! Timers: `Registration` and `Peers` each have `poll_timeout` /
//! `handle_timeout`; [`Edge::poll_timeout`] is the earliest of theirs and
//! [`Edge::handle_timeout`] runs registration first, then the purge (that
//! order fixes the order of the queued datagrams). The purge timer is armed
//! when the registration enters its main loop.
//!
//! Not implemented (yet): TCP (`-S2`), management subscriptions (`s …`
//! answers `unimplemented`).
//!
//! # Several data-path threads: the shard split
//!
//! A driver may run the data path on N threads (each with its own TAP
//! queue and socket) around ONE edge behind a lock (`Mutex<Edge>`): the
//! expensive per-packet work (payload encryption/decryption, compression,
//! header encryption) runs unlocked in a per-thread [`DataShard`]
//! ([`Edge::data_shard`], `Send`); the cheap stateful part (checks, peer
//! lookup, routing, counters, peer tables, replay windows, stamps,
//! bridging, queries) stays in the edge, under the lock:
//!
//! ```text
//! // TAP → network, per frame:
//! let route = edge.lock().route(now, frame, &mut shard);      // locked
//! if let Some(route) = route {
//!     match shard.encode(frame, &route, &mut out) {           // unlocked
//!         Ok(t) => send(t.dst, &out[..t.len]),
//!         Err(reason) => edge.lock().count_drop(reason),      // rare
//!     }
//! }
//! // network → TAP, per datagram:
//! let opened = shard.open(from, &mut dgram, via_mcast, &mut frame_out); // unlocked
//! let n = edge.lock().finish(now, opened, &mut dgram, &mut frame_out, &mut shard);
//! if let Some(n) = n { tap_write(&frame_out[..n]) }
//! ```
//!
//! [`Edge::encapsulate`] and [`Edge::decapsulate`] are exactly these two
//! halves on the edge's own shard: same checks in the same order, same
//! counters, same bytes. What the split changes:
//!
//! * the AEAD transforms' nonces: all shards share the edge's one prefix
//!   and one atomic counter (one replay window per sender at the receiver
//!   accepts all of them, n2n_proto's `transform::aead` docs);
//! * random bytes (IVs of transforms 2..5) and header-encryption stamps are
//!   drawn by `route`, under the lock, from the edge's RNG and stamp
//!   generator in the same order as before; stamps of different threads
//!   may arrive slightly out of order, which the receiver's 160 ms PACKET
//!   jitter allowance absorbs;
//! * the datagram bytes a shard encodes are added to `p2p_tx_bytes` /
//!   `super_tx_bytes` at its next `route` / `finish` or
//!   [`Edge::sync_shard`] (`encode` runs unlocked);
//! * a shard copies the header keys: `route`, `finish` and `sync_shard`
//!   refresh the copy when the edge's keys changed (the user/password
//!   dynamic key; one integer compare otherwise), and `finish` opens a
//!   datagram again that a stale copy could not decrypt;
//! * a frame `encode` drops after its `route` (AEAD nonces exhausted, an
//!   `out` below [`MAX_DATAGRAM`](crate::MAX_DATAGRAM)) keeps the route's
//!   counters; the driver counts the drop with [`Edge::count_drop`].
//!   A route that fails after the destination check (`NoDestination`,
//!   `NoSupernodeAddress`) no longer burns an AEAD nonce.
//!
//! A broadcast while the supernode is lost (one datagram copied to every
//! known peer) is built entirely inside `route`, under the lock, with the
//! passed shard.

mod auth;
mod config;
mod ctx;
mod datapath;
mod encap;
pub mod events;
mod frame;
mod machash;
mod mgmt;
mod payload;
mod peers;
mod registration;
pub mod rules;
mod rx;
mod stats;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use n2n_proto::he::CommunityHe;
use n2n_proto::types::{Auth, Community, CompressionId, DevAddr, DevDesc, Mac, TransformId};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::output::Datagram;
use crate::time::Now;

pub use config::{EdgeConfig, EdgeConfigError, P2pMode, Selection, TapAddrMode};
pub use datapath::{DataShard, ENCODE_BATCH, Opened, Route};
pub use mgmt::{MgmtAction, MgmtOutcome};
pub use rules::{RuleError, TrafficRule};
pub use stats::{DropReason, EdgeStats};

use auth::UserAuth;
use ctx::{Ctx, Identity};
use machash::MacHashState;
use mgmt::MgmtState;
use peers::Peers;
use registration::Registration;

/// Local-discovery multicast group and port (wire.md §1).
pub const MULTICAST_DISCOVERY: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 68), 1968));

/// Version string this edge reports.
pub const VERSION: &str = "3.1.1";

/// Something the driver should log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The supernode assigned this TAP address (auto IP, before the TAP
    /// exists): configure the TAP with it.
    AssignAddress(DevAddr),
    /// A REGISTER_SUPER_ACK arrived after a (re)start, switch or loss.
    /// `first` = the very first one: PACKETs flow from now on.
    Registered {
        /// The supernode.
        supernode: SocketAddr,
        /// First registration of this edge.
        first: bool,
    },
    /// The supernode refused our registration (MAC/IP in use); we keep trying.
    RegistrationNak {
        /// The supernode.
        supernode: SocketAddr,
    },
    /// The current supernode changed.
    SupernodeSwitched {
        /// Previous one (address, if resolved).
        from: Option<SocketAddr>,
        /// New one (address, if resolved).
        to: Option<SocketAddr>,
        /// Why.
        reason: SwitchReason,
    },
    /// C closes and reopens its main socket (new local port) after 15
    /// supernode switches without a non-local P2P peer, to escape a stale
    /// NAT mapping: the driver should do the same (and report the new
    /// address with [`Edge::set_local_addr`]).
    ReopenSocket,
    /// A supernode listed in a REGISTER_SUPER_ACK was added.
    SupernodeLearned {
        /// Its socket.
        sock: SocketAddr,
        /// Its MAC.
        mac: Mac,
    },
    /// A peer entered the pending table (`direct: false`: trying to reach
    /// it) or the known table (`direct: true`: P2P path confirmed).
    PeerAdded {
        /// Peer MAC.
        mac: Mac,
        /// Its socket, if known.
        sock: Option<SocketAddr>,
        /// Known (P2P) vs pending.
        direct: bool,
    },
    /// A peer left the pending (`direct: false`) or known table.
    PeerRemoved {
        /// Peer MAC.
        mac: Mac,
        /// Its socket, if known.
        sock: Option<SocketAddr>,
        /// Was it a known (P2P) peer.
        direct: bool,
        /// Why.
        reason: PeerRemoval,
    },
    /// At shutdown, for every pending and known peer and every supernode
    /// entry (C's "cleared" peer event).
    PeerCleared {
        /// Its MAC.
        mac: Mac,
        /// Its socket, if known.
        sock: Option<SocketAddr>,
    },
}

/// Why the current supernode changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchReason {
    /// Bootstrap: first PONG / auto-IP answer came from another supernode.
    Bootstrap,
    /// Three registration attempts stayed unanswered.
    Timeout,
    /// The periodic sweep found a better one.
    Selection,
}

/// Why a peer entry went away (management event actions 1 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRemoval {
    /// Not seen for 60 s.
    Purged,
    /// Known peer without direct traffic for `interval/2`: back to the supernode path.
    Stale,
    /// Peer came back from another socket.
    Moved,
    /// Pending entry superseded (direct traffic, confirmation).
    Replaced,
}

/// A read-only view of one peer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    /// Peer MAC.
    pub mac: Mac,
    /// Known socket.
    pub sock: Option<SocketAddr>,
    /// Known (P2P confirmed) or pending.
    pub direct: bool,
    /// Found via multicast discovery.
    pub local: bool,
    /// TAP address from its REGISTER, if any.
    pub dev_addr: DevAddr,
    /// Description from its REGISTER, if any.
    pub desc: DevDesc,
}

/// The edge state machine.
#[derive(Debug)]
pub struct Edge {
    ctx: Ctx,
    reg: Registration,
    peers: Peers,
    /// The edge's own data shard (`encapsulate` / `decapsulate`).
    data: DataShard,
    mgmt: MgmtState,
    stopped: bool,
}

impl Edge {
    /// Builds an edge. `rng_seed` seeds every random choice (MAC if none is
    /// configured, simple-id token, cookies, IVs, HE bytes).
    pub fn new(mut cfg: EdgeConfig, rng_seed: [u8; 32], now: Now) -> Result<Self, EdgeConfigError> {
        if cfg.user_password.is_some() {
            if !matches!(cfg.transform, TransformId::ChaCha20 | TransformId::Speck) {
                return Err(EdgeConfigError::UserPasswordCipher);
            }
            cfg.header_encryption = true;
        }
        if cfg.supernodes.is_empty() {
            return Err(EdgeConfigError::NoSupernode);
        }
        if cfg.register_interval < Duration::from_secs(1) {
            return Err(EdgeConfigError::BadInterval);
        }
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        // The MAC tables' hash key, from a separate stream of the seed (the
        // main stream's values stay as they were).
        let mut hk = rng.clone();
        hk.set_stream(1);
        let hs = MacHashState::new([hk.next_u64(), hk.next_u64()]);
        let mac = if cfg.mac.is_null() {
            let mut m = [0u8; 6];
            rng.fill_bytes(&mut m);
            m[0] = (m[0] & !0x01) | 0x02;
            Mac(m)
        } else {
            cfg.mac
        };
        if mac.is_multi_or_broadcast() || mac.0[0] & 0x01 != 0 {
            return Err(EdgeConfigError::BadMac(mac));
        }
        let dev_addr = match cfg.tap_addr {
            TapAddrMode::Static(a) => {
                if a.ip.is_unspecified() || a.prefix > 32 {
                    return Err(EdgeConfigError::BadTapAddr(a));
                }
                a
            }
            TapAddrMode::Auto | TapAddrMode::Dhcp => DevAddr::UNSPECIFIED,
        };
        let mut tok = [0u8; 16];
        rng.fill_bytes(&mut tok);
        let token = Auth::new(Auth::SCHEME_SIMPLE_ID, &tok)
            .map_err(|_| EdgeConfigError::Transform("simple-id token does not fit".to_owned()))?;
        let nonce_seed = (rng.next_u32(), now.unix_us);
        let mut he = cfg
            .header_encryption
            .then(|| CommunityHe::new(*cfg.community.field()));
        let auth = cfg.user_password.clone().map(UserAuth::new);
        if let (Some(he), Some(_)) = (he.as_mut(), &auth) {
            // A random dynamic key until the first ACK hands over D
            // (crypto.md §5.5): nothing but registration gets through.
            let mut d = [0u8; 16];
            rng.fill_bytes(&mut d);
            he.set_dynamic_key(&d);
        }
        let data = DataShard::new(&cfg, mac, nonce_seed, he.clone(), auth.is_some())?;
        let reg = Registration::new(&cfg, now);
        let mut peers = Peers::new(hs);
        if reg.is_running() {
            peers.start_purge(now);
        }
        let me = Identity {
            mac,
            dev_addr,
            desc: DevDesc::new(&cfg.desc),
            token,
            local_addr: None,
        };
        let mgmt = MgmtState::new(&cfg, now);
        Ok(Self {
            ctx: Ctx::new(cfg, me, rng, he, auth),
            reg,
            peers,
            data,
            mgmt,
            stopped: false,
        })
    }

    // ------------------------------------------------------------------
    // Accessors

    /// Our TAP MAC.
    pub fn mac(&self) -> Mac {
        self.ctx.me.mac
    }

    /// Our TAP address (0/0 until assigned).
    pub fn tap_addr(&self) -> DevAddr {
        self.ctx.me.dev_addr
    }

    /// The configuration.
    pub fn config(&self) -> &EdgeConfig {
        &self.ctx.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &EdgeStats {
        &self.ctx.stats
    }

    /// Registered at least once (PACKETs flow) and not currently waiting
    /// for the supernode.
    pub fn is_registered(&self) -> bool {
        self.reg.last_sup().is_some() && self.reg.sn_registered()
    }

    /// User/password authentication (`-J`) is on.
    pub fn uses_user_password(&self) -> bool {
        self.ctx.auth.is_some()
    }

    /// The first REGISTER_SUPER_ACK has arrived: PACKETs are sent and accepted.
    pub fn has_registered_once(&self) -> bool {
        self.reg.last_sup().is_some()
    }

    /// The current supernode's address.
    pub fn current_supernode(&self) -> Option<SocketAddr> {
        self.reg.current_supernode()
    }

    /// Addresses of all known supernodes (configured first, then learnt).
    pub fn supernode_addrs(&self) -> Vec<Option<SocketAddr>> {
        self.reg.supernodes().iter().map(|s| s.addr).collect()
    }

    /// Pending and known peers.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        self.peers.snapshots()
    }

    /// Should the driver listen on 224.0.0.68:1968 (P2P on and no `-e`)?
    pub fn wants_multicast_discovery(&self) -> bool {
        self.ctx.wants_multicast_discovery()
    }

    /// Current management verbosity.
    pub fn verbosity(&self) -> u8 {
        self.mgmt.verbosity
    }

    /// The transform this edge uses.
    pub fn transform(&self) -> TransformId {
        self.data.transform()
    }

    /// The compression this edge applies to frames it sends.
    pub fn compression(&self) -> CompressionId {
        self.data.compression()
    }

    /// The community.
    pub fn community(&self) -> &Community {
        &self.ctx.cfg.community
    }

    // ------------------------------------------------------------------
    // Driver inputs besides datagrams

    /// The driver resolved `-l` entry `index` (config order).
    pub fn set_supernode_addr(&mut self, index: usize, addr: SocketAddr) {
        self.reg.set_supernode_addr(index, addr);
    }

    /// The main socket's local address (management `info`).
    pub fn set_local_addr(&mut self, addr: SocketAddr) {
        self.ctx.me.local_addr = Some(addr);
    }

    /// DHCP mode: the address currently on the TAP.
    pub fn set_tap_addr(&mut self, addr: DevAddr) {
        self.ctx.me.dev_addr = addr;
    }

    /// Queue UNREGISTER_SUPER to the current supernode and stop all timers.
    pub fn shutdown(&mut self, now: Now) {
        if self.stopped {
            return;
        }
        if let Some(dst) = self.reg.current_supernode() {
            self.ctx.send_unregister_super(now, dst);
        }
        // C clears its peer lists: pending, known, then the supernodes.
        let mut cleared = Vec::new();
        for t in [self.peers.pending(), self.peers.known()] {
            let mut v: Vec<_> = t.iter().map(|(m, p)| (*m, p.sock)).collect();
            v.sort_by_key(|(m, _)| *m);
            cleared.extend(v);
        }
        cleared.extend(self.reg.supernodes().iter().map(|s| (s.mac, s.addr)));
        for (mac, sock) in cleared {
            self.ctx.event(Event::PeerCleared { mac, sock });
        }
        self.stopped = true;
    }

    // ------------------------------------------------------------------
    // Outputs

    /// The next queued control datagram. Send [`Datagram::bytes`] to
    /// [`Datagram::dst`] (with [`Datagram::ttl`] if set), then give it back
    /// with [`recycle_transmit`](Self::recycle_transmit) (see
    /// [`crate::output`]).
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.ctx.out.pop()
    }

    /// Hand back a datagram from [`poll_transmit`](Self::poll_transmit)
    /// once it was sent (or failed): its buffer is reused.
    pub fn recycle_transmit(&mut self, d: Datagram) {
        self.ctx.out.recycle(d);
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next:
    /// the earliest deadline of the sub-machines.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let reg = self.reg.poll_timeout(&self.ctx.cfg);
        Some(match self.peers.poll_timeout() {
            Some(p) => reg.min(p),
            None => reg,
        })
    }

    /// `-S2`: the driver's TCP connection to the current supernode
    /// ([`current_supernode`](Self::current_supernode)) is established
    /// (first connection, reconnection, or after failover): a REGISTER_SUPER
    /// is queued at once for it.
    pub fn tcp_connected(&mut self, now: Now) {
        if !self.stopped {
            self.reg.tcp_connected(now, &mut self.ctx);
        }
    }

    /// `-S2` (datagrams for the current supernode go over TCP).
    pub fn uses_tcp(&self) -> bool {
        self.reg.is_tcp()
    }

    /// Run the timers: registration first, then the purge.
    pub fn handle_timeout(&mut self, now: Now) {
        self.peers.check_known_socks();
        if self.stopped {
            return;
        }
        self.reg.handle_timeout(now, &mut self.ctx, &self.peers);
        let sn_registered = self.reg.sn_registered();
        self.peers.handle_timeout(now, &mut self.ctx, sn_registered);
    }
}
