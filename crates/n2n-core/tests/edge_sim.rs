//! Edge behaviour in the deterministic simulator: our edges against our
//! supernode over simulated links and NATs.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use n2n_core::edge::{DropReason, EdgeConfig, Event, P2pMode, TapAddrMode};
use n2n_core::sim::{LinkParams, NatKind, NodeId, Sim, ipv4_frame};
use n2n_core::supernode::SupernodeConfig;
use n2n_core::supernode::community_list::CommunityList;
use n2n_proto::types::{Community, CompressionId, DevAddr, Mac, TransformId};

const SN1: &str = "203.0.113.1:7654";
const SN2: &str = "203.0.113.2:7654";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn sn_cfg(last: u8) -> SupernodeConfig {
    SupernodeConfig::new(Mac([2, 0, 0, 0, 0, last]))
}

fn edge_cfg(mac_last: u8, ip: Option<[u8; 4]>, sns: &[&str]) -> EdgeConfig {
    let mut c = EdgeConfig::new(
        Community::new("rocks").unwrap(),
        sns.iter().map(|s| s.to_string()).collect(),
    );
    c.mac = Mac([2, 0, 0, 0, 0, mac_last]);
    c.desc = format!("e{mac_last}");
    c.tap_addr = match ip {
        Some(ip) => TapAddrMode::Static(DevAddr::new(Ipv4Addr::from(ip), 24)),
        None => TapAddrMode::Auto,
    };
    c
}

/// A UDP frame from edge `a` to edge `b` (by their current TAP addresses).
fn frame(sim: &Sim, a: NodeId, b: NodeId, payload: &[u8]) -> Vec<u8> {
    let ea = sim.edge(a);
    let eb = sim.edge(b);
    ipv4_frame(
        ea.mac().0,
        eb.mac().0,
        ea.tap_addr().ip,
        eb.tap_addr().ip,
        payload,
    )
}

/// Sends `n` frames a→b one second apart; returns how many arrived intact.
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

/// One supernode and two public edges with static addresses.
fn open_net(seed: u64) -> (Sim, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let sn = sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]),
    );
    let b = sim.add_edge(
        "b",
        sa("198.51.100.2:50002"),
        None,
        edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]),
    );
    (sim, sn, a, b)
}

#[test]
fn registration_static_and_ping_both_ways() {
    let (mut sim, sn, a, b) = open_net(1);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(sim.supernode(sn).edges().len(), 2);
    sim.run_for(Duration::from_secs(1));
    let ev = sim.take_events(a);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Registered { first: true, .. })),
        "{ev:?}"
    );
    // The gratuitous ARPs of b reached a through the supernode.
    let garps = sim.take_tap(a);
    assert!(garps.iter().any(|f| f.len() == 42 && f[12..14] == [8, 6]));
    assert_eq!(exchange(&mut sim, a, b, 5), 5);
    assert_eq!(exchange(&mut sim, b, a, 5), 5);
}

#[test]
fn registration_auto_ip() {
    let mut sim = Sim::new(2);
    let _sn = sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, None, &[SN1]),
    );
    let b = sim.add_edge(
        "b",
        sa("198.51.100.2:50002"),
        None,
        edge_cfg(2, None, &[SN1]),
    );
    assert!(sim.run_until_cond(Duration::from_secs(10), |s| registered(s, &[a, b])));
    let ea = sim.take_events(a);
    let assigned = ea
        .iter()
        .find_map(|e| match e {
            Event::AssignAddress(d) => Some(*d),
            _ => None,
        })
        .expect("no address assigned");
    assert_eq!(assigned, sim.edge(a).tap_addr());
    assert!(!assigned.ip.is_unspecified());
    assert_eq!(assigned.prefix, 24);
    let ab = sim.edge(b).tap_addr();
    assert_ne!(assigned.ip, ab.ip);
    // Same community, same subnet.
    assert_eq!(assigned.ip.octets()[..3], ab.ip.octets()[..3]);
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert_eq!(exchange(&mut sim, b, a, 3), 3);
}

fn is_direct(sim: &Sim, a: NodeId, b: NodeId) -> bool {
    let mb = sim.edge(b).mac();
    sim.edge(a).peers().iter().any(|p| p.mac == mb && p.direct)
}

/// Datagrams delivered from node `x` to node `y` in the recorded trace.
fn deliveries(sim: &Sim, x: NodeId, y: NodeId) -> usize {
    sim.trace
        .iter()
        .filter(|d| d.from_node == x && d.to_node == y)
        .count()
}

#[test]
fn hole_punch_open_network_goes_direct() {
    let (mut sim, sn, a, b) = open_net(3);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert!(is_direct(&sim, a, b) && is_direct(&sim, b, a));
    // From now on frames take the direct path in both directions.
    sim.record = true;
    let before_sn = sim.edge(a).stats().super_tx;
    assert_eq!(exchange(&mut sim, a, b, 4), 4);
    assert_eq!(exchange(&mut sim, b, a, 4), 4);
    assert_eq!(sim.edge(a).stats().super_tx, before_sn);
    assert!(deliveries(&sim, a, b) >= 4 && deliveries(&sim, b, a) >= 4);
    let rows = sim.mgmt(a, "r 1 edges");
    let row = rows.iter().find(|l| l.contains("\"row\"")).unwrap();
    assert!(row.contains("\"mode\":\"p2p\""), "{row}");
    assert!(row.contains("\"sockaddr\":\"198.51.100.2:50002\""), "{row}");
    let _ = sn;
}

fn natted(seed: u64, ka: NatKind, kb: NatKind) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let na = sim.add_nat(Ipv4Addr::new(192, 0, 2, 10), ka);
    let nb = sim.add_nat(Ipv4Addr::new(192, 0, 2, 20), kb);
    let a = sim.add_edge(
        "a",
        sa("10.1.0.2:50001"),
        Some(na),
        edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]),
    );
    let b = sim.add_edge(
        "b",
        sa("10.2.0.2:50002"),
        Some(nb),
        edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]),
    );
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    (sim, a, b)
}

#[test]
fn hole_punch_through_two_eim_nats() {
    for (ka, kb) in [
        (NatKind::EndpointIndependent, NatKind::EndpointIndependent),
        (NatKind::AddressRestricted, NatKind::AddressRestricted),
        (NatKind::PortRestricted, NatKind::PortRestricted),
        (NatKind::PortRestricted, NatKind::EndpointIndependent),
    ] {
        let (mut sim, a, b) = natted(4, ka, kb);
        assert_eq!(exchange(&mut sim, a, b, 4), 4, "{ka:?}/{kb:?}");
        assert!(
            is_direct(&sim, a, b) && is_direct(&sim, b, a),
            "{ka:?}/{kb:?}: {:?} {:?}",
            sim.edge(a).peers(),
            sim.edge(b).peers()
        );
        // The peers' sockets are the NATs' public addresses.
        let pb = sim.edge(a).peers();
        assert_eq!(
            pb[0].sock.unwrap().ip(),
            Ipv4Addr::new(192, 0, 2, 20),
            "{ka:?}/{kb:?}"
        );
        sim.record = true;
        let super_before = sim.edge(a).stats().super_tx + sim.edge(b).stats().super_tx;
        assert_eq!(exchange(&mut sim, a, b, 3), 3);
        assert_eq!(exchange(&mut sim, b, a, 3), 3);
        assert_eq!(
            sim.edge(a).stats().super_tx + sim.edge(b).stats().super_tx,
            super_before,
            "{ka:?}/{kb:?}: frames went through the supernode"
        );
    }
}

