//! Links, switches and NAT routers between namespaces.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::cmd::ip;
use crate::{Error, Netns, Result, io_err};

fn parse_cidr(cidr: &str) -> Result<Ipv4Addr> {
    cidr.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| Error::Parse {
            what: "IPv4 CIDR".into(),
            detail: cidr.to_string(),
        })
}

/// Connects `a` and `b` with a veth pair (`a_if` in `a`, `b_if` in `b`), both ends up.
/// The pair is created from inside `a`, so the root namespace never sees it.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    a.link_up(a_if)?;
    b.link_up(b_if)
}

#[derive(Debug, Clone)]
struct Port {
    host_ns: String,
    host_if: String,
    port_if: String,
}

/// An L2 switch: bridge `br0` in its own "switch" namespace. Hosts are attached with veth
/// pairs. Dropping the bridge deletes the switch namespace (and with it every port).
#[derive(Debug)]
pub struct Bridge {
    ns: Netns,
    ports: Mutex<Vec<Port>>,
    mtu: Mutex<Option<u32>>,
    next_port: AtomicU32,
}

/// Name of the bridge device inside the switch namespace.
pub const BRIDGE_DEV: &str = "br0";

impl Bridge {
    /// Turns `ns` into a switch namespace holding bridge [`BRIDGE_DEV`].
    pub fn new(ns: Netns) -> Result<Bridge> {
        ns.ip(&[
            "link",
            "add",
            BRIDGE_DEV,
            "type",
            "bridge",
            "stp_state",
            "0",
        ])?;
        ns.link_up(BRIDGE_DEV)?;
        Ok(Bridge {
            ns,
            ports: Mutex::new(Vec::new()),
            mtu: Mutex::new(None),
            next_port: AtomicU32::new(0),
        })
    }

    /// The switch namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    fn ports(&self) -> Vec<Port> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Plugs `host` into the switch: creates `ifname` in `host` (up, with address `cidr` if
    /// given, e.g. `Some("198.18.0.1/24")`). Returns the switch-side port name.
    pub fn attach(&self, host: &Netns, ifname: &str, cidr: Option<&str>) -> Result<String> {
        let port_if = format!("p{}", self.next_port.fetch_add(1, Ordering::Relaxed));
        veth(&self.ns, &port_if, host, ifname)?;
        self.ns
            .ip(&["link", "set", "dev", &port_if, "master", BRIDGE_DEV])?;
        if let Some(mtu) = *self.mtu.lock().unwrap_or_else(|e| e.into_inner()) {
            self.ns.set_mtu(&port_if, mtu)?;
            host.set_mtu(ifname, mtu)?;
        }
        if let Some(c) = cidr {
            host.addr_add(ifname, c)?;
        }
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Port {
                host_ns: host.name().to_string(),
                host_if: ifname.to_string(),
                port_if: port_if.clone(),
            });
        Ok(port_if)
    }

    /// Sets the MTU of the bridge, of every port and of the host ends (also for hosts
    /// attached later).
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        *self.mtu.lock().unwrap_or_else(|e| e.into_inner()) = Some(mtu);
        let m = mtu.to_string();
        for p in self.ports() {
            self.ns.set_mtu(&p.port_if, mtu)?;
            ip(&[
                "-n", &p.host_ns, "link", "set", "dev", &p.host_if, "mtu", &m,
            ])?;
        }
        self.ns.set_mtu(BRIDGE_DEV, mtu)
    }

    /// Pulls (`up = false`) or re-plugs the cable of `host`'s `ifname` on the switch side.
    pub fn set_link(&self, host: &Netns, ifname: &str, up: bool) -> Result<()> {
        let port = self
            .ports()
            .into_iter()
            .find(|p| p.host_ns == host.name() && p.host_if == ifname)
            .ok_or_else(|| Error::Other(format!("{} {ifname} not on this bridge", host.name())))?;
        self.ns.ip(&[
            "link",
            "set",
            "dev",
            &port.port_if,
            if up { "up" } else { "down" },
        ])?;
        Ok(())
    }
}

/// NAT behaviour of a [`NatRouter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping (plain `masquerade`: Linux keeps the inside source port when
    /// it is free and reuses one mapping for every destination). Filtering is
    /// address-and-port dependent (conntrack), i.e. a "port-restricted cone" NAT.
    EndpointIndependent,
    /// Symmetric: a new external port per destination (`masquerade fully-random`).
    Symmetric,
}

