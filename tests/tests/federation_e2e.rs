//! Supernode federation end to end (issue 13 item 3): three of our
//! supernodes federated with `-F e2efed` (sn1 and sn3 `-l sn2`; sn1 and sn3
//! meet through sn2's ACK lists), one edge per supernode, each knowing only
//! its own supernode. Pings in both directions between edges of different
//! supernodes, P2P reached across supernodes, a forged member (another
//! federation name) ignored and counted, then sn1 is SIGKILLed: its edge
//! must move to a supernode it learnt from the ACK lists and reach every
//! peer again; the failover time is printed (metric `failover_s`).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::thread::sleep;
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;
use serde_json::Value;

const REG: Duration = Duration::from_secs(20);
const SN2_IP: &str = "198.18.0.253";
const SN3_IP: &str = "198.18.0.252";
const SN4_IP: &str = "198.18.0.251";

fn sn_opts(extra: &[&str]) -> SupernodeOpts {
    SupernodeOpts {
        extra: extra.iter().map(|s| s.to_string()).collect(),
        ..SupernodeOpts::default()
    }
}

fn drop_count(rows: &[Value], reason: &str) -> u64 {
    rows.iter()
        .find(|r| r["type"] == "drop" && r["reason"] == reason)
        .and_then(|r| r["count"].as_u64())
        .unwrap_or(0)
}

