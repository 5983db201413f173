//! The tokio driver around the sans-IO edge core (`n2n_core::edge::Edge`):
//! it moves frames and datagrams between the TAP, the sockets and the
//! core. The offload work on the bytes is `n2n_offload`, every OS call is
//! `n2n_sys`, the housekeeping (TAP set-up, privileges, discovery socket,
//! DHCP, socket reopening) is in [`setup`], name re-resolution in
//! [`resolver`], the log wording in [`report`].
//!
//! One loop on the edge's main thread, blocking in `poll(2)`
//! ([`n2n_sys::poll`]) on the TAP, the main, discovery and management
//! sockets and a waker: a frame or a datagram wakes the thread straight
//! into its handler, with no async reactor in between (that hop cost an
//! idle tunnel ~0.07 ms per round trip). What is slow or waits on the
//! network runs as tasks on a tokio runtime with one worker thread
//! ([`background`]): name resolution, the `-S2` connection, signals, the
//! metrics server; netlink and the scripts are awaited from the loop
//! (`block_on`, never per packet). Their results come back through
//! channels that poke the waker. Each pass:
//! 1. run the timers that are due (`handle_timeout`, name re-resolution,
//!    the multicast join retry, the DHCP address poll);
//! 2. execute pending transmits (`poll_transmit`: control datagrams, the
//!    copies of a broadcast, the `-L` spray with its TTL);
//! 3. act on the core's events (`poll_event`: open the TAP once the
//!    supernode assigned an address, notify systemd, reopen the socket;
//!    log them all), and leave if a stop was asked for;
//! 4. compute the next wake-up (`poll_timeout` and the driver's timers);
//! 5. wait until a descriptor is ready or the wake-up is due; handle
//!    every ready one (waker: signals, resolver results, TCP link events;
//!    then management, TAP, main, discovery socket), each a bounded
//!    batch, so the TAP and the sockets do not starve each other.
//!
//! The data path itself is [`lane`]: lane 0 runs in this loop; with
//! `--threads N`, N − 1 more run on their own threads ([`worker`]), each
//! with a TAP queue and a socket on the main port, all calling into the one
//! core behind a mutex. The control plane (timers, transmits of timers and
//! management, events, management) stays here.
//!
//! All buffers are allocated once; nothing on the data path allocates.
//! Every call into the core's data and timer API is in the section "Calls
//! into the core" at the end.

mod background;
mod ends;
mod lane;
mod report;
mod resolver;
mod setup;
mod tcp;
mod telemetry;
mod worker;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsFd as _;
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use n2n_core::edge::events::{MgmtDatagram, Subscriptions};
use n2n_core::edge::{DataShard, Edge, Event, MgmtAction, SwitchReason};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_offload::{GsoBatch, VNET_HDR_LEN};
use n2n_sys::log::LogHandle;
use n2n_sys::notify::Notifier;
use n2n_sys::poll::Waker;
use n2n_sys::signals::{Signal, Signals};
use n2n_sys::udp::{RecvBatch, SyncSocket};
use tokio::sync::mpsc;

use crate::cli::EdgeOptions;
use crate::sock::MainSocketConfig;
use crate::tap::Tap;
use background::Background;
use ends::{TapIo, Udp};
use lane::Lane;
use report::ErrorLog;
use resolver::Resolver;
use tcp::{LinkEvent, TcpLink};
use worker::{Deadline, LaneSockets, Shared, Workers};

pub use n2n_sys::time::now;
pub use report::log_packet_stats;
pub use setup::{DriverError, Setup, netmask};

