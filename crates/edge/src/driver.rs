//! The tokio driver around the sans-IO edge core (`n2n_core::edge::Edge`).
//!
//! One current-thread loop. Each pass:
//! 1. act on the core's events (open the TAP once the supernode assigned
//!    an address, log registrations and peers, reopen the socket, ...);
//! 2. wait for the first of: a frame on the TAP, a datagram on the main or
//!    the multicast socket, a management request, a resolver result, the
//!    next timer (core, resolver, DHCP, multicast join), a signal;
//! 3. feed it to the core and send what it produced.
//!
//! Data path: TAP frame → `encapsulate` → `send_to`; datagram →
//! `decapsulate` → TAP write. The TAP is opened with offloads (see
//! [`crate::offload`]): a TCP super-segment read from it is cut into frames
//! small enough that each datagram fits a 1500-byte underlay unfragmented,
//! each frame still one n2n PACKET. One reusable buffer each way, no allocation
//! per packet; `poll_transmit` is drained after every input. Readiness is
//! awaited once and then up to [`BATCH`] packets are read with
//! non-blocking calls before the loop looks at the other inputs again.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use n2n_core::edge::{Edge, EdgeStats, Event, MgmtAction, PeerRemoval, SwitchReason};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_proto::types::DevAddr;
use n2n_sys::log::LogHandle;
use n2n_sys::notify::Notifier;
use n2n_sys::process::{PrivilegeDrop, ProcessError, drop_privileges};
use n2n_sys::signals::{Signal, Signals};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::cli::{EdgeOptions, TapAddress};
use crate::offload::{self, Read};
use crate::resolve::{self, SupernodeName};
use crate::sock::{self, MainSocketConfig};
use crate::tap::{self, Tap, TapConfig, TapError};

/// Packets read per readiness event before the other inputs get a turn.
pub const BATCH: usize = 64;
/// DHCP mode: how often the TAP address is re-read (behaviour.md §7).
pub const DHCP_POLL: Duration = Duration::from_secs(30);
/// How often joining the discovery group is retried after a failure.
pub const MCAST_RETRY: Duration = Duration::from_secs(30);
/// Local-discovery port.
pub const MCAST_PORT: u16 = 1968;
/// At most one warning per this period for repeated send/write errors.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);
/// Receive buffer: larger than any datagram the core accepts, so that an
/// oversized one is seen whole (and dropped by the core) instead of cut.
const RECV_BUF: usize = 65_536;
/// TAP read buffer: a virtio-net header and a TCP super-segment of up to
/// 64 KiB plus its Ethernet header.
const TAP_READ_BUF: usize = offload::VNET_HDR_LEN + 65_536 + 256;
/// Environment variable: `0` opens the TAP without offloads.
pub const OFFLOAD_ENV: &str = "N2N_TAP_OFFLOAD";

/// Whether to ask for TAP offloads (on unless `N2N_TAP_OFFLOAD=0`).
fn offload_wanted() -> bool {
    std::env::var_os(OFFLOAD_ENV).is_none_or(|v| v != "0")
}

/// The current time for the core.
pub fn now() -> Now {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Now::new(Instant::now(), unix_us)
}

/// Dotted netmask of a prefix length (`24` → `255.255.255.0`).
pub fn netmask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - p).unwrap_or(0))
}

/// Why the driver stopped cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal(Signal),
    /// Management `stop`.
    Management,
}

/// A run-time failure (exit status 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Setting up or using the TAP device failed.
    #[error(transparent)]
    Tap(#[from] TapError),
    /// Reading the TAP failed (device gone).
    #[error("reading TAP device {name} failed: {source}")]
    TapRead {
        /// Device name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// Dropping privileges failed.
    #[error(transparent)]
    Privileges(#[from] ProcessError),
    /// A socket could not be registered with the runtime.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// OS error.
        source: io::Error,
    },
}

/// Everything prepared before the runtime starts.
#[derive(Debug)]
pub struct Setup {
    /// The validated options.
    pub opts: EdgeOptions,
    /// The core, with resolved supernode addresses and the local address fed.
    pub edge: Edge,
    /// The main socket.
    pub main: sock::MainSocket,
    /// Its configuration (to reopen it).
    pub main_cfg: MainSocketConfig,
    /// The management socket.
    pub mgmt: std::net::UdpSocket,
    /// `-l` names with their current resolution.
    pub names: Vec<(SupernodeName, Option<SocketAddr>)>,
    /// Log level control.
    pub log: LogHandle,
    /// systemd notification target.
    pub notifier: Option<Notifier>,
}

/// Logs the first error of a kind, then at most one per period with a count.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn report(&mut self, what: std::fmt::Arguments<'_>, quiet: bool) {
        let t = Instant::now();
        if quiet {
            tracing::debug!("{what}");
            return;
        }
        if self
            .last
            .is_some_and(|l| t.saturating_duration_since(l) < ERROR_LOG_PERIOD)
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!("{what} ({} similar errors not shown)", self.suppressed);
        } else {
            tracing::warn!("{what}");
        }
        self.suppressed = 0;
        self.last = Some(t);
    }
}

