//! Snapshots for the tests.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};

use n2n_metrics::{
    CommunityView, EdgeSnapshot, EdgeView, PathCounters, SupernodeSnapshot, SupernodeView,
};

pub const NOW: u64 = 1_700_000_000;

pub fn edge(scale: u64) -> EdgeSnapshot {
    EdgeSnapshot {
        version: "0.1.0".into(),
        community: "lab<&>".into(),
        peers_p2p: 3,
        peers_relayed: 1,
        supernode_up: true,
        supernode: Some(SocketAddr::from(([198, 18, 0, 254], 7654))),
        p2p: PathCounters {
            tx_bytes: 1000 * scale,
            rx_bytes: 2000 * scale,
            tx_packets: 10 * scale,
            rx_packets: 20 * scale,
        },
        via_supernode: PathCounters {
            tx_bytes: 300 * scale,
            rx_bytes: 400 * scale,
            tx_packets: 3 * scale,
            rx_packets: 4 * scale,
        },
        drops: vec![
            ("malformed", scale),
            ("wrong_community", 0),
            ("payload_replay", 2 * scale),
        ],
    }
}

pub fn edge_view(i: u8, desc: &str) -> EdgeView {
    EdgeView {
        mac: [0x02, 0xab, 0xcd, 0x00, 0x00, i],
        ip4addr: Some((Ipv4Addr::new(10, 200, 0, i), 24)),
        desc: desc.into(),
        sockaddr: SocketAddr::from(([198, 18, 0, i], 50_000 + u16::from(i))),
        last_seen_unix: NOW - u64::from(i),
        relayed_packets: 10 * u64::from(i),
        p2p_packets: if i.is_multiple_of(2) {
            Some(90 * u64::from(i))
        } else {
            None
        },
    }
}

pub fn supernode(scale: u64) -> SupernodeSnapshot {
    SupernodeSnapshot {
        federation_name: "*Federation".into(),
        version: "0.1.0".into(),
        now_unix: NOW,
        communities: vec![
            CommunityView {
                name: "lab".into(),
                edges: vec![edge_view(1, "alpha"), edge_view(2, "beta")],
            },
            CommunityView {
                // Attacker-controlled: quotes, backslash, newline, braces, markup.
                name: "ev\"il\\n\n}{<b>".into(),
                edges: vec![edge_view(3, "<script>alert(1)</script>")],
            },
            CommunityView {
                name: "empty".into(),
                edges: vec![],
            },
        ],
        federation: vec![SupernodeView {
            mac: [0x0a, 0, 0, 0, 0, 0xfe],
            sockaddr: SocketAddr::from(([198, 18, 1, 254], 7654)),
            version: "3.1.1".into(),
            last_seen_unix: NOW - 5,
        }],
        forwarded: vec![("unicast", 100 * scale), ("broadcast", 7 * scale)],
        drops: vec![("too_short", scale), ("he_no_key", 0)],
    }
}
