//! The Linux TAP device of the edge.
//!
//! The device is opened with `tun-rs` (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`,
//! plus `IFF_VNET_HDR` and TCP/checksum offloads when [`TapConfig::offload`])
//! and configured over rtnetlink (MAC, MTU, IPv4 address, up), in the
//! network namespace of the calling thread. The descriptor is
//! non-blocking and belongs to no runtime: the edge's data-path thread
//! waits for it with `poll(2)` ([`n2n_sys::poll`]) and reads and writes
//! one Ethernet frame (no FCS) per call.
//!
//! If a device of the requested name already exists it is reused when it is
//! a TAP device (as C n2n does, e.g. a persistent `ip tuntap add … mode tap`
//! device); any other kind of device is an error naming the problem.
//!
//! [`Tap::open`] and the address methods must run inside a tokio runtime (a
//! netlink connection task is spawned on it). All netlink sockets are created when
//! the device is opened, so the device keeps being configured in the
//! namespace it was opened in.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd as _;

use futures_util::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoTun, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkUnspec};
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

/// Ethernet header length (destination, source, EtherType).
pub const ETH_HLEN: usize = 14;

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name (`-d`, 1..=15 bytes).
    pub name: String,
    /// MAC address (locally administered unicast normally).
    pub mac: [u8; 6],
    /// MTU (`-M`).
    pub mtu: u16,
    /// IPv4 address and prefix length, or `None` to leave the device
    /// without an address (supernode-assigned address not known yet, DHCP).
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// Open with `IFF_VNET_HDR` and enable checksum and TCP segmentation
    /// offload (`TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`): every read and
    /// write then starts with a virtio-net header (see `n2n_offload`).
    /// Falls back to a plain device if the kernel refuses.
    pub offload: bool,
    /// `--bridge`: enslave the TAP to this existing Linux bridge once it
    /// is configured; the IPv4 address then goes on the bridge (an address
    /// on a bridge port is not answered), and only the address this edge
    /// set is ever removed from it.
    pub bridge: Option<String>,
    /// Queues to open (`IFF_MULTI_QUEUE` when more than one, `--threads`):
    /// the kernel spreads the flows it sends over them. If the device
    /// cannot have several (an existing single-queue TAP) one is opened,
    /// with a warning.
    pub queues: usize,
}

/// Why the TAP could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TapError {
    /// The name is not a valid interface name.
    #[error("invalid TAP device name '{0}' (1..15 bytes, no '/', ':' or white space)")]
    BadName(String),
    /// A device of that name exists and is something else.
    #[error("network device {name} already exists and is not a TAP device (it is {kind})")]
    NotTap {
        /// Device name.
        name: String,
        /// What it is (`veth`, `a TUN device`, …).
        kind: String,
    },
    /// The existing TAP is attached to another process.
    #[error("TAP device {name} is already in use by another process")]
    Busy {
        /// Device name.
        name: String,
    },
    /// Missing privileges.
    #[error(
        "not permitted to open TAP device {name}: run as root or with CAP_NET_ADMIN ({source})"
    )]
    Permission {
        /// Device name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// Opening `/dev/net/tun` or `TUNSETIFF` failed otherwise.
    #[error("cannot open TAP device {name}: {source}")]
    Open {
        /// Device name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// `--bridge` names no device.
    #[error("bridge {name} does not exist (create it first, e.g. with systemd-networkd)")]
    NoBridge {
        /// Bridge name.
        name: String,
    },
    /// `--bridge` names a device that is not a bridge.
    #[error("--bridge {name}: {name} is not a Linux bridge (it is {kind})")]
    NotBridge {
        /// Device name.
        name: String,
        /// What it is.
        kind: String,
    },
    /// A netlink configuration step failed.
    #[error("TAP device {name}: {step} failed: {source}")]
    Configure {
        /// Device name.
        name: String,
        /// What was attempted.
        step: &'static str,
        /// OS error.
        source: io::Error,
    },
}

/// One queue of the TAP: a non-blocking descriptor that reads and writes
/// frames (with a virtio-net header first if offloads are on). The extra
/// queues of a multi-queue device ([`Tap::take_queues`]) go to the
/// data-path threads.
pub struct TapQueue {
    dev: SyncDevice,
    vnet_hdr: bool,
    name: String,
}

impl fmt::Debug for TapQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapQueue")
            .field("name", &self.name)
            .field("vnet_hdr", &self.vnet_hdr)
            .finish_non_exhaustive()
    }
}

