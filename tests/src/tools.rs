//! Wrappers around system tools: ping, iperf3, tc netem.

use std::net::IpAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::{Error, Impairment, ImpairmentSpec, Netns, Proc, Result};

/// Polls `f` every `interval` until it returns true or `timeout` passes. Returns the last
/// result. The loop is bounded in time (and so in count).
pub fn wait_until(timeout: Duration, interval: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(interval);
    }
}

/// Result of [`ping`].
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    /// Echo requests transmitted.
    pub sent: u32,
    /// Echo replies received.
    pub received: u32,
    /// Average round-trip time, when at least one reply came back.
    pub rtt_avg_ms: Option<f64>,
    /// Each reply's round-trip time, ms, in arrival order.
    pub rtts_ms: Vec<f64>,
}

impl PingResult {
    /// Lost fraction in percent (100 when nothing was sent).
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.sent.saturating_sub(self.received)) / f64::from(self.sent)
    }

    /// Median of [`Self::rtts_ms`] (the mean of the middle two of an even count). On an idle
    /// path the times are bimodal (a reply either finds the CPUs awake or not): the median
    /// moves far less from run to run than the mean.
    pub fn rtt_median_ms(&self) -> Option<f64> {
        crate::perf::median(&self.rtts_ms)
    }
}

/// Parses the summary of iputils `ping`:
/// `3 packets transmitted, 3 received, 0% packet loss, time 406ms` and
/// `rtt min/avg/max/mdev = 0.055/0.114/0.224/0.077 ms`, and each reply's
/// `64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.231 ms`.
pub fn parse_ping(out: &str) -> Option<PingResult> {
    let stats = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut parts = stats.split(',');
    let sent = parts.next()?.split_whitespace().next()?.parse().ok()?;
    let received = parts.next()?.split_whitespace().next()?.parse().ok()?;
    let rtt_avg_ms = out
        .lines()
        .find(|l| l.starts_with("rtt ") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok());
    let rtts_ms = out
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            l.split("time=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    Some(PingResult {
        sent,
        received,
        rtt_avg_ms,
        rtts_ms,
    })
}

/// Pings `dst` from `ns`: `count` echo requests 0.2 s apart with `size` payload bytes; `df`
/// forbids fragmentation (`-M do`, so a too-large packet is lost instead of fragmented), else
/// `-M dont`. Lost replies are not an error: check [`PingResult::received`].
pub fn ping(ns: &Netns, dst: &str, size: usize, count: u32, df: bool) -> Result<PingResult> {
    ping_every(ns, dst, size, count, df, Duration::from_millis(200))
}

/// [`ping`] with `interval` between echo requests (below 0.2 s needs root; 2 ms at least).
pub fn ping_every(
    ns: &Netns,
    dst: &str,
    size: usize,
    count: u32,
    df: bool,
    interval: Duration,
) -> Result<PingResult> {
    let (c, s) = (count.to_string(), size.to_string());
    let i = format!("{:.3}", interval.as_secs_f64().max(0.002));
    let per = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let timeout = Duration::from_millis(per.saturating_mul(u64::from(count)) + 5_000);
    let args = [
        "ping",
        "-n",
        "-c",
        &c,
        "-i",
        &i,
        "-W",
        "1",
        "-s",
        &s,
        "-M",
        if df { "do" } else { "dont" },
        dst,
    ];
    let (_ok, out, err) = ns.exec_status(&args, timeout)?;
    parse_ping(&out).ok_or_else(|| Error::Parse {
        what: format!("ping output for {dst} from {}", ns.name()),
        detail: format!("{out}{err}"),
    })
}

/// Result of [`iperf3_client`].
#[derive(Debug, Clone, PartialEq)]
pub struct IperfResult {
    /// Goodput in Mbit/s as measured by the receiver.
    pub mbps: f64,
    /// TCP retransmissions (sender side).
    pub retransmits: Option<u64>,
    /// UDP datagram loss in percent.
    pub lost_percent: Option<f64>,
    /// UDP jitter.
    pub jitter_ms: Option<f64>,
}

/// Parses `iperf3 -J` client output.
pub fn parse_iperf3_json(json: &str) -> Result<IperfResult> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Parse {
        what: "iperf3 JSON".into(),
        detail: format!(
            "{e}: {}",
            json.get(..json.len().min(400)).unwrap_or_default()
        ),
    })?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(Error::Other(format!("iperf3: {err}")));
    }
    let end = v.get("end").ok_or_else(|| Error::Parse {
        what: "iperf3 JSON".into(),
        detail: "no `end` section".into(),
    })?;
    let f = |sec: &str, key: &str| {
        end.get(sec)
            .and_then(|s| s.get(key))
            .and_then(|x| x.as_f64())
    };
    let udp = |sec: &str| {
        let bps = f(sec, "bits_per_second")?;
        let lost = f(sec, "lost_percent")?;
        Some((bps, None, Some(lost), f(sec, "jitter_ms")))
    };
    // UDP (iperf3 >= 3.x reports the receiver's view in `sum_received`, older ones in `sum`),
    // then TCP.
    let parsed = udp("sum_received").or_else(|| udp("sum")).or_else(|| {
        let bps = f("sum_received", "bits_per_second")?;
        let rtx = end
            .get("sum_sent")
            .and_then(|s| s.get("retransmits"))
            .and_then(|x| x.as_u64());
        Some((bps, rtx, None, None))
    });
    let Some((bps, retransmits, lost, jitter)) = parsed else {
        return Err(Error::Parse {
            what: "iperf3 JSON".into(),
            detail: "no sum_received/sum bits_per_second".into(),
        });
    };
    Ok(IperfResult {
        mbps: bps / 1e6,
        retransmits,
        lost_percent: lost,
        jitter_ms: jitter,
    })
}

