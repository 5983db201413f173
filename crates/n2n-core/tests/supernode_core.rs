//! Deterministic tests of the sans-IO supernode: registration, spoofing
//! protection, relay, isolation, header encryption, auto-IP, PEER_INFO,
//! PING/PONG, purging, TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sn_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_core::supernode::{DropReason, HeState, RefuseReason, SupernodeConfig, SupernodeEvent};
use n2n_proto::he::{CommunityHe, StampGenerator};
use n2n_proto::types::{Auth, DevAddr, DevDesc, Mac, PeerSock};
use n2n_proto::wire::{
    self, Flags, Header, Message, PeerInfo, RegisterSuper, RegisterSuperAck, RegisterSuperNak,
};
use sn_common::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

fn ack_of(bytes: &[u8]) -> RegisterSuperAck<'_> {
    match wire::decode(bytes).unwrap().1 {
        Message::RegisterSuperAck(a) => a,
        m => panic!("expected ACK, got {m:?}"),
    }
}

fn nak_of(bytes: &[u8]) -> RegisterSuperNak {
    match wire::decode(bytes).unwrap().1 {
        Message::RegisterSuperNak(n) => n,
        m => panic!("expected NAK, got {m:?}"),
    }
}

const COMM_N2NTEST: &str = "6e326e74657374 00000000000000000000000000";

/// wire.md §7: the REGISTER_SUPER / ACK, PING / PONG and relayed PACKET
/// examples, byte for byte.
/// An open supernode with edges `a` (10.1.0.1) and `b` (10.1.0.2) of `net1` registered.
fn registered_pair() -> (Sim, TestEdge, TestEdge) {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let b = TestEdge::new("net1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    sim.register(&a);
    sim.register(&b);
    (sim, a, b)
}

#[test]
fn wire_md_worked_examples_byte_exact() {
    let mut cfg = SupernodeConfig::new(Mac([0xca, 0xd6, 0x5b, 0x8f, 0x9f, 0xd8]));
    cfg.version = "3.1.1".into();
    let mut sim = Sim::new(cfg);
    let a = sock("192.0.2.2:40110");
    let b = sock("192.0.2.2:32785");
    let reg = h(&format!(
        "03 02 0005 {COMM_N2NTEST} 3e95bd79 020000000a01 0a630001 18 6564676541 0000000000000000000000 \
         0001 0010 8630faad1e66a0bf07b1e273d6980711 00000000"
    ));
    let out = sim.feed(a, &reg);
    let ack = h(&format!(
        "03 02 0067 {COMM_N2NTEST} 3e95bd79 cad65b8f9fd8 00000000 00 000f 0000 9cae c0000202 0000 0000 00 00000000"
    ));
    assert_eq!(out, vec![(a, ack)]);

    // B registers too, then broadcasts an ARP (58 payload bytes).
    let mut reg_b = reg.clone();
    reg_b[28..34].copy_from_slice(&[2, 0, 0, 0, 0x0b, 1]);
    reg_b[34..38].copy_from_slice(&[10, 99, 0, 2]);
    reg_b[59..75].copy_from_slice(&[0x42; 16]);
    assert_eq!(sim.feed(b, &reg_b).len(), 1);
    let payload: Vec<u8> = (0..58u8).collect();
    let mut pkt = h(&format!(
        "03 02 0003 {COMM_N2NTEST} 020000000b01 ffffffffffff 01 03"
    ));
    pkt.extend_from_slice(&payload);
    let out = sim.feed(b, &pkt);
    let mut relayed = h(&format!(
        "03 01 0063 {COMM_N2NTEST} 020000000b01 ffffffffffff 0000 8011 c0000202 01 03"
    ));
    relayed.extend_from_slice(&payload);
    assert_eq!(out, vec![(a, relayed)]);

    // PING 8 s after start → PONG with uptime 8.
    sim.advance(Duration::from_secs(8));
    let ping = h(&format!(
        "03 02 000b {COMM_N2NTEST} 020000000a01 000000000000 0000"
    ));
    let pong = h(&format!(
        "03 02 002a {COMM_N2NTEST} 0000 cad65b8f9fd8 000000000000 0000 9cae c0000202 00000000 00000008 \
         332e312e3100 0000000000000000000000000000"
    ));
    assert_eq!(sim.feed(a, &ping), vec![(a, pong)]);
    assert_eq!(sim.sn.stats().fwd, 0);
    assert_eq!(sim.sn.stats().broadcast, 1);
    assert_eq!(sim.sn.stats().reg_super, 2);
}

#[test]
fn registration_ack_fields() {
    let mut sim = Sim::open();
    let mut e = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    e.preferred = Some(PeerSock::v4(Ipv4Addr::new(192, 168, 1, 5), 6000));
    let (dst, bytes) = sim.feed(e.sock, &e.reg_super(0xdead_beef)).pop().unwrap();
    assert_eq!(dst, e.sock);
    let (hdr, _) = wire::Header::parse(&bytes).unwrap();
    assert_eq!(hdr.ttl, 2);
    assert_eq!(hdr.flags, Flags::SOCKET | Flags::FROM_SUPERNODE);
    assert_eq!(hdr.community, e.community);
    let ack = ack_of(&bytes);
    assert_eq!(ack.cookie, 0xdead_beef);
    assert_eq!(ack.src_mac, SN_MAC);
    assert_eq!(
        ack.dev_addr,
        DevAddr::UNSPECIFIED,
        "static address: nothing assigned"
    );
    assert_eq!(ack.lifetime, 15);
    assert_eq!(ack.sock, PeerSock::from(e.sock));
    assert_eq!(ack.auth, Auth::NONE);
    assert!(ack.sn_list.is_empty());
    assert_eq!(ack.key_time, 0);
    let edges = sim.sn.edges();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].mac, e.mac);
    assert_eq!(edges[0].sock, e.sock);
    assert_eq!(edges[0].preferred, e.preferred);
    assert_eq!(edges[0].dev_addr, e.dev_addr);
    let ev = sim.events();
    assert!(ev.contains(&SupernodeEvent::EdgeRegistered {
        community: e.community,
        mac: e.mac,
        sock: e.sock,
        ip: e.dev_addr,
    }));
    assert!(ev.iter().any(|x| matches!(x, SupernodeEvent::CommunityCreated { community, .. } if *community == e.community)));
    assert_eq!(sim.sn.stats().reg_super, 1);
    assert_eq!(sim.sn.stats().reg_super_nak, 0);
}

