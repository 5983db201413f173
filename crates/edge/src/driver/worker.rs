//! `--threads N`: the N − 1 data-path threads beside the main loop. Each
//! owns a [`Lane`]: one queue of the multi-queue TAP (the kernel spreads
//! the flows it sends over the queues) and one `SO_REUSEPORT` socket on the
//! main socket's address and port (the kernel spreads received datagrams
//! over the sockets by 4-tuple, so one peer's datagrams stay in order on
//! one lane). A worker blocks in `poll(2)` on those two and its stop
//! waker, and calls into the one core behind its mutex.
//!
//! The control plane stays on the main loop: a worker forwards the events
//! its calls produced to it (a channel, then the main loop's waker) and
//! wakes it when the core's next deadline moved before the one the main
//! loop sleeps until ([`Deadline`]). A worker sends the control datagrams
//! its calls queued itself, from its own socket (the same address).

use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use n2n_core::edge::{Edge, Event};
use n2n_sys::poll::Waker;
use n2n_sys::udp::{RecvBatch, SyncSocket};

use super::ends::{TapIo, Udp};
use super::lane::{Lane, gso_batch};
use super::report::ErrorLog;
use super::{DriverError, RECV_BATCH, RECV_BUF, lock, now};
use crate::sock::{self, MainSocketConfig};
use crate::tap::TapQueue;

/// The instant the main loop sleeps until, shared with the workers.
#[derive(Debug)]
pub(super) struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`; `u64::MAX`: none.
    at: AtomicU64,
}

impl Deadline {
    pub(super) fn new() -> Self {
        Self {
            base: Instant::now(),
            at: AtomicU64::new(u64::MAX),
        }
    }

    fn nanos(&self, t: Option<Instant>) -> u64 {
        t.map_or(u64::MAX, |t| {
            u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
        })
    }

    /// The main loop: it sleeps until `t` now.
    pub(super) fn set(&self, t: Option<Instant>) {
        self.at.store(self.nanos(t), Ordering::Release);
    }

    /// Whether `t` comes before the main loop's wake-up.
    fn is_earlier(&self, t: Option<Instant>) -> bool {
        self.nanos(t) < self.at.load(Ordering::Acquire)
    }
}

/// What the workers share with the main loop.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) edge: Arc<Mutex<Edge>>,
    /// The main loop's waker.
    pub(super) control: Arc<Waker>,
    pub(super) deadline: Arc<Deadline>,
    pub(super) events: mpsc::Sender<Event>,
}

/// How a lane socket is made.
#[derive(Debug, Clone, Copy)]
pub(super) struct LaneSockets {
    pub(super) cfg: MainSocketConfig,
    /// The main socket's bound address.
    pub(super) local: SocketAddr,
    /// Read with `UDP_GRO` (as the main socket).
    pub(super) gro: bool,
    /// `N2N_UDP_GSO` (as the main socket).
    pub(super) gso: bool,
}

struct Running {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: JoinHandle<Option<TapQueue>>,
}

/// The running workers.
#[derive(Default)]
pub(super) struct Workers {
    running: Vec<Running>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("threads", &self.running.len())
            .finish()
    }
}

impl Workers {
    /// One worker per queue, each with a new socket on the main port.
    pub(super) fn start(
        &mut self,
        queues: Vec<TapQueue>,
        socks: LaneSockets,
        shared: &Shared,
    ) -> Result<(), DriverError> {
        let io = |what| move |source| DriverError::Io { what, source };
        for (i, q) in queues.into_iter().enumerate() {
            let sock = sock::bind_lane(socks.local, &socks.cfg)
                .map_err(|e| io("binding a data-path socket")(std::io::Error::other(e)))?;
            let main = SyncSocket::new(sock).map_err(io("preparing a data-path socket"))?;
            let gro = socks.gro
                && main
                    .enable_gro()
                    .inspect_err(|e| tracing::debug!("UDP_GRO on a data-path socket: {e}"))
                    .is_ok();
            let lane = Lane {
                tap: TapIo::new(Some(Box::new(q))),
                udp: Udp {
                    main,
                    mcast: None,
                    gso: gso_batch(),
                    gso_on: socks.gso,
                    errors: ErrorLog::default(),
                    tcp: None,
                },
                rx: if gro {
                    RecvBatch::with_gro(RECV_BATCH)
                } else {
                    RecvBatch::new(RECV_BATCH, RECV_BUF)
                },
                shard: Some(lock(&shared.edge).data_shard()),
            };
            let stop = Arc::new(AtomicBool::new(false));
            let waker = Arc::new(Waker::new().map_err(io("creating a worker's eventfd"))?);
            let (s, w, sh) = (stop.clone(), waker.clone(), shared.clone());
            let thread = std::thread::Builder::new()
                .name(format!("edge-dp{}", i + 1))
                .spawn(move || run(lane, &sh, &s, &w))
                .map_err(io("starting a data-path thread"))?;
            self.running.push(Running {
                stop,
                waker,
                thread,
            });
        }
        if !self.running.is_empty() {
            tracing::info!("data path on {} threads", self.running.len() + 1);
        }
        Ok(())
    }

    /// Stop and join every worker; their TAP queues come back.
    pub(super) fn stop(&mut self) -> Vec<TapQueue> {
        for r in &self.running {
            r.stop.store(true, Ordering::Release);
            r.waker.wake();
        }
        let mut queues = Vec::new();
        for r in self.running.drain(..) {
            match r.thread.join() {
                Ok(q) => queues.extend(q),
                Err(_) => tracing::error!("a data-path thread panicked"),
            }
        }
        queues
    }
}

/// A worker's loop: until stopped (or its TAP queue fails); returns the
/// queue.
fn run(
    mut lane: Lane<Box<TapQueue>>,
    shared: &Shared,
    stop: &AtomicBool,
    waker: &Waker,
) -> Option<TapQueue> {
    loop {
        let ready = {
            let Some(tap) = &lane.tap.dev else { break };
            let fds = [waker.as_fd(), tap.as_fd(), lane.udp.main.as_fd()];
            match n2n_sys::poll::wait(&fds, None) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("data-path thread: waiting for input failed: {e}");
                    break;
                }
            }
        };
        let t = now();
        if ready.is_set(0) {
            waker.drain();
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        if ready.is_set(1)
            && let Err(e) = lane.on_tap_readable(&shared.edge, t)
        {
            tracing::error!("data-path thread: reading the TAP failed: {e}");
            break;
        }
        if ready.is_set(2) {
            lane.on_socket_readable(&shared.edge, false, t);
        }
        hand_over(shared);
    }
    lane.tap.dev.take().map(|q| *q)
}

/// What the core wants from the main loop after a worker's calls: its
/// events, and a wake-up if its next deadline moved earlier.
fn hand_over(shared: &Shared) {
    let mut e = lock(&shared.edge);
    let mut wake = false;
    while let Some(ev) = e.poll_event() {
        let _ = shared.events.send(ev);
        wake = true;
    }
    if shared.deadline.is_earlier(e.poll_timeout()) {
        wake = true;
    }
    drop(e);
    if wake {
        shared.control.wake();
    }
}
