//! A deterministic network simulator for the sans-IO [`Edge`] and
//! [`Supernode`] (feature `sim`).
//!
//! * Nodes (edges and supernodes) live on a simulated IPv4 network. Every
//!   datagram gets a latency, jitter, loss and reordering drawn from one
//!   seeded RNG, so a run is reproducible bit for bit.
//! * NAT boxes translate and filter: [`NatKind::EndpointIndependent`]
//!   (full cone), [`NatKind::AddressRestricted`], [`NatKind::PortRestricted`]
//!   (all three with endpoint-independent mapping) and
//!   [`NatKind::Symmetric`] (a new public port per destination, port-restricted
//!   filtering).
//! * Local-discovery multicast (224.0.0.68:1968) reaches the other edges of
//!   the sender's LAN with `via_multicast = true`.
//! * Time warps to the next event (a datagram arrival or a node's
//!   `poll_timeout`): hours of simulated time take milliseconds, nothing
//!   sleeps.
//! * Frames are injected at an edge's TAP ([`Sim::send_frame`]) and the
//!   frames an edge writes to its TAP are collected ([`Sim::take_tap`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::edge::{Edge, EdgeConfig, Event};
use crate::supernode::{Supernode, SupernodeConfig, SupernodeEvent};
use crate::time::{MAX_DATAGRAM, Now};

pub mod fixture;
mod nat;
mod net;

use nat::Nat;
pub use nat::NatKind;

/// Index of a node.
pub type NodeId = usize;
/// Index of a NAT box.
pub type NatId = usize;

/// Per-node link characteristics, applied to every datagram the node sends
/// and receives (the delay of a datagram is the sum of both ends').
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Fixed one-way delay of this end.
    pub latency: Duration,
    /// Uniform random extra delay 0..jitter of this end.
    pub jitter: Duration,
    /// Probability (0..1) that a datagram through this end is lost.
    pub loss: f64,
    /// Probability (0..1) that a datagram is held back by `reorder_delay`.
    pub reorder: f64,
    /// Extra delay of a reordered datagram.
    pub reorder_delay: Duration,
}

impl Default for LinkParams {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(5),
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(30),
        }
    }
}

/// What runs on a node.
#[derive(Debug)]
pub enum NodeKind {
    /// Our edge.
    Edge(Box<Edge>),
    /// Our supernode.
    Supernode(Box<Supernode>),
}

/// One simulated host.
#[derive(Debug)]
pub struct Node {
    /// Label for traces.
    pub name: String,
    /// The state machine.
    pub kind: NodeKind,
    /// Its bound socket (a private address when behind a NAT).
    pub addr: SocketAddr,
    /// NAT in front of it.
    pub nat: Option<NatId>,
    /// LAN (multicast domain), if any.
    pub lan: Option<u32>,
    /// Down nodes neither send nor receive nor run timers.
    pub up: bool,
    /// Link characteristics.
    pub link: LinkParams,
    /// Frames the edge wrote to its TAP, with the arrival time.
    pub tap: Vec<(Instant, Vec<u8>)>,
    /// Edge events.
    pub events: Vec<(Instant, Event)>,
    /// Supernode events.
    pub sn_events: Vec<(Instant, SupernodeEvent)>,
}

/// One datagram on the wire (for traces and assertions).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Arrival time.
    pub at: Instant,
    /// Sending node.
    pub from_node: NodeId,
    /// Receiving node.
    pub to_node: NodeId,
    /// Source as seen by the receiver (after NAT).
    pub src: SocketAddr,
    /// Length.
    pub len: usize,
    /// Arrived on the multicast socket.
    pub multicast: bool,
}

