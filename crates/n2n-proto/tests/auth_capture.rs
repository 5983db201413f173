//! User/password authentication against the C n2n 3.1.1 captures that use
//! it (`userpw-auth`): every key is derived from the manifest's credentials
//! and the supernode's community file, never read from a recorded key.
//!
//! For every datagram: header decryption as a receiver does it (dynamic
//! keys from D over the whole datagram, else static keys over `len − 16`
//! with the trailer hashed first), with the key kind and plain bytes of
//! decoded.jsonl. Then per type:
//!
//! * REGISTER_SUPER: scheme-2 token whose public key is a user of the
//!   community file; trailer verifies with that user's S_u (supernode view)
//!   and with the edge's S (edge view) and not with any other user's; the
//!   challenge decrypts and the edge's token rebuilds byte for byte.
//! * REGISTER_SUPER_ACK: trailer verifies with the edge's S and rebuilds
//!   byte for byte with S_u; the answer echoes the edge's last challenge and
//!   hands over D = the §5.6 formula from key_time (the federation field
//!   with the `-F` residue); the answer rebuilds byte for byte; another
//!   user's keys or an old challenge are refused.
//! * UNREGISTER_SUPER: dynamic key, no trailer, the sending edge's public
//!   key.
//! * PACKET: H = header + min(16, payload) (crypto.md §4.6).
//! * Static keys only on REGISTER_SUPER/_ACK/_NAK.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use n2n_proto::auth::{
    self, AnswerToken, AuthError, PrivateKey, PublicKey, SharedSecret, UserKeys, UserToken,
};
use n2n_proto::he::{self, HeKeys, NAME_FIELD_LEN};
use n2n_proto::wire::{self, Message};
use n2n_testdata::Scenario;

fn name_field(name: &[u8]) -> [u8; NAME_FIELD_LEN] {
    let mut f = [0u8; NAME_FIELD_LEN];
    f[..name.len()].copy_from_slice(name);
    f
}

/// A user line of the supernode's community file, with S_u.
struct SnUser {
    name: String,
    public: PublicKey,
    s_u: SharedSecret,
}

/// An edge of the scenario: its user keys.
struct EdgeSide {
    user: String,
    keys: UserKeys,
}

struct Setup {
    community20: [u8; NAME_FIELD_LEN],
    static_keys: HeKeys,
    dynamic_keys: HeKeys,
    d: [u8; 16],
    users: Vec<SnUser>,
    /// By underlay `ip:port`.
    edges: HashMap<String, EdgeSide>,
}

fn setup(s: &Scenario) -> Setup {
    let m = &s.manifest;
    let community = m["community"].as_str().unwrap();
    let community20 = name_field(community.as_bytes());

    // Supernode: federation from -F, users from the community file.
    let cmd = m["commands"]["supernode"].as_str().unwrap();
    let fed_name = cmd
        .split_whitespace()
        .skip_while(|t| *t != "-F")
        .nth(1)
        .unwrap_or("Federation");
    assert_eq!(m["auth"]["federation_name"].as_str(), Some(fed_name));
    let fed20 = auth::federation_field_from_option(fed_name.as_bytes());
    let prv_f = PrivateKey::federation(auth::federation_key_name(&fed20));
    let list = std::fs::read_to_string(s.path.join("community.list")).unwrap();
    let mut users = Vec::new();
    for line in list.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if let ["*", user, key] = t[..] {
            let public: PublicKey = key.parse().unwrap();
            users.push(SnUser {
                name: user.to_owned(),
                public,
                s_u: prv_f.shared_secret(&public),
            });
        }
    }
    assert!(users.len() >= 2, "{}: community file users", s.name);

    // Edges: -I user -J password -P key, placed by their underlay socket.
    let fed_pub: PublicKey = m["auth"]["federation_public_key_edge_-P"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(fed_pub, prv_f.public_key(), "-P is the supernode's key");
    let mut edges = HashMap::new();
    for (user, u) in m["auth"]["users"].as_object().unwrap() {
        let pw = u["password"].as_str().unwrap();
        let e = u["edge"].as_str().unwrap();
        let ul = &m["underlay"][e];
        let sock = format!(
            "{}:{}",
            ul["ip"].as_str().unwrap(),
            ul["udp_port"].as_u64().unwrap()
        );
        let keys = UserKeys::new(user.as_bytes(), pw.as_bytes(), &fed_pub);
        let sn_user = users.iter().find(|x| x.name == *user).unwrap();
        assert_eq!(keys.public_key(), &sn_user.public, "{user}: keygen line");
        assert_eq!(
            keys.secret().expose_bytes(),
            sn_user.s_u.expose_bytes(),
            "{user}: S = S_u"
        );
        edges.insert(
            sock,
            EdgeSide {
                user: user.clone(),
                keys,
            },
        );
    }

    // D from key_time, community and the federation field with residue.
    let dk = &m["auth"]["dynamic_key"];
    let key_time = u32::try_from(dk["key_time"].as_u64().unwrap()).unwrap();
    let d = auth::dynamic_key(&community20, &fed20, key_time);
    assert_eq!(hex::encode(d), dk["key_hex"].as_str().unwrap(), "D");
    let clean = auth::dynamic_key(
        &community20,
        &auth::federation_field(fed_name.as_bytes()),
        key_time,
    );
    if fed_name != "Federation" {
        assert_ne!(clean, d, "the residue matters");
    }
    Setup {
        community20,
        static_keys: HeKeys::from_community_field(&community20),
        dynamic_keys: HeKeys::from_dynamic_key(&d),
        d,
        users,
        edges,
    }
}

