//! The supernode's TCP edges (`-S2`, behaviour.md §9.11): a TCP connection
//! is an edge socket like a UDP address: registration answered on the
//! connection, relaying TCP↔UDP both ways, PONG and PEER_INFO; a closed
//! connection removes the edges registered through it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sn_common;

use std::net::SocketAddr;

use n2n_core::ConnId;
use n2n_core::supernode::{DropReason, SupernodeEvent};
use n2n_proto::types::{Mac, PeerSock};
use n2n_proto::wire::{self, Message};
use sn_common::*;

/// Everything queued: destination address, connection, bytes.
fn drain_all(sim: &mut Sim) -> Vec<(SocketAddr, Option<ConnId>, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(t) = sim.sn.poll_transmit() {
        out.push((t.dst, t.conn, t.bytes().to_vec()));
        sim.sn.recycle_transmit(t);
    }
    out
}

fn feed_tcp(
    sim: &mut Sim,
    conn: ConnId,
    peer: SocketAddr,
    frame: &[u8],
) -> Vec<(SocketAddr, Option<ConnId>, Vec<u8>)> {
    let mut f = frame.to_vec();
    sim.sn.handle_tcp_frame(sim.now, conn, peer, &mut f);
    drain_all(sim)
}

fn feed_udp(
    sim: &mut Sim,
    from: SocketAddr,
    d: &[u8],
) -> Vec<(SocketAddr, Option<ConnId>, Vec<u8>)> {
    let mut f = d.to_vec();
    sim.sn.handle_datagram(sim.now, from, &mut f);
    drain_all(sim)
}

const C1: ConnId = ConnId(1);

/// `a` registered over TCP connection 1, `b` over UDP.
fn mixed_pair() -> (Sim, TestEdge, TestEdge) {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:40000", [10, 1, 0, 1]);
    let b = TestEdge::new("net1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    sim.sn.tcp_opened(C1);
    let out = feed_tcp(&mut sim, C1, a.sock, &a.reg_super(7));
    assert_eq!(out.len(), 1);
    let (dst, conn, ack) = &out[0];
    assert_eq!(
        (*dst, *conn),
        (a.sock, Some(C1)),
        "the ACK goes back on the connection"
    );
    match wire::decode(ack).unwrap().1 {
        Message::RegisterSuperAck(ack) => {
            assert_eq!(ack.cookie, 7);
            assert_eq!(
                ack.sock,
                PeerSock::from(a.sock),
                "the connection's remote address"
            );
        }
        m => panic!("expected an ACK, got {m:?}"),
    }
    sim.register(&b);
    (sim, a, b)
}

#[test]
fn tcp_edge_registers_and_is_listed_as_tcp() {
    let (mut sim, a, b) = mixed_pair();
    let edges = sim.sn.edges();
    let ea = edges.iter().find(|e| e.mac == a.mac).unwrap();
    let eb = edges.iter().find(|e| e.mac == b.mac).unwrap();
    assert!(ea.tcp && !eb.tcp);
    assert_eq!(ea.sock, a.sock);
    let out = sim
        .sn
        .handle_mgmt(sim.now, sock("127.0.0.1:1"), b"r 1 edges");
    let rows: Vec<&String> = out
        .replies
        .iter()
        .filter(|l| l.contains("\"macaddr\""))
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().any(|r| r.contains("\"proto\":\"TCP\"")),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("\"proto\":\"UDP\"")),
        "{rows:?}"
    );
    assert_eq!(sim.sn.stats().tcp_opened, 1);
    assert_eq!(sim.sn.stats().tcp_frames, 1);
}

