//! Plain snapshots of a daemon's state, filled by its driver loop and handed to the HTTP
//! server, plus the cheap hand-over ([`Publisher`] → [`Provider`]).
//!
//! The snapshots know nothing about the cores' types: a driver copies its counters into them
//! (every counter is a running total since the daemon started, never a delta).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::watch;

/// Traffic counters of one path (P2P or via the supernode). Running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCounters {
    /// Bytes sent (UDP payload of the PACKETs).
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// PACKETs sent.
    pub tx_packets: u64,
    /// PACKETs received.
    pub rx_packets: u64,
}

/// What an edge exposes. Counters are running totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeSnapshot {
    /// Program version (`n2n_edge_build_info{version}`).
    pub version: String,
    /// Community name (shown on the edge's page only, never a metric label).
    pub community: String,
    /// Peers reached directly (C `edges` mode `p2p`).
    pub peers_p2p: u64,
    /// Peers reached through the supernode (pending / `pSp`).
    pub peers_relayed: u64,
    /// Registered to a supernode (last REGISTER_SUPER acknowledged and not timed out).
    pub supernode_up: bool,
    /// The current supernode's socket, if any (edge page only).
    pub supernode: Option<SocketAddr>,
    /// Traffic sent to / received from peers directly.
    pub p2p: PathCounters,
    /// Traffic sent to / received from the supernode (relayed unicast and broadcast).
    pub via_supernode: PathCounters,
    /// Drop counters by reason name (snake_case), running totals. List every reason, zeros
    /// included, so the series exist before the first drop.
    pub drops: Vec<(&'static str, u64)>,
}

/// A registered edge as the supernode sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeView {
    /// MAC address.
    pub mac: [u8; 6],
    /// Overlay (TAP) address and prefix length from its registration; `None` when it sent
    /// none (0.0.0.0).
    pub ip4addr: Option<(Ipv4Addr, u8)>,
    /// Description (`-I`), already decoded with [`text_field`]. Attacker-controlled.
    pub desc: String,
    /// Public socket the registration came from.
    pub sockaddr: SocketAddr,
    /// Unix seconds of its last registration.
    pub last_seen_unix: u64,
    /// Unicast PACKETs from this edge that this supernode relayed (traffic that did not go
    /// P2P). Running total.
    pub relayed_packets: u64,
    /// PACKETs of this edge that went P2P, if the driver knows them. A supernode only sees what
    /// it relays (n2n's protocol carries no edge counters), so a driver without a source
    /// leaves this `None` and the page shows the share as unknown.
    pub p2p_packets: Option<u64>,
}

impl EdgeView {
    /// Share of this edge's packets that went P2P, in `[0, 1]`; `None` when unknown or when
    /// there was no traffic at all.
    #[must_use]
    pub fn p2p_share(&self) -> Option<f64> {
        let p2p = self.p2p_packets?;
        let total = p2p.saturating_add(self.relayed_packets);
        #[allow(clippy::cast_precision_loss)]
        (total > 0).then(|| p2p as f64 / total as f64)
    }
}

/// One community on the supernode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityView {
    /// Community name, decoded with [`text_field`]. Attacker-controlled (without `-c` any
    /// name registers).
    pub name: String,
    /// Its registered edges, in the order the driver lists them.
    pub edges: Vec<EdgeView>,
}

/// A supernode of the federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupernodeView {
    /// MAC address.
    pub mac: [u8; 6],
    /// Socket.
    pub sockaddr: SocketAddr,
    /// Version string it announced ("" when unknown).
    pub version: String,
    /// Unix seconds it was last heard of (0 = never).
    pub last_seen_unix: u64,
}