/// Background re-resolution of `-l` names.
#[derive(Debug)]
struct Resolver {
    names: Vec<SupernodeName>,
    current: Vec<Option<SocketAddr>>,
    failed: Vec<bool>,
    allow_v6: bool,
    next: Instant,
    in_flight: bool,
    tx: mpsc::UnboundedSender<Vec<(usize, io::Result<SocketAddr>)>>,
    rx: mpsc::UnboundedReceiver<Vec<(usize, io::Result<SocketAddr>)>>,
}

impl Resolver {
    fn new(names: Vec<(SupernodeName, Option<SocketAddr>)>, allow_v6: bool) -> Self {
        let failed: Vec<bool> = names.iter().map(|(_, a)| a.is_none()).collect();
        let period = if failed.iter().any(|f| *f) {
            resolve::RETRY
        } else {
            resolve::REFRESH
        };
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            current: names.iter().map(|(_, a)| *a).collect(),
            names: names.into_iter().map(|(n, _)| n).collect(),
            failed,
            allow_v6,
            next: Instant::now() + period,
            in_flight: false,
            tx,
            rx,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        (!self.names.is_empty() && !self.in_flight).then_some(self.next)
    }

    fn start(&mut self) {
        if self.names.is_empty() || self.in_flight {
            return;
        }
        self.in_flight = true;
        let names = self.names.clone();
        let tx = self.tx.clone();
        let allow_v6 = self.allow_v6;
        tokio::spawn(async move {
            let mut out = Vec::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                out.push((i, resolve::resolve(&n.text, allow_v6).await));
            }
            let _ = tx.send(out);
        });
    }

    /// Apply a round's results to the core.
    fn apply(&mut self, edge: &mut Edge, results: Vec<(usize, io::Result<SocketAddr>)>) {
        self.in_flight = false;
        for (i, r) in results {
            let (Some(name), Some(cur), Some(failed)) = (
                self.names.get(i),
                self.current.get_mut(i),
                self.failed.get_mut(i),
            ) else {
                continue;
            };
            match r {
                Ok(addr) => {
                    if *cur != Some(addr) {
                        tracing::info!(
                            "supernode2sock successfully resolves supernode address for {} to {addr}",
                            name.text
                        );
                        edge.set_supernode_addr(name.index, addr);
                        *cur = Some(addr);
                    }
                    *failed = false;
                }
                Err(e) => {
                    if !*failed {
                        tracing::warn!(
                            "supernode2sock fails to resolve supernode host {}: {e}{}",
                            name.text,
                            match cur {
                                Some(a) => format!(" (keeping {a})"),
                                None => String::new(),
                            }
                        );
                    }
                    *failed = true;
                }
            }
        }
        let period = if self.failed.iter().any(|f| *f) {
            resolve::RETRY
        } else {
            resolve::REFRESH
        };
        self.next = Instant::now() + period;
    }
}

/// Reusable buffers, one per direction.
struct Buffers {
    /// Frame read from the TAP (with the virtio-net header if offloads
    /// are on).
    tap_in: Box<[u8]>,
    /// One segment cut from a TCP super-segment.
    seg: Box<[u8]>,
    /// Datagram produced by `encapsulate`.
    net_out: Box<[u8]>,
    /// Datagram read from a socket.
    net_in: Box<[u8]>,
    /// Frame produced by `decapsulate`, at offset
    /// [`offload::VNET_HDR_LEN`] after a zero virtio-net header.
    tap_out: Box<[u8]>,
    /// Control datagrams from `poll_transmit`.
    ctrl: Box<[u8]>,
    /// Management requests.
    mgmt: Box<[u8]>,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Buffers")
    }
}

impl Buffers {
    fn new() -> Self {
        let b = |n: usize| vec![0u8; n].into_boxed_slice();
        Self {
            tap_in: b(TAP_READ_BUF),
            seg: b(MAX_DATAGRAM),
            net_out: b(MAX_DATAGRAM),
            net_in: b(RECV_BUF),
            tap_out: b(offload::VNET_HDR_LEN + MAX_DATAGRAM),
            ctrl: b(MAX_DATAGRAM),
            mgmt: b(MAX_DATAGRAM),
        }
    }
}

/// The running edge.
#[derive(Debug)]
pub struct Driver {
    edge: Edge,
    opts: EdgeOptions,
    sock: UdpSocket,
    dual_stack: bool,
    main_cfg: MainSocketConfig,
    mcast: Option<UdpSocket>,
    mcast_joined: bool,
    mcast_next: Option<Instant>,
    mgmt: UdpSocket,
    tap: Option<Tap>,
    log: LogHandle,
    notifier: Option<Notifier>,
    resolver: Resolver,
    dhcp_next: Option<Instant>,
    dhcp_addr: Option<(Ipv4Addr, u8)>,
    privileges_dropped: bool,
    ready: bool,
    bufs: Buffers,
    gso: GsoBatch,
    gro: offload::Coalescer,
    send_errors: ErrorLog,
    tap_errors: ErrorLog,
    stop: Option<StopReason>,
}