#[test]
fn symmetric_nat_falls_back_to_relay() {
    let (mut sim, a, b) = natted(5, NatKind::Symmetric, NatKind::PortRestricted);
    for _ in 0..3 {
        assert_eq!(exchange(&mut sim, a, b, 5), 5);
        assert_eq!(exchange(&mut sim, b, a, 5), 5);
        sim.run_for(Duration::from_secs(20));
    }
    assert!(!is_direct(&sim, a, b));
    assert!(!is_direct(&sim, b, a));
    assert!(sim.edge(a).stats().super_tx >= 15);
    // Management reports the peer as reached through the supernode.
    for (x, y) in [(a, b), (b, a)] {
        let mac = sim.edge(y).mac().to_string();
        let rows = sim.mgmt(x, "r 7 edges");
        let row = rows
            .iter()
            .find(|l| l.contains(&mac))
            .unwrap_or_else(|| panic!("{rows:?}"));
        assert!(row.contains("\"mode\":\"pSp\""), "{row}");
        let v: serde_json::Value = serde_json::from_str(row).unwrap();
        assert_eq!(v["macaddr"], mac.as_str());
    }
}

#[test]
fn idle_traffic_is_bounded() {
    let (mut sim, sn, a, b) = open_net(6);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(exchange(&mut sim, a, b, 2), 2);
    sim.record = true;
    sim.run_for(Duration::from_secs(600));
    // Per edge and 20 s: REGISTER_SUPER + ACK; per 30 s: PING + PONG. The
    // multicast REGISTERs have no LAN here and are not delivered.
    let to_sn = deliveries(&sim, a, sn);
    let from_sn = deliveries(&sim, sn, a);
    assert!((30..=60).contains(&to_sn), "a→sn {to_sn}");
    assert!((30..=60).contains(&from_sn), "sn→a {from_sn}");
    assert!(registered(&sim, &[a, b]));
    assert!(
        sim.edge(a).stats().total_drops() == 0,
        "{:?}",
        sim.edge(a).stats()
    );
}

/// Two supernodes, two supernode-only edges that know both.
fn two_supernodes(seed: u64) -> (Sim, NodeId, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let s1 = sim.add_supernode("sn1", sa(SN1), sn_cfg(0xf1));
    let s2 = sim.add_supernode("sn2", sa(SN2), sn_cfg(0xf2));
    let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1, SN2]);
    let mut cb = edge_cfg(2, Some([10, 0, 0, 2]), &[SN1, SN2]);
    ca.p2p = P2pMode::SupernodeOnly;
    cb.p2p = P2pMode::SupernodeOnly;
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
    let b = sim.add_edge("b", sa("198.51.100.2:50002"), None, cb);
    assert!(sim.run_until_cond(Duration::from_secs(10), |s| registered(s, &[a, b])));
    (sim, s1, s2, a, b)
}

/// Sends a frame a→b every `step` for `total`; returns the arrival times
/// (as offsets from the first send) of the frames that made it.
fn stream(sim: &mut Sim, a: NodeId, b: NodeId, step: Duration, total: Duration) -> Vec<Duration> {
    let t0 = sim.now().mono;
    let mut got = Vec::new();
    let n = (total.as_millis() / step.as_millis()) as usize;
    for i in 0..n {
        let f = frame(sim, a, b, format!("seq {i}").as_bytes());
        sim.send_frame(a, &f);
        sim.run_for(step);
        for (t, g) in sim.take_tap_timed(b) {
            if g.len() > 42 {
                got.push(t - t0);
            }
        }
    }
    got
}

fn max_gap(arrivals: &[Duration]) -> Duration {
    arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn failover_to_second_supernode() {
    let (mut sim, s1, s2, a, b) = two_supernodes(7);
    // Both picked the same supernode (equal PONGs; first in the list).
    assert_eq!(sim.edge(a).current_supernode(), Some(sa(SN1)));
    assert_eq!(sim.edge(b).current_supernode(), Some(sa(SN1)));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    // Run a while so the regular timers are in their steady state.
    sim.run_for(Duration::from_secs(47));
    let f0 = frame(&sim, a, b, b"warmup");
    sim.send_frame(a, &f0);
    sim.kill(s1);
    let arrivals = stream(
        &mut sim,
        a,
        b,
        Duration::from_millis(200),
        Duration::from_secs(60),
    );
    assert_eq!(sim.edge(a).current_supernode(), Some(sa(SN2)));
    assert_eq!(sim.edge(b).current_supernode(), Some(sa(SN2)));
    assert!(registered(&sim, &[a, b]));
    assert_eq!(sim.supernode(s2).edges().len(), 2);
    for e in [a, b] {
        assert!(sim.take_events(e).iter().any(|ev| matches!(
            ev,
            Event::SupernodeSwitched { to: Some(t), .. } if *t == sa(SN2)
        )));
    }
    // Traffic resumed and the outage is bounded: C needs 9-12 s after the
    // regular REGISTER_SUPER, plus up to one interval (20 s) until that one.
    let gap = max_gap(&arrivals);
    let first = arrivals.first().copied().unwrap_or_default();
    let outage = gap.max(first);
    eprintln!(
        "failover: first frame {:?} after the kill, largest gap afterwards {:?}, {} of 300 frames arrived",
        first,
        gap,
        arrivals.len()
    );
    assert!(arrivals.len() > 150, "{}", arrivals.len());
    assert!(outage <= Duration::from_secs(35), "outage {outage:?}");
    // The last 20 s are complete.
    let late = arrivals
        .iter()
        .filter(|t| **t >= Duration::from_secs(40))
        .count();
    assert!(late >= 99, "{late}");
}

#[test]
fn supernode_restart_edges_reregister() {
    let (mut sim, sn, a, b) = open_net(8);
    let mut ca = sim.edge(a).config().clone();
    ca.p2p = P2pMode::SupernodeOnly;
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    sim.run_for(Duration::from_secs(30));
    sim.kill(sn);
    sim.run_for(Duration::from_secs(5));
    sim.restart_supernode(sn, sn_cfg(0xfe));
    assert!(sim.supernode(sn).edges().is_empty());
    // Within one interval plus retries both are back.
    assert!(sim.run_until_cond(Duration::from_secs(40), |s| {
        s.supernode(sn).edges().len() == 2 && registered(s, &[a, b])
    }));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert_eq!(exchange(&mut sim, b, a, 3), 3);
    let _ = ca;
}

#[test]
fn silent_peer_is_purged() {
    let (mut sim, _sn, a, b) = open_net(9);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert!(is_direct(&sim, a, b));
    sim.take_events(a);
    let mb = sim.edge(b).mac();
    sim.kill(b);
    sim.run_for(Duration::from_secs(100));
    assert!(sim.edge(a).peers().iter().all(|p| p.mac != mb));
    let ev = sim.take_events(a);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::PeerRemoved { mac, direct: true, reason: n2n_core::edge::PeerRemoval::Purged, .. } if *mac == mb
        )),
        "{ev:?}"
    );
    // The supernode forgot it too.
    assert!(sim.supernode(_sn).edges().iter().all(|e| e.mac != mb));
}

