//! The `supernode` binary on 127.0.0.1 (and ::1) with fake edges built on
//! `n2n_proto`: registration, relaying, peer queries, PING, auto-IP,
//! spoofing protection, community isolation, header encryption, the
//! management port (compared with C n2n 3.1.1's replies), reloading the
//! community file, signals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Edge, Sn, field_names, json_rows, mac, unix_now};
use n2n_core::supernode::autoip::{AutoIpPool, choose_host, community_field, desc_field};
use n2n_proto::types::{DevAddr, Mac, PeerSock};
use n2n_proto::wire::{self, Flags, Header, Message, RegisterSuperNak};
use serde_json::Value;

const SN_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);

/// Decode a relayed PACKET and check what the supernode must have changed.
fn check_relayed(d: &[u8], from: &Edge, dst: Mac, ttl_sent: u8, payload: &[u8]) {
    let (h, m) = wire::decode(d).unwrap();
    let Message::Packet(p) = m else {
        panic!("expected PACKET, got {m:?}")
    };
    assert!(
        h.flags.contains(Flags::SOCKET) && h.flags.contains(Flags::FROM_SUPERNODE),
        "{h:?}"
    );
    assert_eq!(h.ttl, ttl_sent - 1, "TTL decremented");
    assert_eq!(h.community, from.community);
    assert_eq!(p.src_mac, from.mac);
    assert_eq!(p.dst_mac, dst);
    assert_eq!(
        p.sock,
        Some(PeerSock::from(from.local())),
        "sender's socket"
    );
    assert_eq!(p.payload, payload, "payload unchanged");
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < common::WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn edge_rows(sn: &Sn) -> Vec<Value> {
    sn.rows("r 11 edges")
}

fn community_names(sn: &Sn) -> Vec<String> {
    sn.rows("r 12 communities")
        .iter()
        .map(|r| r["community"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_edges_register_relay_query_and_ping() {
    let start = unix_now();
    let sn = Sn::start(&["-m", "02:00:00:00:00:fe", "-V", "rs-test"]);
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true);
    let mut e2 = Edge::new(sn.addr, "rocks", 2, true);
    // Addresses given: none assigned.
    assert_eq!(e1.register_ok(Some(SN_MAC)), DevAddr::UNSPECIFIED);
    assert_eq!(e2.register_ok(Some(SN_MAC)), DevAddr::UNSPECIFIED);
    assert!(sn.wait_log(
        &format!(
            "registered edge 02:00:00:00:00:02 [10.200.0.2/24] from {} in community 'rocks'",
            e2.local()
        ),
        common::WAIT
    ));

    // Unicast: relayed to e2 only, with SOCKET|FROM_SN, TTL − 1, e1's socket.
    let payload = b"unicast payload 0123456789abcdef";
    e1.send_packet(e2.mac, payload);
    check_relayed(&e2.recv(), &e1, e2.mac, 2, payload);
    e1.expect_nothing("unicast to e2");
    // Another TTL.
    let h = Header {
        ttl: 7,
        ..e1.header()
    };
    let m = e1.packet(e2.mac, b"ttl7");
    e1.send(&h, &m);
    check_relayed(&e2.recv(), &e1, e2.mac, 7, b"ttl7");

    // Broadcast and multicast: to the other edge only.
    e1.send_packet(Mac::BROADCAST, b"broadcast");
    check_relayed(&e2.recv(), &e1, Mac::BROADCAST, 2, b"broadcast");
    e1.expect_nothing("own broadcast");
    let mcast = Mac([0x01, 0x00, 0x5e, 0, 0, 0xfb]);
    e2.send_packet(mcast, b"multicast");
    check_relayed(&e1.recv(), &e2, mcast, 2, b"multicast");
    e2.expect_nothing("own multicast");

    // QUERY_PEER → PEER_INFO with the target's socket.
    e1.query(e2.mac);
    let d = e1.recv();
    let (h, m) = wire::decode(&d).unwrap();
    let Message::PeerInfo(info) = m else {
        panic!("expected PEER_INFO, got {m:?}")
    };
    assert!(h.flags.contains(Flags::FROM_SUPERNODE));
    assert_eq!(info.src_mac, e1.mac);
    assert_eq!(info.mac, e2.mac);
    assert_eq!(info.sock, PeerSock::from(e2.local()));
    assert!(!info.is_pong());

    // PING → PONG with the supernode's MAC, the pinger's socket, -V text.
    e2.query(Mac::NULL);
    let d = e2.recv();
    let (_, m) = wire::decode(&d).unwrap();
    let Message::PeerInfo(pong) = m else {
        panic!("expected PONG, got {m:?}")
    };
    assert!(pong.is_pong());
    assert_eq!(pong.src_mac, SN_MAC);
    assert_eq!(pong.sock, PeerSock::from(e2.local()));
    assert_eq!(pong.version_bytes(), b"rs-test");
    assert_eq!(pong.load, 0);
    assert!(pong.uptime < 60);
    // A PING for a community nobody registered (open supernode) is answered.
    let mut lone = Edge::new(sn.addr, "lonely", 9, false);
    lone.query(Mac::NULL);
    let d = lone.recv();
    let (_, m) = wire::decode(&d).unwrap();
    assert!(matches!(m, Message::PeerInfo(p) if p.is_pong()));

    // Management view of the two edges.
    let rows = edge_rows(&sn);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (r, e) in rows.iter().zip([&e1, &e2]) {
        let last = e.mac.0[5];
        assert_eq!(r["community"], "rocks");
        assert_eq!(r["ip4addr"], format!("10.200.0.{last}/24"));
        assert_eq!(r["macaddr"], format!("02:00:00:00:00:0{last}"));
        assert_eq!(r["sockaddr"], e.local().to_string());
        assert_eq!(r["proto"], "UDP");
        assert_eq!(r["desc"], format!("e{last}"));
        assert_eq!(r["purgeable"], 1);
        let seen = r["last_seen"].as_u64().unwrap();
        assert!(seen >= start && seen <= unix_now(), "{r}");
    }
    let stats = sn.rows("r 3 packetstats");
    assert_eq!(stats[0]["type"], "forward");
    assert_eq!(stats[0]["tx_pkt"], 2, "{stats:?}");
    assert_eq!(stats[1]["type"], "broadcast");
    assert_eq!(stats[1]["tx_pkt"], 2, "{stats:?}");
    assert_eq!(stats[2]["rx_pkt"], 2, "{stats:?}");
    assert_eq!(stats[2]["nak"], 0, "{stats:?}");
    let ts = &sn.rows("r 4 timestamps")[0];
    for f in ["start_time", "last_fwd", "last_reg_super"] {
        let v = ts[f].as_u64().unwrap();
        assert!(v >= start && v <= unix_now(), "{f}: {ts}");
    }

    // UNREGISTER_SUPER with the wrong token is ignored, with the right one
    // removes the edge.
    let mut fake = Edge::new(sn.addr, "rocks", 2, true);
    fake.token = [0x77; 16];
    fake.unregister();
    wait_until("auth_mismatch drop", || sn.drop_count("auth_mismatch") == 1);
    assert_eq!(edge_rows(&sn).len(), 2);
    e2.unregister();
    wait_until("e2 to leave", || edge_rows(&sn).len() == 1);
    assert_eq!(edge_rows(&sn)[0]["macaddr"], "02:00:00:00:00:01");
    assert!(sn.wait_log("edge 02:00:00:00:00:02 unregistered", common::WAIT));
    let before = sn.drop_count("unknown_destination");
    e1.send_packet(e2.mac, b"to nobody");
    e2.expect_nothing("after unregistering");
    assert_eq!(sn.drop_count("unknown_destination"), before + 1);
    // Broadcast with nobody else left: nothing anywhere.
    e1.send_packet(Mac::BROADCAST, b"alone");
    e1.expect_nothing("broadcast, alone");
}

#[test]
fn auto_ip_spoofing_protection_and_reregistration() {
    let sn = Sn::start(&[]);
    let mut a = Edge::new(sn.addr, "autoip", 1, false);
    let (cookie, d) = a.register();
    let (h, m) = wire::decode(&d).unwrap();
    let Message::RegisterSuperAck(ack) = m else {
        panic!("expected ACK, got {m:?}")
    };
    common::check_ack(&h, &ack, cookie, a.local(), None, a.community);
    // No -m: random, unicast, locally administered.
    let sn_mac = ack.src_mac;
    assert_eq!(sn_mac.0[0] & 0x03, 0x02, "{sn_mac}");
    // Auto-IP: C's algorithm over the default pool.
    let subnet = AutoIpPool::default()
        .choose_subnet(&community_field(b"autoip"), &[])
        .unwrap();
    let host = choose_host(subnet, &desc_field(b"e1"), &[]).unwrap();
    assert_eq!(ack.dev_addr, DevAddr::new(host, subnet.bits), "{ack:?}");
    assert!(subnet.contains(ack.dev_addr.ip));
    let comm = sn
        .rows("r 2 communities")
        .into_iter()
        .find(|r| r["community"] == "autoip")
        .unwrap();
    assert_eq!(comm["ip4addr"], subnet.to_string());
    assert!(u32::from(subnet.net) >= u32::from(Ipv4Addr::new(10, 128, 0, 0)));

    // Bootstrap REGISTER_SUPER with a null MAC: address, but not stored.
    let mut boot = Edge::new(sn.addr, "autoip", 0, false);
    boot.mac = Mac::NULL;
    boot.desc = n2n_proto::types::DevDesc::new("boot");
    let assigned = boot.register_ok(Some(sn_mac));
    assert!(subnet.contains(assigned.ip) && !assigned.ip.is_unspecified());
    assert_eq!(sn.rows("r 1 edges").len(), 1);

    // Same MAC, other token, other socket: NAK; the table keeps `a`.
    let mut spoof = Edge::new(sn.addr, "autoip", 1, false);
    spoof.token = [0xee; 16];
    let (cookie, d) = spoof.register();
    let (h, m) = wire::decode(&d).unwrap();
    assert_eq!(
        m,
        Message::RegisterSuperNak(RegisterSuperNak {
            cookie,
            src_mac: a.mac,
            auth: n2n_proto::types::Auth::NONE,
        })
    );
    assert!(h.flags.contains(Flags::FROM_SUPERNODE));
    let rows = sn.rows("r 1 edges");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sockaddr"], a.local().to_string());
    assert_eq!(sn.rows("r 3 packetstats")[2]["nak"], 1);
    assert!(sn.wait_log(
        "refused registration of edge 02:00:00:00:00:01",
        common::WAIT
    ));
    // The spoofer gets nothing relayed.
    let mut other = Edge::new(sn.addr, "autoip", 5, false);
    other.register_ok(Some(sn_mac));
    other.send_packet(a.mac, b"for the real a");
    let (_, got) = a.recv_within(common::WAIT).unwrap();
    assert!(matches!(wire::decode(&got).unwrap().1, Message::Packet(_)));
    spoof.expect_nothing("spoofer");

    // Same MAC and token from a new socket: accepted at once, table moves.
    let mut moved = Edge::new(sn.addr, "autoip", 1, false);
    moved.register_ok(Some(sn_mac));
    let rows = sn.rows("r 1 edges");
    let row = rows
        .iter()
        .find(|r| r["macaddr"] == "02:00:00:00:00:01")
        .unwrap();
    assert_eq!(row["sockaddr"], moved.local().to_string());
    other.send_packet(a.mac, b"to the new socket");
    check_relayed(&moved.recv(), &other, a.mac, 2, b"to the new socket");
    a.expect_nothing("old socket");

    // IP spoofing: another MAC claiming a registered address → NAK.
    let mut c = Edge::new(sn.addr, "autoip", 3, true);
    c.register_ok(Some(sn_mac));
    let mut d4 = Edge::new(sn.addr, "autoip", 4, true);
    d4.dev_addr = c.dev_addr;
    let (_, d) = d4.register();
    assert!(matches!(
        wire::decode(&d).unwrap().1,
        Message::RegisterSuperNak(_)
    ));
    assert_eq!(sn.rows("r 3 packetstats")[2]["nak"], 2);
}

#[test]
fn dash_m_disables_spoofing_protection() {
    let sn = Sn::start(&["-M"]);
    let mut a = Edge::new(sn.addr, "open", 1, true);
    a.register_ok(None);
    let mut b = Edge::new(sn.addr, "open", 1, true);
    b.token = [0xee; 16];
    b.register_ok(None);
    let rows = sn.rows("r 1 edges");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sockaddr"], b.local().to_string());
}

#[test]
fn communities_are_isolated() {
    let sn = Sn::start(&[]);
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true);
    let mut e2 = Edge::new(sn.addr, "rocks", 2, true);
    // Same MAC and address as e2, another community.
    let mut x = Edge::new(sn.addr, "third", 2, true);
    e1.register_ok(None);
    e2.register_ok(None);
    x.register_ok(None);
    assert_eq!(sn.rows("r 1 edges").len(), 3);

    e1.send_packet(Mac::BROADCAST, b"rocks broadcast");
    check_relayed(&e2.recv(), &e1, Mac::BROADCAST, 2, b"rocks broadcast");
    e1.send_packet(mac(2), b"rocks unicast");
    check_relayed(&e2.recv(), &e1, mac(2), 2, b"rocks unicast");
    e1.query(mac(2));
    let d = e1.recv();
    let (_, m) = wire::decode(&d).unwrap();
    let Message::PeerInfo(info) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        info.sock,
        PeerSock::from(e2.local()),
        "e2's socket, not x's"
    );
    x.expect_nothing("traffic of community rocks");

    x.send_packet(Mac::BROADCAST, b"third broadcast");
    x.send_packet(e1.mac, b"third unicast to a rocks MAC");
    x.query(e1.mac);
    e1.expect_nothing("traffic of community third");
    e2.expect_nothing("traffic of community third");
    x.expect_nothing("PEER_INFO about another community's edge");
    assert!(sn.drop_count("unknown_destination") >= 2);
}

fn write_list(sn_dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = sn_dir.join("community.list");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    p
}

fn start_with_list(text: &str, extra: &[&str]) -> Sn {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let list = write_list(dir.path(), text);
    let list = list.to_str().unwrap().to_owned();
    let mut args = vec!["-c", list.as_str()];
    args.extend_from_slice(extra);
    Sn::start_in(dir, &args, |p| format!("127.0.0.1:{p}"))
}

#[test]
fn header_encrypted_community_from_the_list() {
    let sn = start_with_list("# test\nrocks\nplain[0-9]\n", &[]);
    let names = community_names(&sn);
    assert!(names.contains(&"rocks".to_owned()), "{names:?}");
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true).with_he();
    let mut e2 = Edge::new(sn.addr, "rocks", 2, true).with_he();
    // Edge::recv asserts that replies are header-encrypted and decrypts.
    e1.register_ok(None);
    e2.register_ok(None);
    assert!(sn.wait_log(
        "locked community 'rocks' to encrypted headers",
        common::WAIT
    ));
    e1.send_packet(e2.mac, b"encrypted header");
    check_relayed(&e2.recv(), &e1, e2.mac, 2, b"encrypted header");
    e2.send_packet(Mac::BROADCAST, b"encrypted broadcast");
    check_relayed(&e1.recv(), &e2, Mac::BROADCAST, 2, b"encrypted broadcast");
    e1.query(Mac::NULL);
    assert!(matches!(wire::decode(&e1.recv()).unwrap().1, Message::PeerInfo(p) if p.is_pong()));
    e1.query(e2.mac);
    assert!(matches!(wire::decode(&e1.recv()).unwrap().1, Message::PeerInfo(p) if p.mac == e2.mac));

    // A plain datagram for the locked community: dropped (downgrade).
    let mut plain = Edge::new(sn.addr, "rocks", 3, true);
    let r = plain.reg_super_msg();
    let h = plain.header();
    plain.send(&h, &Message::RegisterSuper(r));
    plain.expect_nothing("plain registration in an HE community");
    assert_eq!(sn.drop_count("he_downgrade"), 1);
    // A replayed encrypted datagram (same stamp) from a known edge: dropped.
    let h = e1.header();
    let m = e1.packet(e2.mac, b"once");
    let d = e1.encode(&h, &m);
    e1.send_raw(&d);
    check_relayed(&e2.recv(), &e1, e2.mac, 2, b"once");
    let r = e1.reg_super_msg();
    let d = e1.encode(&h, &Message::RegisterSuper(r));
    e1.send_raw(&d);
    let _ack = e1.recv();
    e1.send_raw(&d);
    e1.expect_nothing("replayed REGISTER_SUPER");
    assert_eq!(sn.drop_count("stamp_rejected"), 1);

    // Not in the list: dropped silently. Regular expression: accepted
    // (plain, full match only).
    let mut stranger = Edge::new(sn.addr, "other", 4, true);
    let r = stranger.reg_super_msg();
    let h = stranger.header();
    stranger.send(&h, &Message::RegisterSuper(r));
    stranger.expect_nothing("community not in the list");
    assert_eq!(sn.drop_count("community_not_allowed"), 1);
    let mut p7 = Edge::new(sn.addr, "plain7", 5, true);
    p7.register_ok(None);
    let mut p77 = Edge::new(sn.addr, "plain77", 6, true);
    let r = p77.reg_super_msg();
    let h = p77.header();
    p77.send(&h, &Message::RegisterSuper(r));
    p77.expect_nothing("partial regex match");
    assert_eq!(sn.drop_count("community_not_allowed"), 2);

    let rows = sn.rows("r 2 communities");
    let rocks = rows.iter().find(|r| r["community"] == "rocks").unwrap();
    assert_eq!(rocks["purgeable"], 0, "fixed community");
    let p7row = rows.iter().find(|r| r["community"] == "plain7").unwrap();
    assert_eq!(p7row["purgeable"], 1, "regex community");
}

