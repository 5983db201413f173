//! Hostile input: truncations, maxed length fields, wrong versions and
//! types, TTL 0, garbage communities, flipped bits and random bytes. The
//! decoder must return `Ok` or a named `Err`, never panic, and the error
//! must be the right one where the input determines it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod wire_common;

use n2n_proto::wire::{
    self, Flags, HEADER_LEN, HeaderView, Message, MsgType, NeverSentType, PacketView, PeerInfo,
    QueryPeer, Register, RegisterAck, RegisterSuper, RegisterSuperAck, RegisterSuperNak,
    UnregisterSuper, WireError, looks_plain,
};
use wire_common::{Datagram, all_datagrams};

/// Runs every decoding entry point on `b`; returns `decode`'s result.
fn poke(b: &[u8]) -> Result<MsgType, WireError> {
    let _ = looks_plain(b);
    if let Ok(v) = HeaderView::new_checked(b) {
        let _ = (
            v.ttl(),
            v.flags(),
            v.msg_type(),
            v.community(),
            v.body().len(),
        );
    }
    if let Ok(v) = PacketView::new_checked(b) {
        let r = v.to_repr();
        assert_eq!(v.header_len() + r.payload.len(), b.len());
        let _ = (v.compression(), v.transform(), v.header());
    }
    let _ = Register::parse(b);
    let _ = RegisterAck::parse(b);
    let _ = RegisterSuper::parse(b);
    let _ = UnregisterSuper::parse(b);
    let _ = RegisterSuperAck::parse(b);
    let _ = RegisterSuperNak::parse(b);
    let _ = PeerInfo::parse(b);
    let _ = QueryPeer::parse(b);
    let mut out = [0u8; 2200];
    let _ = wire::relay_reencode(
        b,
        n2n_proto::types::PeerSock::v4([1, 2, 3, 4].into(), 5),
        1,
        &mut out,
    );
    let r = wire::decode(b);
    if let Ok((h, m)) = &r {
        // Anything that decodes re-encodes to a prefix-equal datagram.
        let mut buf = vec![0u8; m.buffer_len()];
        let n = wire::encode(h, m, &mut buf).unwrap();
        assert!(n <= b.len());
        let (h2, m2) = wire::decode(&buf[..n]).unwrap();
        assert_eq!((&h2, &m2), (h, m));
    }
    r.map(|(_, m)| m.msg_type())
}

fn datagrams() -> Vec<Datagram> {
    let v = all_datagrams();
    assert!(v.len() > 400);
    v
}

#[test]
fn every_truncation_of_every_vector() {
    let mut checked = 0usize;
    for d in datagrams() {
        let full = &d.plain[..];
        let hdr_len = PacketView::new_checked(full).map(|v| v.header_len()).ok();
        for cut in 0..full.len() {
            let r = poke(&full[..cut]);
            match (cut, hdr_len) {
                (c, _) if c < HEADER_LEN => assert_eq!(r, Err(WireError::TooShort { len: c })),
                (c, Some(hl)) if c >= hl => assert_eq!(r, Ok(MsgType::Packet)),
                (c, _) => match r {
                    Err(WireError::Truncated { need, have }) => {
                        assert_eq!(have, c);
                        assert!(
                            need > c && need <= full.len(),
                            "{} #{} cut {c}: need {need}",
                            d.scenario,
                            d.i
                        );
                    }
                    other => panic!("{} #{} cut {c}: {other:?}", d.scenario, d.i),
                },
            }
            checked += 1;
        }
    }
    assert!(checked > 50_000, "{checked}");
}

/// Offset of the auth block, if the message has one.
fn auth_offset(b: &[u8]) -> Option<usize> {
    let (_, m) = wire::decode(b).unwrap();
    Some(match m {
        Message::RegisterSuper(r) => HEADER_LEN + 10 + r.sock.map_or(0, |s| s.encoded_len()) + 21,
        Message::UnregisterSuper(_) => HEADER_LEN,
        Message::RegisterSuperAck(a) => HEADER_LEN + 17 + a.sock.encoded_len(),
        Message::RegisterSuperNak(_) => HEADER_LEN + 10,
        _ => return None,
    })
}

