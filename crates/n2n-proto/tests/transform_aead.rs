//! Authenticated transforms 6 (ChaCha20-Poly1305) and 7 (AES-256-GCM):
//! documented key derivation and layout checked against the RustCrypto
//! AEAD crates, tampering, nonce handling and the replay window.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::transform::aead::{INFO_AES256_GCM, INFO_CHACHA20_POLY1305};
use n2n_proto::transform::{
    AeadNonce, NonceSeed, REPLAY_WINDOW, ReplayError, ReplayWindow, Transform, TransformError,
    TransformId, packet_aad,
};

const AEADS: [TransformId; 2] = [TransformId::ChaCha20Poly1305, TransformId::Aes256Gcm];

fn community(name: &str) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..name.len()].copy_from_slice(name.as_bytes());
    f
}

fn seed(prefix: u32, start: u64) -> NonceSeed {
    NonceSeed { prefix, start }
}

fn aad() -> [u8; 35] {
    packet_aad(
        3,
        &community("rocks"),
        &[2, 0, 0, 0, 0, 1],
        &[2, 0, 0, 0, 0, 2],
        1,
        6,
    )
}

fn frame(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

fn seal(t: &mut Transform, frame: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; frame.len() + t.overhead()];
    let n = t.encrypt(frame, [0xee; 16], aad, &mut out).unwrap();
    out.truncate(n);
    out
}

fn hkdf(info: &[u8], key: &[u8], salt: &[u8; 20]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), key)
        .expand(info, &mut okm)
        .unwrap();
    okm
}

#[test]
fn aad_layout() {
    let a = aad();
    assert_eq!(a[0], 3);
    assert_eq!(&a[1..6], b"rocks");
    assert_eq!(&a[21..27], &[2, 0, 0, 0, 0, 1]);
    assert_eq!(&a[27..33], &[2, 0, 0, 0, 0, 2]);
    assert_eq!(a[33..], [1, 6]);
}

/// Payload = nonce(12) || ciphertext || tag(16), key = HKDF-SHA256(k,
/// salt = community field, info), as the reference crates compute it.
#[test]
fn matches_reference_crates() {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::aead::KeyInit;
    let c = community("rocks");
    for len in [0usize, 1, 15, 16, 17, 64, 100, 1290, 2048] {
        let pt = frame(len);
        let a = aad();
        let s = seed(0xdead_beef, 0x0102_0304_0506_0708 + len as u64);
        let nonce = AeadNonce {
            prefix: s.prefix,
            counter: s.start,
        }
        .to_bytes();
        assert_eq!(hex::encode(nonce)[..8], *"deadbeef");
        // Our payload against the reference crate's ciphertext and tag.
        let check = |label: &str, ours: &[u8], ct: &[u8], tag: &[u8]| {
            assert_eq!(hex::encode(&ours[..12]), hex::encode(nonce));
            assert_eq!(
                hex::encode(&ours[12..12 + len]),
                hex::encode(ct),
                "{label} {len}"
            );
            assert_eq!(
                hex::encode(&ours[12 + len..]),
                hex::encode(tag),
                "{label} tag {len}"
            );
        };

        let mut t = Transform::new(TransformId::ChaCha20Poly1305, b"s3cret", &c, s).unwrap();
        let ours = seal(&mut t, &pt, &a);
        let key = hkdf(INFO_CHACHA20_POLY1305, b"s3cret", &c);
        let r = chacha20poly1305::ChaCha20Poly1305::new(&key.into());
        let mut buf = pt.clone();
        let tag = r
            .encrypt_inout_detached(&nonce.into(), &a, buf.as_mut_slice().into())
            .unwrap();
        check("cc20p1305", &ours, &buf, &tag[..]);

        let mut t = Transform::new(TransformId::Aes256Gcm, b"s3cret", &c, s).unwrap();
        let ours = seal(&mut t, &pt, &a);
        let key = hkdf(INFO_AES256_GCM, b"s3cret", &c);
        let r = aes_gcm::Aes256Gcm::new(&key.into());
        let mut buf = pt.clone();
        let tag = r
            .encrypt_inout_detached(&nonce.into(), &a, buf.as_mut_slice().into())
            .unwrap();
        check("gcm", &ours, &buf, &tag[..]);
    }
}

