//! The shard split of the edge's data path (`Edge::route` + `DataShard::encode`,
//! `DataShard::open` + `Edge::finish`) against the single-owner
//! `Edge::encapsulate` / `Edge::decapsulate`:
//!
//! * the same script of frames and datagrams, good and bad, on two
//!   identically seeded simulations gives the same frames, datagrams (byte
//!   for byte), queued control messages and counters with a second shard as
//!   with the single-owner calls;
//! * shards of one edge on several threads encrypt with one nonce prefix
//!   and counter: the receiver's replay window accepts all of their
//!   datagrams, interleaved between threads;
//! * a shard made before the user/password dynamic key arrived is brought
//!   up to date by `route` and `finish`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use n2n_core::MAX_DATAGRAM;
use n2n_core::edge::{DataShard, DropReason, EdgeConfig, EdgeStats};
use n2n_core::sim::fixture::{self, edge_config as edge_cfg, frame, ip, mac};
use n2n_core::sim::{NodeId, Sim};
use n2n_proto::transform::{AeadNonce, REPLAY_WINDOW};
use n2n_proto::types::{CompressionId, TransformId};
use n2n_proto::wire::PACKET_HEADER_LEN;

fn unicast(s: u8, d: u8, size: usize) -> Vec<u8> {
    frame(s, mac(d), ip(d), size, 4000 + u16::from(s))
}

/// The nodes of [`setup`].
#[derive(Debug, Clone, Copy)]
struct Nodes {
    sn: NodeId,
    /// a, b, d: one key, direct P2P peers of each other.
    a: NodeId,
    b: NodeId,
    d: NodeId,
    /// Registered with another key.
    c: NodeId,
    /// Never registers (its supernode does not exist).
    e: NodeId,
}

fn setup(seed: u64, t: TransformId, he: bool, comp: CompressionId) -> (Sim, Nodes) {
    let mut sim = Sim::new(seed);
    let sn = fixture::add_supernode(&mut sim, &[]);
    let mut add = |name: &str, i: u8, c: EdgeConfig| {
        assert_eq!(c.mac.0[5], i);
        fixture::add_edge(&mut sim, name, c)
    };
    let a = add("a", 1, edge_cfg(1, t, b"s3cret", he, comp));
    let b = add("b", 2, edge_cfg(2, t, b"s3cret", he, comp));
    let c = add("c", 3, edge_cfg(3, t, b"other", he, comp));
    let d = add("d", 4, edge_cfg(4, t, b"s3cret", he, comp));
    let mut ce = edge_cfg(5, t, b"s3cret", he, comp);
    ce.supernodes = vec!["203.0.113.9:7654".to_owned()];
    let e = add("e", 5, ce);
    let n = Nodes { sn, a, b, d, c, e };
    fixture::register(&mut sim, &[a, b, c, d]);
    // Hole punching: traffic both ways until a, b, d know each other.
    for _ in 0..6 {
        for (x, i, j) in [
            (a, 1, 2),
            (b, 2, 1),
            (a, 1, 4),
            (d, 4, 1),
            (b, 2, 4),
            (d, 4, 2),
        ] {
            sim.send_frame(x, &unicast(i, j, 100));
        }
        sim.run_for(Duration::from_millis(200));
    }
    for (x, others) in [(a, [2, 4]), (b, [1, 4]), (d, [1, 2])] {
        for o in others {
            let direct = sim
                .edge(x)
                .peers()
                .iter()
                .any(|p| p.direct && p.mac.0 == mac(o));
            assert!(
                direct,
                "{t} he {he}: {} does not know {o}",
                sim.node(x).name
            );
        }
        sim.take_tap(x);
    }
    (sim, n)
}

