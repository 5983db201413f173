//! Round trips of every transform for every frame size 0..=2048, error
//! cases, the ChaCha20 counter wrap, and the fast implementations against
//! reference ones (Twofish vs the `twofish` crate, bulk Speck-CTR vs
//! `Speck128::ctr_xor`).
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::crypto::speck::Speck128;
use n2n_proto::transform::{self, NonceSeed, Transform, TransformError, TransformId};

const COMMUNITY: [u8; 20] = *b"rocks\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
const SEED: NonceSeed = NonceSeed {
    prefix: 0x0102_0304,
    start: 1_700_000_000_000_000,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.next() as u8)
    }
    fn vec(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn roundtrip_every_transform_every_size() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let aad = [7u8; 35];
    for id in TransformId::ALL {
        let mut t = Transform::new(id, b"s3cret", &COMMUNITY, SEED).unwrap();
        let mut payload = vec![0u8; 2048 + 64];
        let mut back = vec![0u8; 2048 + 64];
        for len in 0..=2048 {
            let frame = rng.vec(len);
            let n = t.encrypt(&frame, rng.bytes(), &aad, &mut payload).unwrap();
            assert_eq!(n, len + t.overhead(), "{id} {len}");
            if id != TransformId::Null && len >= 16 {
                assert_ne!(
                    &payload[n - 16..n],
                    &frame[len - 16..],
                    "{id} {len}: not encrypted"
                );
            }
            let d = t.decrypt(&payload[..n], &aad, &mut back).unwrap();
            assert_eq!(d.len, len);
            assert_eq!(&back[..len], &frame[..], "{id} {len}");
            assert_eq!(d.nonce.is_some(), id.is_aead());
        }
    }
}

#[test]
fn buffer_and_length_errors() {
    for id in TransformId::ALL {
        let mut t = Transform::new(id, b"k", &COMMUNITY, SEED).unwrap();
        let frame = [1u8; 100];
        let mut small = [0u8; 100];
        if id != TransformId::Null {
            assert_eq!(
                t.encrypt(&frame, [0; 16], &[], &mut small),
                Err(TransformError::OutputTooSmall {
                    need: 100 + t.overhead(),
                    have: 100
                }),
                "{id}"
            );
        }
        let mut out = [0u8; 200];
        let n = t.encrypt(&frame, [0; 16], &[], &mut out).unwrap();
        let mut tiny = [0u8; 10];
        assert!(matches!(
            t.decrypt(&out[..n], &[], &mut tiny),
            Err(TransformError::OutputTooSmall { .. })
        ));
        if t.overhead() > 0 {
            let short = &out[..t.overhead() - 1];
            assert_eq!(
                t.decrypt(short, &[], &mut [0u8; 64]),
                Err(TransformError::PayloadTooShort {
                    len: t.overhead() - 1,
                    min: t.overhead()
                }),
                "{id}"
            );
        }
    }
}

