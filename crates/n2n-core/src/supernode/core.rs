//! The sans-IO supernode (behaviour.md §9): the [`Supernode`] state, its
//! inputs and outputs. The handlers live next to this file, one module per
//! concern:
//!
//! * `intake.rs`: plain or header-encrypted, which community, decoding,
//!   policy checks, dispatch; the RE_REGISTER_SUPER fast path;
//! * `register.rs`: REGISTER_SUPER / UNREGISTER_SUPER against the edge
//!   table (`edges.rs`, communities and their edges keyed by MAC);
//! * `forward.rs`: PACKET / REGISTER relay, PING / PONG, PEER_INFO;
//! * `communities.rs`: fixed and dynamic communities, reload, purge,
//!   listings;
//! * `users.rs`: user/password communities (crypto.md §5): users and their
//!   secrets, the dynamic key per community, key_time
//!   ([`Supernode::set_key_time`]), the trailer and token checks;
//! * `io.rs`: the output side (the shared [`crate::output`] path, counters,
//!   events, randomness);
//! * `mgmt.rs`: the management interface.
//!
//! Contract: mutate with [`Supernode::handle_datagram`],
//! [`Supernode::handle_timeout`] or [`Supernode::handle_mgmt`], then drain
//! [`Supernode::poll_transmit`] (handing each datagram back with
//! [`Supernode::recycle_transmit`]) and [`Supernode::poll_event`] until they
//! return `None`, then ask [`Supernode::poll_timeout`] when to call
//! `handle_timeout` next. One timer: the purge every [`PURGE_INTERVAL`].
//!
//! * `federation.rs`: the federated supernodes (`-l`, learnt, registered
//!   with us), their registration exchange, ACK lists, associations.
//!
//! Timers: the purge every [`PURGE_INTERVAL`] and the federation run every
//! [`super::FED_INTERVAL`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use n2n_proto::he::{CommunityHe, HeKeys};
use n2n_proto::types::{Community, DevAddr, DevDesc, Mac, PeerSock};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::autoip::Subnet;
use super::config::SupernodeConfig;
use super::edges::{CommunityState, HeState, PURGE_INTERVAL, community_key};
use super::federation::{FED_INTERVAL, Federation};
use super::io::Io;
use super::reregister::ReRegisterLimiter;
use super::stats::{DropReason, RefuseReason, SupernodeStats};
use crate::Now;
use crate::output::{ConnId, Datagram, Output};

/// Things worth logging.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupernodeEvent {
    /// A new edge registered, or a known one changed socket or MAC.
    EdgeRegistered {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
        /// Public socket.
        sock: SocketAddr,
        /// TAP address (assigned one if the ACK carried one).
        ip: DevAddr,
    },
    /// A REGISTER_SUPER was answered with a NAK.
    EdgeRefused {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
        /// Source of the registration.
        sock: SocketAddr,
        /// Why.
        reason: RefuseReason,
    },
    /// An edge left with UNREGISTER_SUPER.
    EdgeUnregistered {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
    },
    /// An edge's TCP connection closed: the edge was removed.
    EdgeClosed {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
    },
    /// An edge timed out.
    EdgePurged {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
    },
    /// A community was created (dynamic, or from the community file).
    CommunityCreated {
        /// Community.
        community: Community,
        /// Its auto-IP subnet.
        subnet: Option<Subnet>,
    },
    /// A community was removed (empty at a purge run, or by a reload).
    CommunityRemoved {
        /// Community.
        community: Community,
    },
    /// A supernode joined the federation table (registered with us, or
    /// learnt from an ACK list).
    FederationAdded {
        /// Its socket.
        sock: SocketAddr,
        /// Its MAC.
        mac: Mac,
    },
    /// A learnt federation member was purged (silent for 90 s).
    FederationPurged {
        /// Its socket.
        sock: Option<SocketAddr>,
        /// Its MAC.
        mac: Mac,
    },
    /// A federation member's larger key_time was adopted (crypto.md §5.6).
    KeyTimeAdopted {
        /// The new key_time.
        key_time: u32,
    },
    /// A local edge registered at another supernode of the federation: it
    /// was removed here.
    EdgeMoved {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
        /// The supernode it registered at.
        supernode: SocketAddr,
    },
    /// Another supernode of the federation refused a local edge's
    /// registration (MAC or IP held there with another token): the NAK was
    /// passed on and the edge removed here.
    EdgeRefusedByFederation {
        /// Community.
        community: Community,
        /// Edge MAC.
        mac: Mac,
        /// The refusing supernode.
        supernode: SocketAddr,
    },
    /// A community's header-encryption mode was locked by its first datagram.
    HeLocked {
        /// Community.
        community: Community,
        /// `true`: header encryption; `false`: plain.
        encrypted: bool,
    },
}

