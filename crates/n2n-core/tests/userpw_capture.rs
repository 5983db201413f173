//! User/password authentication of our *cores* against the C n2n 3.1.1
//! capture `userpw-auth` (community `rocks`, users alice/alicepw and
//! bob/bobpw, `-F rocksFed`, ChaCha20 key `s3cret`):
//!
//! * every datagram the C edges sent to the C supernode is fed into our
//!   supernode core, loaded with the capture's community.list, `-F
//!   rocksFed` and the capture's key_time: it accepts them all (no drop),
//!   its REGISTER_SUPER_ACKs verify as a C edge checks them and hand over the
//!   capture's D, and decrypted they are byte for byte the C supernode's;
//!   its relays of PACKETs and REGISTERs are byte for byte the C ones after
//!   decryption; the UNREGISTER_SUPERs remove both edges;
//! * our edge core, configured as the capture's alice, sends a
//!   REGISTER_SUPER that the `n2n_proto::auth` routines accept as a C
//!   supernode would (hash before decrypting, static keys over `len − 16`,
//!   listed public key, trailer with S_u); our supernode's ACK gives it D, so
//!   it then decrypts the C supernode's relayed PACKET of the capture and
//!   writes the captured frame to its TAP; the C supernode's ACK from the
//!   capture (another challenge, another cookie) is refused.
//!
//! All keys are derived from the manifest's credentials and the community
//! file, never read from a recorded key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use n2n_core::edge::{DropReason as EdgeDrop, Edge, EdgeConfig, TapAddrMode};
use n2n_core::supernode::community_list::CommunityList;
use n2n_core::supernode::{Supernode, SupernodeConfig, federation_field};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_proto::auth::{self, AnswerToken, PrivateKey, PublicKey, UserKeys, UserToken};
use n2n_proto::he::{self, CommunityHe, HeKeyKind, HeKeys};
use n2n_proto::types::{Community, DevAddr, Mac, TransformId};
use n2n_proto::wire::{self, Message};
use n2n_testdata::{Scenario, unhex};

const SN: &str = "198.18.0.254:7654";

struct Capture {
    s: Scenario,
    list: CommunityList,
    fed_pub: PublicKey,
    key_time: u32,
    d: [u8; 16],
    /// Unix µs of the first datagram (from its header-encryption stamp).
    t0_us: u64,
}

fn capture() -> Capture {
    let s = Scenario::load(&n2n_testdata::captures_dir().join("userpw-auth"));
    let m = &s.manifest;
    let list =
        CommunityList::parse(&std::fs::read_to_string(s.path.join("community.list")).unwrap())
            .unwrap();
    let fed_pub: PublicKey = m["auth"]["federation_public_key_edge_-P"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let key_time = u32::try_from(m["auth"]["dynamic_key"]["key_time"].as_u64().unwrap()).unwrap();
    let d: [u8; 16] = unhex(m["auth"]["dynamic_key"]["key_hex"].as_str().unwrap())
        .try_into()
        .unwrap();
    // The first datagram is a static-key REGISTER_SUPER: its stamp is the
    // C edge's clock.
    let mut first = s.packets[0].bytes.clone();
    let comm = CommunityHe::new(*Community::new("rocks").unwrap().field());
    let (_, dec) = comm.decrypt(&mut first).unwrap();
    let t0_us = (dec.stamp >> 32) * 1_000_000 + ((dec.stamp >> 12) & 0xf_ffff);
    Capture {
        s,
        list,
        fed_pub,
        key_time,
        d,
        t0_us,
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn supernode(c: &Capture, now: Now) -> Supernode {
    let mut cfg = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 0xfe]));
    cfg.communities = Some(c.list.clone());
    cfg.community_file = Some("community.list".into());
    cfg.federation = federation_field("rocksFed");
    let mut sn = Supernode::new(cfg, [3; 32], now);
    // The C supernode's key_time (its community file load time).
    sn.set_key_time(now, c.key_time);
    assert_eq!(sn.key_time(), c.key_time);
    sn
}

fn drain(sn: &mut Supernode) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(t) = sn.poll_transmit() {
        v.push((t.dst, t.bytes().to_vec()));
        sn.recycle_transmit(t);
    }
    v
}

/// The capture's plain bytes of datagram `i` (decoded.jsonl).
fn plain(c: &Capture, i: usize) -> Vec<u8> {
    unhex(c.s.decoded[i]["plain_hex"].as_str().unwrap())
}

fn user_keys(c: &Capture, user: &str) -> UserKeys {
    let pw = c.s.manifest["auth"]["users"][user]["password"]
        .as_str()
        .unwrap();
    UserKeys::new(user.as_bytes(), pw.as_bytes(), &c.fed_pub)
}