#[test]
fn loss_and_reordering_keep_registration() {
    let (mut sim, sn, a, b) = open_net(10);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    sim.set_all_links(LinkParams {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(20),
        loss: 0.01,
        reorder: 0.05,
        reorder_delay: Duration::from_millis(40),
    });
    sim.take_events(a);
    sim.take_events(b);
    let mut delivered = 0;
    let mut sent = 0;
    for i in 0..240 {
        let (x, y) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let f = frame(&sim, x, y, format!("n{i}").as_bytes());
        sim.send_frame(x, &f);
        sent += 1;
        sim.run_for(Duration::from_millis(500));
        delivered += sim.take_tap(y).iter().filter(|g| **g == f).count();
        // The supernode never dropped them.
        assert_eq!(sim.supernode(sn).edges().len(), 2, "at {i}");
        assert!(sim.edge(a).has_registered_once() && sim.edge(b).has_registered_once());
    }
    assert!(sim.lost > 0, "no loss simulated");
    assert!(delivered as f64 >= sent as f64 * 0.95, "{delivered}/{sent}");
    for e in [a, b] {
        let ev = sim.take_events(e);
        assert!(
            !ev.iter()
                .any(|x| matches!(x, Event::SupernodeSwitched { .. })),
            "{ev:?}"
        );
    }
}

fn crypto_net(
    seed: u64,
    he: bool,
    ta: (TransformId, &str, CompressionId),
    tb: (TransformId, &str, CompressionId),
) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let mut sc = sn_cfg(0xfe);
    if he {
        // Header encryption needs the community listed by name.
        sc.communities = Some(CommunityList::parse("rocks\n").unwrap());
    }
    sim.add_supernode("sn", sa(SN1), sc);
    let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]);
    let mut cb = edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]);
    for (c, (t, k, z)) in [(&mut ca, ta), (&mut cb, tb)] {
        c.transform = t;
        c.key = k.as_bytes().to_vec();
        c.compression = z;
        c.header_encryption = he;
    }
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
    let b = sim.add_edge("b", sa("198.51.100.2:50002"), None, cb);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    (sim, a, b)
}

#[test]
fn every_transform_compression_and_header_encryption() {
    let z = [CompressionId::None, CompressionId::Lzo, CompressionId::Zstd];
    let mut seed = 100;
    for t in 1..=7u8 {
        for he in [false, true] {
            for comp in z {
                seed += 1;
                let key = if t == 1 { "" } else { "s3cret" };
                let tid = TransformId::try_from(t).unwrap();
                let (mut sim, a, b) = crypto_net(seed, he, (tid, key, comp), (tid, key, comp));
                // Compressible payloads, both directions, relayed then direct.
                let mut ok = 0;
                for i in 0..6 {
                    let payload = vec![b'a' + (i as u8); 300 + i * 50];
                    for (x, y) in [(a, b), (b, a)] {
                        let f = frame(&sim, x, y, &payload);
                        sim.send_frame(x, &f);
                        sim.run_for(Duration::from_millis(500));
                        ok += sim.take_tap(y).iter().filter(|g| **g == f).count();
                    }
                }
                let what = format!("transform {t} he {he} compression {comp}");
                assert_eq!(
                    ok,
                    12,
                    "{what}: {:?} {:?}",
                    sim.edge(a).stats(),
                    sim.edge(b).stats()
                );
                assert!(is_direct(&sim, a, b), "{what}");
                assert_eq!(
                    sim.edge(a).stats().total_drops(),
                    0,
                    "{what}: {:?}",
                    sim.edge(a).stats()
                );
                assert_eq!(
                    sim.edge(b).stats().total_drops(),
                    0,
                    "{what}: {:?}",
                    sim.edge(b).stats()
                );
                // The supernode saw encrypted headers only.
                if he {
                    let rows = sim.mgmt(a, "r 1 communities");
                    // begin, the error, end (C's framing).
                    assert!(rows[1].contains("noaccess"), "{rows:?}");
                }
            }
        }
    }
}

#[test]
fn wrong_key_delivers_nothing() {
    for (t, seed) in [
        (TransformId::Aes, 200),
        (TransformId::ChaCha20Poly1305, 201),
        (TransformId::Aes256Gcm, 202),
        (TransformId::Speck, 203),
    ] {
        let (mut sim, a, b) = crypto_net(
            seed,
            false,
            (t, "s3cret", CompressionId::None),
            (t, "wrong!", CompressionId::None),
        );
        sim.run_for(Duration::from_secs(1));
        // Not even the gratuitous ARPs decoded into something correct.
        let garbage = sim.take_tap(a);
        let mut delivered = 0;
        for i in 0..10 {
            // Lengths that are not multiples of 16 (AES-CTS padding check).
            let f = frame(&sim, a, b, &vec![7u8; 21 + i]);
            sim.send_frame(a, &f);
            sim.run_for(Duration::from_millis(500));
            delivered += sim.take_tap(b).iter().filter(|g| **g == f).count();
        }
        assert_eq!(delivered, 0, "{t}");
        let sb = sim.edge(b).stats().clone();
        // Nothing at all reached the TAPs: AEADs fail their tag; the C
        // ciphers decrypt to garbage addressed to a random MAC.
        assert!(sim.take_tap(b).is_empty(), "{t}");
        assert!(garbage.is_empty(), "{t}: {garbage:?}");
        let reason = if t.is_aead() {
            DropReason::PayloadDecryptFailed
        } else {
            DropReason::ForeignDestinationMac
        };
        assert!(sb.total_drops() >= 10, "{t}: {sb:?}");
        assert!(sb.drops(reason) >= 5, "{t}: {sb:?}");
        // Management shows the drop counter in our `drops`.
        let rows = sim.mgmt(b, "r 5 drops");
        assert!(
            rows.iter().any(|r| r.contains(&format!(
                "\"type\":\"drop\",\"reason\":\"{}\"",
                reason.name()
            ))),
            "{rows:?}"
        );
    }
}

#[test]
fn different_transform_is_dropped_by_id() {
    let (mut sim, a, b) = crypto_net(
        210,
        false,
        (TransformId::Aes, "s3cret", CompressionId::None),
        (TransformId::ChaCha20, "s3cret", CompressionId::None),
    );
    let f = frame(&sim, a, b, b"hello");
    sim.send_frame(a, &f);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.take_tap(b).is_empty());
    assert!(sim.edge(b).stats().drops(DropReason::WrongTransform) >= 1);
}

