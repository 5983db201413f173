//! What the edge shows to `--metrics` and systemd: a snapshot of the core's
//! counters and a one-line status. Called from the timer step, at most once
//! a second; never on the data path.

use n2n_core::edge::{DropReason, Edge};
use n2n_metrics::{EdgeSnapshot, PathCounters};

/// The core's counters as an [`EdgeSnapshot`].
pub(super) fn snapshot(edge: &Edge) -> EdgeSnapshot {
    let s = edge.stats();
    let peers = edge.peers();
    let p2p = peers.iter().filter(|p| p.direct).count() as u64;
    EdgeSnapshot {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        community: String::from_utf8_lossy(edge.community().name_bytes()).into_owned(),
        peers_p2p: p2p,
        peers_relayed: peers.len() as u64 - p2p,
        supernode_up: edge.is_registered(),
        supernode: edge.current_supernode(),
        p2p: PathCounters {
            tx_bytes: s.p2p_tx_bytes,
            rx_bytes: s.p2p_rx_bytes,
            tx_packets: s.p2p_tx,
            rx_packets: s.p2p_rx,
        },
        via_supernode: PathCounters {
            tx_bytes: s.super_tx_bytes,
            rx_bytes: s.super_rx_bytes,
            tx_packets: s.super_tx,
            rx_packets: s.super_rx,
        },
        drops: DropReason::ALL
            .iter()
            .map(|r| (r.name(), s.drops(*r)))
            .collect(),
    }
}

/// systemd's `STATUS=`: `registered to 198.18.0.254:7654, 3 peers p2p, 1 relayed`.
pub(super) fn status(edge: &Edge) -> String {
    let peers = edge.peers();
    let p2p = peers.iter().filter(|p| p.direct).count();
    let relayed = peers.len() - p2p;
    match (edge.is_registered(), edge.current_supernode()) {
        (true, Some(sn)) => format!("registered to {sn}, {p2p} peers p2p, {relayed} relayed"),
        (_, Some(sn)) => {
            format!("not registered (trying {sn}), {p2p} peers p2p, {relayed} relayed")
        }
        (_, None) => "not registered (no supernode address)".to_owned(),
    }
}
