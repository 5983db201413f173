//! Hostile input for header decryption: random bytes, every truncation,
//! every bit flip. Nothing may panic, nothing may be accepted, and a failed
//! attempt must leave the buffer as it was. Plus encrypt/decrypt round trips.
#![allow(clippy::unwrap_used)]

use n2n_proto::he::{self, CommunityHe, HeError, HeKeyKind, HeKeys};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn field(name: &[u8]) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..name.len()].copy_from_slice(name);
    f
}

/// xorshift64*: deterministic test bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn communities() -> Vec<CommunityHe> {
    let mut up = CommunityHe::new(field(b"rocks"));
    up.set_dynamic_key(&[0x5a; 16]);
    vec![
        CommunityHe::new(field(b"rocks")),
        CommunityHe::new(field(b"mynetwork")),
        up,
        CommunityHe::with_static_keys(
            field(b"*rocksFed\0n"),
            HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
        ),
    ]
}

/// A plain message of `len` bytes (≥ 24) in community `c`.
fn plain_msg(rng: &mut Rng, c: &CommunityHe, len: usize) -> Vec<u8> {
    let mut m = rng.bytes(len);
    m[0] = 3;
    m[1] = 2;
    m[4..24].copy_from_slice(c.name_field());
    m
}

#[test]
fn random_bytes_never_decrypt() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let cs = communities();
    let mut errors = [0usize; 4];
    for round in 0..4000 {
        let len = match round % 4 {
            0 => (rng.next() % 64) as usize,
            1 => (rng.next() % 200) as usize,
            2 => 1400 + (rng.next() % 100) as usize,
            _ => 24 + (rng.next() % 40) as usize,
        };
        let orig = rng.bytes(len);
        for c in &cs {
            let mut b = orig.clone();
            let e = c.decrypt(&mut b).unwrap_err();
            assert_eq!(b, orig);
            match e {
                HeError::TooShort => errors[0] += 1,
                HeError::BadMagic => errors[1] += 1,
                HeError::BadHeaderLen { .. } => errors[2] += 1,
                _ => errors[3] += 1,
            }
            let mut b = orig.clone();
            assert!(he::decrypt(&mut b, c.static_keys(), c.name_field()).is_err());
            assert!(he::decrypt_without_trailer(&mut b, c.static_keys(), c.name_field()).is_err());
            assert_eq!(b, orig);
        }
    }
    // The early checks are all exercised.
    assert!(errors[0] > 0 && errors[1] > 0, "{errors:?}");
}

/// Random bytes whose magic decrypts correctly (forged with the right key
/// stream) reach the header-length and checksum checks.
#[test]
fn forged_magic_reaches_checksum() {
    let mut rng = Rng(42);
    let c = CommunityHe::new(field(b"rocks"));
    let (mut bad_len, mut bad_sum) = (0, 0);
    for _ in 0..2000 {
        let len = 24 + (rng.next() % 100) as usize;
        let mut b = rng.bytes(len);
        // Encrypt a valid message, then replace everything but the first 20
        // bytes (IV + magic/length) with garbage of a random length.
        let mut m = plain_msg(&mut rng, &c, len);
        let h = 24 + (rng.next() as usize % (len - 23));
        c.encrypt(&mut m, h, rng.next(), [1, 2, 3, 4], HeKeyKind::Static)
            .unwrap();
        b[..20].copy_from_slice(&m[..20]);
        let cut = 20 + (rng.next() as usize % (len - 19));
        let b = &mut b[..cut];
        let orig = b.to_vec();
        match c.decrypt(b) {
            Err(HeError::BadHeaderLen { header_len, len }) => {
                assert!(header_len > len);
                bad_len += 1;
            }
            Err(HeError::ChecksumMismatch) => bad_sum += 1,
            Err(HeError::TooShort) => assert!(cut < 24),
            other => panic!("{other:?}"),
        }
        assert_eq!(b, &orig[..]);
    }
    assert!(bad_len > 100 && bad_sum > 100, "{bad_len} {bad_sum}");
}

#[test]
fn every_truncation_and_bit_flip_is_refused() {
    let mut rng = Rng(7);
    for c in communities() {
        for (len, h) in [
            (24, 24),
            (58, 38),
            (79, 79),
            (200, 46),
            (1400, 38),
            (1400, 54),
        ] {
            let m = plain_msg(&mut rng, &c, len);
            let mut enc = m.clone();
            c.encrypt(
                &mut enc,
                h,
                0x6a00_0000_0000_0010,
                [9, 8, 7, 6],
                HeKeyKind::Dynamic,
            )
            .unwrap();
            // Sanity: the untouched message decrypts.
            let mut b = enc.clone();
            let (k, d) = c.decrypt(&mut b).unwrap();
            assert_eq!(
                (k, d.header_len, d.len, b),
                (HeKeyKind::Dynamic, h, len, m.clone())
            );

            for cut in 0..len {
                let mut b = enc[..cut].to_vec();
                assert!(c.decrypt(&mut b).is_err(), "cut {cut} of {len}");
                assert_eq!(b, enc[..cut]);
            }
            // Extending by garbage is refused as well.
            let mut b = enc.clone();
            b.extend_from_slice(&[0; 3]);
            assert!(c.decrypt(&mut b).is_err());

            let positions: Vec<usize> = if len <= 200 {
                (0..len).collect()
            } else {
                (0..64).chain(len - 32..len).collect()
            };
            for i in positions {
                for bit in 0..8 {
                    let mut b = enc.clone();
                    b[i] ^= 1 << bit;
                    let orig = b.clone();
                    assert!(c.decrypt(&mut b).is_err(), "flip {i}.{bit} of {len}");
                    assert_eq!(b, orig);
                }
            }
        }
    }
}

