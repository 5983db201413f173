//! End-to-end throughput harness (`n2n-throughput`): one underlay switch with a supernode and
//! two edges in their own namespaces; raw veth baseline vs. the n2n tunnel (P2P and relayed) for
//! each cipher, in one run.
//!
//! Topology (all inside namespaces created here):
//!
//! ```text
//!   sn      198.18.0.254  supernode -p 7654 -t 5645
//!   edge_a  198.18.0.1    edge ... -a 10.200.0.1/24 -p 50001 -t 5644   (iperf3 / ping client)
//!   edge_b  198.18.0.2    edge ... -a 10.200.0.2/24 -p 50002 -t 5644   (iperf3 server)
//! ```
//!
//! Each tunnel row starts a fresh supernode and fresh edges (so CPU and peak RSS belong to that
//! row). Relayed rows use `-S1` on both edges *and* an nftables table in both edge namespaces
//! that drops UDP arriving from the other edge's address; P2P rows install the same table
//! without the drop. Both count the UDP packets each edge sends straight to the other
//! (reported as `direct_udp_packets`).
//!
//! Everything is bounded in time; every process is started through [`Netns::spawn`] and killed
//! by PID when its [`Proc`] (or namespace) drops.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    Bridge, Error, Lab, Netns, Proc, Result, iperf3_client, iperf3_server, mgmt_query_timeout,
    mgmt_rows, ping, ping_every, target_dir, wait_until, workspace_dir,
};

/// Underlay address of the supernode namespace.
pub const SN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// Underlay address of edge A (the client side of every measurement).
pub const EDGE_A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Underlay address of edge B (the server side).
pub const EDGE_B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Overlay (TAP) address of edge A.
pub const OVERLAY_A: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
/// Overlay (TAP) address of edge B.
pub const OVERLAY_B: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
/// Edge A's address on the floor forwarder's TAP ([`crate::tapfwd`]).
pub const FWD_A: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// Edge B's address on the floor forwarder's TAP.
pub const FWD_B: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
/// The floor forwarder's TAP device and UDP port.
pub const FWD_DEV: &str = "tapfwd0";
/// UDP port of the floor forwarder on both sides.
pub const FWD_PORT: u16 = 6000;
/// TAP MTU of the floor forwarder: its datagrams (frame + 28) fit the 1500-byte underlay.
pub const FWD_MTU: &str = "1400";
/// Echo requests per second of the second ("busy") RTT measurement.
pub const BUSY_PING_HZ: u32 = 200;
/// Supernode UDP port.
pub const SN_PORT: u16 = 7654;
/// Supernode management port (inside its namespace).
pub const SN_MGMT_PORT: u16 = 5645;
/// Edge management port (inside each edge namespace).
pub const EDGE_MGMT_PORT: u16 = 5644;
/// iperf3 server port on edge B.
pub const IPERF_PORT: u16 = 5201;
/// Community name used by the edges.
pub const COMMUNITY: &str = "rocks";
/// Key used by every cipher but `null`.
pub const KEY: &str = "s3cret";
/// TAP device name of the edges (`-d`).
pub const TAP_DEV: &str = "n2n0";
/// Name of the nftables table the harness installs in the edge namespaces.
pub const NFT_TABLE: &str = "n2nperf";
/// Ciphers measured when `--ciphers` is not given.
pub const DEFAULT_CIPHERS: &str = "null,aes,chacha20,aes-gcm,chacha20-poly1305";
/// Ciphers measured with `--quick`.
pub const QUICK_CIPHERS: &str = "null,aes";

/// Bound of the release build of `edge` and `supernode`.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);

// ------------------------------------------------------------------------------------------
// Interruption

static STOP: AtomicBool = AtomicBool::new(false);

/// True once SIGINT/SIGTERM/SIGHUP arrived (after [`stop_on_signals`]); the measurement loops
/// then stop at the next step and everything is cleaned up through the normal drop path.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (call it first thing in `main`,
/// before any other thread exists, so every thread inherits the mask) and starts a thread that
/// waits for them: the first one sets [`stop_requested`], a second one exits immediately
/// (leftover namespaces are then swept by the next run). Child processes start with an empty
/// signal mask (std resets it), so a terminal's Ctrl-C still reaches iperf3 and the edges.
pub fn stop_on_signals() -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| Error::Other(format!("blocking signals: {e}")))?;
    thread::spawn(move || {
        let mut seen = 0u32;
        while let Ok(sig) = set.wait() {
            seen += 1;
            if seen == 1 {
                eprintln!("n2n-throughput: {sig} received: stopping and cleaning up");
                STOP.store(true, Ordering::Relaxed);
            } else {
                eprintln!(
                    "n2n-throughput: {sig} again: exiting now (namespaces are swept by the next run)"
                );
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

fn check_stop() -> Result<()> {
    if stop_requested() {
        Err(Error::Other("interrupted".into()))
    } else {
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Configuration

/// One payload cipher of the edge (`-A<id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfCipher {
    /// Name used on the harness command line and in the report.
    pub name: &'static str,
    /// The number after the edge's `-A`.
    pub id: u8,
}

/// Every cipher the edge knows, by harness name.
pub const CIPHERS: [PerfCipher; 7] = [
    PerfCipher {
        name: "null",
        id: 1,
    },
    PerfCipher {
        name: "twofish",
        id: 2,
    },
    PerfCipher { name: "aes", id: 3 },
    PerfCipher {
        name: "chacha20",
        id: 4,
    },
    PerfCipher {
        name: "speck",
        id: 5,
    },
    PerfCipher {
        name: "chacha20-poly1305",
        id: 6,
    },
    PerfCipher {
        name: "aes-gcm",
        id: 7,
    },
];

/// Parses a comma-separated cipher list (`"null,aes"`); names are case-insensitive, duplicates
/// are dropped, the order is kept.
pub fn parse_ciphers(list: &str) -> std::result::Result<Vec<PerfCipher>, String> {
    let mut out: Vec<PerfCipher> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let lower = name.to_ascii_lowercase();
        let c = CIPHERS.iter().find(|c| c.name == lower).ok_or_else(|| {
            let known: Vec<&str> = CIPHERS.iter().map(|c| c.name).collect();
            format!("unknown cipher `{name}` (known: {})", known.join(","))
        })?;
        if !out.contains(c) {
            out.push(*c);
        }
    }
    if out.is_empty() {
        return Err("empty cipher list".into());
    }
    Ok(out)
}

/// How the two edges reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct edge-to-edge UDP after the supernode introduced them.
    P2p,
    /// Everything through the supernode (`-S1` + nftables drop between the edges).
    Relayed,
}

impl Mode {
    /// `"p2p"` / `"relayed"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::P2p => "p2p",
            Mode::Relayed => "relayed",
        }
    }
}

/// Harness options (see [`USAGE`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PerfConfig {
    /// Runs per measurement (median reported).
    pub runs: u32,
    /// Seconds per iperf3 run.
    pub seconds: u32,
    /// Ciphers measured, each P2P and relayed.
    pub ciphers: Vec<PerfCipher>,
    /// `--quick` was given.
    pub quick: bool,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Only the raw veth baseline (no n2n binaries needed).
    pub baseline_only: bool,
    /// Bound for the tunnel to come up.
    pub up_timeout: Duration,
    /// UDP payload length of the packets/s test.
    pub udp_len: u16,
    /// UDP target rate in Mbit/s; 0 = unlimited (`-b 0`).
    pub udp_mbps: u32,
    /// Echo requests per RTT measurement (0.2 s apart).
    pub ping_count: u32,
    /// `--ab DIR`: the previous `edge` and `supernode` in DIR, measured row by row
    /// interleaved with the binaries under test.
    pub ab: Option<PathBuf>,
    /// `--threads LIST`: the edges' `--threads` values measured (default `[1]`: the option
    /// is not passed).
    pub threads: Vec<usize>,
}

impl Default for PerfConfig {
    fn default() -> Self {
        PerfConfig {
            runs: 3,
            seconds: 5,
            ciphers: parse_ciphers(DEFAULT_CIPHERS).unwrap_or_default(),
            quick: false,
            json: None,
            baseline_only: false,
            up_timeout: Duration::from_secs(20),
            udp_len: 64,
            udp_mbps: 0,
            ping_count: 20,
            ab: None,
            threads: vec![1],
        }
    }
}

/// Command-line help of `n2n-throughput`.
pub const USAGE: &str = "\
n2n-throughput: end-to-end throughput of the n2n tunnel vs. a raw veth, in network namespaces

usage (as root):
  cargo run --release -p n2n-tests --bin n2n-throughput -- [options]

options:
  --runs N            runs per measurement, median reported (default 3; --quick: 1)
  --seconds S         seconds per iperf3 run (default 5; --quick: 1)
  --ciphers LIST      comma-separated: null,twofish,aes,chacha20,speck,chacha20-poly1305,aes-gcm
                      (default null,aes,chacha20,aes-gcm,chacha20-poly1305; --quick: null,aes)
  --json FILE         also write the report as JSON
  --quick             smoke run: 1 run, 1 s, null + aes, 5 pings
  --baseline-only     only the raw veth baseline (no n2n binaries)
  --up-timeout S      seconds to wait for the tunnel to come up (default 20)
  --udp-len BYTES     UDP payload of the packets/s test (default 64)
  --udp-rate MBITS    UDP target rate, 0 = unlimited as in iperf3 -b 0 (default 0)
  --pings N           echo requests per RTT measurement (default 20; --quick: 5)
  --ab DIR            A/B: DIR/edge and DIR/supernode (e.g. the previous release) are measured
                      too, each row old then new, interleaved in one run
  --threads LIST      comma-separated edge --threads values, each measured as its own row
                      (e.g. 1,2; default: the option is not passed)
  -h, --help          this help

Binaries: $N2N_BIN_EDGE / $N2N_BIN_SUPERNODE if set, else `cargo build --release` of the
workspace's edge and supernode (skipped with N2N_E2E_NO_BUILD=1) and <target>/release/.
Exit status: 0 all rows measured, 1 some row failed (see its error), 2 usage or set-up error.
";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `--help`.
    Help,
    /// A measurement run.
    Run(PerfConfig),
}