#[test]
fn reload_communities_text_and_json() {
    let sn = start_with_list("rocks\n", &[]);
    let list = sn.dir.path().join("community.list");
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true);
    e1.register_ok(None);
    assert_eq!(sn.rows("r 1 edges").len(), 1);
    assert_eq!(community_names(&sn), ["rocks", "-/-"]);

    // Text command (no password, like C).
    write_list(sn.dir.path(), "rocks\nnewcomm\n");
    assert_eq!(sn.ask(b"reload_communities"), ["OK.\n"]);
    let names = community_names(&sn);
    assert!(names.contains(&"newcomm".to_owned()), "{names:?}");
    assert!(sn.rows("r 1 edges").is_empty(), "a reload drops every edge");
    assert!(sn.wait_log("reloaded 2 fixed-name communities", common::WAIT));
    e1.register_ok(None);

    // JSON write with the password.
    write_list(sn.dir.path(), "rocks\nnewcomm\nthird\nre[0-9]+\n");
    let rows = sn.rows("w 7:1:n2n reload_communities");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["ok"], 0);
    assert!(community_names(&sn).contains(&"third".to_owned()));
    let mut t = Edge::new(sn.addr, "third", 2, true);
    t.register_ok(None);
    let mut r = Edge::new(sn.addr, "re42", 3, true);
    r.register_ok(None);

    // Read, or write without password: refused.
    let e = sn.ask(b"r 8 reload_communities");
    assert!(
        e.iter().any(|l| l.contains("\"error\":\"writeonly\"")),
        "{e:?}"
    );
    let e = sn.ask(b"w 9 reload_communities");
    assert_eq!(
        e,
        ["{\"_tag\":\"9\",\"_type\":\"error\",\"error\":\"badauth\"}\n"]
    );

    // A broken file: failure reported, the communities stay.
    write_list(sn.dir.path(), "rocks\nbad 10.0.0.1/99\n");
    let before = community_names(&sn);
    let rows = sn.rows("w 10:1:n2n reload_communities");
    assert_eq!(rows[0]["ok"], 1);
    let text = sn.ask(b"reload_communities\n");
    assert_eq!(text.len(), 1);
    assert!(
        text[0].starts_with("Error while re-loading community file"),
        "{text:?}"
    );
    assert_eq!(community_names(&sn), before);
    std::fs::remove_file(&list).unwrap();
    assert_eq!(sn.rows("w 11:1:n2n reload_communities")[0]["ok"], 1);
    assert!(sn.log().contains("reload_communities failed"));

    // Without -c there is no file to reload.
    let open = Sn::start(&[]);
    let e = open.ask(b"w 1:1:n2n reload_communities");
    assert!(
        e.iter().any(|l| l.contains("\"error\":\"nofile\"")),
        "{e:?}"
    );
    let text = open.ask(b"reload_communities");
    assert!(
        text[0].starts_with("No community file provided"),
        "{text:?}"
    );
}

