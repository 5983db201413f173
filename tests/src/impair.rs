//! Userspace netem fallback: loss / delay / jitter / reorder on a device's egress through
//! NFQUEUE, for kernels built without `sch_netem`.
//!
//! Egress packets of the device are sent to an NFQUEUE by an iptables (nft-compat) rule in
//! the mangle POSTROUTING chain; a thread inside the namespace holds each packet and gives the
//! verdict (drop, or accept once its delay has passed). Packets selected by `reorder` skip the
//! delay, overtaking delayed ones, exactly like netem's `reorder`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use crate::{Error, Netns, Result, io_err};

/// Parsed netem-style parameters (the subset the userspace emulation implements).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImpairmentSpec {
    /// Drop probability, percent.
    pub loss_pct: f64,
    /// Base delay.
    pub delay: Duration,
    /// Uniform jitter (± this much).
    pub jitter: Duration,
    /// Percent of packets sent without delay (only meaningful with a delay).
    pub reorder_pct: f64,
}

fn parse_pct(s: &str) -> Result<f64> {
    let v: f64 = s.trim_end_matches('%').parse().map_err(|_| Error::Parse {
        what: "netem percentage".into(),
        detail: s.to_string(),
    })?;
    if !(0.0..=100.0).contains(&v) {
        return Err(Error::Parse {
            what: "netem percentage (0..100)".into(),
            detail: s.to_string(),
        });
    }
    Ok(v)
}

fn parse_time(s: &str) -> Result<Duration> {
    let bad = || Error::Parse {
        what: "netem time".into(),
        detail: s.to_string(),
    };
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" | "sec" | "secs" => v,
        "ms" | "msec" | "msecs" | "" => v / 1e3,
        "us" | "usec" | "usecs" => v / 1e6,
        _ => return Err(bad()),
    };
    if !(0.0..=60.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn is_number(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
}

impl ImpairmentSpec {
    /// Parses a netem spec such as `"loss 1% reorder 25% delay 1ms"` or
    /// `"delay 10ms 2ms loss 0.5%"`. Supported: `loss P%`, `delay T [JITTER]`,
    /// `reorder P% [CORR%]` (correlation ignored). Anything else is [`Error::Unsupported`].
    pub fn parse(spec: &str) -> Result<ImpairmentSpec> {
        let mut s = ImpairmentSpec::default();
        let toks: Vec<&str> = spec.split_whitespace().collect();
        let mut i = 0;
        let arg = |i: usize| {
            toks.get(i).copied().ok_or_else(|| Error::Parse {
                what: "netem spec".into(),
                detail: format!(
                    "missing value after `{}` in `{spec}`",
                    toks.get(i - 1).copied().unwrap_or("")
                ),
            })
        };
        while let Some(&t) = toks.get(i) {
            match t {
                "loss" => {
                    let mut v = arg(i + 1)?;
                    if v == "random" {
                        i += 1;
                        v = arg(i + 1)?;
                    }
                    s.loss_pct = parse_pct(v)?;
                    i += 2;
                    if toks.get(i).is_some_and(|x| is_number(x)) {
                        i += 1; // correlation: ignored
                    }
                }
                "delay" => {
                    s.delay = parse_time(arg(i + 1)?)?;
                    i += 2;
                    if let Some(j) = toks.get(i).filter(|x| is_number(x)) {
                        s.jitter = parse_time(j)?;
                        i += 1;
                        if toks.get(i).is_some_and(|x| is_number(x)) {
                            i += 1; // correlation: ignored
                        }
                    }
                }
                "reorder" => {
                    s.reorder_pct = parse_pct(arg(i + 1)?)?;
                    i += 2;
                    if toks.get(i).is_some_and(|x| is_number(x)) {
                        i += 1;
                    }
                }
                other => {
                    return Err(Error::Unsupported(format!(
                        "netem option `{other}` in userspace emulation (kernel lacks sch_netem)"
                    )));
                }
            }
        }
        Ok(s)
    }
}

/// Counters of the userspace emulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Packets taken from the queue.
    pub seen: u64,
    /// Packets dropped (`loss`).
    pub dropped: u64,
    /// Packets released after their delay.
    pub delayed: u64,
    /// Packets released at once (no delay configured, or chosen by `reorder`).
    pub immediate: u64,
}