fn num<T: std::str::FromStr>(opt: &str, v: Option<&String>) -> std::result::Result<T, String> {
    let v = v.ok_or_else(|| format!("{opt} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{opt}: `{v}` is not a valid number"))
}

impl PerfConfig {
    /// Parses the arguments after the program name. `--quick` sets its defaults; explicit
    /// `--runs`/`--seconds`/`--ciphers`/`--pings` win regardless of the order.
    pub fn parse_args(args: &[String]) -> std::result::Result<Invocation, String> {
        let mut c = PerfConfig::default();
        let (mut runs, mut secs, mut ciphers, mut pings) = (None, None, None, None);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (opt, inline) = match a.split_once('=') {
                Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| it.next().cloned());
            match opt {
                "-h" | "--help" => return Ok(Invocation::Help),
                "--quick" => c.quick = true,
                "--baseline-only" => c.baseline_only = true,
                "--runs" => runs = Some(num::<u32>(opt, value().as_ref())?),
                "--seconds" => secs = Some(num::<u32>(opt, value().as_ref())?),
                "--pings" => pings = Some(num::<u32>(opt, value().as_ref())?),
                "--ciphers" => {
                    ciphers = Some(parse_ciphers(&value().ok_or("--ciphers needs a value")?)?);
                }
                "--json" => c.json = Some(PathBuf::from(value().ok_or("--json needs a file")?)),
                "--up-timeout" => {
                    c.up_timeout = Duration::from_secs(num::<u64>(opt, value().as_ref())?);
                }
                "--udp-len" => c.udp_len = num(opt, value().as_ref())?,
                "--udp-rate" => c.udp_mbps = num(opt, value().as_ref())?,
                "--ab" => c.ab = Some(PathBuf::from(value().ok_or("--ab needs a directory")?)),
                "--threads" => {
                    let list = value().ok_or("--threads needs a list")?;
                    c.threads = list
                        .split(',')
                        .map(|t| match t.trim().parse::<usize>() {
                            Ok(n) if (1..=64).contains(&n) => Ok(n),
                            _ => Err(format!("--threads: `{t}` is not a count 1..=64")),
                        })
                        .collect::<std::result::Result<_, _>>()?;
                }
                other => return Err(format!("unknown argument `{other}` (see --help)")),
            }
        }
        if c.quick {
            c.runs = 1;
            c.seconds = 1;
            c.ping_count = 5;
            c.ciphers = parse_ciphers(QUICK_CIPHERS)?;
        }
        c.runs = runs.unwrap_or(c.runs);
        c.seconds = secs.unwrap_or(c.seconds);
        c.ping_count = pings.unwrap_or(c.ping_count);
        if let Some(list) = ciphers {
            c.ciphers = list;
        }
        if !(1..=100).contains(&c.runs) {
            return Err("--runs must be 1..=100".into());
        }
        if !(1..=600).contains(&c.seconds) {
            return Err("--seconds must be 1..=600".into());
        }
        if !(1..=1000).contains(&c.ping_count) {
            return Err("--pings must be 1..=1000".into());
        }
        if !(16..=1400).contains(&c.udp_len) {
            return Err("--udp-len must be 16..=1400".into());
        }
        if c.up_timeout.is_zero() || c.up_timeout > Duration::from_secs(600) {
            return Err("--up-timeout must be 1..=600".into());
        }
        Ok(Invocation::Run(c))
    }
}

// ------------------------------------------------------------------------------------------
// /proc parsing

/// utime + stime (clock ticks) from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` (peak resident set size) in KiB from the text of `/proc/<pid>/status`.
pub fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Value of counter `field` in protocol section `proto` (e.g. `"Udp"`, `"RcvbufErrors"`) of
/// `/proc/net/snmp` text (a header line and a value line per protocol).
pub fn parse_snmp(text: &str, proto: &str, field: &str) -> Option<u64> {
    let prefix = format!("{proto}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let header = lines.next()?;
    let values = lines.next()?;
    let idx = header.split_whitespace().position(|h| h == field)?;
    values.split_whitespace().nth(idx)?.parse().ok()
}

fn read_proc(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(crate::io_err(format!("reading {path}")))
}

/// CPU time (utime + stime, clock ticks) of process `pid`.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = read_proc(&path)?;
    match parse_stat_ticks(&text) {
        Some(v) => Ok(v),
        None => Err(Error::Parse {
            what: path,
            detail: text,
        }),
    }
}

/// Peak RSS (`VmHWM`, KiB) of process `pid`.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = read_proc(&path)?;
    match parse_vm_hwm_kib(&text) {
        Some(v) => Ok(v),
        None => Err(Error::Parse {
            what: path,
            detail: text,
        }),
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, else Linux's 100).
/// `(busy, total)` jiffies of all CPUs from the first line of `/proc/stat` (idle and iowait
/// count as not busy).
pub fn parse_proc_stat_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total.checked_sub(idle)?, total))
}

/// Busy share of all CPUs together between two [`parse_proc_stat_cpu`] snapshots, in % of
/// one CPU (so 2 saturated CPUs = 200).
pub fn host_busy_pct(before: (u64, u64), after: (u64, u64), cpus: usize) -> Option<f64> {
    let busy = after.0.checked_sub(before.0)? as f64;
    let total = after.1.checked_sub(before.1)? as f64;
    (total > 0.0).then(|| busy / total * 100.0 * cpus as f64)
}

fn host_cpu_snapshot() -> Option<(u64, u64)> {
    parse_proc_stat_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
}

pub fn clock_ticks_per_sec() -> u64 {
    crate::install::program("getconf")
        .ok()
        .and_then(|mut c| c.arg("CLK_TCK").stderr(Stdio::null()).output().ok())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// The UDP `RcvbufErrors` counter of namespace `ns` (its `/proc/net/snmp`).
pub fn udp_rcvbuf_errors(ns: &Netns) -> Result<u64> {
    let text = ns.exec(&["cat", "/proc/net/snmp"])?;
    parse_snmp(&text, "Udp", "RcvbufErrors").ok_or_else(|| Error::Parse {
        what: format!("Udp RcvbufErrors in /proc/net/snmp of {}", ns.name()),
        detail: text,
    })
}

/// CPU usage of a set of processes between two instants.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    start: Instant,
    ticks: Vec<Option<u64>>,
    pids: Vec<u32>,
}

impl CpuMeter {
    /// Samples the CPU time of `pids` now.
    pub fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            start: Instant::now(),
            ticks: pids.iter().map(|&p| cpu_ticks(p).ok()).collect(),
            pids: pids.to_vec(),
        }
    }

    /// CPU % of each process since [`CpuMeter::start`] (100 = one core busy all the time);
    /// `None` for a process whose `/proc` entry could not be read.
    pub fn stop(&self, ticks_per_sec: u64) -> Vec<Option<f64>> {
        let wall = self.start.elapsed().as_secs_f64().max(1e-3);
        self.pids
            .iter()
            .zip(&self.ticks)
            .map(|(&pid, before)| {
                let (before, after) = ((*before)?, cpu_ticks(pid).ok()?);
                let secs = after.saturating_sub(before) as f64 / ticks_per_sec as f64;
                Some(100.0 * secs / wall)
            })
            .collect()
    }
}

// ------------------------------------------------------------------------------------------
// Statistics and iperf3

/// Median of `v` (mean of the two middle values for an even count); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => s.get(n / 2).copied(),
        _ => Some((s.get(n / 2 - 1)? + s.get(n / 2)?) / 2.0),
    }
}

/// The `q` quantile of `v` by nearest rank (`q` = 0.1: the 10th percentile, the value a tenth
/// of the samples are at or below); `None` when empty.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return None;
    }
    // Nearest rank: ceil(q * n), 1-based.
    let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    s.get(rank - 1).copied()
}

/// Small-packet UDP result of one iperf3 run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UdpRun {
    /// Datagrams received per second (receiver's view).
    pub rx_pps: f64,
    /// Datagrams sent per second.
    pub tx_pps: f64,
    /// Lost datagrams in percent (receiver's view).
    pub loss_pct: f64,
}

/// Parses the JSON of an `iperf3 -J -u` client run.
pub fn parse_iperf3_udp(json: &str) -> Result<UdpRun> {
    let v: Value = serde_json::from_str(json).map_err(|e| Error::Parse {
        what: "iperf3 UDP JSON".into(),
        detail: format!(
            "{e}: {}",
            json.get(..json.len().min(400)).unwrap_or_default()
        ),
    })?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(Error::Other(format!("iperf3: {err}")));
    }
    let end = v.get("end");
    let sec = |name: &str| end.and_then(|e| e.get(name)).filter(|s| s.is_object());
    let get = |s: &Value, k: &str| s.get(k).and_then(Value::as_f64);
    let rx = sec("sum_received")
        .or_else(|| sec("sum"))
        .ok_or_else(|| Error::Parse {
            what: "iperf3 UDP JSON".into(),
            detail: "no end.sum_received / end.sum".into(),
        })?;
    let field = |s: &Value, k: &str| {
        get(s, k).ok_or_else(|| Error::Parse {
            what: "iperf3 UDP JSON".into(),
            detail: format!("no `{k}` in the receiver summary"),
        })
    };
    let packets = field(rx, "packets")?;
    let lost = field(rx, "lost_packets")?.max(0.0);
    let secs = field(rx, "seconds")?;
    if secs <= 0.0 {
        return Err(Error::Parse {
            what: "iperf3 UDP JSON".into(),
            detail: "zero duration".into(),
        });
    }
    let tx = sec("sum_sent").unwrap_or(rx);
    let tx_secs = get(tx, "seconds").filter(|s| *s > 0.0).unwrap_or(secs);
    Ok(UdpRun {
        rx_pps: (packets - lost).max(0.0) / secs,
        tx_pps: get(tx, "packets").unwrap_or(packets) / tx_secs,
        loss_pct: get(rx, "lost_percent").unwrap_or(if packets > 0.0 {
            100.0 * lost / packets
        } else {
            100.0
        }),
    })
}