/// Starts `iperf3 -s` on `port` in `ns` (killed when the returned [`Proc`] drops).
pub fn iperf3_server(ns: &Netns, port: u16) -> Result<Proc> {
    let p = port.to_string();
    let proc = ns.spawn(
        &format!("iperf3-server-{port}"),
        &["iperf3", "-s", "-p", &p, "--forceflush"],
    )?;
    // Bounded wait for the listening socket; clients also retry.
    proc.wait_for_output("Server listening", Duration::from_secs(3));
    Ok(proc)
}

/// Runs an iperf3 client in `ns` against `server:port` for `secs` seconds. `udp_mbps` selects
/// UDP at that target rate (Mbit/s), `None` means TCP. Retries the connection for up to 5 s
/// while the server starts.
pub fn iperf3_client(
    ns: &Netns,
    server: IpAddr,
    port: u16,
    secs: u32,
    udp_mbps: Option<u32>,
) -> Result<IperfResult> {
    let (p, t, s) = (port.to_string(), secs.to_string(), server.to_string());
    let mut args: Vec<String> = [
        "iperf3",
        "-J",
        "-c",
        &s,
        "-p",
        &p,
        "-t",
        &t,
        "--connect-timeout",
        "2000",
    ]
    .map(String::from)
    .to_vec();
    if let Some(rate) = udp_mbps {
        args.extend(["-u".to_string(), "-b".to_string(), format!("{rate}M")]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let timeout = Duration::from_secs(u64::from(secs) + 20);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_ok, out, err) = ns.exec_status(&argv, timeout)?;
        match parse_iperf3_json(&out) {
            Ok(r) => return Ok(r),
            Err(_) if Instant::now() < deadline && out.contains("unable to connect") => {
                thread::sleep(Duration::from_millis(300));
            }
            Err(e) => return Err(Error::Other(format!("{e}; stderr: {err}"))),
        }
    }
}

/// An active network impairment on one device (see [`netem`]). Dropping it removes the
/// impairment (it also disappears with its namespace).
#[derive(Debug)]
pub struct Netem {
    ns_name: String,
    dev: String,
    kind: NetemKind,
}

#[derive(Debug)]
enum NetemKind {
    Kernel,
    User(Impairment),
}

impl Netem {
    /// True when the kernel's `sch_netem` does the work; false for the userspace emulation.
    pub fn is_kernel(&self) -> bool {
        matches!(self.kind, NetemKind::Kernel)
    }

    /// Packets seen / dropped / delivered by the userspace emulation (None for kernel netem).
    pub fn user_stats(&self) -> Option<crate::ImpairStats> {
        match &self.kind {
            NetemKind::Kernel => None,
            NetemKind::User(i) => Some(i.stats()),
        }
    }

    /// Removes the impairment now.
    pub fn clear(self) {}
}

