//! The virtual cluster at its real size (issue 17), shared by `tests/tests/field_vcluster.rs`
//! and the soak binary (`n2n-soak`).
//!
//! Three NATed "physical clusters" with the same private underlay range (198.19.0.0/24 behind
//! every NAT router), four vm-containers per cluster running `edge -r -E` whose TAP is
//! enslaved to a Linux bridge `br0` together with the veths of two VM namespaces. The
//! supernode layout is a parameter ([`SnLayout`]): one supernode per cluster, federated
//! (`-l` to the other two; edges list their own cluster's supernode first), or one shared
//! supernode on the "internet" reachable from every cluster (the fallback while federation is
//! not available: [`federation_available`]).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::scenario::{Edge, EdgeOpts, SN_PORT, Supernode, SupernodeOpts, mac};
use crate::{Bridge, Lab, NAT_WAN_DEV, NatKind, NatRouter, Netns, Result, veth, wait_until};

/// Overlay community.
pub const COMMUNITY: &str = "vcluster";
/// Static address of the virtual frontend (VM 0 of cluster A).
pub const FRONTEND_IP: &str = "10.211.0.10";
/// The DHCP range served by the frontend.
pub const DHCP_RANGE: &str = "10.211.0.100,10.211.0.199,255.255.255.0,2m";
/// Bound for one edge's registration.
pub const REG: Duration = Duration::from_secs(20);

/// Where the supernodes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnLayout {
    /// One supernode per cluster, each with `-l` to the other two.
    Federated,
    /// One supernode on the internet for every cluster.
    Shared,
}

impl SnLayout {
    /// `federated` / `shared`.
    pub fn name(self) -> &'static str {
        match self {
            SnLayout::Federated => "federated",
            SnLayout::Shared => "shared",
        }
    }
}

/// Does our `supernode` accept federation (`-l` to another supernode)? Probed by starting one
/// with `-l` in a scratch namespace of `lab`: today's binary refuses federation at start.
pub fn federation_available(lab: &Lab) -> bool {
    let Ok(ns) = lab.netns("fedprobe") else {
        return false;
    };
    let Ok(bin) = crate::find_binary("supernode") else {
        return false;
    };
    let bin = bin.to_string_lossy().into_owned();
    let Ok(p) = ns.spawn(
        "fedprobe",
        &[
            &bin,
            "-f",
            "-p",
            "7654",
            "-t",
            "5645",
            "-l",
            "127.0.0.1:7655",
        ],
    ) else {
        return false;
    };
    // A refusal is immediate; a supernode that accepted it keeps running.
    let exited = p.wait_timeout(Duration::from_millis(1500)).ok().flatten();
    exited.is_none() && p.is_running()
}

/// Prints loudly which layout is used, and why.
pub fn announce_layout(layout: SnLayout, what: &str) {
    if layout == SnLayout::Shared {
        crate::loud(&format!(
            "{what}: FEDERATION IS NOT AVAILABLE YET (our supernode refuses -l); running with ONE \
             SHARED SUPERNODE reachable from every cluster instead of three federated ones"
        ));
    }
}

/// One physical cluster: its NAT router, vm-containers and VMs.
#[derive(Debug)]
pub struct Site {
    /// `a`, `b`, `c`.
    pub name: String,
    /// The NAT router (WAN 198.18.0.<n>, LAN 198.19.0.1/24).
    pub router: NatRouter,
    /// The vm-containers (198.19.0.<11..>).
    pub ctrs: Vec<Netns>,
    /// The VMs, `vms_per_ctr` per container in container order.
    pub vms: Vec<Netns>,
}

/// The namespaces of the virtual cluster (daemons are started on top: [`Daemons`]).
#[derive(Debug)]
pub struct VcNet {
    /// The "internet" switch (198.18.0.0/24).
    pub wan: Bridge,
    /// Supernode hosts: one per cluster (federated) or one.
    pub sn_hosts: Vec<Netns>,
    /// The clusters.
    pub sites: Vec<Site>,
    /// The layout.
    pub layout: SnLayout,
    /// Namespaces (keeps the lab alive).
    pub lab: Lab,
}

/// WAN address of supernode `i`.
pub fn sn_ip(layout: SnLayout, i: usize) -> String {
    match layout {
        SnLayout::Federated => format!("198.18.0.{}", 251 + i),
        SnLayout::Shared => "198.18.0.254".to_string(),
    }
}