/// One `iperf3 -u -l <len> -b <rate>M` run (rate 0 = unlimited) from `ns` to `server`.
pub fn iperf3_udp(
    ns: &Netns,
    server: IpAddr,
    port: u16,
    secs: u32,
    len: u16,
    mbps: u32,
) -> Result<UdpRun> {
    let (p, t, s, l) = (
        port.to_string(),
        secs.to_string(),
        server.to_string(),
        len.to_string(),
    );
    let rate = if mbps == 0 {
        "0".to_string()
    } else {
        format!("{mbps}M")
    };
    let argv = [
        "iperf3",
        "-J",
        "-c",
        &s,
        "-p",
        &p,
        "-t",
        &t,
        "-u",
        "-l",
        &l,
        "-b",
        &rate,
        "--connect-timeout",
        "2000",
    ];
    let timeout = Duration::from_secs(u64::from(secs) + 20);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_ok, out, err) = ns.exec_status(&argv, timeout)?;
        match parse_iperf3_udp(&out) {
            Ok(r) => return Ok(r),
            Err(_) if Instant::now() < deadline && out.contains("unable to connect") => {
                thread::sleep(Duration::from_millis(300));
            }
            Err(e) => return Err(Error::Other(format!("{e}; stderr: {}", err.trim()))),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Binaries

/// The n2n binaries under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// Path of `edge`.
    pub edge: PathBuf,
    /// Path of `supernode`.
    pub supernode: PathBuf,
    /// `--threads` for the edges (`None`: not passed, e.g. older binaries).
    pub threads: Option<usize>,
}

fn env_bin(name: &str) -> Option<PathBuf> {
    std::env::var_os(format!("N2N_BIN_{}", name.to_ascii_uppercase())).map(PathBuf::from)
}

/// Release builds of `edge` and `supernode`: `$N2N_BIN_EDGE` / `$N2N_BIN_SUPERNODE` when set,
/// otherwise `cargo build --release --workspace --bin edge --bin supernode` (progress on
/// stderr, bounded; skipped with `N2N_E2E_NO_BUILD=1`) and `<target>/release/<name>`.
pub fn release_binaries() -> Result<Binaries> {
    let (e, s) = (env_bin("edge"), env_bin("supernode"));
    let need_build = e.is_none() || s.is_none();
    if need_build && std::env::var("N2N_E2E_NO_BUILD").map_or(true, |v| v != "1") {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_dir())
            .args(["build", "--release", "--workspace"])
            .args(["--bin", "edge", "--bin", "supernode"])
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("CARGO_MAKEFLAGS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        eprintln!("n2n-throughput: cargo build --release --bin edge --bin supernode");
        let mut child = cmd
            .spawn()
            .map_err(crate::io_err("spawning cargo build --release"))?;
        let status = crate::cmd::wait_child(&mut child, BUILD_TIMEOUT)
            .map_err(crate::io_err("waiting for cargo build"))?;
        match status {
            Some(st) if st.success() => {}
            Some(st) => {
                return Err(Error::Other(format!("cargo build --release failed ({st})")));
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    what: "cargo build --release".into(),
                    after: BUILD_TIMEOUT,
                });
            }
        }
    }
    let release = target_dir().join("release");
    let pick = |env: Option<PathBuf>, name: &str| -> Result<PathBuf> {
        let p = env.unwrap_or_else(|| release.join(name));
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Other(format!(
                "binary `{name}` not found at {}",
                p.display()
            )))
        }
    };
    Ok(Binaries {
        edge: pick(e, "edge")?,
        supernode: pick(s, "supernode")?,
        threads: None,
    })
}

// ------------------------------------------------------------------------------------------
// Topology

/// Which edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Edge A (198.18.0.1, overlay 10.200.0.1): client of every measurement.
    A,
    /// Edge B (198.18.0.2, overlay 10.200.0.2): server.
    B,
}

impl Side {
    fn peer(self) -> Ipv4Addr {
        match self {
            Side::A => EDGE_B_IP,
            Side::B => EDGE_A_IP,
        }
    }
    fn overlay(self) -> Ipv4Addr {
        match self {
            Side::A => OVERLAY_A,
            Side::B => OVERLAY_B,
        }
    }
    fn index(self) -> u8 {
        match self {
            Side::A => 1,
            Side::B => 2,
        }
    }
}

/// Edge command line (after the program) for `side`, `cipher` and `mode`, as in
/// `edge -f -c rocks -k s3cret -A3 -l 198.18.0.254:7654 -a 10.200.0.1/24 -d n2n0
/// -m 02:00:00:00:00:01 -p 50001 -t 5644` (+ `-S1` when relayed; no `-k` for `null`).
pub fn edge_args(side: Side, cipher: PerfCipher, mode: Mode) -> Vec<String> {
    let i = side.index();
    let mut v: Vec<String> = vec!["-f".into(), "-c".into(), COMMUNITY.into()];
    if cipher.id != 1 {
        v.extend(["-k".into(), KEY.into()]);
    }
    v.push(format!("-A{}", cipher.id));
    v.extend([
        "-l".into(),
        format!("{SN_IP}:{SN_PORT}"),
        "-a".into(),
        format!("{}/24", side.overlay()),
        "-d".into(),
        TAP_DEV.into(),
        "-m".into(),
        format!("02:00:00:00:00:{i:02x}"),
        "-p".into(),
        format!("{}", 50000 + u16::from(i)),
        "-t".into(),
        EDGE_MGMT_PORT.to_string(),
    ]);
    if mode == Mode::Relayed {
        v.push("-S1".into());
    }
    v
}