impl Drop for Netem {
    fn drop(&mut self) {
        if let NetemKind::Kernel = self.kind
            && let Ok(mut ip) = crate::install::program("ip")
        {
            let _ = ip
                .args([
                    "netns",
                    "exec",
                    &self.ns_name,
                    "tc",
                    "qdisc",
                    "del",
                    "dev",
                    &self.dev,
                ])
                .args(["root"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Tries `modprobe sch_netem` once per process (a kernel with netem as a module has not
/// loaded it yet); true when it succeeded the first time, so `tc` is worth retrying.
fn netem_module_loaded() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        crate::install::program("modprobe")
            .and_then(|mut c| crate::cmd::run(c.args(["-q", "sch_netem"]), crate::CMD_TIMEOUT))
            .is_ok_and(|o| o.status.success())
    })
}

/// Impairs egress of `dev` in `ns` like `tc qdisc add dev <dev> root netem <spec>`, e.g.
/// `"loss 1% reorder 25% delay 1ms"`. Uses the kernel's netem qdisc when available; when the
/// kernel lacks `sch_netem` (as on the CI machines) it falls back to a userspace emulation via
/// NFQUEUE that supports `loss P%`, `delay T[ms|us|s] [JITTER]`, `reorder P%` and
/// `duplicate`-free subsets (see [`ImpairmentSpec::parse`]).
pub fn netem(ns: &Netns, dev: &str, spec: &str) -> Result<Netem> {
    let mut args = vec!["tc", "qdisc", "replace", "dev", dev, "root", "netem"];
    args.extend(spec.split_whitespace());
    let (mut ok, _out, mut err) = ns.exec_status(&args, crate::CMD_TIMEOUT)?;
    if !ok && netem_module_loaded() {
        (ok, _, err) = ns.exec_status(&args, crate::CMD_TIMEOUT)?;
    }
    if ok {
        return Ok(Netem {
            ns_name: ns.name().to_string(),
            dev: dev.to_string(),
            kind: NetemKind::Kernel,
        });
    }
    if !err.contains("unknown") && !err.contains("Unknown") {
        return Err(Error::Command {
            cmd: args.join(" "),
            status: "non-zero".into(),
            stderr: err,
        });
    }
    let imp = Impairment::start(ns, dev, ImpairmentSpec::parse(spec)?)?;
    Ok(Netem {
        ns_name: ns.name().to_string(),
        dev: dev.to_string(),
        kind: NetemKind::User(imp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary() {
        let out = "PING 198.18.0.2 (198.18.0.2) 1400(1428) bytes of data.\n\n\
                   --- 198.18.0.2 ping statistics ---\n\
                   3 packets transmitted, 2 received, 33.3333% packet loss, time 406ms\n\
                   rtt min/avg/max/mdev = 0.055/0.114/0.224/0.077 ms\n";
        let r = parse_ping(out).unwrap();
        assert_eq!((r.sent, r.received), (3, 2));
        assert_eq!(r.rtt_avg_ms, Some(0.114));
        assert!((r.loss_pct() - 33.33).abs() < 0.01);
        let none = "5 packets transmitted, 0 received, +5 errors, 100% packet loss, time 4ms\n";
        let r = parse_ping(none).unwrap();
        assert_eq!((r.sent, r.received, r.rtt_avg_ms), (5, 0, None));
        assert!(parse_ping("ping: connect: Network is unreachable").is_none());
    }

    #[test]
    fn ping_reply_times_and_their_median() {
        let out = "PING 10.200.0.2 (10.200.0.2) 56(84) bytes of data.\n\
                   64 bytes from 10.200.0.2: icmp_seq=1 ttl=64 time=0.412 ms\n\
                   64 bytes from 10.200.0.2: icmp_seq=2 ttl=64 time=0.231 ms\n\
                   64 bytes from 10.200.0.2: icmp_seq=4 ttl=64 time=1.05 ms\n\n\
                   --- 10.200.0.2 ping statistics ---\n\
                   4 packets transmitted, 3 received, 25% packet loss, time 606ms\n\
                   rtt min/avg/max/mdev = 0.231/0.564/1.050/0.351 ms\n";
        let r = parse_ping(out).unwrap();
        assert_eq!(r.rtts_ms, vec![0.412, 0.231, 1.05]);
        assert_eq!(r.rtt_median_ms(), Some(0.412));
        let mut even = r.clone();
        even.rtts_ms.push(0.3);
        assert!((even.rtt_median_ms().unwrap() - 0.356).abs() < 1e-9);
        even.rtts_ms.clear();
        assert_eq!(even.rtt_median_ms(), None);
        // -q output: no reply lines.
        let q = parse_ping("3 packets transmitted, 3 received, 0% packet loss\n").unwrap();
        assert!(q.rtts_ms.is_empty());
    }

    #[test]
    fn iperf_json() {
        let tcp = r#"{"end":{"sum_sent":{"bits_per_second":9.5e8,"retransmits":3},
                     "sum_received":{"bits_per_second":9.4e8}}}"#;
        let r = parse_iperf3_json(tcp).unwrap();
        assert!((r.mbps - 940.0).abs() < 1e-6);
        assert_eq!(r.retransmits, Some(3));
        let udp = r#"{"end":{"sum":{"bits_per_second":1e7,"lost_percent":0.5,"jitter_ms":0.01}}}"#;
        let r = parse_iperf3_json(udp).unwrap();
        assert_eq!((r.mbps, r.lost_percent), (10.0, Some(0.5)));
        let udp312 = r#"{"end":{"sum":{"bits_per_second":1.1e7,"lost_percent":0},
            "sum_sent":{"bits_per_second":1.1e7,"lost_percent":0},
            "sum_received":{"bits_per_second":9e6,"lost_percent":2.5,"jitter_ms":0.004}}}"#;
        let r = parse_iperf3_json(udp312).unwrap();
        assert_eq!(
            (r.mbps, r.lost_percent, r.retransmits),
            (9.0, Some(2.5), None)
        );
        assert!(parse_iperf3_json(r#"{"error":"unable to connect"}"#).is_err());
        assert!(parse_iperf3_json("garbage").is_err());
    }
}
