//! Supernode federation (behaviour.md §9.10, crypto.md §6): the table of
//! federated supernodes, their REGISTER_SUPER / REGISTER_SUPER_ACK exchange
//! in the hidden federation community, the supernode list handed out in
//! every REGISTER_SUPER_ACK, key_time adoption, the associations "edge MAC →
//! supernode", and the fan-out helper the forwarding handlers use.
//!
//! Members: supernodes given with `-l` (never purged; unknown MAC until
//! they answer; their address is re-resolved by the driver with
//! [`Supernode::set_federation_addr`]), supernodes learnt from
//! REGISTER_SUPER_ACK lists (added as last seen 60 s ago) and supernodes
//! that register with us. At most [`SupernodeConfig::max_federation`]
//! members; a new one beyond that is a counted drop (`federation_full`).
//!
//! Timers: every [`FED_INTERVAL`] learnt members silent for
//! [`FED_PURGE_AFTER`] are purged, associations older than
//! [`ASSOC_TIMEOUT`] dropped, and every member silent for more than
//! [`FED_REREGISTER_AFTER`] gets a REGISTER_SUPER.
//!
//! Deliberate differences from C (README migration table): the ACK list
//! rotates through all eligible members when there are more than 44 (C
//! skips a random number of leading entries, so some are never listed);
//! an association is updated when an edge moves (C only creates them); the
//! association table is bounded ([`MAX_ASSOCIATIONS`]).
//!
//! [`SupernodeConfig::max_federation`]: super::SupernodeConfig::max_federation

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use n2n_proto::he::{self, HeKeyKind};
use n2n_proto::types::{Auth, Community, DevAddr, DevDesc, Mac, PeerSock};
use n2n_proto::wire::{
    self, Flags, Header, Message, RegisterSuper, RegisterSuperAck, SnEntry, SnListBuf,
};
use rand_chacha::rand_core::Rng;

use super::SupernodeEvent;
use super::core::Supernode;
use super::intake::Inbound;
use super::io::{Io, check_stamp, seal};
use super::register::REGISTRATION_LIFETIME;
use super::stats::DropReason;
use crate::Now;
use crate::output::Seal;

/// Federation re-registration and purge run (RE_REG_AND_PURGE_FREQUENCY).
pub const FED_INTERVAL: Duration = Duration::from_secs(10);
/// Members silent for longer get a REGISTER_SUPER at the next run.
pub const FED_REREGISTER_AFTER: Duration = Duration::from_secs(20);
/// Learnt members silent for this long are purged.
pub const FED_PURGE_AFTER: Duration = Duration::from_secs(90);
/// Members seen within this are listed in REGISTER_SUPER_ACKs.
pub const FED_LIST_WITHIN: Duration = Duration::from_secs(60);
/// Members seen within this get forwarded traffic.
pub const FED_FORWARD_WITHIN: Duration = Duration::from_secs(90);
/// Associations (edge MAC → supernode) older than this are dropped.
pub const ASSOC_TIMEOUT: Duration = Duration::from_secs(180);
/// Default cap on federation members.
pub const DEFAULT_MAX_FEDERATION: usize = 256;
/// Cap on associations (edge MAC → supernode); beyond it new ones are not
/// remembered (the traffic then goes to every member, as without one).
pub const MAX_ASSOCIATIONS: usize = 1 << 16;

/// A `-l` supernode as configured: its text and its resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationPeer {
    /// `host:port` as given.
    pub name: String,
    /// Resolved address (`None` until the name resolves).
    pub addr: Option<SocketAddr>,
}

/// A federation member, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationInfo {
    /// `-l` text, `None` for a learnt member.
    pub name: Option<String>,
    /// Address.
    pub addr: Option<SocketAddr>,
    /// MAC (null until known).
    pub mac: Mac,
    /// Unix seconds of the last datagram from it (0: never).
    pub last_seen_unix: u64,
    /// Seen within the forwarding window (90 s).
    pub alive: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FedPeer {
    pub(crate) name: Option<String>,
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) mac: Mac,
    /// Last datagram from it (learnt ones start 60 s in the past).
    pub(crate) last_seen: Option<Instant>,
    pub(crate) last_seen_unix: u64,
    /// Cookie of our last REGISTER_SUPER to it.
    pub(crate) cookie: Option<u32>,
    /// Last accepted header-encryption stamp of anything it sent.
    pub(crate) stamp_prev: u64,
}