#[test]
fn relay_tcp_to_udp_and_back() {
    let (mut sim, a, b) = mixed_pair();
    // TCP edge → UDP edge.
    let out = feed_tcp(&mut sim, C1, a.sock, &a.packet(b.mac, b"hello b"));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1), (b.sock, None));
    let (hdr, m) = wire::decode(&out[0].2).unwrap();
    assert!(hdr.flags.contains(wire::Flags::FROM_SUPERNODE));
    match m {
        Message::Packet(p) => {
            assert_eq!(p.payload, b"hello b");
            assert_eq!(p.sock, Some(PeerSock::from(a.sock)));
        }
        m => panic!("{m:?}"),
    }
    // UDP edge → TCP edge: queued for the connection.
    let out = feed_udp(&mut sim, b.sock, &b.packet(a.mac, b"hello a"));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1), (a.sock, Some(C1)));
    // Broadcast from the UDP edge reaches the TCP edge on its connection.
    let out = feed_udp(&mut sim, b.sock, &b.packet(Mac::BROADCAST, b"arp"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Some(C1));
    assert_eq!(sim.sn.stats().fwd, 2);
}

#[test]
fn pong_and_peer_info_on_the_connection() {
    let (mut sim, a, b) = mixed_pair();
    let ping = a.query(Mac::NULL);
    let out = feed_tcp(&mut sim, C1, a.sock, &ping);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Some(C1));
    assert!(
        matches!(wire::decode(&out[0].2).unwrap().1, Message::PeerInfo(p) if p.mac == Mac::NULL)
    );
    let out = feed_tcp(&mut sim, C1, a.sock, &a.query(b.mac));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Some(C1));
    match wire::decode(&out[0].2).unwrap().1 {
        Message::PeerInfo(p) => {
            assert_eq!(p.mac, b.mac);
            assert_eq!(p.sock, PeerSock::from(b.sock));
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn same_address_over_udp_is_another_socket() {
    // A UDP datagram from the TCP connection's remote address is not the
    // TCP edge: it is told to re-register, relays still go to the connection.
    let (mut sim, a, b) = mixed_pair();
    let out = feed_udp(&mut sim, a.sock, &a.packet(b.mac, b"x"));
    assert!(out.iter().any(|(d, c, _)| *d == b.sock && c.is_none()));
    assert!(out.iter().any(|(d, c, bytes)| *d == a.sock
        && c.is_none()
        && matches!(wire::decode(bytes).unwrap().1, Message::ReRegisterSuper)));
}

#[test]
fn closing_the_connection_removes_its_edge_only() {
    let (mut sim, a, b) = mixed_pair();
    let _ = sim.events();
    sim.sn.tcp_closed(sim.now, ConnId(99), None);
    assert_eq!(
        sim.sn.edges().len(),
        2,
        "another connection: nothing removed"
    );
    sim.sn
        .tcp_closed(sim.now, C1, Some(DropReason::TcpFrameTooLong));
    let edges = sim.sn.edges();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].mac, b.mac);
    assert!(sim.events().contains(&SupernodeEvent::EdgeClosed {
        community: a.community,
        mac: a.mac
    }));
    assert_eq!(sim.drops(DropReason::TcpFrameTooLong), 1);
    assert_eq!(sim.sn.stats().tcp_closed, 2);
    // Nothing reaches the closed connection any more.
    let out = feed_udp(&mut sim, b.sock, &b.packet(a.mac, b"lost"));
    assert!(out.iter().all(|(_, c, _)| c.is_none()));
    assert_eq!(sim.drops(DropReason::UnknownDestination), 1);
    // Reconnected on a new connection: registered again, reachable there.
    let c2 = ConnId(2);
    let out = feed_tcp(&mut sim, c2, sock("198.51.100.1:40001"), &a.reg_super(8));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Some(c2));
    let out = feed_udp(&mut sim, b.sock, &b.packet(a.mac, b"again"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Some(c2));
}

#[test]
fn tcp_edges_are_purged_like_udp_edges() {
    let (mut sim, _a, _b) = mixed_pair();
    sim.advance(std::time::Duration::from_secs(95));
    sim.sn.handle_timeout(sim.now);
    assert!(sim.sn.edges().is_empty());
}
