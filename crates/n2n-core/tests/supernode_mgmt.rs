//! Supernode management commands (cli.md §5.6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sn_common;

use std::net::SocketAddr;

use n2n_core::supernode::community_list::CommunityList;
use n2n_core::supernode::{MgmtAction, SupernodeConfig};
use sn_common::*;

fn from() -> SocketAddr {
    sock("127.0.0.1:39000")
}

fn ask(sim: &mut Sim, req: &str) -> n2n_core::supernode::MgmtOutcome {
    sim.sn.handle_mgmt(sim.now, from(), req.as_bytes())
}

fn json(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| {
            assert!(l.ends_with('\n'));
            serde_json::from_str(l).unwrap()
        })
        .collect()
}

#[test]
fn stop_and_verbose() {
    let mut sim = Sim::open();
    let out = ask(&mut sim, "r 1 stop");
    assert_eq!(
        out.replies,
        vec![
            "{\"_tag\":\"1\",\"_type\":\"begin\",\"cmd\":\"stop\"}\n",
            "{\"_tag\":\"1\",\"_type\":\"row\",\"keep_running\":1}\n",
            "{\"_tag\":\"1\",\"_type\":\"end\",\"cmd\":\"stop\"}\n",
        ]
    );
    assert_eq!(out.action, None);
    // Writes need the password.
    let out = ask(&mut sim, "w 2 stop");
    assert_eq!(
        out.replies,
        vec!["{\"_tag\":\"2\",\"_type\":\"error\",\"error\":\"badauth\"}\n"]
    );
    assert!(sim.sn.keep_running());
    let out = ask(&mut sim, "w 3:1:n2n stop");
    assert_eq!(out.action, Some(MgmtAction::Stop));
    assert_eq!(json(&out.replies)[1]["keep_running"], 0);
    assert!(!sim.sn.keep_running());

    let out = ask(&mut sim, "r 4 verbose");
    assert_eq!(json(&out.replies)[1]["traceLevel"], 2);
    let out = ask(&mut sim, "w 5:1:n2n verbose 4");
    assert_eq!(out.action, Some(MgmtAction::SetVerbosity(4)));
    assert_eq!(json(&out.replies)[1]["traceLevel"], 4);
    assert_eq!(sim.sn.verbosity(), 4);
    let out = ask(&mut sim, "w 6:1:wrong verbose 1");
    assert_eq!(json(&out.replies)[0]["error"], "badauth");
    assert_eq!(sim.sn.verbosity(), 4);
}

#[test]
fn errors() {
    let mut sim = Sim::open();
    let e = |sim: &mut Sim, req: &str| json(&ask(sim, req).replies);
    assert_eq!(e(&mut sim, "r 1 nosuch")[0]["error"], "unknowncmd");
    assert_eq!(e(&mut sim, "w 1:1:n2n edges")[0]["error"], "readonly");
    assert_eq!(e(&mut sim, "x 1 edges")[0]["error"], "badtype");
    assert_eq!(e(&mut sim, "r 7")[0]["error"], "nocmd");
    // Command-level errors come between begin and end.
    let v = e(&mut sim, "r 8 supernodes");
    assert_eq!(v.len(), 3);
    assert_eq!(v[0]["_type"], "begin");
    assert_eq!(v[1]["error"], "unimplemented");
    assert_eq!(v[2]["_type"], "end");
    let v = e(&mut sim, "r 9 reload_communities");
    assert_eq!(v[1]["error"], "writeonly");
    let v = e(&mut sim, "w 9:1:n2n reload_communities");
    assert_eq!(v[1]["error"], "nofile");
    // Garbage: no panic; JSON-looking garbage gets an error, anything else
    // the status page, like C.
    let mut x: u32 = 1;
    for len in 0..300 {
        let mut d: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        if len > 2 && len % 2 == 0 {
            d[1] = b' ';
        }
        let out = sim.sn.handle_mgmt(sim.now, from(), &d);
        assert!(!out.replies.is_empty());
        assert!(out.action.is_none() || matches!(out.action, Some(MgmtAction::Stop)));
    }
}