#[test]
fn header_encryption_mismatch_is_refused() {
    // a uses -H, b does not: the supernode locks the community to the mode
    // of the first packet; the other edge never registers.
    let mut sim = Sim::new(220);
    let mut sc = sn_cfg(0xfe);
    sc.communities = Some(CommunityList::parse("rocks\n").unwrap());
    sim.add_supernode("sn", sa(SN1), sc);
    let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]);
    ca.header_encryption = true;
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
    sim.run_for(Duration::from_secs(2));
    let b = sim.add_edge(
        "b",
        sa("198.51.100.2:50002"),
        None,
        edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]),
    );
    sim.run_for(Duration::from_secs(30));
    assert!(sim.edge(a).is_registered());
    assert!(!sim.edge(b).has_registered_once());
}

#[test]
fn lan_discovery_by_multicast() {
    // Two edges behind the same NAT (one LAN), a third outside.
    let mut sim = Sim::new(300);
    sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let nat = sim.add_nat(Ipv4Addr::new(192, 0, 2, 10), NatKind::PortRestricted);
    let a = sim.add_edge(
        "a",
        sa("10.1.0.2:50001"),
        Some(nat),
        edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]),
    );
    let b = sim.add_edge(
        "b",
        sa("10.1.0.3:50002"),
        Some(nat),
        edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]),
    );
    sim.record = true;
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    // The discovery REGISTER of the later edge reached the first one on the
    // multicast socket; they are direct on their private addresses.
    assert!(
        sim.run_until_cond(Duration::from_secs(30), |s| is_direct(s, a, b)
            && is_direct(s, b, a))
    );
    assert!(sim.trace.iter().any(|d| d.multicast && d.to_node == a));
    let pa = sim.edge(a).peers();
    let pb = pa.iter().find(|p| p.mac == sim.edge(b).mac()).unwrap();
    assert_eq!(pb.sock, Some(sa("10.1.0.3:50002")));
    assert!(pb.local || sim.edge(b).peers().iter().any(|p| p.local));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    // The mgmt row says local.
    let rows = sim.mgmt(b, "r 1 edges");
    assert!(rows.iter().any(|r| r.contains("\"local\":1")), "{rows:?}");
}

#[test]
fn supernode_only_never_punches() {
    let mut sim = Sim::new(301);
    let sn = sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]);
    let mut cb = edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]);
    ca.p2p = P2pMode::SupernodeOnly;
    cb.p2p = P2pMode::SupernodeOnly;
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
    let b = sim.add_edge("b", sa("198.51.100.2:50002"), None, cb);
    sim.set_lan(a, Some(7));
    sim.set_lan(b, Some(7));
    sim.record = true;
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(exchange(&mut sim, a, b, 5), 5);
    assert_eq!(exchange(&mut sim, b, a, 5), 5);
    sim.run_for(Duration::from_secs(60));
    // Not a single datagram between the edges, not even multicast.
    assert_eq!(deliveries(&sim, a, b) + deliveries(&sim, b, a), 0);
    assert!(deliveries(&sim, a, sn) > 0);
    assert!(!is_direct(&sim, a, b));
    // b is known as pending (seen through the supernode).
    assert!(sim.edge(a).peers().iter().any(|p| !p.direct));
}

#[test]
fn no_packets_before_first_ack() {
    let mut sim = Sim::new(302);
    let sn = sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    sim.kill(sn);
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]),
    );
    let f = ipv4_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        b"x",
    );
    sim.send_frame(a, &f);
    sim.run_for(Duration::from_secs(10));
    assert!(!sim.edge(a).has_registered_once());
    assert_eq!(sim.edge(a).stats().drops(DropReason::NotRegistered), 1);
    assert_eq!(sim.edge(a).stats().transop_tx, 0);
    // A PACKET arriving now is dropped too.
    let mut dg = hex::decode(
        "03020003726f636b73000000000000000000000000000000020000000002020000000001010100",
    )
    .unwrap();
    let now = sim_now(&sim);
    let e = sim.edge_mut(a);
    let mut out = vec![0u8; 2048];
    assert_eq!(
        e.decapsulate(now, sa("198.51.100.2:50002"), &mut dg, false, &mut out),
        None
    );
    assert_eq!(e.stats().drops(DropReason::NotRegistered), 2);
}

fn sim_now(sim: &Sim) -> n2n_core::Now {
    sim.now()
}

#[test]
fn spoofed_mac_gets_nak_and_keeps_trying() {
    let mut sim = Sim::new(303);
    sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]),
    );
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a])));
    // Same MAC, different token (another process).
    let evil = sim.add_edge(
        "evil",
        sa("198.51.100.9:50009"),
        None,
        edge_cfg(1, Some([10, 0, 0, 9]), &[SN1]),
    );
    sim.run_for(Duration::from_secs(45));
    let ev = sim.take_events(evil);
    let naks = ev
        .iter()
        .filter(|e| matches!(e, Event::RegistrationNak { .. }))
        .count();
    assert!(naks >= 2, "{ev:?}");
    assert!(!sim.edge(evil).has_registered_once());
    assert!(sim.edge(a).is_registered());
}

#[test]
fn broadcast_goes_to_known_peers_while_supernode_is_lost() {
    let (mut sim, sn, a, b) = open_net(304);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(exchange(&mut sim, a, b, 3), 3);
    assert_eq!(exchange(&mut sim, b, a, 3), 3);
    sim.kill(sn);
    // Wait until a notices (its next registration stays unanswered).
    assert!(sim.run_until_cond(Duration::from_secs(25), |s| !s.edge(a).is_registered()));
    sim.take_tap(b);
    let mut bc = frame(&sim, a, b, b"to everybody");
    bc[0..6].copy_from_slice(&[0xff; 6]);
    sim.send_frame(a, &bc);
    sim.run_for(Duration::from_millis(500));
    assert!(sim.take_tap(b).contains(&bc));
    // Unicast: as in C a known peer counts as direct only while it sent
    // something directly in the last 10 s; while the supernode is gone
    // the peers refresh each other with REGISTERs when silent for 20 s, so
    // a steady stream gets through at least part of the time.
    let arrivals = stream(
        &mut sim,
        a,
        b,
        Duration::from_millis(500),
        Duration::from_secs(60),
    );
    assert!(arrivals.len() >= 20, "{}", arrivals.len());
    assert!(!sim.edge(a).is_registered());
}

fn net_with(
    seed: u64,
    fa: impl Fn(&mut EdgeConfig),
    fb: impl Fn(&mut EdgeConfig),
) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]);
    let mut cb = edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]);
    fa(&mut ca);
    fb(&mut cb);
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
    let b = sim.add_edge("b", sa("198.51.100.2:50002"), None, cb);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    sim.run_for(Duration::from_secs(1));
    sim.take_tap(a);
    sim.take_tap(b);
    (sim, a, b)
}

fn deliver_once(sim: &mut Sim, x: NodeId, y: NodeId, f: &[u8]) -> bool {
    sim.send_frame(x, f);
    sim.run_for(Duration::from_millis(500));
    sim.take_tap(y).iter().any(|g| g == f)
}