#[derive(Default, Debug)]
struct Counts {
    datagrams: usize,
    register_super: usize,
    ack: usize,
    nak: usize,
    unregister: usize,
    packets: usize,
}

fn check_scenario(s: &Scenario) -> Counts {
    let k = setup(s);
    let mut c = Counts::default();
    // Per edge socket: the last challenge and token it sent.
    let mut last: HashMap<String, ([u8; 16], UserToken)> = HashMap::new();
    assert_eq!(s.packets.len(), s.decoded.len());
    for (i, (p, dec)) in s.packets.iter().zip(&s.decoded).enumerate() {
        let what = format!("{} #{i}", s.name);
        let orig = &p.bytes;
        let mut buf = orig.clone();
        let len = buf.len();

        // Header decryption as a receiver: dynamic, then static without the
        // trailer (hashed before decrypting).
        let (kind, hd) = match he::decrypt(&mut buf, &k.dynamic_keys, &k.community20) {
            Ok(hd) => ("dynamic", hd),
            Err(_) => {
                let hash = auth::trailer_hash(&buf[..len - auth::TRAILER_LEN]);
                assert_eq!(
                    hash,
                    auth::trailer_hash(auth::split_trailer(orig).unwrap().0)
                );
                let hd = he::decrypt_without_trailer(&mut buf, &k.static_keys, &k.community20)
                    .unwrap_or_else(|e| panic!("{what}: no key decrypts: {e}"));
                ("static", hd)
            }
        };
        assert_eq!(dec["he"].as_str(), Some(kind), "{what}: key kind");
        let plain = &buf[..hd.len];
        assert_eq!(
            hex::encode(plain),
            dec["plain_hex"].as_str().unwrap(),
            "{what}: plain bytes"
        );
        let (_, msg) = wire::decode(plain).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            dec["type"].as_str().unwrap(),
            type_name(&msg),
            "{what}: type"
        );
        let static_ok = matches!(
            msg,
            Message::RegisterSuper(_) | Message::RegisterSuperAck(_) | Message::RegisterSuperNak(_)
        );
        assert_eq!(kind == "static", static_ok, "{what}: key kind for the type");
        c.datagrams += 1;

        match msg {
            Message::RegisterSuper(rs) => {
                c.register_super += 1;
                let token = UserToken::from_auth(&rs.auth).unwrap();
                let user = k
                    .users
                    .iter()
                    .find(|u| u.public == token.public_key())
                    .unwrap_or_else(|| panic!("{what}: token of no listed user"));
                // Supernode view: hash before decrypting, then S_u.
                let (msg_bytes, trailer) = auth::split_trailer(orig).unwrap();
                let hash = auth::trailer_hash(msg_bytes);
                assert_eq!(
                    user.s_u.verify_trailer_hash(&hash, trailer),
                    Ok(()),
                    "{what}"
                );
                for other in k.users.iter().filter(|u| u.name != user.name) {
                    assert_eq!(
                        other.s_u.verify_trailer(orig),
                        Err(AuthError::BadTrailer),
                        "{what}: {}'s key",
                        other.name
                    );
                }
                // Edge view: its own keys, token rebuilt from the challenge.
                let edge = &k.edges[&p.src];
                assert_eq!(edge.user, user.name, "{what}: sender");
                assert_eq!(edge.keys.secret().verify_trailer(orig), Ok(()));
                assert_eq!(edge.keys.secret().trailer(msg_bytes), *trailer);
                let ch = token.challenge(&user.s_u);
                assert_eq!(UserToken::new(&edge.keys, &ch), token, "{what}: token");
                assert_eq!(rs.key_time, 0, "{what}: edges send key_time 0");
                last.insert(p.src.clone(), (ch, token));
            }
            Message::RegisterSuperAck(ack) => {
                c.ack += 1;
                let edge = &k.edges[&p.dst];
                let user = k.users.iter().find(|u| u.name == edge.user).unwrap();
                let (ch, rx) = last[&p.dst];
                // Trailer: the edge checks it, the supernode's rebuilds.
                assert_eq!(edge.keys.secret().verify_trailer(orig), Ok(()), "{what}");
                let (msg_bytes, trailer) = auth::split_trailer(orig).unwrap();
                assert_eq!(user.s_u.trailer(msg_bytes), *trailer, "{what}: trailer");
                // The answer: D handed over, rebuilt byte for byte.
                let ans = AnswerToken::from_auth(&ack.auth).unwrap();
                assert_eq!(
                    edge.keys.secret().open_answer(&ans, &ch),
                    Ok(k.d),
                    "{what}: D"
                );
                assert_eq!(user.s_u.answer(&rx, &k.d), ans, "{what}: answer");
                let mut old = ch;
                old[0] ^= 1;
                assert_eq!(
                    edge.keys.secret().open_answer(&ans, &old),
                    Err(AuthError::ChallengeMismatch)
                );
                for other in k.users.iter().filter(|u| u.name != user.name) {
                    assert_eq!(
                        other.s_u.open_answer(&ans, &ch),
                        Err(AuthError::ChallengeMismatch),
                        "{what}: {}'s key",
                        other.name
                    );
                    assert_eq!(other.s_u.verify_trailer(orig), Err(AuthError::BadTrailer));
                }
            }
            Message::RegisterSuperNak(_) => {
                // 16 arbitrary bytes after it: nothing to verify.
                c.nak += 1;
                assert_eq!(hd.len, len - auth::TRAILER_LEN, "{what}");
            }
            Message::UnregisterSuper(un) => {
                c.unregister += 1;
                assert_eq!(hd.len, len, "{what}: no trailer");
                let token = UserToken::from_auth(&un.auth).unwrap();
                let edge = &k.edges[&p.src];
                assert_eq!(&token.public_key(), edge.keys.public_key(), "{what}");
                // A fresh challenge: not the last REGISTER_SUPER's.
                let ch = token.challenge(edge.keys.secret());
                assert_ne!(Some(ch), last.get(&p.src).map(|l| l.0), "{what}");
            }
            Message::Packet(pkt) => {
                c.packets += 1;
                assert_eq!(
                    hd.header_len,
                    auth::packet_encrypted_len(pkt.header_len(), pkt.payload.len()),
                    "{what}: H"
                );
            }
            _ => {}
        }
    }
    c
}