impl std::os::fd::AsFd for TapQueue {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dev.as_fd()
    }
}

impl TapQueue {
    /// Read one frame if one is queued (`WouldBlock` otherwise); returns
    /// its length. A buffer of [`Tap::max_frame_len`] bytes (plus the
    /// virtio-net header and a TCP super-segment with offloads) holds
    /// every frame the kernel sends.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf)
    }

    /// Write one frame (destination MAC first, no FCS) without waiting
    /// (`WouldBlock` when the device cannot take it now).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        self.dev.send(frame)
    }

    /// Write one frame; if the device cannot take it now, wait for it (at
    /// most `wait`) and try once more.
    pub fn send(&self, frame: &[u8], wait: std::time::Duration) -> io::Result<usize> {
        match self.try_send(frame) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                n2n_sys::poll::wait_writable(self.dev.as_fd(), wait)?;
                self.try_send(frame)
            }
            r => r,
        }
    }

    /// Whether reads and writes carry a virtio-net header (offloads on).
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An open, configured TAP device.
pub struct Tap {
    /// The first queue.
    q: TapQueue,
    /// The other queues, until taken.
    extra: Vec<TapQueue>,
    name: String,
    index: u32,
    mac: [u8; 6],
    mtu: u16,
    /// Where the IPv4 address goes: the TAP, or the bridge with `--bridge`.
    addr_index: u32,
    bridge: Option<String>,
    /// The address this edge put on the bridge (removed again on release).
    bridge_addr: std::sync::Mutex<Option<(Ipv4Addr, u8)>>,
    nl: Handle,
    nl_task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("mac", &format_mac(&self.mac))
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.nl_task.abort();
    }
}

fn nl_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// Whether `name` is acceptable as a Linux interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Six random bytes with the multicast bit cleared and the locally
/// administered bit set (behaviour.md §1).
pub fn random_mac() -> io::Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    getrandom::fill(&mut mac).map_err(|e| io::Error::other(e.to_string()))?;
    mac[0] = (mac[0] & !0x01) | 0x02;
    Ok(mac)
}

/// What kind of device an existing link is, from its `IFLA_LINKINFO`:
/// `Ok(())` when it is a TAP, else a description for the error.
fn check_existing_is_tap(link: &LinkMessage) -> Result<(), String> {
    const IFLA_TUN_TYPE: u16 = 3;
    const IFF_TAP: u8 = 2;
    let mut kind: Option<String> = None;
    let mut tun_type: Option<u8> = None;
    for attr in &link.attributes {
        if let LinkAttribute::LinkInfo(infos) = attr {
            for info in infos {
                match info {
                    LinkInfo::Kind(InfoKind::Tun) => kind = Some("tun".into()),
                    LinkInfo::Kind(k) => kind = Some(k.to_string()),
                    LinkInfo::Data(InfoData::Tun(nlas)) => {
                        for nla in nlas {
                            let InfoTun::Other(nla) = nla else { continue };
                            use netlink_packet_core::Nla;
                            if nla.kind() == IFLA_TUN_TYPE && nla.value_len() == 1 {
                                let mut v = [0u8; 1];
                                nla.emit_value(&mut v);
                                tun_type = Some(v[0]);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    match (kind.as_deref(), tun_type) {
        (Some("tun"), Some(IFF_TAP)) => Ok(()),
        // Old kernels (< 4.15) do not report the tun type: let TUNSETIFF
        // decide (it refuses a TUN device with EINVAL).
        (Some("tun"), None) => Ok(()),
        (Some("tun"), Some(_)) => Err("a TUN (layer 3) device".into()),
        (Some(k), _) => Err(format!("a device of kind '{k}'")),
        (None, _) => Err("a physical or unknown device".into()),
    }
}

/// The kind of a link (`bridge`, `veth`, …) from its `IFLA_LINKINFO`.
fn link_kind(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(InfoKind::Bridge) => Some("bridge".to_owned()),
            LinkInfo::Kind(k) => Some(k.to_string()),
            _ => None,
        }),
        _ => None,
    })
}

async fn find_link(nl: &Handle, name: &str) -> io::Result<Option<LinkMessage>> {
    let mut links = nl.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl_err(e)),
    }
}

impl std::os::fd::AsFd for Tap {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.q.as_fd()
    }
}