/// Supernode command line (after the program): `-f -p 7654 -t 5645`.
pub fn supernode_args() -> Vec<String> {
    [
        "-f",
        "-p",
        &SN_PORT.to_string(),
        "-t",
        &SN_MGMT_PORT.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// The harness topology: one underlay switch, supernode / edge A / edge B namespaces.
/// Dropping it kills everything started inside and deletes the namespaces.
#[derive(Debug)]
pub struct PerfLab {
    // Field order = drop order: hosts first, then the switch.
    /// Supernode namespace (198.18.0.254).
    pub sn: Netns,
    /// Edge A namespace (198.18.0.1).
    pub a: Netns,
    /// Edge B namespace (198.18.0.2).
    pub b: Netns,
    /// The underlay switch.
    pub wan: Bridge,
    lab: Lab,
}

impl PerfLab {
    /// Builds the topology for `test` (namespace names and log directory).
    pub fn new(test: &str) -> Result<PerfLab> {
        let lab = Lab::new(test);
        let wan = lab.bridge("wan")?;
        let sn = lab.host_on("sn", &wan, &format!("{SN_IP}/24"))?;
        let a = lab.host_on("edge_a", &wan, &format!("{EDGE_A_IP}/24"))?;
        let b = lab.host_on("edge_b", &wan, &format!("{EDGE_B_IP}/24"))?;
        Ok(PerfLab { sn, a, b, wan, lab })
    }

    /// Where process logs go.
    pub fn log_dir(&self) -> &Path {
        self.lab.log_dir()
    }

    fn edge_ns(&self, side: Side) -> &Netns {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// Installs table `inet n2nperf` in both edge namespaces: every UDP packet sent to the other
    /// edge's address is counted (output hook), except the floor forwarder's (port
    /// [`FWD_PORT`], pinged beside the P2P rows); when `drop` (relayed rows), every UDP packet
    /// arriving from it is dropped (input hook). Dropping on input, not output, keeps the
    /// senders free of `EPERM` errors, like a firewall between the edges would. Replaces an
    /// earlier table.
    pub fn install_direct_filter(&self, drop: bool) -> Result<()> {
        let verdict = if drop { "drop" } else { "accept" };
        for side in [Side::A, Side::B] {
            let ns = self.edge_ns(side);
            let _ = ns.exec_status(
                &["nft", "delete", "table", "inet", NFT_TABLE],
                crate::CMD_TIMEOUT,
            );
            let peer = side.peer();
            let rules = format!(
                "table inet {NFT_TABLE} {{\n\
                 chain out {{ type filter hook output priority 0; policy accept;\n\
                   ip daddr {peer} udp dport != {FWD_PORT} counter accept\n }}\n\
                 chain in {{ type filter hook input priority 0; policy accept;\n\
                   ip saddr {peer} meta l4proto udp counter {verdict}\n }}\n}}\n"
            );
            let path = self.log_dir().join(format!(
                "nft-{}-{}.conf",
                ns.role(),
                if drop { "drop" } else { "count" }
            ));
            std::fs::write(&path, rules).map_err(crate::io_err(format!("writing {path:?}")))?;
            let p = path.to_string_lossy().into_owned();
            ns.exec(&["nft", "-f", &p])?;
        }
        Ok(())
    }

    /// Removes the table of [`PerfLab::install_direct_filter`] (no error when absent).
    pub fn remove_direct_filter(&self) {
        for ns in [&self.a, &self.b] {
            let _ = ns.exec_status(
                &["nft", "delete", "table", "inet", NFT_TABLE],
                crate::CMD_TIMEOUT,
            );
        }
    }

    /// Direct edge-to-edge UDP packets *sent* (sum of both edges' output counters).
    pub fn direct_udp_packets(&self) -> Result<u64> {
        let mut total = 0;
        for ns in [&self.a, &self.b] {
            let out = ns.exec(&["nft", "list", "chain", "inet", NFT_TABLE, "out"])?;
            total += parse_nft_counter_packets(&out).ok_or_else(|| Error::Parse {
                what: format!("nft counter in {}", ns.name()),
                detail: out.clone(),
            })?;
        }
        Ok(total)
    }

    /// Starts the supernode and both edges (`cipher`, `mode`) and waits up to `up_timeout` for
    /// the tunnel: ping over the overlay from A to B. Fails early, with the process's stderr,
    /// when one of them exits; fails with the management view on timeout. For P2P also waits
    /// (bounded, best effort) until edge A lists B as a `p2p` peer; notes are returned in
    /// [`Tunnel::notes`].
    pub fn start_tunnel(
        &self,
        bins: &Binaries,
        cipher: PerfCipher,
        mode: Mode,
        up_timeout: Duration,
    ) -> Result<Tunnel> {
        let label = format!("{}-{}", cipher.name, mode.name());
        // A TAP left over from an earlier row would answer the "is it up" ping by itself.
        for ns in [&self.a, &self.b] {
            if ns.ip(&["link", "show", "dev", TAP_DEV]).is_ok() {
                ns.ip(&["link", "del", "dev", TAP_DEV])?;
            }
        }
        let sn_bin = bins.supernode.to_string_lossy().into_owned();
        let mut argv = vec![sn_bin];
        argv.extend(supernode_args());
        let sn = spawn_clean(&self.sn, &format!("supernode-{label}"), &argv)?;
        let mut tunnel = Tunnel {
            supernode: sn,
            edge_a: None,
            edge_b: None,
            notes: Vec::new(),
        };
        // The supernode should answer its management port before the edges register.
        let sn_mgmt = wait_until(Duration::from_secs(3), Duration::from_millis(100), || {
            !tunnel.supernode.is_running()
                || mgmt_query_timeout(&self.sn, SN_MGMT_PORT, "r 1 edges", MGMT_POLL)
                    .is_ok_and(|l| !l.is_empty())
        });
        tunnel.check_alive()?;
        if !sn_mgmt {
            tunnel
                .notes
                .push("supernode management port did not answer within 3 s".into());
        }
        for side in [Side::A, Side::B] {
            let mut argv = vec![bins.edge.to_string_lossy().into_owned()];
            argv.extend(edge_args(side, cipher, mode));
            if let Some(t) = bins.threads {
                argv.extend(["--threads".to_owned(), t.to_string()]);
            }
            let p = spawn_clean(self.edge_ns(side), &format!("edge-{label}"), &argv)?;
            match side {
                Side::A => tunnel.edge_a = Some(p),
                Side::B => tunnel.edge_b = Some(p),
            }
        }
        let t0 = Instant::now();
        let deadline = t0 + up_timeout;
        let dst = OVERLAY_B.to_string();
        let mut up = false;
        while Instant::now() < deadline {
            check_stop()?;
            tunnel.check_alive()?;
            if ping(&self.a, &dst, 56, 1, false).is_ok_and(|r| r.received == 1) {
                up = true;
                break;
            }
            thread::sleep(Duration::from_millis(200));
        }
        tunnel.check_alive()?;
        if !up {
            return Err(Error::Timeout {
                what: format!(
                    "tunnel {label}: no ping reply from {OVERLAY_B} via the overlay ({})",
                    self.mgmt_view()
                ),
                after: up_timeout,
            });
        }
        tunnel.notes.push(format!(
            "tunnel up after {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        if mode == Mode::P2p {
            // Best effort: only while edge A's management lists peers that are not P2P yet.
            let deadline = Instant::now() + Duration::from_secs(10);
            let note = loop {
                let modes = peer_modes(&self.a);
                match modes {
                    None => {
                        break Some(
                            "edge A management gave no peer list; P2P state unknown".into(),
                        );
                    }
                    Some(m) if m.iter().any(|x| x == "p2p") => break None,
                    Some(m) if Instant::now() >= deadline => {
                        break Some(format!("edge A peer mode(s) {m:?} after 10 s: not p2p"));
                    }
                    Some(_) => thread::sleep(Duration::from_millis(300)),
                }
            };
            tunnel.notes.extend(note);
        }
        Ok(tunnel)
    }

    /// One line on what the management ports say (for error messages).
    fn mgmt_view(&self) -> String {
        let rows = |ns: &Netns, port, req| match mgmt_query_timeout(ns, port, req, MGMT_POLL) {
            Ok(l) if l.is_empty() => "no reply".to_string(),
            Ok(l) => format!("{} row(s)", mgmt_rows(&l).len()),
            Err(e) => e.to_string(),
        };
        format!(
            "supernode `r edges`: {}; edge A `r supernodes`: {}; edge B `r supernodes`: {}; \
             logs in {}",
            rows(&self.sn, SN_MGMT_PORT, "r 1 edges"),
            rows(&self.a, EDGE_MGMT_PORT, "r 1 supernodes"),
            rows(&self.b, EDGE_MGMT_PORT, "r 1 supernodes"),
            self.log_dir().display()
        )
    }
}

/// Bound of one management query while polling.
const MGMT_POLL: Duration = Duration::from_millis(700);

/// `mode` of each row of the edge's `r 1 edges` (C n2n: `p2p` or `pSp`); `None` when the
/// management port does not answer.
fn peer_modes(ns: &Netns) -> Option<Vec<String>> {
    let lines = mgmt_query_timeout(ns, EDGE_MGMT_PORT, "r 1 edges", MGMT_POLL).ok()?;
    if lines.is_empty() {
        return None;
    }
    Some(
        mgmt_rows(&lines)
            .iter()
            .filter_map(|r| r.get("mode").and_then(Value::as_str).map(String::from))
            .collect(),
    )
}

/// Sum of the `counter packets N` of an `nft list chain` output.
pub fn parse_nft_counter_packets(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut found = false;
    let mut w = text.split_whitespace();
    while let Some(x) = w.next() {
        if x == "counter" && w.next() == Some("packets") {
            total += w.next()?.parse::<u64>().ok()?;
            found = true;
        }
    }
    found.then_some(total)
}

/// `argv` inside `ns` with the key/password variables removed from the environment (so a
/// caller's `N2N_KEY` cannot change the cipher); `env` execs, so the PID is the program's.
fn spawn_clean(ns: &Netns, label: &str, argv: &[String]) -> Result<Proc> {
    let mut v: Vec<&str> = vec!["env", "-u", "N2N_KEY", "-u", "N2N_PASSWORD"];
    v.extend(argv.iter().map(String::as_str));
    ns.spawn(label, &v)
}

/// A running supernode + two edges (killed by PID on drop).
#[derive(Debug)]
pub struct Tunnel {
    /// The supernode.
    pub supernode: Proc,
    /// Edge A (None only while starting).
    pub edge_a: Option<Proc>,
    /// Edge B (None only while starting).
    pub edge_b: Option<Proc>,
    /// Observations made while starting (time to come up, P2P state).
    pub notes: Vec<String>,
}

impl Tunnel {
    fn procs(&self) -> Vec<(&'static str, &Proc)> {
        let mut v = vec![("supernode", &self.supernode)];
        if let Some(p) = &self.edge_a {
            v.push(("edge A", p));
        }
        if let Some(p) = &self.edge_b {
            v.push(("edge B", p));
        }
        v
    }

    /// Error (with the tail of its stderr) when a process has exited.
    pub fn check_alive(&self) -> Result<()> {
        for (who, p) in self.procs() {
            if let Some(st) = p.exit_status() {
                let err = p.stderr();
                let tail: Vec<&str> = err.lines().rev().take(6).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(Error::Other(format!(
                    "{who} exited ({st}) before/while measuring: {} [log {}]",
                    tail.join(" | "),
                    p.stderr_path().display()
                )));
            }
        }
        Ok(())
    }

    /// PIDs of edge A, edge B, supernode (in that order).
    pub fn pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = [&self.edge_a, &self.edge_b]
            .iter()
            .filter_map(|p| p.as_ref().map(Proc::pid))
            .collect();
        v.push(self.supernode.pid());
        v
    }
}

// ------------------------------------------------------------------------------------------
// Measurements

/// Per-process numbers: edge A, edge B, supernode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PerProc<T> {
    /// Edge A.
    pub edge_a: T,
    /// Edge B.
    pub edge_b: T,
    /// Supernode.
    pub supernode: T,
}

impl<T: Copy + Default> PerProc<T> {
    /// `[edge A, edge B, supernode]`; the supernode is optional (default when absent).
    fn from_vec(v: &[T]) -> Option<PerProc<T>> {
        Some(PerProc {
            edge_a: *v.first()?,
            edge_b: *v.get(1)?,
            supernode: v.get(2).copied().unwrap_or_default(),
        })
    }
}

/// One row of the report: the raw veth baseline or one cipher/mode through the tunnel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// `"raw veth"` or `"<cipher> <mode>"`.
    pub name: String,
    /// The cipher (None for the baseline).
    pub cipher: Option<PerfCipher>,
    /// The mode (None for the baseline).
    pub mode: Option<Mode>,
    /// TCP goodput of each run, Mbit/s (receiver's view).
    pub tcp_mbps: Vec<f64>,
    /// TCP retransmissions of each run.
    pub tcp_retransmits: Vec<u64>,
    /// Wall-clock seconds of all TCP runs together (what `cpu_pct` is a share of).
    pub tcp_elapsed_s: Option<f64>,
    /// Small-packet UDP runs.
    pub udp: Vec<UdpRun>,
    /// Average ping RTT (idle), ms.
    pub rtt_ms: Option<f64>,
    /// Median ping RTT (idle), ms.
    pub rtt_median_ms: Option<f64>,
    /// Each idle reply's RTT, ms.
    pub rtts_ms: Vec<f64>,
    /// P2P tunnel rows: the floor forwarder's idle RTTs, ms, pinged at the same time as the row's
    /// own idle pings (interleaved, half an interval apart), so that both see the same
    /// machine: the paired comparison the idle-RTT target is about. Empty: not measured.
    pub floor_rtts_ms: Vec<f64>,
    /// Average ping RTT at [`BUSY_PING_HZ`] echo requests per second (warm caches, CPUs not
    /// idle between packets), ms.
    pub rtt_busy_ms: Option<f64>,
    /// All CPUs of the host during the TCP runs, % of one CPU (200 = both of 2 CPUs busy).
    pub host_busy_pct: Option<f64>,
    /// Ping replies / requests.
    pub ping_received: Option<(u32, u32)>,
    /// CPU % during the TCP runs (tunnel rows only).
    pub cpu_pct: Option<PerProc<Option<f64>>>,
    /// Peak RSS (VmHWM) in KiB at the end of the row (tunnel rows only).
    pub peak_rss_kib: Option<PerProc<Option<u64>>>,
    /// UDP `RcvbufErrors` increase in each namespace during the TCP runs: only the n2n sockets
    /// receive UDP then, so these are datagrams the edges (supernode) were too slow to read.
    pub rcvbuf_errors_tcp: PerProc<Option<u64>>,
    /// The same during the UDP flood (includes iperf3's own receiving socket in edge B).
    pub rcvbuf_errors_udp: PerProc<Option<u64>>,
    /// Direct edge-to-edge UDP packets sent (tunnel rows only).
    pub direct_udp_packets: Option<u64>,
    /// Supernode's `forward` packet counter at the end (when its management reports it).
    pub sn_forward_pkts: Option<u64>,
    /// Observations.
    pub notes: Vec<String>,
    /// Why the row is incomplete.
    pub error: Option<String>,
}

impl Row {
    /// The idle RTT's median and 10th percentile minus the floor's, pinged in the same
    /// minutes (`None` without a paired floor measurement).
    pub fn vs_floor(&self) -> Option<(f64, f64)> {
        let (f, t) = (&self.floor_rtts_ms, &self.rtts_ms);
        Some((
            median(t)? - median(f)?,
            quantile(t, 0.1)? - quantile(f, 0.1)?,
        ))
    }

    /// Median TCP Mbit/s.
    pub fn tcp_median(&self) -> Option<f64> {
        median(&self.tcp_mbps)
    }
    /// Median received UDP packets/s.
    pub fn udp_pps_median(&self) -> Option<f64> {
        median(&self.udp.iter().map(|u| u.rx_pps).collect::<Vec<_>>())
    }
    /// Median UDP loss %.
    pub fn udp_loss_median(&self) -> Option<f64> {
        median(&self.udp.iter().map(|u| u.loss_pct).collect::<Vec<_>>())
    }
    /// Median TCP retransmissions per run.
    pub fn retransmits_median(&self) -> Option<f64> {
        median(
            &self
                .tcp_retransmits
                .iter()
                .map(|&r| r as f64)
                .collect::<Vec<_>>(),
        )
    }
    /// CPU-seconds each process spent per GB (10^9 bytes) of TCP goodput during the TCP
    /// runs: the cost figure that stays meaningful on a host with more cores.
    pub fn cpu_s_per_gb(&self, seconds_per_run: u32) -> Option<PerProc<Option<f64>>> {
        let gb = self.tcp_mbps.iter().sum::<f64>() * f64::from(seconds_per_run) / 8000.0;
        let elapsed = self.tcp_elapsed_s?;
        let cpu = self.cpu_pct?;
        let per = |p: Option<f64>| p.filter(|_| gb > 0.0).map(|p| p / 100.0 * elapsed / gb);
        Some(PerProc {
            edge_a: per(cpu.edge_a),
            edge_b: per(cpu.edge_b),
            supernode: per(cpu.supernode),
        })
    }
}

fn rcvbuf_snapshot(lab: &PerfLab) -> Vec<Option<u64>> {
    [&lab.a, &lab.b, &lab.sn]
        .iter()
        .map(|ns| udp_rcvbuf_errors(ns).ok())
        .collect()
}

fn rcvbuf_delta(before: &[Option<u64>], after: &[Option<u64>]) -> PerProc<Option<u64>> {
    let d: Vec<Option<u64>> = before
        .iter()
        .zip(after)
        .map(|(b, a)| Some(a.as_ref()?.saturating_sub((*b)?)))
        .collect();
    PerProc::from_vec(&d).unwrap_or_default()
}

/// Ping, TCP runs, UDP runs from edge A to `dst` (B's underlay or overlay address); `cpu`
/// (PIDs, clock ticks per second) are metered during the TCP runs; `RcvbufErrors` are taken
/// per phase. Stops at the first failure.
fn measure_paths(
    lab: &PerfLab,
    cfg: &PerfConfig,
    dst: Ipv4Addr,
    row: &mut Row,
    cpu: Option<(&[u32], u64)>,
    floor: Option<Ipv4Addr>,
) -> Result<()> {
    let d = dst.to_string();
    // With the floor up, it is pinged at the same rate, half an interval after each of
    // this path's echo requests.
    let (p, f) = thread::scope(|s| {
        let floor = floor.map(|fl| {
            s.spawn(move || {
                thread::sleep(Duration::from_millis(100));
                ping(&lab.a, &fl.to_string(), 56, cfg.ping_count, false)
            })
        });
        let p = ping(&lab.a, &d, 56, cfg.ping_count, false);
        (p, floor.map(|h| h.join()))
    });
    let p = p?;
    match f {
        Some(Ok(Ok(f))) => row.floor_rtts_ms = f.rtts_ms,
        Some(Ok(Err(e))) => row.notes.push(format!("paired floor ping: {e}")),
        Some(Err(_)) => row
            .notes
            .push("paired floor ping: the thread panicked".into()),
        None => {}
    }
    row.ping_received = Some((p.received, p.sent));
    row.rtt_ms = p.rtt_avg_ms;
    row.rtt_median_ms = p.rtt_median_ms();
    row.rtts_ms = p.rtts_ms;
    let busy = ping_every(
        &lab.a,
        &d,
        56,
        cfg.ping_count.saturating_mul(10),
        false,
        Duration::from_secs(1) / BUSY_PING_HZ,
    )?;
    row.rtt_busy_ms = busy.rtt_avg_ms;
    if p.received == 0 {
        return Err(Error::Other(format!("no ping reply from {dst}")));
    }
    let _server = iperf3_server(&lab.b, IPERF_PORT)?;
    let rcv0 = rcvbuf_snapshot(lab);
    let host0 = host_cpu_snapshot();
    let meter = cpu.map(|(pids, _)| CpuMeter::start(pids));
    let started = Instant::now();
    for _ in 0..cfg.runs {
        check_stop()?;
        let r = iperf3_client(&lab.a, IpAddr::V4(dst), IPERF_PORT, cfg.seconds, None)?;
        row.tcp_mbps.push(r.mbps);
        if let Some(x) = r.retransmits {
            row.tcp_retransmits.push(x);
        }
    }
    if let (Some(m), Some((_, hz))) = (meter, cpu) {
        row.cpu_pct = PerProc::from_vec(&m.stop(hz));
        row.tcp_elapsed_s = Some(started.elapsed().as_secs_f64());
    }
    if let (Some(a), Some(b)) = (host0, host_cpu_snapshot()) {
        let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
        row.host_busy_pct = host_busy_pct(a, b, cpus);
    }
    let rcv1 = rcvbuf_snapshot(lab);
    row.rcvbuf_errors_tcp = rcvbuf_delta(&rcv0, &rcv1);
    for _ in 0..cfg.runs {
        check_stop()?;
        let u = iperf3_udp(
            &lab.a,
            IpAddr::V4(dst),
            IPERF_PORT,
            cfg.seconds,
            cfg.udp_len,
            cfg.udp_mbps,
        )?;
        row.udp.push(u);
        row.rcvbuf_errors_udp = rcvbuf_delta(&rcv1, &rcvbuf_snapshot(lab));
    }
    Ok(())
}

/// The raw veth baseline: edge A to edge B over the underlay (no n2n).
pub fn measure_baseline(lab: &PerfLab, cfg: &PerfConfig) -> Row {
    let mut row = Row {
        name: "raw veth".into(),
        ..Row::default()
    };
    if let Err(e) = measure_paths(lab, cfg, EDGE_B_IP, &mut row, None, None) {
        row.error = Some(e.to_string());
    }
    row
}

/// The floor forwarder's two processes, left running (idle) for the tunnel rows' paired
/// idle pings; killed by PID when dropped (their TAP devices vanish with them).
#[derive(Debug)]
pub struct Floor {
    _procs: Vec<Proc>,
}

impl Floor {
    /// Edge B's side of the floor, what the tunnel rows ping besides their own path.
    pub fn dst(&self) -> Ipv4Addr {
        FWD_B
    }
}

/// The floor row: [`crate::tapfwd`] in both edge namespaces (this executable in its
/// forwarder mode), then the same measurements as the baseline through its TAP addresses.
/// The forwarders stay up (returned) when the row was measured.
pub fn measure_forwarder(lab: &PerfLab, cfg: &PerfConfig) -> (Row, Option<Floor>) {
    let mut row = Row {
        name: "floor: TAP forwarder".into(),
        ..Row::default()
    };
    let result = (|| -> Result<Floor> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Other(format!("own executable: {e}")))?
            .to_string_lossy()
            .into_owned();
        let hz = clock_ticks_per_sec();
        let mut procs = Vec::new();
        for (ns, me, peer) in [(&lab.a, FWD_A, EDGE_B_IP), (&lab.b, FWD_B, EDGE_A_IP)] {
            let (port, to) = (FWD_PORT.to_string(), format!("{peer}:{FWD_PORT}"));
            let argv = [exe.as_str(), crate::tapfwd::FLAG, FWD_DEV, &port, &to];
            let p = ns.spawn("tap-forwarder", &argv)?;
            let made = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
                !p.is_running() || ns.ip(&["link", "show", "dev", FWD_DEV]).is_ok()
            });
            if !made || !p.is_running() {
                return Err(Error::Other(format!(
                    "forwarder in {} did not create {FWD_DEV}",
                    ns.name()
                )));
            }
            let addr = format!("{me}/24");
            ns.ip(&["addr", "add", &addr, "dev", FWD_DEV])?;
            ns.ip(&["link", "set", "dev", FWD_DEV, "mtu", FWD_MTU, "up"])?;
            procs.push(p);
        }
        let dst = FWD_B.to_string();
        let up = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            ping(&lab.a, &dst, 56, 1, false).is_ok_and(|r| r.received == 1)
        });
        if !up {
            return Err(Error::Other(format!(
                "no ping reply from {FWD_B} through the forwarder"
            )));
        }
        let pids: Vec<u32> = procs.iter().map(Proc::pid).collect();
        let r = measure_paths(lab, cfg, FWD_B, &mut row, Some((&pids, hz)), None);
        let rss: Vec<Option<u64>> = pids.iter().map(|&p| peak_rss_kib(p).ok()).collect();
        row.peak_rss_kib = PerProc::from_vec(&rss);
        // On an error `procs` is dropped here: killed by PID.
        r.map(|()| Floor { _procs: procs })
    })();
    match result {
        Ok(floor) => (row, Some(floor)),
        Err(e) => {
            row.error = Some(e.to_string());
            (row, None)
        }
    }
}

