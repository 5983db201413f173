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
    let t0 = sim.now().mono;
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
        "failover: first frame after {:?}, largest gap {:?}, {} of 300 frames arrived (killed at {:?})",
        first,
        gap,
        arrivals.len(),
        t0
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
    let z = [CompressionId::NONE, CompressionId::LZO, CompressionId::ZSTD];
    let mut seed = 100;
    for t in 1..=7u8 {
        for he in [false, true] {
            for comp in z {
                seed += 1;
                let key = if t == 1 { "" } else { "s3cret" };
                let tid = TransformId(t);
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
                    assert!(rows[0].contains("noaccess"), "{rows:?}");
                }
            }
        }
    }
}

#[test]
fn wrong_key_delivers_nothing() {
    for (t, seed) in [
        (TransformId::AES, 200),
        (TransformId(6), 201),
        (TransformId(7), 202),
        (TransformId::SPECK, 203),
    ] {
        let (mut sim, a, b) = crypto_net(
            seed,
            false,
            (t, "s3cret", CompressionId::NONE),
            (t, "wrong!", CompressionId::NONE),
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
        let reason = if t.0 >= 6 {
            DropReason::PayloadDecryptFailed
        } else {
            DropReason::ForeignDestinationMac
        };
        assert!(sb.total_drops() >= 10, "{t}: {sb:?}");
        assert!(sb.drops(reason) >= 5, "{t}: {sb:?}");
        // Management shows the drop counter after C's rows.
        let rows = sim.mgmt(b, "r 5 packetstats");
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
        (TransformId::AES, "s3cret", CompressionId::NONE),
        (TransformId::CHACHA20, "s3cret", CompressionId::NONE),
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
