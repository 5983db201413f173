//! Supernode configuration (cli.md §2), filled by the `supernode` binary.

use std::path::PathBuf;

use n2n_proto::he;
use n2n_proto::types::{Community, Mac};

use super::autoip::AutoIpPool;
use super::community_list::CommunityList;
use super::federation::{DEFAULT_MAX_FEDERATION, FederationPeer};
use crate::mgmt::Password;

/// Default PONG version string.
pub const DEFAULT_VERSION: &str = "3.1.1";
/// Default verbosity (C's TRACE_NORMAL).
pub const DEFAULT_VERBOSITY: u8 = 2;

/// Default `--max-edges-per-community`: a community is one broadcast
/// domain and every broadcast is unicast to each of its edges, so beyond a
/// few thousand edges ARP alone saturates the supernode; 4096 is sixteen
/// times the default auto-IP subnet (/24).
pub const DEFAULT_MAX_EDGES_PER_COMMUNITY: usize = 4096;
/// Default `--max-communities`: far above what a site runs, still cheap
/// (a dynamic community costs a few hundred bytes; creating one probes the
/// auto-IP subnets of the others).
pub const DEFAULT_MAX_COMMUNITIES: usize = 1024;
/// Default `--max-edges` (all communities): about 300 bytes each, so a
/// full table is some 20 MiB and the supernode stays well under 64 MiB
/// whatever a flood of registrations sends.
pub const DEFAULT_MAX_EDGES: usize = 65_536;

/// Supernode configuration.
#[derive(Debug, Clone)]
pub struct SupernodeConfig {
    /// The supernode's MAC (`-m`).
    pub mac: Mac,
    /// MAC/IP spoofing protection for simple-id edges (`-M` turns it off).
    pub spoofing_protection: bool,
    /// Version string sent in PONGs (`-V`, at most 19 bytes are sent).
    pub version: String,
    /// Community list (`-c`); `None` accepts every community.
    pub communities: Option<CommunityList>,
    /// The `-c` path, if any: `reload_communities` answers `nofile` without.
    pub community_file: Option<PathBuf>,
    /// Auto-IP pool (`-a`).
    pub auto_ip: AutoIpPool,
    /// Management password (`--management-password`).
    pub mgmt_password: Password,
    /// Federation name field (`*Federation`, or see [`federation_field`]).
    pub federation: Community,
    /// The 20-byte field the federation's header keys are derived from
    /// (crypto.md §6 quirk 1: `*Federation`, or `*` + `$N2N_FEDERATION`,
    /// never `-F`).
    pub federation_keys: [u8; 20],
    /// Other supernodes of the federation (`-l`), resolved by the driver.
    pub supernodes: Vec<FederationPeer>,
    /// Cap on federation members (configured plus learnt).
    pub max_federation: usize,
    /// Initial verbosity (C trace level).
    pub verbosity: u8,
    /// Edges per community (`--max-edges-per-community`); a new edge
    /// beyond it is dropped ([`DropReason::CommunityFull`](super::DropReason)).
    pub max_edges_per_community: usize,
    /// Edges in all (`--max-edges`; [`DropReason::EdgeLimit`](super::DropReason)).
    pub max_edges: usize,
    /// Communities, fixed ones included (`--max-communities`); a dynamic
    /// one beyond it is not created
    /// ([`DropReason::CommunityLimit`](super::DropReason)).
    pub max_communities: usize,
}

impl SupernodeConfig {
    /// Defaults as C's: spoofing protection on, version "3.1.1", open,
    /// default pool, password `n2n`, federation `*Federation`; plus the
    /// caps of this implementation (C has none), at their defaults.
    pub fn new(mac: Mac) -> Self {
        Self {
            mac,
            spoofing_protection: true,
            version: DEFAULT_VERSION.to_owned(),
            communities: None,
            community_file: None,
            auto_ip: AutoIpPool::default(),
            mgmt_password: Password::default(),
            federation: Community::from_field(he::DEFAULT_FEDERATION_FIELD),
            federation_keys: he::DEFAULT_FEDERATION_FIELD,
            supernodes: Vec::new(),
            max_federation: DEFAULT_MAX_FEDERATION,
            verbosity: DEFAULT_VERBOSITY,
            max_edges_per_community: DEFAULT_MAX_EDGES_PER_COMMUNITY,
            max_edges: DEFAULT_MAX_EDGES,
            max_communities: DEFAULT_MAX_COMMUNITIES,
        }
    }
}

/// The federation name field C builds for `-F name` (crypto.md §6): `'*' +
/// name + NUL` written over `*Federation`, residue kept; at most 17
/// characters of `name` are used.
pub fn federation_field(name: &str) -> Community {
    federation_field_over(&he::DEFAULT_FEDERATION_FIELD, name)
}

/// [`federation_field`] written over `base` instead of `*Federation` (with
/// `N2N_FEDERATION` set, C writes `-F` over the field built from it).
pub fn federation_field_over(base: &[u8; 20], name: &str) -> Community {
    let mut f = *base;
    let n = name.len().min(17);
    f[0] = b'*';
    for (d, s) in f[1..].iter_mut().zip(&name.as_bytes()[..n]) {
        *d = *s;
    }
    if let Some(b) = f.get_mut(1 + n) {
        *b = 0;
    }
    Community::from_field(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_field_keeps_c_residue() {
        assert_eq!(
            federation_field("myfed").field(),
            b"*myfed\0tion\0\0\0\0\0\0\0\0\0"
        );
        assert_eq!(
            federation_field("rocksFed").field(),
            b"*rocksFed\0n\0\0\0\0\0\0\0\0\0"
        );
        assert_eq!(
            federation_field("Federation").field(),
            &he::DEFAULT_FEDERATION_FIELD
        );
        // At most 17 characters are kept; the field always has a NUL.
        let long = federation_field("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(long.name_bytes(), b"*abcdefghijklmnopq");
    }
}