/// A registered edge, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeInfo {
    /// Community.
    pub community: Community,
    /// MAC.
    pub mac: Mac,
    /// TAP address from its registration.
    pub dev_addr: DevAddr,
    /// Description.
    pub desc: DevDesc,
    /// Public socket (for a TCP edge: its connection's remote address).
    pub sock: SocketAddr,
    /// Registered over a TCP connection (`-S2`).
    pub tcp: bool,
    /// Preferred socket.
    pub preferred: Option<PeerSock>,
    /// Unix seconds of the last registration.
    pub last_seen_unix: u64,
    /// PACKETs from this edge the supernode relayed (unicast, or one per
    /// broadcast fan-out): its traffic that did not go P2P.
    pub relayed_packets: u64,
}

/// A community, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityInfo {
    /// Name field.
    pub community: Community,
    /// From the community file (never purged).
    pub fixed: bool,
    /// Has users.
    pub users: bool,
    /// Header-encryption state.
    pub he_state: HeState,
    /// Auto-IP subnet.
    pub subnet: Option<Subnet>,
    /// Registered edges.
    pub edges: usize,
}

/// The sans-IO supernode.
#[derive(Debug)]
pub struct Supernode {
    pub(super) cfg: SupernodeConfig,
    pub(super) communities: BTreeMap<Community, CommunityState>,
    /// Listing position of the federation among the communities.
    pub(super) federation_seq: u64,
    pub(super) seq: u64,
    pub(super) io: Io,
    pub(super) start: Now,
    pub(super) next_purge: Instant,
    pub(super) verbosity: u8,
    pub(super) keep_running: bool,
    pub(super) key_time: u32,
    pub(super) federation_he: CommunityHe,
    pub(super) rereg: ReRegisterLimiter,
    pub(super) fed: Federation,
}

impl Supernode {
    /// A supernode started at `now`, with the fixed communities of
    /// `cfg.communities` loaded.
    pub fn new(cfg: SupernodeConfig, rng_seed: [u8; 32], now: Now) -> Self {
        let federation_he = CommunityHe::with_static_keys(
            *cfg.federation.field(),
            HeKeys::from_community_field(&cfg.federation_keys),
        );
        let list = cfg.communities.clone();
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        let rereg = ReRegisterLimiter::new(rng.next_u64());
        let mut token = [0u8; 16];
        rng.fill_bytes(&mut token);
        let fed = Federation::new(
            &cfg.supernodes,
            cfg.max_federation,
            token,
            community_key(cfg.federation.field()),
            now,
        );
        // C sets key_time when it loads a community file (0 without one).
        let key_time = if cfg.communities.is_some() {
            now.unix_secs() as u32
        } else {
            0
        };
        let mut sn = Self {
            verbosity: cfg.verbosity,
            cfg,
            communities: BTreeMap::new(),
            federation_seq: 0,
            seq: 0,
            io: Io {
                out: Output::new(usize::MAX, usize::MAX),
                stats: SupernodeStats::default(),
                events: VecDeque::new(),
                rng,
            },
            start: now,
            next_purge: now.mono + PURGE_INTERVAL,
            keep_running: true,
            key_time,
            federation_he,
            rereg,
            fed,
        };
        // C loads the community file before it adds the federation.
        sn.load_fixed(list.as_ref());
        sn.seq += 1;
        sn.federation_seq = sn.seq;
        sn
    }

    /// The configuration (its `communities` is the list in force).
    pub fn config(&self) -> &SupernodeConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &SupernodeStats {
        &self.io.stats
    }