/// Send one datagram (mapping IPv4 for a dual-stack socket).
async fn send_to(
    sock: &UdpSocket,
    dual_stack: bool,
    data: &[u8],
    dst: SocketAddr,
    errors: &mut ErrorLog,
) {
    let to = sock::to_socket(dst, dual_stack);
    let r = match sock.try_send_to(data, to) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.send_to(data, to).await,
        r => r,
    };
    if let Err(e) = r {
        // Discovery to 224.0.0.68 fails without a multicast route: expected.
        let quiet = dst == n2n_core::edge::MULTICAST_DISCOVERY;
        errors.report(
            format_args!("sendto {dst} failed: {e} ({} bytes)", data.len()),
            quiet,
        );
    }
}

/// Send everything the core queued.
async fn drain_transmits(
    edge: &mut Edge,
    sock: &UdpSocket,
    dual_stack: bool,
    _buf: &mut [u8],
    errors: &mut ErrorLog,
) {
    while let Some(t) = edge.poll_transmit() {
        let d = t.bytes();
        let Some(ttl) = t.ttl else {
            send_to(sock, dual_stack, d, t.dst, errors).await;
            edge.recycle_transmit(t);
            continue;
        };
        // `-L` spray: this datagram only with a short TTL, like C.
        use std::os::fd::AsFd as _;
        let v6 = sock.local_addr().is_ok_and(|a| a.is_ipv6());
        match n2n_sys::udp::set_ttl(sock.as_fd(), v6, ttl) {
            Ok(saved) => {
                send_to(sock, dual_stack, d, t.dst, errors).await;
                if let Err(e) = n2n_sys::udp::restore_ttl(sock.as_fd(), saved) {
                    tracing::warn!("cannot restore the socket TTL after the -L spray: {e}");
                }
            }
            Err(e) => {
                tracing::debug!(
                    "cannot set TTL {ttl} for the -L spray ({e}): sent with the default"
                );
                send_to(sock, dual_stack, d, t.dst, errors).await;
            }
        }
        edge.recycle_transmit(t);
    }
}

/// Write one frame to the TAP.
async fn tap_write(tap: &Tap, frame: &[u8], errors: &mut ErrorLog) {
    let r = match tap.try_send(frame) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => tap.send(frame).await,
        r => r,
    };
    if let Err(e) = r {
        errors.report(
            format_args!(
                "writing {} bytes to TAP {} failed: {e}",
                frame.len(),
                tap.name()
            ),
            false,
        );
    }
}

async fn tap_readable(tap: Option<&Tap>) -> io::Result<()> {
    match tap {
        Some(t) => t.readable().await,
        None => std::future::pending().await,
    }
}

