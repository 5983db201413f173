//! The keyed hash of the edge's MAC-keyed tables.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use n2n_proto::types::Mac;

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