/// What a supernode exposes. Counters are running totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupernodeSnapshot {
    /// Program version.
    pub version: String,
    /// Unix seconds when the snapshot was taken ("last seen N s ago" on the page).
    pub now_unix: u64,
    /// The federation's name (`*Federation`), shown on the page.
    pub federation_name: String,
    /// Communities, without the federation.
    pub communities: Vec<CommunityView>,
    /// The federation's supernodes (other than this one).
    pub federation: Vec<SupernodeView>,
    /// Forwarded packets by kind (e.g. `unicast`, `broadcast`), running totals.
    pub forwarded: Vec<(&'static str, u64)>,
    /// Drop counters by reason name, running totals, zeros included.
    pub drops: Vec<(&'static str, u64)>,
}

/// Decodes a fixed-size wire text field (community, description): trailing NULs cut,
/// invalid UTF-8 replaced by U+FFFD.
#[must_use]
pub fn text_field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// Hands out the latest snapshot to the server. Cloning is cheap (one `Arc`).
pub struct Provider<S>(Arc<dyn Fn() -> Arc<S> + Send + Sync>);

impl<S> Clone for Provider<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S> std::fmt::Debug for Provider<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Provider")
    }
}

impl<S: Send + Sync + 'static> Provider<S> {
    /// A provider that calls `f` on every request. `f` must be cheap and must not take a lock
    /// the data path holds for long.
    pub fn from_fn(f: impl Fn() -> Arc<S> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Always the same snapshot (tests, examples).
    pub fn fixed(snapshot: S) -> Self {
        let s = Arc::new(snapshot);
        Self::from_fn(move || Arc::clone(&s))
    }

    /// The latest snapshot.
    #[must_use]
    pub fn latest(&self) -> Arc<S> {
        (self.0)()
    }
}

impl<S: Send + Sync + 'static> From<watch::Receiver<Arc<S>>> for Provider<S> {
    /// Reads the channel's current value: the read lock is held only to clone the `Arc`.
    fn from(rx: watch::Receiver<Arc<S>>) -> Self {
        Self::from_fn(move || Arc::clone(&rx.borrow()))
    }
}

/// The driver's end of the hand-over: [`Publisher::publish`] replaces the snapshot the server
/// sees. Never blocks for longer than the server needs to clone an `Arc`, never fails (also
/// when no server runs).
#[derive(Debug)]
pub struct Publisher<S>(watch::Sender<Arc<S>>);

impl<S: Send + Sync + 'static> Publisher<S> {
    /// Replaces the snapshot.
    pub fn publish(&self, snapshot: S) {
        self.0.send_replace(Arc::new(snapshot));
    }
}

/// A publisher/provider pair around a `tokio::sync::watch` channel, starting with `initial`.
pub fn channel<S: Send + Sync + 'static>(initial: S) -> (Publisher<S>, Provider<S>) {
    let (tx, rx) = watch::channel(Arc::new(initial));
    (Publisher(tx), Provider::from(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_field_cuts_nuls_and_replaces_bad_utf8() {
        assert_eq!(text_field(b"net\0\0\0"), "net");
        assert_eq!(text_field(b"a\xffb\0c"), "a\u{fffd}b");
        assert_eq!(text_field(b""), "");
    }

    #[test]
    fn publish_replaces_what_the_provider_sees() {
        let (tx, rx) = channel(EdgeSnapshot::default());
        assert_eq!(rx.latest().peers_p2p, 0);
        tx.publish(EdgeSnapshot {
            peers_p2p: 3,
            ..EdgeSnapshot::default()
        });
        assert_eq!(rx.clone().latest().peers_p2p, 3);
        drop(rx);
        tx.publish(EdgeSnapshot::default()); // no receiver: still fine
    }

    #[test]
    fn p2p_share() {
        let mut e = EdgeView {
            mac: [0; 6],
            ip4addr: None,
            desc: String::new(),
            sockaddr: SocketAddr::from(([127, 0, 0, 1], 1)),
            last_seen_unix: 0,
            relayed_packets: 25,
            p2p_packets: None,
        };
        assert_eq!(e.p2p_share(), None);
        e.p2p_packets = Some(75);
        assert_eq!(e.p2p_share(), Some(0.75));
        e.p2p_packets = Some(0);
        e.relayed_packets = 0;
        assert_eq!(e.p2p_share(), None);
    }
}
