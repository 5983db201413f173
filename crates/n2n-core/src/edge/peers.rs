//! The edge's peer tables (behaviour.md §5.1) and supernode list (§4).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::Instant;

use n2n_proto::types::{DevAddr, DevDesc, Mac};
use n2n_proto::wire::VERSION_FIELD_LEN;

/// One pending or known P2P peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub sock: Option<SocketAddr>,
    pub last_seen: Instant,
    /// Last time something arrived directly (known peers; `None` = never).
    pub last_p2p: Option<Instant>,
    pub last_sent_query: Option<Instant>,
    pub last_cookie: u32,
    pub dev_addr: DevAddr,
    pub desc: DevDesc,
    pub local: bool,
    /// Header-encryption `prev` stamp.
    pub he_prev: u64,
}

impl Peer {
    pub fn new(sock: Option<SocketAddr>, now: Instant, he_prev: u64) -> Self {
        Self {
            sock,
            last_seen: now,
            last_p2p: None,
            last_sent_query: None,
            last_cookie: 0,
            dev_addr: DevAddr::UNSPECIFIED,
            desc: DevDesc::EMPTY,
            local: false,
            he_prev,
        }
    }
}

/// Hash state of the MAC-keyed tables: a per-edge secret key (from the
/// edge's RNG seed), one folded 64×64→128 multiply per 8 input bytes and
/// one to finish.
///
/// SipHash (`RandomState`) cost about a third of the whole per-packet path
/// with the null transform (3–5 lookups per PACKET); this hashes a MAC in a
/// few cycles while the secret key still keeps table layouts unpredictable
/// to peers choosing MACs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MacHashState {
    k0: u64,
    k1: u64,
}

impl MacHashState {
    pub fn new(key: [u64; 2]) -> Self {
        Self {
            k0: key[0],
            // Large and odd whatever the key: the product's high half must
            // be full for the folded result to use all of its bits.
            k1: (key[1] ^ 0x9e37_79b9_7f4a_7c15) | (1 << 63) | 1,
        }
    }
}

impl BuildHasher for MacHashState {
    type Hasher = MacHasher;

    fn build_hasher(&self) -> MacHasher {
        MacHasher {
            h: self.k0,
            k1: self.k1,
        }
    }
}

/// The hasher of [`MacHashState`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MacHasher {
    h: u64,
    k1: u64,
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl Hasher for MacHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            if let Some(d) = w.get_mut(..c.len()) {
                d.copy_from_slice(c);
            }
            self.h = fold_mul(self.h ^ u64::from_le_bytes(w), self.k1);
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        // Slice length prefixes (always 6 for a MAC): no multiply needed.
        self.h = self.h.rotate_left(23) ^ n as u64;
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A second fold: the low bits of one product depend only on the
        // low input bits, and MACs differ in their last bytes.
        fold_mul(self.h, 0x2d35_8dcc_aa6c_78a5)
    }
}

/// A MAC-keyed map with the fast keyed hash.
pub(crate) type MacMap<V> = HashMap<Mac, V, MacHashState>;

/// A MAC-keyed peer table.
pub(crate) type PeerTable = MacMap<Peer>;

/// The MAC of the entry whose socket is `sock`, if any.
pub(crate) fn find_by_sock(t: &PeerTable, sock: SocketAddr) -> Option<Mac> {
    t.iter()
        .find(|(_, p)| p.sock == Some(sock))
        .map(|(m, _)| *m)
}

/// Criterion values (behaviour.md §4.2): smaller is better.
pub(crate) const CRIT_GOOD: u64 = (1 << 63) - 3;
pub(crate) const CRIT_DEFAULT: u64 = (1 << 63) - 2;
pub(crate) const CRIT_BAD: u64 = (1 << 63) - 1;

/// One supernode the edge knows (from `-l` or learnt from an ACK list).
#[derive(Debug, Clone)]
pub(crate) struct Supernode {
    /// `-l` text (None for learnt supernodes).
    pub name: Option<String>,
    pub addr: Option<SocketAddr>,
    pub mac: Mac,
    /// Learnt from an ACK list (shown as purgeable; never purged by edges).
    pub purgeable: bool,
    pub criterion: u64,
    /// Last PONG.
    pub last_seen: Option<Instant>,
    pub uptime: u32,
    pub version: [u8; VERSION_FIELD_LEN],
    pub he_prev: u64,
    pub ping_sent: Option<Instant>,
}

impl Supernode {
    pub fn new(
        name: Option<String>,
        addr: Option<SocketAddr>,
        mac: Mac,
        purgeable: bool,
        he_prev: u64,
    ) -> Self {
        Self {
            name,
            addr,
            mac,
            purgeable,
            criterion: CRIT_DEFAULT,
            last_seen: None,
            uptime: 0,
            version: [0; VERSION_FIELD_LEN],
            he_prev,
            ping_sent: None,
        }
    }

    pub fn version_str(&self) -> String {
        let end = self
            .version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(VERSION_FIELD_LEN);
        String::from_utf8_lossy(self.version.get(..end).unwrap_or(&[])).into_owned()
    }
}

/// A host learnt behind another edge (bridging, behaviour.md §6.3).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BridgedHost {
    pub edge: Mac,
    pub last_seen: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn h(s: &MacHashState, m: Mac) -> u64 {
        s.hash_one(m)
    }

    #[test]
    fn mac_hash_is_keyed_and_spreads_sequential_macs() {
        let a = MacHashState::new([1, 2]);
        let b = MacHashState::new([1, 4]);
        let macs: Vec<Mac> = (0..4096u32)
            .map(|i| {
                let x = i.to_be_bytes();
                Mac([2, 0, x[0], x[1], x[2], x[3]])
            })
            .collect();
        // No full collisions, and the 7-bit tags and low bucket bits of a
        // 4096-entry table are all used.
        let full: HashSet<u64> = macs.iter().map(|&m| h(&a, m)).collect();
        assert_eq!(full.len(), macs.len());
        let tags: HashSet<u64> = macs.iter().map(|&m| h(&a, m) >> 57).collect();
        assert_eq!(tags.len(), 128);
        let low: HashSet<u64> = macs.iter().map(|&m| h(&a, m) & 0xfff).collect();
        assert!(low.len() > 2400, "{} low-bit buckets", low.len());
        // Another key, other hashes.
        let same = macs.iter().filter(|&&m| h(&a, m) == h(&b, m)).count();
        assert_eq!(same, 0);
        // Deterministic for one key.
        assert_eq!(h(&a, macs[7]), h(&MacHashState::new([1, 2]), macs[7]));
    }
}