impl FedPeer {
    fn seen_within(&self, now: Instant, d: Duration) -> bool {
        self.last_seen
            .is_some_and(|t| now.saturating_duration_since(t) < d)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Assoc {
    pub(crate) sn: SocketAddr,
    pub(crate) since: Instant,
}

/// The federation state of a supernode.
#[derive(Debug)]
pub(crate) struct Federation {
    pub(crate) peers: Vec<FedPeer>,
    pub(crate) max: usize,
    /// Our simple-id token in REGISTER_SUPERs (nobody checks it).
    pub(crate) token: Auth,
    pub(crate) next_run: Instant,
    pub(crate) assoc: BTreeMap<(Community, Mac), Assoc>,
    /// Rotation offset of the ACK list.
    pub(crate) rotate: usize,
    /// Lookup key of the federation community (`*Federation`, `*name`).
    pub(crate) key: Community,
}

impl Federation {
    pub(crate) fn new(
        cfg_peers: &[FederationPeer],
        max: usize,
        token: [u8; 16],
        key: Community,
        now: Now,
    ) -> Self {
        let prev = he::initial_prev(now.he_stamp());
        let peers = cfg_peers
            .iter()
            .take(max)
            .map(|p| FedPeer {
                name: Some(p.name.clone()),
                addr: p.addr,
                mac: Mac::NULL,
                last_seen: None,
                last_seen_unix: 0,
                cookie: None,
                stamp_prev: prev,
            })
            .collect();
        Self {
            peers,
            max,
            token: Auth::new(Auth::SCHEME_SIMPLE_ID, &token).unwrap_or(Auth::NONE),
            next_run: now.mono,
            assoc: BTreeMap::new(),
            rotate: 0,
            key,
        }
    }

    /// The member at exactly `addr` (behaviour.md §9.1 step 5).
    pub(crate) fn index_by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.peers.iter().position(|p| p.addr == Some(addr))
    }

    /// The stamp record of the member at `addr`.
    pub(crate) fn stamp_prev_mut(&mut self, addr: SocketAddr) -> Option<&mut u64> {
        self.peers
            .iter_mut()
            .find(|p| p.addr == Some(addr))
            .map(|p| &mut p.stamp_prev)
    }

    fn touch(&mut self, i: usize, now: Now) {
        if let Some(p) = self.peers.get_mut(i) {
            p.last_seen = Some(now.mono);
            p.last_seen_unix = now.unix_secs();
        }
    }

    /// Remember that `mac` of `community` is served by the member at `sn`.
    pub(crate) fn associate(
        &mut self,
        community: Community,
        mac: Mac,
        sn: SocketAddr,
        now: Instant,
    ) {
        if mac.is_null() || mac.is_multi_or_broadcast() {
            return;
        }
        let k = (community, mac);
        if self.assoc.len() >= MAX_ASSOCIATIONS && !self.assoc.contains_key(&k) {
            return;
        }
        self.assoc.insert(k, Assoc { sn, since: now });
    }

    /// The member serving `mac`, if it is still alive.
    pub(crate) fn associated(
        &self,
        community: Community,
        mac: Mac,
        now: Instant,
    ) -> Option<SocketAddr> {
        let a = self.assoc.get(&(community, mac))?;
        self.peers
            .iter()
            .any(|p| p.addr == Some(a.sn) && p.seen_within(now, FED_FORWARD_WITHIN))
            .then_some(a.sn)
    }

    /// Members seen within 90 s, other than `skip`.
    pub(crate) fn forward_targets(
        &self,
        now: Instant,
        skip: Option<SocketAddr>,
    ) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers
            .iter()
            .filter(move |p| p.seen_within(now, FED_FORWARD_WITHIN))
            .filter_map(|p| p.addr)
            .filter(move |a| Some(*a) != skip)
    }