#[test]
fn any_tampering_is_rejected() {
    for id in AEADS {
        let mut t = Transform::new(id, b"s3cret", &community("rocks"), seed(1, 1)).unwrap();
        let pt = frame(77);
        let a = aad();
        let p = seal(&mut t, &pt, &a);
        let mut out = vec![0u8; 200];
        let d = t.decrypt(&p, &a, &mut out).unwrap();
        assert_eq!(&out[..d.len], &pt[..]);
        assert_eq!(
            d.nonce,
            Some(AeadNonce {
                prefix: 1,
                counter: 1
            })
        );
        // Every bit of the payload (nonce, ciphertext, tag).
        for i in 0..p.len() {
            for bit in [0, 3, 7] {
                let mut q = p.clone();
                q[i] ^= 1 << bit;
                assert_eq!(
                    t.decrypt(&q, &a, &mut out),
                    Err(TransformError::AuthenticationFailed),
                    "{id} payload byte {i}"
                );
            }
        }
        // Every byte of the associated data.
        for i in 0..a.len() {
            let mut b = a;
            b[i] ^= 0x80;
            assert_eq!(
                t.decrypt(&p, &b, &mut out),
                Err(TransformError::AuthenticationFailed),
                "{id} aad byte {i}"
            );
        }
        // Truncated or extended payload, missing AAD.
        assert!(t.decrypt(&p[..p.len() - 1], &a, &mut out).is_err());
        let mut longer = p.clone();
        longer.push(0);
        assert!(t.decrypt(&longer, &a, &mut out).is_err());
        assert!(t.decrypt(&p, &[], &mut out).is_err());
        assert!(matches!(
            t.decrypt(&p[..27], &a, &mut out),
            Err(TransformError::PayloadTooShort { len: 27, min: 28 })
        ));
        // Other key, other community, other transform: no.
        let other = Transform::new(id, b"s3cres", &community("rocks"), seed(1, 1)).unwrap();
        assert_eq!(
            other.decrypt(&p, &a, &mut out),
            Err(TransformError::AuthenticationFailed)
        );
        let other = Transform::new(id, b"s3cret", &community("rockz"), seed(1, 1)).unwrap();
        assert_eq!(
            other.decrypt(&p, &a, &mut out),
            Err(TransformError::AuthenticationFailed)
        );
        let flip = if id == AEADS[0] { AEADS[1] } else { AEADS[0] };
        let other = Transform::new(flip, b"s3cret", &community("rocks"), seed(1, 1)).unwrap();
        assert_eq!(
            other.decrypt(&p, &a, &mut out),
            Err(TransformError::AuthenticationFailed)
        );
    }
}

#[test]
fn nonces_increase_and_never_wrap() {
    for id in AEADS {
        let mut t = Transform::new(id, b"k", &community("c"), seed(9, 5)).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..100u64 {
            assert_eq!(
                t.next_nonce(),
                Some(AeadNonce {
                    prefix: 9,
                    counter: 5 + i
                })
            );
            let p = seal(&mut t, &frame(10), &[]);
            assert!(seen.insert(p[..12].to_vec()), "nonce repeated");
        }
        let mut t = Transform::new(id, b"k", &community("c"), seed(9, u64::MAX - 1)).unwrap();
        let mut out = [0u8; 100];
        assert!(t.encrypt(&[1; 10], [0; 16], &[], &mut out).is_ok());
        assert!(t.encrypt(&[1; 10], [0; 16], &[], &mut out).is_ok());
        assert_eq!(t.next_nonce(), None);
        assert_eq!(
            t.encrypt(&[1; 10], [0; 16], &[], &mut out),
            Err(TransformError::NonceExhausted)
        );
        // A failed encryption (buffer too small) does not consume a nonce.
        let mut t = Transform::new(id, b"k", &community("c"), seed(9, 0)).unwrap();
        assert!(t.encrypt(&[1; 10], [0; 16], &[], &mut [0u8; 20]).is_err());
        assert_eq!(
            t.next_nonce(),
            Some(AeadNonce {
                prefix: 9,
                counter: 0
            })
        );
    }
}

