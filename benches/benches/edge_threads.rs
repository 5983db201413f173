//! The edge's data path on N threads around one edge per side (issue 18
//! item 4): two registered edges a → b that know each other as direct P2P
//! peers (set up with the simulator), each `Edge` behind a `Mutex`; every
//! thread owns a `DataShard` of a and one of b and loops
//!
//! ```text
//! a.lock().route → shard_a.encode → shard_b.open → b.lock().finish
//! ```
//!
//! on 1400-byte frames (its own inner flow: UDP source port), so only the
//! routing and the peer tables / replay window run under the locks; the
//! crypto runs in parallel.
//!
//! Groups `edge_threads/<transform>/<threads>` for AES (`-A3`) and
//! AES-256-GCM (`-A7`), threads 1, 2, 4; throughput in frames
//! (`Throughput::Elements`: one iteration = one frame per thread). At the
//! end the run prints frames/s per thread count and the scaling ratio
//! frames/s(N) / frames/s(1), measured in the same run (whole warm-up and
//! measurement time of each benchmark), the share of one frame's time the
//! locks are held (one thread, timed separately: the serial part), and b's
//! drops: a thread preempted between its `encode` and its `finish` while the
//! others' counters run more than the replay window ahead has its AEAD
//! datagram refused (`payload_replay`), as a receiver would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use n2n_core::edge::{DataShard, Edge};
use n2n_core::sim::fixture;
use n2n_core::sim::{NodeId, Sim};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_proto::types::{CompressionId, TransformId};

const KEY: &[u8] = b"s3cret";
const SIZE: usize = 1400;
const THREADS: [usize; 3] = [1, 2, 4];
const TRANSFORMS: [TransformId; 2] = [TransformId::Aes, TransformId::Aes256Gcm];

/// Frames and wall time per (transform, threads), over every run of the
/// benchmark.
static MEASURED: Mutex<Vec<(TransformId, usize, u64, Duration)>> = Mutex::new(Vec::new());
/// Lock share and drops at b per transform.
static DROPS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A `SIZE`-byte Ethernet/IPv4/UDP frame a → b from UDP port `port`.
fn frame(port: u16) -> Vec<u8> {
    let f = fixture::frame(1, fixture::mac(2), fixture::ip(2), SIZE, port);
    assert_eq!(f.len(), SIZE);
    f
}

/// Two edges `a`, `b` with transform `t`, registered and direct P2P peers.
fn setup(t: TransformId) -> (Sim, NodeId, NodeId) {
    fixture::p2p_pair(u64::from(t.to_wire()), |i| {
        fixture::edge_config(i, t, KEY, false, CompressionId::None)
    })
}

/// One thread's state: its shards of a and b, its frame and buffers.
struct Worker {
    sa: DataShard,
    sb: DataShard,
    frame: Vec<u8>,
    out: Vec<u8>,
    tap: Vec<u8>,
}

/// The locked edges and what every thread reads.
struct Shared<'e> {
    a: Mutex<&'e mut Edge>,
    b: Mutex<&'e mut Edge>,
    now: Now,
    from: SocketAddr,
}

impl Worker {
    /// `iters` frames a → b on this thread alone, timing the locked calls:
    /// (time under the locks, total time).
    fn timed(&mut self, sh: &Shared<'_>, iters: u64) -> (Duration, Duration) {
        let mut locked = Duration::ZERO;
        let start = Instant::now();
        for _ in 0..iters {
            let f = black_box(&self.frame[..]);
            let t0 = Instant::now();
            let route = sh.a.lock().unwrap().route(sh.now, f, &mut self.sa);
            locked += t0.elapsed();
            let route = route.expect("dropped at a");
            let t = self.sa.encode(f, &route, &mut self.out).unwrap();
            let dgram = &mut self.out[..t.len];
            let opened = self.sb.open(sh.from, dgram, false, &mut self.tap);
            let t1 = Instant::now();
            let n =
                sh.b.lock()
                    .unwrap()
                    .finish(sh.now, opened, dgram, &mut self.tap, &mut self.sb);
            locked += t1.elapsed();
            black_box(n);
        }
        (locked, start.elapsed())
    }

