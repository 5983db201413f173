//! The sans-IO n2n edge (behaviour.md §1–§8), wire-compatible with C n2n
//! 3.1.1.
//!
//! Contract: mutate with [`Edge::encapsulate`], [`Edge::decapsulate`],
//! [`Edge::handle_timeout`], [`Edge::handle_mgmt`], [`Edge::shutdown`]; then
//! drain [`Edge::poll_transmit`] and [`Edge::poll_event`] until both return
//! `None`; then ask [`Edge::poll_timeout`] when to call `handle_timeout`
//! next. Nothing here reads a clock, the OS RNG or a socket.
//!
//! The data path (`encapsulate` / `decapsulate` of PACKETs) writes into
//! caller buffers and does not allocate; control messages and their answers
//! go through an internal queue drained by `poll_transmit`.
//!
//! Not implemented (yet): user/password authentication (`-J`), TCP (`-S2`),
//! the `-L > 1` IP TTL (the port spray is sent with the socket's TTL),
//! reopening the main socket after repeated supernode switches, management
//! subscriptions (`s …` answers `unimplemented`).

mod config;
mod frame;
mod mgmt;
mod payload;
mod peers;
mod reregister;
pub mod rules;
mod rx;
mod stats;

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use n2n_proto::he::{CommunityHe, HeKeyKind};
use n2n_proto::transform::ReplayWindow;
use n2n_proto::types::{
    Auth, Community, CompressionId, DevAddr, DevDesc, Mac, TransformId, cookie,
};
use n2n_proto::wire::{
    self, Header, Message, PACKET_HEADER_LEN, Packet, PacketView, QueryPeer, Register,
    RegisterSuper, UnregisterSuper,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::output::{Datagram, Output, Queued, Seal};
use crate::time::{MAX_DATAGRAM, Now, Transmit};

pub use config::{EdgeConfig, EdgeConfigError, P2pMode, Selection, TapAddrMode};
pub use mgmt::{MgmtAction, MgmtOutcome};
pub use rules::{RuleError, TrafficRule};
pub use stats::{DropReason, EdgeStats};

use payload::{PacketAad, Payload};
use peers::{
    BridgedHost, CRIT_BAD, CRIT_DEFAULT, CRIT_GOOD, MacHashState, MacMap, Peer, PeerTable,
    Supernode,
};

/// Local-discovery multicast group and port (wire.md §1).
pub const MULTICAST_DISCOVERY: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 68), 1968));

/// Version string this edge reports.
pub const VERSION: &str = "3.1.1";

const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(3);
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
const FIRST_SWEEP: Duration = Duration::from_secs(6);
const PURGE_INTERVAL: Duration = Duration::from_secs(30);
const PURGE_AGE: Duration = Duration::from_secs(60);
const BRIDGE_AGE: Duration = Duration::from_secs(300);
/// AEAD replay windows of silent senders are forgotten after this long.
const REPLAY_AGE: Duration = Duration::from_secs(600);
const PENDING_COOKIE_AGE: Duration = Duration::from_secs(15);
const ATTEMPTS: u8 = 3;
const PING_BUDGET_FIRST: usize = 15;
const PING_BUDGET: usize = 5;
/// Events and datagrams kept when the driver does not drain them.
const MAX_QUEUED: usize = 4096;
/// Spare transmit buffers kept for reuse.
const MAX_FREE: usize = 64;
/// Supernode switches without a non-local P2P peer before the driver is
/// asked to reopen the main socket (behaviour.md §2.2).
const REOPEN_AFTER_SWITCHES: u32 = 15;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Several supernodes: PINGs out, waiting for the first PONG.
    Pinging { deadline: Instant },
    /// Auto IP: bootstrap REGISTER_SUPER (null MAC, IP 0) out.
    AddrRequest {
        cookie: Option<u32>,
        deadline: Instant,
    },
    /// Main loop.
    Running,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnWait {
    Registered,
    Waiting,
}

/// The edge state machine.
#[derive(Debug)]
pub struct Edge {
    cfg: EdgeConfig,
    rng: ChaCha20Rng,
    mac: Mac,
    dev_addr: DevAddr,
    desc: DevDesc,
    token: Auth,
    he: Option<CommunityHe>,
    payload: Payload,
    password: crate::mgmt::Password,
    verbosity: u8,