/// TAP reads, or datagrams, per readiness event before the other inputs
/// get a turn.
pub const BATCH: usize = 64;
/// Management requests handled per readiness event.
pub const MGMT_BATCH: usize = 16;
/// Datagrams read per `recvmmsg` (up to [`BATCH`] per readiness event).
/// Each slot holds a whole datagram (64 KiB): 16 keeps the pages
/// they touch few.
pub const RECV_BATCH: usize = 16;
/// A TAP last readable this long ago or longer is idle: its next
/// readiness is read once, not until empty (`Lane::on_tap_readable`).
/// Busy paths wake far more often than this.
pub const IDLE_GAP: Duration = Duration::from_millis(1);
/// DHCP mode: how often the TAP address is re-read (behaviour.md §7).
pub const DHCP_POLL: Duration = Duration::from_secs(30);
/// How often joining the discovery group is retried after a failure.
pub const MCAST_RETRY: Duration = Duration::from_secs(30);
/// Local-discovery port.
pub const MCAST_PORT: u16 = 1968;
/// Largest Ethernet frame produced by segmentation: the UDP payload that
/// crosses a 1500-byte path unfragmented also over IPv6 (1500 − 40 − 8 =
/// 1452; IPv4 allows 1472) minus the most a PACKET datagram adds to its
/// frame ([`n2n_proto::wire::MAX_PACKET_OVERHEAD`]: the header as relayed
/// with an IPv6 socket plus the AEAD overhead; header encryption adds
/// nothing) = 1366.
pub const SEG_FRAME_MAX: usize = 1452 - n2n_proto::wire::MAX_PACKET_OVERHEAD;
/// Environment variable: `0` opens the TAP without offloads.
pub const OFFLOAD_ENV: &str = "N2N_TAP_OFFLOAD";
/// Environment variable: `0` sends segmented bursts one datagram at a time.
pub const UDP_GSO_ENV: &str = "N2N_UDP_GSO";
/// Environment variable: `0` reads one datagram per receive slot (no
/// `UDP_GRO`).
pub const UDP_GRO_ENV: &str = "N2N_UDP_GRO";
/// Receive slot: larger than any datagram the core accepts, so that an
/// oversized one is seen whole (and dropped by the core) instead of cut.
const RECV_BUF: usize = 65_536;
/// TAP read buffer: a virtio-net header and a TCP super-segment of up to
/// 64 KiB plus its Ethernet header.
const TAP_READ_BUF: usize = VNET_HDR_LEN + 65_536 + 256;

/// Why the driver stopped cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal(Signal),
    /// Management `stop`.
    Management,
}

/// The running edge.
#[derive(Debug)]
pub struct Driver {
    /// The one core: this loop and the data-path threads lock it.
    edge: Arc<Mutex<Edge>>,
    opts: EdgeOptions,
    /// Lane 0: the TAP (queue 0), the main and discovery sockets.
    lane: Lane<Tap>,
    main_cfg: MainSocketConfig,
    /// `--threads` > 1: the other lanes.
    workers: Workers,
    /// What the workers share with this loop.
    shared: Shared,
    /// Events the workers took from the core.
    worker_events: std_mpsc::Receiver<Event>,
    /// Non-blocking, in the loop's `poll` set.
    mgmt: std::net::UdpSocket,
    mgmt_buf: Box<[u8]>,
    /// Management event subscribers (one per topic: tag and address).
    subs: Subscriptions,
    log: LogHandle,
    notifier: Option<Notifier>,
    resolver: Resolver,
    mcast_next: Option<Instant>,
    dhcp_next: Option<Instant>,
    dhcp_addr: Option<(Ipv4Addr, u8)>,
    privileges_dropped: bool,
    ready: bool,
    stop: Option<StopReason>,
    /// `--metrics`, systemd watchdog and `STATUS=` (started in `run`).
    telemetry: Option<n2n_metrics::Telemetry<n2n_metrics::EdgeSnapshot>>,
    /// The runtime of the background tasks, the loop's waker.
    bg: Background,
    /// Signals, forwarded by a task (started in `run`).
    signals: Option<mpsc::Receiver<Signal>>,
}

fn buffer(n: usize) -> Box<[u8]> {
    vec![0u8; n].into_boxed_slice()
}

/// The core, also when a thread panicked holding it (its state is whole
/// between calls: every call either finishes or drops its input).
fn lock(edge: &Mutex<Edge>) -> MutexGuard<'_, Edge> {
    edge.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

