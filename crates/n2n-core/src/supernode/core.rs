//! The sans-IO supernode (behaviour.md §9): intake, registration, relay,
//! PING/PONG, purging.
//!
//! Contract: mutate with [`Supernode::handle_datagram`],
//! [`Supernode::handle_timeout`] or [`Supernode::handle_mgmt`], then drain
//! [`Supernode::poll_transmit`] and [`Supernode::poll_event`] until they
//! return `None`, then ask [`Supernode::poll_timeout`] when to call
//! `handle_timeout` next.
//!
//! Federation (`-l` peers) is not implemented: FROM_SUPERNODE traffic is
//! dropped, unknown unicast is dropped (never flooded), REGISTER_SUPER_ACKs
//! list no supernodes. The federation still appears as the `-/-` community
//! in management output, as in C.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use n2n_proto::he::{self, CommunityHe, HeKeyKind, HeKeys};
use n2n_proto::types::{Auth, Community, DevAddr, DevDesc, Mac, PeerSock};
use n2n_proto::wire::{
    self, Flags, HEADER_LEN, Header, HeaderView, Message, Packet, PeerInfo, QueryPeer, Register,
    RegisterSuper, RegisterSuperAck, RegisterSuperNak, SnList, UnregisterSuper, WireError,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::autoip::{AutoIpPool, Subnet, choose_host};
use super::community_list::CommunityList;
use super::edges::{CommunityState, EdgeChange, HeState, Registration, community_key};
use super::reregister::ReRegisterLimiter;
use super::stats::{DropReason, RefuseReason, SupernodeStats};
use crate::Now;
use crate::mgmt::Password;
use crate::output::{Datagram, Output, Seal};

/// Purge run interval (behaviour.md §9.12).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(30);
/// Edges not seen for this long are purged.
pub const EDGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Registration lifetime announced in REGISTER_SUPER_ACK.
pub const REGISTRATION_LIFETIME: u16 = 15;
/// Default PONG version string.
pub const DEFAULT_VERSION: &str = "3.1.1";
/// Default verbosity (C's TRACE_NORMAL).
pub const DEFAULT_VERBOSITY: u8 = 2;
/// Events kept when the driver does not drain them.
const MAX_EVENTS: usize = 4096;

/// Supernode configuration.
#[derive(Debug, Clone)]
pub struct SupernodeConfig {
    /// The supernode's MAC (`-m`).
    pub mac: Mac,
    /// MAC/IP spoofing protection for simple-id edges (`-M` turns it off).
    pub spoofing_protection: bool,
    /// Version string sent in PONGs (`-V`, at most 19 bytes are sent).
    pub version: String,
    /// Community list (`-c`); `None` accepts every community.
    pub communities: Option<CommunityList>,
    /// The `-c` path, if any: `reload_communities` answers `nofile` without.
    pub community_file: Option<PathBuf>,
    /// Auto-IP pool (`-a`).
    pub auto_ip: AutoIpPool,
    /// Management password (`--management-password`).
    pub mgmt_password: Password,
    /// Federation name field (`*Federation`, or see [`federation_field`]).
    pub federation: Community,
    /// Initial verbosity (C trace level).
    pub verbosity: u8,
}

impl SupernodeConfig {
    /// Defaults as C's: spoofing protection on, version "3.1.1", open,
    /// default pool, password `n2n`, federation `*Federation`.
    pub fn new(mac: Mac) -> Self {
        Self {
            mac,
            spoofing_protection: true,
            version: DEFAULT_VERSION.to_owned(),
            communities: None,
            community_file: None,
            auto_ip: AutoIpPool::default(),
            mgmt_password: Password::default(),
            federation: Community::from_field(he::DEFAULT_FEDERATION_FIELD),
            verbosity: DEFAULT_VERBOSITY,
        }
    }
}

/// The federation name field C builds for `-F name` (crypto.md §6): `'*' +
/// name + NUL` written over `*Federation`, residue kept; at most 17
/// characters of `name` are used.
pub fn federation_field(name: &str) -> Community {
    let mut f = he::DEFAULT_FEDERATION_FIELD;
    let n = name.len().min(17);
    f[0] = b'*';
    for (d, s) in f[1..].iter_mut().zip(&name.as_bytes()[..n]) {
        *d = *s;
    }
    if let Some(b) = f.get_mut(1 + n) {
        *b = 0;
    }
    Community::from_field(f)
}

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
    /// Public socket.
    pub sock: SocketAddr,
    /// Preferred socket.
    pub preferred: Option<PeerSock>,
    /// Unix seconds of the last registration.
    pub last_seen_unix: u64,
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

/// Header-encryption context of a decrypted datagram.
#[derive(Debug, Clone, Copy)]
struct HeCtx {
    kind: HeKeyKind,
    stamp: u64,
}

/// How many leading bytes of an outgoing message get header-encrypted.
#[derive(Debug, Clone, Copy)]
enum HeLen {
    /// The whole message.
    Full,
    /// The first n bytes (PACKET header).
    Bytes(usize),
}

/// Output side: queue, counters, events, randomness, stamps. Kept apart
/// from the community table so both can be borrowed at once.
#[derive(Debug)]
pub(super) struct Io {
    pub(super) out: Output,
    pub(super) stats: SupernodeStats,
    pub(super) events: VecDeque<SupernodeEvent>,
    rng: ChaCha20Rng,
}

impl Io {
    fn event(&mut self, e: SupernodeEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(e);
        }
    }

    /// Encode with `write`, header-encrypt with `he` (and append a
    /// user/password trailer when asked), queue for `dst`.
    fn send<F>(
        &mut self,
        now: Now,
        dst: SocketAddr,
        he: Option<(&CommunityHe, HeKeyKind)>,
        hlen: HeLen,
        trailer: bool,
        write: F,
    ) -> Result<(), DropReason>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, WireError>,
    {
        let seal = he.map(|(he, kind)| Seal {
            he,
            kind,
            header_len: match hlen {
                HeLen::Full => None,
                HeLen::Bytes(n) => Some(n),
            },
            trailer,
        });
        // The supernode's queue is unbounded: nothing is ever evicted.
        let _ = self
            .out
            .send(now, &mut self.rng, dst, None, seal.as_ref(), write)
            .map_err(|_| DropReason::TooLong)?;
        Ok(())
    }
}

