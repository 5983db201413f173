//! The management port on arbitrary datagrams: the request parser (both
//! flavours) and the edge's and supernode's command handlers behind it.
//! Input: up to 8 datagrams separated by NUL bytes, sent in turn to an edge
//! and to a supernode with a community list (fixed communities, a user
//! community). Invariants: no panic; every reply is one bounded datagram;
//! a request never produces an unbounded number of replies.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use n2n_core::Now;
use n2n_core::edge::{Edge, EdgeConfig};
use n2n_core::mgmt::{Flavor, parse_request};
use n2n_core::supernode::community_list::CommunityList;
use n2n_core::supernode::{Supernode, SupernodeConfig};
use n2n_proto::types::{Community, Mac};

const LIST: &str =
    "rocks\nother\n^vc[0-9]+$\nusers\n* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG\n";

fn check(replies: &[String]) {
    assert!(replies.len() <= 4096, "{} replies", replies.len());
    for r in replies {
        assert!(
            r.len() <= n2n_core::MAX_DATAGRAM,
            "reply of {} bytes",
            r.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Now::new(Instant::now(), 1_700_000_000_000_000);
    let from: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let mut cfg = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 1]));
    cfg.communities = Some(CommunityList::parse(LIST).expect("the fixed community list parses"));
    let mut sn = Supernode::new(cfg, [7; 32], now);
    let community = Community::new("rocks").expect("community");
    let Ok(mut edge) = Edge::new(
        EdgeConfig::new(community, vec!["127.0.0.1:7654".to_owned()]),
        [9; 32],
        now,
    ) else {
        return;
    };
    for req in data.split(|&b| b == 0).take(8) {
        let _ = parse_request(req, Flavor::Edge);
        let _ = parse_request(req, Flavor::Supernode);
        check(&sn.handle_mgmt(now, from, req).replies);
        check(&edge.handle_mgmt(now, from, req).replies);
    }
});
