//! Registration and supernode selection (behaviour.md §2, §4): the
//! supernode list, the bootstrap phases (PING round, auto-IP request), the
//! REGISTER_SUPER cadence with its attempts and failover, the periodic
//! sweep that re-selects by load, RTT or MAC, and the answers to all of
//! that (PONG, REGISTER_SUPER_ACK/NAK, RE_REGISTER_SUPER).
//!
//! [`Registration`] owns this state. Timers: [`Registration::poll_timeout`]
//! (phase deadline, next REGISTER_SUPER, next sweep) and
//! [`Registration::handle_timeout`].
//!
//! # RE_REGISTER_SUPER (extension of behaviour.md §2.3)
//!
//! C edges act on RE_REGISTER_SUPER only in user/password mode. This edge
//! also acts on it without user/password, because this crate's supernode
//! sends it to senders it does not know (after a restart, see
//! [`crate::supernode`]): then relayed traffic resumes at once instead of at
//! the next regular REGISTER_SUPER (`-i`). It is accepted only from the
//! current supernode's socket (FROM_SUPERNODE set, header-encryption stamp
//! verified when `-H`), only in the main loop, and acted upon at most once
//! per [`FAST_REREGISTER_MIN_GAP`]; everything else is a counted drop.
//! REGISTER_SUPER goes out immediately; without user/password the regular
//! interval restarts from now (no random back-off). With user/password (the
//! supernode is about to change the dynamic key, crypto.md §5.7) the next
//! regular REGISTER_SUPER is brought forward by a random 0 .. 3·interval/4
//! seconds, as C sets `last_register_req` back (behaviour.md §2.3); the
//! fast retry while waiting for the ACK still counts from the real send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use n2n_proto::he;
use n2n_proto::types::Mac;
use n2n_proto::wire::{PeerInfo, RegisterSuperAck, RegisterSuperNak, VERSION_FIELD_LEN};
use rand_chacha::rand_core::Rng;

use super::config::{EdgeConfig, P2pMode, Selection, TapAddrMode};
use super::ctx::Ctx;
use super::peers::Peers;
use super::stats::DropReason;
use super::{Event, SwitchReason};
use crate::Now;

/// Minimum gap between two re-registrations triggered by RE_REGISTER_SUPER.
pub(super) const FAST_REREGISTER_MIN_GAP: Duration = Duration::from_secs(1);

const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(3);
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
const FIRST_SWEEP: Duration = Duration::from_secs(6);
const ATTEMPTS: u8 = 3;
/// The same over TCP (`-S2`).
const ATTEMPTS_TCP: u8 = 1;
const PING_BUDGET_FIRST: usize = 15;
const PING_BUDGET: usize = 5;
/// Supernode switches without a non-local P2P peer before the driver is
/// asked to reopen the main socket (behaviour.md §2.2).
const REOPEN_AFTER_SWITCHES: u32 = 15;

/// Criterion values (behaviour.md §4.2): smaller is better.
pub(super) const CRIT_GOOD: u64 = (1 << 63) - 3;
const CRIT_DEFAULT: u64 = (1 << 63) - 2;
const CRIT_BAD: u64 = (1 << 63) - 1;

/// One supernode the edge knows (from `-l` or learnt from an ACK list).
#[derive(Debug, Clone)]
pub(super) struct Supernode {
    /// `-l` text (None for learnt supernodes).
    pub name: Option<String>,
    pub addr: Option<SocketAddr>,
    pub mac: Mac,
    /// Learnt from an ACK list (shown as purgeable; never purged by edges).
    pub purgeable: bool,
    pub criterion: u64,
    /// Last PONG.
    pub last_seen: Option<Instant>,
    pub uptime: u32,
    pub version: [u8; VERSION_FIELD_LEN],
    pub he_prev: u64,
    ping_sent: Option<Instant>,
}

impl Supernode {
    fn new(
        name: Option<String>,
        addr: Option<SocketAddr>,
        mac: Mac,
        purgeable: bool,
        he_prev: u64,
    ) -> Self {
        Self {
            name,
            addr,
            mac,
            purgeable,
            criterion: CRIT_DEFAULT,
            last_seen: None,
            uptime: 0,
            version: [0; VERSION_FIELD_LEN],
            he_prev,
            ping_sent: None,
        }
    }