impl Driver {
    /// The loop of `setup`; its background tasks run on `rt`, which must
    /// keep a worker thread (a multi-thread runtime with one worker).
    pub fn new(setup: Setup, rt: tokio::runtime::Handle) -> Result<Self, DriverError> {
        let io = |what| move |source| DriverError::Io { what, source };
        let bg = Background::new(rt, Waker::new().map_err(io("creating the loop's eventfd"))?);
        let main = SyncSocket::new(setup.main.sock).map_err(io("preparing the main socket"))?;
        let mgmt = setup.mgmt;
        mgmt.set_nonblocking(true)
            .map_err(io("preparing the management socket"))?;
        let gso_on = std::env::var_os(UDP_GSO_ENV).is_none_or(|v| v != "0");
        // Only a batch made for UDP_GRO reads the segment sizes: a socket
        // gets it only if the batch is one (`RecvBatch::reads_gro`, also
        // when it is reopened).
        let gro_on = std::env::var_os(UDP_GRO_ENV).is_none_or(|v| v != "0")
            && main
                .enable_gro()
                .inspect_err(|e| tracing::debug!("UDP_GRO not available ({e})"))
                .is_ok();
        let rx = if gro_on {
            RecvBatch::with_gro(RECV_BATCH)
        } else {
            RecvBatch::new(RECV_BATCH, RECV_BUF)
        };
        let edge = Arc::new(Mutex::new(setup.edge));
        let (events, worker_events) = std_mpsc::channel();
        let shared = Shared {
            edge: edge.clone(),
            control: bg.waker_arc(),
            deadline: Arc::new(Deadline::new()),
            events,
        };
        Ok(Self {
            resolver: Resolver::new(setup.names, main.is_ipv6(), &bg),
            lane: Lane {
                tap: TapIo::new(None),
                udp: Udp {
                    main,
                    mcast: None,
                    gso: lane::gso_batch(),
                    gso_on,
                    errors: ErrorLog::default(),
                    tcp: setup.opts.tcp.then(|| {
                        let ip = *setup.opts.bind.ip();
                        TcpLink::new((!ip.is_unspecified()).then_some(ip.into()), &bg)
                    }),
                },
                rx,
                shard: None,
            },
            edge,
            opts: setup.opts,
            main_cfg: setup.main_cfg,
            workers: Workers::default(),
            shared,
            worker_events,
            mgmt,
            mgmt_buf: buffer(MAX_DATAGRAM),
            subs: Subscriptions::new(),
            log: setup.log,
            notifier: setup.notifier,
            mcast_next: None,
            dhcp_next: None,
            dhcp_addr: None,
            privileges_dropped: false,
            ready: false,
            stop: None,
            telemetry: None,
            bg,
            signals: None,
        })
    }

    fn notify(&self, f: impl FnOnce(&Notifier) -> io::Result<()>) {
        if let Some(n) = &self.notifier
            && let Err(e) = f(n)
        {
            tracing::warn!("sd_notify failed: {e}");
        }
    }

    /// Run until SIGINT/SIGTERM or management `stop` (on this thread;
    /// `signals` were installed in the runtime given to [`Self::new`]).
    pub fn run(mut self, mut signals: Signals) -> Result<StopReason, DriverError> {
        let (tx, rx) = self.bg.channel(8);
        self.signals = Some(rx);
        self.bg.spawn(async move {
            loop {
                if tx.send(signals.recv().await).await.is_err() {
                    return;
                }
            }
        });
        // Before the TAP set-up drops privileges (a low port stays possible).
        let telemetry = self.bg.block_on(n2n_metrics::Telemetry::start(
            self.opts.metrics,
            n2n_metrics::EdgeSnapshot::default(),
            n2n_metrics::EdgeExporter::new,
            self.notifier.clone(),
            Instant::now(),
        ))?;
        self.telemetry = Some(telemetry);
        self.start()?;
        tracing::info!("management interface on 127.0.0.1:{}", self.opts.mgmt_port);
        tracing::info!("edge started");

        // When the last wait for input ended: one clock read per wake-up,
        // for the timers, the handlers and the next wait.
        let mut t = now();
        let mut deadline = None;
        let reason = loop {
            // 1. Timers that are due (none before the deadline the last
            // wait was for; one that a handler moved earlier is found in
            // step 4 and ends the next wait at once).
            if deadline.is_some_and(|d| d <= t.mono) {
                self.run_timers(t);
            }
            // 2. Pending transmits.
            self.send_transmits();
            // 3. Events; stop when asked to.
            self.handle_events()?;
            if let Some(r) = self.stop {
                break r;
            }
            if let Some(l) = &self.lane.udp.tcp {
                l.set_target(lock(&self.edge).current_supernode());
            }
            // 4. Next wake-up (the workers wake this loop if the core's
            // moves earlier).
            deadline = self.next_deadline();
            self.shared.deadline.set(deadline);
            // 5. Wait for inputs and handle them.
            t = self.wait_and_handle(t, deadline)?;
        };

        tracing::info!("shutting down...");
        self.workers.stop();
        lock(&self.edge).shutdown(now());
        self.send_transmits();
        // The "cleared" peer events to the subscribers.
        while let Some(ev) = self.next_event() {
            let out = self.subs.on_event(&ev);
            self.send_mgmt(&out);
        }
        log_packet_stats(lock(&self.edge).stats());
        let why = match reason {
            StopReason::Signal(s) => format!("{} received", s.name()),
            StopReason::Management => "stop requested on the management port".to_owned(),
        };
        self.notify(|n| n.stopping(&format!("shutting down: {why}")));
        self.close_tap();
        Ok(reason)
    }

