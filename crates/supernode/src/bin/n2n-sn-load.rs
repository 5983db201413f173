//! `n2n-sn-load`: load generator for a supernode on loopback.
//!
//! Registers N fake edges (one UDP socket each on 127.0.0.1), then sends
//! PACKETs between them through the supernode for S seconds (edge i →
//! edge i+1, or broadcasts with `--broadcast`) and reports the relayed
//! packets/s seen by the edges and the supernode's CPU use (from
//! `/proc/<pid>/task/*/schedstat`) and memory (`/proc/<pid>/status`).
//!
//! By default it starts the `supernode` binary found next to itself on free
//! ports and stops it afterwards; `--supernode ADDR --pid PID` measures a
//! running one instead. Not part of the test suite:
//!
//! ```text
//! cargo build --release -p n2n-supernode
//! target/release/n2n-sn-load --edges 16 --seconds 10
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use n2n_proto::he::{CommunityHe, HeKeyKind, StampGenerator};
use n2n_proto::types::{Auth, Community, CompressionId, DevAddr, DevDesc, Mac, TransformId};
use n2n_proto::wire::{self, Header, Message, Packet, RegisterSuper};
use n2n_sys::udp::{UdpConfig, bind_udp};

#[derive(Debug, Parser)]
#[command(
    name = "n2n-sn-load",
    about = "Send PACKETs between fake edges through a supernode on loopback and measure it"
)]
struct Args {
    /// Supernode to load (default: start ./supernode next to this binary).
    #[arg(long, value_name = "ADDR", requires = "pid")]
    supernode: Option<SocketAddr>,
    /// PID of that supernode (CPU and memory figures).
    #[arg(long)]
    pid: Option<u32>,
    /// supernode binary to start (default: next to this binary).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Number of fake edges.
    #[arg(long, default_value_t = 16)]
    edges: u8,
    /// Measured duration in seconds (after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// PACKET payload bytes.
    #[arg(long, default_value_t = 1400)]
    size: usize,
    /// Send at most this many PACKETs per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Send broadcasts (every edge receives each one) instead of unicasts.
    #[arg(long)]
    broadcast: bool,
    /// Header encryption (the started supernode gets a community file).
    #[arg(long)]
    he: bool,
    /// Community name.
    #[arg(long, default_value = "loadtest")]
    community: String,
}

fn mac(i: u8) -> Mac {
    Mac([0x02, 0x4c, 0x4f, 0x41, 0x44, i])
}

fn unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Encoder for one edge (header encryption needs fresh stamps).
struct Enc {
    community: Community,
    he: Option<CommunityHe>,
    stamps: StampGenerator,
}

impl Enc {
    fn encode(&mut self, m: &Message<'_>, buf: &mut Vec<u8>) -> Result<(), String> {
        buf.resize(4096, 0);
        let n = wire::encode(&Header::new(self.community), m, buf).map_err(|e| e.to_string())?;
        buf.truncate(n);
        if let Some(he) = &self.he {
            let h = match m {
                Message::Packet(_) => wire::packet_header_len(None),
                _ => n,
            };
            let t = unix();
            let stamp = self.stamps.next(t.as_secs(), t.subsec_micros());
            he.encrypt(buf, h, stamp, [1, 2, 3, 4], HeKeyKind::Dynamic)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn register(
    sock: &UdpSocket,
    sn: SocketAddr,
    enc: &mut Enc,
    i: u8,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let m = Message::RegisterSuper(RegisterSuper {
        cookie: 0x4c4f_0000 | u32::from(i),
        edge_mac: mac(i),
        sock: None,
        dev_addr: DevAddr::new([10, 77, 0, i].into(), 24),
        dev_desc: DevDesc::new(&format!("load{i}")),
        auth: Auth::new(Auth::SCHEME_SIMPLE_ID, &[i; 16]).map_err(|e| e.to_string())?,
        key_time: 0,
    });
    enc.encode(&m, buf)?;
    sock.send_to(buf, sn).map_err(|e| e.to_string())?;
    Ok(())
}

/// CPU time of all threads of `pid`, from schedstat (nanoseconds).
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let p = t.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(p).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Kernel drops of the UDP socket on 127.0.0.1:`port`.
fn udp_drops(port: u16) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    let want = format!("0100007F:{port:04X}");
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&want.as_str()))
        .and_then(|f| f.last()?.parse().ok())
}

