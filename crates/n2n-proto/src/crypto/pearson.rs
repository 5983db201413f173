//! n2n's "Pearson" hash family (crypto.md §1.1).
//!
//! Despite the name this is not a table-driven Pearson hash: it is 1, 2 or 4
//! independent 64-bit lanes, each a chain of the splitmix64 finaliser.

const M1: u64 = 0xbf58_476d_1ce4_e5b9;
const M2: u64 = 0x94d0_49bb_1331_11eb;

#[inline(always)]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(M1);
    h ^= h >> 27;
    h = h.wrapping_mul(M2);
    h ^= h >> 31;
    h
}

#[inline(always)]
fn lanes<const N: usize>(data: &[u8]) -> [u64; N] {
    let mut h = [0u64; N];
    let absorb = |h: &mut [u64; N], v: u64| {
        for (i, lane) in h.iter_mut().enumerate() {
            *lane = mix((*lane ^ v).wrapping_sub(i as u64 + 1));
        }
    };
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        absorb(&mut h, u64::from_le_bytes(b));
    }
    for lane in h.iter_mut() {
        *lane = !*lane;
    }
    for &b in words.remainder() {
        absorb(&mut h, u64::from(b));
    }
    for lane in h.iter_mut() {
        *lane = !*lane;
    }
    absorb(&mut h, data.len() as u64);
    h
}

/// `pearson64`: lane 1 as an integer.
pub fn hash64(data: &[u8]) -> u64 {
    lanes::<1>(data)[0]
}

/// `pearson32`: the low 32 bits of [`hash64`].
pub fn hash32(data: &[u8]) -> u32 {
    hash64(data) as u32
}

/// `pearson16`: the low 16 bits of [`hash64`].
pub fn hash16(data: &[u8]) -> u16 {
    hash64(data) as u16
}

/// `pearson128` = `be64(h2) || be64(h1)`.
pub fn hash128(data: &[u8]) -> [u8; 16] {
    let h = lanes::<2>(data);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&h[1].to_be_bytes());
    out[8..].copy_from_slice(&h[0].to_be_bytes());
    out
}

/// `pearson256` = `be64(h4) || be64(h3) || be64(h2) || be64(h1)`.
pub fn hash256(data: &[u8]) -> [u8; 32] {
    let h = lanes::<4>(data);
    let mut out = [0u8; 32];
    for (i, lane) in h.iter().rev().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&lane.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern512() -> Vec<u8> {
        (0..512).map(|i| (i % 16) as u8).collect()
    }

    // test-vectors.md §1
    const KAT: &[(&[u8], &str, &str, &str)] = &[
        (
            b"",
            "b4d055fcf2cbbd7b",
            "da26e52fa3730902b4d055fcf2cbbd7b",
            "6c3e53de84464c171530a8f4452503cfda26e52fa3730902b4d055fcf2cbbd7b",
        ),
        (
            b"a",
            "42a5b4d83042939e",
            "a4ff6ac309b06bf442a5b4d83042939e",
            "0548c4415b83b80085becc9f5b34dc5fa4ff6ac309b06bf442a5b4d83042939e",
        ),
        (
            b"abc",
            "582b9df2877cecc8",
            "ddd72677a34de940582b9df2877cecc8",
            "1e217c823e460b8a3250f472071865d5ddd72677a34de940582b9df2877cecc8",
        ),
        (
            b"12345678",
            "b5b6b611f234c03e",
            "ea2319c738db46f4b5b6b611f234c03e",
            "5773fa4e7970030a946f0c2b19bfcf3bea2319c738db46f4b5b6b611f234c03e",
        ),
        (
            b"123456789",
            "b26e2e67422a71cf",
            "2f9f283c14ea33b3b26e2e67422a71cf",
            "3e1cb2c41cb4caecb3012f58e6fb353b2f9f283c14ea33b3b26e2e67422a71cf",
        ),
        (
            b"n2n",
            "0c3cc37678291925",
            "3b34895bdd72c85f0c3cc37678291925",
            "d5833e595a43c1d1a672a4f1396e20cc3b34895bdd72c85f0c3cc37678291925",
        ),
    ];

    #[test]
    fn known_answers() {
        for (input, h64, h128, h256) in KAT {
            assert_eq!(format!("{:016x}", hash64(input)), *h64);
            assert_eq!(hex::encode(hash128(input)), *h128);
            assert_eq!(hex::encode(hash256(input)), *h256);
        }
        let p = pattern512();
        assert_eq!(format!("{:016x}", hash64(&p)), "b2d98fa82ea108be");
        assert_eq!(hex::encode(hash128(&p)), "b53dcfb3a7ed1856b2d98fa82ea108be");
        assert_eq!(
            hex::encode(hash256(&p)),
            "40095cca286bfb934c4af7c079a8045ab53dcfb3a7ed1856b2d98fa82ea108be"
        );
        assert_eq!(hash32(&p), 0x2ea1_08be);
        assert_eq!(hash16(&p), 0x08be);
    }

    #[test]
    fn header_keys_of_communities() {
        // test-vectors.md §1, header keys table
        let cases = [
            (
                "mynetwork",
                "f8c756a21311eba6238837933bff2494",
                "535d296b367fedacb02007b9e1e40098",
            ),
            (
                "n2ntest",
                "bbd40f2f8c7de53a7bfc30937b1d3e81",
                "54c3366998dfeb060926be4115b02b03",
            ),
            (
                "rocks",
                "34a1f9c139f8eb8072cca4d3e2c4b9bf",
                "e95e00fb431831a29f63926ee1dfb31a",
            ),
            (
                "*Federation",
                "b3473ec4c746111bc4ed05335f70d5f0",
                "de2da565d45aea249b5fcc8f42f8128a",
            ),
        ];
        for (name, khdr, kiv) in cases {
            let mut f = [0u8; 20];
            f[..name.len()].copy_from_slice(name.as_bytes());
            let k = hash128(&f);
            assert_eq!(hex::encode(k), khdr);
            assert_eq!(hex::encode(hash128(&k)), kiv);
        }
    }
}