impl VcNet {
    /// Builds `clusters` sites of `ctrs` containers with `vms_per_ctr` VMs each.
    pub fn build(
        lab: Lab,
        layout: SnLayout,
        clusters: usize,
        ctrs: usize,
        vms_per_ctr: usize,
    ) -> Result<VcNet> {
        let wan = lab.bridge("wan")?;
        let n_sn = match layout {
            SnLayout::Federated => clusters,
            SnLayout::Shared => 1,
        };
        let sn_hosts = (0..n_sn)
            .map(|i| lab.host_on(&format!("sn{i}"), &wan, &format!("{}/24", sn_ip(layout, i))))
            .collect::<Result<Vec<_>>>()?;
        let mut sites = Vec::new();
        for c in 0..clusters {
            let name = ((b'a' + c as u8) as char).to_string();
            let router = lab.nat_router(
                &format!("{name}-nat"),
                NatKind::EndpointIndependent,
                &wan,
                &format!("198.18.0.{}/24", c + 1),
                "198.19.0.1/24",
            )?;
            let mut cs = Vec::new();
            let mut vms = Vec::new();
            for k in 0..ctrs {
                let ctr = lab.host_behind(
                    &format!("{name}-ctr{k}"),
                    &router,
                    &format!("198.19.0.{}/24", 11 + k),
                )?;
                ctr.ip(&[
                    "link",
                    "add",
                    "br0",
                    "type",
                    "bridge",
                    "stp_state",
                    "0",
                    "mcast_snooping",
                    "0",
                ])?;
                ctr.link_up("br0")?;
                for v in 0..vms_per_ctr {
                    let vm = lab.netns(&format!("{name}{k}-vm{v}"))?;
                    let port = format!("vm{v}");
                    veth(&ctr, &port, &vm, "eth0")?;
                    ctr.ip(&["link", "set", "dev", &port, "master", "br0"])?;
                    vm.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
                    vms.push(vm);
                }
                cs.push(ctr);
            }
            sites.push(Site {
                name,
                router,
                ctrs: cs,
                vms,
            });
        }
        Ok(VcNet {
            wan,
            sn_hosts,
            sites,
            layout,
            lab,
        })
    }

    /// The virtual frontend VM (cluster A, container 0, VM 0).
    pub fn frontend(&self) -> &Netns {
        &self.sites[0].vms[0]
    }

    /// Every VM but the frontend, with its cluster index.
    pub fn clients(&self) -> Vec<(usize, &Netns)> {
        self.sites
            .iter()
            .enumerate()
            .flat_map(|(c, s)| s.vms.iter().map(move |v| (c, v)))
            .skip(1)
            .collect()
    }

    /// Edge number (0-based over all containers) of container `k` in cluster `c`.
    pub fn edge_index(&self, c: usize, k: usize) -> usize {
        self.sites[..c].iter().map(|s| s.ctrs.len()).sum::<usize>() + k
    }

    /// "Restarts" cluster `c`'s NAT router: its WAN link goes down and up, which flushes every
    /// masquerade mapping (conntrack entry) of that interface, as a reboot does.
    pub fn nat_flush(&self, c: usize) -> Result<()> {
        let ns = self.sites[c].router.netns();
        ns.ip(&["link", "set", "dev", NAT_WAN_DEV, "down"])?;
        ns.ip(&["link", "set", "dev", NAT_WAN_DEV, "up"])?;
        Ok(())
    }
}

/// MAC of edge `i`.
pub fn edge_mac(i: usize) -> String {
    mac(0x700 + i as u16)
}

/// The daemons running on a [`VcNet`].
#[derive(Debug)]
pub struct Daemons<'a> {
    /// Supernodes (index = cluster for the federated layout).
    pub sns: Vec<Supernode<'a>>,
    /// Edges (index = [`VcNet::edge_index`]), each with its cluster.
    pub edges: Vec<(usize, Edge<'a>)>,
}

/// `-l` arguments for the edges of cluster `c`: own supernode first, then the others.
pub fn edge_supernodes(layout: SnLayout, clusters: usize, c: usize) -> Vec<String> {
    match layout {
        SnLayout::Shared => vec![format!("{}:{SN_PORT}", sn_ip(layout, 0))],
        SnLayout::Federated => (0..clusters)
            .map(|i| (c + i) % clusters)
            .map(|i| format!("{}:{SN_PORT}", sn_ip(layout, i)))
            .collect(),
    }
}

