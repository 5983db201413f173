//! The I/O driver: a tokio current-thread loop around the sans-IO
//! [`Supernode`] core. Every OS call is `n2n_sys` (sockets, batched
//! calls, the clock); this module only shuttles.
//!
//! One loop, like the edge's:
//! 1. run the timers that are due (`handle_timeout`; also under a flood
//!    that keeps the sockets ready);
//! 2. execute pending transmits: every queued datagram (`poll_transmit`
//!    into one of [`SEND_BATCH`] reusable buffers, sent with one
//!    `sendmmsg` per run of datagrams for the same socket, in which each
//!    run of equal-sized datagrams for one destination is one
//!    `UDP_SEGMENT` message whose iovecs are the pooled buffers: no copy);
//! 3. log the core's events (`poll_event`);
//! 4. compute the next wake-up (`poll_timeout`, at most [`IDLE_TICK`]
//!    away);
//! 5. wait for the first of, in this priority: a signal, a management
//!    request (`handle_mgmt`), datagrams on the main socket(s), the
//!    wake-up. A readable main socket is read with one `recvmmsg` of up to
//!    [`RECV_BATCH`] datagrams, or [`GRO_BATCH`] `UDP_GRO` buffers of
//!    several (`handle_datagram` each datagram, sources unmapped)
//!    before the outputs are flushed again.
//!
//! Nothing on the hot path allocates: the receive and transmit buffer
//! arrays are allocated once, the core's output queue is recycled. Every
//! call into the core's data and timer API is in the section "Calls into
//! the core" of [`Driver`]; the socket set-up is in [`setup`], the log
//! wording in [`report`].

mod report;
mod setup;
pub mod tcp;
mod telemetry;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use n2n_core::ConnId;
use n2n_core::supernode::{MgmtAction, MgmtOutcome, ReloadRequest, Supernode};
use n2n_sys::log::LogHandle;
use n2n_sys::notify::Notifier;
use n2n_sys::signals::{Signal, Signals};
use n2n_sys::udp::{MMSG_BATCH, RecvBatch, Socket, UdpError};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use tcp::{TcpInput, TcpLimits};

use crate::options::{SupernodeOptions, load_community_file};
use report::{dump_registrations, log_event};

pub use report::{event_line, subnet_line};
pub use setup::{Sockets, bind_sockets, local_mac, os_random};

/// Receive buffer size for the main socket (C's supernode buffer is 2048
/// bytes too; longer datagrams are truncated and then fail to decode).
pub const RECV_BUF: usize = n2n_core::MAX_DATAGRAM;
/// Housekeeping tick when the core asks for no earlier wake-up (C's main
/// loop wakes up every 10 s).
pub const IDLE_TICK: Duration = Duration::from_secs(10);
/// `SO_RCVBUF` / `SO_SNDBUF` asked for on the main socket(s); the kernel
/// caps it at `net.core.rmem_max` / `wmem_max` silently.
pub use n2n_sys::udp::SOCKET_BUFFER;
/// Datagrams read per wake-up (one `recvmmsg`) before the outputs are
/// flushed.
pub const RECV_BATCH: usize = MMSG_BATCH;
/// Receive slots with `UDP_GRO`: each holds up to 64 KiB of datagrams of
/// one source.
pub const GRO_BATCH: usize = 16;
/// Datagrams drained from the core and sent per `sendmmsg`.
pub const SEND_BATCH: usize = MMSG_BATCH;
/// A placeholder address for unused batch slots.
const NO_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
/// One drained transmit: length, destination, and its socket (`true` for
/// the extra IPv6 one; `None` if there is no socket of that family).
type Slot = (usize, SocketAddr, Option<bool>);
/// Management requests are cut to 79 bytes by the parser; this is plenty.
const MGMT_BUF: usize = 512;

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal(Signal),
    /// Management `w … stop`.
    Management,
}

/// Read both clocks into the core's `Now`.
pub use n2n_sys::time::now;