/// `### sn: <request>` sections of the C capture.
fn c_section(capture: &str, request: &str) -> Vec<String> {
    capture
        .split(&format!("### sn: {request}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section {request}"))
        .lines()
        .take_while(|l| !l.starts_with("###"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn management_matches_the_c_capture() {
    let capture =
        std::fs::read_to_string(n2n_testdata::captures_dir().join("aes/mgmt/supernode.txt"))
            .unwrap();
    let sn = Sn::start(&["-m", "02:00:00:00:00:fe"]);
    // The capture's setup: e1, e2 in "rocks", one unicast, one broadcast.
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true);
    let mut e2 = Edge::new(sn.addr, "rocks", 2, true);
    e1.register_ok(Some(SN_MAC));
    e2.register_ok(Some(SN_MAC));
    e1.send_packet(e2.mac, b"unicast");
    let _ = e2.recv();
    e1.send_packet(Mac::BROADCAST, b"broadcast");
    let _ = e2.recv();

    for req in [
        "r 1 edges",
        "r 2 communities",
        "r 3 packetstats",
        "r 4 timestamps",
        "r 5 help",
    ] {
        let c = c_section(&capture, req);
        let ours = sn.ask(req.as_bytes());
        // begin and end lines are identical.
        assert_eq!(ours[0], c[0], "{req}");
        assert_eq!(ours.last(), c.last(), "{req}");
        let c_rows = &c[1..c.len() - 1];
        let our_rows = &ours[1..ours.len() - 1];
        if req.ends_with("help") {
            // C's rows, then our own commands.
            assert_eq!(our_rows.len(), c_rows.len() + 1, "{ours:?}");
            assert!(our_rows[c_rows.len()].contains("\"cmd\":\"drops\""));
        } else {
            assert_eq!(our_rows.len(), c_rows.len(), "{req}: {ours:?}");
        }
        for (o, c) in our_rows.iter().zip(c_rows) {
            assert_eq!(field_names(o), field_names(c), "{req}:\n ours {o} C    {c}");
        }
    }
    // Same values where the setups agree.
    let mut c_help = c_section(&capture, "r 5 help");
    let our_help = sn.ask(b"r 5 help");
    c_help.insert(c_help.len() - 1, our_help[our_help.len() - 2].clone());
    assert_eq!(our_help, c_help);
    // The auto-IP subnet of 'rocks' is C's (same algorithm).
    assert_eq!(
        sn.ask(b"r 2 communities"),
        c_section(&capture, "r 2 communities")
    );
    let c_edges = json_rows(&c_section(&capture, "r 1 edges"));
    let our_edges = sn.rows("r 1 edges");
    for (o, c) in our_edges.iter().zip(&c_edges) {
        for f in [
            "community",
            "ip4addr",
            "purgeable",
            "macaddr",
            "proto",
            "desc",
        ] {
            assert_eq!(o[f], c[f], "{f}");
        }
    }
    let stats = sn.rows("r 3 packetstats");
    let want = [
        ("forward", "tx_pkt", 1),
        ("broadcast", "tx_pkt", 1),
        ("reg_super", "rx_pkt", 2),
        ("errors", "tx_pkt", 0),
    ];
    for (row, (ty, field, n)) in stats.iter().zip(want) {
        assert_eq!(row["type"], ty);
        assert_eq!(row[field], n, "{row}");
    }
    assert_eq!(stats.len(), 4, "C's rows only: {stats:?}");
    // Our `drops`: one row per reason, all named.
    let drops = sn.rows("r 3 drops");
    assert!(drops.iter().all(|r| r["type"] == "drop"));
    assert_eq!(drops.len(), n2n_core::supernode::DropReason::COUNT);
}

#[test]
fn management_errors_auth_verbosity_and_garbage() {
    let mut sn = Sn::start(&[]);
    let err = |tag: &str, e: &str| {
        format!("{{\"_tag\":\"{tag}\",\"_type\":\"error\",\"error\":\"{e}\"}}\n")
    };
    assert_eq!(sn.ask(b"w 3 stop"), [err("3", "badauth")]);
    assert_eq!(sn.ask(b"w 3:1:wrong stop"), [err("3", "badauth")]);
    assert_eq!(sn.ask(b"x 9 whatever"), [err("-1", "badtype")]);
    assert_eq!(sn.ask(b"r 9 nosuchcmd"), [err("9", "unknowncmd")]);
    assert_eq!(sn.ask(b"r 9"), [err("9", "nocmd")]);
    assert_eq!(sn.ask(b"w 9:1:n2n edges"), [err("9", "readonly")]);
    let sup = sn.ask(b"r 9 supernodes");
    assert!(sup.contains(&err("9", "unimplemented")), "{sup:?}");
    assert!(sn.alive());

    // verbose: read, write, read back; the log level follows.
    assert_eq!(sn.rows("r 5 verbose")[0]["traceLevel"], 2);
    assert_eq!(sn.rows("w 6:1:n2n verbose 3")[0]["traceLevel"], 3);
    assert_eq!(sn.rows("r 7 verbose")[0]["traceLevel"], 3);
    assert!(sn.wait_log("verbosity set to 3 via management", common::WAIT));

    // Text requests.
    let help = sn.ask(b"help");
    assert!(
        help[0].starts_with("Help for supernode management console"),
        "{help:?}"
    );
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true);
    e1.register_ok(None);
    let status = sn.ask(b"\n").concat();
    assert!(status.contains("COMMUNITY 'rocks'"), "{status}");
    assert!(status.contains("02:00:00:00:00:01"), "{status}");
    assert!(status.contains("uptime"), "{status}");

    // Garbage: every datagram gets an answer, the process survives.
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 1],
        vec![0xde, 0xad, 0xbe, 0xef, b'\n'],
        vec![b'r', b' '],
        b"r  ".to_vec(),
        b"w :::: stop".to_vec(),
        b"r 1234567890123456789 help".to_vec(),
        vec![b'A'; 1400],
        {
            let mut v = b"r 1 edges ".to_vec();
            v.extend_from_slice(&[0x80; 200]);
            v
        },
    ];
    let mut x: u32 = 0x1234_5678;
    for _ in 0..40 {
        let len = (x % 120) as usize;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(x as u8);
        }
        garbage.push(v);
    }
    for g in &garbage {
        let replies = sn.ask(g);
        assert!(!replies.is_empty(), "{g:?}");
    }
    assert!(sn.alive());
    assert_eq!(sn.rows("r 8 verbose")[0]["traceLevel"], 3);
    assert_eq!(sn.rows("r 8 edges").len(), 1);
}