/// A router namespace: WAN interface `wan0` on a [`Bridge`], LAN bridge `lan0` inside the
/// router namespace, IPv4 forwarding and nftables masquerade (table `ip n2nt`). New inbound
/// connections from the WAN are not forwarded to the LAN, and (except ICMP) are dropped at the
/// router's own input like a home router's firewall does: otherwise an unsolicited datagram to
/// the WAN address would leave a confirmed conntrack entry that makes the masquerade pick
/// another external port for the next outgoing flow to that sender (breaking the
/// endpoint-independent mapping that hole punching relies on).
#[derive(Debug)]
pub struct NatRouter {
    ns: Netns,
    kind: NatKind,
    wan_ip: Ipv4Addr,
    lan_ip: Ipv4Addr,
    next_port: AtomicU32,
}

/// WAN interface name inside a router namespace.
pub const NAT_WAN_DEV: &str = "wan0";
/// LAN bridge name inside a router namespace.
pub const NAT_LAN_DEV: &str = "lan0";

impl NatRouter {
    /// Configures `ns` as a NAT router (see [`crate::Lab::nat_router`]).
    pub fn new(
        ns: Netns,
        kind: NatKind,
        wan: &Bridge,
        wan_cidr: &str,
        lan_cidr: &str,
    ) -> Result<NatRouter> {
        let wan_ip = parse_cidr(wan_cidr)?;
        let lan_ip = parse_cidr(lan_cidr)?;
        wan.attach(&ns, NAT_WAN_DEV, Some(wan_cidr))?;
        ns.ip(&[
            "link",
            "add",
            NAT_LAN_DEV,
            "type",
            "bridge",
            "stp_state",
            "0",
        ])?;
        ns.addr_add(NAT_LAN_DEV, lan_cidr)?;
        ns.link_up(NAT_LAN_DEV)?;
        ns.enable_forwarding()?;
        let masq = match kind {
            NatKind::EndpointIndependent => "masquerade",
            NatKind::Symmetric => "masquerade fully-random",
        };
        let rules = format!(
            "table ip n2nt {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\toifname \"{NAT_WAN_DEV}\" {masq}\n\
             \t}}\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tiifname \"{NAT_WAN_DEV}\" ct state new meta l4proto != icmp drop\n\
             \t}}\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy drop;\n\
             \t\tiifname \"{NAT_LAN_DEV}\" oifname \"{NAT_WAN_DEV}\" accept\n\
             \t\tiifname \"{NAT_WAN_DEV}\" oifname \"{NAT_LAN_DEV}\" ct state established,related accept\n\
             \t}}\n\
             }}\n"
        );
        let file = ns.log_dir().join(format!("{}.nft", ns.name()));
        std::fs::write(&file, rules).map_err(io_err(format!("writing {file:?}")))?;
        let path = file.to_string_lossy().into_owned();
        ns.exec(&["nft", "-f", &path])?;
        Ok(NatRouter {
            ns,
            kind,
            wan_ip,
            lan_ip,
            next_port: AtomicU32::new(0),
        })
    }

    /// The router namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// NAT behaviour.
    pub fn kind(&self) -> NatKind {
        self.kind
    }

    /// The router's public (WAN) address: what hosts behind it appear as.
    pub fn wan_ip(&self) -> Ipv4Addr {
        self.wan_ip
    }

    /// The LAN gateway address (default route of attached hosts).
    pub fn lan_ip(&self) -> Ipv4Addr {
        self.lan_ip
    }

    /// Plugs `host` into the router's LAN: `ifname` in `host` with address `cidr` (e.g.
    /// "198.19.1.2/24") and a default route via the router.
    pub fn attach(&self, host: &Netns, ifname: &str, cidr: &str) -> Result<()> {
        let port_if = format!("l{}", self.next_port.fetch_add(1, Ordering::Relaxed));
        veth(&self.ns, &port_if, host, ifname)?;
        self.ns
            .ip(&["link", "set", "dev", &port_if, "master", NAT_LAN_DEV])?;
        host.addr_add(ifname, cidr)?;
        host.default_route(&self.lan_ip.to_string())
    }

    /// The current nftables ruleset of the router (diagnostics).
    pub fn ruleset(&self) -> Result<String> {
        self.ns.exec(&["nft", "list", "ruleset"])
    }
}
