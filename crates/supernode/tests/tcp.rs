//! The supernode's TCP listener on 127.0.0.1 (`-S2` edges): framing with
//! partial frames and 1-byte writes, relaying between a TCP and a UDP
//! edge, the length limit, the idle / frame timeouts, the connection cap,
//! and 10 000 connect/close cycles while UDP and TCP edges keep working
//! (RSS bound printed and checked).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Edge, Sn};
use n2n_proto::wire::{self, Message};

/// A TCP edge: a connection plus the fields of a fake edge.
struct TcpEdge {
    s: TcpStream,
    e: Edge,
}

impl TcpEdge {
    fn new(sn: &Sn, last: u8) -> TcpEdge {
        let s = TcpStream::connect(sn.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        TcpEdge {
            s,
            e: Edge::new(sn.addr, "tcpnet", last, true),
        }
    }

    fn send(&mut self, m: &Message<'_>, one_byte_writes: bool) {
        let h = self.e.header();
        let d = self.e.encode(&h, m);
        let mut f = (d.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(&d);
        if one_byte_writes {
            for b in f {
                self.s.write_all(&[b]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            self.s.write_all(&f).unwrap();
        }
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut p = [0u8; 2];
        self.s.read_exact(&mut p).unwrap();
        let mut b = vec![0u8; usize::from(u16::from_be_bytes(p))];
        self.s.read_exact(&mut b).unwrap();
        b
    }

    fn register(&mut self, one_byte_writes: bool) {
        let r = self.e.reg_super_msg();
        self.send(&Message::RegisterSuper(r), one_byte_writes);
        let d = self.recv();
        match wire::decode(&d).unwrap().1 {
            Message::RegisterSuperAck(a) => assert_eq!(a.cookie, r.cookie),
            m => panic!("expected an ACK, got {m:?}"),
        }
    }
}

/// The peer closed `s` within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn wait_drop(sn: &Sn, reason: &str, n: u64) {
    let t = Instant::now();
    while sn.drop_count(reason) < n {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no {reason} drop counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Register a TCP and a UDP edge and relay both ways.
fn relay_both_ways(sn: &Sn, t: &mut TcpEdge, u: &mut Edge, tag: &[u8]) {
    u.send_packet(t.e.mac, tag);
    let d = t.recv();
    match wire::decode(&d).unwrap().1 {
        Message::Packet(p) => assert_eq!(p.payload, tag),
        m => panic!("{m:?}"),
    }
    let m = t.e.packet(u.mac, tag);
    t.send(&m, false);
    let d = u.recv();
    match wire::decode(&d).unwrap().1 {
        Message::Packet(p) => assert_eq!(p.payload, tag),
        m => panic!("{m:?}"),
    }
    let _ = sn;
}

#[test]
fn tcp_edge_registers_with_partial_frames_and_relays_to_udp() {
    let sn = Sn::start(&[]);
    let mut t = TcpEdge::new(&sn, 1);
    t.register(true);
    let mut u = Edge::new(sn.addr, "tcpnet", 2, true);
    u.register_ok(None);
    relay_both_ways(&sn, &mut t, &mut u, b"hello over tcp");
    // Two frames in one write, the second split across writes.
    let h = t.e.header();
    let m = t.e.packet(u.mac, b"one");
    let a = t.e.encode(&h, &m);
    let m = t.e.packet(u.mac, b"two");
    let b = t.e.encode(&h, &m);
    let mut bytes = Vec::new();
    for d in [&a, &b] {
        bytes.extend_from_slice(&(d.len() as u16).to_be_bytes());
        bytes.extend_from_slice(d);
    }
    let cut = a.len() + 2 + 5;
    t.s.write_all(&bytes[..cut]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    t.s.write_all(&bytes[cut..]).unwrap();
    for want in [&b"one"[..], b"two"] {
        match wire::decode(&u.recv()).unwrap().1 {
            Message::Packet(p) => assert_eq!(p.payload, want),
            m => panic!("{m:?}"),
        }
    }
    let rows = sn.rows("r 5 edges");
    assert!(rows.iter().any(|r| r["proto"] == "TCP"), "{rows:?}");
    assert!(rows.iter().any(|r| r["proto"] == "UDP"), "{rows:?}");
    // Closing the connection removes the TCP edge.
    drop(t);
    let t0 = Instant::now();
    while sn.rows("r 6 edges").len() != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "TCP edge not removed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn oversize_length_closes_the_connection() {
    let sn = Sn::start(&[]);
    let mut s = TcpStream::connect(sn.addr).unwrap();
    s.write_all(&[0x08, 0x00, 1, 2, 3]).unwrap(); // 2048 + 2 > 2048
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    wait_drop(&sn, "tcp_frame_too_long", 1);
    // A zero length is a framing error too.
    let mut s = TcpStream::connect(sn.addr).unwrap();
    s.write_all(&[0, 0]).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    wait_drop(&sn, "tcp_frame_too_long", 2);
}

#[test]
fn idle_and_half_open_connections_are_closed() {
    let sn = Sn::start(&["--tcp-idle-timeout", "2", "--tcp-frame-timeout", "1"]);
    // Slowloris: one byte every 300 ms never completes a frame.
    let mut slow = TcpStream::connect(sn.addr).unwrap();
    let t = Instant::now();
    let mut closed = false;
    for _ in 0..30 {
        if slow.write_all(&[0x01]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(closed || closed_within(&mut slow, Duration::from_secs(3)));
    let slow_secs = t.elapsed().as_secs_f64();
    // Idle: connected, nothing sent.
    let mut idle = TcpStream::connect(sn.addr).unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(6)));
    println!(
        "slowloris connection closed after {slow_secs:.1} s (frame timeout 1 s), idle one after {:.1} s (idle timeout 2 s)",
        t.elapsed().as_secs_f64()
    );
    wait_drop(&sn, "tcp_timeout", 2);
}

#[test]
fn connection_cap() {
    let sn = Sn::start(&["--tcp-max-connections", "2"]);
    let mut a = TcpEdge::new(&sn, 1);
    a.register(false);
    let mut b = TcpEdge::new(&sn, 2);
    b.register(false);
    let mut c = TcpStream::connect(sn.addr).unwrap();
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    wait_drop(&sn, "tcp_connection_limit", 1);
    // The two admitted edges still talk to each other.
    let m = a.e.packet(b.e.mac, b"capped");
    a.send(&m, false);
    assert!(
        matches!(wire::decode(&b.recv()).unwrap().1, Message::Packet(p) if p.payload == b"capped")
    );
    // A slot frees when one closes.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = TcpEdge::new(&sn, 4);
    d.register(false);
}

#[test]
fn ten_thousand_connect_close_cycles_keep_serving() {
    let sn = Sn::start(&[]);
    let mut t = TcpEdge::new(&sn, 1);
    t.register(false);
    let mut u = Edge::new(sn.addr, "tcpnet", 2, true);
    u.register_ok(None);
    relay_both_ways(&sn, &mut t, &mut u, b"before");
    let rss_before = sn.status_kb("VmRSS");
    let start = Instant::now();
    let mut max_rss = rss_before;
    for i in 0..10_000u32 {
        let mut s = TcpStream::connect(sn.addr).unwrap();
        if i % 3 == 0 {
            // Half a frame, then gone.
            let _ = s.write_all(&[0x00, 0x40, 3]);
        }
        drop(s);
        if i % 1000 == 999 {
            relay_both_ways(&sn, &mut t, &mut u, format!("cycle {i}").as_bytes());
            max_rss = max_rss.max(sn.status_kb("VmRSS"));
        }
    }
    relay_both_ways(&sn, &mut t, &mut u, b"after");
    let rss_after = sn.status_kb("VmRSS");
    max_rss = max_rss.max(rss_after);
    println!(
        "10000 TCP connect/close cycles in {:.1} s; supernode VmRSS {rss_before} kB before, \
         {rss_after} kB after, {max_rss} kB at most (bound checked: +16384 kB)",
        start.elapsed().as_secs_f64()
    );
    assert!(
        max_rss < rss_before + 16_384,
        "RSS grew from {rss_before} to {max_rss} kB"
    );
    let rows = sn.rows("r 7 edges");
    assert_eq!(rows.len(), 2, "only the two real edges: {rows:?}");
}
