//! User/password authentication in the deterministic simulator: our edges
//! (`-I user -J password [-P key] -A4/-A5`) against our supernode with `*
//! user key` lines. The whole handshake, traffic, wrong passwords,
//! revocation and admission by `reload_communities`, replayed and forged
//! registrations.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use n2n_core::edge::{
    DropReason as EdgeDrop, Edge, EdgeConfig, EdgeConfigError, Event, TapAddrMode,
};
use n2n_core::sim::{NodeId, Sim, ipv4_frame};
use n2n_core::supernode::community_list::CommunityList;
use n2n_core::supernode::{DropReason, RefuseReason, SupernodeConfig, federation_field};
use n2n_proto::auth::{PrivateKey, PublicKey, UserKeys};
use n2n_proto::he::{CommunityHe, HeKeyKind, StampGenerator};
use n2n_proto::types::{Community, DevAddr, Mac, TransformId};
use n2n_proto::wire::{self, Message};

const SN: &str = "203.0.113.1:7654";
const FED: &str = "rocksFed";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn fed_key() -> PublicKey {
    PublicKey::federation(FED.as_bytes())
}

/// `n2n-keygen user password` line.
fn keygen(user: &str, pw: &str) -> String {
    format!(
        "* {user} {}",
        PrivateKey::user(user.as_bytes(), pw.as_bytes()).public_key()
    )
}

fn list(users: &[(&str, &str)]) -> CommunityList {
    let mut text = String::from("# user/password\nrocks\n");
    for (u, p) in users {
        text.push_str(&keygen(u, p));
        text.push('\n');
    }
    text.push_str("open\n");
    CommunityList::parse(&text).unwrap()
}

fn sn_cfg(users: &[(&str, &str)]) -> SupernodeConfig {
    let mut c = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 0xfe]));
    c.communities = Some(list(users));
    c.community_file = Some("community.list".into());
    c.federation = federation_field(FED);
    c
}

fn edge_cfg(last: u8, user: &str, pw: &str) -> EdgeConfig {
    let mut c = EdgeConfig::new(Community::new("rocks").unwrap(), vec![SN.to_owned()]);
    c.mac = Mac([2, 0, 0, 0, 0, last]);
    c.desc = user.to_owned();
    c.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::new(10, 0, 0, last), 24));
    c.transform = TransformId::ChaCha20;
    c.key = b"s3cret".to_vec();
    c.user_password = Some(UserKeys::new(user.as_bytes(), pw.as_bytes(), &fed_key()));
    c
}

fn add_edge(sim: &mut Sim, last: u8, user: &str, pw: &str) -> NodeId {
    sim.add_edge(
        user,
        sa(&format!("198.51.100.{last}:5000{last}")),
        None,
        edge_cfg(last, user, pw),
    )
}

fn frame(sim: &Sim, a: NodeId, b: NodeId, payload: &[u8]) -> Vec<u8> {
    let (ea, eb) = (sim.edge(a), sim.edge(b));
    ipv4_frame(
        ea.mac().0,
        eb.mac().0,
        ea.tap_addr().ip,
        eb.tap_addr().ip,
        payload,
    )
}

fn exchange(sim: &mut Sim, a: NodeId, b: NodeId, n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let f = frame(sim, a, b, format!("ping {i}").as_bytes());
        sim.send_frame(a, &f);
        sim.run_for(Duration::from_secs(1));
        ok += sim.take_tap(b).iter().filter(|g| **g == f).count();
    }
    ok
}

fn registered(sim: &Sim, ids: &[NodeId]) -> bool {
    ids.iter().all(|&i| sim.edge(i).is_registered())
}

fn net(seed: u64, users: &[(&str, &str)]) -> (Sim, NodeId) {
    let mut sim = Sim::new(seed);
    let sn = sim.add_supernode("sn", sa(SN), sn_cfg(users));
    (sim, sn)
}