#[test]
fn multicast_needs_dash_e() {
    let mcast = |sim: &Sim, a: NodeId| {
        let e = sim.edge(a);
        ipv4_frame(
            e.mac().0,
            [0x01, 0, 0x5e, 0, 0, 0xfb],
            e.tap_addr().ip,
            Ipv4Addr::new(224, 0, 0, 251),
            b"mdns",
        )
    };
    let (mut sim, a, b) = net_with(400, |_| {}, |_| {});
    let f = mcast(&sim, a);
    assert!(!deliver_once(&mut sim, a, b, &f));
    assert_eq!(sim.edge(a).stats().drops(DropReason::MulticastDisabled), 1);
    // Receiver without -E drops what a sender with -E sends.
    let (mut sim, a, b) = net_with(401, |c| c.multicast = true, |_| {});
    let f = mcast(&sim, a);
    assert!(!deliver_once(&mut sim, a, b, &f));
    assert_eq!(sim.edge(b).stats().drops(DropReason::MulticastDisabled), 1);
    let (mut sim, a, b) = net_with(402, |c| c.multicast = true, |c| c.multicast = true);
    let f = mcast(&sim, a);
    assert!(deliver_once(&mut sim, a, b, &f));
    // Multicast goes through the supernode, like broadcast.
    assert_eq!(sim.edge(a).stats().super_broadcast_tx, 3);
}

#[test]
fn routing_checks_and_dash_r() {
    let mac1 = [2, 0, 0, 0, 0, 1];
    let mac2 = [2, 0, 0, 0, 0, 2];
    let ip = |d| Ipv4Addr::new(10, 0, 0, d);
    // Foreign source IP from the TAP: dropped without -r.
    let (mut sim, a, b) = net_with(410, |_| {}, |_| {});
    let f = ipv4_frame(mac1, mac2, ip(99), ip(2), b"spoof");
    assert!(!deliver_once(&mut sim, a, b, &f));
    assert_eq!(sim.edge(a).stats().drops(DropReason::ForeignSourceIp), 1);
    // With -r on the sender it leaves; b (no -r) takes it: its destination is b.
    let (mut sim, a, b) = net_with(411, |c| c.routing = true, |_| {});
    assert!(deliver_once(&mut sim, a, b, &f));
    // A routed destination behind b: b drops it without -r ...
    let g = ipv4_frame(mac1, mac2, ip(1), Ipv4Addr::new(192, 168, 7, 7), b"routed");
    assert!(!deliver_once(&mut sim, a, b, &g));
    assert_eq!(
        sim.edge(b).stats().drops(DropReason::ForeignDestinationIp),
        1
    );
    // ... and takes it with -r.
    let (mut sim, a, b) = net_with(412, |c| c.routing = true, |c| c.routing = true);
    assert!(deliver_once(&mut sim, a, b, &g));
}

#[test]
fn bridging_learns_hosts_behind_edges() {
    let host = [2, 0xaa, 0, 0, 0, 7];
    let (mut sim, a, b) = net_with(420, |c| c.routing = true, |c| c.routing = true);
    let ip = |d| Ipv4Addr::new(10, 0, 0, d);
    // A host bridged behind b talks to a: a learns host → b.
    let from_host = ipv4_frame(host, [2, 0, 0, 0, 0, 1], ip(7), ip(1), b"hello from host");
    assert!(deliver_once(&mut sim, b, a, &from_host));
    // a's answer to the host's MAC is addressed to b and reaches it.
    let to_host = ipv4_frame([2, 0, 0, 0, 0, 1], host, ip(1), ip(7), b"hello host");
    assert!(deliver_once(&mut sim, a, b, &to_host));
    // Without learning (an unknown MAC) the PACKET would go to that MAC.
    let other = ipv4_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0xbb, 0, 0, 0, 8],
        ip(1),
        ip(8),
        b"?",
    );
    assert!(!deliver_once(&mut sim, a, b, &other));
    // Learnt entries expire after 300 s.
    sim.run_for(Duration::from_secs(400));
    assert!(!deliver_once(&mut sim, a, b, &to_host));
}

#[test]
fn traffic_rules_apply_both_ways() {
    let rules = |c: &mut EdgeConfig| {
        c.traffic_rules = vec![
            "0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-".parse().unwrap(),
            "10.0.0.0/24,10.0.0.0/24:[1000,2000],UDP+".parse().unwrap(),
        ];
    };
    let (mut sim, a, b) = net_with(430, rules, |_| {});
    let ip = |d| Ipv4Addr::new(10, 0, 0, d);
    // ipv4_frame uses port 12345: not in 1000..=2000 → dropped at a.
    let f = ipv4_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], ip(1), ip(2), b"udp");
    assert!(!deliver_once(&mut sim, a, b, &f));
    assert_eq!(sim.edge(a).stats().drops(DropReason::TrafficRule), 1);
    let mut g = f.clone();
    g[36..38].copy_from_slice(&1500u16.to_be_bytes());
    assert!(deliver_once(&mut sim, a, b, &g));
    // Received frames are filtered too.
    let h = ipv4_frame(
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 1],
        ip(2),
        ip(1),
        b"back",
    );
    assert!(!deliver_once(&mut sim, b, a, &h));
    assert_eq!(sim.edge(a).stats().drops(DropReason::TrafficRule), 2);
}

