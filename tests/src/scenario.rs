//! A thin layer over the topology helpers for scenario tests: typed options for the workspace's
//! `supernode` and `edge` binaries, handles that start/kill/restart them inside a namespace and
//! read their management ports, the waits scenarios need (registration, direct path), a
//! continuous ping probe that measures outages, multicast and DHCP-server helpers, and the
//! hostile-datagram generator.
//!
//! ```no_run
//! use n2n_tests::{*, scenario::*};
//! # fn main() -> n2n_tests::Result<()> {
//! let lab = Lab::new("doc");
//! let wan = lab.bridge("wan")?;
//! let sn_host = lab.host_on("sn", &wan, "198.18.0.254/24")?;
//! let a_host = lab.host_on("a", &wan, "198.18.0.1/24")?;
//! let sn = Supernode::start(&sn_host, "sn", SupernodeOpts::default())?;
//! let a = Edge::start(&a_host, "edge-a",
//!     EdgeOpts::new("rocks", "198.18.0.254:7654").addr("10.200.0.1/24").mac(mac(1)))?;
//! assert!(a.wait_registered(std::time::Duration::from_secs(10)));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    Bridge, Error, Lab, MgmtClient, NatKind, NatRouter, Netns, Proc, Result, Signal, find_binary,
    io_err, mgmt_rows, wait_until,
};

/// Default supernode UDP port.
pub const SN_PORT: u16 = 7654;
/// Default supernode management port.
pub const SN_MGMT_PORT: u16 = 5645;
/// Default edge management port.
pub const EDGE_MGMT_PORT: u16 = 5644;
/// Bound of one management query made by these helpers.
pub const MGMT_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a freshly spawned daemon gets to open its management port.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// VmHWM bound used by the hostile-traffic checks.
pub const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// Locally administered unicast MAC `02:00:00:00:<hi>:<lo>` for small test numbers.
pub fn mac(n: u16) -> String {
    let [hi, lo] = n.to_be_bytes();
    format!("02:00:00:00:{hi:02x}:{lo:02x}")
}