#[derive(Debug)]
struct InFlight {
    from_node: NodeId,
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    start: Instant,
    now: Now,
    rng: ChaCha20Rng,
    nodes: Vec<Node>,
    nats: Vec<Nat>,
    pair_links: HashMap<(NodeId, NodeId), LinkParams>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    flights: HashMap<u64, InFlight>,
    /// Node timers (`poll_timeout` when last armed); an entry that no
    /// longer matches the node's `poll_timeout` is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, NodeId)>>,
    /// Nodes handed out mutably ([`Sim::edge_mut`]…): re-armed before the
    /// next step.
    rearm: Vec<NodeId>,
    /// Last armed timer per node (no duplicate heap entries).
    armed: Vec<Option<Instant>>,
    /// Scratch list of due nodes (reused: the hot path does not allocate).
    due: Vec<NodeId>,
    /// Nodes by bound address (datagram routing without a scan).
    by_addr: HashMap<SocketAddr, Vec<NodeId>>,
    seq: u64,
    out: Vec<u8>,
    /// Every delivered datagram, when [`Sim::record`] is on.
    pub trace: Vec<Delivery>,
    /// Record deliveries into `trace`.
    pub record: bool,
    /// Datagrams sent with a per-datagram TTL (`-L` spray), when
    /// [`Sim::record`] is on: sender, destination, TTL. The simulated
    /// network itself does not count hops.
    pub sent_with_ttl: Vec<(NodeId, SocketAddr, u8)>,
    /// Every delivered datagram with its bytes as they travelled (before
    /// the receiver decrypted them), when [`Sim::capture`] is on.
    pub captured: Vec<(Delivery, Vec<u8>)>,
    /// Record deliveries and their bytes into `captured`.
    pub capture: bool,
    /// Datagrams lost by link loss.
    pub lost: u64,
    /// Datagrams dropped by NAT filtering or for lack of a receiver.
    pub filtered: u64,
}

/// Unix time the simulated clock starts at (2026-01-01T00:00:00Z).
pub const SIM_EPOCH_UNIX: u64 = 1_767_225_600;

impl Sim {
    /// A new, empty network; everything random derives from `seed`.
    pub fn new(seed: u64) -> Self {
        let start = Instant::now();
        Self {
            start,
            now: Now::new(start, SIM_EPOCH_UNIX * 1_000_000),
            rng: ChaCha20Rng::seed_from_u64(seed),
            nodes: Vec::new(),
            nats: Vec::new(),
            pair_links: HashMap::new(),
            heap: BinaryHeap::new(),
            flights: HashMap::new(),
            timers: BinaryHeap::new(),
            rearm: Vec::new(),
            armed: Vec::new(),
            due: Vec::new(),
            by_addr: HashMap::new(),
            seq: 0,
            out: vec![0; MAX_DATAGRAM],
            trace: Vec::new(),
            record: false,
            sent_with_ttl: Vec::new(),
            captured: Vec::new(),
            capture: false,
            lost: 0,
            filtered: 0,
        }
    }