fn type_name(m: &Message<'_>) -> &'static str {
    match m {
        Message::Register(_) => "REGISTER",
        Message::Packet(_) => "PACKET",
        Message::RegisterAck(_) => "REGISTER_ACK",
        Message::RegisterSuper(_) => "REGISTER_SUPER",
        Message::UnregisterSuper(_) => "UNREGISTER_SUPER",
        Message::RegisterSuperAck(_) => "REGISTER_SUPER_ACK",
        Message::RegisterSuperNak(_) => "REGISTER_SUPER_NAK",
        Message::PeerInfo(_) => "PEER_INFO",
        Message::QueryPeer(_) => "QUERY_PEER",
        Message::ReRegisterSuper => "RE_REGISTER_SUPER",
    }
}

fn userpw_scenarios() -> Vec<Scenario> {
    let v: Vec<Scenario> = n2n_testdata::scenarios()
        .into_iter()
        .filter(|s| s.manifest["auth"]["users"].is_object())
        .collect();
    assert!(
        v.iter().any(|s| s.name == "userpw-auth"),
        "userpw-auth capture missing"
    );
    v
}

#[test]
fn userpw_captures_verify() {
    for s in userpw_scenarios() {
        let c = check_scenario(&s);
        assert_eq!(c.datagrams, s.packets.len());
        assert!(c.register_super >= 2, "{}: {c:?}", s.name);
        assert!(c.ack >= 2, "{}: {c:?}", s.name);
        assert!(c.unregister >= 2, "{}: {c:?}", s.name);
        assert!(c.packets >= 10, "{}: {c:?}", s.name);
        eprintln!("{}: {c:?}", s.name);
    }
}

/// A tampered REGISTER_SUPER (any byte, trailer included) fails the trailer
/// check; a truncated one is a typed error.
#[test]
fn tampered_register_super_is_refused() {
    let s = userpw_scenarios().remove(0);
    let k = setup(&s);
    let rs = s
        .packets
        .iter()
        .zip(&s.decoded)
        .find(|(_, d)| d["type"] == "REGISTER_SUPER")
        .map(|(p, _)| p)
        .unwrap();
    let edge = &k.edges[&rs.src];
    let s_u = &k.users.iter().find(|u| u.name == edge.user).unwrap().s_u;
    assert_eq!(s_u.verify_trailer(&rs.bytes), Ok(()));
    for i in 0..rs.bytes.len() {
        let mut t = rs.bytes.clone();
        t[i] ^= 0x01;
        assert_eq!(
            s_u.verify_trailer(&t),
            Err(AuthError::BadTrailer),
            "byte {i}"
        );
    }
    for n in 0..40 {
        assert_eq!(
            s_u.verify_trailer(&rs.bytes[..n]),
            Err(AuthError::TooShortForTrailer(n))
        );
    }
}