#[test]
fn sighup_dumps_the_table_sigterm_stops_cleanly() {
    let mut sn = Sn::start(&[]);
    let mut e1 = Edge::new(sn.addr, "rocks", 1, true);
    e1.register_ok(None);
    sn.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        sn.wait_log("==== end of registrations ====", common::WAIT),
        "{}",
        sn.log()
    );
    let log = sn.log();
    assert!(log.contains("community 'rocks'"), "{log}");
    assert!(
        log.contains(&format!("02:00:00:00:00:01 10.200.0.1/24 {}", e1.local())),
        "{log}"
    );
    assert!(sn.alive());

    let t = Instant::now();
    sn.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(sn.wait_exit(Duration::from_secs(2)), Some(0));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(sn.log().contains("shutting down (SIGTERM received)"));
}

/// `[::1]` usable on this host?
fn ipv6_loopback() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

#[test]
fn ipv6_edges_and_dual_stack() {
    if !ipv6_loopback() {
        eprintln!("SKIP ipv6_edges_and_dual_stack: no IPv6 loopback");
        return;
    }
    // Explicit [::1]:port.
    let sn = Sn::start_with(&[], |p| format!("[::1]:{p}"));
    let sn6: SocketAddr = format!("[::1]:{}", sn.port).parse().unwrap();
    let mut a = Edge::new(sn6, "six", 1, true);
    let mut b = Edge::new(sn6, "six", 2, true);
    a.register_ok(None); // ACK sock = a's IPv6 socket
    b.register_ok(None);
    a.send_packet(b.mac, b"over ipv6");
    check_relayed(&b.recv(), &a, b.mac, 2, b"over ipv6");
    let rows = sn.rows("r 1 edges");
    assert!(
        rows[0]["sockaddr"].as_str().unwrap().contains("::1"),
        "{rows:?}"
    );
    drop(sn);

    // Bare port: 0.0.0.0 and [::] (IPv6 only); an IPv4 and an IPv6 edge
    // in one community reach each other through the supernode.
    let sn = Sn::start_with(&[], |p| p.to_string());
    assert!(sn.wait_log("(main, IPv6)", common::WAIT), "{}", sn.log());
    let sn6: SocketAddr = format!("[::1]:{}", sn.port).parse().unwrap();
    let mut v4 = Edge::new(sn.addr, "mixed", 1, true);
    let mut v6 = Edge::new(sn6, "mixed", 2, true);
    v4.register_ok(None);
    v6.register_ok(None);
    v4.send_packet(v6.mac, b"4 to 6");
    check_relayed(&v6.recv(), &v4, v6.mac, 2, b"4 to 6");
    v6.send_packet(Mac::BROADCAST, b"6 to 4");
    check_relayed(&v4.recv(), &v6, Mac::BROADCAST, 2, b"6 to 4");
    drop(sn);

    // -p [::]:port on a dual-stack system: IPv4 edges arrive as
    // IPv4-mapped addresses and must be seen (ACK, relay, table) as IPv4.
    let v6only = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").unwrap_or_default();
    if v6only.trim() != "0" {
        eprintln!("SKIP dual-stack part: net.ipv6.bindv6only is not 0");
        return;
    }
    let sn = Sn::start_with(&[], |p| format!("[::]:{p}"));
    let mut a = Edge::new(sn.addr, "dual", 1, true);
    let mut b = Edge::new(sn.addr, "dual", 2, true);
    a.register_ok(None); // ACK sock = 127.0.0.1:port, not ::ffff:127.0.0.1
    b.register_ok(None);
    a.send_packet(b.mac, b"mapped");
    check_relayed(&b.recv(), &a, b.mac, 2, b"mapped");
    assert_eq!(sn.rows("r 1 edges")[0]["sockaddr"], a.local().to_string());
}