impl std::ops::Deref for Tap {
    type Target = TapQueue;
    /// The first queue's reads and writes.
    fn deref(&self) -> &TapQueue {
        &self.q
    }
}

impl Tap {
    /// Create (or attach to an existing TAP device of the same name),
    /// set MAC and MTU, set the IPv4 address if given, and bring it up.
    pub async fn open(cfg: &TapConfig) -> Result<Tap, TapError> {
        let name = cfg.name.clone();
        if !valid_ifname(&name) {
            return Err(TapError::BadName(name));
        }
        let configure = |step: &'static str| {
            let name = name.clone();
            move |source: io::Error| TapError::Configure { name, step, source }
        };
        let (conn, nl, _) =
            rtnetlink::new_connection().map_err(configure("opening a netlink socket"))?;
        let nl_task = tokio::spawn(conn);

        if let Some(link) = find_link(&nl, &name)
            .await
            .map_err(configure("looking up the device"))?
        {
            check_existing_is_tap(&link).map_err(|kind| TapError::NotTap {
                name: name.clone(),
                kind,
            })?;
        }

        let build = |offload: bool, multi: bool| {
            DeviceBuilder::new()
                .name(name.clone())
                .layer(Layer::L2)
                .inherit_enable_state()
                .offload(offload)
                .multi_queue(multi)
                .build_sync()
                .and_then(|d| d.set_nonblocking(true).map(|()| d))
        };
        let build_queues = |offload: bool| {
            let mut multi = cfg.queues > 1;
            let d = match build(offload, multi) {
                Err(e) if multi => {
                    tracing::warn!(
                        "TAP {name}: cannot open {} queues ({e}): one data-path thread",
                        cfg.queues
                    );
                    multi = false;
                    build(offload, false)
                }
                r => r,
            }?;
            let mut extra = Vec::new();
            if multi {
                for _ in 1..cfg.queues {
                    let q = d.try_clone()?;
                    q.set_nonblocking(true)?;
                    if offload {
                        n2n_sys::tap::enable_tcp_offloads(q.as_fd())?;
                    }
                    extra.push(q);
                }
            }
            if offload {
                n2n_sys::tap::enable_tcp_offloads(d.as_fd())?;
            }
            Ok::<_, io::Error>((d, extra))
        };
        let mut vnet_hdr = false;
        let mut built = None;
        if cfg.offload {
            match build_queues(true) {
                Ok(d) => {
                    vnet_hdr = true;
                    built = Some(Ok(d));
                }
                Err(e) => {
                    tracing::info!("TAP {name}: offloads unavailable ({e}), using plain frames")
                }
            }
        }
        let (dev, extra) = built
            .unwrap_or_else(|| build_queues(false))
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EBUSY) => TapError::Busy { name: name.clone() },
                Some(libc::EPERM | libc::EACCES) => TapError::Permission {
                    name: name.clone(),
                    source,
                },
                Some(libc::EINVAL) => TapError::NotTap {
                    name: name.clone(),
                    kind: "not a TAP device or configured incompatibly".into(),
                },
                _ => TapError::Open {
                    name: name.clone(),
                    source,
                },
            })?;

        let index = find_link(&nl, &name)
            .await
            .map_err(configure("looking up the new device"))?
            .map(|l| l.header.index)
            .ok_or_else(|| {
                configure("looking up the new device")(io::Error::from_raw_os_error(libc::ENODEV))
            })?;

        // --bridge: check it before touching the TAP's configuration.
        let mut addr_index = index;
        if let Some(br) = &cfg.bridge {
            let link = find_link(&nl, br)
                .await
                .map_err(configure("looking up the bridge"))?
                .ok_or_else(|| TapError::NoBridge { name: br.clone() })?;
            match link_kind(&link).as_deref() {
                Some("bridge") => addr_index = link.header.index,
                Some(k) => {
                    return Err(TapError::NotBridge {
                        name: br.clone(),
                        kind: format!("a device of kind '{k}'"),
                    });
                }
                None => {
                    return Err(TapError::NotBridge {
                        name: br.clone(),
                        kind: "a physical or unknown device".into(),
                    });
                }
            }
        }

        let queue = |dev| TapQueue {
            dev,
            vnet_hdr,
            name: name.clone(),
        };
        let tap = Tap {
            extra: extra.into_iter().map(queue).collect(),
            q: queue(dev),
            name: name.clone(),
            index,
            mac: cfg.mac,
            mtu: cfg.mtu,
            addr_index,
            bridge: cfg.bridge.clone(),
            bridge_addr: std::sync::Mutex::new(None),
            nl,
            nl_task,
        };
        tap.nl
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .address(cfg.mac.to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| configure("setting the MAC address")(nl_err(e)))?;
        tap.nl
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .mtu(u32::from(cfg.mtu))
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| configure("setting the MTU")(nl_err(e)))?;
        if tap.bridge.is_some() {
            // The TAP itself carries no address as a bridge port.
            tap.clear_own_ipv4().await?;
            tap.nl
                .link()
                .set(
                    LinkUnspec::new_with_index(index)
                        .controller(addr_index)
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| configure("enslaving the device to the bridge")(nl_err(e)))?;
            tap.nl
                .link()
                .set(LinkUnspec::new_with_index(addr_index).up().build())
                .execute()
                .await
                .map_err(|e| configure("bringing the bridge up")(nl_err(e)))?;
        }
        match cfg.ipv4 {
            Some((ip, prefix)) => tap.set_ipv4(ip, prefix).await?,
            None => tap.clear_ipv4().await?,
        }
        tap.nl
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| configure("bringing the device up")(nl_err(e)))?;
        Ok(tap)
    }

    fn configure_err(&self, step: &'static str) -> impl Fn(io::Error) -> TapError + '_ {
        move |source| TapError::Configure {
            name: self.name.clone(),
            step,
            source,
        }
    }

    async fn ipv4_messages_of(&self, index: u32) -> Result<Vec<AddressMessage>, TapError> {
        let mut msgs = Vec::new();
        let mut stream = self
            .nl
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(m) = stream
            .try_next()
            .await
            .map_err(|e| self.configure_err("listing addresses")(nl_err(e)))?
        {
            if m.header.family == AddressFamily::Inet && m.header.index == index {
                msgs.push(m);
            }
        }
        Ok(msgs)
    }

    /// The IPv4 addresses of the address target (TAP, or the bridge).
    async fn ipv4_messages(&self) -> Result<Vec<AddressMessage>, TapError> {
        self.ipv4_messages_of(self.addr_index).await
    }

    /// Remove the TAP's own IPv4 addresses (a bridge port has none).
    async fn clear_own_ipv4(&self) -> Result<(), TapError> {
        for m in self.ipv4_messages_of(self.index).await? {
            self.nl
                .address()
                .del(m)
                .execute()
                .await
                .map_err(|e| self.configure_err("removing an IPv4 address")(nl_err(e)))?;
        }
        Ok(())
    }

    fn bridge_addr(&self) -> Option<(Ipv4Addr, u8)> {
        self.bridge_addr.lock().ok().and_then(|g| *g)
    }

    fn set_bridge_addr(&self, a: Option<(Ipv4Addr, u8)>) {
        if let Ok(mut g) = self.bridge_addr.lock() {
            *g = a;
        }
    }

    /// The bridge of `--bridge`, if any.
    pub fn bridge(&self) -> Option<&str> {
        self.bridge.as_deref()
    }

    /// Before exit: take the address this edge put on the bridge off it
    /// again (the TAP's own addresses go with the TAP).
    pub async fn release(&self) -> Result<(), TapError> {
        if self.bridge.is_none() {
            return Ok(());
        }
        let Some(own) = self.bridge_addr() else {
            return Ok(());
        };
        for m in self.ipv4_messages().await? {
            if Self::message_addr(&m) == Some(own) {
                self.nl.address().del(m).execute().await.map_err(|e| {
                    self.configure_err("removing the IPv4 address from the bridge")(nl_err(e))
                })?;
            }
        }
        self.set_bridge_addr(None);
        Ok(())
    }

    fn message_addr(m: &AddressMessage) -> Option<(Ipv4Addr, u8)> {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => Some((*ip, m.header.prefix_len)),
            _ => None,
        })
    }

    /// Make `ip/prefix` the device's only IPv4 address (used for the static
    /// address and later when the supernode assigns one).
    pub async fn set_ipv4(&self, ip: Ipv4Addr, prefix: u8) -> Result<(), TapError> {
        let mut present = false;
        let on_bridge = self.bridge.is_some();
        let previous = self.bridge_addr();
        for m in self.ipv4_messages().await? {
            if Self::message_addr(&m) == Some((ip, prefix)) {
                present = true;
                continue;
            }
            // On a bridge only the address this edge set is replaced.
            if on_bridge && Self::message_addr(&m) != previous {
                continue;
            }
            self.nl
                .address()
                .del(m)
                .execute()
                .await
                .map_err(|e| self.configure_err("removing an old IPv4 address")(nl_err(e)))?;
        }
        if !present {
            self.nl
                .address()
                .add(self.addr_index, IpAddr::V4(ip), prefix)
                .execute()
                .await
                .map_err(|e| self.configure_err("setting the IPv4 address")(nl_err(e)))?;
        }
        if on_bridge {
            self.set_bridge_addr(Some((ip, prefix)));
        }
        Ok(())
    }

    /// Remove every IPv4 address from the device (with `--bridge`: only
    /// the one this edge put on the bridge).
    pub async fn clear_ipv4(&self) -> Result<(), TapError> {
        if self.bridge.is_some() {
            return self.release().await;
        }
        for m in self.ipv4_messages().await? {
            self.nl
                .address()
                .del(m)
                .execute()
                .await
                .map_err(|e| self.configure_err("removing an IPv4 address")(nl_err(e)))?;
        }
        Ok(())
    }

    /// The device's first IPv4 address and prefix (DHCP mode re-reads it
    /// periodically), or `None`.
    pub async fn ipv4(&self) -> Result<Option<(Ipv4Addr, u8)>, TapError> {
        Ok(self
            .ipv4_messages()
            .await?
            .iter()
            .find_map(Self::message_addr))
    }

    /// The queues after the first (`TapConfig::queues` − 1 of them if
    /// the device has several), once.
    pub fn take_queues(&mut self) -> Vec<TapQueue> {
        std::mem::take(&mut self.extra)
    }

    /// Interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// MAC address set at open.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// MTU set at open.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Largest frame the device carries: MTU + 14-byte Ethernet header.
    pub fn max_frame_len(&self) -> usize {
        usize::from(self.mtu) + ETH_HLEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_mac_is_local_unicast() {
        for _ in 0..64 {
            let m = random_mac().unwrap_or([1; 6]);
            assert_eq!(m[0] & 0x03, 0x02, "{}", format_mac(&m));
        }
    }

    #[test]
    fn names() {
        assert!(valid_ifname("edge0"));
        assert!(valid_ifname("fifteen-chars-x"));
        for bad in ["", ".", "..", "a/b", "a b", "a:b", "sixteen-chars-xx"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
        assert_eq!(format_mac(&[2, 0xab, 0, 1, 2, 0xff]), "02:ab:00:01:02:ff");
    }
}
