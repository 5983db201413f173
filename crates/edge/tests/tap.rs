//! TAP device and main-socket tests inside private network namespaces.
//!
//! Need root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and `ip` (iproute2). Without
//! them every test prints a loud SKIPPED line and passes, unless the
//! environment sets `N2N_E2E_REQUIRED=1` (CI), in which case it fails.
//!
//! Every namespace is created with a unique name and deleted by a drop
//! guard, also when the test panics. Device and socket work happens in a
//! thread that first `setns`es into the namespace; nothing is configured in
//! the root namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use n2n_edge::sock::{MainSocketConfig, bind_main_socket};
use n2n_edge::tap::{Tap, TapConfig, TapError};
use nix::sched::{CloneFlags, setns};

// ---------------------------------------------------------------- harness

fn e2e_available(test: &str) -> bool {
    let required = std::env::var("N2N_E2E_REQUIRED").is_ok_and(|v| v == "1");
    let root = nix::unistd::geteuid().is_root();
    // Installs iproute2 when it is missing (as root, with apt-get).
    let _ = n2n_tests::install::ensure_tools(&["ip"]);
    let ip = Command::new("ip").arg("-V").output().is_ok();
    if root && ip {
        return true;
    }
    let why = if !root {
        "not running as root"
    } else {
        "iproute2 'ip' not found"
    };
    if required {
        panic!("{test}: {why}, but N2N_E2E_REQUIRED=1");
    }
    // Written to the real stderr (not eprintln!, which the test harness
    // captures) so that the skip is visible in a normal `cargo test` run.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n*** SKIPPED {test}: {why} (set N2N_E2E_REQUIRED=1 to make this a failure) ***"
    );
    false
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j output is JSON")
}

/// A network namespace that is deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "n2nedge-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        Netns { name }
    }

    /// Run `f` in a thread that has entered this namespace.
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            let handle = s.spawn(move || {
                let file = File::open(&path).expect("open netns file");
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Run an async body on a current-thread runtime inside the namespace.
    fn block_on<R: Send, F: std::future::Future<Output = R>>(
        &self,
        f: impl FnOnce() -> F + Send,
    ) -> R {
        self.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

// ---------------------------------------------------------------- frames

const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const TAP_MAC: [u8; 6] = [0x02, 0x12, 0x34, 0x56, 0x78, 0x9a];

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp_request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender_ip.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target_ip.octets());
    eth([0xff; 6], sender_mac, 0x0806, &a)
}

fn arp_reply(
    sender_mac: [u8; 6],
    sender_ip: [u8; 4],
    target_mac: [u8; 6],
    target_ip: [u8; 4],
) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender_ip);
    a.extend_from_slice(&target_mac);
    a.extend_from_slice(&target_ip);
    eth(target_mac, sender_mac, 0x0806, &a)
}

fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, dst_mac: [u8; 6], id: u16, payload: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&1u16.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = u16::try_from(20 + icmp.len()).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    eth(dst_mac, PEER_MAC, 0x0800, &ip)
}

/// Read frames until `want` accepts one (answering the kernel's ARP
/// requests for `peer_ip` on the way); panic after 5 s.
async fn read_until(
    tap: &Tap,
    peer_ip: Ipv4Addr,
    what: &str,
    mut want: impl FnMut(&[u8]) -> bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 65536];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = loop {
            match tap.try_recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline
                        .checked_duration_since(std::time::Instant::now())
                        .unwrap_or_else(|| panic!("timed out waiting for {what}"));
                    n2n_sys::poll::wait(&[std::os::fd::AsFd::as_fd(tap)], Some(left)).unwrap();
                }
                r => break r.unwrap(),
            }
        };
        let f = &buf[..n];
        assert!(
            n <= tap.max_frame_len(),
            "frame of {n} bytes exceeds MTU + 14"
        );
        if want(f) {
            return f.to_vec();
        }
        // The kernel asking for the peer: answer so that replies can flow.
        if f.len() >= 42
            && f[12..14] == [8, 6]
            && f[20..22] == [0, 1]
            && f[38..42] == peer_ip.octets()
        {
            let sender_ip: [u8; 4] = f[28..32].try_into().unwrap();
            let sender_mac: [u8; 6] = f[22..28].try_into().unwrap();
            tap.send(
                &arp_reply(PEER_MAC, peer_ip.octets(), sender_mac, sender_ip),
                Duration::from_secs(1),
            )
            .unwrap();
        }
    }
}