const ALICE: (&str, &str) = ("alice", "alicepw");
const BOB: (&str, &str) = ("bob", "bobpw");
const CAROL: (&str, &str) = ("carol", "carolpw");

#[test]
fn handshake_then_traffic_relayed_and_direct() {
    let (mut sim, sn) = net(1, &[ALICE, BOB]);
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    let b = add_edge(&mut sim, 2, BOB.0, BOB.1);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert!(sim.edge(a).config().header_encryption, "-J forces -H");
    assert!(sim.edge(a).uses_user_password());
    // Relayed first (the gratuitous ARPs), then P2P: both need D.
    assert_eq!(exchange(&mut sim, a, b, 5), 5);
    assert_eq!(exchange(&mut sim, b, a, 5), 5);
    let mb = sim.edge(b).mac();
    assert!(sim.edge(a).peers().iter().any(|p| p.mac == mb && p.direct));
    // Re-registrations keep working over a few minutes, nothing dropped.
    sim.run_for(Duration::from_secs(180));
    assert!(registered(&sim, &[a, b]));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    let st = sim.supernode(sn).stats();
    assert_eq!(st.total_drops(), 0, "{st:?}");
    assert_eq!(st.refusals().map(|(_, n)| n).sum::<u64>(), 0);
    for e in [a, b] {
        let s = sim.edge(e).stats();
        assert_eq!(
            s.drops(EdgeDrop::BadTrailer) + s.drops(EdgeDrop::BadAnswer),
            0
        );
        assert_eq!(s.drops(EdgeDrop::HeDecryptFailed), 0, "{s:?}");
    }
}

#[test]
fn the_cipher_rule_is_c_s() {
    let now = n2n_core::Now::new(Instant::now(), 1_767_225_600_000_000);
    for (t, ok) in [
        (TransformId::ChaCha20, true),
        (TransformId::Speck, true),
        (TransformId::Aes, false),
        (TransformId::Twofish, false),
        (TransformId::ChaCha20Poly1305, false),
    ] {
        let mut c = edge_cfg(1, "alice", "alicepw");
        c.transform = t;
        let r = Edge::new(c, [1; 32], now);
        if ok {
            assert!(r.is_ok(), "{t}");
        } else {
            let e = r.unwrap_err();
            assert_eq!(e, EdgeConfigError::UserPasswordCipher, "{t}");
            assert_eq!(
                e.to_string(),
                "user-password authentication requires ChaCha20 (-A4) or SPECK (-A5) to be used"
            );
        }
    }
    // Speck end to end.
    let (mut sim, _) = net(2, &[ALICE, BOB]);
    let mut ca = edge_cfg(1, ALICE.0, ALICE.1);
    ca.transform = TransformId::Speck;
    let mut cb = edge_cfg(2, BOB.0, BOB.1);
    cb.transform = TransformId::Speck;
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
    let b = sim.add_edge("b", sa("198.51.100.2:50002"), None, cb);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
}