    sns: Vec<Supernode>,
    cur: usize,
    sn_confirmed: bool,
    reopen_count: u32,
    phase: Phase,
    sn_wait: SnWait,
    attempts: u8,
    running_since: Instant,
    last_register_req: Option<Instant>,
    reg_cookie: u32,
    /// Last immediate re-registration asked by RE_REGISTER_SUPER.
    last_fast_rereg: Option<Instant>,
    last_sup: Option<Instant>,
    next_sweep: Instant,
    ping_budget: usize,
    next_purge: Instant,

    known: PeerTable,
    /// How many `known` entries use each socket: spares the linear
    /// [`find_by_sock`](peers::find_by_sock) scan for every PACKET from a
    /// MAC that is not known (relayed traffic). Kept by
    /// [`Edge::known_insert`] / [`Edge::known_remove`], the only places that
    /// add or remove known entries (their `sock` never changes in place).
    known_socks: HashMap<SocketAddr, u32>,
    pending: PeerTable,
    hosts: MacMap<BridgedHost>,
    /// AEAD replay windows per sending MAC, with the last use.
    replay: MacMap<(ReplayWindow, Instant)>,
    last_p2p_rx: Option<Instant>,

    /// The seal step and the control-message queue.
    out: Output,
    /// TTL for datagrams queued now (set only around the `-L` spray).
    tx_ttl: Option<u8>,
    events: VecDeque<Event>,
    stats: EdgeStats,
    scratch: Box<[u8]>,
    /// Our PACKET header (no socket) with a null dstMac and no compression:
    /// each PACKET copies it and patches those two fields.
    packet_head: [u8; PACKET_HEADER_LEN],

    start: Now,
    local_addr: Option<SocketAddr>,
    stopped: bool,
}

impl Edge {
    /// Builds an edge. `rng_seed` seeds every random choice (MAC if none is
    /// configured, simple-id token, cookies, IVs, HE bytes).
    pub fn new(cfg: EdgeConfig, rng_seed: [u8; 32], now: Now) -> Result<Self, EdgeConfigError> {
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
        let payload = Payload::new(
            cfg.transform,
            &cfg.key,
            cfg.compression,
            &cfg.community,
            nonce_seed,
        )?;
        let he = cfg
            .header_encryption
            .then(|| CommunityHe::new(*cfg.community.field()));
        let prev0 = n2n_proto::he::initial_prev(now.he_stamp());
        let sns = cfg
            .supernodes
            .iter()
            .map(|s| Supernode::new(Some(s.clone()), s.parse().ok(), Mac::NULL, false, prev0))
            .collect::<Vec<_>>();
        let phase = if sns.len() > 1 {
            Phase::Pinging { deadline: now.mono }
        } else if cfg.tap_addr == TapAddrMode::Auto {
            Phase::AddrRequest {
                cookie: None,
                deadline: now.mono,
            }
        } else {
            Phase::Running
        };
        let packet_head = packet_header(&cfg.community, mac, payload.transform())?;
        let desc = DevDesc::new(&cfg.desc);
        let password = crate::mgmt::Password::new(&cfg.mgmt_password);
        let verbosity = cfg.verbosity;
        Ok(Self {
            rng,
            mac,
            dev_addr,
            desc,
            token,
            he,
            payload,
            password,
            verbosity,
            sns,
            cur: 0,
            sn_confirmed: false,
            reopen_count: 0,
            phase,
            sn_wait: SnWait::Waiting,
            attempts: ATTEMPTS,
            running_since: now.mono,
            last_register_req: None,
            reg_cookie: 0,
            last_fast_rereg: None,
            last_sup: None,
            next_sweep: now.mono + FIRST_SWEEP,
            ping_budget: PING_BUDGET_FIRST,
            next_purge: now.mono + PURGE_INTERVAL,
            known: MacMap::with_hasher(hs),
            known_socks: HashMap::new(),
            pending: MacMap::with_hasher(hs),
            hosts: MacMap::with_hasher(hs),
            replay: MacMap::with_hasher(hs),
            last_p2p_rx: None,
            out: Output::new(MAX_QUEUED, MAX_FREE),
            tx_ttl: None,
            events: VecDeque::new(),
            stats: EdgeStats::default(),
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            packet_head,
            start: now,
            local_addr: None,
            stopped: false,
            cfg,
        })
    }