/// Shared handles (`Transform::share`, one per thread of a sender) draw
/// from one counter with one prefix: no nonce repeats, the receiver's one
/// window accepts them all, and exhaustion is shared too.
#[test]
fn shared_handles_draw_one_counter() {
    for id in AEADS {
        let t = Transform::new(id, b"k", &community("c"), seed(7, 1000)).unwrap();
        let mut handles: Vec<Transform> = (0..4).map(|_| t.share()).collect();
        handles.push(t);
        let per = 300;
        let sealed: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
            let js: Vec<_> = handles
                .iter_mut()
                .map(|h| s.spawn(move || (0..per).map(|_| seal(h, &frame(40), &[])).collect()))
                .collect();
            js.into_iter().map(|j| j.join().unwrap()).collect()
        });
        let mut all: Vec<AeadNonce> = Vec::new();
        for v in &sealed {
            let mut last = None;
            for p in v {
                let nonce = AeadNonce::from_bytes(p[..12].try_into().unwrap());
                assert_eq!(nonce.prefix, 7, "{id}: one prefix");
                // Each handle's own packets increase.
                assert!(last.is_none_or(|l| nonce.counter > l), "{id}");
                last = Some(nonce.counter);
                all.push(nonce);
            }
        }
        all.sort_by_key(|n| n.counter);
        let want: Vec<u64> = (1000..1000 + 5 * per as u64).collect();
        let got: Vec<u64> = all.iter().map(|n| n.counter).collect();
        assert_eq!(got, want, "{id}: every counter exactly once");
        // Decryptable by any handle; one window takes them in counter order.
        let mut w = ReplayWindow::new();
        let mut out = [0u8; 64];
        for v in &sealed {
            for p in v {
                let d = handles[0].decrypt(p, &[], &mut out).unwrap();
                assert_eq!(&out[..d.len], &frame(40)[..]);
            }
        }
        for n in &all {
            assert_eq!(w.check_and_update(*n), Ok(()));
        }
        assert_eq!(
            handles[2].next_nonce(),
            Some(AeadNonce {
                prefix: 7,
                counter: 1000 + 5 * per as u64
            })
        );
        // Exhaustion is shared.
        let mut a = Transform::new(id, b"k", &community("c"), seed(9, u64::MAX)).unwrap();
        let mut b = a.share();
        let mut buf = [0u8; 100];
        assert!(b.encrypt(&[1; 10], [0; 16], &[], &mut buf).is_ok());
        assert_eq!(a.next_nonce(), None);
        assert_eq!(
            a.encrypt(&[1; 10], [0; 16], &[], &mut buf),
            Err(TransformError::NonceExhausted)
        );
        assert_eq!(
            b.encrypt(&[1; 10], [0; 16], &[], &mut buf),
            Err(TransformError::NonceExhausted)
        );
    }
}

/// The other transforms' shared handles encrypt like the original.
#[test]
fn shared_handles_of_other_transforms_are_copies() {
    for id in [
        TransformId::Null,
        TransformId::Twofish,
        TransformId::Aes,
        TransformId::ChaCha20,
        TransformId::Speck,
    ] {
        let mut t = Transform::new(id, b"k3y", &community("c"), seed(0, 0)).unwrap();
        let mut s = t.share();
        assert_eq!(s.id(), id);
        let f = frame(100);
        assert_eq!(seal(&mut t, &f, &[]), seal(&mut s, &f, &[]), "{id}");
    }
}

fn n(prefix: u32, counter: u64) -> AeadNonce {
    AeadNonce { prefix, counter }
}

#[test]
fn replay_window_basics() {
    let mut w = ReplayWindow::new();
    const { assert!(REPLAY_WINDOW >= 1024) };
    assert_eq!(w.check_and_update(n(1, 100)), Ok(()));
    assert_eq!(
        w.check_and_update(n(1, 100)),
        Err(ReplayError::Duplicate { counter: 100 })
    );
    // Reordering inside the window is fine, once.
    assert_eq!(w.check_and_update(n(1, 105)), Ok(()));
    assert_eq!(w.check_and_update(n(1, 101)), Ok(()));
    assert_eq!(w.check_and_update(n(1, 103)), Ok(()));
    assert_eq!(
        w.check_and_update(n(1, 101)),
        Err(ReplayError::Duplicate { counter: 101 })
    );
    assert_eq!(w.check_and_update(n(1, 102)), Ok(()));
    assert_eq!(w.check_and_update(n(1, 104)), Ok(()));
    for c in 100..=105 {
        assert!(w.check(n(1, c)).is_err());
    }
    // Counters below the first one but within the window are accepted.
    assert_eq!(w.check_and_update(n(1, 50)), Ok(()));
    // Far ahead: the window slides.
    let top = 105 + REPLAY_WINDOW + 10;
    assert_eq!(w.check_and_update(n(1, top)), Ok(()));
    assert_eq!(
        w.check_and_update(n(1, 105)),
        Err(ReplayError::TooOld {
            counter: 105,
            newest: top
        })
    );
    assert_eq!(
        w.check_and_update(n(1, top - REPLAY_WINDOW)),
        Err(ReplayError::TooOld {
            counter: top - REPLAY_WINDOW,
            newest: top
        })
    );
    // The oldest counter still inside the window, never seen: accepted.
    assert_eq!(w.check_and_update(n(1, top - REPLAY_WINDOW + 1)), Ok(()));
    assert_eq!(w.newest(), Some(n(1, top)));
}

