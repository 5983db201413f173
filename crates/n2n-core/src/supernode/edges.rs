//! Communities and their registered edges (behaviour.md §9.2, §9.4).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use n2n_proto::auth;
use n2n_proto::he::CommunityHe;
use n2n_proto::types::{Auth, COMMUNITY_LEN, Community, DevAddr, DevDesc, Mac, PeerSock};

use super::autoip::Subnet;
use super::stats::RefuseReason;
use super::users::UserAuth;

/// Purge run interval (behaviour.md §9.12).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(30);
/// Edges not seen for this long are purged.
pub const EDGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Header-encryption state of a community (crypto.md §4.8), locked by the
/// first datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeState {
    /// No datagram seen yet (fixed-name communities of the file).
    Unknown,
    /// Plain headers only (locked; dynamic communities start here).
    Plain,
    /// Header-encrypted only (locked; user/password communities start here).
    Encrypted,
}

impl HeState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            HeState::Unknown => "unknown",
            HeState::Plain => "plain",
            HeState::Encrypted => "encrypted",
        }
    }
}

/// Where a registered edge is reached: today the UDP socket its
/// registration came from. The seam for TCP edges (`-S2`): a connection id
/// joins the socket here, and the handlers that send to `Edge::sock` are the
/// places to route by it.
pub(crate) type EdgeSock = SocketAddr;

/// A registered edge (the edge table is [`CommunityState::edges`], keyed by
/// MAC).
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) mac: Mac,
    /// TAP address from its REGISTER_SUPER (C never stores the assigned one).
    pub(crate) dev_addr: DevAddr,
    pub(crate) desc: DevDesc,
    /// Public socket (datagram source of the registration).
    pub(crate) sock: EdgeSock,
    /// Preferred (LAN) socket from the REGISTER_SUPER SOCKET field.
    pub(crate) preferred: Option<PeerSock>,
    pub(crate) cookie: u32,
    /// Stored auth block (scheme "none" with `-M` for simple-id edges).
    pub(crate) auth: Auth,
    pub(crate) last_seen: Instant,
    pub(crate) last_seen_unix: u64,
    /// Last accepted header-encryption stamp (crypto.md §4.5).
    pub(crate) stamp_prev: u64,
    /// Insertion order (management listings follow C's insertion order).
    pub(crate) seq: u64,
}

/// One community.
#[derive(Debug, Clone)]
pub(crate) struct CommunityState {
    /// Clean, zero-padded 20-byte name field.
    pub(crate) field: Community,
    /// Listed by name in the community file: never purged.
    pub(crate) fixed: bool,
    /// Has users (user/password authentication): `user_auth` is set.
    pub(crate) users: bool,
    /// Users, their secrets and the dynamic key (user/password communities).
    pub(crate) user_auth: Option<UserAuth>,
    pub(crate) he_state: HeState,
    /// Header keys: fixed-name communities only.
    pub(crate) he: Option<CommunityHe>,
    /// Auto-IP subnet (None when the pool is exhausted).
    pub(crate) subnet: Option<Subnet>,
    pub(crate) edges: BTreeMap<Mac, Edge>,
    /// Index of `edges` by TAP address (0.0.0.0 not indexed): keeps
    /// registration O(log n) in the community's edges. Maintained by the
    /// methods below; nothing else inserts or removes edges.
    pub(crate) by_ip: BTreeSet<(Ipv4Addr, Mac)>,
    pub(crate) seq: u64,
}

impl CommunityState {
    /// The header keys when the community is locked to header encryption.
    pub(crate) fn active_he(&self) -> Option<&CommunityHe> {
        match self.he_state {
            HeState::Encrypted => self.he.as_ref(),
            _ => None,
        }
    }

    /// Does the `presented` auth block of a registration match the `stored`
    /// one of the same edge (§9.4)? In a user/password community: the same
    /// user, i.e. the same public key `token[0..32]` (the caller has checked
    /// that the user is listed and its trailer); the challenge half changes
    /// every time. (C accepts any listed user here, so one user could take
    /// over another user's MAC or IP address; this supernode binds them to
    /// the user that registered them, until the entry is purged.)
    /// Otherwise [`auth_matches`].
    fn auth_ok(&self, stored: &Auth, presented: &Auth) -> bool {
        if self.users {
            fn key(a: &Auth) -> Option<&[u8]> {
                a.token().get(..auth::KEY_LEN)
            }
            presented.scheme() == Auth::SCHEME_USER_PASSWORD
                && stored.scheme() == Auth::SCHEME_USER_PASSWORD
                && matches!((key(stored), key(presented)), (Some(a), Some(b)) if a == b)
        } else {
            auth_matches(stored, presented)
        }
    }