    // ------------------------------------------------------------------
    // Accessors

    /// Our TAP MAC.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Our TAP address (0/0 until assigned).
    pub fn tap_addr(&self) -> DevAddr {
        self.dev_addr
    }

    /// The configuration.
    pub fn config(&self) -> &EdgeConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &EdgeStats {
        &self.stats
    }

    /// Registered at least once (PACKETs flow) and not currently waiting
    /// for the supernode.
    pub fn is_registered(&self) -> bool {
        self.last_sup.is_some() && self.sn_wait == SnWait::Registered
    }

    /// The first REGISTER_SUPER_ACK has arrived: PACKETs are sent and accepted.
    pub fn has_registered_once(&self) -> bool {
        self.last_sup.is_some()
    }

    /// The current supernode's address.
    pub fn current_supernode(&self) -> Option<SocketAddr> {
        self.sns.get(self.cur).and_then(|s| s.addr)
    }

    /// Addresses of all known supernodes (configured first, then learnt).
    pub fn supernode_addrs(&self) -> Vec<Option<SocketAddr>> {
        self.sns.iter().map(|s| s.addr).collect()
    }

    /// Pending and known peers.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
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

    /// Should the driver listen on 224.0.0.68:1968 (P2P on and no `-e`)?
    pub fn wants_multicast_discovery(&self) -> bool {
        self.p2p() && self.cfg.preferred_local.is_none()
    }

    /// Current management verbosity.
    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    // ------------------------------------------------------------------
    // Driver inputs besides datagrams

    /// The driver resolved `-l` entry `index` (config order).
    pub fn set_supernode_addr(&mut self, index: usize, addr: SocketAddr) {
        if let Some(sn) = self.sns.get_mut(index)
            && sn.name.is_some()
        {
            sn.addr = Some(addr);
        }
    }

    /// The main socket's local address (management `info`).
    pub fn set_local_addr(&mut self, addr: SocketAddr) {
        self.local_addr = Some(addr);
    }

    /// DHCP mode: the address currently on the TAP.
    pub fn set_tap_addr(&mut self, addr: DevAddr) {
        self.dev_addr = addr;
    }