    /// Current verbosity (changed by `w verbose N`).
    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    /// False after a management `stop`.
    pub fn keep_running(&self) -> bool {
        self.keep_running
    }

    /// Run timers: every 30 s purge edges silent for 60 s and empty
    /// dynamic communities; every 10 s the federation run (purge, re-register).
    pub fn handle_timeout(&mut self, now: Now) {
        if now.mono >= self.fed.next_run {
            while self.fed.next_run <= now.mono {
                self.fed.next_run += FED_INTERVAL;
            }
            self.federation_run(now);
        }
        if now.mono < self.next_purge {
            return;
        }
        while self.next_purge <= now.mono {
            self.next_purge += PURGE_INTERVAL;
        }
        self.purge(now);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    /// (Without federation members the federation run has nothing to do and
    /// is not asked for.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.fed.peers.is_empty() && self.fed.assoc.is_empty() {
            return Some(self.next_purge);
        }
        Some(self.next_purge.min(self.fed.next_run))
    }

    /// The next queued datagram. Send [`Datagram::bytes`] to
    /// [`Datagram::dst`], then give it back with
    /// [`recycle_transmit`](Self::recycle_transmit) (see [`crate::output`]).
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.io.out.pop()
    }

    /// Hand back a datagram from [`poll_transmit`](Self::poll_transmit)
    /// once it was sent (or failed): its buffer is reused.
    pub fn recycle_transmit(&mut self, d: Datagram) {
        self.io.out.recycle(d);
    }

    /// The driver could not send a datagram it got from
    /// [`poll_transmit`](Self::poll_transmit): counted in `errors` (C's
    /// `sendto` failure counter, management `packetstats`).
    pub fn transmit_failed(&mut self) {
        self.io.stats.errors = self.io.stats.errors.saturating_add(1);
    }

    /// Datagrams waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn pending_transmits(&self) -> usize {
        self.io.out.len()
    }

    /// A TCP connection was accepted (counted; the connection becomes an
    /// edge's socket when a REGISTER_SUPER arrives on it).
    pub fn tcp_opened(&mut self, _conn: ConnId) {
        self.io.stats.tcp_opened = self.io.stats.tcp_opened.saturating_add(1);
    }

    /// A TCP connection was refused at the connection limit (counted).
    pub fn tcp_refused(&mut self) {
        self.io.stats.count_drop(DropReason::TcpConnectionLimit);
    }

    /// TCP connection `conn` is gone (closed by the peer, failed, or closed
    /// by the driver for `reason`, which is counted). As C does
    /// (behaviour.md §9.11), the edges registered through it are removed:
    /// nothing can reach them any more; they re-register when they
    /// reconnect. No message is sent.
    pub fn tcp_closed(&mut self, _now: Now, conn: ConnId, reason: Option<DropReason>) {
        self.io.stats.tcp_closed = self.io.stats.tcp_closed.saturating_add(1);
        if let Some(r) = reason {
            self.io.stats.count_drop(r);
        }
        for comm in self.communities.values_mut() {
            let gone: Vec<Mac> = comm
                .edges
                .values()
                .filter(|e| e.sock.conn() == Some(conn))
                .map(|e| e.mac)
                .collect();
            for mac in gone {
                comm.edges.remove(&mac);
                self.io.event(SupernodeEvent::EdgeClosed {
                    community: comm.field,
                    mac,
                });
            }
        }
    }

    /// Next event to log.
    pub fn poll_event(&mut self) -> Option<SupernodeEvent> {
        self.io.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_failures_are_counted() {
        let now = Now::new(Instant::now(), 1_795_606_373_000_000);
        let mut sn = Supernode::new(SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 1])), [1; 32], now);
        assert_eq!(sn.stats().errors, 0);
        sn.transmit_failed();
        sn.transmit_failed();
        assert_eq!(sn.stats().errors, 2);
        let out = sn.handle_mgmt(now, "127.0.0.1:1".parse().unwrap(), b"r 1 packetstats");
        assert!(
            out.replies
                .iter()
                .any(|l| l.contains("\"type\":\"errors\",\"tx_pkt\":2")),
            "{:?}",
            out.replies
        );
    }
}