/// One tunnel row: fresh supernode + edges with `cipher` in `mode`, then the same
/// measurements as the baseline through the overlay, plus CPU, peak RSS, direct packets.
pub fn measure_tunnel(
    lab: &PerfLab,
    bins: &Binaries,
    cfg: &PerfConfig,
    cipher: PerfCipher,
    mode: Mode,
    ticks_per_sec: u64,
    floor: Option<&Floor>,
) -> Row {
    let mut row = Row {
        name: format!("{} {}", cipher.name, mode.name()),
        cipher: Some(cipher),
        mode: Some(mode),
        ..Row::default()
    };
    if let Err(e) = lab.install_direct_filter(mode == Mode::Relayed) {
        row.error = Some(format!("installing the nftables filter: {e}"));
        return row;
    }
    let result = lab
        .start_tunnel(bins, cipher, mode, cfg.up_timeout)
        .and_then(|t| {
            row.notes.append(&mut t.notes.clone());
            let pids = t.pids();
            let cpu = Some((pids.as_slice(), ticks_per_sec));
            // P2P rows only: the relayed rows' nftables filter drops the floor's direct
            // datagrams too (and the relayed path has a hop the floor does not).
            let fl = floor.filter(|_| mode == Mode::P2p).map(Floor::dst);
            let r = measure_paths(lab, cfg, OVERLAY_B, &mut row, cpu, fl);
            // Read these while the processes still exist.
            let rss: Vec<Option<u64>> = pids.iter().map(|&p| peak_rss_kib(p).ok()).collect();
            row.peak_rss_kib = PerProc::from_vec(&rss);
            row.sn_forward_pkts = sn_forward_pkts(&lab.sn);
            // A process that died mid-run explains a failed measurement best.
            t.check_alive().and(r)
        });
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
    match lab.direct_udp_packets() {
        Ok(n) => row.direct_udp_packets = Some(n),
        Err(e) => row.notes.push(format!("direct packet counter: {e}")),
    }
    if mode == Mode::P2p && row.error.is_none() && row.direct_udp_packets == Some(0) {
        row.notes
            .push("P2P row but no direct edge-to-edge packet: traffic was relayed".into());
    }
    lab.remove_direct_filter();
    row
}