#[test]
fn our_supernode_core_serves_the_c_edges() {
    let c = capture();
    let t0 = Instant::now();
    let at = |t: f64| Now::new(t0, c.t0_us).advance(Duration::from_secs_f64(t));
    let mut sn = supernode(&c, at(0.0));
    let rocks = Community::new("rocks").unwrap();
    let mut he = CommunityHe::new(*rocks.field());
    he.set_dynamic_key(&c.d);
    let keys = [
        ("198.18.0.1:50001", user_keys(&c, "alice")),
        ("198.18.0.2:50002", user_keys(&c, "bob")),
    ];
    let keys_of = |s: &str| &keys.iter().find(|k| k.0 == s).unwrap().1;
    // The capture's answers of the C supernode, by destination, in order.
    let mut c_answers: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, p) in c.s.packets.iter().enumerate() {
        if p.src == SN {
            c_answers.push((p.dst.clone(), plain(&c, i)));
        }
    }
    let mut acks = 0;
    let mut relays = 0;
    let mut matched = 0;
    let mut last_challenge = std::collections::HashMap::new();
    for (i, p) in c.s.packets.iter().enumerate() {
        if p.dst != SN {
            continue;
        }
        let ty = c.s.decoded[i]["type"].as_str().unwrap();
        if ty == "REGISTER_SUPER" {
            let pl = plain(&c, i);
            let (_, m) = wire::decode(&pl).unwrap();
            let Message::RegisterSuper(rs) = m else {
                panic!()
            };
            let tok = UserToken::from_auth(&rs.auth).unwrap();
            last_challenge.insert(p.src.clone(), tok.challenge(keys_of(&p.src).secret()));
        }
        let mut d = p.bytes.clone();
        sn.handle_datagram(at(p.t), sa(&p.src), &mut d);
        assert_eq!(sn.stats().total_drops(), 0, "#{i} {ty}: {:?}", sn.stats());
        for (dst, out) in drain(&mut sn) {
            let mut buf = out.clone();
            let (kind, dec, rt) = auth::decrypt_header(&he, &mut buf).unwrap();
            let msg = &buf[..dec.len];
            let (_, m) = wire::decode(msg).unwrap();
            if let Message::RegisterSuperAck(ack) = &m {
                // As a C edge checks it: trailer, challenge echo, D.
                acks += 1;
                assert_eq!(kind, HeKeyKind::Static, "#{i}");
                let k = keys_of(&dst.to_string());
                assert_eq!(rt.unwrap().verify(k.secret()), Ok(()), "#{i}: trailer");
                let ans = AnswerToken::from_auth(&ack.auth).unwrap();
                let ch = last_challenge[&dst.to_string()];
                assert_eq!(k.secret().open_answer(&ans, &ch), Ok(c.d), "#{i}: D");
            } else {
                assert_eq!(kind, HeKeyKind::Dynamic, "#{i}");
                relays += 1;
            }
            // Byte for byte the C supernode's answer to this destination,
            // apart from PONG uptimes.
            if let Some(pos) = c_answers.iter().position(|(d, _)| *d == dst.to_string()) {
                let (_, want) = c_answers.remove(pos);
                if matches!(m, Message::PeerInfo(ref pi) if pi.is_pong()) {
                    assert_eq!(msg.len(), want.len(), "#{i}: PONG");
                } else {
                    assert_eq!(hex::encode(msg), hex::encode(&want), "#{i}: {ty} answer");
                }
                matched += 1;
            }
        }
    }
    assert_eq!(acks, 2);
    // Relayed: e2's 2 ARPs to e1, e1's REGISTER to e2, the ARP request,
    // and the two PONGs.
    assert!(relays >= 5, "{relays}");
    assert!(
        c_answers.is_empty(),
        "C answers we did not send: {c_answers:?}"
    );
    assert_eq!(matched, acks + relays);
    assert!(sn.edges().is_empty(), "both edges unregistered");
}

fn alice_edge(c: &Capture, now: Now) -> Edge {
    let mut cfg = EdgeConfig::new(Community::new("rocks").unwrap(), vec![SN.to_owned()]);
    cfg.mac = Mac([2, 0, 0, 0, 0, 1]);
    cfg.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::new(10, 200, 0, 1), 24));
    cfg.desc = "alice".into();
    cfg.transform = TransformId::ChaCha20;
    cfg.key = b"s3cret".to_vec();
    cfg.user_password = Some(user_keys(c, "alice"));
    Edge::new(cfg, [5; 32], now).unwrap()
}