    /// Current simulated time.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Simulated time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.mono.saturating_duration_since(self.start)
    }

    /// A 32-byte seed for a node, from the simulator's RNG.
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    /// Adds a NAT box with public address `public_ip`; nodes behind it form
    /// one LAN.
    pub fn add_nat(&mut self, public_ip: Ipv4Addr, kind: NatKind) -> NatId {
        let id = self.nats.len();
        self.nats.push(Nat {
            public_ip,
            kind,
            next_port: 40000,
            out: HashMap::new(),
            inbound: HashMap::new(),
            lan: 1000 + id as u32,
        });
        id
    }

    fn add_node(
        &mut self,
        name: &str,
        kind: NodeKind,
        addr: SocketAddr,
        nat: Option<NatId>,
    ) -> NodeId {
        let lan = nat.and_then(|n| self.nats.get(n)).map(|n| n.lan);
        self.nodes.push(Node {
            name: name.to_owned(),
            kind,
            addr,
            nat,
            lan,
            up: true,
            link: LinkParams::default(),
            tap: Vec::new(),
            events: Vec::new(),
            sn_events: Vec::new(),
        });
        let id = self.nodes.len() - 1;
        self.by_addr.entry(addr).or_default().push(id);
        self.drain(id);
        id
    }

    /// Starts a supernode at `addr` (public).
    pub fn add_supernode(&mut self, name: &str, addr: SocketAddr, cfg: SupernodeConfig) -> NodeId {
        let seed = self.seed32();
        let sn = Supernode::new(cfg, seed, self.now);
        self.add_node(name, NodeKind::Supernode(Box::new(sn)), addr, None)
    }

    /// Starts an edge bound to `addr`, behind `nat` if given.
    ///
    /// # Panics
    /// When the configuration is refused (tests only).
    pub fn add_edge(
        &mut self,
        name: &str,
        addr: SocketAddr,
        nat: Option<NatId>,
        cfg: EdgeConfig,
    ) -> NodeId {
        let seed = self.seed32();
        #[allow(clippy::panic)]
        let mut e = match Edge::new(cfg, seed, self.now) {
            Ok(e) => e,
            Err(err) => panic!("edge {name}: {err}"),
        };
        e.set_local_addr(addr);
        self.add_node(name, NodeKind::Edge(Box::new(e)), addr, nat)
    }

    /// Puts a node on a LAN (multicast domain) without NAT.
    pub fn set_lan(&mut self, id: NodeId, lan: Option<u32>) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.lan = lan;
        }
    }

    /// Changes a node's link characteristics.
    pub fn set_link(&mut self, id: NodeId, link: LinkParams) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.link = link;
        }
    }

    /// Link characteristics for datagrams between `a` and `b` (both
    /// directions), replacing the two nodes' own parameters for that pair.
    pub fn set_pair_link(&mut self, a: NodeId, b: NodeId, link: LinkParams) {
        self.pair_links.insert((a.min(b), a.max(b)), link);
    }

    /// Same link characteristics for every node.
    pub fn set_all_links(&mut self, link: LinkParams) {
        for n in &mut self.nodes {
            n.link = link;
        }
    }

    /// Takes a node down (it stops receiving, sending and running timers).
    pub fn kill(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.up = false;
        }
    }

    /// Replaces a supernode by a fresh instance (all state lost) at the same
    /// address, up.
    pub fn restart_supernode(&mut self, id: NodeId, cfg: SupernodeConfig) {
        let seed = self.seed32();
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(id) {
            n.kind = NodeKind::Supernode(Box::new(Supernode::new(cfg, seed, now)));
            n.up = true;
        }
        self.arm(id);
    }

    /// All nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// One node.
    ///
    /// # Panics
    /// On an unknown id (tests only).
    pub fn node(&self, id: NodeId) -> &Node {
        #[allow(clippy::indexing_slicing)]
        &self.nodes[id]
    }

    /// The edge on node `id`.
    ///
    /// # Panics
    /// When the node is not an edge (tests only).
    pub fn edge(&self, id: NodeId) -> &Edge {
        match &self.node(id).kind {
            NodeKind::Edge(e) => e,
            #[allow(clippy::panic)]
            NodeKind::Supernode(_) => panic!("node {id} is not an edge"),
        }
    }

    /// The edge on node `id`, mutable.
    ///
    /// # Panics
    /// When the node is not an edge (tests only).
    pub fn edge_mut(&mut self, id: NodeId) -> &mut Edge {
        self.rearm.push(id);
        #[allow(clippy::indexing_slicing)]
        match &mut self.nodes[id].kind {
            NodeKind::Edge(e) => e,
            #[allow(clippy::panic)]
            NodeKind::Supernode(_) => panic!("node {id} is not an edge"),
        }
    }

    /// The edges on nodes `a` and `b` (two different nodes), both mutable:
    /// e.g. each behind its own lock for a multi-threaded data path.
    ///
    /// # Panics
    /// When `a == b` or a node is not an edge (tests only).
    pub fn edge_pair_mut(&mut self, a: NodeId, b: NodeId) -> (&mut Edge, &mut Edge) {
        self.rearm.push(a);
        self.rearm.push(b);
        #[allow(clippy::panic)]
        let (lo, hi) = match a.cmp(&b) {
            std::cmp::Ordering::Less => (a, b),
            std::cmp::Ordering::Greater => (b, a),
            std::cmp::Ordering::Equal => panic!("edge_pair_mut({a}, {a})"),
        };
        let (left, right) = self.nodes.split_at_mut(hi);
        #[allow(clippy::indexing_slicing)]
        let (x, y) = match (&mut left[lo].kind, &mut right[0].kind) {
            (NodeKind::Edge(x), NodeKind::Edge(y)) => (x, y),
            #[allow(clippy::panic)]
            _ => panic!("node {lo} or {hi} is not an edge"),
        };
        if a < b { (x, y) } else { (y, x) }
    }

    /// The supernode on node `id`.
    ///
    /// # Panics
    /// When the node is not a supernode (tests only).
    pub fn supernode(&self, id: NodeId) -> &Supernode {
        match &self.node(id).kind {
            NodeKind::Supernode(s) => s,
            #[allow(clippy::panic)]
            NodeKind::Edge(_) => panic!("node {id} is not a supernode"),
        }
    }

    /// The supernode on node `id`, mutable. Drain it with
    /// [`Sim::flush`] after changing it.
    ///
    /// # Panics
    /// When the node is not a supernode (tests only).
    pub fn supernode_mut(&mut self, id: NodeId) -> &mut Supernode {
        self.rearm.push(id);
        #[allow(clippy::indexing_slicing)]
        match &mut self.nodes[id].kind {
            NodeKind::Supernode(s) => s,
            #[allow(clippy::panic)]
            NodeKind::Edge(_) => panic!("node {id} is not a supernode"),
        }
    }

    /// Put what node `id` queued (after a direct call into its state
    /// machine) on the network.
    pub fn flush(&mut self, id: NodeId) {
        self.drain(id);
    }

    /// A datagram from `src` (any address, e.g. an attacker's or a replayed
    /// sender's) arrives at node `to` now, bypassing links and NATs.
    pub fn inject(&mut self, to: NodeId, src: SocketAddr, data: &[u8]) {
        let now = self.now;
        let mut d = data.to_vec();
        self.deliver_to(to, to, src, &mut d, false, now);
    }

    /// Frames written to edge `id`'s TAP since the last call.
    pub fn take_tap(&mut self, id: NodeId) -> Vec<Vec<u8>> {
        match self.nodes.get_mut(id) {
            Some(n) => n.tap.drain(..).map(|(_, f)| f).collect(),
            None => Vec::new(),
        }
    }

    /// Frames (with arrival times) written to edge `id`'s TAP since the last call.
    pub fn take_tap_timed(&mut self, id: NodeId) -> Vec<(Instant, Vec<u8>)> {
        match self.nodes.get_mut(id) {
            Some(n) => n.tap.drain(..).collect(),
            None => Vec::new(),
        }
    }

    /// Events of edge `id` since the last call.
    pub fn take_events(&mut self, id: NodeId) -> Vec<Event> {
        match self.nodes.get_mut(id) {
            Some(n) => n.events.drain(..).map(|(_, e)| e).collect(),
            None => Vec::new(),
        }
    }

    /// A frame read from edge `id`'s TAP now.
    pub fn send_frame(&mut self, id: NodeId, frame: &[u8]) {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(id) else {
            return;
        };
        if !n.up {
            return;
        }
        let NodeKind::Edge(e) = &mut n.kind else {
            return;
        };
        let mut out = std::mem::take(&mut self.out);
        if let Some(t) = e.encapsulate(now, frame, &mut out) {
            let data = out.get(..t.len).map(<[u8]>::to_vec).unwrap_or_default();
            self.route(id, t.dst, data);
        }
        self.out = out;
        self.drain(id);
    }

    /// A management request to node `id`; returns the reply datagrams.
    pub fn mgmt(&mut self, id: NodeId, request: &str) -> Vec<String> {
        let now = self.now;
        let from = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
        let replies = match self.nodes.get_mut(id).map(|n| &mut n.kind) {
            Some(NodeKind::Edge(e)) => e.handle_mgmt(now, from, request.as_bytes()).replies,
            Some(NodeKind::Supernode(s)) => s.handle_mgmt(now, from, request.as_bytes()).replies,
            None => Vec::new(),
        };
        self.drain(id);
        replies
    }

    /// Shut an edge down cleanly (UNREGISTER_SUPER goes out).
    pub fn shutdown_edge(&mut self, id: NodeId) {
        let now = self.now;
        if let Some(NodeKind::Edge(e)) = self.nodes.get_mut(id).map(|n| &mut n.kind) {
            e.shutdown(now);
        }
        self.drain(id);
    }

    // ------------------------------------------------------------------
    // Network

    fn node_timeout(&self, n: &Node) -> Option<Instant> {
        if !n.up {
            return None;
        }
        match &n.kind {
            NodeKind::Edge(e) => e.poll_timeout(),
            NodeKind::Supernode(s) => s.poll_timeout(),
        }
    }

    /// Record node `id`'s current timer.
    pub(super) fn arm(&mut self, id: NodeId) {
        let t = self.nodes.get(id).and_then(|n| self.node_timeout(n));
        if self.armed.len() <= id {
            self.armed.resize(id + 1, None);
        }
        if let Some(slot) = self.armed.get_mut(id)
            && *slot != t
        {
            *slot = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, id)));
            }
        }
    }

    fn is_current(&self, t: Instant, id: NodeId) -> bool {
        self.nodes.get(id).and_then(|n| self.node_timeout(n)) == Some(t)
    }

    /// Re-arm nodes handed out mutably, drop stale timer entries; the
    /// earliest node timer.
    fn next_timer(&mut self) -> Option<Instant> {
        while let Some(id) = self.rearm.pop() {
            self.arm(id);
        }
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if self.is_current(t, id) {
                return Some(t);
            }
            self.timers.pop();
            if let Some(slot) = self.armed.get_mut(id)
                && *slot == Some(t)
            {
                *slot = None; // the node's timer moved: re-armed below
                self.rearm.push(id);
            }
        }
        None
    }

    fn next_event(&mut self) -> Option<Instant> {
        let net = self.heap.peek().map(|Reverse((t, _))| *t);
        let timers = self.next_timer();
        match (net, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn set_time(&mut self, t: Instant) {
        if t > self.now.mono {
            let d = t - self.now.mono;
            self.now = self.now.advance(d);
        }
    }

    /// Processes everything due at the current instant.
    fn step(&mut self) {
        let mut guard = 0u32;
        loop {
            guard += 1;
            assert!(guard < 100_000, "simulation does not advance");
            let mut progressed = false;
            while let Some(Reverse((t, seq))) = self.heap.peek().copied() {
                if t > self.now.mono {
                    break;
                }
                self.heap.pop();
                if let Some(f) = self.flights.remove(&seq) {
                    self.deliver(f);
                }
                progressed = true;
            }
            let now = self.now;
            self.next_timer();
            let mut due_ids = std::mem::take(&mut self.due);
            due_ids.clear();
            while let Some(Reverse((t, id))) = self.timers.peek().copied() {
                if t > now.mono {
                    break;
                }
                self.timers.pop();
                if let Some(slot) = self.armed.get_mut(id) {
                    *slot = None;
                }
                due_ids.push(id);
            }
            due_ids.sort_unstable();
            due_ids.dedup();
            for &id in &due_ids {
                let due = self
                    .nodes
                    .get(id)
                    .and_then(|n| self.node_timeout(n))
                    .is_some_and(|t| t <= now.mono);
                if !due {
                    self.arm(id);
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(id) {
                    match &mut n.kind {
                        NodeKind::Edge(e) => e.handle_timeout(now),
                        NodeKind::Supernode(s) => s.handle_timeout(now),
                    }
                }
                self.drain(id);
                progressed = true;
            }
            self.due = due_ids;
            if !progressed {
                break;
            }
        }
    }

    /// Runs the simulation for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now.mono + d;
        self.run_until(end);
    }

    /// Runs the simulation until `end`.
    pub fn run_until(&mut self, end: Instant) {
        self.step();
        loop {
            match self.next_event() {
                Some(t) if t <= end => {
                    self.set_time(t);
                    self.step();
                }
                _ => {
                    self.set_time(end);
                    self.step();
                    return;
                }
            }
        }
    }

    /// Runs until `cond` holds (checked after every step) or `limit` passes;
    /// returns whether it held.
    pub fn run_until_cond(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now.mono + limit;
        self.step();
        loop {
            if cond(self) {
                return true;
            }
            match self.next_event() {
                Some(t) if t <= end => {
                    self.set_time(t);
                    self.step();
                }
                _ => {
                    self.set_time(end);
                    self.step();
                    return cond(self);
                }
            }
        }
    }
}

/// An Ethernet/IPv4/UDP frame from `src` to `dst` carrying `payload`
/// (checksums zero), for ping-like tests.
pub fn ipv4_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    payload: &[u8],
) -> Vec<u8> {
    let ip_len = 20 + 8 + payload.len();
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0x00]);
    f.extend_from_slice(&(ip_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0x00, 64, 17, 0, 0]);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&dst_ip.octets());
    f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39]);
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}