    pub(super) fn version_str(&self) -> String {
        let end = self
            .version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(VERSION_FIELD_LEN);
        String::from_utf8_lossy(self.version.get(..end).unwrap_or(&[])).into_owned()
    }
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

/// What an accepted REGISTER_SUPER_ACK means for the rest of the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Acked {
    /// The auto-IP answer: the main loop starts.
    Bootstrapped,
    /// A (re)registration; `first` = the very first one of this edge.
    Registered { first: bool },
}

/// The registration sub-machine.
#[derive(Debug)]
pub(super) struct Registration {
    sns: Vec<Supernode>,
    cur: usize,
    phase: Phase,
    sn_wait: SnWait,
    attempts: u8,
    /// 3, or 1 over TCP (behaviour.md §2.2).
    max_attempts: u8,
    /// `-S2`: one TCP connection to the current supernode only.
    tcp: bool,
    /// The current supernode acknowledged us since the last switch.
    sn_confirmed: bool,
    reopen_count: u32,
    running_since: Instant,
    last_register_req: Option<Instant>,
    /// How far the next regular REGISTER_SUPER is brought forward: the
    /// random set-back of a user/password RE_REGISTER_SUPER (behaviour.md
    /// §2.3), zero otherwise.
    backoff: Duration,
    reg_cookie: u32,
    /// Last immediate re-registration asked by RE_REGISTER_SUPER.
    last_fast_rereg: Option<Instant>,
    /// Last sign of life of the supernode (ACK, relayed PACKET); `None`
    /// until the first ACK.
    last_sup: Option<Instant>,
    next_sweep: Instant,
    ping_budget: usize,
}

impl Registration {
    pub(super) fn new(cfg: &EdgeConfig, now: Now) -> Self {
        let prev0 = he::initial_prev(now.he_stamp());
        let sns: Vec<Supernode> = cfg
            .supernodes
            .iter()
            .map(|s| Supernode::new(Some(s.clone()), s.parse().ok(), Mac::NULL, false, prev0))
            .collect();
        // behaviour.md §2.1: PINGs pick the first supernode only without
        // user/password (before its REGISTER_SUPER_ACK the edge has no
        // dynamic key, and a user/password supernode drops anything but a
        // REGISTER_SUPER under the static key): else the first `-l` it is.
        // Over TCP (`-S2`) only the current supernode is reachable: no PINGs.
        let tcp = cfg.p2p == P2pMode::SupernodeTcp;
        let max_attempts = if tcp { ATTEMPTS_TCP } else { ATTEMPTS };
        let phase = if sns.len() > 1 && cfg.user_password.is_none() && !tcp {
            Phase::Pinging { deadline: now.mono }
        } else if cfg.tap_addr == TapAddrMode::Auto {
            Phase::AddrRequest {
                cookie: None,
                deadline: now.mono,
            }
        } else {
            Phase::Running
        };
        Self {
            sns,
            cur: 0,
            phase,
            sn_wait: SnWait::Waiting,
            attempts: max_attempts,
            max_attempts,
            tcp,
            sn_confirmed: false,
            reopen_count: 0,
            running_since: now.mono,
            last_register_req: None,
            backoff: Duration::ZERO,
            reg_cookie: 0,
            last_fast_rereg: None,
            last_sup: None,
            next_sweep: now.mono + FIRST_SWEEP,
            ping_budget: PING_BUDGET_FIRST,
        }
    }

    // ------------------------------------------------------------------
    // Views

    /// In the main loop (bootstrap done).
    pub(super) fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// The current supernode has acknowledged the last REGISTER_SUPER.
    pub(super) fn sn_registered(&self) -> bool {
        self.sn_wait == SnWait::Registered
    }

    /// Last sign of life of the supernode (`None` before the first ACK).
    pub(super) fn last_sup(&self) -> Option<Instant> {
        self.last_sup
    }

    /// The supernode relayed something: it is alive.
    pub(super) fn supernode_seen(&mut self, now: Now) {
        self.last_sup = Some(now.mono);
    }

    pub(super) fn supernodes(&self) -> &[Supernode] {
        &self.sns
    }

    /// Index of the current supernode in [`Self::supernodes`].
    pub(super) fn current(&self) -> usize {
        self.cur
    }

    pub(super) fn current_supernode(&self) -> Option<SocketAddr> {
        self.sns.get(self.cur).and_then(|s| s.addr)
    }

    pub(super) fn index_by_addr(&self, from: SocketAddr) -> Option<usize> {
        self.sns.iter().position(|s| s.addr == Some(from))
    }

    /// The header-encryption `prev` stamp of supernode `i`.
    pub(super) fn stamp_prev_mut(&mut self, i: usize) -> Option<&mut u64> {
        self.sns.get_mut(i).map(|s| &mut s.he_prev)
    }