struct Spawned {
    child: Child,
    list: Option<PathBuf>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(l) = &self.list {
            let _ = std::fs::remove_file(l);
        }
    }
}

fn free_port() -> Result<u16, String> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn spawn(args: &Args) -> Result<(Spawned, SocketAddr, u32), String> {
    let bin = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("supernode"),
    };
    let port = free_port()?;
    let mut mgmt = free_port()?;
    while mgmt == port {
        mgmt = free_port()?;
    }
    let mut cmd = Command::new(&bin);
    cmd.args([
        "-f",
        "-p",
        &format!("127.0.0.1:{port}"),
        "-t",
        &mgmt.to_string(),
        "-u",
        "0",
        "-g",
        "0",
    ]);
    let mut list = None;
    if args.he {
        let p = std::env::temp_dir().join(format!("n2n-sn-load-{}.list", std::process::id()));
        std::fs::write(&p, format!("{}\n", args.community)).map_err(|e| e.to_string())?;
        cmd.arg("-c").arg(&p);
        list = Some(p);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id();
    let sp = Spawned { child, list };
    // Ready when the management port answers.
    let probe = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut b = [0u8; 512];
    loop {
        let _ = probe.send_to(b"r 0 verbose", ("127.0.0.1", mgmt));
        if probe.recv_from(&mut b).is_ok() {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("{} did not start", bin.display()));
        }
    }
    Ok((sp, SocketAddr::from(([127, 0, 0, 1], port)), pid))
}