#[test]
fn replay_window_against_model() {
    // Compare with a set-based model over a long random walk.
    let mut w = ReplayWindow::new();
    let mut accepted = std::collections::HashSet::new();
    let mut newest: Option<u64> = None;
    let mut s = 0x1234_5678_u64;
    // Jumps and spread in proportion to the window (1984 when written).
    let scale = |x: u64| x * REPLAY_WINDOW / 1984;
    let mut base = scale(10_000);
    for _ in 0..200_000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        if s.is_multiple_of(50) {
            base += s % scale(3000);
        }
        let c = base + (s >> 20) % scale(2500) - scale(1250);
        let expect = match newest {
            Some(top) if c <= top && top - c >= REPLAY_WINDOW => Err(()),
            _ if accepted.contains(&c) => Err(()),
            _ => Ok(()),
        };
        let got = w.check_and_update(n(7, c)).map_err(|_| ());
        assert_eq!(got, expect, "counter {c} newest {newest:?}");
        if got.is_ok() {
            accepted.insert(c);
            newest = Some(newest.map_or(c, |t| t.max(c)));
        }
    }
}

#[test]
fn replay_window_sessions() {
    let mut w = ReplayWindow::new();
    assert_eq!(w.check_and_update(n(1, 1000)), Ok(()));
    assert_eq!(w.check_and_update(n(1, 1001)), Ok(()));
    // Peer restarted with a new prefix and a clock-based (higher) counter.
    assert_eq!(w.check_and_update(n(2, 5000)), Ok(()));
    // Packets of the old session can no longer be replayed.
    assert_eq!(
        w.check_and_update(n(1, 999)),
        Err(ReplayError::StaleSession {
            prefix: 1,
            counter: 999
        })
    );
    assert_eq!(
        w.check_and_update(n(1, 1002)),
        Err(ReplayError::StaleSession {
            prefix: 1,
            counter: 1002
        })
    );
    assert_eq!(w.check_and_update(n(2, 4999)), Ok(()));
    assert_eq!(
        w.check_and_update(n(2, 4999)),
        Err(ReplayError::Duplicate { counter: 4999 })
    );
    w.reset();
    assert_eq!(w.check_and_update(n(1, 1)), Ok(()));
    // Extremes of the counter space.
    let mut w = ReplayWindow::new();
    assert_eq!(w.check_and_update(n(3, u64::MAX - 5)), Ok(()));
    assert_eq!(w.check_and_update(n(3, u64::MAX)), Ok(()));
    assert_eq!(w.check_and_update(n(3, u64::MAX - 3)), Ok(()));
    assert_eq!(
        w.check_and_update(n(3, u64::MAX)),
        Err(ReplayError::Duplicate { counter: u64::MAX })
    );
    assert!(w.check_and_update(n(3, 0)).is_err());
}

/// End to end: encrypt a stream, deliver it reordered and with duplicates,
/// the receiver accepts each packet exactly once.
#[test]
fn receiver_flow() {
    for id in AEADS {
        let mut tx = Transform::new(id, b"k", &community("c"), seed(77, 1 << 40)).unwrap();
        let rx = Transform::new(id, b"k", &community("c"), seed(88, 0)).unwrap();
        let a = aad();
        let packets: Vec<Vec<u8>> = (0..50).map(|i| seal(&mut tx, &frame(i), &a)).collect();
        let mut order: Vec<usize> = (0..50).rev().collect();
        order.extend([3, 10, 49, 0]);
        let mut w = ReplayWindow::new();
        let mut delivered = 0;
        let mut out = vec![0u8; 200];
        for i in order {
            let d = rx.decrypt(&packets[i], &a, &mut out).unwrap();
            if w.check_and_update(d.nonce.unwrap()).is_ok() {
                assert_eq!(&out[..d.len], &frame(i)[..]);
                delivered += 1;
            }
        }
        assert_eq!(delivered, 50);
    }
}