    /// `-l` entry `index` was resolved.
    pub(super) fn set_supernode_addr(&mut self, index: usize, addr: SocketAddr) {
        if let Some(sn) = self.sns.get_mut(index)
            && sn.name.is_some()
        {
            sn.addr = Some(addr);
        }
    }

    // ------------------------------------------------------------------
    // Timers

    /// When [`Self::handle_timeout`] has something to do.
    pub(super) fn poll_timeout(&self, cfg: &EdgeConfig) -> Instant {
        match self.phase {
            Phase::Pinging { deadline } | Phase::AddrRequest { deadline, .. } => deadline,
            Phase::Running => self.register_due(cfg).min(self.next_sweep),
        }
    }

    /// Bootstrap steps, the REGISTER_SUPER round, the sweep. `peers` is
    /// read for the socket-reopen rule and the keep-alive REGISTERs.
    pub(super) fn handle_timeout(&mut self, now: Now, ctx: &mut Ctx, peers: &Peers) {
        let t = now.mono;
        match self.phase {
            Phase::Pinging { deadline } => {
                if t >= deadline {
                    self.send_pings(now, ctx, self.sns.len().min(PING_BUDGET_FIRST));
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
                            self.switch_event(ctx, from, SwitchReason::Bootstrap);
                        }
                    }
                    let c = self.send_register_super(now, ctx, true);
                    self.phase = Phase::AddrRequest {
                        cookie: Some(c),
                        deadline: t + BOOTSTRAP_TIMEOUT,
                    };
                }
            }
            Phase::Running => {
                self.check_registration(now, ctx, peers);
                if t >= self.next_sweep {
                    self.sweep(now, ctx);
                }
            }
        }
    }

    fn enter_running(&mut self, now: Now) {
        self.phase = Phase::Running;
        self.running_since = now.mono;
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = None;
        self.attempts = self.max_attempts;
        self.next_sweep = now.mono + FIRST_SWEEP;
    }

    /// Ends the bootstrap PING phase (first PONG, behaviour.md §2.1).
    fn finish_pinging(&mut self, now: Now, ctx: &mut Ctx) {
        let from = self.cur;
        self.cur = self.best_supernode(None);
        if from != self.cur {
            self.switch_event(ctx, from, SwitchReason::Bootstrap);
        }
        if ctx.cfg.tap_addr == TapAddrMode::Auto {
            self.phase = Phase::AddrRequest {
                cookie: None,
                deadline: now.mono,
            };
        } else {
            self.enter_running(now);
        }
    }

    fn register_due(&self, cfg: &EdgeConfig) -> Instant {
        match self.last_register_req {
            None => self.running_since,
            Some(t) => match self.sn_wait {
                SnWait::Waiting => t + (cfg.register_interval / 10).max(Duration::from_secs(1)),
                SnWait::Registered => t + cfg.register_interval.saturating_sub(self.backoff),
            },
        }
    }

    fn send_register_super(&mut self, now: Now, ctx: &mut Ctx, bootstrap: bool) -> u32 {
        let c = ctx.send_register_super(now, self.current_supernode(), bootstrap);
        self.reg_cookie = c;
        c
    }

    fn check_registration(&mut self, now: Now, ctx: &mut Ctx, peers: &Peers) {
        if now.mono < self.register_due(&ctx.cfg) {
            return;
        }
        if self.attempts == 0 {
            // Abandon the current supernode (behaviour.md §2.2).
            let from = self.cur;
            if let Some(sn) = self.sns.get_mut(self.cur) {
                sn.criterion = CRIT_BAD;
            }
            self.cur = self.best_supernode(Some(from));
            self.attempts = self.max_attempts;
            self.sn_confirmed = false;
            self.switch_event(ctx, from, SwitchReason::Timeout);
            let ephemeral = ctx
                .me
                .local_addr
                .is_none_or(|a| a.port() == 0 || a.port() > 1024);
            if ephemeral && !peers.has_remote_known() {
                self.reopen_count += 1;
                if self.reopen_count >= REOPEN_AFTER_SWITCHES {
                    self.reopen_count = 0;
                    ctx.event(Event::ReopenSocket);
                }
            }
        } else {
            self.attempts -= 1;
        }
        self.send_register_super(now, ctx, false);
        ctx.send_multicast_register(now);
        if self.sn_wait == SnWait::Waiting && self.last_register_req.is_some() && ctx.p2p() {
            // Keep P2P alive while the supernode is gone.
            for (s, m, c) in peers.silent_known(now, ctx.cfg.register_interval) {
                ctx.send_register(now, s, m, c, None);
            }
        }
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = Some(now.mono);
        self.backoff = Duration::ZERO;
    }

    /// Periodic supernode sweep (behaviour.md §4.2).
    fn sweep(&mut self, now: Now, ctx: &mut Ctx) {
        self.next_sweep = now.mono + SWEEP_INTERVAL;
        if self.tcp {
            // `-S2`: no PINGs to the others; only timeouts switch.
            return;
        }
        if self.sn_wait == SnWait::Registered {
            let best = self.best_supernode(None);
            if best != self.cur {
                if let Some(dst) = self.current_supernode() {
                    ctx.send_unregister_super(now, dst);
                }
                let from = self.cur;
                self.cur = best;
                self.sn_confirmed = false;
                self.switch_event(ctx, from, SwitchReason::Selection);
                self.send_register_super(now, ctx, false);
                self.sn_wait = SnWait::Waiting;
                self.attempts = self.max_attempts;
                self.last_register_req = Some(now.mono);
                self.backoff = Duration::ZERO;
            }
        }
        let cur = self.cur;
        for (i, sn) in self.sns.iter_mut().enumerate() {
            sn.criterion = if i == cur { CRIT_GOOD } else { CRIT_DEFAULT };
        }
        let budget = self.ping_budget;
        self.ping_budget = PING_BUDGET;
        self.send_pings(now, ctx, budget);
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

    fn switch_event(&self, ctx: &mut Ctx, from: usize, reason: SwitchReason) {
        let from_addr = self.sns.get(from).and_then(|s| s.addr);
        ctx.event(Event::SupernodeSwitched {
            from: from_addr,
            to: self.current_supernode(),
            reason,
        });
    }

    /// PINGs to up to `budget` supernodes (behaviour.md §4.1).
    fn send_pings(&mut self, now: Now, ctx: &mut Ctx, budget: usize) {
        let mut order: Vec<usize> = (0..self.sns.len()).collect();
        order.sort_by_key(|&i| self.sns.get(i).map_or(u64::MAX, |s| s.criterion));
        let chosen: Vec<usize> = if order.len() <= budget {
            order
        } else {
            let first = budget / 2;
            let rest = budget - first;
            let span = order.len() - budget;
            let skip = (ctx.rng.next_u32() as usize) % (span + 1);
            order
                .iter()
                .take(first)
                .chain(order.iter().skip(first + skip).take(rest))
                .copied()
                .collect()
        };
        for i in chosen {
            let Some(sn) = self.sns.get_mut(i) else {
                continue;
            };
            let Some(dst) = sn.addr else {
                continue;
            };
            sn.ping_sent = Some(now.mono);
            ctx.send_query_peer(now, dst, Mac::NULL);
        }
    }

    // ------------------------------------------------------------------
    // Answers from supernodes (stamps already verified by the caller)

    /// A PONG (PEER_INFO answering a PING) from `from`: the supernode's
    /// criterion for the next selection; the first one ends the PING phase.
    pub(super) fn on_pong(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        from: SocketAddr,
        pi: &PeerInfo,
        peers: &Peers,
    ) -> Result<(), DropReason> {
        let idx = self
            .sns
            .iter()
            .position(|s| !s.mac.is_null() && s.mac == pi.src_mac)
            .or_else(|| self.index_by_addr(from))
            .ok_or(DropReason::UnknownPong)?;
        let n_peers = (peers.known().len() + peers.pending().len()) as u64;
        let he_factor = if ctx.he().is_some() { 2 } else { 1 };
        let common = peers.pending().len() as u64 * he_factor / (self.sns.len().max(1) as u64);
        let cur = self.cur;
        let selection = ctx.cfg.selection;
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
                    c = c * n_peers / (n_peers + 1);
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
            self.finish_pinging(now, ctx);
        }
        Ok(())
    }

    /// A REGISTER_SUPER_ACK from supernode `idx` at `from`.
    pub(super) fn on_ack(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        from: SocketAddr,
        idx: usize,
        ack: &RegisterSuperAck<'_>,
    ) -> Result<Acked, DropReason> {
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
                    self.switch_event(ctx, old, SwitchReason::Bootstrap);
                }
                if !ack.dev_addr.is_unspecified() {
                    ctx.me.dev_addr = ack.dev_addr;
                    ctx.event(Event::AssignAddress(ack.dev_addr));
                }
                self.enter_running(now);
                Ok(Acked::Bootstrapped)
            }
            Phase::Running => {
                if self.sn_wait == SnWait::Registered {
                    return Err(DropReason::UnsolicitedAck);
                }
                if ack.cookie != self.reg_cookie {
                    return Err(DropReason::StaleCookie);
                }
                self.sn_wait = SnWait::Registered;
                self.attempts = self.max_attempts;
                self.learn_sn_mac(idx, ack.src_mac);
                self.learn_supernodes(now, ctx, ack);
                let first = self.last_sup.is_none();
                self.last_sup = Some(now.mono);
                if !self.sn_confirmed {
                    self.sn_confirmed = true;
                    ctx.event(Event::Registered {
                        supernode: from,
                        first,
                    });
                }
                Ok(Acked::Registered { first })
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

    fn learn_supernodes(&mut self, now: Now, ctx: &mut Ctx, ack: &RegisterSuperAck<'_>) {
        for e in ack.sn_list.iter() {
            let Some(sock) = e.sock() else { continue };
            let addr = sock.addr();
            let known = self
                .sns
                .iter()
                .any(|s| s.addr == Some(addr) || (!e.mac.is_null() && s.mac == e.mac));
            if known || e.mac == ctx.me.mac {
                continue;
            }
            let prev = he::initial_prev(now.he_stamp());
            self.sns
                .push(Supernode::new(None, Some(addr), e.mac, true, prev));
            ctx.event(Event::SupernodeLearned {
                sock: addr,
                mac: e.mac,
            });
        }
    }

    /// A REGISTER_SUPER_NAK from `from`: reported, we keep trying.
    pub(super) fn on_nak(
        &mut self,
        ctx: &mut Ctx,
        from: SocketAddr,
        nak: &RegisterSuperNak,
    ) -> Result<(), DropReason> {
        let expected = match self.phase {
            Phase::AddrRequest { cookie, .. } => cookie,
            // behaviour.md §2: the right cookie is enough. In a federation
            // the NAK of another supernode (spoofing protection) comes after
            // the ACK of ours, through it.
            Phase::Running => Some(self.reg_cookie),
            Phase::Pinging { .. } => None,
        };
        if expected != Some(nak.cookie) {
            return Err(DropReason::StaleCookie);
        }
        ctx.event(Event::RegistrationNak { supernode: from });
        Ok(())
    }

    /// `-S2`: the driver's TCP connection to the current supernode is
    /// (re)established: register on it now (a restarted supernode, or
    /// another one after failover, does not know this edge).
    pub(super) fn tcp_connected(&mut self, now: Now, ctx: &mut Ctx) {
        if self.phase != Phase::Running {
            // The bootstrap steps send their REGISTER_SUPER on their own timer.
            return;
        }
        self.send_register_super(now, ctx, false);
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = Some(now.mono);
        self.backoff = Duration::ZERO;
    }

    /// Over TCP (`-S2`).
    pub(super) fn is_tcp(&self) -> bool {
        self.tcp
    }

    /// RE_REGISTER_SUPER from supernode `sn_idx` (see the module docs).
    pub(super) fn on_re_register(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
    ) -> Result<(), DropReason> {
        let idx = sn_idx
            .filter(|&i| i == self.cur)
            .ok_or(DropReason::ReRegisterNotCurrent)?;
        if let Some(stamp) = stamp {
            let prev = self.stamp_prev_mut(idx);
            he::verify_stamp(stamp, now.he_stamp(), prev, false)
                .map_err(|_| DropReason::HeStampRejected)?;
        }
        if self.phase != Phase::Running {
            return Err(DropReason::ReRegisterIgnored);
        }
        if self
            .last_fast_rereg
            .is_some_and(|t| now.mono.saturating_duration_since(t) < FAST_REREGISTER_MIN_GAP)
        {
            return Err(DropReason::ReRegisterRateLimited);
        }
        self.last_fast_rereg = Some(now.mono);
        self.send_register_super(now, ctx, false);
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = Some(now.mono);
        self.backoff = if ctx.auth.is_some() {
            // behaviour.md §2.3: the next regular re-registrations of the
            // many edges told at once must not coincide.
            let span = (ctx.cfg.register_interval.as_secs() * 3 / 4).max(1);
            Duration::from_secs(u64::from(ctx.rng.next_u32()) % span)
        } else {
            Duration::ZERO
        };
        Ok(())
    }
}