fn link_json(ns: &str, dev: &str) -> serde_json::Value {
    let v = ip_json(&["-n", ns, "-j", "-d", "addr", "show", "dev", dev]);
    v.as_array()
        .and_then(|a| a.first())
        .cloned()
        .expect("one link")
}

fn inet_addrs(link: &serde_json::Value) -> Vec<(String, u64)> {
    link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| {
            (
                a["local"].as_str().unwrap().to_owned(),
                a["prefixlen"].as_u64().unwrap(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn tap_is_created_with_requested_name_mac_mtu_address_and_up() {
    if !e2e_available("tap_is_created_with_requested_name_mac_mtu_address_and_up") {
        return;
    }
    let ns = Netns::new();
    let nsname = ns.name.clone();
    ns.block_on(|| async {
        let tap = Tap::open(&TapConfig {
            name: "n2ntest0".into(),
            mac: TAP_MAC,
            mtu: 1400,
            ipv4: Some((Ipv4Addr::new(10, 77, 0, 1), 24)),
            offload: false,
            bridge: None,
            queues: 1,
        })
        .await
        .unwrap();
        assert_eq!(tap.max_frame_len(), 1414);

        let link = link_json(&nsname, "n2ntest0");
        assert_eq!(link["ifname"], "n2ntest0");
        assert_eq!(link["address"], "02:12:34:56:78:9a");
        assert_eq!(link["mtu"], 1400);
        assert_eq!(link["linkinfo"]["info_kind"], "tun");
        assert_eq!(link["linkinfo"]["info_data"]["type"], "tap");
        let flags: Vec<&str> = link["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(flags.contains(&"UP"), "{flags:?}");
        assert_eq!(inet_addrs(&link), [("10.77.0.1".to_owned(), 24)]);
        assert_eq!(
            tap.ipv4().await.unwrap(),
            Some((Ipv4Addr::new(10, 77, 0, 1), 24))
        );

        // The address changes later (supernode-assigned address).
        tap.set_ipv4(Ipv4Addr::new(10, 78, 3, 4), 16).await.unwrap();
        let link = link_json(&nsname, "n2ntest0");
        assert_eq!(inet_addrs(&link), [("10.78.3.4".to_owned(), 16)]);
        // Setting the same address again is a no-op, not an error.
        tap.set_ipv4(Ipv4Addr::new(10, 78, 3, 4), 16).await.unwrap();
        tap.clear_ipv4().await.unwrap();
        assert_eq!(tap.ipv4().await.unwrap(), None);
    });
}

#[test]
fn arp_ping_and_full_size_frames_round_trip_through_the_kernel() {
    if !e2e_available("arp_ping_and_full_size_frames_round_trip_through_the_kernel") {
        return;
    }
    let ns = Netns::new();
    ns.block_on(|| async {
        let me = Ipv4Addr::new(10, 77, 0, 1);
        let peer = Ipv4Addr::new(10, 77, 0, 2);
        let tap = Tap::open(&TapConfig {
            name: "n2ntest1".into(),
            mac: TAP_MAC,
            mtu: 1500,
            ipv4: Some((me, 24)),
            offload: false,
            bridge: None,
            queues: 1,
        })
        .await
        .unwrap();
        assert_eq!(tap.max_frame_len(), 1514);

        // ARP: who has 10.77.0.1? The kernel answers through the TAP.
        tap.send(&arp_request(PEER_MAC, peer, me), Duration::from_secs(1))
            .unwrap();
        let reply = read_until(&tap, peer, "the ARP reply", |f| {
            f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2]
        })
        .await;
        assert_eq!(reply[0..6], PEER_MAC, "reply goes to the asker");
        assert_eq!(reply[6..12], TAP_MAC);
        assert_eq!(reply[22..28], TAP_MAC, "sender MAC = TAP MAC");
        assert_eq!(reply[28..32], me.octets());
        assert_eq!(reply[32..38], PEER_MAC);
        assert_eq!(reply[38..42], peer.octets());

        // Ping (small, then a full 1514-byte frame = 1500-byte IP packet).
        for (id, size) in [(0x1234u16, 56usize), (0x1235, 1472)] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 + usize::from(id)) as u8).collect();
            let frame = icmp_echo(peer, me, TAP_MAC, id, &payload);
            assert_eq!(frame.len(), 14 + 20 + 8 + size);
            tap.send(&frame, Duration::from_secs(1)).unwrap();
            let reply = read_until(&tap, peer, "the ICMP echo reply", |f| {
                f.len() >= 42
                    && f[12..14] == [8, 0]
                    && f[23] == 1
                    && f[34] == 0
                    && f[38..40] == id.to_be_bytes()
            })
            .await;
            assert_eq!(
                reply.len(),
                frame.len(),
                "echo reply of the same size, unfragmented"
            );
            assert_eq!(reply[0..6], PEER_MAC);
            assert_eq!(reply[6..12], TAP_MAC);
            assert_eq!(reply[26..30], me.octets());
            assert_eq!(reply[30..34], peer.octets());
            assert_eq!(reply[42..], payload[..]);
            if size == 1472 {
                assert_eq!(reply.len(), 1514);
            }
        }
    });
}

#[test]
fn existing_devices_reused_when_tap_refused_otherwise() {
    if !e2e_available("existing_devices_reused_when_tap_refused_otherwise") {
        return;
    }
    let ns = Netns::new();
    ip(&[
        "-n", &ns.name, "tuntap", "add", "dev", "ptap0", "mode", "tap",
    ]);
    ip(&[
        "-n", &ns.name, "tuntap", "add", "dev", "ptun0", "mode", "tun",
    ]);
    ip(&[
        "-n", &ns.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    let cfg = |name: &str| TapConfig {
        name: name.into(),
        mac: TAP_MAC,
        mtu: 1300,
        ipv4: Some((Ipv4Addr::new(10, 1, 1, 1), 24)),
        offload: false,
        bridge: None,
        queues: 1,
    };
    let nsname = ns.name.clone();
    ns.block_on(|| async {
        // A persistent TAP is attached to and configured.
        let tap = Tap::open(&cfg("ptap0")).await.unwrap();
        let link = link_json(&nsname, "ptap0");
        assert_eq!(link["mtu"], 1300);
        assert_eq!(link["address"], "02:12:34:56:78:9a");
        assert_eq!(inet_addrs(&link), [("10.1.1.1".to_owned(), 24)]);
        // A second open of the same single-queue TAP is "in use".
        let e = Tap::open(&cfg("ptap0")).await.unwrap_err();
        assert!(matches!(e, TapError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("ptap0"), "{e}");
        drop(tap);

        let e = Tap::open(&cfg("ptun0")).await.unwrap_err();
        assert!(matches!(e, TapError::NotTap { .. }), "{e}");
        assert!(
            e.to_string().contains("ptun0") && e.to_string().contains("TUN"),
            "{e}"
        );
        let e = Tap::open(&cfg("veth0")).await.unwrap_err();
        assert!(
            e.to_string().contains("veth0") && e.to_string().contains("veth"),
            "{e}"
        );
        let e = Tap::open(&cfg("bad/name")).await.unwrap_err();
        assert!(matches!(e, TapError::BadName(_)), "{e}");
    });
}

/// The MTU decision: with DF off (default) a ~1600-byte datagram — what a
/// full 1514-byte frame becomes — crosses a 1500-byte underlay link
/// (fragmented by the kernel, reassembled by the receiver); with `-D` the
/// kernel refuses to send it.
#[test]
fn df_off_lets_full_size_datagrams_cross_a_1500_byte_link() {
    if !e2e_available("df_off_lets_full_size_datagrams_cross_a_1500_byte_link") {
        return;
    }
    let a = Netns::new();
    let b = Netns::new();
    ip(&[
        "-n", &a.name, "link", "add", "ua", "mtu", "1500", "type", "veth", "peer", "name", "ub",
        "netns", &b.name,
    ]);
    ip(&["-n", &b.name, "link", "set", "ub", "mtu", "1500"]);
    ip(&["-n", &a.name, "addr", "add", "10.99.0.1/24", "dev", "ua"]);
    ip(&["-n", &b.name, "addr", "add", "10.99.0.2/24", "dev", "ub"]);
    ip(&["-n", &a.name, "link", "set", "ua", "up"]);
    ip(&["-n", &b.name, "link", "set", "ub", "up"]);

    let receiver = b.run(|| {
        let s = UdpSocket::bind("10.99.0.2:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    });
    let dst = receiver.local_addr().unwrap();
    let datagram: Vec<u8> = (0..1600u32).map(|i| (i % 251) as u8).collect();

    let (sent_default, sent_df) = a.run(|| {
        let mk = |pmtu_discovery| {
            let s = bind_main_socket(&MainSocketConfig {
                bind: SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 1), 0),
                tos: None,
                pmtu_discovery,
                reuse_port: false,
            })
            .unwrap();
            s.set_nonblocking(false).unwrap();
            s
        };
        // First datagram may wait for ARP resolution; send_to queues it.
        let d = mk(false).send_to(&datagram, dst);
        let df = mk(true).send_to(&datagram, dst);
        (d, df)
    });
    assert_eq!(sent_default.unwrap(), 1600);
    let mut buf = [0u8; 4000];
    let (n, from) = receiver
        .recv_from(&mut buf)
        .expect("fragmented datagram arrives");
    assert_eq!(n, 1600);
    assert_eq!(&buf[..n], &datagram[..]);
    assert_eq!(from.ip(), Ipv4Addr::new(10, 99, 0, 1));
    let e = sent_df.expect_err("DF set: the kernel refuses a datagram above the path MTU");
    assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE), "{e}");
}

/// The binary sets up the TAP (before any supernode answers), keeps
/// running, and exits 0 on SIGTERM; an existing non-TAP device of the
/// requested name is a one-line error with exit status 1.
#[test]
fn binary_sets_up_tap_and_stops_cleanly_on_sigterm() {
    if !e2e_available("binary_sets_up_tap_and_stops_cleanly_on_sigterm") {
        return;
    }
    let ns = Netns::new();
    ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
    let edge = env!("CARGO_BIN_EXE_edge");
    let log = std::env::temp_dir().join(format!("n2n-edge-bin-{}.log", std::process::id()));
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, edge])
        .args([
            "-c",
            "rocks",
            "-l",
            "127.0.0.1:7654",
            "-a",
            "10.5.0.1/24",
            "-m",
            "02:aa:bb:cc:dd:ee",
            "-f",
            "-d",
            "n2nbin0",
            "-t",
            "5999",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let link = loop {
        let out = Command::new("ip")
            .args(["-n", &ns.name, "-j", "-d", "addr", "show", "dev", "n2nbin0"])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let l = v[0].clone();
            if !inet_addrs(&l).is_empty() && l["operstate"] != "DOWN" {
                break l;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "TAP not configured in time: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(link["address"], "02:aa:bb:cc:dd:ee");
    assert_eq!(link["mtu"], 1500);
    assert_eq!(inet_addrs(&link), vec![("10.5.0.1".to_owned(), 24)]);
    assert!(child.try_wait().unwrap().is_none(), "edge exited early");

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("edge did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains("created local tap device n2nbin0 IP: 10.5.0.1, Mask: 255.255.255.0"),
        "{text}"
    );
    assert!(text.contains("PMTU discovery disabled"), "{text}");
    assert!(text.contains("SIGTERM received"), "{text}");
    assert!(text.contains("Packet stats:"), "{text}");

    // An existing TUN device of the requested name: a one-line error.
    ip(&[
        "-n", &ns.name, "tuntap", "add", "dev", "n2nbin1", "mode", "tun",
    ]);
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, edge])
        .args([
            "-c",
            "rocks",
            "-l",
            "127.0.0.1:7654",
            "-a",
            "10.5.0.1/24",
            "-f",
            "-d",
            "n2nbin1",
            "-t",
            "5999",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("n2nbin1 already exists and is not a TAP device"),
        "{stderr}"
    );
}