#[test]
fn nak_on_mac_spoofing_with_other_token() {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    sim.register(&a);
    let mut spoof = a.clone();
    spoof.sock = sock("203.0.113.9:7777");
    spoof.token = [0xee; 16];
    spoof.dev_addr = DevAddr::new(Ipv4Addr::new(10, 1, 0, 66), 24);
    let out = sim.feed(spoof.sock, &spoof.reg_super(0x99));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, spoof.sock);
    let (hdr, _) = wire::Header::parse(&out[0].1).unwrap();
    assert_eq!(hdr.flags, Flags::SOCKET | Flags::FROM_SUPERNODE);
    let nak = nak_of(&out[0].1);
    assert_eq!(nak.cookie, 0x99);
    assert_eq!(nak.src_mac, a.mac, "NAK carries the rejected edge's MAC");
    assert_eq!(nak.auth, Auth::NONE);
    assert_eq!(out[0].1.len(), 38);
    // The registration is untouched: traffic still goes to the original socket.
    assert_eq!(sim.sn.edges()[0].sock, a.sock);
    assert_eq!(sim.sn.stats().reg_super_nak, 1);
    assert_eq!(sim.sn.stats().refusal_count(RefuseReason::MacInUse), 1);
    assert!(sim.events().iter().any(|e| matches!(
        e,
        SupernodeEvent::EdgeRefused {
            reason: RefuseReason::MacInUse,
            ..
        }
    )));
    // A spoofed UNREGISTER_SUPER cannot remove it either.
    assert!(sim.feed(spoof.sock, &spoof.unreg()).is_empty());
    assert_eq!(sim.drops(DropReason::AuthMismatch), 1);
    assert_eq!(sim.sn.edges().len(), 1);
    // The real edge can.
    assert!(sim.feed(a.sock, &a.unreg()).is_empty());
    assert!(sim.sn.edges().is_empty());
    assert!(sim.events().contains(&SupernodeEvent::EdgeUnregistered {
        community: a.community,
        mac: a.mac
    }));
}

#[test]
fn nak_on_ip_spoofing_and_rekey_with_same_token() {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    sim.register(&a);
    // Other MAC, same TAP address, other token → NAK, no re-key.
    let mut thief = TestEdge::new("net1", 9, "203.0.113.9:7777", [10, 1, 0, 1]);
    let (_, r) = sim.register(&thief);
    assert_eq!(nak_of(&r).src_mac, thief.mac);
    assert_eq!(sim.sn.stats().refusal_count(RefuseReason::IpInUse), 1);
    let edges = sim.sn.edges();
    assert_eq!((edges.len(), edges[0].mac), (1, a.mac));
    // Same TAP address, other MAC, *same* token: the entry moves to the new MAC.
    thief.token = a.token;
    let (_, r) = sim.register(&thief);
    assert_eq!(ack_of(&r).cookie, 0x1234_5678);
    let edges = sim.sn.edges();
    assert_eq!(
        (edges.len(), edges[0].mac, edges[0].sock),
        (1, thief.mac, thief.sock)
    );
}

#[test]
fn zero_address_is_never_matched() {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [0, 0, 0, 0]);
    let b = TestEdge::new("net1", 2, "198.51.100.2:5000", [0, 0, 0, 0]);
    ack_of(&sim.register(&a).1);
    ack_of(&sim.register(&b).1);
    assert_eq!(sim.sn.edges().len(), 2);
    assert_eq!(sim.sn.stats().reg_super_nak, 0);
}

#[test]
fn same_mac_same_token_reregisters_at_once() {
    let (mut sim, a, b) = registered_pair();
    // a restarts behind a new NAT port with its persistent token.
    let mut a2 = a.clone();
    a2.sock = sock("198.51.100.1:6001");
    let (dst, r) = sim.register(&a2);
    assert_eq!(dst, a2.sock);
    ack_of(&r);
    assert_eq!(sim.sn.stats().reg_super_nak, 0);
    // Relay now goes to the new socket.
    let out = sim.feed(b.sock, &b.packet(a.mac, b"hello"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, a2.sock);
    // …but a new token for that MAC is refused.
    let mut a3 = a2.clone();
    a3.token = [0x77; 16];
    a3.sock = sock("198.51.100.1:6002");
    nak_of(&sim.register(&a3).1);
}

#[test]
fn restarted_edge_with_new_token_from_same_socket_is_accepted() {
    let (mut sim, a, b) = registered_pair();
    sim.events();
    // a is killed (no UNREGISTER_SUPER) and restarted with the same MAC and port: a new
    // random token from the very same socket.
    let mut a2 = a.clone();
    a2.token = [0x66; 16];
    let (dst, r) = sim.register(&a2);
    assert_eq!(dst, a2.sock);
    ack_of(&r);
    assert_eq!(sim.sn.stats().reg_super_nak, 0);
    assert!(sim.events().iter().any(|e| matches!(
        e,
        SupernodeEvent::EdgeRegistered { mac, .. } if *mac == a.mac
    )));
    let edges = sim.sn.edges();
    assert_eq!(edges.len(), 2);
    let out = sim.feed(b.sock, &b.packet(a.mac, b"hello"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, a.sock);
    // The new token is now the one bound to the MAC: the old one, or any other, from
    // another socket is refused.
    for token in [a.token, [0x77; 16]] {
        let mut spoof = a.clone();
        spoof.token = token;
        spoof.sock = sock("203.0.113.9:7777");
        nak_of(&sim.register(&spoof).1);
    }
    assert_eq!(
        sim.sn.edges().iter().find(|e| e.mac == a.mac).unwrap().sock,
        a.sock
    );
    assert_eq!(sim.sn.stats().refusal_count(RefuseReason::MacInUse), 2);
}

#[test]
fn without_spoofing_protection_any_token_is_accepted() {
    let mut cfg = SupernodeConfig::new(SN_MAC);
    cfg.spoofing_protection = false;
    let mut sim = Sim::new(cfg);
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    sim.register(&a);
    let mut other = a.clone();
    other.token = [0x55; 16];
    other.sock = sock("203.0.113.1:1");
    ack_of(&sim.register(&other).1);
    assert_eq!(sim.sn.edges()[0].sock, other.sock);
}

#[test]
fn purge_after_60_seconds_of_silence() {
    let (mut sim, a, b) = registered_pair();
    sim.events();
    assert_eq!(
        sim.sn.poll_timeout(),
        Some(sim.t0 + Duration::from_secs(30))
    );
    sim.advance(Duration::from_secs(30));
    sim.sn.handle_timeout(sim.now);
    assert_eq!(sim.sn.edges().len(), 2);
    assert_eq!(
        sim.sn.poll_timeout(),
        Some(sim.t0 + Duration::from_secs(60))
    );
    // b keeps registering; a is silent.
    sim.advance(Duration::from_secs(10));
    sim.register(&b);
    sim.advance(Duration::from_secs(20));
    sim.sn.handle_timeout(sim.now); // t = 60: a silent for 60 s
    let edges = sim.sn.edges();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].mac, b.mac);
    assert_eq!(
        sim.events(),
        vec![SupernodeEvent::EdgePurged {
            community: a.community,
            mac: a.mac
        }]
    );
    // Relay to a is gone.
    assert!(sim.feed(b.sock, &b.packet(a.mac, b"x")).is_empty());
    assert_eq!(sim.drops(DropReason::UnknownDestination), 1);
    // b silent too → purged, and the empty dynamic community goes with it.
    sim.advance(Duration::from_secs(60));
    sim.sn.handle_timeout(sim.now);
    assert!(sim.sn.edges().is_empty());
    assert!(sim.sn.communities().is_empty());
    let ev = sim.events();
    assert!(ev.contains(&SupernodeEvent::CommunityRemoved {
        community: b.community
    }));
}