    /// Step 5: Block until a descriptor is ready or `deadline` (`t`: the
    /// time of this loop's wake-up); handle what is ready. Returns when
    /// the wait ended.
    fn wait_and_handle(&mut self, t: Now, deadline: Option<Instant>) -> Result<Now, DriverError> {
        const WAKER: usize = 0;
        const MGMT: usize = 1;
        const MAIN: usize = 2;
        let timeout = deadline.map(|d| d.saturating_duration_since(t.mono));
        let (ready, tap_i, mcast_i) = {
            let waker = self.bg.waker().as_fd();
            let mut fds = [waker; 5];
            fds[MGMT] = self.mgmt.as_fd();
            fds[MAIN] = self.lane.udp.main.as_fd();
            let mut n = MAIN + 1;
            let mut add = |fd| {
                fds[n] = fd;
                n += 1;
                n - 1
            };
            let tap_i = self.lane.tap.dev.as_ref().map(|t| add(t.as_fd()));
            let mcast_i = self.lane.udp.mcast.as_ref().map(|m| add(m.as_fd()));
            let fds = fds.get(..n).unwrap_or_default();
            let ready = n2n_sys::poll::wait(fds, timeout).map_err(|source| DriverError::Io {
                what: "waiting for input",
                source,
            })?;
            (ready, tap_i, mcast_i)
        };
        let t = now();
        if ready.is_set(WAKER) {
            self.on_wake();
        }
        if ready.is_set(MGMT) {
            self.on_mgmt_readable();
        }
        if tap_i.is_some_and(|i| ready.is_set(i)) {
            self.on_tap_readable(t)?;
        }
        if ready.is_set(MAIN) {
            self.lane.on_socket_readable(&self.edge, false, t);
        }
        if mcast_i.is_some_and(|i| ready.is_set(i)) {
            self.lane.on_socket_readable(&self.edge, true, t);
        }
        Ok(t)
    }

    /// Step 5: The waker: what the background tasks queued (all of it:
    /// the waker was reset first, a message after that wakes again).
    fn on_wake(&mut self) {
        self.bg.waker().drain();
        while let Some(sig) = self.signals.as_mut().and_then(|r| r.try_recv().ok()) {
            if sig.is_stop() {
                tracing::info!("{} received", sig.name());
                self.stop = Some(StopReason::Signal(sig));
            } else {
                tracing::debug!("{} ignored", sig.name());
            }
        }
        while let Ok(results) = self.resolver.rx.try_recv() {
            self.resolver.apply(&mut lock(&self.edge), results);
        }
        while let Some(ev) = self
            .lane
            .udp
            .tcp
            .as_mut()
            .and_then(|l| l.rx.try_recv().ok())
        {
            self.on_link(ev);
        }
    }

    /// Step 5: Management requests, up to [`MGMT_BATCH`].
    fn on_mgmt_readable(&mut self) {
        for _ in 0..MGMT_BATCH {
            match self.mgmt.recv_from(&mut self.mgmt_buf) {
                Ok((n, from)) => self.on_mgmt(n, from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("management socket: {e}");
                    break;
                }
            }
        }
    }

    fn tap_read_error(&self, e: io::Error) -> DriverError {
        DriverError::TapRead {
            name: self.opts.tap_name.clone(),
            source: e,
        }
    }

    /// Step 1: The driver's timers that are due at `t`, and the core's.
    fn run_timers(&mut self, t: Now) {
        {
            let mut e = lock(&self.edge);
            if poll_timeout(&e).is_some_and(|d| d <= t.mono) {
                handle_timeout(&mut e, t);
            }
        }
        if self.resolver.deadline().is_some_and(|d| d <= t.mono) {
            self.resolver.start();
        }
        if self.mcast_next.is_some_and(|d| d <= t.mono) {
            self.join_multicast();
        }
        if self.dhcp_next.is_some_and(|d| d <= t.mono) {
            self.dhcp_next = Some(t.mono + DHCP_POLL);
            self.poll_dhcp_address();
        }
        if let Some(tm) = &mut self.telemetry
            && tm.deadline().is_some_and(|d| d <= t.mono)
        {
            let edge = &*lock(&self.edge);
            tm.tick(
                t.mono,
                || telemetry::snapshot(edge),
                || telemetry::status(edge),
            );
        }
    }

