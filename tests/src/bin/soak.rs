//! `n2n-soak`: the virtual cluster (issue 17, item 4) under continuous mixed traffic for a
//! given duration, with a fault every few minutes (in turn: a supernode restart, an edge
//! restart with the same MAC, a NAT router restart that flushes its mappings).
//!
//! Traffic: every VM pings the virtual frontend every 200 ms (ICMP across the overlay and the
//! NATs), a multicast datagram from the frontend and a 2 s TCP `iperf3` between VMs of two
//! other clusters at every sample. Every sample (10 s) reads each daemon's RSS and drop
//! counters. Fails (exit status 1) if a daemon's RSS grows by more than 10 % over its value
//! after the warm-up, if a daemon dies, or if a ping sample is lost outside the fault windows
//! (a fault window is the fault itself plus `--grace` seconds).
//!
//! Not part of the test command (it runs for 30 minutes by default). Needs root. Usage:
//! `cargo run -p n2n-tests --bin n2n-soak -- [--minutes 30] [--fault-every 180]
//! [--warmup 60] [--grace 30]`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use n2n_tests::scenario::{GapProbe, dnsmasq, mcast_send, unix_now};
use n2n_tests::vcluster::*;
use n2n_tests::{Lab, Signal, iperf3_client, iperf3_server, require_tools};

