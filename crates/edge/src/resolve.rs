//! Supernode name resolution (behaviour.md §3).
//!
//! `-l` entries that are socket addresses (`198.18.0.254:7654`,
//! `[2001:db8::1]:7654`) are used as they are by the core. Names are
//! resolved here: once at start (blocking, like C), then again every
//! [`REFRESH`] (every [`RETRY`] while one failed, and right away when the
//! core abandons a supernode) by a background task; results are fed to the
//! core with `Edge::set_supernode_addr`. IPv4 results are preferred (C n2n
//! resolves IPv4 only); IPv6 results are used when the main socket can
//! reach IPv6.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Re-resolution period when every name resolved.
pub const REFRESH: Duration = Duration::from_secs(300);
/// Re-resolution period while a name does not resolve.
pub const RETRY: Duration = Duration::from_secs(30);
/// Bound of one asynchronous lookup.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `-l` entry that needs the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupernodeName {
    /// Position in the `-l` list (the core's index).
    pub index: usize,
    /// The entry as given (`host:port`).
    pub text: String,
}

/// The `-l` entries that are names (not socket addresses).
pub fn names(supernodes: &[String]) -> Vec<SupernodeName> {
    supernodes
        .iter()
        .enumerate()
        .filter(|(_, s)| s.parse::<SocketAddr>().is_err())
        .map(|(index, s)| SupernodeName {
            index,
            text: s.clone(),
        })
        .collect()
}

/// Pick one address: the first IPv4 one, else (if allowed) the first IPv6.
pub fn pick(addrs: impl IntoIterator<Item = SocketAddr>, allow_v6: bool) -> Option<SocketAddr> {
    let mut v6 = None;
    for a in addrs {
        match a {
            SocketAddr::V4(_) => return Some(a),
            SocketAddr::V6(_) if allow_v6 && v6.is_none() => v6 = Some(a),
            SocketAddr::V6(_) => {}
        }
    }
    v6
}

fn no_usable(text: &str, allow_v6: bool) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        if allow_v6 {
            format!("{text}: no address")
        } else {
            format!("{text}: no IPv4 address (the main socket is IPv4 only)")
        },
    )
}

/// Resolve `host:port` now (blocking `getaddrinfo`).
pub fn resolve_blocking(text: &str, allow_v6: bool) -> io::Result<SocketAddr> {
    pick(text.to_socket_addrs()?, allow_v6).ok_or_else(|| no_usable(text, allow_v6))
}

/// Resolve `host:port` without blocking the runtime (bounded by
/// [`LOOKUP_TIMEOUT`]).
pub async fn resolve(text: &str, allow_v6: bool) -> io::Result<SocketAddr> {
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host(text))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{text}: timed out")))??;
    pick(found, allow_v6).ok_or_else(|| no_usable(text, allow_v6))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_names_need_resolving() {
        let l: Vec<String> = [
            "198.18.0.1:7654",
            "sn.example:7654",
            "[::1]:1",
            "localhost:9",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let n = names(&l);
        assert_eq!(
            n.iter().map(|n| n.index).collect::<Vec<_>>(),
            vec![1, 3],
            "{n:?}"
        );
    }

    #[test]
    fn prefers_ipv4() {
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        let v4: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert_eq!(pick([v6, v4], true), Some(v4));
        assert_eq!(pick([v6], true), Some(v6));
        assert_eq!(pick([v6], false), None);
        assert_eq!(pick([], true), None);
    }

    #[test]
    fn resolves_localhost_both_ways() {
        let a = resolve_blocking("localhost:7654", false).unwrap();
        assert!(a.is_ipv4() && a.port() == 7654, "{a}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let b = rt.block_on(resolve("localhost:7654", true)).unwrap();
        assert_eq!(b.port(), 7654);
        assert!(resolve_blocking("no-such-host.invalid:1", true).is_err());
    }
}
