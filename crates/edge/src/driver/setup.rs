//! The edge driver's housekeeping around the data path: opening and
//! re-addressing the TAP, dropping privileges, the discovery socket, DHCP
//! mode, reopening the main socket.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use n2n_core::edge::Edge;
use n2n_proto::types::DevAddr;
use n2n_sys::log::LogHandle;
use n2n_sys::notify::Notifier;
use n2n_sys::process::{PrivilegeDrop, ProcessError, drop_privileges};
use n2n_sys::udp::{SyncSocket, UdpError};

use super::{Driver, MCAST_PORT, MCAST_RETRY, OFFLOAD_ENV, lock};
use crate::cli::{EdgeOptions, TapAddress};
use crate::resolve::SupernodeName;
use crate::sock::{self, MainSocketConfig};
use crate::tap::{self, Tap, TapConfig, TapError};

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
    /// An `--up-script`/`--down-script` is not runnable.
    #[error("{option} {reason}")]
    Script {
        /// `--up-script` or `--down-script`.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Dropping privileges failed.
    #[error(transparent)]
    Privileges(#[from] ProcessError),
    /// The `--metrics` address could not be bound.
    #[error(transparent)]
    Metrics(#[from] n2n_metrics::ServeError),
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

/// Dotted netmask of a prefix length (`24` → `255.255.255.0`).
pub fn netmask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - p).unwrap_or(0))
}

/// Whether to ask for TAP offloads (on unless `N2N_TAP_OFFLOAD=0`).
fn offload_wanted() -> bool {
    std::env::var_os(OFFLOAD_ENV).is_none_or(|v| v != "0")
}

impl Driver {
    /// Before the loop: the TAP right away unless the supernode is to
    /// assign its address, and the discovery socket.
    pub(super) fn start(&mut self) -> Result<(), DriverError> {
        for (option, path) in [
            ("--up-script", &self.opts.up_script),
            ("--down-script", &self.opts.down_script),
        ] {
            if let Some(p) = path {
                crate::hooks::check_executable(p)
                    .map_err(|reason| DriverError::Script { option, reason })?;
            }
        }
        match self.opts.tap_address {
            TapAddress::Static { ip, prefix } => {
                self.open_tap(Some((ip, prefix)))?;
                self.drop_privileges()?;
            }
            TapAddress::Dhcp => {
                self.open_tap(None)?;
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
        Ok(())
    }

    /// Open the TAP (MAC from the core, MTU `-M`, address if known).
    fn open_tap(&mut self, addr: Option<(Ipv4Addr, u8)>) -> Result<(), DriverError> {
        let mac = lock(&self.edge).mac().0;
        let cfg = TapConfig {
            name: self.opts.tap_name.clone(),
            mac,
            mtu: self.opts.mtu,
            ipv4: addr,
            offload: offload_wanted(),
            bridge: self.opts.bridge.clone(),
            queues: self.opts.threads,
        };
        let mut t = self.bg.block_on(Tap::open(&cfg))?;
        let queues = t.take_queues();
        if let Some(br) = t.bridge() {
            tracing::info!(
                "TAP {} enslaved to bridge {br} (the address is on {br})",
                t.name()
            );
        }
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
        self.lane.tap.dev = Some(t);
        self.start_workers(queues)?;
        self.run_hook(crate::hooks::Hook::Up, addr);
        // The TAP is up and configured (and --up-script has run): a parent
        // waiting without -f exits.
        n2n_sys::process::startup_done();
        Ok(())
    }

    /// Run `--up-script` / `--down-script` if given.
    pub(super) fn run_hook(&self, hook: crate::hooks::Hook, addr: Option<(Ipv4Addr, u8)>) {
        use crate::hooks::{Hook, HookEnv, SCRIPT_TIMEOUT, run};
        let path = match hook {
            Hook::Up => &self.opts.up_script,
            Hook::Down => &self.opts.down_script,
        };
        let (Some(path), Some(t)) = (path, &self.lane.tap.dev) else {
            return;
        };
        let env = HookEnv {
            tap: t.name().to_owned(),
            mac: tap::format_mac(&t.mac()),
            ip: addr.map(|(ip, p)| format!("{ip}/{p}")).unwrap_or_default(),
            community: self.opts.community.clone(),
            bridge: self.opts.bridge.clone().unwrap_or_default(),
        };
        self.bg.block_on(run(path, hook, &env, SCRIPT_TIMEOUT));
    }

    /// At a clean stop: the down-script, then the bridge address off.
    pub(super) fn close_tap(&mut self) {
        if self.lane.tap.dev.is_none() {
            return;
        }
        let addr = match &self.lane.tap.dev {
            Some(t) => self.bg.block_on(t.ipv4()).ok().flatten(),
            None => None,
        };
        self.run_hook(crate::hooks::Hook::Down, addr);
        if let Some(t) = &self.lane.tap.dev
            && let Err(e) = self.bg.block_on(t.release())
        {
            tracing::warn!("{e}");
        }
    }

    /// The supernode assigned an address: open the TAP with it (and drop
    /// privileges), or change the address of the open one.
    pub(super) fn on_assigned(&mut self, a: DevAddr) -> Result<(), DriverError> {
        match &self.lane.tap.dev {
            None => {
                self.open_tap(Some((a.ip, a.prefix)))?;
                self.drop_privileges()?;
            }
            Some(t) => {
                if let Err(e) = self.bg.block_on(t.set_ipv4(a.ip, a.prefix)) {
                    tracing::error!("cannot change the TAP address to {a}: {e}");
                }
            }
        }
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
        if !lock(&self.edge).wants_multicast_discovery() {
            return;
        }
        match sock::bind_multicast(MCAST_PORT).and_then(|s| {
            SyncSocket::new(s).map_err(|err| UdpError::Io {
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, MCAST_PORT)),
                step: "register",
                err,
            })
        }) {
            Ok(s) => {
                self.lane.udp.mcast = Some(s);
                self.join_multicast();
            }
            Err(e) => tracing::warn!("local peer discovery off: {e}"),
        }
    }