#[test]
fn wrong_password_gets_nak_and_nothing_through() {
    let (mut sim, sn) = net(3, &[ALICE, BOB]);
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    let b = add_edge(&mut sim, 2, BOB.0, BOB.1);
    // bob's name with a wrong password: another key pair.
    let m = add_edge(&mut sim, 3, BOB.0, "guess");
    // Another federation key (-P of another federation).
    let mut cfg = edge_cfg(4, ALICE.0, ALICE.1);
    cfg.user_password = Some(UserKeys::new(
        b"alice",
        b"alicepw",
        &PublicKey::default_federation(),
    ));
    let f = sim.add_edge("f", sa("198.51.100.4:50004"), None, cfg);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    sim.run_for(Duration::from_secs(60));
    for x in [m, f] {
        assert!(!sim.edge(x).has_registered_once());
        // Frames to send are dropped (counted), and none ever arrives.
        let fr = frame(&sim, x, a, b"let me in");
        sim.send_frame(x, &fr);
        sim.run_for(Duration::from_secs(1));
        assert!(sim.edge(x).stats().drops(EdgeDrop::NotRegistered) >= 1);
        assert!(sim.take_tap(a).iter().all(|g| *g != fr));
    }
    // a's broadcasts and unicasts never reach them.
    for _ in 0..3 {
        let mut bc = frame(&sim, a, m, b"hello all");
        bc[..6].copy_from_slice(&[0xff; 6]);
        sim.send_frame(a, &bc);
        let uni = frame(&sim, a, m, b"hello m");
        sim.send_frame(a, &uni);
        sim.run_for(Duration::from_secs(1));
    }
    assert!(sim.take_tap(m).is_empty());
    assert!(sim.take_tap(f).is_empty());
    // m (unknown key): NAKs, reported. f: its trailer is signed with the
    // wrong S, but its public key (alice's) is listed: dropped silently.
    let naks = sim
        .take_events(m)
        .iter()
        .filter(|e| matches!(e, Event::RegistrationNak { .. }))
        .count();
    assert!(naks >= 2, "{naks}");
    assert!(
        !sim.take_events(f)
            .iter()
            .any(|e| matches!(e, Event::RegistrationNak { .. }))
    );
    let st = sim.supernode(sn).stats();
    assert!(st.refusal_count(RefuseReason::UnknownUser) >= 2, "{st:?}");
    assert!(st.drop_count(DropReason::BadTrailer) >= 2, "{st:?}");
    assert_eq!(sim.supernode(sn).edges().len(), 2);
    assert!(registered(&sim, &[a, b]));
    assert_eq!(exchange(&mut sim, a, b, 2), 2);
}

#[test]
fn simple_id_edges_are_refused_by_a_user_community() {
    let (mut sim, sn) = net(4, &[ALICE]);
    let mut plain = edge_cfg(5, "eve", "x");
    plain.user_password = None;
    plain.header_encryption = true;
    let e = sim.add_edge("e", sa("198.51.100.5:50005"), None, plain);
    sim.run_for(Duration::from_secs(30));
    assert!(!sim.edge(e).has_registered_once());
    // Without the trailer the static-key attempt fails: no key decrypts it.
    assert!(sim.supernode(sn).stats().drop_count(DropReason::HeNoKey) >= 2);
    assert!(sim.supernode(sn).edges().is_empty());
}

/// One frame c→x every 100 ms from `from` for `total`; the arrival times at
/// `x` (relative to the start).
fn stream(sim: &mut Sim, c: NodeId, x: NodeId, total: Duration) -> (Instant, Vec<Duration>) {
    let t0 = sim.now().mono;
    let mut got = Vec::new();
    let steps = (total.as_millis() / 100) as usize;
    for i in 0..steps {
        let f = frame(sim, c, x, format!("c{i}").as_bytes());
        sim.send_frame(c, &f);
        sim.run_for(Duration::from_millis(100));
        for (at, g) in sim.take_tap_timed(x) {
            if g == f || g.ends_with(format!("c{i}").as_bytes()) {
                got.push(at.saturating_duration_since(t0));
            }
        }
    }
    (t0, got)
}