    /// The MAC of a registered edge using TAP address `ip` (never for
    /// 0.0.0.0; the smallest MAC if several do).
    pub(crate) fn mac_by_ip(&self, ip: Ipv4Addr) -> Option<Mac> {
        if ip.is_unspecified() {
            return None;
        }
        self.by_ip
            .range((ip, Mac([0; 6]))..=(ip, Mac([0xff; 6])))
            .next()
            .map(|(_, m)| *m)
    }

    /// Is `ip` the TAP address of a registered edge (auto-IP host choice)?
    pub(crate) fn ip_in_use(&self, ip: Ipv4Addr) -> bool {
        self.mac_by_ip(ip).is_some()
    }

    /// Insert (or replace) an edge, keeping the index.
    fn insert_edge(&mut self, e: Edge) {
        if let Some(old) = self.edges.remove(&e.mac) {
            self.by_ip.remove(&(old.dev_addr.ip, old.mac));
        }
        if !e.dev_addr.ip.is_unspecified() {
            self.by_ip.insert((e.dev_addr.ip, e.mac));
        }
        self.edges.insert(e.mac, e);
    }

    /// Remove an edge, keeping the index.
    pub(crate) fn remove_edge(&mut self, mac: &Mac) -> Option<Edge> {
        let e = self.edges.remove(mac)?;
        self.by_ip.remove(&(e.dev_addr.ip, e.mac));
        Some(e)
    }

    /// Change a registered edge's TAP address, keeping the index.
    fn set_dev_addr(&mut self, mac: &Mac, a: DevAddr) {
        let Some(e) = self.edges.get_mut(mac) else {
            return;
        };
        if e.dev_addr.ip != a.ip {
            self.by_ip.remove(&(e.dev_addr.ip, e.mac));
            if !a.ip.is_unspecified() {
                self.by_ip.insert((a.ip, e.mac));
            }
        }
        e.dev_addr = a;
    }
}

/// The lookup key of a community: the name up to the first NUL, zero padded
/// (C compares community names as C strings).
pub(crate) fn community_key(field: &[u8]) -> Community {
    let mut f = [0u8; COMMUNITY_LEN];
    for (d, s) in f.iter_mut().zip(field.iter().take_while(|&&b| b != 0)) {
        *d = *s;
    }
    // A field without NUL keeps 19 bytes, like a C string in a 20-byte buffer.
    f[COMMUNITY_LEN - 1] = 0;
    Community::from_field(f)
}

/// Does the presented auth block match the stored one (§9.4)? Scheme
/// "none" stored (`-M`) always matches; otherwise byte-identical.
pub(crate) fn auth_matches(stored: &Auth, presented: &Auth) -> bool {
    stored.scheme() == Auth::SCHEME_NONE || stored == presented
}

/// What a successful registration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeChange {
    /// New entry.
    Added,
    /// Known MAC, new socket.
    Moved,
    /// Known MAC, same socket: only the cookie and last_seen.
    Refreshed,
    /// Entry found by TAP address re-keyed to the new MAC.
    Rekeyed(Mac),
    /// Known MAC, same socket, new token: the edge restarted (C and this edge draw a random
    /// simple-id token per process) and its new token was adopted.
    Restarted,
}

/// The registration to apply (REGISTER_SUPER fields plus its source).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registration {
    pub(crate) mac: Mac,
    pub(crate) dev_addr: DevAddr,
    pub(crate) desc: DevDesc,
    pub(crate) sock: EdgeSock,
    pub(crate) preferred: Option<PeerSock>,
    pub(crate) cookie: u32,
    pub(crate) auth: Auth,
    pub(crate) now: Instant,
    pub(crate) now_unix: u64,
    /// Initial stamp `prev` for a new entry.
    pub(crate) stamp_prev: u64,
}