fn run(args: &Args) -> Result<(), String> {
    let n = args.edges.max(2);
    let (_spawned, sn, pid) = match (args.supernode, args.pid) {
        (Some(a), Some(p)) => (None, a, p),
        _ => {
            let (s, a, p) = spawn(args)?;
            (Some(s), a, p)
        }
    };
    let community = Community::new(&args.community).map_err(|e| e.to_string())?;
    let mut socks = Vec::new();
    let mut encs = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    for i in 1..=n {
        // Big receive buffers: losses should be the supernode's.
        let mut cfg = UdpConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        cfg.recv_buffer = Some(4 << 20);
        let s = bind_udp(&cfg).map_err(|e| e.to_string())?;
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let mut enc = Enc {
            community,
            he: args.he.then(|| CommunityHe::new(*community.field())),
            stamps: StampGenerator::new(),
        };
        let mut acked = false;
        for _ in 0..20 {
            register(&s, sn, &mut enc, i, &mut buf)?;
            let mut b = [0u8; 2048];
            if s.recv_from(&mut b).is_ok() {
                acked = true;
                break;
            }
        }
        if !acked {
            return Err(format!("edge {i} got no answer from {sn}"));
        }
        socks.push(Arc::new(s));
        encs.push(enc);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    for s in &socks {
        let s = Arc::clone(s);
        let stop = Arc::clone(&stop);
        let received = Arc::clone(&received);
        receivers.push(std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if s.recv_from(&mut b).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let payload: Vec<u8> = (0..args.size).map(|i| (i * 7) as u8).collect();
    let copies = if args.broadcast { u64::from(n) - 1 } else { 1 };
    let mut templates: Vec<Vec<u8>> = vec![Vec::new(); usize::from(n)];
    let encode_all = |encs: &mut Vec<Enc>, templates: &mut Vec<Vec<u8>>| -> Result<(), String> {
        for (k, enc) in encs.iter_mut().enumerate() {
            let src = u8::try_from(k + 1).map_err(|e| e.to_string())?;
            let dst = if args.broadcast {
                Mac::BROADCAST
            } else {
                mac(src % n + 1)
            };
            let m = Message::Packet(Packet {
                src_mac: mac(src),
                dst_mac: dst,
                sock: None,
                compression: CompressionId::None.into(),
                transform: TransformId::Null.into(),
                payload: &payload,
            });
            if let Some(t) = templates.get_mut(k) {
                enc.encode(&m, t)?;
            }
        }
        Ok(())
    };
    encode_all(&mut encs, &mut templates)?;

    let warmup = Duration::from_secs(1);
    let total = warmup + Duration::from_secs(args.seconds);
    let t0 = Instant::now();
    let mut last_refresh = t0;
    let mut last_reg = t0;
    let mut sent: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut mark: Option<(Instant, u64, u64, u64, Option<u64>)> = None;
    let mut k = 0usize;
    loop {
        let el = t0.elapsed();
        if mark.is_none() && el >= warmup {
            mark = Some((
                Instant::now(),
                sent,
                received.load(Ordering::Relaxed),
                cpu_ns(pid).unwrap_or(0),
                udp_drops(sn.port()),
            ));
        }
        if el >= total {
            break;
        }
        if last_refresh.elapsed() >= Duration::from_secs(1) {
            // Fresh HE stamps; re-register well before the 60 s purge.
            encode_all(&mut encs, &mut templates)?;
            if last_reg.elapsed() >= Duration::from_secs(20) {
                last_reg = Instant::now();
                for (j, (s, enc)) in socks.iter().zip(encs.iter_mut()).enumerate() {
                    let i = u8::try_from(j + 1).map_err(|e| e.to_string())?;
                    register(s, sn, enc, i, &mut buf)?;
                }
            }
            last_refresh = Instant::now();
        }
        if args.rate > 0 {
            let due = el.as_secs_f64() * args.rate as f64;
            if (sent as f64) >= due {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
        }
        // A burst of 64 before looking at the clock again.
        for _ in 0..64 {
            let j = k % usize::from(n);
            k = k.wrapping_add(1);
            if let (Some(s), Some(t)) = (socks.get(j), templates.get(j)) {
                match s.send_to(t, sn) {
                    Ok(_) => sent += 1,
                    Err(_) => send_errors += 1,
                }
            }
        }
    }
    let end = Instant::now();
    let sent_end = sent;
    let cpu_end = cpu_ns(pid).unwrap_or(0);
    let drops_end = udp_drops(sn.port());
    // Let the last packets arrive.
    std::thread::sleep(Duration::from_millis(200));
    let recv_end = received.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.join();
    }
    let rss = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");

    let (t1, sent1, recv1, cpu1, drops1) = mark.ok_or("run too short")?;
    let secs = end.duration_since(t1).as_secs_f64();
    let sent_pps = (sent_end - sent1) as f64 / secs;
    let relayed_pps = recv_end.saturating_sub(recv1) as f64 / secs;
    let cpu_pct = cpu_end.saturating_sub(cpu1) as f64 / 1e9 / secs * 100.0;
    let expected = (sent_end - sent1) * copies;
    let loss = 1.0 - recv_end.saturating_sub(recv1) as f64 / expected.max(1) as f64;
    let kdrops = match (drops1, drops_end) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => "?".to_owned(),
    };
    println!(
        "n2n-sn-load: {n} edges, {} {}-byte PACKETs{}, {secs:.1} s measured",
        if args.broadcast {
            "broadcast"
        } else {
            "unicast"
        },
        args.size,
        if args.he { ", header encryption" } else { "" }
    );
    println!("sent_pps={sent_pps:.0}");
    println!("relayed_pps={relayed_pps:.0}");
    println!("loss_pct={:.1}", loss.max(0.0) * 100.0);
    println!("supernode_socket_drops={kdrops}");
    println!("supernode_cpu_pct={cpu_pct:.1}");
    println!("supernode_rss_kb={rss}");
    println!("supernode_hwm_kb={hwm}");
    println!("send_errors={send_errors}");
    if relayed_pps > 0.0 && cpu_pct > 0.0 {
        println!(
            "relayed_per_cpu_second={:.0}",
            relayed_pps / (cpu_pct / 100.0)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("n2n-sn-load: error: {e}");
            ExitCode::FAILURE
        }
    }
}