#[test]
fn fixed_communities_are_never_purged() {
    let mut sim = Sim::with_list("fixed\n.*\n");
    let a = TestEdge::new("fixed", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let d = TestEdge::new("dyn", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    sim.register(&a);
    sim.register(&d);
    sim.advance(Duration::from_secs(120));
    sim.sn.handle_timeout(sim.now);
    let names: Vec<_> = sim.sn.communities().iter().map(|c| c.community).collect();
    assert_eq!(names, vec![comm("fixed")]);
}

#[test]
fn broadcast_fans_out_to_every_other_edge_of_the_community_only() {
    let mut sim = Sim::open();
    let a = TestEdge::new("red", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let b = TestEdge::new("red", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    let c = TestEdge::new("red", 3, "198.51.100.3:5000", [10, 1, 0, 3]);
    let d = TestEdge::new("blue", 4, "198.51.100.4:5000", [10, 1, 0, 4]);
    for e in [&a, &b, &c, &d] {
        sim.register(e);
    }
    let payload = [0xabu8; 100];
    let pkt = a.packet(Mac::BROADCAST, &payload);
    let out = sim.feed(a.sock, &pkt);
    let mut dsts: Vec<_> = out.iter().map(|(d, _)| *d).collect();
    dsts.sort();
    assert_eq!(dsts, vec![b.sock, c.sock]);
    let mut expect = vec![0u8; 2048];
    let n = wire::relay_reencode(&pkt, PeerSock::from(a.sock), 1, &mut expect).unwrap();
    for (_, bytes) in &out {
        assert_eq!(bytes, &expect[..n]);
    }
    // IPv4 multicast MAC behaves the same.
    let mc = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    assert_eq!(sim.feed(a.sock, &a.packet(mc, &payload)).len(), 2);
    assert_eq!(sim.sn.stats().broadcast, 4);
    // Alone in its community: nothing goes out.
    assert!(
        sim.feed(d.sock, &d.packet(Mac::BROADCAST, &payload))
            .is_empty()
    );
}

/// Tries hard to make traffic cross communities.
#[test]
fn community_isolation() {
    let mut sim = Sim::open();
    // The same MACs in two communities whose names share a prefix.
    let a1 = TestEdge::new("ab", 1, "198.51.100.1:1", [10, 1, 0, 1]);
    let a2 = TestEdge::new("ab", 2, "198.51.100.2:1", [10, 1, 0, 2]);
    let b1 = TestEdge::new("abc", 1, "198.51.100.11:1", [10, 1, 0, 1]);
    let b2 = TestEdge::new("abc", 2, "198.51.100.12:1", [10, 1, 0, 2]);
    let b3 = TestEdge::new("abc", 3, "198.51.100.13:1", [10, 1, 0, 3]);
    for e in [&a1, &a2, &b1, &b2, &b3] {
        ack_of(&sim.register(e).1);
    }
    let in_ab = |d: &SocketAddr| *d == a1.sock || *d == a2.sock;
    let in_abc = |d: &SocketAddr| *d == b1.sock || *d == b2.sock || *d == b3.sock;

    // Broadcasts stay home.
    for (e, home) in [
        (&a1, &in_ab as &dyn Fn(&SocketAddr) -> bool),
        (&b1, &in_abc),
    ] {
        let out = sim.feed(e.sock, &e.packet(Mac::BROADCAST, b"bc"));
        assert!(!out.is_empty());
        assert!(out.iter().all(|(d, _)| home(d)), "{out:?}");
    }
    // Same MAC in both: unicast goes to the sender's community's edge.
    let out = sim.feed(a1.sock, &a1.packet(a2.mac, b"u"));
    assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), vec![a2.sock]);
    let out = sim.feed(b1.sock, &b1.packet(b2.mac, b"u"));
    assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), vec![b2.sock]);
    // A MAC that only exists in the other community: dropped.
    let before = sim.drops(DropReason::UnknownDestination);
    assert!(sim.feed(a1.sock, &a1.packet(b3.mac, b"u")).is_empty());
    assert!(sim.feed(a1.sock, &a1.register_msg(b3.mac)).is_empty());
    assert_eq!(sim.drops(DropReason::UnknownDestination), before + 2);
    // QUERY_PEER across communities: nothing learnt.
    assert!(sim.feed(a1.sock, &a1.query(b3.mac)).is_empty());
    // Within the community it works (and tells the right socket).
    let out = sim.feed(b1.sock, &b1.query(b3.mac));
    assert_eq!(out.len(), 1);
    match wire::decode(&out[0].1).unwrap().1 {
        Message::PeerInfo(p) => assert_eq!(p.sock, PeerSock::from(b3.sock)),
        m => panic!("{m:?}"),
    }
    // Community field "ab\0c…": it is community "ab" (C compares names as
    // strings), never "abc", and the residue does not leave the supernode.
    let mut residue = a1.packet(Mac::BROADCAST, b"r");
    residue[6] = 0;
    residue[7] = b'c';
    residue[20] = b'z';
    let out = sim.feed(a1.sock, &residue);
    assert_eq!(out.len(), 1);
    assert!(in_ab(&out[0].0));
    assert_eq!(&out[0].1[4..24], a1.community.field());
    // A sender from community "ab" pretending to be from "abc" only
    // reaches "abc" (it is a different community, not a crossing), and a
    // sender claiming "abcd" (not existing) reaches no one.
    let mut fake = a1.clone();
    fake.community = comm("abcd");
    // (Its only answer is the RE_REGISTER_SUPER of the restart fast path.)
    let out = sim.feed(fake.sock, &fake.packet(Mac::BROADCAST, b"f"));
    assert!(
        out.iter()
            .all(|(d, m)| *d == fake.sock && is_re_register(m)),
        "{out:?}"
    );
    let out = sim.feed(fake.sock, &fake.packet(b1.mac, b"f"));
    assert!(
        out.iter()
            .all(|(d, m)| *d == fake.sock && is_re_register(m))
    );
    assert!(sim.feed(fake.sock, &fake.query(b1.mac)).is_empty());
    assert_eq!(sim.drops(DropReason::UnknownCommunity), 3);
    // 19-byte name vs the same 19 bytes + garbage in byte 23: byte 23 ≠ 0
    // is "encrypted", and no key → dropped.
    let long = TestEdge::new("abcdefghijklmnopqrs", 1, "198.51.100.21:1", [10, 1, 0, 1]);
    sim.register(&long);
    let mut p = long.packet(Mac::BROADCAST, b"x");
    p[23] = b't';
    assert!(sim.feed(long.sock, &p).is_empty());
    assert_eq!(sim.drops(DropReason::HeNoKey), 1);
    // Edges of each community are exactly what registered there.
    let mut per: Vec<(String, Mac)> = sim
        .sn
        .edges()
        .iter()
        .map(|e| (e.community.to_string(), e.mac))
        .collect();
    per.sort();
    assert_eq!(
        per,
        vec![
            ("ab".into(), a1.mac),
            ("ab".into(), a2.mac),
            ("abc".into(), b1.mac),
            ("abc".into(), b2.mac),
            ("abc".into(), b3.mac),
            ("abcdefghijklmnopqrs".into(), long.mac),
        ]
    );
}

