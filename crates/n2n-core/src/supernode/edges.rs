//! Communities and their registered edges (behaviour.md §9.2, §9.4).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
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

/// Where a registered edge is reached: the UDP socket its registration came
/// from, or its TCP connection (`-S2`).
pub(crate) type EdgeSock = crate::output::Dest;

/// A registered edge (the edge table is [`CommunityState::edges`], keyed by
/// MAC, with an index by TAP address).
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
    /// PACKETs from this edge relayed (unicast, or one broadcast fan-out).
    pub(crate) relayed: u64,
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
    pub(crate) edges: EdgeTable,
    pub(crate) seq: u64,
}

/// The edges of one community: a map by MAC (iteration in MAC order, the
/// broadcast fan-out order) plus an index by TAP address, so that a
/// registration costs O(log n), not a scan (IP spoofing check, auto-IP host
/// choice).
///
/// The index is kept by [`insert`](Self::insert), [`remove`](Self::remove)
/// and [`retain`](Self::retain). A change of `dev_addr` through
/// [`get_mut`](Self::get_mut) must be followed by
/// [`reindex`](Self::reindex); a stale index entry is never believed
/// ([`mac_by_ip`](Self::mac_by_ip) checks it against the edge).
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeTable {
    by_mac: BTreeMap<Mac, Edge>,
    by_ip: HashMap<Ipv4Addr, Mac>,
}

impl EdgeTable {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn get(&self, mac: &Mac) -> Option<&Edge> {
        self.by_mac.get(mac)
    }

    pub(crate) fn get_mut(&mut self, mac: &Mac) -> Option<&mut Edge> {
        self.by_mac.get_mut(mac)
    }

    pub(crate) fn contains_key(&self, mac: &Mac) -> bool {
        self.by_mac.contains_key(mac)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Edge> + '_ {
        self.by_mac.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_mac.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }

    /// Insert (or replace) the edge `mac` and index its TAP address.
    pub(crate) fn insert(&mut self, mac: Mac, e: Edge) -> Option<Edge> {
        let ip = e.dev_addr.ip;
        let old = self.by_mac.insert(mac, e);
        if let Some(o) = &old {
            self.unindex(o.dev_addr.ip, mac);
        }
        self.index(ip, mac);
        old
    }

    pub(crate) fn remove(&mut self, mac: &Mac) -> Option<Edge> {
        let e = self.by_mac.remove(mac)?;
        self.unindex(e.dev_addr.ip, *mac);
        Some(e)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Mac, &mut Edge) -> bool) {
        let by_ip = &mut self.by_ip;
        self.by_mac.retain(|mac, e| {
            let k = keep(mac, e);
            if !k && by_ip.get(&e.dev_addr.ip) == Some(mac) {
                by_ip.remove(&e.dev_addr.ip);
            }
            k
        });
    }

    /// Re-index edge `mac` after its `dev_addr` changed from `old_ip`.
    pub(crate) fn reindex(&mut self, mac: Mac, old_ip: Ipv4Addr) {
        let Some(ip) = self.by_mac.get(&mac).map(|e| e.dev_addr.ip) else {
            return;
        };
        if ip != old_ip {
            self.unindex(old_ip, mac);
            self.index(ip, mac);
        }
    }

    fn index(&mut self, ip: Ipv4Addr, mac: Mac) {
        if !ip.is_unspecified() {
            self.by_ip.insert(ip, mac);
        }
    }

    fn unindex(&mut self, ip: Ipv4Addr, mac: Mac) {
        if self.by_ip.get(&ip) == Some(&mac) {
            self.by_ip.remove(&ip);
        }
    }

    /// The MAC of a registered edge using TAP address `ip` (never for
    /// 0.0.0.0). Two edges may share an address (a moved or restarted edge
    /// may take one without the IP check); the index holds the last one.
    pub(crate) fn mac_by_ip(&self, ip: Ipv4Addr) -> Option<Mac> {
        if ip.is_unspecified() {
            return None;
        }
        let mac = *self.by_ip.get(&ip)?;
        (self.by_mac.get(&mac)?.dev_addr.ip == ip).then_some(mac)
    }

    /// Is TAP address `ip` used by a registered edge (auto-IP host choice)?
    pub(crate) fn ip_in_use(&self, ip: Ipv4Addr) -> bool {
        self.mac_by_ip(ip).is_some()
    }
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
            let old_ip = e.dev_addr.ip;
            let res = refresh_known(e, r, ok, scheme_fits);
            self.edges.reindex(r.mac, old_ip);
            return res;
        }
        if let Some(old_mac) = self.edges.mac_by_ip(r.dev_addr.ip) {
            let Some(old) = self.edges.get(&old_mac) else {
                return Err(RefuseReason::IpInUse);
            };
            if !self.auth_ok(&old.auth, &r.auth) {
                return Err(RefuseReason::IpInUse);
            }
            let Some(mut e) = self.edges.remove(&old_mac) else {
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
            self.edges.insert(r.mac, e);
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
        self.edges.insert(
            r.mac,
            Edge {
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
                relayed: 0,
            },
        );
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
            .edges
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

/// A registration of a known MAC (`ok`: its auth block matches).
fn refresh_known(
    e: &mut Edge,
    r: &Registration,
    ok: bool,
    scheme_fits: bool,
) -> Result<EdgeChange, RefuseReason> {
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
        e.dev_addr = r.dev_addr;
        e.desc = r.desc;
        e.preferred = r.preferred;
        e.cookie = r.cookie;
        e.last_seen = r.now;
        e.last_seen_unix = r.now_unix;
        return Ok(EdgeChange::Restarted);
    }
    let moved = e.sock != r.sock;
    if moved {
        e.dev_addr = r.dev_addr;
        e.desc = r.desc;
        e.sock = r.sock;
        e.preferred = r.preferred;
    }
    e.cookie = r.cookie;
    e.last_seen = r.now;
    e.last_seen_unix = r.now_unix;
    Ok(if moved {
        EdgeChange::Moved
    } else {
        EdgeChange::Refreshed
    })
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