#[test]
fn reload_revokes_removed_users_and_admits_new_ones() {
    let (mut sim, sn) = net(5, &[ALICE, BOB, CAROL]);
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    let b = add_edge(&mut sim, 2, BOB.0, BOB.1);
    let c = add_edge(&mut sim, 3, CAROL.0, CAROL.1);
    let d = add_edge(&mut sim, 4, "dave", "davepw");
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b, c])));
    assert!(!sim.edge(d).has_registered_once());
    // carol talks to a relayed and to b directly.
    assert_eq!(exchange(&mut sim, c, a, 3), 3);
    assert_eq!(exchange(&mut sim, c, b, 3), 3);
    let kt = sim.supernode(sn).key_time();

    // carol's line removed, dave's added; reload.
    sim.run_for(Duration::from_secs(2));
    let now = sim.now();
    sim.supernode_mut(sn)
        .set_communities(now, Some(list(&[ALICE, BOB, ("dave", "davepw")])));
    sim.flush(sn);
    assert!(sim.supernode(sn).key_time() > kt);
    let reload_at = sim.now().mono;
    let _ = sim.take_tap(c);
    // carol keeps sending to a and b for 30 s.
    let (t0, to_a) = stream(&mut sim, c, a, Duration::from_secs(15));
    let (t1, to_b) = stream(&mut sim, c, b, Duration::from_secs(15));
    let last = to_a
        .iter()
        .map(|d| t0 + *d)
        .chain(to_b.iter().map(|d| t1 + *d))
        .max()
        .map(|t| t.saturating_duration_since(reload_at));
    // Nothing of carol's arrives later than a round trip after the reload
    // (the others re-register at once and get the new D); bound: one
    // re-registration interval.
    eprintln!(
        "carol: {} frames to a, {} to b after the reload; last {last:?} after it",
        to_a.len(),
        to_b.len()
    );
    if let Some(l) = last {
        assert!(
            l < Duration::from_secs(1),
            "carol reached the others {l:?} after the reload"
        );
    }
    assert!(!sim.edge(c).is_registered());
    assert!(
        sim.supernode(sn)
            .stats()
            .refusal_count(RefuseReason::UnknownUser)
            >= 1
    );
    // The others (and dave, admitted without a restart) work with the new D.
    assert!(sim.run_until_cond(Duration::from_secs(25), |s| registered(s, &[a, b, d])));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert_eq!(exchange(&mut sim, d, a, 3), 3);
    assert_eq!(exchange(&mut sim, b, d, 3), 3);
    // Much later carol still gets nothing through.
    sim.run_for(Duration::from_secs(120));
    let (_, late) = stream(&mut sim, c, a, Duration::from_secs(3));
    assert!(late.is_empty());
    let (_, back) = stream(&mut sim, a, c, Duration::from_secs(3));
    assert!(back.is_empty());
    // Nothing at all reached carol's TAP since the reload.
    assert!(sim.take_tap(c).is_empty());
    let names: Vec<String> = sim
        .supernode(sn)
        .edges()
        .iter()
        .map(|e| e.desc.to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "carol"), "{names:?}");
}

#[test]
fn reload_within_the_same_second_still_changes_the_key() {
    let (mut sim, sn) = net(6, &[ALICE, BOB]);
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    let b = add_edge(&mut sim, 2, BOB.0, BOB.1);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    let now = sim.now();
    sim.supernode_mut(sn)
        .set_communities(now, Some(list(&[ALICE, BOB])));
    let k1 = sim.supernode(sn).key_time();
    sim.supernode_mut(sn)
        .set_communities(now, Some(list(&[ALICE])));
    sim.flush(sn);
    assert_eq!(
        sim.supernode(sn).key_time(),
        k1 + 1,
        "moved on within the second"
    );
    sim.run_for(Duration::from_secs(3));
    assert!(sim.edge(a).is_registered());
    assert!(!sim.edge(b).is_registered());
    let (_, got) = stream(&mut sim, b, a, Duration::from_secs(3));
    assert!(got.is_empty());
}