    /// The supernode list for a REGISTER_SUPER_ACK to `requester`
    /// (behaviour.md §9.7): resolved members seen within 60 s, not the
    /// requester; more than 44 rotate from one ACK to the next.
    pub(crate) fn fill_list(&mut self, now: Instant, requester: SocketAddr, out: &mut SnListBuf) {
        let eligible = |p: &FedPeer| {
            p.addr.is_some_and(|a| a != requester)
                && !p.mac.is_null()
                && p.seen_within(now, FED_LIST_WITHIN)
        };
        let n = self.peers.len();
        if n == 0 {
            return;
        }
        let count = self.peers.iter().filter(|p| eligible(p)).count();
        let start = if count > wire::MAX_SN_ENTRIES {
            self.rotate % n
        } else {
            0
        };
        let mut taken = 0;
        for k in 0..n {
            let Some(p) = self.peers.get((start + k) % n) else {
                continue;
            };
            if !eligible(p) {
                continue;
            }
            let Some(a) = p.addr else { continue };
            if out.push(&SnEntry::new(PeerSock::from(a), p.mac)).is_err() {
                break;
            }
            taken = k + 1;
        }
        if count > wire::MAX_SN_ENTRIES {
            self.rotate = (start + taken) % n;
        }
    }
}

/// Queue the datagram `write` produces for every member seen within 90 s
/// (but `skip`): encoded and sealed once, copied for the others. Returns
/// how many got it.
pub(super) fn send_to_federation<F>(
    fed: &Federation,
    io: &mut Io,
    now: Now,
    sealing: Option<Seal<'_>>,
    skip: Option<SocketAddr>,
    write: F,
) -> Result<usize, DropReason>
where
    F: FnOnce(&mut [u8]) -> Result<usize, wire::WireError>,
{
    let mut targets = fed.forward_targets(now.mono, skip);
    let Some(first) = targets.next() else {
        return Ok(0);
    };
    io.send(now, first.into(), sealing, write)?;
    let mut n = 1;
    for t in targets {
        if io.out.push_copy_of_last(t).is_some() {
            n += 1;
        }
    }
    io.stats.fed_forwarded = io.stats.fed_forwarded.saturating_add(n as u64);
    Ok(n)
}

impl Supernode {
    /// Federation members, in table order.
    pub fn federation(&self) -> Vec<FederationInfo> {
        self.fed
            .peers
            .iter()
            .map(|p| FederationInfo {
                name: p.name.clone(),
                addr: p.addr,
                mac: p.mac,
                last_seen_unix: p.last_seen_unix,
                alive: p.last_seen.is_some(),
            })
            .collect()
    }

    /// The driver (re-)resolved the `-l` name `name` to `addr`. A changed
    /// address forgets the old one's stamp record and association targets
    /// and registers at once.
    pub fn set_federation_addr(&mut self, now: Now, name: &str, addr: Option<SocketAddr>) {
        let Some(i) = self
            .fed
            .peers
            .iter()
            .position(|p| p.name.as_deref() == Some(name))
        else {
            return;
        };
        if self.fed.peers.get(i).is_some_and(|p| p.addr == addr) {
            return;
        }
        if let Some(p) = self.fed.peers.get_mut(i) {
            p.addr = addr;
            p.stamp_prev = he::initial_prev(now.he_stamp());
            p.cookie = None;
        }
        if addr.is_some() {
            self.fed_register_to(now, i);
        }
    }

    /// The federation run (every [`FED_INTERVAL`]).
    pub(super) fn federation_run(&mut self, now: Now) {
        let t = now.mono;
        let io = &mut self.io;
        self.fed.peers.retain(|p| {
            let keep = p.name.is_some() || p.seen_within(t, FED_PURGE_AFTER);
            if !keep {
                io.event(SupernodeEvent::FederationPurged {
                    sock: p.addr,
                    mac: p.mac,
                });
            }
            keep
        });
        self.fed
            .assoc
            .retain(|_, a| t.saturating_duration_since(a.since) < ASSOC_TIMEOUT);
        for i in 0..self.fed.peers.len() {
            let due = self
                .fed
                .peers
                .get(i)
                .is_some_and(|p| !p.seen_within(t, FED_REREGISTER_AFTER));
            if due {
                self.fed_register_to(now, i);
            }
        }
    }