#[test]
fn management_commands() {
    use n2n_core::edge::MgmtAction;
    let (mut sim, a, b) = net_with(500, |_| {}, |_| {});
    assert_eq!(exchange(&mut sim, a, b, 2), 2);
    let now = sim.now();
    let lo: SocketAddr = sa("127.0.0.1:9999");
    let e = sim.edge_mut(a);
    let json = |lines: &[String]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // verbose read / write (password) / write without password.
    let o = e.handle_mgmt(now, lo, b"r 1 verbose");
    assert_eq!(json(&o.replies)[1]["traceLevel"], 2);
    assert_eq!(o.action, None);
    let o = e.handle_mgmt(now, lo, b"w 2:1:n2n verbose 1");
    assert_eq!(json(&o.replies)[1]["traceLevel"], 1);
    assert_eq!(o.action, Some(MgmtAction::SetVerbosity(1)));
    let o = e.handle_mgmt(now, lo, b"w 3 verbose 4");
    assert_eq!(json(&o.replies)[0]["error"], "badauth");
    let o = e.handle_mgmt(now, lo, b"w 3:1:wrong stop");
    assert_eq!(json(&o.replies)[0]["error"], "badauth");
    assert_eq!(o.action, None);
    // stop: read keeps running, write stops.
    let o = e.handle_mgmt(now, lo, b"r 4 stop");
    assert_eq!(json(&o.replies)[1]["keep_running"], 1);
    assert_eq!(o.action, None);
    let o = e.handle_mgmt(now, lo, b"w 5:1:n2n stop");
    assert_eq!(json(&o.replies)[1]["keep_running"], 0);
    assert_eq!(o.action, Some(MgmtAction::Stop));
    // Legacy text commands.
    let o = e.handle_mgmt(now, lo, b"stop\n");
    assert_eq!((o.replies.len(), o.action), (0, Some(MgmtAction::Stop)));
    let o = e.handle_mgmt(now, lo, b"+verb\n");
    assert_eq!(o.replies, vec!["> +OK traceLevel=2\n".to_owned()]);
    let o = e.handle_mgmt(now, lo, b"help");
    assert!(o.replies[0].contains("+verb"));
    let page = e.handle_mgmt(now, lo, b"\n").replies.concat();
    assert!(page.starts_with("COMMUNITY 'rocks'\n"), "{page}");
    assert!(page.contains("PEER TO PEER\n   1 |"), "{page}");
    assert!(
        page.contains("02:00:00:00:00:02 | 198.51.100.2:50002"),
        "{page}"
    );
    assert!(
        page.contains("l* | 02:00:00:00:00:FE | 203.0.113.1:7654"),
        "{page}"
    );
    // Errors.
    assert_eq!(
        json(&e.handle_mgmt(now, lo, b"r 6 nosuch").replies)[0]["error"],
        "unknowncmd"
    );
    assert_eq!(
        json(&e.handle_mgmt(now, lo, b"w 7:1:n2n edges").replies)[0]["error"],
        "readonly"
    );
    let sub = e.handle_mgmt(now, lo, b"s 8:1:n2n peer");
    assert!(sub.replies.is_empty());
    assert!(matches!(
        sub.action,
        Some(n2n_core::edge::MgmtAction::Subscribe { ref tag, .. }) if tag == "8"
    ));
    assert_eq!(
        json(&e.handle_mgmt(now, lo, b"s 8:1:n2n nosuch").replies)[0]["error"],
        "unknowntopic"
    );
    assert_eq!(
        json(
            &e.handle_mgmt(now, lo, b"w 9:1:n2n reload_communities")
                .replies
        )[1]["error"],
        "unimplemented"
    );
    // help lists every command with its text; packetstats has C's 4 rows.
    let help = json(&e.handle_mgmt(now, lo, b"r 10 help").replies);
    assert_eq!(help.len(), 2 + 13);
    let ps = json(&e.handle_mgmt(now, lo, b"r 11 packetstats").replies);
    let types: Vec<&str> = ps[1..5]
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["transop", "p2p", "super", "super_broadcast"]);
    assert!(ps[1]["tx_pkt"].as_u64().unwrap() >= 4);
    let info = json(&e.handle_mgmt(now, lo, b"r 12 info").replies);
    assert_eq!(info[1]["ip4addr"], "10.0.0.1");
    assert_eq!(info[1]["ip4netmask"], "255.255.255.0");
    assert_eq!(info[1]["sockaddr"], "198.51.100.1:50001");
    let ts = json(&e.handle_mgmt(now, lo, b"r 13 timestamps").replies);
    let secs = now.unix_secs();
    assert!(ts[1]["last_super"].as_u64().unwrap() + 25 >= secs);
    assert!(ts[1]["start_time"].as_u64().unwrap() <= secs);
    let sns = json(&e.handle_mgmt(now, lo, b"r 14 supernodes").replies);
    assert_eq!(sns[1]["macaddr"], "02:00:00:00:00:FE");
    assert_eq!(sns[1]["current"], 1);
}

#[test]
fn hostile_datagrams_never_panic_and_are_counted() {
    let (mut sim, a, _b) = net_with(510, |_| {}, |_| {});
    let now = sim.now();
    let e = sim.edge_mut(a);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = vec![0u8; 2048];
    let sn = sa(SN1);
    let mut n = 0u64;
    let before = e.stats().total_drops();
    for len in 0..600usize {
        for variant in 0..4u8 {
            let mut d = vec![0u8; len];
            for b in d.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            // Make some of them look plausible: version 3, our community,
            // each message type, with and without FROM_SUPERNODE.
            if len >= 24 && variant > 0 {
                d[0] = 3;
                d[1] = 2;
                d[2] = 0;
                d[3] = (len % 13) as u8
                    | if variant == 2 { 0x20 } else { 0 }
                    | if variant == 3 { 0x40 } else { 0 };
                d[4..24].copy_from_slice(Community::new("rocks").unwrap().field());
            }
            let from = if variant == 2 {
                sn
            } else {
                sa("198.51.100.2:50002")
            };
            let _ = e.decapsulate(now, from, &mut d, variant == 1, &mut out);
            n += 1;
        }
    }
    // Nearly all of them were dropped, each under a named reason.
    let dropped = e.stats().total_drops() - before;
    assert!(dropped >= n * 9 / 10, "{dropped} of {n}");
    // A valid RE_REGISTER_SUPER from the supernode's socket may have asked for
    // an immediate re-registration (at most one per second): it completes at the latest with the retry 2 s later.
    sim.run_for(Duration::from_secs(3));
    assert!(sim.edge(a).is_registered());
}

#[test]
fn auto_ip_bootstrap_moves_to_next_supernode() {
    let mut sim = Sim::new(600);
    let s1 = sim.add_supernode("sn1", sa(SN1), sn_cfg(0xf1));
    let s2 = sim.add_supernode("sn2", sa(SN2), sn_cfg(0xf2));
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, None, &[SN1, SN2]),
    );
    // The PINGs reach the supernodes at 10 ms, the PONGs the edge at 20 ms
    // (5 ms per end): killing sn1 at 12 ms loses the bootstrap
    // REGISTER_SUPER the edge sends it at 20 ms.
    sim.run_for(Duration::from_millis(12));
    sim.kill(s1);
    assert!(sim.run_until_cond(Duration::from_secs(10), |s| s.edge(a).is_registered()));
    let ev = sim.take_events(a);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::SupernodeSwitched { to: Some(t), reason: n2n_core::edge::SwitchReason::Bootstrap, .. } if *t == sa(SN2)
        )),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(e, Event::AssignAddress(_))),
        "{ev:?}"
    );
    assert_eq!(sim.edge(a).current_supernode(), Some(sa(SN2)));
    assert_eq!(sim.supernode(s2).edges().len(), 1);
    assert_eq!(
        sim.supernode(s2).edges()[0].dev_addr,
        sim.edge(a).tap_addr()
    );
}

#[test]
fn selection_by_mac_and_rtt() {
    use n2n_core::edge::Selection;
    // (strategy, slow supernode, expected winner, switched by the sweep)
    for (sel, slow, want, switched) in [
        // sn2 has the lower MAC but answers later: bootstrap takes sn1,
        // the sweep moves to sn2.
        (Selection::Mac, 1, SN2, true),
        // sn1 is slower: bootstrap and sweep agree on sn2.
        (Selection::Rtt, 0, SN2, false),
        // Loads are equal (0): the first answer wins and stays (sticky).
        (Selection::Load, 0, SN2, false),
        (Selection::Load, 1, SN1, false),
    ] {
        let mut sim = Sim::new(610);
        let s1 = sim.add_supernode("sn1", sa(SN1), sn_cfg(0xf5));
        let s2 = sim.add_supernode("sn2", sa(SN2), sn_cfg(0xf2));
        sim.set_link(
            [s1, s2][slow],
            LinkParams {
                latency: Duration::from_millis(40),
                ..LinkParams::default()
            },
        );
        let mut c = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1, SN2]);
        c.selection = sel;
        let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, c);
        sim.run_for(Duration::from_secs(45));
        let ev = sim.take_events(a);
        let by_sweep = ev.iter().any(|e| {
            matches!(
                e,
                Event::SupernodeSwitched {
                    reason: n2n_core::edge::SwitchReason::Selection,
                    ..
                }
            )
        });
        assert_eq!(by_sweep, switched, "{sel:?}: {ev:?}");
        assert!(sim.edge(a).is_registered(), "{sel:?}");
        assert_eq!(sim.edge(a).current_supernode(), Some(sa(want)), "{sel:?}");
        let rows = sim.mgmt(a, "r 1 supernodes");
        let cur = rows.iter().find(|r| r.contains("\"current\":1")).unwrap();
        assert!(cur.contains(want), "{sel:?}: {cur}");
        match sel {
            Selection::Mac => assert!(cur.contains("\"selection\":\"active\""), "{cur}"),
            Selection::Rtt => assert!(cur.contains("\"selection\":\"rtt = "), "{cur}"),
            Selection::Load => assert!(cur.contains("\"selection\":\"load =        0\""), "{cur}"),
        }
    }
}