    /// Step 3: Log every event; act on those that need the driver.
    fn handle_events(&mut self) -> Result<(), DriverError> {
        while let Some(ev) = self.next_event() {
            report::log_event(&ev, lock(&self.edge).uses_user_password());
            let out = self.subs.on_event(&ev);
            self.send_mgmt(&out);
            match ev {
                Event::AssignAddress(a) => self.on_assigned(a)?,
                Event::Registered { supernode, .. } if !self.ready => {
                    self.ready = true;
                    let addr = lock(&self.edge).tap_addr();
                    let status = format!("registered to {supernode}, TAP address {addr}");
                    if let Some(t) = &mut self.telemetry {
                        t.ready(&status);
                    }
                }
                // C asks the resolver for fresh addresses right away.
                Event::SupernodeSwitched {
                    reason: SwitchReason::Timeout,
                    ..
                } => self.resolver.start(),
                Event::ReopenSocket => self.reopen_socket(),
                _ => {}
            }
        }
        Ok(())
    }

    /// The core's next event, or one a worker took from it.
    fn next_event(&mut self) -> Option<Event> {
        poll_event(&mut lock(&self.edge)).or_else(|| self.worker_events.try_recv().ok())
    }

    /// Step 4: The earliest of the core's and the driver's deadlines.
    fn next_deadline(&self) -> Option<Instant> {
        earliest([
            poll_timeout(&lock(&self.edge)),
            self.resolver.deadline(),
            self.dhcp_next,
            self.mcast_next,
            self.telemetry.as_ref().and_then(|t| t.deadline()),
        ])
    }

    /// `--threads`: a worker for each of these TAP queues, with a socket
    /// on the main socket's port.
    fn start_workers(&mut self, queues: Vec<crate::tap::TapQueue>) -> Result<(), DriverError> {
        if queues.is_empty() {
            return Ok(());
        }
        // Lane 0 encrypts and decrypts outside the lock too.
        if self.lane.shard.is_none() {
            self.lane.shard = Some(lock(&self.edge).data_shard());
        }
        let local = self
            .lane
            .udp
            .main
            .local_addr()
            .map_err(|source| DriverError::Io {
                what: "reading the main socket's address",
                source,
            })?;
        let socks = LaneSockets {
            cfg: self.main_cfg,
            local,
            gro: self.lane.rx.reads_gro(),
            gso: self.lane.udp.gso_on,
        };
        self.workers.start(queues, socks, &self.shared)
    }

    /// Step 5: Frames from lane 0's TAP queue.
    fn on_tap_readable(&mut self, t: Now) -> Result<(), DriverError> {
        self.lane
            .on_tap_readable(&self.edge, t)
            .map_err(|e| self.tap_read_error(e))
    }

