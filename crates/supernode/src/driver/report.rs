//! What the supernode driver writes to the log: the core's events in
//! C-like wording and the SIGHUP registration dump.

use n2n_core::supernode::{HeState, RefuseReason, Supernode, SupernodeEvent};
use n2n_sys::signals::Signal;

use super::now;

fn he_state_name(s: HeState) -> &'static str {
    match s {
        HeState::Unknown => "header encryption not known yet",
        HeState::Plain => "plain headers",
        HeState::Encrypted => "encrypted headers",
    }
}

fn refuse_text(r: RefuseReason) -> &'static str {
    match r {
        RefuseReason::MacInUse => "MAC address already in use by another edge",
        RefuseReason::IpInUse => "IP address already in use by another edge",
        RefuseReason::AuthSchemeMismatch => "authentication scheme does not fit the community",
        RefuseReason::UnknownUser => "user or password not recognised",
        _ => "refused",
    }
}

/// One log line for a core event, C-like wording, and whether it is a
/// warning. (`CommunityCreated` with a subnet gives two lines in C; here
/// the second is [`subnet_line`].)
pub fn event_line(ev: &SupernodeEvent) -> (bool, String) {
    match ev {
        SupernodeEvent::EdgeRegistered {
            community,
            mac,
            sock,
            ip,
        } => {
            let ip = if ip.ip.is_unspecified() {
                "no address".to_owned()
            } else {
                ip.to_string()
            };
            (
                false,
                format!("registered edge {mac} [{ip}] from {sock} in community '{community}'"),
            )
        }
        SupernodeEvent::EdgeRefused {
            community,
            mac,
            sock,
            reason,
        } => (
            true,
            format!(
                "refused registration of edge {mac} from {sock} in community '{community}': {} \
                 ({reason}); sent REGISTER_SUPER_NAK",
                refuse_text(*reason)
            ),
        ),
        SupernodeEvent::EdgeUnregistered { community, mac } => (
            false,
            format!("edge {mac} unregistered from community '{community}'"),
        ),
        SupernodeEvent::EdgeClosed { community, mac } => (
            false,
            format!("edge {mac} of community '{community}' removed: its TCP connection closed"),
        ),
        SupernodeEvent::EdgePurged { community, mac } => (
            false,
            format!("purged edge {mac} of community '{community}': not seen for 60 s"),
        ),
        SupernodeEvent::CommunityCreated { community, .. } => {
            (false, format!("new community: {community}"))
        }
        SupernodeEvent::CommunityRemoved { community } => {
            (false, format!("removed community '{community}'"))
        }
        SupernodeEvent::HeLocked {
            community,
            encrypted,
        } => (
            false,
            format!(
                "locked community '{community}' to {}",
                if *encrypted {
                    "encrypted headers"
                } else {
                    "unencrypted headers"
                }
            ),
        ),
        SupernodeEvent::FederationAdded { sock, mac } => (
            false,
            format!("federation: supernode {mac} at {sock} added"),
        ),
        SupernodeEvent::FederationPurged { sock, mac } => (
            true,
            format!(
                "federation: supernode {mac} at {} silent for 90 s, removed",
                sock.map_or_else(|| "?".to_owned(), |s| s.to_string())
            ),
        ),
        SupernodeEvent::KeyTimeAdopted { key_time } => (
            false,
            format!("federation: adopted a peer's key_time {key_time}, dynamic keys renewed"),
        ),
        SupernodeEvent::EdgeMoved {
            community,
            mac,
            supernode,
        } => (
            false,
            format!("edge {mac} of '{community}' moved to supernode {supernode}"),
        ),
        SupernodeEvent::EdgeRefusedByFederation {
            community,
            mac,
            supernode,
        } => (
            true,
            format!(
                "edge {mac} of '{community}' refused by supernode {supernode} (spoofing protection)"
            ),
        ),
        other => (false, format!("{other:?}")),
    }
}

/// C's second line for a new community.
pub fn subnet_line(ev: &SupernodeEvent) -> Option<String> {
    match ev {
        SupernodeEvent::CommunityCreated {
            community,
            subnet: Some(s),
        } => Some(format!(
            "assigned sub-network {s} to community '{community}'"
        )),
        _ => None,
    }
}

pub(super) fn log_event(ev: &SupernodeEvent) {
    let (warn, line) = event_line(ev);
    if warn {
        tracing::warn!("{line}");
    } else {
        tracing::info!("{line}");
    }
    if let Some(l) = subnet_line(ev) {
        tracing::info!("{l}");
    }
}

/// SIGHUP: write the registration table to the log (C's
/// `dump_registrations`).
pub(super) fn dump_registrations(core: &Supernode, sig: Signal) {
    let t = now();
    let communities = core.communities();
    let edges = core.edges();
    tracing::info!(
        "==== registrations ({}: {} communities, {} edges) ====",
        sig.name(),
        communities.len(),
        edges.len()
    );
    for c in &communities {
        let subnet = c.subnet.map(|s| s.to_string()).unwrap_or_default();
        tracing::info!(
            "community '{}' {}{} [{}] {}, {} edges",
            c.community,
            if c.fixed { "(fixed) " } else { "" },
            subnet,
            he_state_name(c.he_state),
            if c.users { "user/password" } else { "open" },
            c.edges
        );
        for e in edges.iter().filter(|e| e.community == c.community) {
            let ip = if e.dev_addr.ip.is_unspecified() {
                "-".to_owned()
            } else {
                e.dev_addr.to_string()
            };
            tracing::info!(
                "    {} {} {} '{}' last seen {} s ago",
                e.mac,
                ip,
                e.sock,
                e.desc,
                t.unix_secs().saturating_sub(e.last_seen_unix)
            );
        }
    }
    tracing::info!("==== end of registrations ====");
}

#[cfg(test)]
mod tests {
    use super::*;
    use n2n_core::supernode::autoip::Subnet;
    use n2n_proto::types::{Community, DevAddr, Mac};

    #[test]
    fn event_wording() {
        let community = Community::new("rocks").unwrap();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let (w, l) = event_line(&SupernodeEvent::EdgeRegistered {
            community,
            mac,
            sock: "198.18.0.1:50001".parse().unwrap(),
            ip: DevAddr::new([10, 200, 0, 1].into(), 24),
        });
        assert!(!w);
        assert_eq!(
            l,
            "registered edge 02:00:00:00:00:01 [10.200.0.1/24] from 198.18.0.1:50001 in \
             community 'rocks'"
        );
        let (w, l) = event_line(&SupernodeEvent::EdgeRefused {
            community,
            mac,
            sock: "198.18.0.1:50001".parse().unwrap(),
            reason: RefuseReason::MacInUse,
        });
        assert!(w && l.contains("mac_in_use") && l.contains("MAC address already in use"));
        let created = SupernodeEvent::CommunityCreated {
            community,
            subnet: Some(Subnet {
                net: [10, 185, 191, 0].into(),
                bits: 24,
            }),
        };
        assert_eq!(event_line(&created).1, "new community: rocks");
        assert_eq!(
            subnet_line(&created).unwrap(),
            "assigned sub-network 10.185.191.0/24 to community 'rocks'"
        );
        let (_, l) = event_line(&SupernodeEvent::HeLocked {
            community,
            encrypted: true,
        });
        assert_eq!(l, "locked community 'rocks' to encrypted headers");
        // Hostile names are escaped.
        let evil = Community::from_field(*b"a\nb\x1b[0m\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let (_, l) = event_line(&SupernodeEvent::CommunityRemoved { community: evil });
        assert!(!l.contains('\n') && !l.contains('\x1b'), "{l}");
    }
}