#[test]
fn header_encrypted_community() {
    let mut sim = Sim::with_list("secret\n");
    let keys = CommunityHe::new(*comm("secret").field());
    let mut stamps_a = StampGenerator::new();
    let mut stamps_b = StampGenerator::new();
    let a = TestEdge::new("secret", 1, "198.51.100.1:5000", [10, 9, 0, 1]);
    let b = TestEdge::new("secret", 2, "198.51.100.2:5000", [10, 9, 0, 2]);
    assert_eq!(sim.sn.communities()[0].he_state, HeState::Unknown);

    // Encrypted registration → encrypted ACK, community locked.
    let reg_a = he_encrypt(&keys, &mut stamps_a, sim.now, &a.reg_super(1));
    let out = sim.feed(a.sock, &reg_a);
    assert_eq!(out.len(), 1);
    let mut ack = out[0].1.clone();
    assert!(!wire::looks_plain(&ack), "ACK must be encrypted");
    let (_, d) = keys.decrypt(&mut ack).unwrap();
    n2n_proto::he::verify_stamp(d.stamp, sim.now.he_stamp(), None, false).unwrap();
    assert_eq!(ack_of(&ack).cookie, 1);
    assert_eq!(sim.sn.communities()[0].he_state, HeState::Encrypted);
    assert!(sim.events().contains(&SupernodeEvent::HeLocked {
        community: comm("secret"),
        encrypted: true
    }));
    sim.advance(Duration::from_millis(10));
    let reg_b = he_encrypt(&keys, &mut stamps_b, sim.now, &b.reg_super(2));
    assert_eq!(sim.feed(b.sock, &reg_b).len(), 1);

    // Plain registration / packet for that community: downgrade → dropped.
    let c = TestEdge::new("secret", 3, "198.51.100.3:5000", [10, 9, 0, 3]);
    assert!(sim.feed(c.sock, &c.reg_super(3)).is_empty());
    assert!(sim.feed(a.sock, &a.packet(b.mac, b"plain")).is_empty());
    assert_eq!(sim.drops(DropReason::HeDowngrade), 2);

    // Encrypted PACKET is relayed re-encrypted with the supernode's stamp.
    sim.advance(Duration::from_millis(10));
    let plain = a.packet(b.mac, b"hello");
    let p1 = he_encrypt(&keys, &mut stamps_a, sim.now, &plain);
    let out = sim.feed(a.sock, &p1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, b.sock);
    let mut relayed = out[0].1.clone();
    let (_, d) = keys.decrypt(&mut relayed).unwrap();
    assert_eq!(d.header_len, 46);
    let mut expect = vec![0u8; 2048];
    let n = wire::relay_reencode(&plain, PeerSock::from(a.sock), 1, &mut expect).unwrap();
    assert_eq!(relayed, &expect[..n]);

    // Replays: the same REGISTER_SUPER again, and an older PACKET after a
    // newer one (more than the 160 ms jitter apart).
    assert!(sim.feed(a.sock, &reg_a).is_empty());
    sim.advance(Duration::from_secs(1));
    let p2 = he_encrypt(&keys, &mut stamps_a, sim.now, &plain);
    assert_eq!(sim.feed(a.sock, &p2).len(), 1);
    assert!(sim.feed(a.sock, &p1).is_empty());
    assert_eq!(sim.drops(DropReason::StampRejected), 2);
    // A stamp outside ±16 s.
    let mut old = StampGenerator::new();
    let mut then = sim.now;
    then.unix_us -= 20_000_000;
    let stale = he_encrypt(&keys, &mut old, then, &b.packet(a.mac, b"x"));
    assert!(sim.feed(b.sock, &stale).is_empty());
    assert_eq!(sim.drops(DropReason::StampRejected), 3);

    // Wrong key (another name) → no key.
    let other = CommunityHe::new(*comm("secreT").field());
    let bad = he_encrypt(
        &other,
        &mut StampGenerator::new(),
        sim.now,
        &a.packet(b.mac, b"x"),
    );
    assert!(sim.feed(a.sock, &bad).is_empty());
    assert_eq!(sim.drops(DropReason::HeNoKey), 1);

    // Encrypted PING → encrypted PONG.
    sim.advance(Duration::from_millis(500));
    let ping = he_encrypt(&keys, &mut stamps_a, sim.now, &a.query(Mac::NULL));
    let out = sim.feed(a.sock, &ping);
    let mut pong = out[0].1.clone();
    keys.decrypt(&mut pong).unwrap();
    match wire::decode(&pong).unwrap().1 {
        Message::PeerInfo(p) => assert!(p.is_pong()),
        m => panic!("{m:?}"),
    }

    // Not in the list → REGISTER_SUPER silently dropped.
    let stranger = TestEdge::new("other", 5, "198.51.100.5:5000", [10, 9, 0, 5]);
    assert!(sim.feed(stranger.sock, &stranger.reg_super(5)).is_empty());
    assert_eq!(sim.drops(DropReason::CommunityNotAllowed), 1);
}