fn federation_socks(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter(|r| r["community"] == "-/-")
        .filter_map(|r| r["sockaddr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn three_federated_supernodes_failover() {
    if !require_root("federation/three_supernodes") {
        return;
    }
    let mut sc = Scenario::new("federation/three_supernodes");
    let lab = Lab::new("fed_three");
    let (wan, sn1_host) = underlay(&lab).unwrap();
    let sn2_host = lab.host_on("sn2", &wan, &format!("{SN2_IP}/24")).unwrap();
    let sn3_host = lab.host_on("sn3", &wan, &format!("{SN3_IP}/24")).unwrap();
    let sn4_host = lab.host_on("sn4", &wan, &format!("{SN4_IP}/24")).unwrap();
    let hosts: Vec<_> = (1..=3)
        .map(|n| {
            lab.host_on(&format!("e{n}"), &wan, &format!("198.18.0.{n}/24"))
                .unwrap()
        })
        .collect();
    let sn1_addr = format!("{SN_IP}:{SN_PORT}");
    let sn2_addr = format!("{SN2_IP}:{SN_PORT}");
    let sn3_addr = format!("{SN3_IP}:{SN_PORT}");
    let mut sn1 = Supernode::start(
        &sn1_host,
        "supernode-1",
        sn_opts(&["-F", "e2efed", "-l", &sn2_addr]),
    )
    .unwrap();
    let sn2 = Supernode::start(
        &sn2_host,
        "supernode-2",
        sn_opts(&["-F", "e2efed", "--metrics", "9650"]),
    )
    .unwrap();
    let sn3 = Supernode::start(
        &sn3_host,
        "supernode-3",
        sn_opts(&["-F", "e2efed", "-l", &sn2_addr]),
    )
    .unwrap();
    // The federation forms: everybody knows both others.
    let formed = Instant::now();
    let full = |s: &Supernode| {
        s.mgmt("edges")
            .is_ok_and(|r| federation_socks(&r).len() == 2)
    };
    while !(full(&sn1) && full(&sn2) && full(&sn3)) && formed.elapsed() < Duration::from_secs(40) {
        sleep(Duration::from_millis(200));
    }
    let form_s = formed.elapsed().as_secs_f64();
    sc.metric("federation_formed_s", format!("{form_s:.1}"));
    eprintln!("federation of three formed after {form_s:.1} s");
    for s in [&sn1, &sn2, &sn3] {
        assert!(full(s), "{:?}", s.mgmt("edges"));
    }
    // sn2 learnt both members (it has no -l): its metrics and status page
    // show them (snapshots are published once a second).
    n2n_tests::install::ensure_program("curl").unwrap();
    let shown = wait_until(Duration::from_secs(10), Duration::from_millis(300), || {
        let m = sn2_host
            .exec(&["curl", "-s", "http://127.0.0.1:9650/metrics"])
            .unwrap_or_default();
        let page = sn2_host
            .exec(&["curl", "-s", "http://127.0.0.1:9650/"])
            .unwrap_or_default();
        m.contains("n2n_supernode_federation_supernodes 2")
            && page.contains(SN_IP)
            && page.contains(SN3_IP)
    });
    assert!(
        shown,
        "sn2's metrics/status page do not list both federation members"
    );

    let sns = [&sn1_addr, &sn2_addr, &sn3_addr];
    let edges: Vec<Edge> = (1..=3u16)
        .map(|n| {
            let o = EdgeOpts::new("fedcomm", sns[usize::from(n - 1)])
                .addr(&format!("10.200.9.{n}/24"))
                .mac(mac(0x900 + n))
                .port(50000 + n);
            Edge::start(&hosts[usize::from(n - 1)], &format!("edge-{n}"), o).unwrap()
        })
        .collect();
    for e in &edges {
        assert!(e.wait_registered(REG), "{:?}", e.supernodes());
    }
    // Pings both ways across supernodes.
    for (a, b) in [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)] {
        let dst = format!("10.200.9.{}", b + 1);
        assert!(wait_ping(&hosts[a], &dst, REG), "edge {} -> {dst}", a + 1);
    }
    // P2P reached between edges of different supernodes.
    assert!(edges[0].wait_direct(&mac(0x902), REG), "e1-e2 direct");
    assert!(edges[1].wait_direct(&mac(0x901), REG), "e2-e1 direct");
    // Each edge learnt the other supernodes from the ACK lists.
    let learnt = wait_until(REG, Duration::from_millis(200), || {
        edges[0].supernodes().is_ok_and(|r| r.len() >= 3)
    });
    assert!(learnt, "{:?}", edges[0].supernodes());

    // A forged member (other federation name, same default keys) is
    // ignored and counted.
    let sn4 = Supernode::start(
        &sn4_host,
        "supernode-forged",
        sn_opts(&["-F", "otherfed", "-l", &sn1_addr]),
    )
    .unwrap();
    let forged = wait_until(Duration::from_secs(15), Duration::from_millis(200), || {
        sn1.mgmt("drops")
            .is_ok_and(|r| drop_count(&r, "federation_forged") > 0)
    });
    assert!(forged, "{:?}", sn1.mgmt("drops"));
    assert!(
        !federation_socks(&sn1.mgmt("edges").unwrap())
            .iter()
            .any(|s| s.starts_with(SN4_IP)),
        "the forged member is not in the federation"
    );
    drop(sn4);

    // sn1 dies: e1 (which only knew sn1) moves to a learnt supernode.
    sleep(Duration::from_secs(2));
    sn1.kill(Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    let mut moved = None;
    while moved.is_none() && killed.elapsed() < Duration::from_secs(60) {
        if let Some(s) = edges[0].registered_with()
            && s != sn1_addr
        {
            moved = Some(killed.elapsed().as_secs_f64());
        }
        sleep(Duration::from_millis(100));
    }
    let moved = moved.expect("e1 never moved off the dead supernode");
    let mut reach = None;
    while reach.is_none() && killed.elapsed() < Duration::from_secs(90) {
        if ping(&hosts[0], "10.200.9.2", 56, 1, false)
            .unwrap()
            .received
            > 0
            && ping(&hosts[0], "10.200.9.3", 56, 1, false)
                .unwrap()
                .received
                > 0
        {
            reach = Some(killed.elapsed().as_secs_f64());
        }
    }
    sc.metric("moved_after_s", format!("{moved:.1}"));
    let reach = reach.expect("e1 never reached its peers after the failover");
    sc.metric("failover_s", format!("{reach:.1}"));
    eprintln!(
        "failover: e1 registered elsewhere after {moved:.1} s, reached every peer after {reach:.1} s"
    );
    // Three unanswered REGISTER_SUPERs at the default 20 s interval + margin.
    assert!(reach < 45.0, "failover took {reach:.1} s");
    assert!(wait_ping(&hosts[1], "10.200.9.1", REG));
    assert!(wait_ping(&hosts[2], "10.200.9.1", REG));
    for e in &edges {
        e.health().unwrap();
    }
    sn2.health().unwrap();
    sn3.health().unwrap();
}