#[test]
fn unresolved_supernode_name_is_fed_later() {
    let mut sim = Sim::new(620);
    sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let a = sim.add_edge(
        "a",
        sa("198.51.100.1:50001"),
        None,
        edge_cfg(1, Some([10, 0, 0, 1]), &["sn.example.net:7654"]),
    );
    sim.run_for(Duration::from_secs(10));
    assert!(!sim.edge(a).has_registered_once());
    assert!(sim.edge(a).stats().drops(DropReason::NoSupernodeAddress) >= 1);
    let rows = sim.mgmt(a, "r 1 supernodes");
    assert!(
        rows[1].contains("\"sockaddr\":\"sn.example.net:7654\""),
        "{rows:?}"
    );
    sim.edge_mut(a).set_supernode_addr(0, sa(SN1));
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| s.edge(a).is_registered()));
}

#[test]
fn preferred_local_socket_connects_lan_peers() {
    // Both behind the same NAT, which does not hairpin: only the LAN path
    // works, found through the preferred sockets (-e) in PEER_INFO.
    let mut sim = Sim::new(630);
    sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
    let nat = sim.add_nat(Ipv4Addr::new(192, 0, 2, 10), NatKind::PortRestricted);
    let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]);
    let mut cb = edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]);
    ca.preferred_local = Some(sa("10.1.0.2:50001"));
    cb.preferred_local = Some(sa("10.1.0.3:50002"));
    let a = sim.add_edge("a", sa("10.1.0.2:50001"), Some(nat), ca);
    let b = sim.add_edge("b", sa("10.1.0.3:50002"), Some(nat), cb);
    sim.record = true;
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert!(!sim.edge(a).wants_multicast_discovery());
    assert_eq!(exchange(&mut sim, a, b, 4), 4);
    assert_eq!(exchange(&mut sim, b, a, 4), 4);
    assert!(is_direct(&sim, a, b) && is_direct(&sim, b, a));
    let pb = sim.edge(a).peers();
    assert_eq!(pb[0].sock, Some(sa("10.1.0.3:50002")));
    assert!(!sim.trace.iter().any(|d| d.multicast));
}

#[test]
fn blackholed_direct_path_stays_relayed() {
    let (mut sim, sn, a, b) = open_net(700);
    sim.set_pair_link(
        a,
        b,
        LinkParams {
            loss: 1.0,
            ..LinkParams::default()
        },
    );
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    for _ in 0..3 {
        assert_eq!(exchange(&mut sim, a, b, 5), 5);
        assert_eq!(exchange(&mut sim, b, a, 5), 5);
        sim.run_for(Duration::from_secs(25));
    }
    assert!(!is_direct(&sim, a, b) && !is_direct(&sim, b, a));
    let _ = sn;
}

#[test]
fn shutdown_unregisters_at_once() {
    let (mut sim, sn, a, b) = open_net(701);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    assert_eq!(sim.supernode(sn).edges().len(), 2);
    sim.shutdown_edge(a);
    sim.run_for(Duration::from_millis(100));
    let left: Vec<Mac> = sim.supernode(sn).edges().iter().map(|e| e.mac).collect();
    assert_eq!(left, vec![sim.edge(b).mac()]);
    assert_eq!(sim.edge(a).poll_timeout(), None);
}

/// Relayed pair (`-S1`, default `-i 20`, header encryption if `he`) with a
/// steady state of 25 s, then the supernode is killed for 3 s and
/// restarted. Afterwards a→b (and b→a when `both_ways`) frames are sent
/// every 100 ms for `secs`; returns the time from the restart to the first
/// frame delivered in each direction.
fn relayed_restart(
    seed: u64,
    he: bool,
    both_ways: bool,
    secs: u32,
) -> (Sim, [NodeId; 3], [Option<Duration>; 2]) {
    let mut sim = Sim::new(seed);
    let mut scfg = sn_cfg(0xfe);
    if he {
        scfg.communities = Some(CommunityList::parse("rocks\n").unwrap());
    }
    let sn = sim.add_supernode("sn", sa(SN1), scfg.clone());
    let mk = |last: u8| {
        let mut c = edge_cfg(last, Some([10, 0, 0, last]), &[SN1]);
        c.p2p = P2pMode::SupernodeOnly;
        c.header_encryption = he;
        c
    };
    let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, mk(1));
    let b = sim.add_edge("b", sa("198.51.100.2:50002"), None, mk(2));
    assert_eq!(
        sim.edge(a).config().register_interval,
        Duration::from_secs(20)
    );
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
    // Steady state: the next regular registration is ~15 s away.
    sim.run_for(Duration::from_secs(25));
    assert_eq!(exchange(&mut sim, a, b, 2), 2);
    assert_eq!(exchange(&mut sim, b, a, 2), 2);
    sim.kill(sn);
    sim.run_for(Duration::from_secs(3));
    sim.restart_supernode(sn, scfg);
    assert!(sim.supernode(sn).edges().is_empty());
    let t0 = sim.now().mono;
    let mut first: [Option<Duration>; 2] = [None, None];
    let dirs: &[(NodeId, NodeId)] = if both_ways {
        &[(a, b), (b, a)]
    } else {
        &[(a, b)]
    };
    for i in 0..secs * 10 {
        for (k, &(x, y)) in dirs.iter().enumerate() {
            let f = frame(&sim, x, y, format!("r{k} {i}").as_bytes());
            sim.send_frame(x, &f);
            sim.run_for(Duration::from_millis(100 / dirs.len() as u64));
            if first[k].is_none() && sim.take_tap(y).contains(&f) {
                first[k] = Some(sim.now().mono - t0);
            }
        }
    }
    (sim, [sn, a, b], first)
}