#[test]
fn maxed_length_fields() {
    let (mut auths, mut acks) = (0, 0);
    for d in datagrams() {
        let Some(off) = auth_offset(&d.plain) else {
            continue;
        };
        let size_at = off + 2;
        for bad in [49u16, 0x0100, 0x7fff, 0xffff] {
            let mut b = d.plain.clone();
            b[size_at..size_at + 2].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(
                poke(&b),
                Err(WireError::TokenTooLarge(bad)),
                "{} #{}",
                d.scenario,
                d.i
            );
        }
        // A legal but too large size runs off the end or misparses: never Ok with
        // the same token, never a panic.
        let orig = u16::from_be_bytes([d.plain[size_at], d.plain[size_at + 1]]);
        for s in 0..=48u16 {
            let mut b = d.plain.clone();
            b[size_at..size_at + 2].copy_from_slice(&s.to_be_bytes());
            let r = poke(&b);
            if s == orig {
                assert!(r.is_ok());
            }
        }
        auths += 1;
        if let Ok((_, Message::RegisterSuperAck(a))) = wire::decode(&d.plain) {
            let num_at = off + 4 + usize::from(a.auth.token_size());
            assert_eq!(usize::from(d.plain[num_at]), a.sn_list.len());
            for bad in [45u8, 100, 0xff] {
                let mut b = d.plain.clone();
                b[num_at] = bad;
                assert_eq!(poke(&b), Err(WireError::TooManySupernodes(bad)));
            }
            for k in 0..=44u8 {
                let mut b = d.plain.clone();
                b[num_at] = k;
                let r = poke(&b);
                if usize::from(k) > a.sn_list.len() {
                    assert!(
                        matches!(r, Err(WireError::Truncated { .. })),
                        "num_sn {k}: {r:?}"
                    );
                }
            }
            acks += 1;
        }
    }
    assert!(auths > 50 && acks > 20, "{auths} {acks}");
}

#[test]
fn wrong_version_type_and_flags() {
    for d in datagrams() {
        let p = &d.plain;
        for v in (0..=255u8).filter(|&v| v != 3) {
            let mut b = p.clone();
            b[0] = v;
            assert_eq!(poke(&b), Err(WireError::BadVersion(v)));
            assert!(!looks_plain(&b));
        }
        let word = u16::from_be_bytes([p[2], p[3]]);
        for t in 0..32u8 {
            let mut b = p.clone();
            b[2..4].copy_from_slice(&((word & !0x1f) | u16::from(t)).to_be_bytes());
            let r = poke(&b);
            match t {
                0 => assert_eq!(r, Err(WireError::NeverSent(NeverSentType::Ping))),
                2 => assert_eq!(r, Err(WireError::NeverSent(NeverSentType::Deregister))),
                9 => assert_eq!(r, Err(WireError::NeverSent(NeverSentType::Federation))),
                13..=31 => assert_eq!(r, Err(WireError::UnknownType(t))),
                12 => assert_eq!(r, Ok(MsgType::ReRegisterSuper)),
                _ => {}
            }
            if t > 11 {
                assert!(!looks_plain(&b));
            }
        }
        // Unknown flag bits (OPTIONS, high byte) are ignored by the decoder but
        // make the datagram look header-encrypted.
        for extra in [0x0080u16, 0x0100, 0x8000, 0xff00] {
            let mut b = p.clone();
            b[2..4].copy_from_slice(&(word | extra).to_be_bytes());
            let (h, m) = wire::decode(&b).unwrap();
            assert_eq!(h.flags.bits() & extra, extra);
            assert_eq!(m.msg_type().name(), d.ty);
            assert!(!looks_plain(&b));
            let mut out = vec![0u8; b.len()];
            assert_eq!(wire::encode(&h, &m, &mut out).unwrap(), b.len());
            assert_eq!(out, b);
        }
        // Toggling SOCKET changes the layout: never a panic, and a fixed-size
        // message that gains a socket is truncated.
        let mut b = p.clone();
        b[2..4].copy_from_slice(&(word ^ 0x0040).to_be_bytes());
        let r = poke(&b);
        if word & 0x0040 == 0 && matches!(d.ty.as_str(), "REGISTER" | "REGISTER_ACK" | "PEER_INFO")
        {
            assert!(
                matches!(r, Err(WireError::Truncated { .. })),
                "{} #{}: {r:?}",
                d.scenario,
                d.i
            );
        }
    }
}

