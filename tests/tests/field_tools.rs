//! Self-tests of the scenario helpers that need no n2n binary: the Rust DHCP client against
//! dnsmasq across a Linux bridge, the multicast sender/receivers, and the outage probe.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::Duration;

use n2n_tests::scenario::*;
use n2n_tests::*;

/// A "VM host" bridge with a DHCP server VM (static address, dnsmasq) and two client VMs that
/// get leases with the Rust client; then multicast from the server reaches both clients, and a
/// probe measures a 1.5 s cable pull.
#[test]
fn dhcp_multicast_and_gap_probe_on_a_bridge() {
    if !require_tools("field/tools_dhcp_multicast", &["ip", "ping", "dnsmasq"]) {
        return;
    }
    let mut sc = Scenario::new("field/tools_dhcp_multicast");
    let lab = Lab::new("fld_tools");
    let sw = lab.bridge("sw").unwrap();
    let server = lab.host_on("srv", &sw, "10.210.9.1/24").unwrap();
    let c1 = lab.netns("c1").unwrap();
    let c2 = lab.netns("c2").unwrap();
    sw.attach(&c1, "eth0", None).unwrap();
    sw.attach(&c2, "eth0", None).unwrap();
    let (_dns, leases_dir) = dnsmasq(
        &server,
        "dnsmasq",
        "eth0",
        "10.210.9.100,10.210.9.150,255.255.255.0,1h",
    )
    .unwrap();

    let mut ips = Vec::new();
    for c in [&c1, &c2] {
        let lease = dhcp_configure(c, "eth0", Duration::from_secs(10)).unwrap();
        assert_eq!(lease.server, Ipv4Addr::new(10, 210, 9, 1));
        assert_eq!(lease.prefix, 24);
        assert!(
            (100..=150).contains(&lease.ip.octets()[3]),
            "{lease:?} outside the range"
        );
        assert_eq!(c.addrs("eth0").unwrap(), vec![lease.ip]);
        sc.metric(&format!("lease_{}_ms", c.role()), lease.took.as_millis());
        ips.push(lease.ip);
    }
    assert_ne!(ips[0], ips[1]);
    let leases = std::fs::read_to_string(leases_dir.join("leases")).unwrap();
    for ip in &ips {
        assert!(leases.contains(&ip.to_string()), "{leases}");
    }
    let r = ping(&c1, &ips[1].to_string(), 1472, 2, true).unwrap();
    assert_eq!(r.received, 2, "{r:?}");

    // Multicast from the server to both clients.
    let group = Ipv4Addr::new(239, 1, 2, 3);
    for ns in [&server, &c1, &c2] {
        ns.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"])
            .unwrap();
    }
    let r1 = mcast_receiver(&c1, group, 5000, ips[0]).unwrap();
    let r2 = mcast_receiver(&c2, group, 5000, ips[1]).unwrap();
    // A receiver that did not join must not see it (the socket is bound to the port only).
    let stray = c1.udp_socket("0.0.0.0:5001".parse().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let payload = b"field multicast hello";
    mcast_send(&server, group, 5000, payload).unwrap();
    assert!(recv_exact(&r1, payload, Duration::from_secs(3)).is_some());
    assert!(recv_exact(&r2, payload, Duration::from_secs(3)).is_some());
    assert!(recv_exact(&stray, payload, Duration::from_millis(300)).is_none());

    // Gap probe: pull c2's cable for ~1.5 s.
    let probe = GapProbe::start(&c1, "probe", &ips[1].to_string(), 100, 20).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    sw.set_link(&c2, "eth0", false).unwrap();
    let cut = unix_now();
    std::thread::sleep(Duration::from_millis(1500));
    sw.set_link(&c2, "eth0", true).unwrap();
    let back = unix_now();
    std::thread::sleep(Duration::from_millis(1000));
    let t = probe.finish().unwrap();
    let gap = t.max_gap(t.started + 0.3, t.ended);
    let resumed = t.first_reply_after(back).unwrap() - back;
    sc.metric("cut_gap_s", format!("{gap:.2}"));
    assert!(
        (1.3..3.0).contains(&gap),
        "gap {gap} for a 1.5 s cut; {t:?}"
    );
    assert!(resumed < 1.0, "resumed {resumed} s after re-plug");
    assert!(t.last_reply_before(cut).is_some());
}

/// The NAT routers keep an endpoint-independent mapping even after an unsolicited datagram from
/// the future peer hit the WAN address first (the hole-punching race: both sides send at once).
/// Without the router's input drop, that datagram left a confirmed conntrack entry and the
/// masquerade picked another external port for the inside host's flow to the same peer.
#[test]
fn eim_mapping_survives_an_early_unsolicited_datagram() {
    if !require_root("field/tools_eim_race") {
        return;
    }
    let mut sc = Scenario::new("field/tools_eim_race");
    let lab = Lab::new("fld_race");
    let wan = lab.bridge("wan").unwrap();
    let peer = lab.host_on("peer", &wan, "198.18.0.10/24").unwrap();
    let site = NatSite::new(&lab, "h", 1, NatKind::EndpointIndependent, &wan).unwrap();
    let peer_sock = peer.udp_socket("0.0.0.0:4000".parse().unwrap()).unwrap();
    // The peer "punches" first: its datagram reaches the router before the inside host sent
    // anything (and must not get through).
    peer_sock
        .send_to(
            b"early",
            "198.18.0.1:40021".parse::<std::net::SocketAddr>().unwrap(),
        )
        .unwrap();
    let inside = site
        .host
        .udp_socket("0.0.0.0:40021".parse().unwrap())
        .unwrap();
    inside
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        inside.recv_from(&mut buf).is_err(),
        "unsolicited datagram got in"
    );
    inside
        .send_to(
            b"late",
            "198.18.0.10:4000".parse::<std::net::SocketAddr>().unwrap(),
        )
        .unwrap();
    peer_sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (n, from) = peer_sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"late");
    assert_eq!(
        from,
        "198.18.0.1:40021".parse().unwrap(),
        "mapping changed port"
    );
    // And now the peer's datagrams to that mapping get in.
    peer_sock.send_to(b"reply", from).unwrap();
    inside
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (n, _) = inside.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"reply");
    sc.metric("mapping", from);
}
