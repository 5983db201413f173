//! The I/O driver: a tokio current-thread loop around the sans-IO
//! supernode core.
//!
//! One loop, in priority order (see the `SEAM` comments for where the core's
//! calls go):
//! 1. drain the core's outputs (`poll_transmit` until `None`), send them;
//! 2. compute the next wake-up (`poll_timeout`, else the 10 s housekeeping
//!    tick C uses);
//! 3. wait for the first of: a datagram on the main socket
//!    (`handle_datagram`), a management request (`handle_mgmt`), the
//!    wake-up (`handle_timeout`), a signal.
//!
//! Until the core exists, datagrams on the main socket are received and
//! dropped (logged at debug level) and management requests are answered by
//! [`crate::mgmt::handle_local`]; nothing on the wire is faked.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use n2n_core::mgmt::Password;
use n2n_sys::log::LogHandle;
use n2n_sys::notify::Notifier;
use n2n_sys::signals::{Signal, Signals};
use n2n_sys::udp::{UdpConfig, UdpError, bind_udp};
use tokio::net::UdpSocket;

use crate::mgmt::{MgmtAction, MgmtOutcome, handle_local};
use crate::options::SupernodeOptions;

/// Receive buffer size for the main socket (the core will export
/// `n2n_core::MAX_DATAGRAM`; C's supernode buffer is 2048 bytes).
pub const RECV_BUF: usize = 2048;
/// Housekeeping tick when the core asks for no earlier wake-up (C's main
/// loop wakes up every 10 s).
pub const IDLE_TICK: Duration = Duration::from_secs(10);

/// The bound (std, non-blocking) sockets; bound before daemonizing and
/// dropping privileges so that errors reach the terminal.
#[derive(Debug)]
pub struct Sockets {
    /// Main UDP socket (`-p`).
    pub udp: std::net::UdpSocket,
    /// Management socket, 127.0.0.1:`-t`.
    pub mgmt: std::net::UdpSocket,
}

/// Bind the main and management sockets.
pub fn bind_sockets(opts: &SupernodeOptions) -> Result<Sockets, UdpError> {
    let udp = bind_udp(&UdpConfig::new(opts.bind))?;
    let mgmt_addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, opts.mgmt_port));
    let mgmt = bind_udp(&UdpConfig::new(mgmt_addr))?;
    Ok(Sockets { udp, mgmt })
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal(Signal),
    /// Management `w … stop`.
    Management,
}

/// Time as the core will want it (`n2n_core::Now { mono, unix_us }`).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time for timers.
    pub mono: Instant,
    /// Wall clock, microseconds since the Unix epoch (HE time stamps,
    /// management times).
    pub unix_us: u64,
}

impl Now {
    /// Read both clocks.
    pub fn read() -> Self {
        let unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            mono: Instant::now(),
            unix_us,
        }
    }
}

/// The running supernode.
#[derive(Debug)]
pub struct Driver {
    udp: UdpSocket,
    mgmt: UdpSocket,
    password: Password,
    log: LogHandle,
    notifier: Option<Notifier>,
    // SEAM: the core lives here:
    // core: n2n_core::supernode::Supernode,
}

impl Driver {
    /// Wrap the sockets; call inside a tokio runtime.
    pub fn new(
        sockets: Sockets,
        opts: &SupernodeOptions,
        log: LogHandle,
        notifier: Option<Notifier>,
    ) -> io::Result<Self> {
        // SEAM: build the core here:
        // let core = Supernode::new(SupernodeConfig::from(opts), rng_seed_from_os(), Now::read());
        Ok(Self {
            udp: UdpSocket::from_std(sockets.udp)?,
            mgmt: UdpSocket::from_std(sockets.mgmt)?,
            password: Password::new(&opts.mgmt_password),
            log,
            notifier,
        })
    }

    /// Local address of the main socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    fn notify(&self, f: impl FnOnce(&Notifier) -> io::Result<()>) {
        if let Some(n) = &self.notifier {
            if let Err(e) = f(n) {
                tracing::warn!("sd_notify failed: {e}");
            }
        }
    }

    /// Run until a stop signal or management `stop`.
    pub async fn run(mut self, mut signals: Signals) -> io::Result<StopReason> {
        let mut buf = vec![0u8; RECV_BUF];
        let mut mbuf = [0u8; 512];
        let udp_addr = self.udp.local_addr()?;
        let mgmt_addr = self.mgmt.local_addr()?;
        tracing::info!("supernode is listening on UDP {udp_addr} (main)");
        tracing::info!("supernode is listening on UDP {mgmt_addr} (management)");
        self.notify(|n| n.ready(&format!("listening on UDP {udp_addr}")));
        tracing::info!("supernode started");

        let reason = loop {
            // 1. SEAM: drain the core's outputs before waiting:
            // while let Some(t) = self.core.poll_transmit(&mut out) {
            //     if let Err(e) = self.udp.send_to(&out[..t.len], t.dst).await { warn!(...) }
            // }
            // while let Some(ev) = self.core.poll_event() { log it }

            // 2. SEAM: next wake-up = self.core.poll_timeout(), else IDLE_TICK.
            let deadline = tokio::time::Instant::now() + IDLE_TICK;

            // 3. Wait for input.
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let _now = Now::read();
                        // SEAM: self.core.handle_datagram(_now, from, &mut buf[..n]);
                        tracing::debug!(
                            "dropped {n} bytes from {from}: supernode core not implemented yet"
                        );
                    }
                    Err(e) => tracing::warn!("receive on {udp_addr} failed: {e}"),
                },
                r = self.mgmt.recv_from(&mut mbuf) => match r {
                    Ok((n, from)) => {
                        let request = mbuf.get(..n).unwrap_or(&[]);
                        // SEAM: let outcome = self.core.handle_mgmt(Now::read(), from, request);
                        let outcome = handle_local(&self.password, self.log.level(), request);
                        if let Some(reason) = self.apply_mgmt(outcome, from).await {
                            break reason;
                        }
                    }
                    Err(e) => tracing::warn!("receive on {mgmt_addr} failed: {e}"),
                },
                () = tokio::time::sleep_until(deadline) => {
                    // SEAM: self.core.handle_timeout(Now::read());
                }
                sig = signals.recv() => {
                    if sig.is_stop() {
                        break StopReason::Signal(sig);
                    }
                    // SEAM: C writes its registration table to the log on SIGHUP;
                    // log the core's tables here.
                    tracing::info!("{}: no registration table yet (supernode core not implemented)", sig.name());
                }
            }
        };
        let why = match reason {
            StopReason::Signal(s) => format!("{} received", s.name()),
            StopReason::Management => "stop requested on the management port".to_owned(),
        };
        tracing::info!("shutting down ({why})");
        self.notify(|n| n.stopping(&format!("shutting down: {why}")));
        Ok(reason)
    }

    async fn apply_mgmt(&mut self, outcome: MgmtOutcome, to: SocketAddr) -> Option<StopReason> {
        for reply in &outcome.replies {
            if let Err(e) = self.mgmt.send_to(reply.as_bytes(), to).await {
                tracing::warn!("management reply to {to} failed: {e}");
                break;
            }
        }
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
        }
    }
}