impl CommunityState {
    /// behaviour.md §9.4 with the improvements asked for: IP matching is
    /// skipped for 0.0.0.0 and an entry is re-keyed only on success.
    /// `spoofing_protection` false (`-M`) stores simple-id blocks as "none".
    pub(crate) fn update_edge(
        &mut self,
        r: &Registration,
        spoofing_protection: bool,
        seq: &mut u64,
    ) -> Result<EdgeChange, RefuseReason> {
        let scheme_fits = (r.auth.scheme() == Auth::SCHEME_USER_PASSWORD) == self.users;
        if let Some(stored) = self.edges.get(&r.mac).map(|e| e.auth) {
            let ok = self.auth_ok(&stored, &r.auth);
            let Some(e) = self.edges.get_mut(&r.mac) else {
                return Err(RefuseReason::MacInUse);
            };
            if !ok {
                // Another token for a registered MAC is refused (spoofing protection), except
                // from the very socket the edge is registered at: that is the same edge
                // restarted (killed without UNREGISTER_SUPER) with a fresh random token, which
                // C would lock out until the purge (60-90 s). Relayed traffic keeps going to
                // that socket, so whoever can forge its exact source address gains nothing.
                if e.sock != r.sock || !scheme_fits {
                    return Err(RefuseReason::MacInUse);
                }
                e.auth = r.auth;
                e.desc = r.desc;
                e.preferred = r.preferred;
                e.cookie = r.cookie;
                e.last_seen = r.now;
                e.last_seen_unix = r.now_unix;
                self.set_dev_addr(&r.mac, r.dev_addr);
                return Ok(EdgeChange::Restarted);
            }
            let moved = e.sock != r.sock;
            if moved {
                e.desc = r.desc;
                e.sock = r.sock;
                e.preferred = r.preferred;
            }
            e.cookie = r.cookie;
            e.last_seen = r.now;
            e.last_seen_unix = r.now_unix;
            if moved {
                self.set_dev_addr(&r.mac, r.dev_addr);
            }
            return Ok(if moved {
                EdgeChange::Moved
            } else {
                EdgeChange::Refreshed
            });
        }
        if let Some(old_mac) = self.mac_by_ip(r.dev_addr.ip) {
            let Some(old) = self.edges.get(&old_mac) else {
                return Err(RefuseReason::IpInUse);
            };
            if !self.auth_ok(&old.auth, &r.auth) {
                return Err(RefuseReason::IpInUse);
            }
            let Some(mut e) = self.remove_edge(&old_mac) else {
                return Err(RefuseReason::IpInUse);
            };
            e.mac = r.mac;
            e.dev_addr = r.dev_addr;
            e.desc = r.desc;
            e.sock = r.sock;
            e.preferred = r.preferred;
            e.cookie = r.cookie;
            e.last_seen = r.now;
            e.last_seen_unix = r.now_unix;
            self.insert_edge(e);
            return Ok(EdgeChange::Rekeyed(old_mac));
        }
        // Unknown edge: the scheme must fit the community.
        if !scheme_fits {
            return Err(RefuseReason::AuthSchemeMismatch);
        }
        let auth = if !spoofing_protection && r.auth.scheme() == Auth::SCHEME_SIMPLE_ID {
            Auth::NONE
        } else {
            r.auth
        };
        *seq += 1;
        self.insert_edge(Edge {
            mac: r.mac,
            dev_addr: r.dev_addr,
            desc: r.desc,
            sock: r.sock,
            preferred: r.preferred,
            cookie: r.cookie,
            auth,
            last_seen: r.now,
            last_seen_unix: r.now_unix,
            stamp_prev: r.stamp_prev,
            seq: *seq,
        });
        Ok(EdgeChange::Added)
    }

    /// The checks of [`update_edge`](Self::update_edge) without changing
    /// anything: an edge's registration forwarded by another supernode
    /// (behaviour.md §9.3, "check only, never add").
    pub(crate) fn check_edge(&self, r: &Registration) -> Result<(), RefuseReason> {
        let scheme_fits = (r.auth.scheme() == Auth::SCHEME_USER_PASSWORD) == self.users;
        if let Some(e) = self.edges.get(&r.mac) {
            if self.auth_ok(&e.auth, &r.auth) || (e.sock == r.sock && scheme_fits) {
                return Ok(());
            }
            return Err(RefuseReason::MacInUse);
        }
        if let Some(old) = self
            .mac_by_ip(r.dev_addr.ip)
            .and_then(|m| self.edges.get(&m))
        {
            return if self.auth_ok(&old.auth, &r.auth) {
                Ok(())
            } else {
                Err(RefuseReason::IpInUse)
            };
        }
        if scheme_fits {
            Ok(())
        } else {
            Err(RefuseReason::AuthSchemeMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_residue_and_keeps_19_bytes() {
        let mut f = [0u8; 20];
        f[..5].copy_from_slice(b"rocks");
        f[6] = b'x';
        assert_eq!(community_key(&f), Community::new("rocks").unwrap());
        let all = [b'a'; 20];
        assert_eq!(community_key(&all).name_bytes(), &[b'a'; 19]);
        assert_eq!(community_key(&[0u8; 20]).name_bytes(), b"");
    }
}