#[test]
fn re_register_super_sets_the_next_registration_back() {
    let (mut sim, sn) = net(7, &[ALICE]);
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a])));
    sim.run_for(Duration::from_secs(3));
    sim.capture = true;
    let now = sim.now();
    let kt = sim.supernode(sn).key_time();
    sim.supernode_mut(sn).set_key_time(now, kt + 100);
    sim.flush(sn);
    sim.run_for(Duration::from_secs(40));
    sim.capture = false;
    // RE_REGISTER_SUPER, an immediate REGISTER_SUPER, then the next regular
    // one at most 20 s later, brought forward by 0..14 s.
    let to_sn: Vec<Instant> = sim
        .captured
        .iter()
        .filter(|(d, bytes)| d.from_node == a && d.to_node == sn && bytes.len() > 100)
        .map(|(d, _)| d.at)
        .collect();
    assert!(to_sn.len() >= 2, "{to_sn:?}");
    let first = to_sn[0].saturating_duration_since(now.mono);
    assert!(first < Duration::from_millis(100), "{first:?}");
    let gap = to_sn[1].saturating_duration_since(to_sn[0]);
    assert!(
        gap > Duration::from_secs(5) && gap <= Duration::from_secs(20),
        "{gap:?}"
    );
    assert!(sim.edge(a).is_registered());
    assert_eq!(sim.supernode(sn).stats().total_drops(), 0);
}

/// The captured datagrams from node `x` to node `y`.
fn captured(sim: &Sim, x: NodeId, y: NodeId) -> Vec<Vec<u8>> {
    sim.captured
        .iter()
        .filter(|(d, _)| d.from_node == x && d.to_node == y)
        .map(|(_, b)| b.clone())
        .collect()
}

#[test]
fn replayed_and_forged_registrations_are_dropped() {
    let (mut sim, sn) = net(8, &[ALICE, BOB]);
    sim.capture = true;
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    let b = add_edge(&mut sim, 2, BOB.0, BOB.1);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    sim.capture = false;
    let reg = captured(&sim, a, sn).into_iter().next().unwrap();
    let ack = captured(&sim, sn, a).into_iter().next().unwrap();
    let a_sock = sa("198.51.100.1:50001");
    let evil = sa("192.0.2.66:6666");
    let st = |sim: &Sim, r| sim.supernode(sn).stats().drop_count(r);

    // Replays of alice's REGISTER_SUPER, from her socket and another one,
    // soon and much later: the stamp is refused, nothing is answered.
    sim.run_for(Duration::from_secs(2));
    let regs = |sim: &Sim| sim.supernode(sn).stats().reg_super;
    let before = regs(&sim);
    sim.inject(sn, a_sock, &reg);
    sim.inject(sn, evil, &reg);
    assert_eq!(st(&sim, DropReason::StampRejected), 2);
    assert_eq!(regs(&sim), before, "not processed");
    sim.run_for(Duration::from_secs(30));
    let before = regs(&sim);
    sim.inject(sn, evil, &reg);
    assert_eq!(st(&sim, DropReason::StampRejected), 3);
    assert_eq!(regs(&sim), before, "not processed");
    assert!(sim.supernode(sn).edges().iter().all(|e| e.sock != evil));

    // Forged: decrypted with the (public) static key, a new MAC and a fresh
    // stamp, re-encrypted; the old trailer or a random one: silent drops.
    let rocks = CommunityHe::new(*Community::new("rocks").unwrap().field());
    let mut plain = reg.clone();
    let (kind, dec) = rocks.decrypt(&mut plain).unwrap();
    assert_eq!(kind, HeKeyKind::Static);
    let (hdr, m) = wire::decode(&plain[..dec.len]).unwrap();
    let Message::RegisterSuper(mut rs) = m else {
        panic!()
    };
    rs.edge_mac = Mac([2, 0, 0, 0, 0, 0x66]);
    rs.cookie ^= 1;
    let mut msg = vec![0u8; 2048];
    let n = wire::encode(&hdr, &Message::RegisterSuper(rs), &mut msg).unwrap();
    msg.truncate(n);
    let mut stamps = StampGenerator::new();
    let now = sim.now();
    let stamp = stamps.next(now.unix_secs(), (now.unix_us % 1_000_000) as u32);
    rocks
        .encrypt(&mut msg, n, stamp, [9, 9, 9, 9], HeKeyKind::Static)
        .unwrap();
    let old_trailer = &reg[reg.len() - 16..];
    for trailer in [old_trailer.to_vec(), vec![0x5a; 16]] {
        let mut forged = msg.clone();
        forged.extend_from_slice(&trailer);
        let before = st(&sim, DropReason::BadTrailer);
        sim.inject(sn, evil, &forged);
        assert_eq!(st(&sim, DropReason::BadTrailer), before + 1);
    }
    assert!(
        sim.supernode(sn)
            .edges()
            .iter()
            .all(|e| e.mac != Mac([2, 0, 0, 0, 0, 0x66]))
    );

    // The edge: the replayed ACK (stale stamp, old challenge) and a forged
    // one (fresh stamp, no valid trailer) change nothing.
    let drops = sim.edge(a).stats().total_drops();
    sim.inject(a, sa(SN), &ack);
    let mut plain = ack.clone();
    let (_, dec) = rocks.decrypt(&mut plain).unwrap();
    let mut forged = plain[..dec.len].to_vec();
    let now = sim.now();
    let stamp = stamps.next(now.unix_secs() + 1, 0);
    rocks
        .encrypt(&mut forged, dec.len, stamp, [1, 1, 1, 1], HeKeyKind::Static)
        .unwrap();
    forged.extend_from_slice(&[0; 16]);
    sim.inject(a, sa(SN), &forged);
    let s = sim.edge(a).stats();
    assert_eq!(s.total_drops(), drops + 2, "{s:?}");
    assert_eq!(s.drops(EdgeDrop::BadTrailer), 1, "{s:?}");
    // Everything still works.
    assert!(registered(&sim, &[a, b]));
    assert_eq!(exchange(&mut sim, a, b, 2), 2);
}