    /// `iters` frames a → b.
    fn run(&mut self, sh: &Shared<'_>, iters: u64) {
        for _ in 0..iters {
            let f = black_box(&self.frame[..]);
            let route = sh.a.lock().unwrap().route(sh.now, f, &mut self.sa);
            let route = route.expect("dropped at a");
            let t = self.sa.encode(f, &route, &mut self.out).unwrap();
            let dgram = &mut self.out[..t.len];
            let opened = self.sb.open(sh.from, dgram, false, &mut self.tap);
            let n =
                sh.b.lock()
                    .unwrap()
                    .finish(sh.now, opened, dgram, &mut self.tap, &mut self.sb);
            // A thread preempted between its encode and its finish lets the
            // others' counters run ahead: beyond the replay window its
            // datagram is refused (counted at b, reported at the end).
            black_box(n);
        }
    }
}

fn edge_threads(c: &mut Criterion) {
    for t in TRANSFORMS {
        let (mut sim, a, b) = setup(t);
        let now = sim.now();
        let from = sim.node(a).addr;
        let (ea, eb) = sim.edge_pair_mut(a, b);
        let sh = Shared {
            a: Mutex::new(ea),
            b: Mutex::new(eb),
            now,
            from,
        };
        let mut g = c.benchmark_group(format!("edge_threads/{}", t.name()));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for n in THREADS {
            let mut workers: Vec<Worker> = (0..n)
                .map(|k| Worker {
                    sa: sh.a.lock().unwrap().data_shard(),
                    sb: sh.b.lock().unwrap().data_shard(),
                    frame: frame(6000 + k as u16),
                    out: vec![0; MAX_DATAGRAM],
                    tap: vec![0; MAX_DATAGRAM],
                })
                .collect();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::from_parameter(n), |bch| {
                bch.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for w in &mut workers {
                            let sh = &sh;
                            s.spawn(move || w.run(sh, iters));
                        }
                    });
                    let took = start.elapsed();
                    MEASURED
                        .lock()
                        .unwrap()
                        .push((t, n, iters * n as u64, took));
                    took
                })
            });
        }
        g.finish();
        // How much of one frame's time the locks are held (one thread): the
        // serial part that bounds the scaling.
        let mut w = Worker {
            sa: sh.a.lock().unwrap().data_shard(),
            sb: sh.b.lock().unwrap().data_shard(),
            frame: frame(7000),
            out: vec![0; MAX_DATAGRAM],
            tap: vec![0; MAX_DATAGRAM],
        };
        let frames = 200_000;
        let (locked, total) = w.timed(&sh, frames);
        let per = |d: Duration| d.as_secs_f64() * 1e9 / frames as f64;
        DROPS.lock().unwrap().push(format!(
            "{t}: locks held {:.0} ns of {:.0} ns per frame ({:.0} %, timers included)",
            per(locked),
            per(total),
            100.0 * locked.as_secs_f64() / total.as_secs_f64()
        ));
        let b = sh.b.lock().unwrap();
        let drops: Vec<_> = b.stats().nonzero_drops().collect();
        let rx = b.stats().transop_rx;
        DROPS
            .lock()
            .unwrap()
            .push(format!("{t}: {rx} frames at b, drops {drops:?}"));
    }
}

/// Frames/s per thread count and the ratio to one thread, from this run.
fn report(_: &mut Criterion) {
    let m = MEASURED.lock().unwrap();
    let rate = |t: TransformId, n: usize| {
        let (frames, secs) = m
            .iter()
            .filter(|e| e.0 == t && e.1 == n)
            .fold((0u64, 0f64), |(f, s), e| (f + e.2, s + e.3.as_secs_f64()));
        (secs > 0.0).then(|| frames as f64 / secs)
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("edge_threads: {SIZE}-byte frames a → b, {cores} CPUs available");
    for d in DROPS.lock().unwrap().iter() {
        eprintln!("  {d}");
    }
    for t in TRANSFORMS {
        let Some(one) = rate(t, 1) else { continue };
        for n in THREADS {
            if let Some(r) = rate(t, n) {
                eprintln!(
                    "  {:<12} {n} thread(s): {:>10.0} frames/s  ({:>6.1} MB/s)  ×{:.2} of 1 thread",
                    t.name(),
                    r,
                    r * SIZE as f64 / 1e6,
                    r / one
                );
            }
        }
    }
}

criterion_group!(benches, edge_threads, report);
criterion_main!(benches);