fn edge_out(e: &mut Edge) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(t) = e.poll_transmit() {
        v.push((t.dst, t.bytes().to_vec()));
        e.recycle_transmit(t);
    }
    v
}

#[test]
fn our_edge_core_registers_as_a_c_supernode_expects() {
    let c = capture();
    let t0 = Instant::now();
    let at = |t: f64| Now::new(t0, c.t0_us).advance(Duration::from_secs_f64(t));
    let mut edge = alice_edge(&c, at(0.0));
    edge.handle_timeout(at(0.0));
    let out = edge_out(&mut edge);
    let (dst, reg) = out
        .iter()
        .find(|(d, _)| *d == sa(SN))
        .expect("a REGISTER_SUPER to the supernode");
    assert_eq!(*dst, sa(SN));

    // A C supernode's view (crypto.md §5.4): hash, static keys over
    // len − 16, user by token[0..32], trailer with S_u.
    let rocks = Community::new("rocks").unwrap();
    let prv_f = PrivateKey::federation(b"rocksFed");
    assert_eq!(prv_f.public_key(), c.fed_pub);
    let (msg, trailer) = auth::split_trailer(reg).unwrap();
    let hash = auth::trailer_hash(msg);
    let mut buf = reg.clone();
    let n = buf.len() - auth::TRAILER_LEN;
    let dec = he::decrypt(
        &mut buf[..n],
        &HeKeys::from_community_field(rocks.field()),
        rocks.field(),
    )
    .unwrap();
    assert_eq!(dec.len, n);
    let (_, m) = wire::decode(&buf[..n]).unwrap();
    let Message::RegisterSuper(rs) = m else {
        panic!("{m:?}")
    };
    let token = UserToken::from_auth(&rs.auth).unwrap();
    let alice = &c.list.fixed[0]
        .users
        .iter()
        .find(|u| u.name == "alice")
        .unwrap();
    assert_eq!(token.public_key(), alice.public_key, "alice's listed key");
    let s_u = prv_f.shared_secret(&alice.public_key);
    assert_eq!(s_u.verify_trailer_hash(&hash, trailer), Ok(()));
    let bob = &c.list.fixed[0]
        .users
        .iter()
        .find(|u| u.name == "bob")
        .unwrap();
    assert!(
        prv_f
            .shared_secret(&bob.public_key)
            .verify_trailer_hash(&hash, trailer)
            .is_err()
    );
    assert_eq!(rs.edge_mac, Mac([2, 0, 0, 0, 0, 1]));
    assert_eq!(rs.dev_desc, n2n_proto::types::DevDesc::new("alice"));

    // The C supernode's recorded ACK (cookie and challenge of the C edge's
    // REGISTER_SUPER) is refused.
    let mut old = c.s.packets[1].bytes.clone();
    let before = edge.stats().total_drops();
    let mut tap = vec![0u8; MAX_DATAGRAM];
    assert!(
        edge.decapsulate(at(0.001), sa(SN), &mut old, false, &mut tap)
            .is_none()
    );
    assert_eq!(edge.stats().total_drops(), before + 1);
    assert!(!edge.has_registered_once());

    // Our supernode (the capture's key_time) answers; the edge adopts D.
    let mut sn = supernode(&c, at(0.0));
    let mut d = reg.clone();
    sn.handle_datagram(at(0.002), sa("198.18.0.1:50001"), &mut d);
    let answers = drain(&mut sn);
    assert_eq!(answers.len(), 1);
    let mut ack = answers[0].1.clone();
    assert!(
        edge.decapsulate(at(0.003), sa(SN), &mut ack, false, &mut tap)
            .is_none()
    );
    assert!(edge.is_registered(), "{:?}", edge.stats());
    let _ = edge_out(&mut edge); // gratuitous ARPs

    // With D it decrypts the C supernode's relayed PACKET (#8: bob's ARP
    // broadcast) and writes the captured frame.
    let i = 8;
    let p = &c.s.packets[i];
    assert_eq!((p.src.as_str(), p.dst.as_str()), (SN, "198.18.0.1:50001"));
    let mut pkt = p.bytes.clone();
    let n = edge
        .decapsulate(at(p.t), sa(SN), &mut pkt, false, &mut tap)
        .expect("a frame for the TAP");
    let frame = unhex(c.s.decoded[i]["frame_hex"].as_str().unwrap());
    assert_eq!(&tap[..n], &frame[..]);
    assert_eq!(edge.stats().drops(EdgeDrop::HeDecryptFailed), 0);
}