/// RFC 8439 ChaCha20 block function, for the reference keystream.
fn chacha_block(key: &[u8; 32], counter: u32, nonce: &[u8; 12]) -> [u8; 64] {
    fn qr(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(16);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(12);
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(8);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(7);
    }
    let w = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut s = [0u32; 16];
    s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        s[4 + i] = w(&key[4 * i..]);
    }
    s[12] = counter;
    for i in 0..3 {
        s[13 + i] = w(&nonce[4 * i..]);
    }
    let mut x = s;
    for _ in 0..10 {
        qr(&mut x, 0, 4, 8, 12);
        qr(&mut x, 1, 5, 9, 13);
        qr(&mut x, 2, 6, 10, 14);
        qr(&mut x, 3, 7, 11, 15);
        qr(&mut x, 0, 5, 10, 15);
        qr(&mut x, 1, 6, 11, 12);
        qr(&mut x, 2, 7, 8, 13);
        qr(&mut x, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for i in 0..16 {
        out[4 * i..4 * i + 4].copy_from_slice(&x[i].wrapping_add(s[i]).to_le_bytes());
    }
    out
}

#[test]
fn reference_chacha_block_is_rfc8439() {
    // RFC 8439 §2.3.2.
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let nonce = hex::decode("000000090000004a00000000")
        .unwrap()
        .try_into()
        .unwrap();
    let b = chacha_block(&key, 1, &nonce);
    assert_eq!(hex::encode(&b[..16]), "10f1e7e4d13b5915500fdd1fa32071c4");
}

#[test]
fn chacha20_counter_wrap() {
    let key = n2n_proto::crypto::pearson::hash256(b"s3cret");
    let mut t = Transform::new(TransformId::ChaCha20, b"s3cret", &COMMUNITY, SEED).unwrap();
    let mut rng = Rng(42);
    for ctr in [
        0xffff_ffffu32,
        0xffff_fffe,
        0xffff_ffe0,
        0xffff_ffe1,
        0x8000_0000,
        0,
    ] {
        for len in [1usize, 63, 64, 65, 200, 1400, 2048] {
            let mut iv: [u8; 16] = rng.bytes();
            iv[..4].copy_from_slice(&ctr.to_le_bytes());
            let frame = rng.vec(len);
            let mut payload = vec![0u8; len + 16];
            let n = t.encrypt(&frame, iv, &[], &mut payload).unwrap();
            assert_eq!(&payload[..16], &iv);
            // Reference: block j uses counter ctr + j mod 2^32, same nonce.
            let nonce: [u8; 12] = iv[4..].try_into().unwrap();
            for (j, chunk) in payload[16..n].chunks(64).enumerate() {
                let ks = chacha_block(&key, ctr.wrapping_add(j as u32), &nonce);
                for (k, (&c, &p)) in chunk.iter().zip(&frame[64 * j..]).enumerate() {
                    assert_eq!(c ^ p, ks[k], "ctr {ctr:#x} len {len} block {j}");
                }
            }
            let mut back = vec![0u8; len];
            assert_eq!(t.decrypt(&payload[..n], &[], &mut back).unwrap().len, len);
            assert_eq!(back, frame);
        }
    }
}

#[test]
fn twofish_matches_reference_crate() {
    use twofish::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
    let mut rng = Rng(7);
    for _ in 0..300 {
        let key: [u8; 32] = rng.bytes();
        let ours = transform::twofish::Twofish::new(&key);
        let reference = twofish::Twofish::new_from_slice(&key).unwrap();
        for _ in 0..10 {
            let block: [u8; 16] = rng.bytes();
            let mut a = block;
            ours.encrypt_block(&mut a);
            let mut b = block;
            reference.encrypt_block((&mut b).into());
            assert_eq!(a, b);
            ours.decrypt_block(&mut a);
            assert_eq!(a, block);
            let mut c = block;
            reference.decrypt_block((&mut c).into());
            let mut d = block;
            ours.decrypt_block(&mut d);
            assert_eq!(c, d);
        }
    }
}

#[test]
fn bulk_speck_ctr_matches_reference() {
    let mut rng = Rng(11);
    for round in 0..200 {
        let key = Speck128::new_256(&rng.bytes());
        let mut iv: [u8; 16] = rng.bytes();
        if round % 3 == 0 {
            // Low half about to wrap (crypto.md §1.2: no carry into the high half).
            iv[..8].copy_from_slice(&(u64::MAX - (round as u64 % 20)).to_le_bytes());
        }
        let len = (rng.next() % 2100) as usize;
        let data = rng.vec(len);
        let mut a = data.clone();
        transform::speck::ctr_xor(&key, &iv, &mut a);
        let mut b = data.clone();
        key.ctr_xor(&iv, &mut b);
        assert_eq!(a, b, "round {round} len {len}");
        let all = transform::speck::ctr_xor_all_backends(&key, &iv, &data);
        assert!(all.iter().any(|(n, _)| *n == transform::speck::backend()));
        for (name, out) in all {
            assert_eq!(out, b, "{name}: round {round} len {len}");
        }
    }
    eprintln!("speck backend: {}", transform::speck::backend());
}

#[test]
fn wrong_key_garbles_unauthenticated_transforms() {
    for id in [
        TransformId::Twofish,
        TransformId::Aes,
        TransformId::ChaCha20,
        TransformId::Speck,
    ] {
        let mut a = Transform::new(id, b"right", &COMMUNITY, SEED).unwrap();
        let b = Transform::new(id, b"wrong", &COMMUNITY, SEED).unwrap();
        let frame = [0x55u8; 300];
        let mut p = [0u8; 400];
        let n = a.encrypt(&frame, [9; 16], &[], &mut p).unwrap();
        let mut out = [0u8; 400];
        let d = b.decrypt(&p[..n], &[], &mut out).unwrap();
        assert_ne!(&out[..d.len], &frame[..], "{id}");
    }
}

/// `encrypt_many` gives the bytes `encrypt` gives for each job: AES with
/// all three key sizes (the interleaved chains, groups of four and the
/// rest), Twofish, ChaCha20 and Speck (one by one), batches of 1..=9 with
/// mixed frame lengths (below one block, whole blocks, stolen tails) and a
/// too-small output among them.
#[test]
fn encrypt_many_equals_encrypt_of_each() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // -k lengths ≤ 22, 23..=32, ≥ 33: AES-128, -192, -256.
    let keys: [&[u8]; 3] = [
        b"s3cret",
        b"a-key-of-twenty-six-bytes!",
        b"a-key-that-is-longer-than-33-bytes!",
    ];
    let mut cases = Vec::new();
    for k in keys {
        cases.push((TransformId::Aes, k));
    }
    for id in [
        TransformId::Twofish,
        TransformId::ChaCha20,
        TransformId::Speck,
    ] {
        cases.push((id, keys[0]));
    }
    for (id, key) in cases {
        let mut one = Transform::new(id, key, &COMMUNITY, SEED).unwrap();
        let mut many = Transform::new(id, key, &COMMUNITY, SEED).unwrap();
        assert_eq!(many.encrypts_in_batches(), id == TransformId::Aes);
        for n in 1..=9usize {
            for round in 0..4 {
                let frames: Vec<Vec<u8>> = (0..n)
                    .map(|i| {
                        let len = match (i + round) % 5 {
                            0 => 1400,
                            1 => 1376,
                            2 => (rng.next() % 1500) as usize,
                            3 => (rng.next() % 15) as usize,
                            _ => 64,
                        };
                        rng.vec(len)
                    })
                    .collect();
                let randoms: Vec<[u8; 16]> = (0..n).map(|_| rng.bytes()).collect();
                // Job 1 of a batch of ≥ 3 gets an output that is too small.
                let small = |i: usize| n >= 3 && i == 1;
                let mut want = Vec::new();
                for (i, (f, r)) in frames.iter().zip(&randoms).enumerate() {
                    let mut out = vec![0u8; if small(i) { f.len() } else { f.len() + 32 }];
                    let got = one.encrypt(f, *r, &[], &mut out);
                    want.push(got.map(|l| out[..l].to_vec()));
                }
                let mut outs: Vec<Vec<u8>> = frames
                    .iter()
                    .enumerate()
                    .map(|(i, f)| vec![0u8; if small(i) { f.len() } else { f.len() + 32 }])
                    .collect();
                let mut jobs: Vec<(&[u8; 16], &[u8], &mut [u8])> = randoms
                    .iter()
                    .zip(&frames)
                    .zip(outs.iter_mut())
                    .map(|((r, f), o)| (r, &f[..], &mut o[..]))
                    .collect();
                let mut lens = vec![Ok(0); n];
                many.encrypt_many(&mut jobs, &mut lens);
                drop(jobs);
                for (i, (l, w)) in lens.iter().zip(&want).enumerate() {
                    let got = (*l).map(|l| outs[i][..l].to_vec());
                    assert_eq!(
                        &got,
                        w,
                        "{id} key {} n {n} round {round} job {i}",
                        key.len()
                    );
                }
            }
        }
    }
}