/// Seconds since the UNIX epoch (the time base of `ping -D`).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Sends `r <tag> <cmd>` to `127.0.0.1:port` in `ns` and returns the `row` objects; an
/// `error` reply or no reply at all is an error.
pub fn mgmt_json(ns: &Netns, port: u16, cmd: &str) -> Result<Vec<Value>> {
    let lines = MgmtClient::connect(ns, port)?.query(&format!("r 1 {cmd}"), MGMT_QUERY_TIMEOUT)?;
    if lines.is_empty() {
        return Err(Error::Timeout {
            what: format!("management `{cmd}` on port {port} in {}", ns.name()),
            after: MGMT_QUERY_TIMEOUT,
        });
    }
    if let Some(e) = lines.iter().find(|l| l.contains("\"_type\":\"error\"")) {
        return Err(Error::Other(format!("management `{cmd}`: {e}")));
    }
    Ok(mgmt_rows(&lines))
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The rows of the `packetstats` and `drops` replies (edge or supernode).
#[derive(Debug, Clone, Default)]
pub struct PacketStats {
    /// Raw rows.
    pub rows: Vec<Value>,
}

impl PacketStats {
    /// Field `field` (`tx_pkt`/`rx_pkt`) of the row whose `type` is `ty` (0 when absent).
    pub fn get(&self, ty: &str, field: &str) -> u64 {
        self.rows
            .iter()
            .find(|r| str_of(r, "type") == ty)
            .map_or(0, |r| u64_of(r, field))
    }

    /// `drop` rows: reason → count.
    pub fn drops(&self) -> BTreeMap<String, u64> {
        self.rows
            .iter()
            .filter(|r| str_of(r, "type") == "drop")
            .map(|r| (str_of(r, "reason"), u64_of(r, "count")))
            .collect()
    }

    /// Sum of all drop counters.
    pub fn total_drops(&self) -> u64 {
        self.drops().values().sum()
    }

    /// Drop counters that are non-zero, as `reason=count` joined by spaces (for reports).
    pub fn drops_summary(&self) -> String {
        self.drops()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Peak resident set size (`VmHWM`) of `pid` in KiB.
pub fn vm_hwm_kib(pid: u32) -> Result<u64> {
    crate::perf::peak_rss_kib(pid)
}

/// One incarnation-spanning daemon process: spawned from `argv` in `ns`, restartable; logs of
/// earlier incarnations are kept for the panic check.
#[derive(Debug)]
struct Daemon<'a> {
    ns: &'a Netns,
    label: String,
    argv: Vec<String>,
    proc: Option<Proc>,
    old: Vec<Proc>,
    mgmt_port: u16,
}

impl<'a> Daemon<'a> {
    fn spawn(&mut self) -> Result<()> {
        let argv: Vec<&str> = self.argv.iter().map(String::as_str).collect();
        let p = self.ns.spawn(&self.label, &argv)?;
        self.proc = Some(p);
        let ns = self.ns;
        let port = self.mgmt_port;
        let up = wait_until(START_TIMEOUT, Duration::from_millis(100), || {
            self.proc.as_ref().is_none_or(|p| p.is_running()) && mgmt_json(ns, port, "help").is_ok()
        });
        if !up {
            let (status, err) = self
                .proc
                .as_ref()
                .map_or((None, String::new()), |p| (p.exit_status(), p.stderr()));
            return Err(Error::Other(format!(
                "`{}` did not answer on management port {port} within {START_TIMEOUT:?} \
                 (exit status {status:?}); stderr:\n{err}",
                self.argv.join(" ")
            )));
        }
        Ok(())
    }

    fn kill(&mut self, sig: Signal) -> Result<()> {
        let Some(p) = self.proc.take() else {
            return Err(Error::Other(format!("{} is not running", self.label)));
        };
        let r = p.signal(sig);
        let exited = p.wait_timeout(Duration::from_secs(5))?;
        self.old.push(p);
        r?;
        if exited.is_none() {
            return Err(Error::Other(format!(
                "{} did not exit within 5 s of {sig}",
                self.label
            )));
        }
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    fn mgmt(&self, cmd: &str) -> Result<Vec<Value>> {
        mgmt_json(self.ns, self.mgmt_port, cmd)
    }

    fn stderr_all(&self) -> String {
        self.old
            .iter()
            .chain(self.proc.as_ref())
            .map(Proc::stderr)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Running, and no incarnation printed a panic.
    fn health(&self) -> Result<()> {
        let err = self.stderr_all();
        if err.contains("panicked") {
            return Err(Error::Other(format!("{} panicked:\n{err}", self.label)));
        }
        match &self.proc {
            Some(p) if p.is_running() => Ok(()),
            Some(p) => Err(Error::Other(format!(
                "{} exited ({:?}); stderr:\n{}",
                self.label,
                p.exit_status(),
                p.stderr()
            ))),
            None => Err(Error::Other(format!("{} was stopped", self.label))),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Topology shortcuts

/// Supernode address on the underlay switch built by [`underlay`].
pub const SN_IP: &str = "198.18.0.254";

/// The underlay switch ("internet", 198.18.0.0/24) with the supernode host at [`SN_IP`].
pub fn underlay(lab: &Lab) -> Result<(Bridge, Netns)> {
    let wan = lab.bridge("wan")?;
    let sn_host = lab.host_on("sn", &wan, &format!("{SN_IP}/24"))?;
    Ok((wan, sn_host))
}

/// A site behind a NAT router: router WAN `198.18.0.<n>`, LAN `198.19.<n>.0/24`, one host
/// `198.19.<n>.2` (its default route via the router).
#[derive(Debug)]
pub struct NatSite {
    /// The router.
    pub router: NatRouter,
    /// The host behind it.
    pub host: Netns,
}

impl NatSite {
    /// Builds site `n` (1..=200) named `name` on `wan`.
    pub fn new(lab: &Lab, name: &str, n: u8, kind: NatKind, wan: &Bridge) -> Result<NatSite> {
        let router = lab.nat_router(
            &format!("{name}-nat"),
            kind,
            wan,
            &format!("198.18.0.{n}/24"),
            &format!("198.19.{n}.1/24"),
        )?;
        let host = lab.host_behind(name, &router, &format!("198.19.{n}.2/24"))?;
        Ok(NatSite { router, host })
    }
}

// ------------------------------------------------------------------------------------------
// Supernode

/// Options of `supernode` (C n2n's command line).
#[derive(Debug, Clone)]
pub struct SupernodeOpts {
    /// `-p`.
    pub port: u16,
    /// `-t`.
    pub mgmt_port: u16,
    /// Lines of a community file (`-c`), written to the log directory.
    pub communities: Option<Vec<String>>,
    /// More arguments.
    pub extra: Vec<String>,
}

impl Default for SupernodeOpts {
    fn default() -> Self {
        SupernodeOpts {
            port: SN_PORT,
            mgmt_port: SN_MGMT_PORT,
            communities: None,
            extra: Vec::new(),
        }
    }
}

impl SupernodeOpts {
    /// Restricts the supernode to these community names (`-c file`).
    pub fn communities(mut self, names: &[&str]) -> Self {
        self.communities = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// The command line (after the program name); `list` is the community file path.
    pub fn args(&self, list: Option<&Path>) -> Vec<String> {
        let mut a: Vec<String> = ["-f", "-p", &self.port.to_string()]
            .map(String::from)
            .to_vec();
        a.extend(["-t".into(), self.mgmt_port.to_string()]);
        if let Some(l) = list {
            a.extend(["-c".into(), l.to_string_lossy().into_owned()]);
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// A `supernode` process in a namespace.
#[derive(Debug)]
pub struct Supernode<'a> {
    d: Daemon<'a>,
    opts: SupernodeOpts,
}

impl<'a> Supernode<'a> {
    /// Starts `supernode` in `ns` and waits until its management port answers.
    pub fn start(ns: &'a Netns, label: &str, opts: SupernodeOpts) -> Result<Supernode<'a>> {
        let bin = find_binary("supernode")?;
        let list = match &opts.communities {
            Some(lines) => {
                let p = ns
                    .log_dir()
                    .join(format!("{}-{label}.communities", ns.role()));
                std::fs::write(&p, lines.join("\n") + "\n")
                    .map_err(io_err(format!("writing {p:?}")))?;
                Some(p)
            }
            None => None,
        };
        let mut argv = vec![bin.to_string_lossy().into_owned()];
        argv.extend(opts.args(list.as_deref()));
        let mut d = Daemon {
            ns,
            label: label.to_string(),
            argv,
            proc: None,
            old: Vec::new(),
            mgmt_port: opts.mgmt_port,
        };
        d.spawn()?;
        Ok(Supernode { d, opts })
    }

    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        self.d.ns
    }

    /// Its options.
    pub fn opts(&self) -> &SupernodeOpts {
        &self.opts
    }

    /// PID of the running incarnation.
    pub fn pid(&self) -> Option<u32> {
        self.d.pid()
    }

    /// The running process.
    pub fn proc(&self) -> Option<&Proc> {
        self.d.proc.as_ref()
    }

    /// Sends `sig` and waits (≤ 5 s) for the exit.
    pub fn kill(&mut self, sig: Signal) -> Result<()> {
        self.d.kill(sig)
    }

    /// Starts a new incarnation with the same command line (same port).
    pub fn restart(&mut self) -> Result<()> {
        self.d.spawn()
    }

    /// JSON management query (`r 1 <cmd>`), rows only.
    pub fn mgmt(&self, cmd: &str) -> Result<Vec<Value>> {
        self.d.mgmt(cmd)
    }

    /// MACs (lower case) of the registered edges.
    pub fn edge_macs(&self) -> Result<Vec<String>> {
        Ok(self
            .mgmt("edges")?
            .iter()
            .map(|r| str_of(r, "macaddr").to_ascii_lowercase())
            .collect())
    }

    /// `packetstats` and our `drops`.
    pub fn packetstats(&self) -> Result<PacketStats> {
        let mut rows = self.mgmt("packetstats")?;
        rows.extend(self.mgmt("drops")?);
        Ok(PacketStats { rows })
    }

    /// Unicast PACKETs/REGISTERs relayed so far (`forward` `tx_pkt`).
    pub fn forwarded(&self) -> Result<u64> {
        Ok(self.packetstats()?.get("forward", "tx_pkt"))
    }

    /// Waits until every MAC in `macs` is registered.
    pub fn wait_edges(&self, macs: &[&str], timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || {
            self.edge_macs()
                .is_ok_and(|have| macs.iter().all(|m| have.contains(&m.to_ascii_lowercase())))
        })
    }

    /// Running and never panicked.
    pub fn health(&self) -> Result<()> {
        self.d.health()
    }

    /// stderr of every incarnation.
    pub fn stderr(&self) -> String {
        self.d.stderr_all()
    }

    /// VmHWM of the running incarnation, KiB.
    pub fn vm_hwm_kib(&self) -> Result<u64> {
        vm_hwm_kib(
            self.pid()
                .ok_or_else(|| Error::Other("not running".into()))?,
        )
    }
}

// ------------------------------------------------------------------------------------------
// Edge

/// Options of `edge` (C n2n's command line).
#[derive(Debug, Clone)]
pub struct EdgeOpts {
    /// `-c`.
    pub community: String,
    /// `-k` (None: no key, null transform).
    pub key: Option<String>,
    /// `-A<n>` (3 = AES).
    pub cipher: u8,
    /// `-l`, in order.
    pub supernodes: Vec<String>,
    /// `-a` (None: auto IP from the supernode).
    pub addr: Option<String>,
    /// `-m`.
    pub mac: Option<String>,
    /// `-p`.
    pub port: Option<u16>,
    /// `-t`.
    pub mgmt_port: u16,
    /// `-d`.
    pub tap: String,
    /// `-r`.
    pub routing: bool,
    /// `-E`.
    pub multicast: bool,
    /// `-H`.
    pub header_encryption: bool,
    /// false → `-S1`.
    pub p2p: bool,
    /// `-i`.
    pub interval: Option<u32>,
    /// More arguments.
    pub extra: Vec<String>,
}

impl EdgeOpts {
    /// Community `community`, key `s3cret`, AES, one supernode, TAP `n2n0`, management 5644.
    pub fn new(community: &str, supernode: &str) -> EdgeOpts {
        EdgeOpts {
            community: community.to_string(),
            key: Some("s3cret".to_string()),
            cipher: 3,
            supernodes: vec![supernode.to_string()],
            addr: None,
            mac: None,
            port: None,
            mgmt_port: EDGE_MGMT_PORT,
            tap: "n2n0".to_string(),
            routing: false,
            multicast: false,
            header_encryption: false,
            p2p: true,
            interval: None,
            extra: Vec::new(),
        }
    }
    /// `-k`.
    pub fn key(mut self, k: &str) -> Self {
        self.key = Some(k.to_string());
        self
    }
    /// `-A<n>`.
    pub fn cipher(mut self, n: u8) -> Self {
        self.cipher = n;
        self
    }
    /// Adds a `-l`.
    pub fn supernode(mut self, s: &str) -> Self {
        self.supernodes.push(s.to_string());
        self
    }
    /// `-a`.
    pub fn addr(mut self, a: &str) -> Self {
        self.addr = Some(a.to_string());
        self
    }
    /// `-m`.
    pub fn mac(mut self, m: impl Into<String>) -> Self {
        self.mac = Some(m.into());
        self
    }
    /// `-p`.
    pub fn port(mut self, p: u16) -> Self {
        self.port = Some(p);
        self
    }
    /// `-t`.
    pub fn mgmt_port(mut self, p: u16) -> Self {
        self.mgmt_port = p;
        self
    }
    /// `-d`.
    pub fn tap(mut self, t: &str) -> Self {
        self.tap = t.to_string();
        self
    }
    /// `-r`.
    pub fn routing(mut self) -> Self {
        self.routing = true;
        self
    }
    /// `-E`.
    pub fn multicast(mut self) -> Self {
        self.multicast = true;
        self
    }
    /// `-H`.
    pub fn header_encryption(mut self) -> Self {
        self.header_encryption = true;
        self
    }
    /// `-S1`.
    pub fn no_p2p(mut self) -> Self {
        self.p2p = false;
        self
    }
    /// `-i`.
    pub fn interval(mut self, secs: u32) -> Self {
        self.interval = Some(secs);
        self
    }
    /// Appends a raw argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.to_string());
        self
    }

    /// The command line (after the program name).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["-f".to_string(), "-c".into(), self.community.clone()];
        if let Some(k) = &self.key {
            a.extend(["-k".into(), k.clone(), format!("-A{}", self.cipher)]);
        }
        for s in &self.supernodes {
            a.extend(["-l".into(), s.clone()]);
        }
        if let Some(x) = &self.addr {
            a.extend(["-a".into(), x.clone()]);
        }
        a.extend(["-d".into(), self.tap.clone()]);
        if let Some(m) = &self.mac {
            a.extend(["-m".into(), m.clone()]);
        }
        if let Some(p) = self.port {
            a.extend(["-p".into(), p.to_string()]);
        }
        a.extend(["-t".into(), self.mgmt_port.to_string()]);
        if self.routing {
            a.push("-r".into());
        }
        if self.multicast {
            a.push("-E".into());
        }
        if self.header_encryption {
            a.push("-H".into());
        }
        if !self.p2p {
            a.push("-S1".into());
        }
        if let Some(i) = self.interval {
            a.extend(["-i".into(), i.to_string()]);
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// One row of an edge's `edges` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// `p2p` (direct) or `pSp` (via the supernode).
    pub mode: String,
    /// Lower-case MAC.
    pub mac: String,
    /// Peer socket as the edge knows it.
    pub sockaddr: String,
    /// TAP address (if announced).
    pub ip4addr: String,
}

/// An `edge` process in a namespace.
#[derive(Debug)]
pub struct Edge<'a> {
    d: Daemon<'a>,
    opts: EdgeOpts,
}

impl<'a> Edge<'a> {
    /// Starts `edge` in `ns` and waits until its management port answers.
    pub fn start(ns: &'a Netns, label: &str, opts: EdgeOpts) -> Result<Edge<'a>> {
        let bin = find_binary("edge")?;
        let mut argv = vec![bin.to_string_lossy().into_owned()];
        argv.extend(opts.args());
        let mut d = Daemon {
            ns,
            label: label.to_string(),
            argv,
            proc: None,
            old: Vec::new(),
            mgmt_port: opts.mgmt_port,
        };
        d.spawn()?;
        Ok(Edge { d, opts })
    }

    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        self.d.ns
    }

    /// Its options.
    pub fn opts(&self) -> &EdgeOpts {
        &self.opts
    }

    /// PID of the running incarnation.
    pub fn pid(&self) -> Option<u32> {
        self.d.pid()
    }

    /// The running process.
    pub fn proc(&self) -> Option<&Proc> {
        self.d.proc.as_ref()
    }

    /// Sends `sig` and waits (≤ 5 s) for the exit.
    pub fn kill(&mut self, sig: Signal) -> Result<()> {
        self.d.kill(sig)
    }

    /// Starts a new incarnation with the same command line.
    pub fn restart(&mut self) -> Result<()> {
        self.d.spawn()
    }

    /// JSON management query (`r 1 <cmd>`), rows only.
    pub fn mgmt(&self, cmd: &str) -> Result<Vec<Value>> {
        self.d.mgmt(cmd)
    }

    /// `supernodes` rows.
    pub fn supernodes(&self) -> Result<Vec<Value>> {
        self.mgmt("supernodes")
    }

    /// The socket of the supernode we are registered with (`current` = 1), if any.
    pub fn registered_with(&self) -> Option<String> {
        self.supernodes().ok().and_then(|rows| {
            rows.iter()
                .find(|r| u64_of(r, "current") == 1)
                .map(|r| str_of(r, "sockaddr"))
        })
    }

    /// Registered with a supernode right now.
    pub fn is_registered(&self) -> bool {
        self.registered_with().is_some()
    }

    /// Waits until registered.
    pub fn wait_registered(&self, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || self.is_registered())
    }

    /// Peers (`edges`).
    pub fn peers(&self) -> Result<Vec<PeerRow>> {
        Ok(self
            .mgmt("edges")?
            .iter()
            .map(|r| PeerRow {
                mode: str_of(r, "mode"),
                mac: str_of(r, "macaddr").to_ascii_lowercase(),
                sockaddr: str_of(r, "sockaddr"),
                ip4addr: str_of(r, "ip4addr"),
            })
            .collect())
    }

    /// The row of peer `mac`, if listed.
    pub fn peer(&self, mac: &str) -> Option<PeerRow> {
        let m = mac.to_ascii_lowercase();
        self.peers().ok()?.into_iter().find(|p| p.mac == m)
    }

    /// Is `mac` a direct (`p2p`) peer?
    pub fn is_direct(&self, mac: &str) -> bool {
        self.peer(mac).is_some_and(|p| p.mode == "p2p")
    }

    /// Waits until `mac` is a direct peer.
    pub fn wait_direct(&self, mac: &str, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || self.is_direct(mac))
    }

    /// `packetstats` and our `drops`.
    pub fn packetstats(&self) -> Result<PacketStats> {
        let mut rows = self.mgmt("packetstats")?;
        rows.extend(self.mgmt("drops")?);
        Ok(PacketStats { rows })
    }

    /// `info` row.
    pub fn info(&self) -> Result<Value> {
        self.mgmt("info")?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Other("empty `info` reply".into()))
    }

    /// (rx_packets, tx_packets) of the TAP device.
    pub fn tap_counters(&self) -> Result<(u64, u64)> {
        link_counters(self.ns(), &self.opts.tap)
    }

    /// Running and never panicked.
    pub fn health(&self) -> Result<()> {
        self.d.health()
    }

    /// stderr of every incarnation.
    pub fn stderr(&self) -> String {
        self.d.stderr_all()
    }

    /// VmHWM of the running incarnation, KiB.
    pub fn vm_hwm_kib(&self) -> Result<u64> {
        vm_hwm_kib(
            self.pid()
                .ok_or_else(|| Error::Other("not running".into()))?,
        )
    }
}

/// (rx_packets, tx_packets) of `dev` in `ns` (`ip -s -j link`).
pub fn link_counters(ns: &Netns, dev: &str) -> Result<(u64, u64)> {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", dev])?;
    let v: Value = serde_json::from_str(&out).map_err(|e| Error::Parse {
        what: format!("ip -s -j link show dev {dev}"),
        detail: format!("{e}: {out}"),
    })?;
    let s = v
        .get(0)
        .and_then(|l| l.get("stats64"))
        .ok_or_else(|| Error::Parse {
            what: format!("stats64 of {dev}"),
            detail: out.clone(),
        })?;
    let n = |dir: &str| {
        s.get(dir)
            .and_then(|d| d.get("packets"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok((n("rx"), n("tx")))
}

// ------------------------------------------------------------------------------------------
// Outage measurement

/// A background `ping -D -O -i <interval>` whose replies are parsed afterwards, to measure
/// outages (gaps between replies) around events like a supernode restart.
#[derive(Debug)]
pub struct GapProbe {
    proc: Proc,
    started: f64,
    dst: String,
}

/// Replies seen by a [`GapProbe`].
#[derive(Debug, Clone, Default)]
pub struct ProbeTrace {
    /// Start of the probe (UNIX seconds).
    pub started: f64,
    /// End of the probe (UNIX seconds).
    pub ended: f64,
    /// (icmp_seq, reply arrival time in UNIX seconds), in order.
    pub replies: Vec<(u32, f64)>,
    /// Highest sequence number sent as far as the output tells.
    pub max_seq: u32,
}

impl GapProbe {
    /// Starts pinging `dst` from `ns` every `interval_ms` (≥ 10) for at most `max_secs`.
    pub fn start(
        ns: &Netns,
        label: &str,
        dst: &str,
        interval_ms: u32,
        max_secs: u32,
    ) -> Result<GapProbe> {
        let i = format!("{:.3}", f64::from(interval_ms.max(10)) / 1000.0);
        let w = max_secs.to_string();
        let proc = ns.spawn(
            label,
            &["ping", "-n", "-D", "-O", "-W", "1", "-i", &i, "-w", &w, dst],
        )?;
        Ok(GapProbe {
            proc,
            started: unix_now(),
            dst: dst.to_string(),
        })
    }

    /// Stops the probe (SIGINT, so ping flushes its output) and parses the replies.
    pub fn finish(self) -> Result<ProbeTrace> {
        let _ = self.proc.signal(Signal::SIGINT);
        let _ = self.proc.wait_timeout(Duration::from_secs(3))?;
        let ended = unix_now();
        let out = self.proc.stdout();
        let mut t = parse_ping_d(&out);
        t.started = self.started;
        t.ended = ended;
        if t.max_seq == 0 && t.replies.is_empty() {
            return Err(Error::Parse {
                what: format!("ping -D output for {}", self.dst),
                detail: format!("{out}{}", self.proc.stderr()),
            });
        }
        Ok(t)
    }
}

/// Parses `ping -D -O` lines (`[1700000000.123456] 64 bytes from …: icmp_seq=5 …` and
/// `[…] no answer yet for icmp_seq=6`).
pub fn parse_ping_d(out: &str) -> ProbeTrace {
    let mut t = ProbeTrace::default();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((ts, tail)) = rest.split_once(']') else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        let Some(seq) = tail
            .split_once("icmp_seq=")
            .and_then(|(_, s)| s.split_whitespace().next())
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        t.max_seq = t.max_seq.max(seq);
        if tail.contains("bytes from") {
            t.replies.push((seq, ts));
        }
    }
    t
}

impl ProbeTrace {
    /// Longest time without a reply within `[from, to]` (window edges count as boundaries).
    pub fn max_gap(&self, from: f64, to: f64) -> f64 {
        let mut last = from;
        let mut gap: f64 = 0.0;
        for &(_, ts) in self
            .replies
            .iter()
            .filter(|(_, ts)| *ts > from && *ts <= to)
        {
            gap = gap.max(ts - last);
            last = ts;
        }
        gap.max(to - last)
    }

    /// Arrival time of the first reply after `t`.
    pub fn first_reply_after(&self, t: f64) -> Option<f64> {
        self.replies.iter().map(|r| r.1).find(|&ts| ts > t)
    }

    /// Time of the last reply at or before `t`.
    pub fn last_reply_before(&self, t: f64) -> Option<f64> {
        self.replies.iter().map(|r| r.1).rfind(|&ts| ts <= t)
    }

    /// Replies within `[from, to]`.
    pub fn replies_between(&self, from: f64, to: f64) -> usize {
        self.replies
            .iter()
            .filter(|(_, ts)| *ts >= from && *ts <= to)
            .count()
    }
}

/// Pings `dst` once per ~300 ms until a reply arrives or `timeout` passes.
pub fn wait_ping(ns: &Netns, dst: &str, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(100), || {
        ns.exec_status(
            &["ping", "-n", "-q", "-c", "1", "-W", "1", dst],
            Duration::from_secs(3),
        )
        .is_ok_and(|(ok, _, _)| ok)
    })
}

// ------------------------------------------------------------------------------------------
// Multicast, DHCP server

/// A UDP socket in `ns` bound to `0.0.0.0:port`, member of `group` on the interface with
/// address `iface`.
pub fn mcast_receiver(
    ns: &Netns,
    group: Ipv4Addr,
    port: u16,
    iface: Ipv4Addr,
) -> Result<UdpSocket> {
    ns.run_in(move || -> std::io::Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
        s.join_multicast_v4(&group, &iface)?;
        Ok(s)
    })?
    .map_err(io_err(format!(
        "joining {group} on {iface} in {}",
        ns.name()
    )))
}

/// Sends `payload` to `group:port` from `ns` (TTL 4; the namespace needs a route for the group,
/// e.g. `224.0.0.0/4 dev eth0`).
pub fn mcast_send(ns: &Netns, group: Ipv4Addr, port: u16, payload: &[u8]) -> Result<()> {
    ns.run_in(move || -> std::io::Result<()> {
        let s = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
        s.set_multicast_ttl_v4(4)?;
        s.set_multicast_loop_v4(true)?;
        s.send_to(payload, SocketAddr::from((group, port)))?;
        Ok(())
    })?
    .map_err(io_err(format!(
        "sending to {group}:{port} from {}",
        ns.name()
    )))
}

/// Waits up to `timeout` for a datagram equal to `payload` on `sock`; returns its source.
pub fn recv_exact(sock: &UdpSocket, payload: &[u8], timeout: Duration) -> Option<SocketAddr> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if buf.get(..n) == Some(payload) => return Some(from),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Starts `dnsmasq` as a DHCP-only server (no DNS) on `iface` in `ns`, with
/// `--dhcp-range=<range>` (e.g. `10.210.0.100,10.210.0.150,255.255.255.0,1h`) and leases in a
/// fresh directory under the log directory. Waits until it logs that it serves the range.
pub fn dnsmasq(ns: &Netns, label: &str, iface: &str, range: &str) -> Result<(Proc, PathBuf)> {
    dnsmasq_with(ns, label, iface, range, &[])
}

/// [`dnsmasq`] with more arguments (e.g. `--enable-tftp`, `--tftp-root=…`).
pub fn dnsmasq_with(
    ns: &Netns,
    label: &str,
    iface: &str,
    range: &str,
    extra: &[String],
) -> Result<(Proc, PathBuf)> {
    crate::install::ensure_program("dnsmasq")?;
    let bin = crate::which("dnsmasq")
        .ok_or_else(|| Error::Unsupported("dnsmasq not installed (dnsmasq-base)".into()))?;
    let dir = ns.log_dir().join(format!("{}-{label}-dnsmasq", ns.role()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {dir:?}")))?;
    let args = [
        bin.to_string_lossy().into_owned(),
        "--no-daemon".into(),
        "--conf-file=/dev/null".into(),
        "--port=0".into(),
        format!("--interface={iface}"),
        "--bind-interfaces".into(),
        format!("--dhcp-range={range}"),
        format!("--dhcp-leasefile={}", dir.join("leases").display()),
        format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
        "--dhcp-authoritative".into(),
        "--no-ping".into(),
        "--log-dhcp".into(),
        "--log-facility=-".into(),
    ];
    let argv: Vec<&str> = args.iter().chain(extra).map(String::as_str).collect();
    let p = ns.spawn(label, &argv)?;
    if !p.wait_for_output("DHCP, IP range", Duration::from_secs(5)) {
        return Err(Error::Other(format!(
            "dnsmasq did not start: {}{}",
            p.stdout(),
            p.stderr()
        )));
    }
    Ok((p, dir))
}

// ------------------------------------------------------------------------------------------
// Hostile traffic

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Every captured UDP payload of every scenario's `packets.jsonl` under `dir`.
pub fn captured_datagrams(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(format!("reading {dir:?}")))?
        .flatten()
        .map(|e| e.path().join("packets.jsonl"))
        .collect();
    entries.sort();
    for p in entries {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(d) = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("hex").and_then(Value::as_str).and_then(unhex))
            {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// xorshift64* (reproducible from its seed).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Seed from `N2N_E2E_SEED`, else the clock; never 0.
    pub fn from_env() -> Rng {
        let seed = std::env::var("N2N_E2E_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| (unix_now() * 1e6) as u64 ^ u64::from(std::process::id()));
        Rng(seed | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (0 when n = 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
    /// Fills `b`.
    pub fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.byte();
        }
    }
}

fn set_community(d: &mut [u8], name: &[u8]) {
    if let Some(f) = d.get_mut(4..24) {
        f.fill(0);
        let n = name.len().min(19);
        if let (Some(dst), Some(src)) = (f.get_mut(..n), name.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
}

/// One hostile datagram: pure random bytes, a random body behind a plausible header naming
/// one of `communities`, or 1–4 mutations (bit flips, truncation, extension, TTL/flag words,
/// splices, community swaps, zeroed regions) of a captured datagram.
pub fn hostile_datagram(
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    communities: &[&[u8]],
    out: &mut Vec<u8>,
) {
    out.clear();
    let pick_name = |rng: &mut Rng| communities.get(rng.below(communities.len())).copied();
    match rng.below(100) {
        0..=14 => {
            let len = if rng.below(2) == 0 {
                rng.below(48)
            } else {
                rng.below(2100)
            };
            out.resize(len, 0);
            rng.fill(out);
        }
        15..=29 => {
            out.resize(24 + rng.below(300), 0);
            rng.fill(out);
            out[0] = 3;
            out[1] = rng.byte() % 4;
            out[2] = rng.byte() & 0x60;
            out[3] = rng.byte() & 0x0f;
            if let Some(n) = pick_name(rng) {
                set_community(out, n);
            }
        }
        _ => {
            if let Some(s) = seeds.get(rng.below(seeds.len())) {
                out.extend_from_slice(s);
            }
            if rng.below(2) == 0
                && let Some(n) = pick_name(rng)
            {
                set_community(out, n);
            }
            for _ in 0..1 + rng.below(4) {
                mutate(rng, seeds, out);
            }
        }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], d: &mut Vec<u8>) {
    let len = d.len();
    match rng.below(9) {
        0 | 1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                let bit = rng.below(8);
                if let Some(b) = d.get_mut(i) {
                    *b ^= 1 << bit;
                }
            }
        }
        2 => {
            let i = rng.below(len);
            let v = rng.byte();
            if let Some(b) = d.get_mut(i) {
                *b = v;
            }
        }
        3 => d.truncate(rng.below(len + 1)),
        4 => {
            for _ in 0..rng.below(300) {
                d.push(rng.byte());
            }
        }
        5 => {
            let v = [0u8, 1, 255][rng.below(3)];
            if let Some(b) = d.get_mut(1) {
                *b = v;
            }
        }
        6 => {
            let (a, b) = (rng.byte(), rng.byte());
            if let Some(w) = d.get_mut(2..4) {
                w.copy_from_slice(&[a, b]);
            }
        }
        7 => {
            if let Some(other) = seeds.get(rng.below(seeds.len())) {
                let at = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(at);
                d.extend_from_slice(other.get(from..).unwrap_or_default());
            }
        }
        _ => {
            let a = rng.below(len);
            let b = (a + rng.below(64)).min(len);
            let v = if rng.below(2) == 0 { 0 } else { 0xff };
            if let Some(r) = d.get_mut(a..b) {
                r.fill(v);
            }
        }
    }
    d.truncate(2100);
}

/// Garbage for a management port: random bytes or mutated requests with wrong passwords.
/// Never starts with `stop` (the legacy text command that stops an edge without password).
pub fn mgmt_garbage(rng: &mut Rng, out: &mut Vec<u8>) {
    const REQS: [&[u8]; 10] = [
        b"r 1 edges",
        b"r 2 supernodes",
        b"w 3:1:wrong stop",
        b"w 4 verbose 9",
        b"r 5 packetstats",
        b"s 6 peer",
        b"r 7:1:n2n help",
        b"w 8:1:bad reload_communities",
        b"r 9 timestamps",
        b"help",
    ];
    loop {
        out.clear();
        if rng.below(3) == 0 {
            let len = rng.below(600);
            out.resize(len, 0);
            rng.fill(out);
        } else {
            out.extend_from_slice(REQS[rng.below(REQS.len())]);
            for _ in 0..rng.below(4) {
                let i = rng.below(out.len() + 1);
                match rng.below(3) {
                    0 => out.insert(i, rng.byte()),
                    1 => {
                        if i < out.len() {
                            out.remove(i);
                        }
                    }
                    _ => {
                        let v = rng.byte();
                        if let Some(b) = out.get_mut(i) {
                            *b = v;
                        }
                    }
                }
            }
        }
        if !out.to_ascii_lowercase().starts_with(b"stop") {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_d_parsing_and_gaps() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\
            [100.0] 64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.1 ms\n\
            [100.1] 64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=0.1 ms\n\
            [100.3] no answer yet for icmp_seq=3\n\
            [101.6] 64 bytes from 10.0.0.2: icmp_seq=17 ttl=64 time=0.1 ms\n\
            garbage [x] icmp_seq=\n";
        let t = parse_ping_d(out);
        assert_eq!(t.replies, vec![(1, 100.0), (2, 100.1), (17, 101.6)]);
        assert_eq!(t.max_seq, 17);
        assert!((t.max_gap(99.95, 101.7) - 1.5).abs() < 1e-9);
        assert!((t.max_gap(101.6, 104.0) - 2.4).abs() < 1e-9);
        assert_eq!(t.first_reply_after(100.05), Some(100.1));
        assert_eq!(t.last_reply_before(101.0), Some(100.1));
        assert_eq!(t.replies_between(100.0, 100.1), 2);
    }

    #[test]
    fn args_and_macs() {
        assert_eq!(mac(1), "02:00:00:00:00:01");
        assert_eq!(mac(0x1234), "02:00:00:00:12:34");
        let a = EdgeOpts::new("rocks", "198.18.0.254:7654")
            .supernode("198.18.0.253:7654")
            .addr("10.200.0.1/24")
            .mac(mac(1))
            .port(50001)
            .routing()
            .multicast()
            .no_p2p()
            .interval(5)
            .args()
            .join(" ");
        assert_eq!(
            a,
            "-f -c rocks -k s3cret -A3 -l 198.18.0.254:7654 -l 198.18.0.253:7654 \
             -a 10.200.0.1/24 -d n2n0 -m 02:00:00:00:00:01 -p 50001 -t 5644 -r -E -S1 -i 5"
        );
        let s = SupernodeOpts::default()
            .args(Some(Path::new("/x/list")))
            .join(" ");
        assert_eq!(s, "-f -p 7654 -t 5645 -c /x/list");
    }

    #[test]
    fn hostile_generator_is_bounded_and_varied() {
        let seeds = vec![
            vec![3u8, 2, 0, 3, b'r', b'o', b'c', b'k', b's'],
            vec![0u8; 60],
        ];
        let mut rng = Rng(42);
        let mut out = Vec::new();
        let mut lens = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            hostile_datagram(&mut rng, &seeds, &[b"field", b"x"], &mut out);
            assert!(out.len() <= 2100);
            lens.insert(out.len());
            mgmt_garbage(&mut rng, &mut out);
            assert!(!out.to_ascii_lowercase().starts_with(b"stop"));
        }
        assert!(lens.len() > 200, "{}", lens.len());
        assert_eq!(unhex("0a0B"), Some(vec![10, 11]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