#[test]
fn ttl_zero_and_garbage_community_decode() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    for d in datagrams() {
        let mut b = d.plain.clone();
        b[1] = 0;
        let v = HeaderView::new_checked(&b[..]).unwrap();
        assert_eq!(v.ttl(), 0);
        let (h, m) = wire::decode(&b).unwrap();
        assert_eq!(h.ttl, 0);
        assert_eq!(m.msg_type().name(), d.ty);

        let mut g = d.plain.clone();
        for x in &mut g[4..24] {
            *x = xorshift(&mut seed) as u8;
        }
        let (h, m) = wire::decode(&g).unwrap();
        assert_eq!(&h.community.field()[..], &g[4..24]);
        let mut out = vec![0u8; g.len()];
        wire::encode(&h, &m, &mut out).unwrap();
        assert_eq!(out, g, "garbage community must survive a round trip");
        assert_eq!(looks_plain(&g), g[23] == 0);
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn random_bytes_and_bit_flips() {
    let mut s = 0x006e_326e_u64 | 1;
    // Pure noise, and noise behind a valid version byte and a valid type.
    for i in 0..200_000u32 {
        let len = (xorshift(&mut s) % 160) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| xorshift(&mut s) as u8).collect();
        if i % 2 == 0 && len > 3 {
            b[0] = 3;
            b[3] = [1u8, 3, 4, 5, 6, 7, 8, 10, 11, 12][(xorshift(&mut s) % 10) as usize]
                | (b[3] & 0xe0);
        }
        let _ = poke(&b);
    }
    // Bit flips and byte smashes in real datagrams.
    for d in datagrams() {
        for _ in 0..64 {
            let mut b = d.plain.clone();
            let pos = (xorshift(&mut s) as usize) % b.len();
            b[pos] ^= 1 << (xorshift(&mut s) % 8);
            let _ = poke(&b);
            let pos = (xorshift(&mut s) as usize) % b.len();
            b[pos] = 0xff;
            let _ = poke(&b);
        }
    }
}

#[test]
fn looks_plain_rules() {
    let mut b = [0u8; 24];
    b[0] = 3;
    b[3] = 5;
    assert!(looks_plain(&b));
    assert!(!looks_plain(&b[..23]));
    assert!(looks_plain(&[&b[..], &[1, 2, 3]].concat()));
    let mut c = b;
    c[23] = 1;
    assert!(!looks_plain(&c));
    let mut c = b;
    c[3] = 11;
    assert!(looks_plain(&c));
    c[3] = 12;
    assert!(!looks_plain(&c));
    c[3] = 0x7f & !0x1f | 11;
    assert!(looks_plain(&c));
    c[3] = 0x80 | 3;
    assert!(!looks_plain(&c));
    let mut c = b;
    c[2] = 1;
    assert!(!looks_plain(&c));
    assert!(!looks_plain(&[]));
    // Every captured non-HE datagram is plain; HE ones were decrypted, and
    // their plain forms are plain too unless the community has residue.
    for d in datagrams() {
        let h = HeaderView::new_checked(&d.plain[..]).unwrap();
        let plain_expected =
            h.community_field()[19] == 0 && h.msg_type_code() <= 11 && h.flags_word() < 0x80;
        assert_eq!(looks_plain(&d.plain), plain_expected);
        assert!(!h.flags().contains(Flags::OPTIONS));
    }
}