/// One observation of the script.
#[derive(Debug, Clone, PartialEq)]
enum Rec {
    Tx(&'static str, Option<(SocketAddr, Vec<u8>)>),
    Rx(&'static str, NodeId, Option<Vec<u8>>),
    Queued(&'static str, NodeId, Vec<(SocketAddr, Vec<u8>)>),
    Stats(&'static str, NodeId, Box<EdgeStats>),
}

/// Drives the edges of a simulation by hand, with the single-owner calls
/// (`shards` empty) or with one extra shard per edge.
struct Harness {
    sim: Sim,
    n: Nodes,
    split: bool,
    shards: HashMap<NodeId, DataShard>,
    rec: Vec<Rec>,
}

impl Harness {
    fn new(sim: Sim, n: Nodes, split: bool) -> Self {
        let mut shards = HashMap::new();
        if split {
            for x in [n.a, n.b, n.c, n.d, n.e] {
                shards.insert(x, sim.edge(x).data_shard());
            }
        }
        Self {
            sim,
            n,
            split,
            shards,
            rec: Vec::new(),
        }
    }

    fn addr(&self, x: NodeId) -> SocketAddr {
        self.sim.node(x).addr
    }

    /// A frame read from `x`'s TAP.
    fn tx(&mut self, label: &'static str, x: NodeId, f: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
        let now = self.sim.now();
        let mut out = vec![0u8; MAX_DATAGRAM];
        let e = self.sim.edge_mut(x);
        let t = if self.split {
            let s = self.shards.get_mut(&x).unwrap();
            e.route(now, f, s)
                .and_then(|r| match s.encode(f, &r, &mut out) {
                    Ok(t) => {
                        assert_eq!(t.dst, r.dst());
                        Some(t)
                    }
                    Err(d) => {
                        e.count_drop(d);
                        None
                    }
                })
        } else {
            e.encapsulate(now, f, &mut out)
        };
        let r = t.map(|t| {
            assert_eq!(t.ttl, None);
            (t.dst, out[..t.len].to_vec())
        });
        self.rec.push(Rec::Tx(label, r.clone()));
        self.observe(label);
        r
    }

    /// A datagram arriving at `y` from `from`.
    fn rx(&mut self, label: &'static str, y: NodeId, from: SocketAddr, dgram: &[u8]) {
        let now = self.sim.now();
        let mut d = dgram.to_vec();
        let mut out = vec![0u8; MAX_DATAGRAM];
        let e = self.sim.edge_mut(y);
        let n = if self.split {
            let s = self.shards.get_mut(&y).unwrap();
            let o = s.open(from, &mut d, false, &mut out);
            e.finish(now, o, &mut d, &mut out, s)
        } else {
            e.decapsulate(now, from, &mut d, false, &mut out)
        };
        self.rec
            .push(Rec::Rx(label, y, n.map(|n| out[..n].to_vec())));
        self.observe(label);
    }

    /// Queued datagrams and counters of every edge after a step.
    fn observe(&mut self, label: &'static str) {
        let n = self.n;
        for x in [n.a, n.b, n.c, n.d, n.e] {
            let e = self.sim.edge_mut(x);
            let mut q = Vec::new();
            while let Some(t) = e.poll_transmit() {
                q.push((t.dst, t.bytes().to_vec()));
                e.recycle_transmit(t);
            }
            if let Some(s) = self.shards.get_mut(&x) {
                e.sync_shard(s);
            }
            let st = Box::new(e.stats().clone());
            self.rec.push(Rec::Queued(label, x, q));
            self.rec.push(Rec::Stats(label, x, st));
        }
    }

    /// The datagrams `x` queued in the last step.
    fn last_queued(&self, x: NodeId) -> Vec<(SocketAddr, Vec<u8>)> {
        self.rec
            .iter()
            .rev()
            .find_map(|r| match r {
                Rec::Queued(_, y, q) if *y == x => Some(q.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn stats(&self, x: NodeId) -> EdgeStats {
        self.sim.edge(x).stats().clone()
    }
}

/// Frames and datagrams, good and bad, through every drop reason of the
/// data path we can reach from outside.
fn script(h: &mut Harness) {
    let n = h.n;
    let (a_addr, b_addr, c_addr) = (h.addr(n.a), h.addr(n.b), h.addr(n.c));
    let fab = unicast(1, 2, 600);
    // P2P a → b, then the same datagram again (replay), cut, corrupted.
    let (dst, g) = h.tx("p2p a→b", n.a, &fab).unwrap();
    assert_eq!(dst, b_addr);
    h.rx("p2p a→b", n.b, a_addr, &g);
    h.rx("replayed", n.b, a_addr, &g);
    h.rx("truncated", n.b, a_addr, &g[..g.len() - 5]);
    h.rx("cut to 20 bytes", n.b, a_addr, &g[..20]);
    h.rx("empty", n.b, a_addr, &[]);
    let (_, mut g2) = h.tx("p2p a→b 2", n.a, &fab).unwrap();
    *g2.last_mut().unwrap() ^= 0x40;
    h.rx("last byte flipped", n.b, a_addr, &g2);
    let (_, mut g3) = h.tx("p2p a→b 3", n.a, &fab).unwrap();
    g3[10] ^= 0x01;
    h.rx("community byte flipped", n.b, a_addr, &g3);
    let (_, g3b) = h.tx("p2p a→b 3b", n.a, &unicast(1, 2, 1400)).unwrap();
    h.rx("p2p 1400", n.b, a_addr, &g3b);
    // Another key (c is in the community, with a different -k).
    let (_, gc) = h.tx("c → b", n.c, &unicast(3, 2, 300)).unwrap();
    h.rx("wrong key", n.b, c_addr, &gc);
    // e never registered: it neither sends nor accepts PACKETs.
    let (_, g4) = h.tx("p2p a→b 4", n.a, &fab).unwrap();
    h.rx("not registered", n.e, a_addr, &g4);
    assert_eq!(h.tx("e not registered", n.e, &unicast(5, 1, 100)), None);
    // A frame for an unknown MAC: to the supernode, with REGISTER and
    // QUERY_PEER queued; delivered to b it is not for b.
    let (dst, g5) = h.tx("unknown mac", n.a, &unicast(1, 9, 200)).unwrap();
    assert_eq!(dst, h.addr(n.sn));
    let queued = h.last_queued(n.a);
    assert!(!queued.is_empty(), "a queued its query");
    h.rx("foreign mac", n.b, a_addr, &g5);
    for (_, q) in &queued {
        // REGISTER for mac 9, QUERY_PEER: control messages b refuses.
        h.rx("a's control message", n.b, a_addr, q);
    }
    // b's own PACKET back to b; to a it is fine.
    let (_, gb) = h.tx("p2p b→a", n.b, &unicast(2, 1, 500)).unwrap();
    h.rx("own packet", n.b, a_addr, &gb);
    h.rx("p2p b→a", n.a, b_addr, &gb);
    // A broadcast: through the supernode.
    let bcast = frame(1, [0xff; 6], Ipv4Addr::new(10, 0, 0, 255), 300, 4001);
    let (dst, gbc) = h.tx("broadcast", n.a, &bcast).unwrap();
    assert_eq!(dst, h.addr(n.sn));
    h.rx("broadcast at b", n.b, a_addr, &gbc);
    h.rx("broadcast at d", n.d, a_addr, &gbc);
    // Frames a refuses.
    assert_eq!(h.tx("too short", n.a, &fab[..10]), None);
    let mut foreign = fab.clone();
    foreign[26..30].copy_from_slice(&[10, 0, 0, 77]);
    assert_eq!(h.tx("foreign source ip", n.a, &foreign), None);
    let mcast = frame(
        1,
        [0x01, 0x00, 0x5e, 0, 0, 1],
        Ipv4Addr::new(224, 0, 0, 1),
        200,
        4001,
    );
    assert_eq!(h.tx("multicast without -E", n.a, &mcast), None);
    assert_eq!(h.tx("too large", n.a, &unicast(1, 2, 2100)), None);
    // The supernode goes away: a broadcast is copied to every known peer
    // (the first returned, the others queued).
    h.sim.kill(n.sn);
    let a = n.a;
    assert!(
        h.sim
            .run_until_cond(Duration::from_secs(600), |s| !s.edge(a).is_registered())
    );
    h.observe("supernode lost");
    let (first, gf) = h.tx("fan-out", n.a, &bcast).unwrap();
    let mut copies = h.last_queued(n.a);
    assert!(!copies.is_empty(), "more known peers");
    copies.push((first, gf.clone()));
    for (dst, g) in copies {
        assert_eq!(g, gf, "the same datagram");
        let y = [n.b, n.c, n.d]
            .into_iter()
            .find(|&y| h.addr(y) == dst)
            .unwrap();
        h.rx("fan-out copy", y, a_addr, &g);
    }
    // After shutdown nothing is accepted.
    let (_, g6) = h.tx("p2p a→b 6", n.a, &fab).unwrap();
    let now = h.sim.now();
    h.sim.edge_mut(n.b).shutdown(now);
    h.rx("stopped", n.b, a_addr, &g6);
}

/// (a) Two identically seeded simulations, one driven with
/// `encapsulate`/`decapsulate`, the other with a second shard per edge:
/// the same frames, datagrams (bytes), queued messages and counters at
/// every step, for several transforms, with and without `-H` and LZO.
#[test]
fn split_path_equals_single_owner_path() {
    let configs = [
        (TransformId::Null, false, CompressionId::None),
        (TransformId::Aes, false, CompressionId::None),
        (TransformId::Aes, true, CompressionId::Lzo),
        (TransformId::Speck, true, CompressionId::None),
        (TransformId::ChaCha20Poly1305, true, CompressionId::Lzo),
        (TransformId::Aes256Gcm, false, CompressionId::None),
        (TransformId::Aes256Gcm, true, CompressionId::None),
    ];
    let mut reasons = BTreeSet::new();
    for (i, (t, he, comp)) in configs.into_iter().enumerate() {
        let runs: Vec<(Vec<Rec>, Harness)> = [false, true]
            .into_iter()
            .map(|split| {
                let (sim, n) = setup(40 + i as u64, t, he, comp);
                let mut h = Harness::new(sim, n, split);
                script(&mut h);
                (std::mem::take(&mut h.rec), h)
            })
            .collect();
        let (whole, split) = (&runs[0].0, &runs[1].0);
        assert!(!whole.is_empty());
        for (k, (w, s)) in whole.iter().zip(split).enumerate() {
            assert_eq!(w, s, "{t} he {he} {comp}: record {k} differs");
        }
        assert_eq!(whole.len(), split.len());
        let h = &runs[0].1;
        for x in [h.n.a, h.n.b, h.n.d, h.n.e] {
            reasons.extend(h.stats(x).nonzero_drops().map(|(r, _)| r));
        }
        // The datagrams really are compared (not all dropped).
        let b = h.stats(h.n.b);
        assert!(b.transop_rx >= 5, "{t}: {b:?}");
    }
    for r in [
        DropReason::Malformed,
        DropReason::HeDecryptFailed,
        DropReason::WrongCommunity,
        DropReason::NotRegistered,
        DropReason::PayloadDecryptFailed,
        DropReason::PayloadReplay,
        DropReason::FrameTooShort,
        DropReason::FrameTooLarge,
        DropReason::MulticastDisabled,
        DropReason::ForeignSourceIp,
        DropReason::ForeignDestinationMac,
        DropReason::RegisterNotForUs,
        DropReason::UnexpectedMessage,
        DropReason::OwnPacket,
        DropReason::Stopped,
    ] {
        assert!(reasons.contains(&r), "{r} never reached: {reasons:?}");
    }
}

/// The AEAD nonce of a PACKET without user/password (the payload is not
/// header-encrypted).
fn nonce_of(dgram: &[u8]) -> AeadNonce {
    let n = &dgram[PACKET_HEADER_LEN..PACKET_HEADER_LEN + 12];
    AeadNonce::from_bytes(n.try_into().unwrap())
}

/// (b) Two threads, each with its own shard of edge a, encrypt
/// concurrently (the edge behind a mutex, locked for `route` only): all
/// datagrams carry one prefix and distinct counters, and edge b accepts all
/// of them when each thread's datagrams arrive in their order, interleaved
/// with the other thread's (one thread's delayed by up to 700 packets).
#[test]
fn shards_on_two_threads_share_one_replay_window() {
    const PER_THREAD: usize = 1500;
    for t in [TransformId::Aes256Gcm, TransformId::ChaCha20Poly1305] {
        for he in [false, true] {
            for delayed in [0usize, 1] {
                let (mut sim, n) = setup(7, t, he, CompressionId::None);
                let now = sim.now();
                let (a_addr, b_addr) = (sim.node(n.a).addr, sim.node(n.b).addr);
                let mut shards = [sim.edge(n.a).data_shard(), sim.edge(n.a).data_shard()];
                let edge = Mutex::new(sim.edge_mut(n.a));
                let sent: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
                    let edge = &edge;
                    let js: Vec<_> = shards
                        .iter_mut()
                        .enumerate()
                        .map(|(k, shard)| {
                            s.spawn(move || {
                                let f = frame(1, mac(2), ip(2), 400, 5000 + k as u16);
                                let mut out = vec![0u8; MAX_DATAGRAM];
                                let mut v = Vec::with_capacity(PER_THREAD);
                                for _ in 0..PER_THREAD {
                                    let r = edge.lock().unwrap().route(now, &f, shard).unwrap();
                                    let tx = shard.encode(&f, &r, &mut out).unwrap();
                                    assert_eq!(tx.dst, b_addr);
                                    v.push(out[..tx.len].to_vec());
                                }
                                v
                            })
                        })
                        .collect();
                    js.into_iter().map(|j| j.join().unwrap()).collect()
                });
                // Every counter once, one prefix, increasing per thread.
                let mut all: Vec<(u64, usize, usize)> = Vec::new();
                let prefix = nonce_of(&sent[0][0]).prefix;
                for (k, v) in sent.iter().enumerate() {
                    let mut last = None;
                    for (i, d) in v.iter().enumerate() {
                        let nonce = nonce_of(d);
                        assert_eq!(nonce.prefix, prefix, "{t}: one prefix");
                        assert!(last.is_none_or(|l| nonce.counter > l));
                        last = Some(nonce.counter);
                        // Arrival order: thread `delayed` 700 packets late.
                        let late = if k == delayed { 700 } else { 0 };
                        all.push((nonce.counter + late, k, i));
                    }
                }
                let distinct: BTreeSet<u64> =
                    sent.iter().flatten().map(|d| nonce_of(d).counter).collect();
                assert_eq!(distinct.len(), 2 * PER_THREAD, "{t}: a counter repeated");
                const { assert!(700 < REPLAY_WINDOW) };
                all.sort();
                let eb = sim.edge_mut(n.b);
                let before = eb.stats().transop_rx;
                let drops_before = eb.stats().total_drops();
                let mut tap = vec![0u8; MAX_DATAGRAM];
                for &(_, k, i) in &all {
                    let mut d = sent[k][i].clone();
                    let got = eb.decapsulate(now, a_addr, &mut d, false, &mut tap);
                    assert!(got.is_some(), "{t} he {he}: thread {k} packet {i} refused");
                }
                let st = eb.stats();
                assert_eq!(st.drops(DropReason::PayloadReplay), 0);
                assert_eq!(st.total_drops(), drops_before, "{t}: {st:?}");
                assert_eq!(st.transop_rx - before, 2 * PER_THREAD as u64);
                // Counters of a: every frame routed once, bytes once synced.
                let ea = sim.edge_mut(n.a);
                let p2p_before = ea.stats().p2p_tx_bytes;
                for s in &mut shards {
                    ea.sync_shard(s);
                }
                let len = sent[0][0].len() as u64;
                assert_eq!(ea.stats().p2p_tx_bytes - p2p_before, len * 2);
            }
        }
    }
}

/// (c) User/password: shards made before the first REGISTER_SUPER_ACK hold
/// the random dynamic header key; `route` and `finish` bring them to the
/// key the supernode handed over, so their PACKETs get through both ways.
#[test]
fn shards_made_before_the_dynamic_key_are_refreshed() {
    for t in [TransformId::ChaCha20, TransformId::Speck] {
        let mut sim = Sim::new(5);
        fixture::add_supernode(&mut sim, &[("a", "pa"), ("b", "pb")]);
        let mk = |i: u8, u: &str, p: &str| {
            fixture::with_user(edge_cfg(i, t, b"s3cret", true, CompressionId::None), u, p)
        };
        let a = fixture::add_edge(&mut sim, "a", mk(1, "a", "pa"));
        let b = fixture::add_edge(&mut sim, "b", mk(2, "b", "pb"));
        // Before any key arrived.
        let mut sa = sim.edge(a).data_shard();
        let mut sb = sim.edge(b).data_shard();
        let mut sb2 = sim.edge(b).data_shard();
        assert!(sim.run_until_cond(Duration::from_secs(5), |s| {
            s.edge(a).is_registered() && s.edge(b).is_registered()
        }));
        for i in 0..6u8 {
            let (x, f) = if i % 2 == 0 {
                (a, unicast(1, 2, 100))
            } else {
                (b, unicast(2, 1, 100))
            };
            sim.send_frame(x, &f);
            sim.run_for(Duration::from_secs(1));
        }
        assert!(sim.edge(a).peers().iter().any(|p| p.direct), "{t}: direct");
        let (a_addr, b_addr) = (sim.node(a).addr, sim.node(b).addr);
        let now = sim.now();
        let (ea, eb) = sim.edge_pair_mut(a, b);
        let drops_before = [ea.stats().total_drops(), eb.stats().total_drops()];
        let mut out = vec![0u8; MAX_DATAGRAM];
        let mut tap = vec![0u8; MAX_DATAGRAM];
        // a → b: the stale shard sends under the current key, b's
        // single-owner path accepts it.
        let f = unicast(1, 2, 300);
        let r = ea.route(now, &f, &mut sa).unwrap();
        assert_eq!(r.dst(), b_addr);
        let tx = sa.encode(&f, &r, &mut out).unwrap();
        let mut d = out[..tx.len].to_vec();
        let n = eb.decapsulate(now, a_addr, &mut d, false, &mut tap);
        assert_eq!(n.map(|n| tap[..n].to_vec()), Some(f.clone()), "{t}: a → b");
        // a → b by a's own path, opened by b's stale shards: the first
        // cannot decrypt with the old key and `finish` opens the datagram
        // again, the second is refreshed by `sync_shard` first.
        let tx = ea.encapsulate(now, &unicast(1, 2, 300), &mut out).unwrap();
        let mut d = out[..tx.len].to_vec();
        let o = sb.open(a_addr, &mut d, false, &mut tap);
        let n = eb.finish(now, o, &mut d, &mut tap, &mut sb);
        assert_eq!(n, Some(300), "{t}: stale shard, opened again");
        let tx = ea.encapsulate(now, &unicast(1, 2, 300), &mut out).unwrap();
        let mut d = out[..tx.len].to_vec();
        eb.sync_shard(&mut sb2);
        let o = sb2.open(a_addr, &mut d, false, &mut tap);
        assert_eq!(eb.finish(now, o, &mut d, &mut tap, &mut sb2), Some(300));
        for (e, before) in [&*ea, &*eb].into_iter().zip(drops_before) {
            assert_eq!(e.stats().total_drops(), before, "{t}: {:?}", e.stats());
        }
    }
}