/// xorshift64*: reproducible per seed, no OS RNG needed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, pct: f64) -> bool {
        pct > 0.0 && self.next_f64() * 100.0 < pct
    }
}

static NEXT_QUEUE: AtomicU16 = AtomicU16::new(100);

/// A running userspace impairment; stops (accepting every held packet) when dropped.
#[derive(Debug)]
pub struct Impairment {
    ns_name: String,
    dev: String,
    queue: u16,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ImpairStats>>,
    thread: Option<thread::JoinHandle<()>>,
}

fn iptables_rule(op: &str, dev: &str, queue: u16) -> Vec<String> {
    [
        "iptables",
        "-w",
        "5",
        "-t",
        "mangle",
        op,
        "POSTROUTING",
        "-o",
        dev,
        "-j",
        "NFQUEUE",
        "--queue-num",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([queue.to_string(), "--queue-bypass".to_string()])
    .collect()
}

impl Impairment {
    /// Starts impairing egress of `dev` in `ns` (needs `iptables` with NFQUEUE support).
    /// The RNG seed comes from `N2N_E2E_SEED` when set (printed either way).
    pub fn start(ns: &Netns, dev: &str, spec: ImpairmentSpec) -> Result<Impairment> {
        // The NFQUEUE rule needs iptables: installed here when missing.
        crate::install::ensure_program("iptables").map_err(|e| {
            Error::Unsupported(format!(
                "kernel lacks sch_netem and the NFQUEUE fallback: {e}"
            ))
        })?;
        let queue = NEXT_QUEUE.fetch_add(1, Ordering::Relaxed);
        let seed = std::env::var("N2N_E2E_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1);
                t ^ u64::from(std::process::id()) << 32
            })
            | 1;
        eprintln!(
            "n2n-tests: userspace netem on {}/{dev}: {spec:?} (N2N_E2E_SEED={seed})",
            ns.name()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ImpairStats::default()));
        let path = format!("/run/netns/{}", ns.name());
        let file = File::open(&path).map_err(io_err(format!("opening {path}")))?;
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        let (stop2, stats2) = (Arc::clone(&stop), Arc::clone(&stats));
        let thread = thread::spawn(move || {
            let q = setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns: {e}"))
                .and_then(|()| open_queue(queue).map_err(|e| format!("nfqueue {queue}: {e}")));
            match q {
                Ok(q) => {
                    let _ = ready_tx.send(Ok(()));
                    pump(q, queue, &spec, Rng(seed), &stop2, &stats2);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
        let mut imp = Impairment {
            ns_name: ns.name().to_string(),
            dev: dev.to_string(),
            queue,
            stop,
            stats,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Unsupported(e)),
            Err(_) => {
                imp.stop.store(true, Ordering::Relaxed);
                return Err(Error::Timeout {
                    what: "starting the NFQUEUE thread".into(),
                    after: Duration::from_secs(5),
                });
            }
        }
        let rule = iptables_rule("-A", dev, queue);
        let argv: Vec<&str> = rule.iter().map(String::as_str).collect();
        ns.exec(&argv)?;
        imp.ns_name = ns.name().to_string();
        Ok(imp)
    }

    /// Counters so far.
    pub fn stats(&self) -> ImpairStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Impairment {
    fn drop(&mut self) {
        // Remove the rule first (the namespace may already be gone: ignore errors), then stop
        // the pump, which accepts every packet it still holds.
        let rule = iptables_rule("-D", &self.dev, self.queue);
        if let Ok(mut ip) = crate::install::program("ip") {
            let _ = ip
                .args(["netns", "exec", &self.ns_name])
                .args(&rule)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_queue(num: u16) -> std::io::Result<nfq::Queue> {
    let mut q = nfq::Queue::open()?;
    q.bind(num)?;
    q.set_copy_range(num, 64)?;
    q.set_queue_max_len(num, 8192)?;
    q.set_fail_open(num, true)?;
    q.set_nonblocking(true);
    Ok(q)
}

/// Held packet: release time, arrival sequence (keeps FIFO order among equal times).
struct Held {
    at: Instant,
    seq: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

fn pump(
    mut q: nfq::Queue,
    num: u16,
    spec: &ImpairmentSpec,
    mut rng: Rng,
    stop: &AtomicBool,
    stats: &Mutex<ImpairStats>,
) {
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut last_activity = Instant::now();
    let mut local = ImpairStats::default();
    while !stop.load(Ordering::Relaxed) {
        // Drain everything queued (bounded per round so releases keep their timing).
        for _ in 0..1024 {
            let mut msg = match q.recv() {
                Ok(m) => m,
                Err(_) => break, // WouldBlock (or a transient error)
            };
            last_activity = Instant::now();
            local.seen += 1;
            if rng.chance(spec.loss_pct) {
                msg.set_verdict(nfq::Verdict::Drop);
                local.dropped += 1;
                let _ = q.verdict(msg);
                continue;
            }
            msg.set_verdict(nfq::Verdict::Accept);
            let delayed = !spec.delay.is_zero() && !rng.chance(spec.reorder_pct);
            if !delayed {
                local.immediate += 1;
                let _ = q.verdict(msg);
                continue;
            }
            let mut d = spec.delay.as_secs_f64();
            if !spec.jitter.is_zero() {
                d += (rng.next_f64() * 2.0 - 1.0) * spec.jitter.as_secs_f64();
            }
            seq += 1;
            held.push(Reverse(Held {
                at: last_activity + Duration::from_secs_f64(d.max(0.0)),
                seq,
                msg,
            }));
        }
        let now = Instant::now();
        while held.peek().is_some_and(|h| h.0.at <= now) {
            if let Some(Reverse(h)) = held.pop() {
                local.delayed += 1;
                let _ = q.verdict(h.msg);
            }
        }
        *stats.lock().unwrap_or_else(|e| e.into_inner()) = local;
        let idle = held.is_empty() && last_activity.elapsed() > Duration::from_millis(200);
        thread::sleep(if idle {
            Duration::from_millis(1)
        } else {
            Duration::from_micros(100)
        });
    }
    // Stop: let every held packet go, then unbind.
    while let Some(Reverse(h)) = held.pop() {
        local.delayed += 1;
        let _ = q.verdict(h.msg);
    }
    *stats.lock().unwrap_or_else(|e| e.into_inner()) = local;
    let _ = q.unbind(num);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        let s = ImpairmentSpec::parse("loss 1% reorder 25% delay 1ms").unwrap();
        assert_eq!(s.loss_pct, 1.0);
        assert_eq!(s.reorder_pct, 25.0);
        assert_eq!(s.delay, Duration::from_millis(1));
        let s = ImpairmentSpec::parse("delay 10ms 2ms 25% loss random 0.5%").unwrap();
        assert_eq!(
            (s.delay, s.jitter),
            (Duration::from_millis(10), Duration::from_millis(2))
        );
        assert_eq!(s.loss_pct, 0.5);
        assert_eq!(
            ImpairmentSpec::parse("delay 500us").unwrap().delay,
            Duration::from_micros(500)
        );
        assert!(matches!(
            ImpairmentSpec::parse("duplicate 1%"),
            Err(Error::Unsupported(_))
        ));
        assert!(ImpairmentSpec::parse("loss").is_err());
        assert!(ImpairmentSpec::parse("loss 101%").is_err());
        assert!(ImpairmentSpec::parse("delay 5parsecs").is_err());
    }

    #[test]
    fn rng_rates() {
        let mut r = Rng(12345);
        let hits = (0..100_000).filter(|_| r.chance(10.0)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.chance(0.0)));
    }
}