/// The supernode's `forward` `tx_pkt` from `r 1 packetstats` (C n2n format), if reported.
fn sn_forward_pkts(ns: &Netns) -> Option<u64> {
    let lines = mgmt_query_timeout(ns, SN_MGMT_PORT, "r 1 packetstats", MGMT_POLL).ok()?;
    mgmt_rows(&lines)
        .iter()
        .find(|r| r.get("type").and_then(Value::as_str) == Some("forward"))?
        .get("tx_pkt")?
        .as_u64()
}

// ------------------------------------------------------------------------------------------
// Report

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Options of the run.
    pub config: PerfConfig,
    /// Raw veth baseline.
    pub baseline: Row,
    /// The floor: the minimal TAP↔UDP forwarder of [`crate::tapfwd`] (None: not measured).
    pub forwarder: Option<Row>,
    /// Tunnel rows in measurement order (each cipher: P2P, relayed).
    pub tunnel: Vec<Row>,
    /// Process logs.
    pub log_dir: PathBuf,
    /// Binaries measured (None with `--baseline-only`).
    pub binaries: Option<Binaries>,
    /// Set-up failure that stopped the run before the rows (e.g. build failed).
    pub fatal: Option<String>,
}

impl Report {
    /// True when every row was measured without error and nothing fatal happened.
    pub fn ok(&self) -> bool {
        self.fatal.is_none()
            && self.baseline.error.is_none()
            && self.forwarder.as_ref().is_none_or(|r| r.error.is_none())
            && self.tunnel.iter().all(|r| r.error.is_none())
    }

    fn ratio(&self, v: Option<f64>, base: Option<f64>) -> Option<f64> {
        match (v, base) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b),
            _ => None,
        }
    }

    /// What `r` adds to the raw veth's `v` (`None` for the raw veth itself).
    fn added(&self, r: &Row, v: impl Fn(&Row) -> Option<f64>) -> Option<f64> {
        match (v(r), v(&self.baseline)) {
            (Some(t), Some(b)) if !std::ptr::eq(r, &self.baseline) => Some(t - b),
            _ => None,
        }
    }

    fn row_json(&self, r: &Row) -> Value {
        let base_tcp = self.baseline.tcp_median();
        let base_pps = self.baseline.udp_pps_median();
        let added = self.added(r, |r| r.rtt_ms);
        let added_median = self.added(r, |r| r.rtt_median_ms);
        let added_busy = self.added(r, |r| r.rtt_busy_ms);
        let per = |p: &PerProc<Option<f64>>| json!({"edge_a": p.edge_a, "edge_b": p.edge_b, "supernode": p.supernode});
        let per_u = |p: &PerProc<Option<u64>>| json!({"edge_a": p.edge_a, "edge_b": p.edge_b, "supernode": p.supernode});
        json!({
            "name": r.name,
            "cipher": r.cipher.map(|c| c.name),
            "cipher_flag": r.cipher.map(|c| format!("-A{}", c.id)),
            "mode": r.mode.map_or(if std::ptr::eq(r, &self.baseline) { "raw" } else { "forwarder" }, Mode::name),
            "tcp_mbps": {
                "median": r.tcp_median(),
                "runs": r.tcp_mbps,
                "retransmits": r.tcp_retransmits,
            },
            "tcp_ratio_to_raw": self.ratio(r.tcp_median(), base_tcp),
            "udp": {
                "payload_bytes": self.config.udp_len,
                "rx_pps_median": r.udp_pps_median(),
                "loss_pct_median": r.udp_loss_median(),
                "runs": r.udp.iter().map(|u| json!({
                    "rx_pps": u.rx_pps, "tx_pps": u.tx_pps, "loss_pct": u.loss_pct
                })).collect::<Vec<_>>(),
            },
            "udp_pps_ratio_to_raw": self.ratio(r.udp_pps_median(), base_pps),
            "rtt_ms": r.rtt_ms,
            "added_rtt_ms": added,
            "rtt_median_ms": r.rtt_median_ms,
            "added_rtt_median_ms": added_median,
            "rtt_p10_ms": quantile(&r.rtts_ms, 0.1),
            "rtt_busy_ms": r.rtt_busy_ms,
            "added_rtt_busy_ms": added_busy,
            "idle_vs_floor_paired": (!r.floor_rtts_ms.is_empty()).then(|| json!({
                "floor_pings": r.floor_rtts_ms.len(),
                "floor_rtt_median_ms": median(&r.floor_rtts_ms),
                "floor_rtt_p10_ms": quantile(&r.floor_rtts_ms, 0.1),
                "median_minus_floor_ms": r.vs_floor().map(|v| v.0),
                "p10_minus_floor_ms": r.vs_floor().map(|v| v.1),
            })),
            "ping": r.ping_received.map(|(rx, tx)| json!({"received": rx, "sent": tx})),
            "cpu_pct_during_tcp": r.cpu_pct.as_ref().map(per),
            "tcp_elapsed_s": r.tcp_elapsed_s,
            "cpu_s_per_gb": r.cpu_s_per_gb(self.config.seconds).as_ref().map(per),
            "tcp_retransmits_median": r.retransmits_median(),
            "host_cpu_busy_pct_during_tcp": r.host_busy_pct,
            "peak_rss_kib": r.peak_rss_kib.as_ref().map(per_u),
            "rcvbuf_errors_delta": {
                "during_tcp": per_u(&r.rcvbuf_errors_tcp),
                "during_udp": per_u(&r.rcvbuf_errors_udp),
            },
            "direct_udp_packets": r.direct_udp_packets,
            "sn_forward_pkts": r.sn_forward_pkts,
            "notes": r.notes,
            "error": r.error,
        })
    }

    /// The report as JSON (schema 1: `config`, `host`, `baseline`, `tunnel[]`, `ok`).
    pub fn to_json(&self) -> Value {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .ok();
        json!({
            "tool": "n2n-throughput",
            "schema": 1,
            "config": {
                "runs": self.config.runs,
                "seconds": self.config.seconds,
                "ciphers": self.config.ciphers.iter().map(|c| c.name).collect::<Vec<_>>(),
                "quick": self.config.quick,
                "baseline_only": self.config.baseline_only,
                "udp_len": self.config.udp_len,
                "udp_rate_mbps": self.config.udp_mbps,
                "ping_count": self.config.ping_count,
                "up_timeout_s": self.config.up_timeout.as_secs(),
                "ab_old_binaries": self.config.ab.as_ref().map(|d| d.display().to_string()),
            },
            "host": {
                "cpus": thread::available_parallelism().map(|n| n.get()).ok(),
                "kernel": kernel,
            },
            "binaries": self.binaries.as_ref().map(|b| json!({
                "edge": b.edge.display().to_string(),
                "supernode": b.supernode.display().to_string(),
            })),
            "log_dir": self.log_dir.display().to_string(),
            "baseline": self.row_json(&self.baseline),
            "forwarder": self.forwarder.as_ref().map(|r| self.row_json(r)),
            "tunnel": self.tunnel.iter().map(|r| self.row_json(r)).collect::<Vec<_>>(),
            "fatal": self.fatal,
            "ok": self.ok(),
        })
    }

    /// The human-readable table (medians; ratios to the raw veth of this run).
    pub fn table(&self) -> String {
        let f = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |x| format!("{x:.prec$}"));
        let c = &self.config;
        let mut s = String::new();
        let rate = if c.udp_mbps == 0 {
            "-b 0".to_string()
        } else {
            format!("-b {}M", c.udp_mbps)
        };
        let _ = writeln!(
            s,
            "n2n-throughput: {} run(s) x {} s, median; TCP and UDP ({} B payload, {rate}) \
             edge A -> edge B; ping x{} idle (5/s) and x{} busy ({BUSY_PING_HZ}/s); \
             CPU % of one core during TCP",
            c.runs,
            c.seconds,
            c.udp_len,
            c.ping_count,
            c.ping_count.saturating_mul(10)
        );
        let _ = writeln!(
            s,
            "{:<30} {:>9} {:>6} {:>6} {:>9} {:>6} {:>6} {:>8} {:>7} {:>7} {:>7} {:>15} {:>15} {:>17} {:>5} {:>14} {:>15} {:>8}",
            "path",
            "TCP Mb/s",
            "x raw",
            "retr",
            "UDP kpps",
            "x raw",
            "loss%",
            "RTT ms",
            "+ms",
            "+ms med",
            "+ms bsy",
            "vs floor med/p10",
            "CPU% A/B/SN",
            "CPU-s/GB A/B/SN",
            "host%",
            "RSS MiB A/B/SN",
            "rcvbuf TCP/UDP",
            "direct"
        );
        let _ = writeln!(s, "{}", "-".repeat(203));
        let base_tcp = self.baseline.tcp_median();
        let base_pps = self.baseline.udp_pps_median();
        let rows = std::iter::once(&self.baseline)
            .chain(&self.forwarder)
            .chain(&self.tunnel);
        for r in rows {
            let tunnel = !std::ptr::eq(r, &self.baseline);
            let tr = self.ratio(r.tcp_median(), base_tcp);
            let ur = self.ratio(r.udp_pps_median(), base_pps);
            let added = self.added(r, |r| r.rtt_ms);
            let added_median = self.added(r, |r| r.rtt_median_ms);
            let added_busy = self.added(r, |r| r.rtt_busy_ms);
            let paired = r
                .vs_floor()
                .map_or("-".to_string(), |(m, p)| format!("{m:+.3}/{p:+.3}"));
            let per = |p: Option<PerProc<Option<f64>>>, prec: usize| {
                p.map_or("-".to_string(), |p| {
                    format!(
                        "{}/{}/{}",
                        f(p.edge_a, prec),
                        f(p.edge_b, prec),
                        f(p.supernode, prec)
                    )
                })
            };
            let cpu = per(r.cpu_pct, 0);
            let cpu_gb = per(r.cpu_s_per_gb(c.seconds), 2);
            let mib = |k: Option<u64>| f(k.map(|k| k as f64 / 1024.0), 1);
            let rss = r.peak_rss_kib.map_or("-".to_string(), |p| {
                format!("{}/{}/{}", mib(p.edge_a), mib(p.edge_b), mib(p.supernode))
            });
            let edges = |e: PerProc<Option<u64>>| match (e.edge_a, e.edge_b) {
                (Some(a), Some(b)) => (a + b).to_string(),
                _ => "-".into(),
            };
            let rcv = format!(
                "{}/{}",
                edges(r.rcvbuf_errors_tcp),
                edges(r.rcvbuf_errors_udp)
            );
            let name = if tunnel {
                r.name.clone()
            } else {
                "raw veth (underlay)".into()
            };
            let _ = writeln!(
                s,
                "{:<30} {:>9} {:>6} {:>6} {:>9} {:>6} {:>6} {:>8} {:>7} {:>7} {:>7} {:>15} {:>15} {:>17} {:>5} {:>14} {:>15} {:>8}",
                name,
                f(r.tcp_median(), 1),
                f(tr, 3),
                f(r.retransmits_median(), 0),
                f(r.udp_pps_median().map(|p| p / 1000.0), 1),
                f(ur, 3),
                f(r.udp_loss_median(), 1),
                f(r.rtt_ms, 3),
                f(added, 3),
                f(added_median, 3),
                f(added_busy, 3),
                paired,
                cpu,
                cpu_gb,
                f(r.host_busy_pct, 0),
                rss,
                rcv,
                r.direct_udp_packets
                    .map_or("-".to_string(), |d| d.to_string())
            );
            if let Some(err) = &r.error {
                let _ = writeln!(s, "    ^ FAILED: {err}");
            }
            for n in &r.notes {
                let _ = writeln!(s, "    ^ note: {n}");
            }
        }
        if let Some(fatal) = &self.fatal {
            let _ = writeln!(s, "FATAL: {fatal}");
        }
        let _ = writeln!(
            s,
            "rcvbuf = UDP RcvbufErrors increase in both edge namespaces during the TCP runs (only \
             n2n sockets receive UDP then) / during the UDP runs (includes iperf3's socket);\n\
             direct = UDP packets the edges sent straight to each other (dropped on arrival when \
             relayed); floor = the smallest TAP<->UDP forwarder (poll, one read/sendto per frame, \
             no header/cipher/batching/offloads, TAP MTU {FWD_MTU}): what any user-space tunnel \
             pays on this machine; +ms / +ms med = idle RTT (mean / median) minus the raw \
             veth's; vs floor med/p10 = the row's idle RTT (median / 10th percentile) minus \
             the floor's, pinged interleaved in the same minutes (P2P rows; the floor stays up, \
             idle, for them); host% = all CPUs during TCP, % of one CPU; retr = TCP \
             retransmissions per run (median); CPU-s/GB = CPU-seconds of each process per GB \
             of TCP goodput; logs: {}",
            self.log_dir.display()
        );
        s
    }
}