async fn socket_readable(sock: Option<&UdpSocket>) -> io::Result<()> {
    match sock {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Datagrams of one destination collected for a single UDP GSO send
/// (`UDP_SEGMENT`): all of the same size except possibly the last.
struct GsoBatch {
    buf: Box<[u8]>,
    len: usize,
    seg: usize,
    count: usize,
    dst: Option<SocketAddr>,
    /// A shorter datagram was added: it must be the last.
    closed: bool,
    /// Cleared when the kernel refuses to segment (then one send each).
    enabled: bool,
}

impl std::fmt::Debug for GsoBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GsoBatch")
            .field("len", &self.len)
            .field("count", &self.count)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Bytes one GSO send may carry (IPv4 UDP payload limit).
const GSO_MAX_BYTES: usize = 65_507;
/// Environment variable: `0` sends segmented bursts one datagram at a time.
pub const UDP_GSO_ENV: &str = "N2N_UDP_GSO";

impl GsoBatch {
    fn new() -> Self {
        Self {
            buf: vec![0u8; GSO_MAX_BYTES].into_boxed_slice(),
            len: 0,
            seg: 0,
            count: 0,
            dst: None,
            closed: false,
            enabled: std::env::var_os(UDP_GSO_ENV).is_none_or(|v| v != "0"),
        }
    }

    /// Whether `d` to `dst` can join the batch.
    fn fits(&self, d: &[u8], dst: SocketAddr) -> bool {
        self.count == 0
            || (self.dst == Some(dst)
                && !self.closed
                && d.len() <= self.seg
                && self.count < n2n_sys::udp::MAX_SEGMENTS
                && self.len + d.len() <= self.buf.len())
    }

    /// Append (after [`Self::fits`]).
    fn push(&mut self, d: &[u8], dst: SocketAddr) -> bool {
        let Some(slot) = self.buf.get_mut(self.len..self.len + d.len()) else {
            return false;
        };
        slot.copy_from_slice(d);
        if self.count == 0 {
            self.seg = d.len();
            self.dst = Some(dst);
        } else if d.len() < self.seg {
            self.closed = true;
        }
        self.len += d.len();
        self.count += 1;
        true
    }

    /// Send what is collected: one `sendmsg` with `UDP_SEGMENT`, or one
    /// datagram at a time if there is one or the kernel cannot segment.
    async fn flush(&mut self, sock: &UdpSocket, dual_stack: bool, errors: &mut ErrorLog) {
        let Some(dst) = self.dst else { return };
        let data = self.buf.get(..self.len).unwrap_or_default();
        let mut sent = false;
        if self.count > 1
            && self.enabled
            && let Ok(seg) = u16::try_from(self.seg)
        {
            use std::os::fd::AsFd as _;
            let to = sock::to_socket(dst, dual_stack);
            let r = loop {
                match sock.try_io(tokio::io::Interest::WRITABLE, || {
                    n2n_sys::udp::send_segments(sock.as_fd(), data, seg, to)
                }) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(e) = sock.writable().await {
                            break Err(e);
                        }
                    }
                    r => break r,
                }
            };
            match r {
                Ok(_) => sent = true,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                    tracing::info!(
                        "UDP segmentation offload unavailable ({e}): sending one by one"
                    );
                    self.enabled = false;
                }
                Err(e) => {
                    errors.report(
                        format_args!(
                            "sendmsg {dst} failed: {e} ({} datagrams, {} bytes)",
                            self.count, self.len
                        ),
                        false,
                    );
                    sent = true;
                }
            }
        }
        if !sent {
            for d in data.chunks(self.seg.max(1)) {
                send_to(sock, dual_stack, d, dst, errors).await;
            }
        }
        self.len = 0;
        self.count = 0;
        self.dst = None;
        self.closed = false;
    }
}

/// The TAP → network direction: encapsulate a frame and send it with what
/// the core queued meanwhile.
struct Out<'a> {
    edge: &'a mut Edge,
    sock: &'a UdpSocket,
    dual_stack: bool,
    net_out: &'a mut [u8],
    ctrl: &'a mut [u8],
    errors: &'a mut ErrorLog,
    gso: &'a mut GsoBatch,
}

impl Out<'_> {
    /// One frame, sent right away.
    async fn frame(&mut self, frame: &[u8]) {
        if let Some(t) = self.edge.encapsulate(now(), frame, self.net_out)
            && let Some(d) = self.net_out.get(..t.len)
        {
            send_to(self.sock, self.dual_stack, d, t.dst, self.errors).await;
        }
        self.control().await;
    }

    /// One frame of a burst: collected for a GSO send ([`Self::flush`]
    /// sends the rest).
    async fn burst_frame(&mut self, frame: &[u8]) {
        if let Some(t) = self.edge.encapsulate(now(), frame, self.net_out)
            && let Some(d) = self.net_out.get(..t.len)
        {
            if !self.gso.fits(d, t.dst) {
                self.gso
                    .flush(self.sock, self.dual_stack, self.errors)
                    .await;
            }
            if !self.gso.push(d, t.dst) {
                send_to(self.sock, self.dual_stack, d, t.dst, self.errors).await;
            }
        }
    }

    async fn flush(&mut self) {
        self.gso
            .flush(self.sock, self.dual_stack, self.errors)
            .await;
        self.control().await;
    }

    async fn control(&mut self) {
        drain_transmits(
            self.edge,
            self.sock,
            self.dual_stack,
            self.ctrl,
            self.errors,
        )
        .await;
    }
}
/// The C edge's exit statistics.
pub fn log_packet_stats(s: &EdgeStats) {
    tracing::info!("**********************************");
    tracing::info!("Packet stats:");
    tracing::info!("      TX P2P: {} pkts", s.p2p_tx);
    tracing::info!("      RX P2P: {} pkts", s.p2p_rx);
    tracing::info!(
        "      TX Supernode: {} pkts ({} broadcast)",
        s.super_tx,
        s.super_broadcast_tx
    );
    tracing::info!(
        "      RX Supernode: {} pkts ({} broadcast)",
        s.super_rx,
        s.super_broadcast_rx
    );
    let drops: Vec<String> = s
        .nonzero_drops()
        .map(|(r, n)| format!("{}={n}", r.name()))
        .collect();
    if !drops.is_empty() {
        tracing::info!("      dropped: {}", drops.join(", "));
    }
    tracing::info!("**********************************");
}