#[test]
fn encrypt_rejects_bad_arguments_without_touching_the_buffer() {
    let keys = HeKeys::from_community_field(&field(b"rocks"));
    let name = field(b"rocks");
    for (len, h) in [
        (0, 24),
        (23, 23),
        (23, 24),
        (40, 23),
        (40, 0),
        (40, 41),
        (70_000, 65_536),
    ] {
        let orig = vec![0xab; len];
        let mut b = orig.clone();
        let e = he::encrypt(&mut b, h, 1, [0; 4], &keys, &name).unwrap_err();
        assert!(
            matches!(e, HeError::TooShort | HeError::BadHeaderLen { .. }),
            "{e:?}"
        );
        assert_eq!(b, orig);
    }
    // H = 65535 is the largest encodable header length.
    let mut b = vec![0u8; 70_000];
    he::encrypt(&mut b, 65_535, 1, [0; 4], &keys, &name).unwrap();
    let d = he::decrypt(&mut b, &keys, &name).unwrap();
    assert_eq!((d.header_len, d.stamp), (65_535, 1));
}

#[test]
fn userpw_try_order() {
    // In a user/password community REGISTER_SUPER is static-keyed with a
    // 16-byte trailer; everything else is dynamic-keyed, full length.
    let mut rng = Rng(99);
    let mut c = CommunityHe::new(field(b"rocks"));
    c.set_dynamic_key(&[7; 16]);
    assert!(c.has_dynamic_key());
    let m = plain_msg(&mut rng, &c, 100);

    let mut s = m.clone();
    c.encrypt(&mut s, 100, 5, [0; 4], HeKeyKind::Static)
        .unwrap();
    s.extend_from_slice(&[0xee; 16]);
    let wire = s.clone();
    let (k, d) = c.decrypt(&mut s).unwrap();
    assert_eq!((k, d.len, d.header_len), (HeKeyKind::Static, 100, 100));
    assert_eq!(s[..100], m[..]);
    assert_eq!(s[100..], wire[100..]);

    // Static keys without a trailer: refused (C only tries len − 16).
    let mut s = m.clone();
    c.encrypt(&mut s, 100, 5, [0; 4], HeKeyKind::Static)
        .unwrap();
    let w = s.clone();
    assert!(c.decrypt(&mut s).is_err());
    assert_eq!(s, w);

    let mut dyn_msg = m.clone();
    c.encrypt(&mut dyn_msg, 40, 6, [0; 4], HeKeyKind::Dynamic)
        .unwrap();
    let (k, d) = c.decrypt(&mut dyn_msg).unwrap();
    assert_eq!(
        (k, d.len, d.header_len, d.stamp),
        (HeKeyKind::Dynamic, 100, 40, 6)
    );

    c.clear_dynamic_key();
    assert!(!c.has_dynamic_key());
    let mut s = m.clone();
    c.encrypt(&mut s, 40, 6, [0; 4], HeKeyKind::Dynamic)
        .unwrap();
    let mut s2 = m.clone();
    c.encrypt(&mut s2, 40, 6, [0; 4], HeKeyKind::Static)
        .unwrap();
    assert_eq!(s, s2, "without D, dynamic = static");
}

proptest! {
    #![proptest_config(Config {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x6e32_6e32),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn round_trip(
        body in proptest::collection::vec(any::<u8>(), 24..1500),
        h_frac in 0.0f64..=1.0,
        stamp in any::<u64>(),
        rand4 in any::<[u8; 4]>(),
        name in proptest::collection::vec(1u8..=255, 0..=20),
    ) {
        let name20 = field(&name);
        let keys = HeKeys::from_community_field(&name20);
        let mut m = body.clone();
        m[4..24].copy_from_slice(&name20);
        let h = 24 + ((m.len() - 24) as f64 * h_frac) as usize;
        let mut b = m.clone();
        he::encrypt(&mut b, h, stamp, rand4, &keys, &name20).unwrap();
        prop_assert_eq!(&b[h..], &m[h..]);
        let d = he::decrypt(&mut b, &keys, &name20).unwrap();
        prop_assert_eq!(b, m);
        prop_assert_eq!((d.stamp, d.header_len, d.len, d.rand4), (stamp, h, body.len(), rand4));
    }
}