/// Runs everything `cfg` asks for: builds/locates the binaries (unless baseline only), sets
/// up the namespaces, measures the baseline then each cipher P2P and relayed. Errors of one
/// row are recorded in that row; only a failure to build the topology is an `Err`. The
/// topology is torn down before this returns.
pub fn run(cfg: &PerfConfig) -> Result<Report> {
    let bins = if cfg.baseline_only {
        None
    } else {
        Some(release_binaries())
    };
    for tool in ["ip", "nft", "ping", "iperf3", "getconf"] {
        crate::install::ensure_program(tool)?;
    }
    let lab = PerfLab::new("throughput")?;
    eprintln!(
        "n2n-throughput: namespaces up ({}, {}, {}); measuring the raw veth baseline",
        lab.sn.name(),
        lab.a.name(),
        lab.b.name()
    );
    let mut report = Report {
        config: cfg.clone(),
        baseline: measure_baseline(&lab, cfg),
        forwarder: None,
        tunnel: Vec::new(),
        log_dir: lab.log_dir().to_path_buf(),
        binaries: None,
        fatal: None,
    };
    let mut floor = None;
    if !cfg.baseline_only {
        eprintln!("n2n-throughput: floor (minimal TAP<->UDP forwarder)");
        let (row, up) = measure_forwarder(&lab, cfg);
        if let Some(e) = &row.error {
            eprintln!("n2n-throughput:   FAILED: {e}");
        }
        report.forwarder = Some(row);
        floor = up;
    }
    match bins {
        None => {}
        Some(Err(e)) => report.fatal = Some(format!("n2n binaries: {e}")),
        Some(Ok(bins)) => {
            let hz = clock_ticks_per_sec();
            // A/B: the previous binaries first, then the new ones, row by row.
            let mut sets = Vec::new();
            if let Some(dir) = &cfg.ab {
                let old = Binaries {
                    edge: dir.join("edge"),
                    supernode: dir.join("supernode"),
                    threads: None,
                };
                match [&old.edge, &old.supernode].iter().find(|p| !p.is_file()) {
                    Some(missing) => {
                        report.fatal = Some(format!("--ab: {} is not a file", missing.display()));
                    }
                    None => sets.push(("old ".to_owned(), old)),
                }
            }
            if report.fatal.is_none() {
                let new = if cfg.ab.is_some() { "new " } else { "" };
                if cfg.threads == [1] {
                    sets.push((new.to_owned(), bins.clone()));
                } else {
                    // The --threads axis: the binaries under test once per count.
                    for &t in &cfg.threads {
                        let set = Binaries {
                            threads: Some(t),
                            ..bins.clone()
                        };
                        sets.push((format!("{new}t{t} "), set));
                    }
                }
            }
            'rows: for &cipher in &cfg.ciphers {
                for mode in [Mode::P2p, Mode::Relayed] {
                    for (label, set) in &sets {
                        if stop_requested() {
                            report.fatal = Some("interrupted".into());
                            break 'rows;
                        }
                        eprintln!("n2n-throughput: {label}{} {}", cipher.name, mode.name());
                        let fl = floor.as_ref();
                        let mut row = measure_tunnel(&lab, set, cfg, cipher, mode, hz, fl);
                        row.name = format!("{label}{}", row.name);
                        if let Some(e) = &row.error {
                            eprintln!("n2n-throughput:   FAILED: {e}");
                        }
                        report.tunnel.push(row);
                    }
                }
            }
            report.binaries = Some(bins);
        }
    }
    drop(floor);
    drop(lab);
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(a: &[&str]) -> std::result::Result<Invocation, String> {
        PerfConfig::parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }
    fn cfg(a: &[&str]) -> PerfConfig {
        match args(a).unwrap() {
            Invocation::Run(c) => c,
            Invocation::Help => panic!("help"),
        }
    }

    #[test]
    fn cpu_seconds_per_gigabyte() {
        // Two 5-s runs at 800 Mbit/s = 1 GB in 10 s; edge A at 50 % = 5 CPU-s.
        let r = Row {
            tcp_mbps: vec![800.0, 800.0],
            tcp_retransmits: vec![3, 10, 7],
            tcp_elapsed_s: Some(10.0),
            cpu_pct: Some(PerProc {
                edge_a: Some(50.0),
                edge_b: Some(25.0),
                supernode: None,
            }),
            ..Row::default()
        };
        let g = r.cpu_s_per_gb(5).unwrap();
        assert!((g.edge_a.unwrap() - 5.0).abs() < 1e-9, "{g:?}");
        assert!((g.edge_b.unwrap() - 2.5).abs() < 1e-9, "{g:?}");
        assert_eq!(g.supernode, None);
        assert_eq!(r.retransmits_median(), Some(7.0));
        // No goodput, no figure; no CPU meter, no row.
        let idle = Row {
            tcp_mbps: vec![0.0],
            ..r.clone()
        };
        assert_eq!(idle.cpu_s_per_gb(5).unwrap().edge_a, None);
        assert!(Row::default().cpu_s_per_gb(5).is_none());
    }

    #[test]
    fn cli() {
        let d = cfg(&[]);
        assert_eq!((d.runs, d.seconds, d.ping_count), (3, 5, 20));
        let names: Vec<&str> = d.ciphers.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["null", "aes", "chacha20", "aes-gcm", "chacha20-poly1305"]
        );
        let q = cfg(&["--quick"]);
        assert_eq!((q.runs, q.seconds, q.ping_count), (1, 1, 5));
        assert_eq!(q.ciphers.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 3]);
        // explicit values win over --quick in any order
        let q = cfg(&["--runs", "2", "--quick", "--ciphers=AES-GCM,null,aes-gcm"]);
        assert_eq!((q.runs, q.seconds), (2, 1));
        assert_eq!(q.ciphers.iter().map(|c| c.id).collect::<Vec<_>>(), [7, 1]);
        let j = cfg(&["--json", "/tmp/x.json", "--seconds=9", "--udp-rate", "300"]);
        assert_eq!(j.json.as_deref(), Some(Path::new("/tmp/x.json")));
        assert_eq!((j.seconds, j.udp_mbps), (9, 300));
        assert_eq!(args(&["-h"]).unwrap(), Invocation::Help);
        assert_eq!(d.ab, None);
        assert_eq!(
            cfg(&["--ab", "/opt/old"]).ab.as_deref(),
            Some(Path::new("/opt/old"))
        );
        assert_eq!(d.threads, [1]);
        assert_eq!(cfg(&["--threads", "1,2,4"]).threads, [1, 2, 4]);
        for bad in [
            &["--threads", "0"][..],
            &["--threads", "1,x"][..],
            &["--threads"][..],
            &["--ab"][..],
            &["--runs"][..],
            &["--runs", "x"],
            &["--runs", "0"],
            &["--seconds", "-1"],
            &["--ciphers", "rot13"],
            &["--ciphers", ","],
            &["--udp-len", "8"],
            &["--frobnicate"],
            &["--up-timeout", "0"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn edge_command_lines() {
        let aes = parse_ciphers("aes").unwrap()[0];
        let null = parse_ciphers("null").unwrap()[0];
        assert_eq!(
            edge_args(Side::A, aes, Mode::P2p).join(" "),
            "-f -c rocks -k s3cret -A3 -l 198.18.0.254:7654 -a 10.200.0.1/24 -d n2n0 \
             -m 02:00:00:00:00:01 -p 50001 -t 5644"
        );
        let b = edge_args(Side::B, null, Mode::Relayed).join(" ");
        assert_eq!(
            b,
            "-f -c rocks -A1 -l 198.18.0.254:7654 -a 10.200.0.2/24 -d n2n0 \
             -m 02:00:00:00:00:02 -p 50002 -t 5644 -S1"
        );
        assert_eq!(supernode_args().join(" "), "-f -p 7654 -t 5645");
    }

    #[test]
    fn host_cpu_parser() {
        let a = parse_proc_stat_cpu("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(a, (150, 1000));
        let b = parse_proc_stat_cpu("cpu  200 0 100 850 50 0 0 0 0 0\n").unwrap();
        // 150 busy of 200 jiffies on 2 CPUs = 150 % of one CPU.
        assert_eq!(host_busy_pct(a, b, 2), Some(150.0));
        assert_eq!(host_busy_pct(b, a, 2), None);
        assert_eq!(parse_proc_stat_cpu("intr 1 2\n"), None);
    }

    #[test]
    fn proc_parsers() {
        let stat = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 1 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("1234 (x) S 1 2"), None);
        // our own process: readable, and CPU time only grows
        let me = std::process::id();
        let t0 = cpu_ticks(me).unwrap();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(150) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(cpu_ticks(me).unwrap() > t0);
        let status = "Name:\tedge\nVmPeak:\t  9000 kB\nVmHWM:\t    4242 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_vm_hwm_kib(status), Some(4242));
        assert_eq!(parse_vm_hwm_kib("Name: x\n"), None);
        assert!(peak_rss_kib(me).unwrap() > 0);
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 10 2 7 12 5 0\n\
                    UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    UdpLite: 0 0 0 0 99 0\n";
        assert_eq!(parse_snmp(snmp, "Udp", "RcvbufErrors"), Some(5));
        assert_eq!(parse_snmp(snmp, "UdpLite", "RcvbufErrors"), Some(99));
        assert_eq!(parse_snmp(snmp, "Udp", "InErrors"), Some(7));
        assert_eq!(parse_snmp(snmp, "Udp", "Nope"), None);
        assert_eq!(parse_snmp("Udp: A B\n", "Udp", "A"), None);
        let real = std::fs::read_to_string("/proc/net/snmp").unwrap();
        assert!(parse_snmp(&real, "Udp", "RcvbufErrors").is_some());
        assert!(clock_ticks_per_sec() > 0);
    }

    #[test]
    fn quantiles() {
        assert_eq!(quantile(&[], 0.1), None);
        assert_eq!(quantile(&[3.0], 0.1), Some(3.0));
        let v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(quantile(&v, 0.1), Some(2.0));
        assert_eq!(quantile(&v, 0.5), Some(10.0));
        assert_eq!(quantile(&v, 1.0), Some(20.0));
        assert_eq!(quantile(&[f64::NAN, 1.0, 2.0], 0.0), Some(1.0));
    }

    #[test]
    fn stats_and_iperf() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        let udp = r#"{"end":{
            "sum":{"seconds":2.0,"packets":400,"lost_packets":100,"lost_percent":25},
            "sum_sent":{"seconds":2.0,"packets":400,"lost_packets":0,"lost_percent":0},
            "sum_received":{"seconds":2.0,"packets":400,"lost_packets":100,"lost_percent":25}}}"#;
        let u = parse_iperf3_udp(udp).unwrap();
        assert_eq!((u.rx_pps, u.tx_pps, u.loss_pct), (150.0, 200.0, 25.0));
        let old = r#"{"end":{"sum":{"seconds":1.0,"packets":10,"lost_packets":-1}}}"#;
        let u = parse_iperf3_udp(old).unwrap();
        assert_eq!((u.rx_pps, u.tx_pps), (10.0, 10.0));
        assert!(parse_iperf3_udp(r#"{"error":"unable to connect to server"}"#).is_err());
        assert!(
            parse_iperf3_udp(r#"{"end":{"sum":{"seconds":0,"packets":1,"lost_packets":0}}}"#)
                .is_err()
        );
        assert!(parse_iperf3_udp(r#"{"end":{}}"#).is_err());
        assert!(parse_iperf3_udp("").is_err());
        let nft = "table inet n2nperf {\n chain out {\n  ip daddr 198.18.0.2 meta l4proto udp \
                   counter packets 17 bytes 1234 drop\n  ip daddr 1.2.3.4 counter packets 3 bytes 9\n }\n}";
        assert_eq!(parse_nft_counter_packets(nft), Some(20));
        assert_eq!(parse_nft_counter_packets("chain out { }"), None);
    }

    #[test]
    fn report_table_and_json() {
        let mut cfg = cfg(&["--quick"]);
        cfg.ciphers.truncate(1);
        let baseline = Row {
            name: "raw veth".into(),
            tcp_mbps: vec![1000.0],
            udp: vec![UdpRun {
                rx_pps: 100_000.0,
                tx_pps: 120_000.0,
                loss_pct: 16.7,
            }],
            rtt_ms: Some(0.05),
            rtt_median_ms: Some(0.04),
            ..Row::default()
        };
        let good = Row {
            name: "null p2p".into(),
            cipher: Some(CIPHERS[0]),
            mode: Some(Mode::P2p),
            tcp_mbps: vec![250.0],
            rtt_ms: Some(0.25),
            rtt_median_ms: Some(0.19),
            rtts_ms: vec![0.30, 0.20, 0.25, 0.22, 0.19],
            floor_rtts_ms: vec![0.15, 0.18, 0.16, 0.21, 0.17],
            direct_udp_packets: Some(9),
            ..Row::default()
        };
        let bad = Row {
            name: "null relayed".into(),
            cipher: Some(CIPHERS[0]),
            mode: Some(Mode::Relayed),
            error: Some("edge A exited".into()),
            ..Row::default()
        };
        let floor = Row {
            name: "floor: TAP forwarder".into(),
            tcp_mbps: vec![300.0],
            rtt_ms: Some(0.25),
            ..Row::default()
        };
        let mut rep = Report {
            config: cfg,
            baseline,
            forwarder: Some(floor),
            tunnel: vec![good],
            log_dir: PathBuf::from("/tmp/logs"),
            binaries: None,
            fatal: None,
        };
        assert!(rep.ok());
        let j = rep.to_json();
        assert_eq!(j["baseline"]["tcp_mbps"]["median"], 1000.0);
        assert_eq!(j["baseline"]["udp"]["rx_pps_median"], 100_000.0);
        assert_eq!(j["tunnel"][0]["tcp_ratio_to_raw"], 0.25);
        assert_eq!(j["tunnel"][0]["cipher_flag"], "-A1");
        assert!((j["tunnel"][0]["added_rtt_ms"].as_f64().unwrap() - 0.2).abs() < 1e-9);
        assert!((j["tunnel"][0]["added_rtt_median_ms"].as_f64().unwrap() - 0.15).abs() < 1e-9);
        assert_eq!(j["forwarder"]["added_rtt_median_ms"], Value::Null);
        // Paired with the floor: median 0.22 - 0.17, p10 (nearest rank of 5: the lowest)
        // 0.19 - 0.15.
        let paired = &j["tunnel"][0]["idle_vs_floor_paired"];
        assert!((paired["median_minus_floor_ms"].as_f64().unwrap() - 0.05).abs() < 1e-9);
        assert!((paired["p10_minus_floor_ms"].as_f64().unwrap() - 0.04).abs() < 1e-9);
        assert_eq!(paired["floor_pings"], 5);
        assert_eq!(j["forwarder"]["idle_vs_floor_paired"], Value::Null);
        assert_eq!(j["baseline"]["added_rtt_median_ms"], Value::Null);
        assert_eq!(j["forwarder"]["mode"], "forwarder");
        assert_eq!(j["forwarder"]["tcp_ratio_to_raw"], 0.3);
        assert!((j["forwarder"]["added_rtt_ms"].as_f64().unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(j["baseline"]["added_rtt_ms"], Value::Null);
        assert_eq!(j["ok"], true);
        let t = rep.table();
        assert!(t.contains("floor: TAP forwarder"), "{t}");
        assert!(t.contains("raw veth (underlay)"), "{t}");
        assert!(t.contains("0.250"), "{t}");
        assert!(t.contains("+0.050/+0.040"), "{t}");
        rep.tunnel.push(bad);
        assert!(!rep.ok());
        assert_eq!(rep.to_json()["ok"], false);
        assert!(rep.table().contains("FAILED: edge A exited"));
    }
}