impl Driver {
    /// Register the sockets with the runtime; call inside it.
    pub fn new(setup: Setup) -> Result<Self, DriverError> {
        let Setup {
            opts,
            edge,
            main,
            main_cfg,
            mgmt,
            names,
            log,
            notifier,
        } = setup;
        let io = |what| move |source| DriverError::Io { what, source };
        let dual_stack = main.dual_stack;
        let sock = UdpSocket::from_std(main.sock).map_err(io("registering the main socket"))?;
        let mgmt = UdpSocket::from_std(mgmt).map_err(io("registering the management socket"))?;
        let resolver = Resolver::new(names, dual_stack);
        Ok(Self {
            edge,
            opts,
            sock,
            dual_stack,
            main_cfg,
            mcast: None,
            mcast_joined: false,
            mcast_next: None,
            mgmt,
            tap: None,
            log,
            notifier,
            resolver,
            dhcp_next: None,
            dhcp_addr: None,
            privileges_dropped: false,
            ready: false,
            bufs: Buffers::new(),
            gso: GsoBatch::new(),
            gro: offload::Coalescer::new(),
            send_errors: ErrorLog::default(),
            tap_errors: ErrorLog::default(),
            stop: None,
        })
    }

    fn notify(&self, f: impl FnOnce(&Notifier) -> io::Result<()>) {
        if let Some(n) = &self.notifier
            && let Err(e) = f(n)
        {
            tracing::warn!("sd_notify failed: {e}");
        }
    }

    /// Open the TAP (MAC from the core, MTU `-M`, address if known).
    async fn open_tap(&mut self, addr: Option<(Ipv4Addr, u8)>) -> Result<(), DriverError> {
        let mac = self.edge.mac().0;
        let t = Tap::open(&TapConfig {
            name: self.opts.tap_name.clone(),
            mac,
            mtu: self.opts.mtu,
            ipv4: addr,
            offload: offload_wanted(),
        })
        .await?;
        match addr {
            Some((ip, prefix)) => tracing::info!(
                "created local tap device {} IP: {ip}, Mask: {}, MAC: {}",
                t.name(),
                netmask(prefix),
                tap::format_mac(&mac)
            ),
            None => tracing::info!(
                "created local tap device {} without IP address (DHCP), MAC: {}",
                t.name(),
                tap::format_mac(&mac)
            ),
        }
        if t.vnet_hdr() {
            tracing::debug!("TAP {}: checksum and TCP segmentation offload on", t.name());
        }
        self.tap = Some(t);
        Ok(())
    }

    /// Drop privileges once the TAP is configured (cli.md §1 `-u`/`-g`).
    ///
    /// Default (no `-u`/`-g`): switch to the `n2n` user if it exists, else
    /// stay root (as C n2n effectively does on systems without that user)
    /// with a warning.
    fn drop_privileges(&mut self) -> Result<(), DriverError> {
        if self.privileges_dropped {
            return Ok(());
        }
        self.privileges_dropped = true;
        let explicit = self.opts.uid.is_some() || self.opts.gid.is_some();
        if !nix::unistd::geteuid().is_root() {
            if explicit {
                tracing::warn!("not running as root: -u/-g have no effect");
            }
            return Ok(());
        }
        let (uid, gid) = if explicit {
            (self.opts.uid, self.opts.gid)
        } else {
            match nix::unistd::User::from_name("n2n").ok().flatten() {
                Some(u) => (Some(u.uid.as_raw()), Some(u.gid.as_raw())),
                None => {
                    tracing::warn!(
                        "no user 'n2n': staying root; running as root is discouraged, \
                         check out the -u/-g options"
                    );
                    return Ok(());
                }
            }
        };
        match drop_privileges(uid, gid)? {
            PrivilegeDrop::Dropped { uid, gid } => {
                tracing::info!("dropping privileges to uid={uid}, gid={gid}");
            }
            PrivilegeDrop::KeptRoot => {
                tracing::warn!("running as root is discouraged, check out the -u/-g options");
            }
            PrivilegeDrop::NotRoot { .. } => {}
        }
        Ok(())
    }