#[derive(Debug, Clone, Copy)]
struct Args {
    minutes: f64,
    fault_every: u64,
    warmup: u64,
    grace: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        minutes: 30.0,
        fault_every: 180,
        warmup: 60,
        grace: 30.0,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut it = v.iter();
    while let Some(k) = it.next() {
        let val = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("bad value for {k}: {val} ({e})");
        match k.as_str() {
            "--minutes" => a.minutes = val.parse().map_err(|e| bad(&e))?,
            "--fault-every" => a.fault_every = val.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = val.parse().map_err(|e| bad(&e))?,
            "--grace" => a.grace = val.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

/// Per daemon incarnation: label, RSS after warm-up, max RSS, last drop total.
#[derive(Debug, Default, Clone)]
struct Track {
    label: String,
    first_seen: f64,
    base_rss: Option<u64>,
    max_rss: u64,
    drops: u64,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("n2n-soak: {e}");
            std::process::exit(2);
        }
    };
    if !require_tools("soak", &["ip", "nft", "ping", "iperf3", "dnsmasq"]) {
        std::process::exit(2);
    }
    match run(args) {
        Ok(true) => println!("SOAK PASSED"),
        Ok(false) => {
            println!("SOAK FAILED");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("n2n-soak: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: Args) -> n2n_tests::Result<bool> {
    let lab = Lab::new("soak");
    let layout = if federation_available(&lab) {
        SnLayout::Federated
    } else {
        SnLayout::Shared
    };
    announce_layout(layout, "n2n-soak");
    let net = VcNet::build(lab, layout, 3, 4, 2)?;
    let mut d = Daemons::start(&net)?;
    let fe = net.frontend();
    fe.addr_add("eth0", &format!("{FRONTEND_IP}/24"))?;
    let (_dnsmasq, _) = dnsmasq(fe, "dnsmasq", "eth0", DHCP_RANGE)?;
    let mut ips: Vec<Ipv4Addr> = vec![frontend_ip()];
    for (_, vm) in net.clients() {
        let l = lease(vm)?;
        vm.addr_add("eth0", &l.cidr())?;
        ips.push(l.ip);
    }
    for (_, vm) in net.clients() {
        vm.ip(&["route", "replace", "224.0.0.0/4", "dev", "eth0"])?;
    }
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let max_secs = u32::try_from(total.as_secs() + 120).unwrap_or(u32::MAX);
    let probes: Vec<(String, GapProbe)> = net
        .clients()
        .into_iter()
        .map(|(_, vm)| {
            GapProbe::start(vm, "soak-ping", FRONTEND_IP, 200, max_secs)
                .map(|p| (vm.role().to_string(), p))
        })
        .collect::<n2n_tests::Result<_>>()?;
    // iperf3 between a VM of B and one of C.
    let (b_vm, c_vm) = (&net.sites[1].vms[3], &net.sites[2].vms[5]);
    let c_ip = ips[net.sites[0].vms.len() * 2 + 5];
    let _srv = iperf3_server(c_vm, 5203)?;

    let t0 = Instant::now();
    let start_unix = unix_now();
    let mut windows: Vec<(f64, f64, String)> = Vec::new();
    let mut tracks: BTreeMap<u32, Track> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut next_fault = Duration::from_secs(args.fault_every);
    let mut fault_no = 0usize;
    let mut samples = 0u32;
    let mut iperf_fail = 0u32;
    println!(
        "soak: layout {}, {} edges, {} VMs, {:.1} min, fault every {} s",
        layout.name(),
        d.edges.len(),
        ips.len(),
        args.minutes,
        args.fault_every
    );
    while t0.elapsed() < total {
        if t0.elapsed() >= next_fault {
            let t = unix_now();
            let what = match fault_no % 3 {
                0 => {
                    let k = (fault_no / 3) % d.sns.len();
                    d.sns[k].kill(Signal::SIGTERM)?;
                    d.sns[k].restart()?;
                    format!("supernode{k} restart")
                }
                1 => {
                    let k = (fault_no / 3 * 5 + 3) % d.edges.len();
                    d.restart_edge(k)?;
                    format!("edge{k} restart")
                }
                _ => {
                    let k = (fault_no / 3 + 1) % net.sites.len();
                    net.nat_flush(k)?;
                    format!("NAT {} flush", net.sites[k].name)
                }
            };
            println!("[{:>6.0} s] fault: {what}", t0.elapsed().as_secs_f64());
            windows.push((t, unix_now() + args.grace, what));
            fault_no += 1;
            next_fault += Duration::from_secs(args.fault_every);
        }
        // Mixed traffic.
        let _ = mcast_send(fe, Ipv4Addr::new(239, 1, 2, 5), 6500, b"soak");
        if iperf3_client(b_vm, IpAddr::V4(c_ip), 5203, 2, None).is_err() {
            iperf_fail += 1;
        }
        // Sample every daemon.
        if let Err(e) = d.health() {
            failures.push(format!("daemon died: {e}"));
            break;
        }
        let now = unix_now();
        let stats: Vec<(String, Option<u32>, u64)> = d
            .sns
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    format!("supernode{i}"),
                    s.pid(),
                    s.packetstats().map_or(0, |p| p.total_drops()),
                )
            })
            .chain(d.edges.iter().enumerate().map(|(i, (_, e))| {
                (
                    format!("edge{i}"),
                    e.pid(),
                    e.packetstats().map_or(0, |p| p.total_drops()),
                )
            }))
            .collect();
        for (label, pid, drops) in stats {
            let Some(pid) = pid else { continue };
            let rss = vm_rss_kib(pid).unwrap_or(0);
            let tr = tracks.entry(pid).or_insert_with(|| Track {
                label,
                first_seen: now,
                ..Track::default()
            });
            tr.drops = drops;
            if now - tr.first_seen >= args.warmup as f64 {
                if tr.base_rss.is_none() {
                    tr.base_rss = Some(rss);
                }
                tr.max_rss = tr.max_rss.max(rss);
            }
        }
        samples += 1;
        std::thread::sleep(Duration::from_secs(8));
    }
    let end_unix = unix_now();

    // Ping losses outside the fault windows.
    let mut lost_outside = 0usize;
    let mut lost_inside = 0usize;
    let mut sent = 0u64;
    for (role, p) in probes {
        let tr = p.finish()?;
        let got: BTreeMap<u32, f64> = tr.replies.iter().copied().collect();
        sent += u64::from(tr.max_seq);
        for seq in 1..=tr.max_seq {
            if got.contains_key(&seq) {
                continue;
            }
            // When it was sent: interpolated from the nearest replies around it.
            let before = got.range(..seq).next_back();
            let after = got.range(seq..).next();
            let t = match (before, after) {
                (Some((&s0, &t0)), Some((&s1, &t1))) => {
                    t0 + (t1 - t0) * f64::from(seq - s0) / f64::from(s1 - s0)
                }
                (Some((&s0, &t0)), None) => t0 + 0.2 * f64::from(seq - s0),
                (None, _) => tr.started + 0.2 * f64::from(seq),
            };
            if t > end_unix - 2.0 || t < start_unix {
                continue; // set-up and the stop itself
            }
            if windows.iter().any(|(a, b, _)| t >= a - 1.0 && t <= b + 1.0) {
                lost_inside += 1;
            } else {
                lost_outside += 1;
                if lost_outside <= 10 {
                    failures.push(format!("{role}: ping seq {seq} lost outside fault windows"));
                }
            }
        }
    }
    if lost_outside > 10 {
        failures.push(format!(
            "… {lost_outside} ping samples lost outside fault windows in all"
        ));
    }

    println!();
    println!("| daemon | pid | RSS after warm-up KiB | max RSS KiB | growth % | drops |");
    println!("|---|---|---|---|---|---|");
    for (pid, t) in &tracks {
        let growth = t
            .base_rss
            .filter(|b| *b > 0)
            .map(|b| 100.0 * (t.max_rss as f64 - b as f64) / b as f64);
        println!(
            "| {} | {pid} | {} | {} | {} | {} |",
            t.label,
            t.base_rss.map_or("-".into(), |b| b.to_string()),
            t.max_rss,
            growth.map_or("-".into(), |g| format!("{g:.1}")),
            t.drops
        );
        if let Some(g) = growth
            && g > 10.0
        {
            failures.push(format!(
                "{} (pid {pid}) RSS grew {g:.1} % after warm-up",
                t.label
            ));
        }
    }
    println!();
    println!("| fault | at s |");
    println!("|---|---|");
    for (a, _, w) in &windows {
        println!("| {w} | {:.0} |", a - start_unix);
    }
    println!();
    println!(
        "duration {:.1} min, samples {samples}, pings sent {sent}, lost in fault windows \
         {lost_inside}, lost outside {lost_outside}, iperf3 bursts failed {iperf_fail}, \
         P2P share {:.0} %",
        (end_unix - start_unix) / 60.0,
        d.p2p_share()
    );
    for f in &failures {
        println!("FAIL: {f}");
    }
    Ok(failures.is_empty())
}