/// Supernode options for supernode `i` of `n` in `layout`.
pub fn sn_opts(layout: SnLayout, n: usize, i: usize) -> SupernodeOpts {
    let mut o = SupernodeOpts::default();
    if layout == SnLayout::Federated {
        for j in (0..n).filter(|&j| j != i) {
            o.extra
                .extend(["-l".to_string(), format!("{}:{SN_PORT}", sn_ip(layout, j))]);
        }
    }
    o
}

impl<'a> Daemons<'a> {
    /// Starts the supernodes and one edge per container, waits for every registration and
    /// bridges every TAP into its container's `br0`.
    pub fn start(net: &'a VcNet) -> Result<Daemons<'a>> {
        let n = net.sn_hosts.len();
        let sns = net
            .sn_hosts
            .iter()
            .enumerate()
            .map(|(i, h)| Supernode::start(h, &format!("supernode{i}"), sn_opts(net.layout, n, i)))
            .collect::<Result<Vec<_>>>()?;
        let mut edges = Vec::new();
        for (c, site) in net.sites.iter().enumerate() {
            for (k, ctr) in site.ctrs.iter().enumerate() {
                let i = net.edge_index(c, k);
                let sn = edge_supernodes(net.layout, net.sites.len(), c);
                let mut o = EdgeOpts::new(COMMUNITY, &sn[0])
                    .addr(&format!("10.211.0.{}/24", 200 + i))
                    .mac(edge_mac(i))
                    .port(50000 + i as u16)
                    .routing()
                    .multicast();
                for s in &sn[1..] {
                    o = o.supernode(s);
                }
                edges.push((c, Edge::start(ctr, &format!("edge{i}"), o)?));
            }
        }
        let d = Daemons { sns, edges };
        for (i, (_, e)) in d.edges.iter().enumerate() {
            if !e.wait_registered(REG) {
                return Err(crate::Error::Other(format!(
                    "edge{i} did not register within {REG:?}:\n{}",
                    e.stderr()
                )));
            }
            bridge_tap(e.ns())?;
        }
        Ok(d)
    }

    /// Kills edge `i` (SIGTERM), starts it again with the same MAC and command line and
    /// re-bridges its new TAP.
    pub fn restart_edge(&mut self, i: usize) -> Result<()> {
        let e = &mut self.edges[i].1;
        e.kill(crate::Signal::SIGTERM)?;
        e.restart()?;
        bridge_tap(e.ns())
    }

    /// PIDs of every running daemon: supernodes first.
    pub fn pids(&self) -> Vec<u32> {
        self.sns
            .iter()
            .filter_map(Supernode::pid)
            .chain(self.edges.iter().filter_map(|(_, e)| e.pid()))
            .collect()
    }

    /// Share of the edges' peer rows that are direct (`p2p`), in percent.
    pub fn p2p_share(&self) -> f64 {
        let (mut p2p, mut all) = (0usize, 0usize);
        for (_, e) in &self.edges {
            for p in e.peers().unwrap_or_default() {
                all += 1;
                p2p += usize::from(p.mode == "p2p");
            }
        }
        if all == 0 {
            0.0
        } else {
            100.0 * p2p as f64 / all as f64
        }
    }

    /// Health of every daemon (running, never panicked).
    pub fn health(&self) -> Result<()> {
        for s in &self.sns {
            s.health()?;
        }
        for (_, e) in &self.edges {
            e.health()?;
        }
        Ok(())
    }
}

/// A lease for `eth0` of `vm` as a real client gets it: a NAK (two clients were offered the same
/// address while they asked at once) restarts the exchange; at most 5 attempts of ≤ 30 s.
pub fn lease(vm: &Netns) -> Result<crate::DhcpLease> {
    let mut last = None;
    for _ in 0..5 {
        match crate::dhcp_lease(vm, "eth0", Duration::from_secs(30)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| crate::Error::Other("no DHCP attempt".into())))
}

/// Enslaves the edge's `n2n0` to `br0` (waiting for the TAP to exist).
pub fn bridge_tap(ctr: &Netns) -> Result<()> {
    wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        ctr.mtu("n2n0").is_ok()
    });
    ctr.ip(&["link", "set", "dev", "n2n0", "master", "br0"])
        .map(drop)
}

/// Current resident set size (`VmRSS`) of `pid` in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A deterministic "installer image" of `len` bytes.
pub fn image_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// [`FRONTEND_IP`] parsed.
pub fn frontend_ip() -> Ipv4Addr {
    FRONTEND_IP.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}