    /// REGISTER_SUPER to member `i` (behaviour.md §9.10): federation
    /// community, FROM_SUPERNODE, TTL 2, fresh cookie, own MAC, key_time;
    /// header-encrypted with the federation keys.
    pub(super) fn fed_register_to(&mut self, now: Now, i: usize) {
        let Some(dst) = self.fed.peers.get(i).and_then(|p| p.addr) else {
            return;
        };
        let cookie = self.io.rng.next_u32();
        let reg = RegisterSuper {
            cookie,
            edge_mac: self.cfg.mac,
            sock: None,
            dev_addr: DevAddr::UNSPECIFIED,
            dev_desc: DevDesc::EMPTY,
            auth: self.fed.token,
            key_time: self.key_time,
        };
        let header = Header {
            ttl: wire::DEFAULT_TTL,
            flags: Flags::FROM_SUPERNODE,
            community: self.cfg.federation,
        };
        let sealing = seal(Some((&self.federation_he, HeKeyKind::Static)), None, false);
        if self
            .io
            .send(now, dst.into(), sealing, |b| {
                wire::encode(&header, &Message::RegisterSuper(reg), b)
            })
            .is_ok()
            && let Some(p) = self.fed.peers.get_mut(i)
        {
            p.cookie = Some(cookie);
            self.io.stats.fed_reg_sent = self.io.stats.fed_reg_sent.saturating_add(1);
        }
    }

    /// Re-register with every member now (a larger key_time was adopted).
    fn fed_register_all(&mut self, now: Now) {
        for i in 0..self.fed.peers.len() {
            self.fed_register_to(now, i);
        }
    }

    /// Adopt a peer's larger key_time (crypto.md §5.6): RE_REGISTER_SUPER to
    /// user/password edges, new dynamic keys, immediate re-registration.
    fn adopt_key_time(&mut self, now: Now, key_time: u32) {
        if key_time <= self.key_time {
            return;
        }
        self.set_key_time(now, key_time);
        self.io.event(SupernodeEvent::KeyTimeAdopted { key_time });
        self.fed_register_all(now);
    }

    /// A datagram of the federation community.
    pub(super) fn on_federation(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        m: &Message<'_>,
    ) -> Result<(), DropReason> {
        // Supernodes federate over UDP only; a TCP connection is an edge's.
        if !inb.hdr.flags.contains(Flags::FROM_SUPERNODE) || inb.from.conn().is_some() {
            return Err(DropReason::UnexpectedType);
        }
        match m {
            Message::RegisterSuper(r) => self.on_fed_register_super(now, inb, r),
            Message::RegisterSuperAck(a) => self.on_fed_ack(now, inb, a),
            _ => Err(DropReason::UnexpectedType),
        }
    }