fn map_wire_err(e: WireError) -> DropReason {
    match e {
        WireError::TooShort { .. } => DropReason::TooShort,
        WireError::BadVersion(_) => DropReason::BadVersion,
        WireError::UnknownType(_) | WireError::NeverSent(_) => DropReason::UnsupportedType,
        _ => DropReason::Undecodable,
    }
}

/// The ACK carries an assigned address when the request's is 0,
/// 255.255.255.255, prefix 0 or link-local (behaviour.md §9.3).
fn wants_auto_ip(a: DevAddr) -> bool {
    a.ip.is_unspecified() || a.ip.is_broadcast() || a.prefix == 0 || a.ip.is_link_local()
}

fn check_stamp(
    ctx: Option<HeCtx>,
    now_stamp: u64,
    prev: Option<&mut u64>,
    jitter: bool,
) -> Result<(), DropReason> {
    match ctx {
        None => Ok(()),
        Some(c) => he::verify_stamp(c.stamp, now_stamp, prev, jitter)
            .map_err(|_| DropReason::StampRejected),
    }
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
    federation_he: CommunityHe,
    rereg: ReRegisterLimiter,
}

impl Supernode {
    /// A supernode started at `now`, with the fixed communities of
    /// `cfg.communities` loaded.
    pub fn new(cfg: SupernodeConfig, rng_seed: [u8; 32], now: Now) -> Self {
        let federation_he = CommunityHe::with_static_keys(
            *cfg.federation.field(),
            HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
        );
        let list = cfg.communities.clone();
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        let rereg = ReRegisterLimiter::new(rng.next_u64());
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
            key_time: now.unix_secs() as u32,
            federation_he,
            rereg,
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

    /// Replace the community list (after `reload_communities`): every
    /// community and its edges are dropped, the fixed ones of the new list
    /// are created. `None` leaves the supernode open (C's behaviour for a
    /// file without valid content).
    pub fn set_communities(&mut self, now: Now, list: Option<CommunityList>) {
        let old = std::mem::take(&mut self.communities);
        for (k, _) in old {
            self.io
                .event(SupernodeEvent::CommunityRemoved { community: k });
        }
        self.seq += 1;
        self.federation_seq = self.seq;
        self.key_time = now.unix_secs() as u32;
        self.load_fixed(list.as_ref());
        self.cfg.communities = list;
    }

    fn load_fixed(&mut self, list: Option<&CommunityList>) {
        let Some(list) = list else { return };
        for fc in &list.fixed {
            let Ok(field) = Community::new(&fc.name) else {
                continue;
            };
            if self.communities.contains_key(&field) {
                continue;
            }
            let subnet = fc.subnet.or_else(|| self.choose_subnet(&field));
            let mut keys = CommunityHe::new(*field.field());
            let users = !fc.users.is_empty();
            let he_state = if users {
                let d = he::dynamic_key(field.field(), self.cfg.federation.field(), self.key_time);
                keys.set_dynamic_key(&d);
                HeState::Encrypted
            } else {
                HeState::Unknown
            };
            self.seq += 1;
            self.communities.insert(
                field,
                CommunityState {
                    field,
                    fixed: true,
                    users,
                    he_state,
                    he: Some(keys),
                    subnet,
                    edges: BTreeMap::new(),
                    seq: self.seq,
                },
            );
            self.io.event(SupernodeEvent::CommunityCreated {
                community: field,
                subnet,
            });
        }
    }

    fn choose_subnet(&self, field: &Community) -> Option<Subnet> {
        let in_use: Vec<Subnet> = self.communities.values().filter_map(|c| c.subnet).collect();
        self.cfg.auto_ip.choose_subnet(field.field(), &in_use)
    }

    fn allows(&self, key: &Community) -> bool {
        let name = key.name_bytes();
        if name.is_empty() {
            return false;
        }
        match &self.cfg.communities {
            None => true,
            Some(l) => l.allows(name),
        }
    }

    fn create_dynamic(&mut self, key: Community) {
        let subnet = self.choose_subnet(&key);
        self.seq += 1;
        self.communities.insert(
            key,
            CommunityState {
                field: key,
                fixed: false,
                users: false,
                he_state: HeState::Plain,
                he: None,
                subnet,
                edges: BTreeMap::new(),
                seq: self.seq,
            },
        );
        self.io.event(SupernodeEvent::CommunityCreated {
            community: key,
            subnet,
        });
    }

    /// Process one datagram received on the supernode's UDP socket. The
    /// buffer is decrypted in place. Answers and relays are queued for
    /// [`poll_transmit`](Self::poll_transmit); every drop is counted.
    pub fn handle_datagram(&mut self, now: Now, from: SocketAddr, datagram: &mut [u8]) {
        if let Err(r) = self.intake(now, from, datagram) {
            self.io.stats.count_drop(r);
        }
    }

    fn try_decrypt(&self, datagram: &mut [u8]) -> Result<(Community, HeCtx, usize), DropReason> {
        for (k, c) in &self.communities {
            if c.he_state == HeState::Plain {
                continue;
            }
            let Some(keys) = &c.he else { continue };
            if let Ok((kind, d)) = keys.decrypt(datagram) {
                return Ok((
                    *k,
                    HeCtx {
                        kind,
                        stamp: d.stamp,
                    },
                    d.len,
                ));
            }
        }
        if self.federation_he.decrypt(datagram).is_ok() {
            return Err(DropReason::FederationUnsupported);
        }
        Err(DropReason::HeNoKey)
    }

    fn intake(
        &mut self,
        now: Now,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<(), DropReason> {
        if datagram.len() < HEADER_LEN {
            return Err(DropReason::TooShort);
        }
        // crypto.md §4.8: plain or encrypted, and which community.
        let (key, ctx, len) = if wire::looks_plain(datagram) {
            let hv = HeaderView::new_checked(&*datagram).map_err(map_wire_err)?;
            let key = community_key(hv.community_field());
            if let Some(c) = self.communities.get(&key)
                && c.he_state == HeState::Encrypted
            {
                return Err(DropReason::HeDowngrade);
            }
            (key, None, datagram.len())
        } else {
            let (k, c, l) = self.try_decrypt(datagram)?;
            (k, Some(c), l)
        };
        let msg: &[u8] = datagram.get(..len).unwrap_or(&[]);
        let (hdr, m) = wire::decode(msg).map_err(map_wire_err)?;
        if let Some(c) = self.communities.get_mut(&key)
            && c.he_state == HeState::Unknown
        {
            c.he_state = if ctx.is_some() {
                HeState::Encrypted
            } else {
                HeState::Plain
            };
            self.io.event(SupernodeEvent::HeLocked {
                community: key,
                encrypted: ctx.is_some(),
            });
        }
        if hdr.flags.contains(Flags::FROM_SUPERNODE) {
            // No federation peers: no supernode is known.
            return Err(DropReason::FromUnknownSupernode);
        }
        if hdr.ttl == 0 {
            return Err(DropReason::TtlExpired);
        }
        if let (Some(c), Some(comm)) = (ctx, self.communities.get(&key))
            && comm.users
            && c.kind == HeKeyKind::Static
            && !matches!(
                m,
                Message::RegisterSuper(_)
                    | Message::RegisterSuperAck(_)
                    | Message::RegisterSuperNak(_)
            )
        {
            return Err(DropReason::StaticKeyMisuse);
        }
        let probe = match &m {
            Message::Packet(p) => Some(p.src_mac),
            Message::Register(r) => Some(r.src_mac),
            Message::QueryPeer(q) if !q.is_ping() => Some(q.src_mac),
            _ => None,
        };
        let res = match m {
            Message::RegisterSuper(r) => self.on_register_super(now, from, key, &r, ctx),
            Message::UnregisterSuper(u) => self.on_unregister_super(now, key, &u, ctx),
            Message::Packet(p) => self.on_packet(now, from, key, &hdr, &p, msg, ctx),
            Message::Register(r) => self.on_register(now, from, key, &hdr, &r, msg, ctx),
            Message::QueryPeer(q) => self.on_query_peer(now, from, key, &q, ctx),
            _ => Err(DropReason::UnexpectedType),
        };
        if let Some(mac) = probe
            && !matches!(
                res,
                Err(DropReason::StampRejected | DropReason::TooLong | DropReason::StaticKeyMisuse)
            )
        {
            self.re_register_unknown(now, from, key, mac);
        }
        res
    }

    /// The RE_REGISTER_SUPER fast path (module docs of [`super`]): tell a
    /// sender that is not registered in `key` to re-register now.
    fn re_register_unknown(&mut self, now: Now, from: SocketAddr, key: Community, mac: Mac) {
        if mac == self.cfg.mac || mac.is_multi_or_broadcast() {
            return;
        }
        let he = match self.communities.get(&key) {
            Some(comm) => {
                if comm.edges.get(&mac).is_some_and(|e| e.sock == from) {
                    return;
                }
                comm.active_he().map(|k| (k, HeKeyKind::Dynamic))
            }
            None if self.allows(&key) => None,
            None => return,
        };
        if !self.rereg.allow(from, now.mono) {
            self.io.stats.re_register_limited = self.io.stats.re_register_limited.saturating_add(1);
            return;
        }
        let header = Header::from_supernode(key);
        if self
            .io
            .send(now, from, he, HeLen::Full, false, |b| {
                wire::encode(&header, &Message::ReRegisterSuper, b)
            })
            .is_ok()
        {
            self.io.stats.re_register_sent = self.io.stats.re_register_sent.saturating_add(1);
        }
    }

    fn on_register_super(
        &mut self,
        now: Now,
        from: SocketAddr,
        key: Community,
        reg: &RegisterSuper,
        ctx: Option<HeCtx>,
    ) -> Result<(), DropReason> {
        if !self.communities.contains_key(&key) {
            if !self.allows(&key) {
                return Err(DropReason::CommunityNotAllowed);
            }
            self.create_dynamic(key);
        }
        let own_mac = self.cfg.mac;
        let spoofing_protection = self.cfg.spoofing_protection;
        let now_stamp = now.he_stamp();
        let comm = self
            .communities
            .get_mut(&key)
            .ok_or(DropReason::UnknownCommunity)?;
        check_stamp(
            ctx,
            now_stamp,
            comm.edges.get_mut(&reg.edge_mac).map(|e| &mut e.stamp_prev),
            false,
        )?;
        if reg.edge_mac == own_mac {
            return Err(DropReason::OwnMac);
        }
        let stats = &mut self.io.stats;
        stats.reg_super = stats.reg_super.saturating_add(1);
        stats.last_reg_super = now.unix_secs();

        let refuse = if comm.users {
            Err(RefuseReason::UserPasswordUnsupported)
        } else {
            Ok(())
        };
        let assigned = if refuse.is_ok() && wants_auto_ip(reg.dev_addr) {
            comm.subnet
                .and_then(|s| {
                    choose_host(s, reg.dev_desc.bytes(), &comm.addresses_in_use())
                        .map(|ip| DevAddr::new(ip, s.bits))
                })
                .unwrap_or(DevAddr::UNSPECIFIED)
        } else {
            DevAddr::UNSPECIFIED
        };
        let outcome = match refuse {
            Err(r) => Err(r),
            Ok(()) if reg.edge_mac.is_null() => Ok(None), // bootstrap: not stored
            Ok(()) => {
                let r = Registration {
                    mac: reg.edge_mac,
                    dev_addr: reg.dev_addr,
                    desc: reg.dev_desc,
                    sock: from,
                    preferred: reg.sock,
                    cookie: reg.cookie,
                    auth: reg.auth,
                    now: now.mono,
                    now_unix: now.unix_secs(),
                    stamp_prev: ctx.map_or_else(|| he::initial_prev(now_stamp), |c| c.stamp),
                };
                comm.update_edge(&r, spoofing_protection, &mut self.seq)
                    .map(Some)
            }
        };
        let he_static = comm.active_he().map(|k| (k, HeKeyKind::Static));
        let header = Header {
            ttl: wire::DEFAULT_TTL,
            flags: Flags::SOCKET | Flags::FROM_SUPERNODE,
            community: comm.field,
        };
        match outcome {
            Err(reason) => {
                let nak = RegisterSuperNak {
                    cookie: reg.cookie,
                    src_mac: reg.edge_mac,
                    auth: Auth::NONE,
                };
                self.io.stats.count_refusal(reason);
                self.io.event(SupernodeEvent::EdgeRefused {
                    community: key,
                    mac: reg.edge_mac,
                    sock: from,
                    reason,
                });
                self.io
                    .send(now, from, he_static, HeLen::Full, comm.users, |b| {
                        nak.emit(&header, b)
                    })
            }
            Ok(change) => {
                let ip = if assigned.is_unspecified() {
                    reg.dev_addr
                } else {
                    assigned
                };
                if let Some(ch) = change
                    && ch != EdgeChange::Refreshed
                {
                    self.io.event(SupernodeEvent::EdgeRegistered {
                        community: key,
                        mac: reg.edge_mac,
                        sock: from,
                        ip,
                    });
                }
                let ack = RegisterSuperAck {
                    cookie: reg.cookie,
                    src_mac: own_mac,
                    dev_addr: assigned,
                    lifetime: REGISTRATION_LIFETIME,
                    sock: PeerSock::from(from),
                    auth: Auth::NONE,
                    sn_list: SnList::EMPTY,
                    key_time: 0,
                };
                self.io
                    .send(now, from, he_static, HeLen::Full, comm.users, |b| {
                        ack.emit(&header, b)
                    })
            }
        }
    }

    fn on_unregister_super(
        &mut self,
        now: Now,
        key: Community,
        u: &UnregisterSuper,
        ctx: Option<HeCtx>,
    ) -> Result<(), DropReason> {
        let now_stamp = now.he_stamp();
        let comm = self
            .communities
            .get_mut(&key)
            .ok_or(DropReason::UnknownCommunity)?;
        let edge = comm.edges.get_mut(&u.src_mac);
        let Some(edge) = edge else {
            check_stamp(ctx, now_stamp, None, false)?;
            return Err(DropReason::UnknownEdge);
        };
        check_stamp(ctx, now_stamp, Some(&mut edge.stamp_prev), false)?;
        if !super::edges::auth_matches(&edge.auth, &u.auth) {
            return Err(DropReason::AuthMismatch);
        }
        comm.edges.remove(&u.src_mac);
        self.io.event(SupernodeEvent::EdgeUnregistered {
            community: key,
            mac: u.src_mac,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_packet(
        &mut self,
        now: Now,
        from: SocketAddr,
        key: Community,
        hdr: &Header,
        p: &Packet<'_>,
        msg: &[u8],
        ctx: Option<HeCtx>,
    ) -> Result<(), DropReason> {
        let now_stamp = now.he_stamp();
        let comm = self
            .communities
            .get_mut(&key)
            .ok_or(DropReason::UnknownCommunity)?;
        check_stamp(
            ctx,
            now_stamp,
            comm.edges.get_mut(&p.src_mac).map(|e| &mut e.stamp_prev),
            true,
        )?;
        let sender = PeerSock::from(from);
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
                    io.send(now, e.sock, he, HeLen::Bytes(hlen), false, write)?;
                    first = false;
                } else {
                    let _ = io.out.push_copy_of_last(e.sock);
                }
                io.stats.broadcast = io.stats.broadcast.saturating_add(1);
                io.stats.last_fwd = now.unix_secs();
            }
            Ok(())
        } else {
            let dst = comm
                .edges
                .get(&p.dst_mac)
                .ok_or(DropReason::UnknownDestination)?
                .sock;
            io.send(now, dst, he, HeLen::Bytes(hlen), false, write)?;
            io.stats.fwd = io.stats.fwd.saturating_add(1);
            io.stats.last_fwd = now.unix_secs();
            Ok(())
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_register(
        &mut self,
        now: Now,
        from: SocketAddr,
        key: Community,
        hdr: &Header,
        r: &Register,
        msg: &[u8],
        ctx: Option<HeCtx>,
    ) -> Result<(), DropReason> {
        let now_stamp = now.he_stamp();
        let comm = self
            .communities
            .get_mut(&key)
            .ok_or(DropReason::UnknownCommunity)?;
        check_stamp(
            ctx,
            now_stamp,
            comm.edges.get_mut(&r.src_mac).map(|e| &mut e.stamp_prev),
            false,
        )?;
        if r.dst_mac.is_multi_or_broadcast() {
            return Err(DropReason::MulticastRegister);
        }
        let dst = comm
            .edges
            .get(&r.dst_mac)
            .ok_or(DropReason::UnknownDestination)?
            .sock;
        let sender = PeerSock::from(from);
        let ttl = hdr.ttl.saturating_sub(1);
        let field = comm.field;
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        self.io.send(now, dst, he, HeLen::Full, false, |b| {
            relay(msg, sender, ttl, &field, b)
        })?;
        self.io.stats.fwd = self.io.stats.fwd.saturating_add(1);
        self.io.stats.last_fwd = now.unix_secs();
        Ok(())
    }

    fn on_query_peer(
        &mut self,
        now: Now,
        from: SocketAddr,
        key: Community,
        q: &QueryPeer,
        ctx: Option<HeCtx>,
    ) -> Result<(), DropReason> {
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
                sock: PeerSock::from(from),
                preferred_sock: None,
                load: 0,
                uptime: u32::try_from(uptime).unwrap_or(u32::MAX),
                version: PeerInfo::version_field(&self.cfg.version),
            };
            return self
                .io
                .send(now, from, he, HeLen::Full, false, |b| pong.emit(&header, b));
        }
        let comm = self
            .communities
            .get_mut(&key)
            .ok_or(DropReason::UnknownCommunity)?;
        check_stamp(
            ctx,
            now_stamp,
            comm.edges.get_mut(&q.src_mac).map(|e| &mut e.stamp_prev),
            true,
        )?;
        let target = comm
            .edges
            .get(&q.target_mac)
            .ok_or(DropReason::UnknownDestination)?;
        let info = PeerInfo {
            aflags: 0,
            src_mac: q.src_mac,
            mac: target.mac,
            sock: PeerSock::from(target.sock),
            preferred_sock: target.preferred,
            load: 0,
            uptime: 0,
            version: [0; wire::VERSION_FIELD_LEN],
        };
        let he = comm.active_he().map(|k| (k, HeKeyKind::Dynamic));
        self.io
            .send(now, from, he, HeLen::Full, false, |b| info.emit(&header, b))
    }

    /// Run timers: every 30 s purge edges silent for 60 s and empty
    /// dynamic communities.
    pub fn handle_timeout(&mut self, now: Now) {
        if now.mono < self.next_purge {
            return;
        }
        while self.next_purge <= now.mono {
            self.next_purge += PURGE_INTERVAL;
        }
        self.purge(now);
    }

    fn purge(&mut self, now: Now) {
        let io = &mut self.io;
        let mut empty = Vec::new();
        for (k, comm) in &mut self.communities {
            comm.edges.retain(|mac, e| {
                let keep = now.mono.saturating_duration_since(e.last_seen) < EDGE_TIMEOUT;
                if !keep {
                    io.event(SupernodeEvent::EdgePurged {
                        community: *k,
                        mac: *mac,
                    });
                }
                keep
            });
            if !comm.fixed && comm.edges.is_empty() {
                empty.push(*k);
            }
        }
        for k in empty {
            self.communities.remove(&k);
            self.io
                .event(SupernodeEvent::CommunityRemoved { community: k });
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_purge)
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

    /// Next event to log.
    pub fn poll_event(&mut self) -> Option<SupernodeEvent> {
        self.io.events.pop_front()
    }

    /// Registered edges, community by community, in registration order.
    pub fn edges(&self) -> Vec<EdgeInfo> {
        let mut out = Vec::new();
        for c in self.communities_in_order() {
            let mut edges: Vec<_> = c.edges.values().collect();
            edges.sort_by_key(|e| e.seq);
            out.extend(edges.into_iter().map(|e| EdgeInfo {
                community: c.field,
                mac: e.mac,
                dev_addr: e.dev_addr,
                desc: e.desc,
                sock: e.sock,
                preferred: e.preferred,
                last_seen_unix: e.last_seen_unix,
            }));
        }
        out
    }

    /// Communities (without the federation) in creation order.
    pub fn communities(&self) -> Vec<CommunityInfo> {
        self.communities_in_order()
            .into_iter()
            .map(|c| CommunityInfo {
                community: c.field,
                fixed: c.fixed,
                users: c.users,
                he_state: c.he_state,
                subnet: c.subnet,
                edges: c.edges.len(),
            })
            .collect()
    }

    pub(super) fn communities_in_order(&self) -> Vec<&CommunityState> {
        let mut v: Vec<_> = self.communities.values().collect();
        v.sort_by_key(|c| c.seq);
        v
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_field_keeps_c_residue() {
        assert_eq!(
            federation_field("myfed").field(),
            b"*myfed\0tion\0\0\0\0\0\0\0\0\0"
        );
        assert_eq!(
            federation_field("rocksFed").field(),
            b"*rocksFed\0n\0\0\0\0\0\0\0\0\0"
        );
        assert_eq!(
            federation_field("Federation").field(),
            &he::DEFAULT_FEDERATION_FIELD
        );
        // At most 17 characters are kept; the field always has a NUL.
        let long = federation_field("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(long.name_bytes(), b"*abcdefghijklmnopq");
    }

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

    #[test]
    fn auto_ip_request_rule() {
        use std::net::Ipv4Addr;
        assert!(wants_auto_ip(DevAddr::UNSPECIFIED));
        assert!(wants_auto_ip(DevAddr::new(Ipv4Addr::BROADCAST, 24)));
        assert!(wants_auto_ip(DevAddr::new(Ipv4Addr::new(10, 0, 0, 1), 0)));
        assert!(wants_auto_ip(DevAddr::new(
            Ipv4Addr::new(169, 254, 1, 1),
            16
        )));
        assert!(!wants_auto_ip(DevAddr::new(Ipv4Addr::new(10, 0, 0, 1), 24)));
    }
}