#[test]
fn plain_first_locks_fixed_community_to_plain() {
    let mut sim = Sim::with_list("rocks\n");
    let keys = CommunityHe::new(*comm("rocks").field());
    let a = TestEdge::new("rocks", 1, "198.51.100.1:5000", [10, 9, 0, 1]);
    ack_of(&sim.register(&a).1);
    assert_eq!(sim.sn.communities()[0].he_state, HeState::Plain);
    let enc = he_encrypt(&keys, &mut StampGenerator::new(), sim.now, &a.reg_super(9));
    assert!(sim.feed(a.sock, &enc).is_empty());
    assert_eq!(sim.drops(DropReason::HeNoKey), 1);
}

#[test]
fn unknown_user_is_refused_with_nak() {
    let list = "rocks\n* alice VJ98N3ZOowY+k6GNFQLbgQ3kTIzoYVRoFiYpQtW4-0O\n";
    let mut sim = Sim::with_list(list);
    let keys = CommunityHe::new(*comm("rocks").field());
    let a = TestEdge::new("rocks", 1, "198.51.100.1:5000", [10, 9, 0, 1]);
    let mut m = a.reg_super_msg(0x42);
    m.auth = Auth::new(Auth::SCHEME_USER_PASSWORD, &[7; 48]).unwrap();
    m.dev_desc = DevDesc::new("alice");
    let plain = encode(&Header::new(a.community), &Message::RegisterSuper(m));
    let mut enc = he_encrypt(&keys, &mut StampGenerator::new(), sim.now, &plain);
    enc.extend_from_slice(&[0x5a; 16]); // user/password trailer
    let out = sim.feed(a.sock, &enc);
    assert_eq!(out.len(), 1);
    let mut nak = out[0].1.clone();
    assert_eq!(nak.len(), 38 + 16, "NAK plus trailer");
    let (_, d) = keys.decrypt(&mut nak).unwrap();
    assert_eq!(nak_of(&nak[..d.len]).cookie, 0x42);
    assert_eq!(sim.sn.stats().refusal_count(RefuseReason::UnknownUser), 1);
    assert!(sim.sn.edges().is_empty());
}

#[test]
fn auto_ip_assignment() {
    let mut sim = Sim::open();
    let boot = TestEdge {
        community: comm("testcomm"),
        mac: Mac::NULL,
        sock: sock("198.51.100.1:5000"),
        dev_addr: DevAddr::UNSPECIFIED,
        desc: DevDesc::new("hostA"),
        token: [1; 16],
        preferred: None,
    };
    let (_, r) = sim.register(&boot);
    let ack = ack_of(&r);
    assert_eq!(
        ack.dev_addr,
        DevAddr::new(Ipv4Addr::new(10, 150, 108, 174), 24)
    );
    assert!(sim.sn.edges().is_empty(), "bootstrap request is not stored");
    assert_eq!(
        sim.sn.communities()[0].subnet.unwrap().to_string(),
        "10.150.108.0/24"
    );
    // The edge then registers with its MAC and the address; another
    // "hostA" asking now gets the next free address below.
    let mut real = boot.clone();
    real.mac = mac(1);
    real.dev_addr = ack.dev_addr;
    assert_eq!(
        ack_of(&sim.register(&real).1).dev_addr,
        DevAddr::UNSPECIFIED
    );
    let mut boot2 = boot.clone();
    boot2.sock = sock("198.51.100.2:5000");
    let ack2 = ack_of(&sim.register(&boot2).1).dev_addr;
    assert_eq!(ack2, DevAddr::new(Ipv4Addr::new(10, 150, 108, 173), 24));
    // Link-local and prefix-0 requests also get an address.
    let mut ll = boot.clone();
    ll.mac = mac(3);
    ll.desc = DevDesc::new("hostA");
    ll.dev_addr = DevAddr::new(Ipv4Addr::new(169, 254, 3, 3), 16);
    ll.sock = sock("198.51.100.3:5000");
    assert_eq!(ack_of(&sim.register(&ll).1).dev_addr.prefix, 24);
}