#[test]
fn reload_communities() {
    let mut cfg = SupernodeConfig::new(SN_MAC);
    cfg.communities = Some(CommunityList::parse("alpha\n").unwrap());
    cfg.community_file = Some("/etc/n2n/community.list".into());
    let mut sim = Sim::new(cfg);
    let a = TestEdge::new("alpha", 1, "198.51.100.1:1", [10, 0, 0, 1]);
    sim.register(&a);
    let b = TestEdge::new("beta", 2, "198.51.100.2:1", [10, 0, 0, 2]);
    assert!(sim.feed(b.sock, &b.reg_super(1)).is_empty());

    let out = ask(&mut sim, "w 5:1:n2n reload_communities");
    assert!(out.replies.is_empty());
    let Some(MgmtAction::ReloadCommunities(req)) = out.action else {
        panic!("{:?}", out.action)
    };
    // The driver re-reads the file…
    sim.sn
        .set_communities(sim.now, Some(CommunityList::parse("beta\n").unwrap()));
    let v = json(&req.replies(true));
    assert_eq!(v[0]["cmd"], "reload_communities");
    assert_eq!(v[1]["ok"], 0);
    assert_eq!(v[2]["_type"], "end");
    assert_eq!(json(&req.replies(false))[1]["ok"], 1);
    // Old edges are gone, the new community is accepted, the old refused.
    assert!(sim.sn.edges().is_empty());
    sim.register(&b);
    assert!(sim.feed(a.sock, &a.reg_super(2)).is_empty());
    // Federation row now comes first (C re-adds the file's communities).
    let v = json(&ask(&mut sim, "r 6 communities").replies);
    assert_eq!(v[1]["community"], "-/-");
    assert_eq!(v[2]["community"], "beta");
    assert_eq!(v[2]["purgeable"], 0);

    // Legacy text command: no password, plain-text answer.
    let out = ask(&mut sim, "reload_communities\n");
    let Some(MgmtAction::ReloadCommunities(req)) = out.action else {
        panic!()
    };
    assert_eq!(req.replies(true), vec!["OK.\n".to_owned()]);
    let mut open = Sim::open();
    let out = ask(&mut open, "reload_communities");
    assert_eq!(
        out.replies,
        vec!["No community file provided (-c command line option)\n".to_owned()]
    );
    assert!(ask(&mut open, "help").replies[0].starts_with("Help for supernode"));
}

#[test]
fn listings_and_drop_rows() {
    let mut sim = Sim::open();
    let a = TestEdge::new("zeta", 1, "198.51.100.1:1", [10, 0, 0, 1]);
    let b = TestEdge::new("alpha", 2, "198.51.100.2:1", [0, 0, 0, 0]);
    sim.register(&a);
    sim.register(&b);
    sim.feed(a.sock, &[1, 2, 3]); // too short
    let v = json(&ask(&mut sim, "r 1 communities").replies);
    // Federation first (no community file), then creation order.
    let names: Vec<_> = v[1..v.len() - 1]
        .iter()
        .map(|r| r["community"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["-/-", "zeta", "alpha"]);
    assert_eq!(v[2]["purgeable"], 1);
    assert!(v[2]["ip4addr"].as_str().unwrap().ends_with("/24"));
    let v = json(&ask(&mut sim, "r 2 edges").replies);
    assert_eq!(v.len(), 4);
    assert_eq!(v[1]["macaddr"], "02:00:00:00:00:01");
    assert_eq!(v[2]["ip4addr"], "", "0.0.0.0 is shown empty");
    assert_eq!(v[2]["desc"], "e2");
    let v = json(&ask(&mut sim, "r 3 packetstats").replies);
    assert_eq!(v[3]["type"], "reg_super");
    assert_eq!(v[3]["rx_pkt"], 2);
    assert_eq!(v.len(), 6, "C's four rows only: {v:?}");
    let v = json(&ask(&mut sim, "r 3 drops").replies);
    let short = v
        .iter()
        .find(|r| r["reason"] == "too_short")
        .expect("drop row");
    assert_eq!(short["type"], "drop");
    assert_eq!(short["count"], 1);
    assert_eq!(v.last().unwrap()["_type"], "end");
    let v = json(&ask(&mut sim, "r 4 help").replies);
    assert_eq!(v.len(), 12);
    // `s` requests work like reads but need the password.
    assert_eq!(
        json(&ask(&mut sim, "s 5 edges").replies)[0]["error"],
        "badauth"
    );
    assert_eq!(json(&ask(&mut sim, "s 5:1:n2n edges").replies).len(), 4);
    // The text page lists both communities and the federation.
    let page = ask(&mut sim, "").replies.concat();
    assert!(page.contains("FEDERATION '-/-'"));
    assert!(page.contains("COMMUNITY 'zeta'"));
    assert!(page.contains("| 02:00:00:00:00:01 |"));
    assert!(page.contains("cur_cmnts 3"));
}