/// Relayed pair exchanging a frame each way every 100 ms across a supernode
/// restart. RE_REGISTER_SUPER (sent by the restarted supernode to the
/// unknown senders) makes both edges re-register at once: traffic resumes
/// within about a second of the restart instead of at the next regular
/// REGISTER_SUPER (up to 20 s).
#[test]
fn supernode_restart_relayed_traffic_resumes_fast() {
    for he in [false, true] {
        let (mut sim, [sn, a, b], first) = relayed_restart(81, he, true, 5);
        eprintln!("he={he}: relayed traffic after the supernode restart: a->b, b->a {first:?}");
        for (k, f) in first.iter().enumerate() {
            let f = f.unwrap_or_else(|| panic!("he={he}: direction {k} never resumed"));
            assert!(
                f <= Duration::from_millis(1500),
                "he={he}: direction {k}: {f:?}"
            );
        }
        let st = sim.supernode(sn).stats().clone();
        assert_eq!(sim.supernode(sn).edges().len(), 2);
        assert!(st.re_register_sent >= 2, "{st:?}");
        // Once registered, nobody is told to re-register again.
        assert_eq!(exchange(&mut sim, a, b, 3), 3);
        assert_eq!(exchange(&mut sim, b, a, 3), 3);
        assert_eq!(
            sim.supernode(sn).stats().re_register_sent,
            st.re_register_sent
        );
        assert!(registered(&sim, &[a, b]));
    }
}

/// One-way traffic: the sender is told to re-register at once, the silent
/// receiver is only known again after its own next REGISTER_SUPER (the
/// supernode has no way to reach it): the fast path cannot help here.
#[test]
fn supernode_restart_one_way_traffic_waits_for_the_receiver() {
    let (_sim, _, first) = relayed_restart(83, false, false, 25);
    eprintln!("one-way relayed traffic after the supernode restart: {first:?}");
    let f = first[0].expect("never resumed");
    assert!(f <= Duration::from_secs(21), "{f:?}");
}

/// RE_REGISTER_SUPER is only acted upon from the current supernode, and at
/// most once per second.
#[test]
fn re_register_super_only_from_current_supernode_and_rate_limited() {
    let (mut sim, _sn, a, _b) = open_net(82);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a])));
    sim.run_for(Duration::from_secs(2));
    let hdr = n2n_proto::wire::Header::from_supernode(Community::new("rocks").unwrap());
    let mut rr = [0u8; 24];
    let n =
        n2n_proto::wire::encode(&hdr, &n2n_proto::wire::Message::ReRegisterSuper, &mut rr).unwrap();
    assert_eq!(n, 24);
    let now = sim.now();
    let e = sim.edge_mut(a);
    let stranger = e.stats().drops(DropReason::FromUnknownSupernode);
    let mut out = vec![0u8; 2048];
    // From a stranger: dropped, nothing sent.
    let mut d = rr;
    let _ = e.decapsulate(now, sa("192.0.2.9:7654"), &mut d, false, &mut out);
    assert_eq!(
        e.stats().drops(DropReason::FromUnknownSupernode),
        stranger + 1
    );
    // Without FROM_SUPERNODE (not from a supernode): dropped too.
    let mut d = rr;
    d[2] = 0;
    d[3] = 12;
    let _ = e.decapsulate(now, sa(SN1), &mut d, false, &mut out);
    assert_eq!(e.stats().drops(DropReason::ReRegisterNotCurrent), 1);
    while let Some(t) = e.poll_transmit() {
        e.recycle_transmit(t);
    }
    assert!(e.is_registered());
    // From the supernode: REGISTER_SUPER goes out at once.
    let mut d = rr;
    let _ = e.decapsulate(now, sa(SN1), &mut d, false, &mut out);
    let mut sent = Vec::new();
    while let Some(t) = e.poll_transmit() {
        sent.push((t.dst, t.bytes()[3] & 0x1f));
        e.recycle_transmit(t);
    }
    assert!(sent.contains(&(sa(SN1), 5)), "{sent:?}");
    // Again within the second: rate-limited.
    let mut d = rr;
    let _ = e.decapsulate(now, sa(SN1), &mut d, false, &mut out);
    assert_eq!(e.stats().drops(DropReason::ReRegisterRateLimited), 1);
    assert!(e.poll_transmit().is_none());
}

/// RE_REGISTER_SUPER from a known supernode that is not the current one is
/// a counted drop and sends nothing.
#[test]
fn re_register_super_from_other_known_supernode_is_ignored() {
    let (mut sim, _s1, _s2, a, _b) = two_supernodes(84);
    assert_eq!(sim.edge(a).current_supernode(), Some(sa(SN1)));
    let hdr = n2n_proto::wire::Header::from_supernode(Community::new("rocks").unwrap());
    let mut rr = [0u8; 24];
    n2n_proto::wire::encode(&hdr, &n2n_proto::wire::Message::ReRegisterSuper, &mut rr).unwrap();
    let now = sim.now();
    let e = sim.edge_mut(a);
    while let Some(t) = e.poll_transmit() {
        e.recycle_transmit(t);
    }
    let mut out = vec![0u8; 2048];
    for _ in 0..3 {
        let mut d = rr;
        let _ = e.decapsulate(now, sa(SN2), &mut d, false, &mut out);
    }
    assert_eq!(e.stats().drops(DropReason::ReRegisterNotCurrent), 3);
    assert!(e.poll_transmit().is_none());
    assert!(e.is_registered());
}

/// `-L 3`: a peer first seen through the supernode gets REGISTERs sprayed to
/// 16 consecutive ports, each with IP TTL 3 (behaviour.md §5.4); `-L 0`
/// sends one REGISTER with the socket's default TTL, `-L 1` none.
#[test]
fn register_ttl_spray_carries_the_ttl() {
    for (ttl, expect) in [(3u8, 16usize), (0, 0), (1, 0)] {
        let mut sim = Sim::new(77);
        // From the start: a may first hear of b from b's gratuitous ARP.
        sim.record = true;
        sim.add_supernode("sn", sa(SN1), sn_cfg(0xfe));
        let mut ca = edge_cfg(1, Some([10, 0, 0, 1]), &[SN1]);
        ca.register_ttl = ttl;
        let a = sim.add_edge("a", sa("198.51.100.1:50001"), None, ca);
        let b = sim.add_edge(
            "b",
            sa("198.51.100.2:50002"),
            None,
            edge_cfg(2, Some([10, 0, 0, 2]), &[SN1]),
        );
        assert!(sim.run_until_cond(Duration::from_secs(5), |s| registered(s, &[a, b])));
        // b's first frame reaches a through the supernode if a has not heard of b yet.
        let f = frame(&sim, b, a, b"hello");
        sim.send_frame(b, &f);
        sim.run_for(Duration::from_secs(2));
        let sprayed: Vec<_> = sim
            .sent_with_ttl
            .iter()
            .filter(|(from, _, _)| *from == a)
            .collect();
        assert_eq!(sprayed.len(), expect, "-L {ttl}: {sprayed:?}");
        let mut ports: Vec<u16> = sprayed.iter().map(|(_, d, _)| d.port()).collect();
        ports.sort_unstable();
        if expect > 0 {
            assert_eq!(ports, (50002..50018).collect::<Vec<_>>(), "-L {ttl}");
            assert!(
                sprayed
                    .iter()
                    .all(|(_, d, t)| *t == ttl && d.ip() == sa("198.51.100.2:1").ip())
            );
        }
        // Nobody else ever sends with a TTL.
        assert!(sim.sent_with_ttl.iter().all(|(from, _, _)| *from == a));
        assert!(
            exchange(&mut sim, a, b, 2) == 2,
            "-L {ttl}: traffic still flows"
        );
    }
}