#[test]
fn a_registered_mac_stays_with_its_user() {
    let (mut sim, sn) = net(9, &[ALICE, BOB]);
    let a = add_edge(&mut sim, 1, ALICE.0, ALICE.1);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a])));
    // bob, a listed user, claims alice's MAC from another socket (C would
    // hand it over): refused; alice keeps it.
    let mut cfg = edge_cfg(1, BOB.0, BOB.1);
    cfg.tap_addr = TapAddrMode::Static(DevAddr::new(Ipv4Addr::new(10, 0, 0, 9), 24));
    let x = sim.add_edge("x", sa("198.51.100.9:50009"), None, cfg);
    sim.run_for(Duration::from_secs(30));
    assert!(!sim.edge(x).has_registered_once());
    assert!(
        sim.supernode(sn)
            .stats()
            .refusal_count(RefuseReason::MacInUse)
            >= 1
    );
    assert!(sim.edge(a).is_registered());
    let edges = sim.supernode(sn).edges();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].sock, sa("198.51.100.1:50001"));
    // (x's stamps are checked against the entry of that MAC too.)
    sim.kill(x);
    sim.run_for(Duration::from_secs(1));
    // alice's UNREGISTER_SUPER: a fresh challenge, her listed key.
    sim.shutdown_edge(a);
    sim.run_for(Duration::from_secs(1));
    assert!(
        sim.supernode(sn).edges().is_empty(),
        "UNREGISTER_SUPER accepted: {:?}",
        sim.supernode(sn).stats()
    );
}

#[test]
fn several_supernodes_start_with_the_first_without_pings() {
    // behaviour.md §2.1: no PING phase with user/password (a PING before the
    // first ACK could only be under the static key, which the supernode
    // drops); the first -l is registered with right away.
    let (mut sim, sn) = net(7, &[ALICE]);
    let mut c = edge_cfg(1, ALICE.0, ALICE.1);
    c.supernodes.push("203.0.113.99:7654".to_owned());
    let a = sim.add_edge("alice", sa("198.51.100.1:50001"), None, c);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a])));
    let st = sim.supernode(sn).stats();
    assert_eq!(st.total_drops(), 0, "{st:?}");
}
