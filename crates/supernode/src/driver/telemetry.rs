//! What the supernode shows to `--metrics` (metrics and the status page) and
//! to systemd (`STATUS=`). Called from the timer step, at most once a second.

use n2n_core::supernode::Supernode;
use n2n_core::supernode::stats::DropReason;
use n2n_metrics::{CommunityView, EdgeView, SupernodeSnapshot, SupernodeView, text_field};

/// The core's state as a [`SupernodeSnapshot`].
pub(super) fn snapshot(core: &Supernode, now_unix: u64) -> SupernodeSnapshot {
    let mut communities: Vec<CommunityView> = core
        .communities()
        .iter()
        .map(|c| CommunityView {
            name: text_field(c.community.name_bytes()),
            edges: Vec::new(),
        })
        .collect();
    for e in core.edges() {
        let name = text_field(e.community.name_bytes());
        let view = EdgeView {
            mac: e.mac.octets(),
            ip4addr: (!e.dev_addr.ip.is_unspecified())
                .then_some((e.dev_addr.ip, e.dev_addr.prefix)),
            desc: text_field(e.desc.name_bytes()),
            sockaddr: e.sock,
            last_seen_unix: e.last_seen_unix,
            relayed_packets: e.relayed_packets,
            // A supernode never sees P2P traffic (the protocol carries no edge counters).
            p2p_packets: None,
        };
        match communities.iter_mut().find(|c| c.name == name) {
            Some(c) => c.edges.push(view),
            None => communities.push(CommunityView {
                name,
                edges: vec![view],
            }),
        }
    }
    let st = core.stats();
    SupernodeSnapshot {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        now_unix,
        federation_name: text_field(core.config().federation.name_bytes()),
        communities,
        // Federation members with a known address (`-l` ones still
        // unresolved are left out). C's wire has no version for them.
        federation: core
            .federation()
            .into_iter()
            .filter_map(|f| {
                Some(SupernodeView {
                    mac: f.mac.0,
                    sockaddr: f.addr?,
                    version: String::new(),
                    last_seen_unix: f.last_seen_unix,
                })
            })
            .collect(),
        forwarded: vec![("unicast", st.fwd), ("broadcast", st.broadcast)],
        drops: DropReason::ALL
            .iter()
            .map(|r| (r.name(), st.drop_count(*r)))
            .collect(),
    }
}

/// systemd's `STATUS=`: `3 edges in 2 communities, 1234 packets forwarded`.
pub(super) fn status(core: &Supernode) -> String {
    let c = core.communities();
    let edges: usize = c.iter().map(|c| c.edges).sum();
    let st = core.stats();
    format!(
        "{edges} edge{} in {} communit{}, {} packets forwarded",
        if edges == 1 { "" } else { "s" },
        c.len(),
        if c.len() == 1 { "y" } else { "ies" },
        st.fwd.saturating_add(st.broadcast)
    )
}