async fn readable(s: Option<&Socket>) -> io::Result<()> {
    match s {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

/// The running supernode.
#[derive(Debug)]
pub struct Driver {
    core: Supernode,
    udp: Socket,
    udp6: Option<Socket>,
    udp6_error: Option<UdpError>,
    mgmt: UdpSocket,
    log: LogHandle,
    notifier: Option<Notifier>,
    community_file: Option<PathBuf>,
    /// [`RECV_BATCH`] receive buffers.
    rx: RecvBatch,
    /// [`SEND_BATCH`] transmit buffers.
    tbufs: Vec<n2n_core::Datagram>,
    send_errors: u64,
    metrics: Option<SocketAddr>,
    /// `--metrics`, systemd watchdog and `STATUS=` (started in `run`).
    telemetry: Option<n2n_metrics::Telemetry<n2n_metrics::SupernodeSnapshot>>,
    /// The TCP listeners, until the loop starts their accept tasks.
    listeners: Vec<std::net::TcpListener>,
    tcp_limits: TcpLimits,
    tcp_rx: mpsc::Receiver<TcpInput>,
    tcp_tx: Option<mpsc::Sender<TcpInput>>,
    /// Writer queues of the open connections.
    conns: HashMap<ConnId, mpsc::Sender<Vec<u8>>>,
    /// Results of the `-l` name resolver task (name, address).
    resolved: tokio::sync::mpsc::Receiver<(String, Option<SocketAddr>)>,
}

/// The receive buffers: with `UDP_GRO` on the main socket(s) (datagrams
/// of one source read as one buffer, cut again before the core sees them),
/// else [`RECV_BATCH`] slots of one datagram.
fn receive_batch(udp: &Socket, udp6: Option<&Socket>) -> RecvBatch {
    match udp.enable_gro() {
        Ok(()) => {
            if let Some(Err(e)) = udp6.map(Socket::enable_gro) {
                tracing::debug!("UDP_GRO on the IPv6 socket: {e}");
            }
            RecvBatch::with_gro(GRO_BATCH)
        }
        Err(e) => {
            tracing::debug!("UDP_GRO not available ({e}): one datagram per receive slot");
            RecvBatch::new(RECV_BATCH, RECV_BUF)
        }
    }
}

/// How often `-l` names are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(60);

/// The `-l` resolver: every [`RESOLVE_INTERVAL`] each name is looked up
/// (without blocking the main loop) and the result sent to the driver.
/// IPv4 results are preferred unless `v6` (an IPv6 socket is open).
fn spawn_resolver(
    names: Vec<String>,
    v6: bool,
) -> tokio::sync::mpsc::Receiver<(String, Option<SocketAddr>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(names.len().max(1) * 2);
    if names.iter().all(|n| n.parse::<SocketAddr>().is_ok()) {
        return rx; // literal addresses only: nothing to resolve
    }
    tokio::spawn(async move {
        loop {
            for name in &names {
                if name.parse::<SocketAddr>().is_ok() {
                    continue;
                }
                let lookup = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::lookup_host(name.as_str()),
                )
                .await;
                let addr = match lookup {
                    Ok(Ok(it)) => {
                        let all: Vec<SocketAddr> = it.collect();
                        all.iter()
                            .find(|a| a.is_ipv4())
                            .or_else(|| all.iter().find(|_| v6))
                            .copied()
                    }
                    _ => None,
                };
                if addr.is_none() {
                    tracing::warn!("supernode {name}: cannot resolve, retrying in 60 s");
                }
                if tx.send((name.clone(), addr)).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(RESOLVE_INTERVAL).await;
        }
    });
    rx
}

impl Driver {
    /// Build the core from the options (random locally-administered MAC
    /// unless `-m`, RNG seeded from the OS) and wrap the sockets; call
    /// inside a tokio runtime.
    pub fn new(
        sockets: Sockets,
        opts: &SupernodeOptions,
        log: LogHandle,
        notifier: Option<Notifier>,
    ) -> io::Result<Self> {
        let random_mac = local_mac(os_random()?);
        let cfg = opts.core_config(random_mac);
        let mac = cfg.mac;
        let core = Supernode::new(cfg, os_random()?, now());
        let resolved = spawn_resolver(opts.supernodes.clone(), sockets.udp6.is_some());
        tracing::info!(
            "supernode MAC address is {mac}{}",
            if opts.mac.is_some() { "" } else { " (random)" }
        );
        let (tcp_tx, tcp_rx) = mpsc::channel(tcp::INPUT_QUEUE);
        let mut listeners = vec![sockets.tcp];
        listeners.extend(sockets.tcp6);
        let udp = Socket::new(sockets.udp)?;
        let udp6 = sockets.udp6.map(Socket::new).transpose()?;
        let rx = receive_batch(&udp, udp6.as_ref());
        Ok(Self {
            listeners,
            tcp_limits: TcpLimits {
                max_connections: opts.tcp_max_connections,
                idle_timeout: opts.tcp_idle_timeout,
                frame_timeout: opts.tcp_frame_timeout,
            },
            tcp_rx,
            tcp_tx: Some(tcp_tx),
            conns: HashMap::new(),
            core,
            udp,
            udp6,
            udp6_error: sockets.udp6_error,
            mgmt: UdpSocket::from_std(sockets.mgmt)?,
            log,
            notifier,
            community_file: opts.community_file.clone(),
            rx,
            tbufs: Vec::with_capacity(SEND_BATCH),
            send_errors: 0,
            metrics: opts.metrics,
            telemetry: None,
            resolved,
        })
    }

    /// Local address of the main socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// The core (for inspection).
    pub fn core(&self) -> &Supernode {
        &self.core
    }

    fn notify(&self, f: impl FnOnce(&Notifier) -> io::Result<()>) {
        if let Some(n) = &self.notifier
            && let Err(e) = f(n)
        {
            tracing::warn!("sd_notify failed: {e}");
        }
    }

    /// Run until a stop signal or management `stop`.
    pub async fn run(mut self, mut signals: Signals) -> io::Result<StopReason> {
        let mut mbuf = [0u8; MGMT_BUF];
        let udp_addr = self.udp.local_addr()?;
        let mgmt_addr = self.mgmt.local_addr()?;
        tracing::info!("supernode is listening on UDP {udp_addr} (main)");
        if let Some(s) = &self.udp6 {
            tracing::info!(
                "supernode is listening on UDP {} (main, IPv6)",
                s.local_addr()?
            );
        }
        if let Some(e) = self.udp6_error.take() {
            tracing::warn!("no IPv6 socket, serving IPv4 only: {e}");
        }
        tracing::info!("supernode is listening on UDP {mgmt_addr} (management)");
        let mut tm = n2n_metrics::Telemetry::start(
            self.metrics,
            n2n_metrics::SupernodeSnapshot::default(),
            n2n_metrics::SupernodeExporter::new,
            self.notifier.clone(),
            Instant::now(),
        )
        .await
        .map_err(|e| io::Error::new(e.source.kind(), e.to_string()))?;
        self.start_tcp()?;
        tm.ready(&format!("listening on UDP {udp_addr}"));
        self.telemetry = Some(tm);
        tracing::info!("supernode started");

        let reason = loop {
            // 1. Timers that are due.
            self.run_timers();
            // 2. Pending transmits.
            self.send_transmits().await;
            // 3. Events.
            self.handle_events();
            // 4. Next wake-up.
            let deadline = self.next_deadline();
            // 5. Wait for an input and handle it.
            tokio::select! {
                biased;
                sig = signals.recv() => {
                    if sig.is_stop() {
                        break StopReason::Signal(sig);
                    }
                    dump_registrations(&self.core, sig);
                }
                r = self.mgmt.recv_from(&mut mbuf) => match r {
                    Ok((n, from)) => {
                        let request = mbuf.get(..n).unwrap_or(&[]);
                        let outcome = self.core.handle_mgmt(now(), from, request);
                        if let Some(reason) = self.apply_mgmt(outcome, from).await {
                            break reason;
                        }
                    }
                    Err(e) => tracing::warn!("receive on {mgmt_addr} failed: {e}"),
                },
                r = self.udp.readable() => match r {
                    Ok(()) => self.receive(false),
                    Err(e) => tracing::warn!("receive on {udp_addr} failed: {e}"),
                },
                r = readable(self.udp6.as_ref()) => match r {
                    Ok(()) => self.receive(true),
                    Err(e) => tracing::warn!("receive on the IPv6 socket failed: {e}"),
                },
                Some(input) = self.tcp_rx.recv() => self.on_tcp(input),
                Some((name, addr)) = self.resolved.recv() => {
                    self.core.set_federation_addr(now(), &name, addr);
                }
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        };
        // Send and log what is still queued (e.g. the last events).
        self.send_transmits().await;
        self.handle_events();
        let why = match reason {
            StopReason::Signal(s) => format!("{} received", s.name()),
            StopReason::Management => "stop requested on the management port".to_owned(),
        };
        tracing::info!("shutting down ({why})");
        self.notify(|n| n.stopping(&format!("shutting down: {why}")));
        Ok(reason)
    }

    // ---------------------------------------------------------------------
    // Calls into the core: timers, transmits, events, datagrams.
    // (`handle_mgmt`, `set_communities` and the queries are called where
    // used.)

    /// Step 1: The core's timers, if due.
    fn run_timers(&mut self) {
        if self
            .core
            .poll_timeout()
            .is_some_and(|t| t <= Instant::now())
        {
            self.core.handle_timeout(now());
        }
        if let Some(tm) = &mut self.telemetry {
            let t = Instant::now();
            if tm.deadline().is_some_and(|d| d <= t) {
                let core = &self.core;
                tm.tick(
                    t,
                    || telemetry::snapshot(core, now().unix_secs()),
                    || telemetry::status(core),
                );
            }
        }
    }

    /// Step 2: Send every queued datagram.
    ///
    /// Up to [`SEND_BATCH`] transmits are drained into the buffers, then
    /// sent in order, each run of consecutive datagrams for the same
    /// socket with `sendmmsg` (so the order per destination is kept).
    async fn send_transmits(&mut self) {
        let mut slots: [Slot; SEND_BATCH] = [(0, NO_ADDR, None); SEND_BATCH];
        loop {
            let mut n = 0;
            while n < SEND_BATCH {
                let Some(t) = self.core.poll_transmit() else {
                    break;
                };
                if let Some(c) = t.conn {
                    self.send_tcp(c, t.bytes());
                    self.core.recycle_transmit(t);
                    continue;
                }
                if let Some(slot) = slots.get_mut(n) {
                    *slot = (t.len(), t.dst, None);
                }
                self.tbufs.push(t);
                n += 1;
            }
            if n == 0 {
                break;
            }
            for slot in slots.iter_mut().take(n) {
                slot.2 = self.route(slot.1);
            }
            self.send_batch(slots.get(..n).unwrap_or(&[])).await;
            for t in self.tbufs.drain(..) {
                self.core.recycle_transmit(t);
            }
            if n < SEND_BATCH {
                break;
            }
        }
    }

    /// Step 3: Log every event.
    fn handle_events(&mut self) {
        while let Some(ev) = self.core.poll_event() {
            log_event(&ev);
        }
    }

    /// Step 4: The core's deadline, at most [`IDLE_TICK`] away.
    fn next_deadline(&self) -> Instant {
        let tick = Instant::now() + IDLE_TICK;
        let tm = self.telemetry.as_ref().and_then(|t| t.deadline());
        [self.core.poll_timeout(), tm]
            .into_iter()
            .flatten()
            .fold(tick, Instant::min)
    }

    /// Step 5: Read up to [`RECV_BATCH`] datagrams (or [`GRO_BATCH`]
    /// coalesced buffers) from one main socket (one `recvmmsg`) into the
    /// core, one datagram at a time.
    fn receive(&mut self, v6: bool) {
        let sock = if v6 {
            self.udp6.as_ref()
        } else {
            Some(&self.udp)
        };
        let Some(sock) = sock else { return };
        let n = sock.recv_ready(&mut self.rx);
        let t = now();
        for i in 0..n {
            if let Some((dgrams, from)) = self.rx.datagrams(i) {
                for d in dgrams {
                    self.core.handle_datagram(t, from, d);
                }
            }
        }
    }

    /// Start the accept tasks of the TCP listeners.
    fn start_tcp(&mut self) -> io::Result<()> {
        let Some(tx) = self.tcp_tx.take() else {
            return Ok(());
        };
        let active = Arc::new(AtomicUsize::new(0));
        let next_id = Arc::new(AtomicU64::new(1));
        for l in self.listeners.drain(..) {
            let l = tokio::net::TcpListener::from_std(l)?;
            tracing::info!("supernode is listening on TCP {} (main)", l.local_addr()?);
            tokio::spawn(tcp::accept_loop(
                l,
                tx.clone(),
                self.tcp_limits,
                Arc::clone(&active),
                Arc::clone(&next_id),
            ));
        }
        Ok(())
    }

    /// Step 5: An event of the TCP side.
    fn on_tcp(&mut self, input: TcpInput) {
        match input {
            TcpInput::Opened(id, peer, wtx) => {
                tracing::debug!("TCP connection {} from {peer}", id.0);
                self.conns.insert(id, wtx);
                self.core.tcp_opened(id);
            }
            TcpInput::Frame(id, peer, mut f) => {
                self.core.handle_tcp_frame(now(), id, peer, &mut f);
            }
            TcpInput::Closed(id, reason) => {
                if let Some(r) = reason {
                    tracing::debug!("TCP connection {} closed: {r}", id.0);
                }
                self.conns.remove(&id);
                self.core.tcp_closed(now(), id, reason);
            }
            TcpInput::Refused => {
                self.core.tcp_refused();
            }
        }
    }

    /// Queue one message for a TCP connection (framed).
    fn send_tcp(&mut self, c: ConnId, msg: &[u8]) {
        let ok = match (self.conns.get(&c), tcp::framed(msg)) {
            (Some(w), Some(f)) => w.try_send(f).is_ok(),
            _ => false,
        };
        if !ok {
            self.core.transmit_failed();
        }
    }

    // ---------------------------------------------------------------------

    /// The socket for `dst` (`false`: the main one, `true`: the extra
    /// IPv6 one); `None` if there is no socket of that family. An IPv6
    /// main socket takes IPv4 destinations too (mapped by `Socket`).
    fn route(&self, dst: SocketAddr) -> Option<bool> {
        match dst {
            _ if self.udp.is_ipv6() => Some(false),
            SocketAddr::V4(_) => Some(false),
            SocketAddr::V6(_) => self.udp6.is_some().then_some(true),
        }
    }

    /// Count and (rate-limited) log a failed transmit.
    fn send_failed(&mut self, dst: SocketAddr, e: &io::Error) {
        self.core.transmit_failed();
        self.send_errors += 1;
        // The first failures, then one in a thousand.
        if self.send_errors <= 10 || self.send_errors.is_multiple_of(1000) {
            tracing::warn!(
                "send to {dst} failed: {e} ({} send errors so far)",
                self.send_errors
            );
        }
    }

    /// Send the first `slots.len()` transmit buffers.
    async fn send_batch(&mut self, slots: &[Slot]) {
        let mut i = 0;
        while let Some(&(len, dst, route)) = slots.get(i) {
            let Some(v6) = route else {
                let e = io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "no socket of this address family",
                );
                self.send_failed(dst, &e);
                i += 1;
                continue;
            };
            if self
                .tbufs
                .get(i)
                .and_then(|b| b.bytes().get(..len))
                .is_none()
            {
                self.send_failed(dst, &io::Error::other("transmit longer than the buffer"));
                i += 1;
                continue;
            }
            // The run of consecutive valid datagrams for the same socket.
            let mut msgs = [(&[] as &[u8], NO_ADDR); SEND_BATCH];
            let mut run = 0;
            for ((m, &(len, to, route)), buf) in msgs
                .iter_mut()
                .zip(slots.iter().skip(i))
                .zip(self.tbufs.iter().skip(i))
            {
                match (route, buf.bytes().get(..len)) {
                    (Some(s), Some(data)) if s == v6 => *m = (data, to),
                    _ => break,
                }
                run += 1;
            }
            let sock = if v6 {
                self.udp6.as_ref()
            } else {
                Some(&self.udp)
            };
            let Some(sock) = sock else {
                // Not reached: `route` only names an existing socket.
                i += 1;
                continue;
            };
            // A full socket buffer is waited for (back-pressure).
            match sock.send_many(msgs.get(..run).unwrap_or(&[])).await {
                Ok(sent) => i += sent.max(1),
                // The error concerns the first datagram of the run.
                Err(e) => {
                    self.send_failed(dst, &e);
                    i += 1;
                }
            }
        }
    }

    async fn send_replies(&self, replies: &[String], to: SocketAddr) {
        for reply in replies {
            if let Err(e) = self.mgmt.send_to(reply.as_bytes(), to).await {
                tracing::warn!("management reply to {to} failed: {e}");
                break;
            }
        }
    }

    async fn apply_mgmt(&mut self, outcome: MgmtOutcome, to: SocketAddr) -> Option<StopReason> {
        self.send_replies(&outcome.replies, to).await;
        match outcome.action {
            None => None,
            Some(MgmtAction::Stop) => Some(StopReason::Management),
            Some(MgmtAction::SetVerbosity(v)) => {
                match self.log.set_level(u32::from(v)) {
                    Ok(()) => tracing::info!("verbosity set to {v} via management"),
                    Err(e) => tracing::warn!("{e}"),
                }
                None
            }
            Some(MgmtAction::ReloadCommunities(req)) => {
                let replies = self.reload_communities(&req);
                self.send_replies(&replies, to).await;
                None
            }
            Some(other) => {
                tracing::debug!("management action {other:?} ignored");
                None
            }
        }
    }

    /// Re-read the `-c` file. Unlike C, a file that cannot be read or does
    /// not parse leaves the current
    /// communities in place; the reply reports the failure either way.
    fn reload_communities(&mut self, req: &ReloadRequest) -> Vec<String> {
        let Some(path) = self.community_file.clone() else {
            return req.replies(false);
        };
        match load_community_file(&path) {
            Ok(list) => {
                tracing::info!("reloaded {list} from {}", path.display());
                self.core.set_communities(now(), Some(list));
                req.replies(true)
            }
            Err(e) => {
                tracing::warn!("reload_communities failed, keeping the current communities: {e}");
                req.replies(false)
            }
        }
    }
}