#[test]
fn peer_info_answers() {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let mut b = TestEdge::new("net1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    b.preferred = Some(PeerSock::v4(Ipv4Addr::new(192, 168, 7, 2), 5002));
    sim.register(&a);
    sim.register(&b);
    let out = sim.feed(a.sock, &a.query(b.mac));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, a.sock);
    let (hdr, m) = wire::decode(&out[0].1).unwrap();
    assert_eq!(hdr.flags, Flags::SOCKET | Flags::FROM_SUPERNODE);
    assert_eq!(hdr.ttl, 2);
    let expect = PeerInfo {
        aflags: 0,
        src_mac: a.mac,
        mac: b.mac,
        sock: PeerSock::from(b.sock),
        preferred_sock: b.preferred,
        load: 0,
        uptime: 0,
        version: [0; 20],
    };
    assert_eq!(m, Message::PeerInfo(expect));
    assert_eq!(out[0].1.len(), 82);
    // Without a preferred socket: 74 bytes, no SOCKET flag.
    let out = sim.feed(b.sock, &b.query(a.mac));
    assert_eq!(out[0].1.len(), 74);
    assert_eq!(
        wire::Header::parse(&out[0].1).unwrap().0.flags,
        Flags::FROM_SUPERNODE
    );
    // Unknown target.
    assert!(sim.feed(a.sock, &a.query(mac(77))).is_empty());
    assert_eq!(sim.drops(DropReason::UnknownDestination), 1);
}

#[test]
fn ping_pong() {
    let mut cfg = SupernodeConfig::new(SN_MAC);
    cfg.version = "n2n-rs 0.1".into();
    let mut sim = Sim::new(cfg);
    sim.advance(Duration::from_secs(42));
    // Community does not exist: still answered (open supernode).
    let e = TestEdge::new("nowhere", 1, "198.51.100.1:5000", [0, 0, 0, 0]);
    let out = sim.feed(e.sock, &e.query(Mac::NULL));
    assert_eq!(out.len(), 1);
    let (hdr, m) = wire::decode(&out[0].1).unwrap();
    assert_eq!(hdr.flags, Flags::FROM_SUPERNODE);
    assert_eq!(hdr.community, e.community);
    let Message::PeerInfo(p) = m else { panic!() };
    assert_eq!(p.src_mac, SN_MAC);
    assert!(p.mac.is_null());
    assert_eq!(p.sock, PeerSock::from(e.sock));
    assert_eq!(p.load, 0);
    assert_eq!(p.uptime, 42);
    assert_eq!(p.version_bytes(), b"n2n-rs 0.1");
    assert!(p.version[10..].iter().all(|&b| b == 0));
    assert!(sim.sn.communities().is_empty(), "PING creates nothing");

    // Locked supernode: only allowed names.
    let mut sim = Sim::with_list("fixed\nntop[0-9]\n");
    let ok = TestEdge::new("ntop5", 1, "198.51.100.1:5000", [0, 0, 0, 0]);
    assert_eq!(sim.feed(ok.sock, &ok.query(Mac::NULL)).len(), 1);
    let no = TestEdge::new("ntop55", 1, "198.51.100.1:5000", [0, 0, 0, 0]);
    assert!(sim.feed(no.sock, &no.query(Mac::NULL)).is_empty());
    assert_eq!(sim.drops(DropReason::CommunityNotAllowed), 1);
}

#[test]
fn ttl_zero_is_dropped_and_ttl_decremented() {
    let (mut sim, a, b) = registered_pair();
    let mut p = a.packet(b.mac, b"x");
    p[1] = 0;
    assert!(sim.feed(a.sock, &p).is_empty());
    assert_eq!(sim.drops(DropReason::TtlExpired), 1);
    p[1] = 7;
    let out = sim.feed(a.sock, &p);
    assert_eq!(out[0].1[1], 6);
    let mut r = a.reg_super(1);
    r[1] = 0;
    assert!(sim.feed(a.sock, &r).is_empty());
    assert_eq!(sim.drops(DropReason::TtlExpired), 2);
}

#[test]
fn register_relay_unicast_only() {
    let (mut sim, a, b) = registered_pair();
    let reg = a.register_msg(b.mac);
    let out = sim.feed(a.sock, &reg);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, b.sock);
    assert_eq!(out[0].1.len(), 69);
    let mut expect = vec![0u8; 2048];
    let n = wire::relay_reencode(&reg, PeerSock::from(a.sock), 1, &mut expect).unwrap();
    assert_eq!(out[0].1, &expect[..n]);
    assert!(sim.feed(a.sock, &a.register_msg(Mac::BROADCAST)).is_empty());
    assert_eq!(sim.drops(DropReason::MulticastRegister), 1);
    assert_eq!(sim.sn.stats().fwd, 1);
}