    /// Bind the discovery socket if the core wants it and try to join.
    fn setup_multicast(&mut self) {
        if !self.edge.wants_multicast_discovery() {
            return;
        }
        match sock::bind_multicast(MCAST_PORT).and_then(|s| {
            UdpSocket::from_std(s).map_err(|err| n2n_sys::udp::UdpError::Io {
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, MCAST_PORT)),
                step: "register",
                err,
            })
        }) {
            Ok(s) => {
                self.mcast = Some(s);
                self.join_multicast();
            }
            Err(e) => tracing::warn!("local peer discovery off: {e}"),
        }
    }

    fn join_multicast(&mut self) {
        let Some(s) = &self.mcast else { return };
        let group = match n2n_core::edge::MULTICAST_DISCOVERY.ip() {
            std::net::IpAddr::V4(g) => g,
            std::net::IpAddr::V6(_) => return,
        };
        match s.join_multicast_v4(group, Ipv4Addr::UNSPECIFIED) {
            Ok(()) => {
                self.mcast_joined = true;
                self.mcast_next = None;
                tracing::debug!("joined local multicast group {group}:{MCAST_PORT}");
            }
            Err(e) => {
                // Namespaces and hosts without a multicast route: no LAN
                // discovery, everything else works.
                tracing::debug!(
                    "failed to bind to local multicast group {group}:{MCAST_PORT} [{e}]"
                );
                self.mcast_next = Some(Instant::now() + MCAST_RETRY);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.edge.poll_timeout();
        d = min_opt(d, self.resolver.deadline());
        d = min_opt(d, self.dhcp_next);
        min_opt(d, self.mcast_next)
    }

    /// Run until SIGINT/SIGTERM or management `stop`.
    pub async fn run(mut self, mut signals: Signals) -> Result<StopReason, DriverError> {
        match self.opts.tap_address {
            TapAddress::Static { ip, prefix } => {
                self.open_tap(Some((ip, prefix))).await?;
                self.drop_privileges()?;
            }
            TapAddress::Dhcp => {
                self.open_tap(None).await?;
                self.drop_privileges()?;
                self.dhcp_next = Some(Instant::now());
            }
            TapAddress::Auto => {
                tracing::info!(
                    "waiting for the supernode to assign an IP address before creating TAP {}",
                    self.opts.tap_name
                );
            }
        }
        self.setup_multicast();
        tracing::info!("management interface on 127.0.0.1:{}", self.opts.mgmt_port);
        tracing::info!("edge started");

        let reason = loop {
            self.handle_events().await?;
            if let Some(r) = self.stop {
                break r;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                r = tap_readable(self.tap.as_ref()) => {
                    if let Err(e) = r {
                        return Err(self.tap_read_error(e));
                    }
                    self.on_tap_readable().await?;
                }
                r = self.sock.readable() => match r {
                    Ok(()) => self.on_socket_readable(false).await,
                    Err(e) => tracing::warn!("main socket: {e}"),
                },
                r = socket_readable(self.mcast.as_ref()) => match r {
                    Ok(()) => self.on_socket_readable(true).await,
                    Err(e) => tracing::warn!("multicast socket: {e}"),
                },
                r = self.mgmt.recv_from(&mut self.bufs.mgmt) => match r {
                    Ok((n, from)) => self.on_mgmt(n, from).await,
                    Err(e) => tracing::warn!("management socket: {e}"),
                },
                Some(results) = self.resolver.rx.recv() => {
                    self.resolver.apply(&mut self.edge, results);
                }
                () = sleep_until(deadline) => self.on_timer().await,
                sig = signals.recv() => {
                    if sig.is_stop() {
                        tracing::info!("{} received", sig.name());
                        self.stop = Some(StopReason::Signal(sig));
                    } else {
                        tracing::debug!("{} ignored", sig.name());
                    }
                }
            }
        };

        tracing::info!("shutting down...");
        self.edge.shutdown(now());
        self.drain().await;
        log_packet_stats(self.edge.stats());
        let why = match reason {
            StopReason::Signal(s) => format!("{} received", s.name()),
            StopReason::Management => "stop requested on the management port".to_owned(),
        };
        self.notify(|n| n.stopping(&format!("shutting down: {why}")));
        Ok(reason)
    }

    /// Send everything the core queued (control datagrams).
    async fn drain(&mut self) {
        drain_transmits(
            &mut self.edge,
            &self.sock,
            self.dual_stack,
            &mut self.bufs.ctrl,
            &mut self.send_errors,
        )
        .await;
    }

    fn tap_read_error(&self, e: io::Error) -> DriverError {
        DriverError::TapRead {
            name: self.opts.tap_name.clone(),
            source: e,
        }
    }

    /// Frames from the TAP → datagrams.
    async fn on_tap_readable(&mut self) -> Result<(), DriverError> {
        let Some(tap) = &self.tap else { return Ok(()) };
        let vnet = tap.vnet_hdr();
        for _ in 0..BATCH {
            let n = match tap.try_recv(&mut self.bufs.tap_in) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(DriverError::TapRead {
                        name: tap.name().to_owned(),
                        source: e,
                    });
                }
            };
            let Some(read) = self.bufs.tap_in.get_mut(..n) else {
                continue;
            };
            let mut out = Out {
                edge: &mut self.edge,
                sock: &self.sock,
                dual_stack: self.dual_stack,
                net_out: &mut self.bufs.net_out,
                ctrl: &mut self.bufs.ctrl,
                errors: &mut self.send_errors,
                gso: &mut self.gso,
            };
            if !vnet {
                out.frame(read).await;
                continue;
            }
            match offload::classify(read, offload::SEG_FRAME_MAX) {
                Ok(Read::Frame { start, end }) => {
                    if let Some(f) = read.get(start..end) {
                        out.frame(f).await;
                    }
                }
                Ok(Read::Tso(t)) => {
                    let whole = read.get(offload::VNET_HDR_LEN..).unwrap_or_default();
                    for i in 0..t.count() {
                        if let Some(len) = t.segment(whole, i, &mut self.bufs.seg)
                            && let Some(f) = self.bufs.seg.get(..len)
                        {
                            out.burst_frame(f).await;
                        }
                    }
                    out.flush().await;
                }
                Err(e) => tracing::debug!("dropping a {n}-byte TAP read: {e}"),
            }
        }
        Ok(())
    }

    /// Datagrams from the main (or multicast) socket → frames and control.
    async fn on_socket_readable(&mut self, via_multicast: bool) {
        let sock = if via_multicast {
            match &self.mcast {
                Some(s) => s,
                None => return,
            }
        } else {
            &self.sock
        };
        for _ in 0..BATCH {
            let (n, from) = match sock.try_recv_from(&mut self.bufs.net_in) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("recvfrom failed: {e}");
                    break;
                }
            };
            let from = sock::from_socket(from);
            let Some(dgram) = self.bufs.net_in.get_mut(..n) else {
                continue;
            };
            let h = offload::VNET_HDR_LEN;
            let body = self.bufs.tap_out.get_mut(h..).unwrap_or_default();
            if let Some(len) = self
                .edge
                .decapsulate(now(), from, dgram, via_multicast, body)
                && let Some(tap) = &self.tap
            {
                if tap.vnet_hdr() {
                    // Merge TCP segments into one GSO write; anything else
                    // goes out behind the (zero) virtio-net header.
                    let frame = self.bufs.tap_out.get(h..h + len).unwrap_or_default();
                    if !self.gro.add(frame) {
                        if !self.gro.is_empty() {
                            tap_write(tap, self.gro.take(), &mut self.tap_errors).await;
                        }
                        if !self.gro.add(frame)
                            && let Some(f) = self.bufs.tap_out.get(..h + len)
                        {
                            tap_write(tap, f, &mut self.tap_errors).await;
                        }
                    }
                } else if let Some(frame) = self.bufs.tap_out.get(h..h + len) {
                    tap_write(tap, frame, &mut self.tap_errors).await;
                }
            }
            // `sock` borrows `self.mcast`: the fields one by one.
            drain_transmits(
                &mut self.edge,
                &self.sock,
                self.dual_stack,
                &mut self.bufs.ctrl,
                &mut self.send_errors,
            )
            .await;
        }
        if !self.gro.is_empty()
            && let Some(tap) = &self.tap
        {
            tap_write(tap, self.gro.take(), &mut self.tap_errors).await;
        }
    }

    async fn on_mgmt(&mut self, n: usize, from: SocketAddr) {
        let request = self.bufs.mgmt.get(..n).unwrap_or_default();
        let outcome = self.edge.handle_mgmt(now(), from, request);
        for reply in &outcome.replies {
            if let Err(e) = self.mgmt.send_to(reply.as_bytes(), from).await {
                tracing::warn!("management reply to {from} failed: {e}");
                break;
            }
        }
        match outcome.action {
            None => {}
            Some(MgmtAction::Stop) => {
                tracing::info!("stop requested on the management port");
                self.stop = Some(StopReason::Management);
            }
            Some(MgmtAction::SetVerbosity(v)) => match self.log.set_level(u32::from(v)) {
                Ok(()) => tracing::info!("verbosity set to {v} via management"),
                Err(e) => tracing::warn!("{e}"),
            },
        }
        self.drain().await;
    }

    async fn on_timer(&mut self) {
        let t = Instant::now();
        if self.edge.poll_timeout().is_some_and(|d| d <= t) {
            self.edge.handle_timeout(now());
        }
        if self.resolver.deadline().is_some_and(|d| d <= t) {
            self.resolver.start();
        }
        if self.mcast_next.is_some_and(|d| d <= t) {
            self.join_multicast();
        }
        if self.dhcp_next.is_some_and(|d| d <= t) {
            self.dhcp_next = Some(t + DHCP_POLL);
            self.poll_dhcp_address().await;
        }
        self.drain().await;
    }

    /// DHCP mode: what address does the TAP have now?
    async fn poll_dhcp_address(&mut self) {
        let Some(tap) = &self.tap else { return };
        let addr = match tap.ipv4().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("reading the TAP address failed: {e}");
                return;
            }
        };
        if addr == self.dhcp_addr {
            return;
        }
        match addr {
            Some((ip, prefix)) => {
                tracing::info!(
                    "obtained IP address {ip}, Mask: {} on TAP {} (DHCP)",
                    netmask(prefix),
                    tap.name()
                );
                self.edge.set_tap_addr(DevAddr::new(ip, prefix));
            }
            None => {
                tracing::info!("TAP {} has no IP address (DHCP)", tap.name());
                self.edge.set_tap_addr(DevAddr::UNSPECIFIED);
            }
        }
        self.dhcp_addr = addr;
    }

    async fn handle_events(&mut self) -> Result<(), DriverError> {
        while let Some(ev) = self.edge.poll_event() {
            match ev {
                Event::AssignAddress(a) => self.on_assigned(a).await?,
                Event::Registered { supernode, first } => {
                    tracing::info!(
                        "[OK] edge <<< ================ >>> supernode [{supernode}]{}",
                        if first { "" } else { " (re-registered)" }
                    );
                    if !self.ready {
                        self.ready = true;
                        let addr = self.edge.tap_addr();
                        self.notify(|n| {
                            n.ready(&format!(
                                "registered with supernode {supernode}, TAP address {addr}"
                            ))
                        });
                    }
                }
                Event::RegistrationNak { supernode } => tracing::warn!(
                    "supernode {supernode} refused the registration: {}",
                    if self.edge.uses_user_password() {
                        "user or password not recognised (or MAC or IP address already in use)"
                    } else {
                        "MAC or IP address already in use"
                    }
                ),
                Event::SupernodeSwitched { from, to, reason } => {
                    let show = |a: Option<SocketAddr>| {
                        a.map_or_else(|| "(unresolved)".to_owned(), |a| a.to_string())
                    };
                    let why = match reason {
                        SwitchReason::Bootstrap => "bootstrap",
                        SwitchReason::Timeout => "no answer",
                        SwitchReason::Selection => "better supernode",
                    };
                    if reason == SwitchReason::Timeout {
                        tracing::warn!(
                            "supernode {} not responding, switching to {}",
                            show(from),
                            show(to)
                        );
                        // C asks the resolver for fresh addresses right away.
                        self.resolver.start();
                    } else {
                        tracing::info!(
                            "switching supernode from {} to {} ({why})",
                            show(from),
                            show(to)
                        );
                    }
                }
                Event::ReopenSocket => self.reopen_socket(),
                Event::SupernodeLearned { sock, mac } => {
                    tracing::info!("adding supernode = {sock} ({mac})");
                }
                Event::PeerAdded { mac, sock, direct } => {
                    let at = sock.map_or_else(String::new, |s| format!(" [{s}]"));
                    if direct {
                        tracing::info!("P2P connection established: {mac}{at}");
                    } else {
                        tracing::debug!("pending peer {mac}{at}");
                    }
                }
                Event::PeerRemoved {
                    mac,
                    sock,
                    direct,
                    reason,
                } => {
                    let at = sock.map_or_else(String::new, |s| format!(" [{s}]"));
                    match (direct, reason) {
                        (true, PeerRemoval::Purged | PeerRemoval::Stale) => tracing::info!(
                            "P2P connection to {mac}{at} lost ({}), using the supernode",
                            if reason == PeerRemoval::Purged {
                                "purged"
                            } else {
                                "no direct traffic"
                            }
                        ),
                        _ => tracing::debug!("peer {mac}{at} removed ({reason:?})"),
                    }
                }
                other => tracing::debug!("event {other:?}"),
            }
        }
        Ok(())
    }

    async fn on_assigned(&mut self, a: DevAddr) -> Result<(), DriverError> {
        tracing::info!("supernode assigned IP address {}/{}", a.ip, a.prefix);
        match &self.tap {
            None => {
                self.open_tap(Some((a.ip, a.prefix))).await?;
                self.drop_privileges()?;
            }
            Some(t) => {
                if let Err(e) = t.set_ipv4(a.ip, a.prefix).await {
                    tracing::error!("cannot change the TAP address to {a}: {e}");
                }
            }
        }
        Ok(())
    }

    /// C closes and reopens its main socket (new local port) after many
    /// supernode switches without P2P peers (stale NAT mapping).
    fn reopen_socket(&mut self) {
        if self.main_cfg.bind.port() != 0 {
            tracing::debug!("keeping the fixed local port {}", self.main_cfg.bind.port());
            return;
        }
        let new = sock::bind_main(&self.main_cfg)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                let local = m.local_addr().map_err(|e| e.to_string())?;
                let s = UdpSocket::from_std(m.sock).map_err(|e| e.to_string())?;
                Ok((s, m.dual_stack, local))
            });
        match new {
            Ok((s, dual, local)) => {
                self.sock = s;
                self.dual_stack = dual;
                self.edge.set_local_addr(local);
                tracing::info!(
                    "reopened the main socket: now bound to local port {}",
                    local.port()
                );
            }
            Err(e) => tracing::warn!("cannot reopen the main socket: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(17), Ipv4Addr::new(255, 255, 128, 0));
        assert_eq!(netmask(200), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn deadlines() {
        let t = Instant::now();
        let later = t + Duration::from_secs(1);
        assert_eq!(min_opt(Some(t), Some(later)), Some(t));
        assert_eq!(min_opt(None, Some(later)), Some(later));
        assert_eq!(min_opt(Some(t), None), Some(t));
        assert_eq!(min_opt(None, None), None);
    }
}