    /// Step 5: `-S2`: an event of the TCP connection to the supernode.
    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Up(sn, w) => {
                tracing::info!("connected to supernode {sn} over TCP");
                if let Some(l) = &mut self.lane.udp.tcp {
                    l.up(sn, w);
                }
                lock(&self.edge).tcp_connected(now());
                self.send_transmits();
            }
            LinkEvent::Down(sn, why) => {
                let was_up = self.lane.udp.tcp.as_ref().and_then(TcpLink::connected) == Some(sn);
                if let Some(l) = &mut self.lane.udp.tcp {
                    l.down(sn);
                }
                if was_up {
                    tracing::warn!("TCP connection to supernode {sn} lost ({why}); reconnecting");
                } else {
                    tracing::debug!("TCP connection to supernode {sn}: {why}");
                }
            }
            LinkEvent::Frame(sn, mut f) => {
                let t = now();
                let out = self.lane.tap.frame_buf();
                if let Some(len) = decapsulate(&self.edge, None, t, sn, &mut f, false, out) {
                    self.lane.tap.write_frame(len);
                }
                self.lane.tap.flush();
                self.send_transmits();
            }
        }
    }

    /// Step 5: A management request: replies, then its action.
    fn on_mgmt(&mut self, n: usize, from: SocketAddr) {
        let request = self.mgmt_buf.get(..n).unwrap_or_default();
        let outcome = lock(&self.edge).handle_mgmt(now(), from, request);
        let mut replies: Vec<MgmtDatagram> =
            outcome.replies.into_iter().map(|r| (from, r)).collect();
        match &outcome.action {
            Some(MgmtAction::Subscribe { topic, tag }) => {
                replies = self.subs.subscribe(*topic, tag, from);
            }
            Some(MgmtAction::HelpEvents { tag }) => {
                replies = self
                    .subs
                    .help_events(tag)
                    .into_iter()
                    .map(|r| (from, r))
                    .collect();
            }
            Some(MgmtAction::PostTest { text }) => {
                // The event goes out before the `end` (C's order).
                let end = replies.pop();
                replies.extend(self.subs.post_test(text));
                replies.extend(end);
            }
            _ => {}
        }
        self.send_mgmt(&replies);
        match outcome.action {
            None
            | Some(
                MgmtAction::Subscribe { .. }
                | MgmtAction::HelpEvents { .. }
                | MgmtAction::PostTest { .. },
            ) => {}
            Some(MgmtAction::Stop) => {
                tracing::info!("stop requested on the management port");
                self.stop = Some(StopReason::Management);
            }
            Some(MgmtAction::SetVerbosity(v)) => match self.log.set_level(u32::from(v)) {
                Ok(()) => tracing::info!("verbosity set to {v} via management"),
                Err(e) => tracing::warn!("{e}"),
            },
            Some(other) => tracing::debug!("management action {other:?} ignored"),
        }
    }

    /// Management datagrams (replies, subscription notices, events), in
    /// order; a failed send is logged and skips the rest for that address.
    fn send_mgmt(&self, out: &[MgmtDatagram]) {
        let mut failed: Vec<SocketAddr> = Vec::new();
        for (to, line) in out {
            if failed.contains(to) {
                continue;
            }
            if let Err(e) = self.mgmt.send_to(line.as_bytes(), to) {
                tracing::warn!("management datagram to {to} failed: {e}");
                failed.push(*to);
            }
        }
    }

    // ---------------------------------------------------------------------
    // Calls into the core: its data path, transmits, events and timers.
    // (Configuration setters and `handle_mgmt` are called where used.)

    /// Step 2: Send every datagram the core queued.
    fn send_transmits(&mut self) {
        self.lane.send_transmits(&self.edge);
    }
}

/// `encapsulate` a frame straight into the GSO batch's free slot. `true`
/// if the datagram cannot join the collected run: send that run (the
/// datagram then starts the next one). With a `shard` (`--threads`) only
/// the routing holds the core's lock, the encoding does not.
fn encapsulate(
    edge: &Mutex<Edge>,
    shard: Option<&mut DataShard>,
    now: Now,
    frame: &[u8],
    gso: &mut GsoBatch,
) -> bool {
    let t = match shard {
        None => lock(edge).encapsulate(now, frame, gso.slot()),
        Some(shard) => {
            let route = lock(edge).route(now, frame, shard);
            route.and_then(|r| {
                shard
                    .encode(frame, &r, gso.slot())
                    .map_err(|why| lock(edge).count_drop(why))
                    .ok()
            })
        }
    };
    match t {
        Some(t) => !gso.push(t.len, t.dst),
        None => false,
    }
}

/// `decapsulate` a datagram into `out` (the TAP side's frame buffer); the
/// frame's length if there is one for the TAP. With a `shard` the
/// decryption happens outside the core's lock.
fn decapsulate(
    edge: &Mutex<Edge>,
    shard: Option<&mut DataShard>,
    t: Now,
    from: SocketAddr,
    dgram: &mut [u8],
    mcast: bool,
    out: &mut [u8],
) -> Option<usize> {
    match shard {
        None => lock(edge).decapsulate(t, from, dgram, mcast, out),
        Some(shard) => {
            let opened = shard.open(from, dgram, mcast, out);
            lock(edge).finish(t, opened, dgram, out, shard)
        }
    }
}

fn poll_event(edge: &mut Edge) -> Option<Event> {
    edge.poll_event()
}

fn poll_timeout(edge: &Edge) -> Option<Instant> {
    edge.poll_timeout()
}

fn handle_timeout(edge: &mut Edge, now: Now) {
    edge.handle_timeout(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        let t = Instant::now();
        let later = t + Duration::from_secs(1);
        assert_eq!(earliest([Some(t), Some(later)]), Some(t));
        assert_eq!(earliest([None, Some(later)]), Some(later));
        assert_eq!(earliest([Some(t), None]), Some(t));
        assert_eq!(earliest([None, None]), None);
    }
}