    /// Join the discovery group; retried every [`MCAST_RETRY`] on failure.
    pub(super) fn join_multicast(&mut self) {
        let Some(s) = &self.lane.udp.mcast else {
            return;
        };
        let group = match n2n_core::edge::MULTICAST_DISCOVERY.ip() {
            std::net::IpAddr::V4(g) => g,
            std::net::IpAddr::V6(_) => return,
        };
        match s
            .get_ref()
            .join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
        {
            Ok(()) => {
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

    /// DHCP mode: what address does the TAP have now?
    pub(super) fn poll_dhcp_address(&mut self) {
        let Some(tap) = &self.lane.tap.dev else {
            return;
        };
        let addr = match self.bg.block_on(tap.ipv4()) {
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
                lock(&self.edge).set_tap_addr(DevAddr::new(ip, prefix));
            }
            None => {
                tracing::info!("TAP {} has no IP address (DHCP)", tap.name());
                lock(&self.edge).set_tap_addr(DevAddr::UNSPECIFIED);
            }
        }
        self.dhcp_addr = addr;
    }

    /// C closes and reopens its main socket (new local port) after many
    /// supernode switches without P2P peers (stale NAT mapping).
    pub(super) fn reopen_socket(&mut self) {
        if self.main_cfg.bind.port() != 0 {
            tracing::debug!("keeping the fixed local port {}", self.main_cfg.bind.port());
            return;
        }
        // The workers' sockets share the old port: they move with it.
        let queues = self.workers.stop();
        let new = sock::bind_main(&self.main_cfg)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                let local = m.local_addr().map_err(|e| e.to_string())?;
                let s = SyncSocket::new(m.sock).map_err(|e| e.to_string())?;
                Ok((s, local))
            });
        match new {
            Ok((s, local)) => {
                if self.lane.rx.reads_gro()
                    && let Err(e) = s.enable_gro()
                {
                    // Not coalesced, the datagrams are read one per slot.
                    tracing::debug!("UDP_GRO on the reopened socket: {e}");
                }
                self.lane.udp.main = s;
                lock(&self.edge).set_local_addr(local);
                tracing::info!(
                    "reopened the main socket: now bound to local port {}",
                    local.port()
                );
            }
            Err(e) => tracing::warn!("cannot reopen the main socket: {e}"),
        }
        if let Err(e) = self.start_workers(queues) {
            tracing::error!("data-path threads after reopening the socket: {e}");
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
}