    /// Queue UNREGISTER_SUPER to the current supernode and stop all timers.
    pub fn shutdown(&mut self, now: Now) {
        if self.stopped {
            return;
        }
        if let Some(dst) = self.current_supernode() {
            let m = UnregisterSuper {
                auth: self.token,
                src_mac: self.mac,
            };
            self.queue_msg(now, dst, &Message::UnregisterSuper(m), HeKeyKind::Dynamic);
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
        self.out.pop()
    }

    /// Hand back a datagram from [`poll_transmit`](Self::poll_transmit)
    /// once it was sent (or failed): its buffer is reused.
    pub fn recycle_transmit(&mut self, d: Datagram) {
        self.out.recycle(d);
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        Some(match self.phase {
            Phase::Pinging { deadline } | Phase::AddrRequest { deadline, .. } => deadline,
            Phase::Running => self
                .register_due()
                .min(self.next_sweep)
                .min(self.next_purge),
        })
    }

    /// Run the timers.
    pub fn handle_timeout(&mut self, now: Now) {
        self.check_known_socks();
        if self.stopped {
            return;
        }
        let t = now.mono;
        match self.phase {
            Phase::Pinging { deadline } => {
                if t >= deadline {
                    self.send_pings(now, self.sns.len().min(PING_BUDGET_FIRST));
                    self.phase = Phase::Pinging {
                        deadline: t + BOOTSTRAP_TIMEOUT,
                    };
                }
            }
            Phase::AddrRequest { cookie, deadline } => {
                if t >= deadline {
                    if cookie.is_some() {
                        // No answer within 3 s: next supernode, cyclically.
                        let from = self.cur;
                        self.cur = (self.cur + 1) % self.sns.len().max(1);
                        if from != self.cur {
                            self.switch_event(from, SwitchReason::Bootstrap);
                        }
                    }
                    let c = self.send_register_super(now, true);
                    self.phase = Phase::AddrRequest {
                        cookie: Some(c),
                        deadline: t + BOOTSTRAP_TIMEOUT,
                    };
                }
            }
            Phase::Running => {
                self.check_registration(now);
                if t >= self.next_sweep {
                    self.sweep(now);
                }
                if t >= self.next_purge {
                    self.purge(now);
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // Phases and registration

    fn enter_running(&mut self, now: Now) {
        self.phase = Phase::Running;
        self.running_since = now.mono;
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = None;
        self.attempts = ATTEMPTS;
        self.next_sweep = now.mono + FIRST_SWEEP;
        self.next_purge = now.mono + PURGE_INTERVAL;
    }

    /// Ends the bootstrap PING phase (first PONG, behaviour.md §2.1).
    fn finish_pinging(&mut self, now: Now) {
        let from = self.cur;
        self.cur = self.best_supernode(None);
        if from != self.cur {
            self.switch_event(from, SwitchReason::Bootstrap);
        }
        if self.cfg.tap_addr == TapAddrMode::Auto {
            self.phase = Phase::AddrRequest {
                cookie: None,
                deadline: now.mono,
            };
        } else {
            self.enter_running(now);
        }
    }

    fn retry_interval(&self) -> Duration {
        (self.cfg.register_interval / 10).max(Duration::from_secs(1))
    }

    fn register_due(&self) -> Instant {
        match self.last_register_req {
            None => self.running_since,
            Some(t) => match self.sn_wait {
                SnWait::Waiting => t + self.retry_interval(),
                SnWait::Registered => t + self.cfg.register_interval,
            },
        }
    }

    fn check_registration(&mut self, now: Now) {
        if now.mono < self.register_due() {
            return;
        }
        if self.attempts == 0 {
            // Abandon the current supernode (behaviour.md §2.2).
            let from = self.cur;
            if let Some(sn) = self.sns.get_mut(self.cur) {
                sn.criterion = CRIT_BAD;
            }
            self.cur = self.best_supernode(Some(from));
            self.attempts = ATTEMPTS;
            self.sn_confirmed = false;
            self.switch_event(from, SwitchReason::Timeout);
            let ephemeral = self
                .local_addr
                .is_none_or(|a| a.port() == 0 || a.port() > 1024);
            if ephemeral && !self.known.values().any(|p| !p.local) {
                self.reopen_count += 1;
                if self.reopen_count >= REOPEN_AFTER_SWITCHES {
                    self.reopen_count = 0;
                    self.push_event(Event::ReopenSocket);
                }
            }
        } else {
            self.attempts -= 1;
        }
        self.send_register_super(now, false);
        if self.wants_multicast_discovery() {
            self.send_multicast_register(now);
        }
        if self.sn_wait == SnWait::Waiting && self.last_register_req.is_some() && self.p2p() {
            // Keep P2P alive while the supernode is gone.
            let silent: Vec<(SocketAddr, Mac, u32)> = self
                .known
                .iter()
                .filter(|(_, p)| {
                    now.mono.saturating_duration_since(p.last_seen) > self.cfg.register_interval
                })
                .filter_map(|(m, p)| p.sock.map(|s| (s, *m, p.last_cookie)))
                .collect();
            for (s, m, c) in silent {
                self.send_register(now, s, m, c);
            }
        }
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = Some(now.mono);
    }

    /// Periodic supernode sweep (behaviour.md §4.2).
    fn sweep(&mut self, now: Now) {
        self.next_sweep = now.mono + SWEEP_INTERVAL;
        if self.sn_wait == SnWait::Registered {
            let best = self.best_supernode(None);
            if best != self.cur {
                if let Some(dst) = self.current_supernode() {
                    let m = UnregisterSuper {
                        auth: self.token,
                        src_mac: self.mac,
                    };
                    self.queue_msg(now, dst, &Message::UnregisterSuper(m), HeKeyKind::Dynamic);
                }
                let from = self.cur;
                self.cur = best;
                self.sn_confirmed = false;
                self.switch_event(from, SwitchReason::Selection);
                self.send_register_super(now, false);
                self.sn_wait = SnWait::Waiting;
                self.attempts = ATTEMPTS;
                self.last_register_req = Some(now.mono);
            }
        }
        let cur = self.cur;
        for (i, sn) in self.sns.iter_mut().enumerate() {
            sn.criterion = if i == cur { CRIT_GOOD } else { CRIT_DEFAULT };
        }
        let budget = self.ping_budget;
        self.ping_budget = PING_BUDGET;
        self.send_pings(now, budget);
    }

    /// Index of the best supernode: smallest criterion, ties broken in
    /// favour of the current one, then cyclically after `after`.
    fn best_supernode(&self, after: Option<usize>) -> usize {
        let n = self.sns.len().max(1);
        let start = after.map_or(0, |a| a + 1);
        let mut best = self.cur;
        let mut best_key = (u64::MAX, usize::MAX);
        for k in 0..n {
            let i = (start + k) % n;
            let Some(sn) = self.sns.get(i) else { continue };
            let unresolved = u64::from(sn.addr.is_none());
            let tie = if after.is_none() && i == self.cur {
                0
            } else {
                k + 1
            };
            let key = (sn.criterion.saturating_add(unresolved), tie);
            if key < best_key {
                best_key = key;
                best = i;
            }
        }
        best
    }

    fn switch_event(&mut self, from: usize, reason: SwitchReason) {
        let from_addr = self.sns.get(from).and_then(|s| s.addr);
        self.push_event(Event::SupernodeSwitched {
            from: from_addr,
            to: self.current_supernode(),
            reason,
        });
    }

    /// PINGs to up to `budget` supernodes (behaviour.md §4.1).
    fn send_pings(&mut self, now: Now, budget: usize) {
        let mut order: Vec<usize> = (0..self.sns.len()).collect();
        order.sort_by_key(|&i| self.sns.get(i).map_or(u64::MAX, |s| s.criterion));
        let chosen: Vec<usize> = if order.len() <= budget {
            order
        } else {
            let first = budget / 2;
            let rest = budget - first;
            let span = order.len() - budget;
            let skip = (self.rng.next_u32() as usize) % (span + 1);
            order
                .iter()
                .take(first)
                .chain(order.iter().skip(first + skip).take(rest))
                .copied()
                .collect()
        };
        for i in chosen {
            let Some(dst) = self.sns.get(i).and_then(|s| s.addr) else {
                continue;
            };
            if let Some(sn) = self.sns.get_mut(i) {
                sn.ping_sent = Some(now.mono);
            }
            let q = QueryPeer {
                src_mac: self.mac,
                target_mac: Mac::NULL,
                aflags: 0,
            };
            self.queue_msg(now, dst, &Message::QueryPeer(q), HeKeyKind::Dynamic);
        }
    }

    /// Purge pending/known peers and bridged hosts (behaviour.md §7).
    fn purge(&mut self, now: Now) {
        self.next_purge = now.mono + PURGE_INTERVAL;
        let old = |p: &Peer| now.mono.saturating_duration_since(p.last_seen) > PURGE_AGE;
        let gone: Vec<Mac> = self
            .pending
            .iter()
            .filter(|(_, p)| old(p))
            .map(|(m, _)| *m)
            .collect();
        for m in gone {
            self.remove_peer(m, false, PeerRemoval::Purged);
        }
        if self.sn_wait == SnWait::Registered {
            let gone: Vec<Mac> = self
                .known
                .iter()
                .filter(|(_, p)| old(p))
                .map(|(m, _)| *m)
                .collect();
            for m in gone {
                self.remove_peer(m, true, PeerRemoval::Purged);
            }
        }
        self.hosts
            .retain(|_, h| now.mono.saturating_duration_since(h.last_seen) <= BRIDGE_AGE);
        self.replay
            .retain(|_, (_, t)| now.mono.saturating_duration_since(*t) <= REPLAY_AGE);
    }

    fn remove_peer(&mut self, mac: Mac, direct: bool, reason: PeerRemoval) -> Option<Peer> {
        let p = if direct {
            self.known_remove(mac)?
        } else {
            self.pending.remove(&mac)?
        };
        self.push_event(Event::PeerRemoved {
            mac,
            sock: p.sock,
            direct,
            reason,
        });
        Some(p)
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

    /// The known entry using `sock`, if any: [`peers::find_by_sock`], but
    /// without the scan when no entry uses it.
    fn known_by_sock(&self, sock: SocketAddr) -> Option<Mac> {
        if !self.known_socks.contains_key(&sock) {
            return None;
        }
        peers::find_by_sock(&self.known, sock)
    }

    /// Debug test builds (unit tests, the `sim` feature): the socket index
    /// matches the known table.
    #[cfg(all(debug_assertions, any(test, feature = "sim")))]
    fn check_known_socks(&self) {
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
    fn check_known_socks(&self) {}

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_QUEUED {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn count_queued(&mut self, q: Queued) {
        if q == Queued::EvictedOldest {
            self.stats.drop(DropReason::QueueFull);
        }
    }

    fn p2p(&self) -> bool {
        self.cfg.p2p == P2pMode::Enabled
    }

    fn new_peer(&self, sock: Option<SocketAddr>, now: Now) -> Peer {
        Peer::new(sock, now.mono, n2n_proto::he::initial_prev(now.he_stamp()))
    }

    // ------------------------------------------------------------------
    // Sending control messages

    fn he_encrypt(&mut self, now: Now, buf: &mut [u8], header_len: usize, kind: HeKeyKind) {
        if let Some(he) = &self.he {
            let seal = Seal {
                he,
                kind,
                header_len: Some(header_len),
                trailer: false,
            };
            // Lengths are ≥ 24 and ≤ MAX_DATAGRAM here: cannot fail.
            let _ = self.out.seal(now, &mut self.rng, &seal, buf, buf.len());
        }
    }

    /// Encode, header-encrypt (whole message) and queue one control message.
    fn queue_msg(&mut self, now: Now, dst: SocketAddr, msg: &Message<'_>, kind: HeKeyKind) {
        let header = Header::new(self.cfg.community);
        let seal = self.he.as_ref().map(|he| Seal {
            he,
            kind,
            header_len: None,
            trailer: false,
        });
        let ttl = self.tx_ttl;
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

    /// REGISTER_SUPER to the current supernode; returns the cookie.
    fn send_register_super(&mut self, now: Now, bootstrap: bool) -> u32 {
        let c = self.rng.next_u32();
        self.reg_cookie = c;
        let (edge_mac, dev_addr) = if bootstrap {
            (Mac::NULL, DevAddr::UNSPECIFIED)
        } else {
            (self.mac, self.dev_addr)
        };
        let m = RegisterSuper {
            cookie: c,
            edge_mac,
            sock: self.cfg.preferred_local.map(Into::into),
            dev_addr,
            dev_desc: self.desc,
            auth: self.token,
            key_time: 0,
        };
        match self.current_supernode() {
            Some(dst) => self.queue_msg(now, dst, &Message::RegisterSuper(m), HeKeyKind::Static),
            None => self.stats.drop(DropReason::NoSupernodeAddress),
        }
        c
    }

    /// REGISTER to a peer (direct, via the supernode or multicast).
    fn send_register(&mut self, now: Now, dst: SocketAddr, peer: Mac, cookie: u32) {
        if !self.p2p() {
            return;
        }
        let m = Register {
            cookie,
            src_mac: self.mac,
            dst_mac: peer,
            sock: None,
            dev_addr: self.dev_addr,
            dev_desc: self.desc,
        };
        self.queue_msg(now, dst, &Message::Register(m), HeKeyKind::Dynamic);
    }

    fn send_register_via_sn(&mut self, now: Now, peer: Mac) {
        match self.current_supernode() {
            Some(sn) => self.send_register(now, sn, peer, cookie::FORWARDED),
            None => self.stats.drop(DropReason::NoSupernodeAddress),
        }
    }

    fn send_multicast_register(&mut self, now: Now) {
        if self.wants_multicast_discovery() {
            self.send_register(now, MULTICAST_DISCOVERY, Mac::NULL, cookie::MCAST);
        }
    }

    // ------------------------------------------------------------------
    // Data path: TAP → network

    /// A frame read from the TAP. Returns the datagram to send (written to
    /// `out`, ≥ [`MAX_DATAGRAM`] bytes), or `None` when the frame was
    /// dropped (counted) or its copies were queued to `poll_transmit`.
    pub fn encapsulate(&mut self, now: Now, frame: &[u8], out: &mut [u8]) -> Option<Transmit> {
        let r = match self.encapsulate_inner(now, frame, out) {
            Ok(t) => t,
            Err(r) => {
                self.stats.drop(r);
                None
            }
        };
        self.check_known_socks();
        r
    }

    fn encapsulate_inner(
        &mut self,
        now: Now,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Option<Transmit>, DropReason> {
        if frame.len() < frame::ETH_HEADER_LEN {
            return Err(DropReason::FrameTooShort);
        }
        if self.last_sup.is_none() || self.stopped {
            return Err(DropReason::NotRegistered);
        }
        let dst = frame::dst_mac(frame);
        if dst.is_multicast() && !self.cfg.multicast {
            return Err(DropReason::MulticastDisabled);
        }
        if !self.cfg.routing
            && let Some(src_ip) = frame::ipv4_src(frame)
            && src_ip != self.dev_addr.ip
        {
            return Err(DropReason::ForeignSourceIp);
        }
        if !rules::allows(&self.cfg.traffic_rules, frame) {
            return Err(DropReason::TrafficRule);
        }
        let mut pkt_dst = dst;
        if self.cfg.routing
            && !dst.is_multi_or_broadcast()
            && let Some(h) = self.hosts.get(&dst)
        {
            pkt_dst = h.edge;
        }
        let len = self.build_packet(now, frame, pkt_dst, out)?;
        self.stats.transop_tx += 1;

        if pkt_dst.is_multi_or_broadcast() {
            if self.sn_wait == SnWait::Waiting {
                // Supernode lost: straight to every known peer.
                let socks: Vec<SocketAddr> = self.known.values().filter_map(|p| p.sock).collect();
                let Some((first, rest)) = socks.split_first() else {
                    return Err(DropReason::NoDestination);
                };
                let data = out.get(..len).ok_or(DropReason::FrameTooLarge)?;
                for s in rest {
                    let q = self.out.push_copy(*s, None, data);
                    self.count_queued(q);
                }
                self.stats.p2p_tx += socks.len() as u64;
                return Ok(Some(Transmit {
                    dst: *first,
                    len,
                    ttl: None,
                }));
            }
            let sn = self
                .current_supernode()
                .ok_or(DropReason::NoSupernodeAddress)?;
            self.stats.super_tx += 1;
            self.stats.super_broadcast_tx += 1;
            return Ok(Some(Transmit {
                dst: sn,
                len,
                ttl: None,
            }));
        }

        let half = self.cfg.register_interval / 2;
        if let Some(p) = self.known.get(&pkt_dst) {
            let fresh = p
                .last_p2p
                // = `now − t < half`, without the Instant subtraction.
                .is_some_and(|t| t.checked_add(half).is_some_and(|end| now.mono < end));
            if fresh && let Some(s) = p.sock {
                self.stats.p2p_tx += 1;
                return Ok(Some(Transmit {
                    dst: s,
                    len,
                    ttl: None,
                }));
            }
            self.remove_peer(pkt_dst, true, PeerRemoval::Stale);
        }
        let sn = self
            .current_supernode()
            .ok_or(DropReason::NoSupernodeAddress)?;
        self.stats.super_tx += 1;
        if self.p2p() {
            self.query_peer(now, pkt_dst);
        }
        Ok(Some(Transmit {
            dst: sn,
            len,
            ttl: None,
        }))
    }

    /// Writes the (header-encrypted) PACKET for `frame` into `out`.
    fn build_packet(
        &mut self,
        now: Now,
        frame: &[u8],
        pkt_dst: Mac,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        let need = PACKET_HEADER_LEN + frame.len() + self.payload.overhead();
        if out.len() < need.min(MAX_DATAGRAM) || need > out.len() {
            return Err(DropReason::FrameTooLarge);
        }
        let mut random = [0u8; 16];
        if self.payload.needs_random() {
            self.rng.fill_bytes(&mut random);
        }
        let aad = PacketAad {
            community: self.cfg.community.field(),
            src_mac: self.mac.0,
            dst_mac: pkt_dst.0,
        };
        let (head, body) = out
            .split_at_mut_checked(PACKET_HEADER_LEN)
            .ok_or(DropReason::FrameTooLarge)?;
        let (comp, plen) = self
            .payload
            .encode(frame, random, &aad, &mut self.scratch, body)?;
        let head: &mut [u8; PACKET_HEADER_LEN] =
            head.try_into().map_err(|_| DropReason::FrameTooLarge)?;
        *head = self.packet_head;
        patch_packet_header(head, pkt_dst, comp);
        let len = PACKET_HEADER_LEN + plen;
        let dgram = out.get_mut(..len).ok_or(DropReason::FrameTooLarge)?;
        self.he_encrypt(now, dgram, PACKET_HEADER_LEN, HeKeyKind::Dynamic);
        Ok(len)
    }

    /// Unknown destination: make sure a pending entry exists and ask the
    /// supernode about it, at most once per interval (behaviour.md §5.2).
    fn query_peer(&mut self, now: Now, mac: Mac) {
        if !self.pending.contains_key(&mac) {
            let p = self.new_peer(None, now);
            self.pending.insert(mac, p);
            self.push_event(Event::PeerAdded {
                mac,
                sock: None,
                direct: false,
            });
        }
        let interval = self.cfg.register_interval;
        let due = self.pending.get(&mac).is_some_and(|p| {
            p.last_sent_query
                .is_none_or(|t| now.mono.saturating_duration_since(t) > interval)
        });
        if !due {
            return;
        }
        if let Some(p) = self.pending.get_mut(&mac) {
            p.last_sent_query = Some(now.mono);
        }
        self.send_register_via_sn(now, mac);
        if let Some(sn) = self.current_supernode() {
            let q = QueryPeer {
                src_mac: self.mac,
                target_mac: mac,
                aflags: 0,
            };
            self.queue_msg(now, sn, &Message::QueryPeer(q), HeKeyKind::Dynamic);
        }
    }

    /// The gratuitous ARPs after the first registration (behaviour.md §6.4).
    fn send_gratuitous_arps(&mut self, now: Now) {
        if self.dev_addr.ip.is_unspecified() {
            return;
        }
        let f = frame::gratuitous_arp(self.mac, self.dev_addr.ip);
        for _ in 0..2 {
            let mut b = self.out.take();
            if let Ok(Some(t)) = self.encapsulate_inner(now, &f, b.bytes_mut()) {
                let q = self.out.push(t.dst, None, b, t.len);
                self.count_queued(q);
            } else {
                self.out.discard(b);
            }
        }
    }

    /// The transform this edge uses.
    pub fn transform(&self) -> TransformId {
        self.payload.transform()
    }

    /// The compression this edge applies to frames it sends.
    pub fn compression(&self) -> CompressionId {
        self.payload.compression()
    }

    /// The community.
    pub fn community(&self) -> &Community {
        &self.cfg.community
    }
}

/// Our PACKET header template: `Packet::emit_header` with a null dstMac and
/// no compression.
fn packet_header(
    community: &Community,
    mac: Mac,
    transform: TransformId,
) -> Result<[u8; PACKET_HEADER_LEN], EdgeConfigError> {
    let mut head = [0u8; PACKET_HEADER_LEN];
    let pkt = Packet {
        src_mac: mac,
        dst_mac: Mac::NULL,
        sock: None,
        compression: CompressionId::None.into(),
        transform: transform.into(),
        payload: &[],
    };
    match pkt.emit_header(&Header::new(*community), &mut head) {
        Ok(PACKET_HEADER_LEN) => Ok(head),
        _ => Err(EdgeConfigError::Transform(
            "PACKET header does not fit".to_owned(),
        )),
    }
}

/// Sets dstMac and the compression id in a copy of the template.
#[inline]
fn patch_packet_header(head: &mut [u8; PACKET_HEADER_LEN], dst: Mac, comp: CompressionId) {
    if let Ok(mut v) = PacketView::new_checked(&mut head[..]) {
        v.set_dst_mac(dst);
        v.set_compression(comp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_header_template_matches_emit_header() {
        let community = Community::new("rocks").unwrap();
        let src = Mac([2, 0, 0, 0, 0, 1]);
        for tid in TransformId::ALL {
            let tpl = packet_header(&community, src, tid).unwrap();
            for dst in [
                Mac([2, 0, 0, 0, 0, 2]),
                Mac::BROADCAST,
                Mac([0x01, 0x00, 0x5e, 1, 2, 3]),
            ] {
                for comp in [CompressionId::None, CompressionId::Lzo, CompressionId::Zstd] {
                    let mut want = [0u8; PACKET_HEADER_LEN];
                    let pkt = Packet {
                        src_mac: src,
                        dst_mac: dst,
                        sock: None,
                        compression: comp.into(),
                        transform: tid.into(),
                        payload: &[],
                    };
                    let n = pkt.emit_header(&Header::new(community), &mut want);
                    assert_eq!(n, Ok(PACKET_HEADER_LEN));
                    let mut got = tpl;
                    patch_packet_header(&mut got, dst, comp);
                    assert_eq!(got, want, "transform {tid} dst {dst} comp {comp}");
                }
            }
        }
    }
}