    fn on_fed_register_super(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        reg: &RegisterSuper,
    ) -> Result<(), DropReason> {
        let from = inb.from.addr();
        if reg.edge_mac == self.cfg.mac {
            return Err(DropReason::OwnMac);
        }
        let found = self
            .fed
            .peers
            .iter()
            .position(|p| !reg.edge_mac.is_null() && p.mac == reg.edge_mac)
            .or_else(|| self.fed.index_by_addr(from));
        let now_stamp = now.he_stamp();
        let i = match found {
            Some(i) => {
                let Some(p) = self.fed.peers.get_mut(i) else {
                    return Err(DropReason::FromUnknownSupernode);
                };
                if p.addr != Some(from) {
                    // Same MAC, new socket: a restarted or re-addressed member.
                    p.addr = Some(from);
                    p.stamp_prev = he::initial_prev(now_stamp);
                }
                check_stamp(inb.he, now_stamp, Some(&mut p.stamp_prev), false)?;
                if p.mac.is_null() {
                    p.mac = reg.edge_mac;
                }
                i
            }
            None => {
                if self.fed.peers.len() >= self.fed.max {
                    return Err(DropReason::FederationFull);
                }
                let mut prev = he::initial_prev(now_stamp);
                check_stamp(inb.he, now_stamp, Some(&mut prev), false)?;
                self.fed.peers.push(FedPeer {
                    name: None,
                    addr: Some(from),
                    mac: reg.edge_mac,
                    last_seen: Some(now.mono),
                    last_seen_unix: now.unix_secs(),
                    cookie: None,
                    stamp_prev: prev,
                });
                self.io.event(SupernodeEvent::FederationAdded {
                    sock: from,
                    mac: reg.edge_mac,
                });
                self.fed.peers.len() - 1
            }
        };
        self.fed.touch(i, now);
        self.io.stats.fed_reg_received = self.io.stats.fed_reg_received.saturating_add(1);
        self.adopt_key_time(now, reg.key_time);
        let mut list = SnListBuf::new();
        self.fed.fill_list(now.mono, from, &mut list);
        let ack = RegisterSuperAck {
            cookie: reg.cookie,
            src_mac: self.cfg.mac,
            dev_addr: DevAddr::UNSPECIFIED,
            lifetime: REGISTRATION_LIFETIME,
            sock: PeerSock::from(from),
            auth: Auth::NONE,
            sn_list: list.as_list(),
            key_time: self.key_time,
        };
        let header = Header {
            ttl: wire::DEFAULT_TTL,
            flags: Flags::SOCKET | Flags::FROM_SUPERNODE,
            community: self.cfg.federation,
        };
        let sealing = seal(Some((&self.federation_he, HeKeyKind::Static)), None, false);
        self.io
            .send(now, from.into(), sealing, |b| ack.emit(&header, b))
    }

    fn on_fed_ack(
        &mut self,
        now: Now,
        inb: &Inbound<'_>,
        ack: &RegisterSuperAck<'_>,
    ) -> Result<(), DropReason> {
        let i = self
            .fed
            .index_by_addr(inb.from.addr())
            .ok_or(DropReason::FromUnknownSupernode)?;
        let now_stamp = now.he_stamp();
        let Some(p) = self.fed.peers.get_mut(i) else {
            return Err(DropReason::FromUnknownSupernode);
        };
        check_stamp(inb.he, now_stamp, Some(&mut p.stamp_prev), false)?;
        if ack.src_mac == self.cfg.mac {
            return Err(DropReason::OwnMac);
        }
        if p.mac.is_null() {
            p.mac = ack.src_mac;
        }
        let matches = p.cookie == Some(ack.cookie);
        self.fed.touch(i, now);
        if !matches {
            return Ok(());
        }
        let learnt_seen = now.mono.checked_sub(FED_LIST_WITHIN);
        for e in ack.sn_list.iter() {
            let Some(sock) = e.sock() else { continue };
            let addr = sock.addr();
            if e.mac == self.cfg.mac
                || self
                    .fed
                    .peers
                    .iter()
                    .any(|p| p.addr == Some(addr) || (!e.mac.is_null() && p.mac == e.mac))
            {
                continue;
            }
            if self.fed.peers.len() >= self.fed.max {
                self.io.stats.count_drop(DropReason::FederationFull);
                continue;
            }
            self.fed.peers.push(FedPeer {
                name: None,
                addr: Some(addr),
                mac: e.mac,
                last_seen: learnt_seen,
                last_seen_unix: now.unix_secs().saturating_sub(FED_LIST_WITHIN.as_secs()),
                cookie: None,
                stamp_prev: he::initial_prev(now_stamp),
            });
            self.io.event(SupernodeEvent::FederationAdded {
                sock: addr,
                mac: e.mac,
            });
            // Learnt members are silent for 60 s by definition: register now
            // instead of at the next run.
            let j = self.fed.peers.len() - 1;
            self.fed_register_to(now, j);
        }
        self.adopt_key_time(now, ack.key_time);
        Ok(())
    }
}