#[test]
fn supernode_traffic_and_odd_types_are_dropped() {
    let mut sim = Sim::open();
    let a = TestEdge::new("net1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    sim.register(&a);
    let mut p = a.packet(Mac::BROADCAST, b"x");
    p[3] |= 0x20; // FROM_SUPERNODE
    assert!(sim.feed(a.sock, &p).is_empty());
    assert_eq!(sim.drops(DropReason::FromUnknownSupernode), 1);
    // REGISTER_SUPER with our own MAC.
    let mut me = a.clone();
    me.mac = SN_MAC;
    assert!(sim.feed(me.sock, &me.reg_super(1)).is_empty());
    assert_eq!(sim.drops(DropReason::OwnMac), 1);
    // REGISTER_ACK to the supernode.
    let ra = encode(
        &Header::new(a.community),
        &Message::RegisterAck(wire::RegisterAck {
            cookie: 1,
            dst_mac: mac(2),
            src_mac: a.mac,
            sock: None,
        }),
    );
    assert!(sim.feed(a.sock, &ra).is_empty());
    assert_eq!(sim.drops(DropReason::UnexpectedType), 1);
    // Type 2 (DEREGISTER) and a federation-keyed datagram.
    let mut dereg = a.packet(Mac::BROADCAST, b"x");
    dereg[3] = 2;
    assert!(sim.feed(a.sock, &dereg).is_empty());
    assert_eq!(sim.drops(DropReason::UnsupportedType), 1);
    let fed = CommunityHe::new(n2n_proto::he::DEFAULT_FEDERATION_FIELD);
    let mut fr = RegisterSuper {
        cookie: 5,
        edge_mac: mac(0xfd),
        sock: None,
        dev_addr: DevAddr::UNSPECIFIED,
        dev_desc: DevDesc::EMPTY,
        auth: Auth::new(1, &[3; 16]).unwrap(),
        key_time: 0,
    };
    fr.cookie = 6;
    let mut hdr = Header::from_supernode(n2n_proto::types::Community::from_field(
        n2n_proto::he::DEFAULT_FEDERATION_FIELD,
    ));
    hdr.flags = Flags::FROM_SUPERNODE;
    let plain = encode(&hdr, &Message::RegisterSuper(fr));
    // Under the federation keys but another federation's name field: a
    // forged member, ignored and counted.
    let other = CommunityHe::with_static_keys(
        *n2n_core::supernode::federation_field("other").field(),
        n2n_proto::he::HeKeys::from_community_field(&n2n_proto::he::DEFAULT_FEDERATION_FIELD),
    );
    let enc = he_encrypt(&other, &mut StampGenerator::new(), sim.now, &plain);
    assert!(sim.feed(sock("198.51.100.99:7654"), &enc).is_empty());
    assert_eq!(sim.drops(DropReason::FederationForged), 1);
    assert!(sim.sn.federation().is_empty());
    // Plain, naming the federation: dropped.
    assert!(sim.feed(sock("198.51.100.99:7654"), &plain).is_empty());
    assert_eq!(sim.drops(DropReason::FederationPlain), 1);
    // The real thing is a federation registration: answered, member added.
    let enc = he_encrypt(&fed, &mut StampGenerator::new(), sim.now, &plain);
    assert_eq!(sim.feed(sock("198.51.100.99:7654"), &enc).len(), 1);
    assert_eq!(sim.sn.federation().len(), 1);
}

/// Random, truncated and mutated datagrams: never a panic, every dropped
/// one is counted.
#[test]
fn hostile_datagrams() {
    let mut sim = Sim::with_list("secret\n.*\n");
    let keys = CommunityHe::new(*comm("secret").field());
    let a = TestEdge::new("open1", 1, "198.51.100.1:5000", [10, 1, 0, 1]);
    let b = TestEdge::new("open1", 2, "198.51.100.2:5000", [10, 1, 0, 2]);
    let s = TestEdge::new("secret", 3, "198.51.100.3:5000", [10, 2, 0, 3]);
    sim.register(&a);
    sim.register(&b);
    let mut st = StampGenerator::new();
    sim.feed(
        s.sock,
        &he_encrypt(&keys, &mut st, sim.now, &s.reg_super(1)),
    );
    let valid: Vec<Vec<u8>> = vec![
        a.reg_super(7),
        a.unreg(),
        a.packet(b.mac, &[9; 40]),
        a.packet(Mac::BROADCAST, &[9; 40]),
        a.register_msg(b.mac),
        a.query(b.mac),
        a.query(Mac::NULL),
        he_encrypt(&keys, &mut st, sim.now, &s.packet(Mac::BROADCAST, &[1; 30])),
        he_encrypt(&keys, &mut st, sim.now, &s.reg_super(2)),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut handled = 0u64;
    // Truncations: every strict prefix of a valid message is dropped.
    for v in &valid {
        for len in 0..v.len() {
            if v[3] & 0x1f == 3 && len >= 38 && wire::looks_plain(v) {
                continue; // a shorter PACKET payload is still a PACKET
            }
            let before = sim.sn.stats().total_drops();
            let out = sim.feed(a.sock, &v[..len]);
            assert!(out.is_empty(), "prefix {len} of {v:02x?} produced {out:?}");
            assert_eq!(
                sim.sn.stats().total_drops(),
                before + 1,
                "prefix {len} not counted"
            );
            handled += 1;
        }
    }
    // Random bytes, with a plain-looking header half of the time.
    for i in 0..20_000 {
        let len = (rnd() % 300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 2 == 0 && len >= 24 {
            d[0] = 3;
            d[2] = 0;
            d[3] = (rnd() % 13) as u8;
            d[4] = b'o';
            d[23] = 0;
        }
        let before = sim.sn.stats().total_drops();
        let out = sim.feed(a.sock, &d);
        let decodes = wire::decode(&d).is_ok();
        if !decodes {
            assert!(out.is_empty());
            assert_eq!(sim.sn.stats().total_drops(), before + 1);
        }
        handled += 1;
    }
    // Mutations of valid messages.
    for i in 0..20_000 {
        let mut d = valid[i % valid.len()].clone();
        for _ in 0..1 + rnd() % 4 {
            let at = (rnd() as usize) % d.len();
            d[at] ^= 1 << (rnd() % 8);
        }
        if rnd() % 4 == 0 {
            let cut = (rnd() as usize) % (d.len() + 1);
            d.truncate(cut);
        }
        let before = sim.sn.stats().total_drops();
        let out = sim.feed(a.sock, &d);
        if out.is_empty() && wire::decode(&d).is_err() && d != valid[i % valid.len()] {
            assert_eq!(
                sim.sn.stats().total_drops(),
                before + 1,
                "mutation {i} of message {} not counted: {d:02x?}",
                i % valid.len()
            );
        }
        handled += 1;
    }
    assert!(handled > 40_000);
    // Still healthy afterwards.
    let a2 = TestEdge::new("fresh", 1, "198.51.100.9:5000", [10, 1, 0, 9]);
    ack_of(&sim.register(&a2).1);
}

fn is_re_register(bytes: &[u8]) -> bool {
    matches!(wire::decode(bytes), Ok((h, Message::ReRegisterSuper))
        if h.flags == Flags::FROM_SUPERNODE && bytes.len() == 24)
}

/// Restart fast path: PACKET / REGISTER / QUERY_PEER from a sender that is
/// not registered is answered with RE_REGISTER_SUPER (once per second per
/// socket), and still relayed or dropped as before; PING is not.
#[test]
fn unknown_sender_is_told_to_re_register() {
    let mut sim = Sim::open();
    let a = TestEdge::new("rocks", 1, "192.0.2.1:5001", [10, 0, 0, 1]);
    let b = TestEdge::new("rocks", 2, "192.0.2.2:5002", [10, 0, 0, 2]);
    sim.register(&b);
    // Unregistered a → b: relayed to b and a told to re-register.
    let out = sim.feed(a.sock, &a.packet(b.mac, b"hi"));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.iter().any(|(d, m)| *d == b.sock && m[3] & 0x1f == 3));
    assert!(out.iter().any(|(d, m)| *d == a.sock && is_re_register(m)));
    // Within the second: relayed, not told again.
    sim.advance(Duration::from_millis(500));
    let out = sim.feed(a.sock, &a.register_msg(b.mac));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, b.sock);
    assert_eq!(sim.sn.stats().re_register_limited, 1);
    sim.advance(Duration::from_millis(600));
    let out = sim.feed(a.sock, &a.query(b.mac));
    assert!(
        out.iter().any(|(d, m)| *d == a.sock && is_re_register(m)),
        "{out:?}"
    );
    // A PING never.
    sim.advance(Duration::from_secs(2));
    let ping = encode(
        &Header::new(a.community),
        &Message::QueryPeer(wire::QueryPeer {
            src_mac: a.mac,
            target_mac: Mac::NULL,
            aflags: 0,
        }),
    );
    let out = sim.feed(a.sock, &ping);
    assert!(!out.iter().any(|(_, m)| is_re_register(m)), "{out:?}");
    // Registered senders are never told.
    sim.register(&a);
    sim.advance(Duration::from_secs(2));
    let out = sim.feed(a.sock, &a.packet(b.mac, b"hi"));
    assert_eq!(out.len(), 1);
    // Same MAC from another socket: told (its registration is stale).
    let moved = sock("192.0.2.1:6001");
    let out = sim.feed(moved, &a.packet(b.mac, b"hi"));
    assert!(out.iter().any(|(d, m)| *d == moved && is_re_register(m)));
    // Unknown (not yet created) community, open supernode: told, nothing created.
    let c = TestEdge::new("fresh", 3, "192.0.2.3:5003", [10, 0, 1, 3]);
    let out = sim.feed(c.sock, &c.packet(b.mac, b"x"));
    assert_eq!(out.len(), 1);
    assert!(is_re_register(&out[0].1));
    assert_eq!(&out[0].1[4..24], comm("fresh").field());
    assert_eq!(sim.drops(DropReason::UnknownCommunity), 1);
    assert!(
        sim.sn
            .communities()
            .iter()
            .all(|i| i.community != comm("fresh"))
    );
}

/// A community the file does not allow is not answered.
#[test]
fn disallowed_community_is_not_told_to_re_register() {
    let mut sim = Sim::with_list("rocks\n");
    let c = TestEdge::new("other", 3, "192.0.2.3:5003", [10, 0, 1, 3]);
    let out = sim.feed(c.sock, &c.packet(mac(9), b"x"));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(sim.sn.stats().re_register_sent, 0);
}

/// Header-encrypted community: RE_REGISTER_SUPER is header-encrypted with
/// the community key.
#[test]
fn re_register_is_header_encrypted_in_he_community() {
    let mut sim = Sim::with_list("secret\n");
    let keys = CommunityHe::new(*comm("secret").field());
    let mut stamps = StampGenerator::new();
    let a = TestEdge::new("secret", 1, "192.0.2.1:5001", [10, 0, 0, 1]);
    let p = he_encrypt(&keys, &mut stamps, sim.now, &a.packet(mac(2), b"x"));
    let out = sim.feed(a.sock, &p);
    assert_eq!(out.len(), 1, "{out:?}");
    let mut m = out[0].1.clone();
    assert_eq!(out[0].0, a.sock);
    assert!(!is_re_register(&m), "sent in the clear");
    let (_, d) = keys.decrypt(&mut m).unwrap();
    assert!(is_re_register(&m[..d.len]));
}

/// A flood from spoofed, never-registered sockets: the RE_REGISTER_SUPER
/// output per second is bounded by the table size, suppressed answers are
/// counted, and the supernode's state does not grow.
#[test]
fn spoofed_flood_yields_bounded_re_register_output() {
    use n2n_core::supernode::{RE_REGISTER_MIN_GAP, RE_REGISTER_SLOTS};
    let mut sim = Sim::open();
    let b = TestEdge::new("rocks", 2, "192.0.2.2:5002", [10, 0, 0, 2]);
    sim.register(&b);
    let mut total_rr = 0usize;
    let n_per_round = 20_000u32;
    for round in 0..3u32 {
        let mut rr = 0usize;
        for i in 0..n_per_round {
            let x = round * n_per_round + i;
            let s = SocketAddr::from((
                Ipv4Addr::new(198, 18, (x >> 8) as u8, x as u8),
                1024 + (x % 50_000) as u16,
            ));
            let mut e = TestEdge::new("rocks", 0, "0.0.0.0:1", [0, 0, 0, 0]);
            e.mac = Mac([2, 0x66, (x >> 16) as u8, (x >> 8) as u8, x as u8, 1]);
            e.sock = s;
            // Unicast to an unknown MAC: nothing relayed.
            let mut d = e.packet(mac(0x77), b"flood");
            sim.sn.handle_datagram(sim.now, s, &mut d);
            while sim.sn.pending_transmits() > 0 {
                let out = sim.drain();
                rr += out.iter().filter(|(_, m)| is_re_register(m)).count();
                assert!(out.iter().all(|(_, m)| is_re_register(m)));
            }
        }
        assert!(rr <= RE_REGISTER_SLOTS, "round {round}: {rr}");
        assert!(rr > 0);
        total_rr += rr;
        sim.advance(RE_REGISTER_MIN_GAP);
    }
    let st = sim.sn.stats();
    assert_eq!(st.re_register_sent as usize, total_rr);
    assert_eq!(
        st.re_register_sent + st.re_register_limited,
        3 * u64::from(n_per_round)
    );
    assert_eq!(sim.sn.edges().len(), 1);
    assert_eq!(sim.sn.communities().len(), 1);
    // The registered edge is not affected.
    assert_eq!(sim.feed(b.sock, &b.packet(mac(0x77), b"x")).len(), 0);
}
