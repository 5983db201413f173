//! Property tests: for every message type, `parse(emit(x)) == x` and a
//! second emit is byte-identical. Deterministic (fixed ChaCha seed, no
//! failure persistence files).
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use n2n_proto::types::{Auth, Community, DevAddr, DevDesc, Mac, PeerSock};
use n2n_proto::wire::{
    self, Flags, Header, Message, Packet, PacketView, PeerInfo, QueryPeer, Register, RegisterAck,
    RegisterSuper, RegisterSuperAck, RegisterSuperNak, SnEntry, SnList, UnregisterSuper, WireError,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

fn config() -> Config {
    Config {
        cases: 512,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6e32_6e33_2e31_2e31),
        failure_persistence: None,
        ..Config::default()
    }
}

fn mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(Mac)
}

fn sock() -> impl Strategy<Value = PeerSock> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| PeerSock::v4(Ipv4Addr::from(a), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| PeerSock::v6(Ipv6Addr::from(a), p)),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (any::<u8>(), any::<u16>(), any::<[u8; 20]>()).prop_map(|(ttl, f, c)| Header {
        ttl,
        flags: Flags::from_bits(f),
        community: Community::from_field(c),
    })
}

fn auth() -> impl Strategy<Value = Auth> {
    (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..=48))
        .prop_map(|(s, t)| Auth::new(s, &t).unwrap())
}

fn dev_addr() -> impl Strategy<Value = DevAddr> {
    (any::<[u8; 4]>(), any::<u8>()).prop_map(|(a, p)| DevAddr::new(Ipv4Addr::from(a), p))
}

fn dev_desc() -> impl Strategy<Value = DevDesc> {
    any::<[u8; 16]>().prop_map(DevDesc)
}

/// Checks decode/encode, the typed API and short output buffers for one message.
fn round_trip(h: &Header, m: &Message<'_>, socket_flag: Option<bool>) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; m.buffer_len() + 8];
    let n = wire::encode(h, m, &mut buf).unwrap();
    prop_assert_eq!(n, m.buffer_len());
    let bytes = &buf[..n];
    let (h2, m2) = wire::decode(bytes).unwrap();
    let want_h = Header {
        flags: socket_flag.map_or(h.flags, |on| h.flags.with(Flags::SOCKET, on)),
        ..*h
    };
    prop_assert_eq!(h2, want_h);
    prop_assert_eq!(&m2, m);
    let mut again = vec![0u8; n];
    prop_assert_eq!(wire::encode(&h2, &m2, &mut again).unwrap(), n);
    prop_assert_eq!(&again[..], bytes);
    // Every shorter output buffer is refused cleanly.
    for short in [0, n / 2, n - 1] {
        let mut small = vec![0u8; short];
        let r = wire::encode(h, m, &mut small);
        prop_assert!(
            matches!(r, Err(WireError::BufferTooSmall { need, .. }) if need == n),
            "{:?}",
            r
        );
    }
    // Trailing bytes are ignored ...
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xa5; 7]);
    if !matches!(m, Message::Packet(_)) {
        let (h3, m3) = wire::decode(&longer).unwrap();
        prop_assert_eq!((h3, m3), (want_h, *m));
    }
    // ... and every truncation of a message with a body fails (a PACKET may
    // lose payload bytes and stay valid).
    let min = match m {
        Message::Packet(p) => p.header_len(),
        _ => n,
    };
    for cut in 0..min {
        prop_assert!(wire::decode(&bytes[..cut]).is_err(), "cut {}", cut);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn register(h in header(), cookie in any::<u32>(), s in mac(), d in mac(), so in proptest::option::of(sock()), a in dev_addr(), desc in dev_desc()) {
        let m = Register { cookie, src_mac: s, dst_mac: d, sock: so, dev_addr: a, dev_desc: desc };
        round_trip(&h, &Message::Register(m), Some(so.is_some()))?;
        let mut buf = [0u8; 128];
        let n = m.emit(&h, &mut buf).unwrap();
        let (_, back) = Register::parse(&buf[..n]).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn packet(h in header(), s in mac(), d in mac(), so in proptest::option::of(sock()), c in any::<u8>(), t in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let m = Packet { src_mac: s, dst_mac: d, sock: so, compression: c, transform: t, payload: &payload };
        round_trip(&h, &Message::Packet(m), Some(so.is_some()))?;
        let mut buf = vec![0u8; m.buffer_len()];
        let n = m.emit(&h, &mut buf).unwrap();
        let v = PacketView::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(v.to_repr(), m);
        prop_assert_eq!(v.header_len(), m.header_len());
        // In-place header writing gives the same bytes.
        let mut inplace = vec![0u8; n];
        inplace[m.header_len()..].copy_from_slice(&payload);
        prop_assert_eq!(m.emit_header(&h, &mut inplace).unwrap(), m.header_len());
        prop_assert_eq!(&inplace[..], &buf[..n]);
        // Relay re-encode adds the socket and keeps the rest.
        let sender = PeerSock::v4(Ipv4Addr::new(198, 18, 0, 1), 50001);
        let mut out = vec![0u8; n + 20];
        let k = wire::relay_reencode(&buf[..n], sender, 7, &mut out).unwrap();
        let (rh, rm) = wire::decode(&out[..k]).unwrap();
        prop_assert_eq!(rh.ttl, 7);
        prop_assert!(rh.flags.contains(Flags::SOCKET | Flags::FROM_SUPERNODE));
        prop_assert_eq!(rh.community, h.community);
        prop_assert_eq!(rm, Message::Packet(Packet { sock: Some(sender), ..m }));
    }

    #[test]
    fn register_relay(h in header(), cookie in any::<u32>(), s in mac(), d in mac(), so in proptest::option::of(sock()), a in dev_addr(), desc in dev_desc(), sender in sock(), ttl in any::<u8>()) {
        let m = Register { cookie, src_mac: s, dst_mac: d, sock: so, dev_addr: a, dev_desc: desc };
        let mut buf = [0u8; 128];
        let n = m.emit(&h, &mut buf).unwrap();
        let mut out = [0u8; 128];
        let k = wire::relay_reencode(&buf[..n], sender, ttl, &mut out).unwrap();
        let (rh, rm) = wire::decode(&out[..k]).unwrap();
        prop_assert_eq!(rh, Header { ttl, flags: h.flags | Flags::SOCKET | Flags::FROM_SUPERNODE, community: h.community });
        prop_assert_eq!(rm, Message::Register(Register { sock: Some(sender), ..m }));
    }

    #[test]
    fn register_ack(h in header(), cookie in any::<u32>(), s in mac(), d in mac(), so in proptest::option::of(sock())) {
        let m = RegisterAck { cookie, dst_mac: d, src_mac: s, sock: so };
        round_trip(&h, &Message::RegisterAck(m), Some(so.is_some()))?;
    }

    #[test]
    fn register_super(h in header(), cookie in any::<u32>(), e in mac(), so in proptest::option::of(sock()), a in dev_addr(), desc in dev_desc(), au in auth(), kt in any::<u32>()) {
        let m = RegisterSuper { cookie, edge_mac: e, sock: so, dev_addr: a, dev_desc: desc, auth: au, key_time: kt };
        round_trip(&h, &Message::RegisterSuper(m), Some(so.is_some()))?;
    }

    #[test]
    fn unregister_super(h in header(), au in auth(), s in mac()) {
        round_trip(&h, &Message::UnregisterSuper(UnregisterSuper { auth: au, src_mac: s }), None)?;
    }

    #[test]
    fn register_super_ack(h in header(), cookie in any::<u32>(), s in mac(), a in dev_addr(), lt in any::<u16>(), so in sock(), au in auth(), raw in proptest::collection::vec(any::<[u8; 26]>(), 0..=44), kt in any::<u32>()) {
        let flat: Vec<u8> = raw.iter().flatten().copied().collect();
        let list = SnList::from_raw(&flat).unwrap();
        prop_assert_eq!(list.len(), raw.len());
        for (e, r) in list.iter().zip(&raw) {
            let mut canon = *r;
            canon[1] = 0;
            prop_assert_eq!(e.to_bytes(), canon);
            prop_assert_eq!(SnEntry::from_bytes(r), e);
        }
        let m = RegisterSuperAck { cookie, src_mac: s, dev_addr: a, lifetime: lt, sock: so, auth: au, sn_list: list, key_time: kt };
        round_trip(&h, &Message::RegisterSuperAck(m), None)?;
    }

    #[test]
    fn register_super_nak(h in header(), cookie in any::<u32>(), s in mac(), au in auth()) {
        round_trip(&h, &Message::RegisterSuperNak(RegisterSuperNak { cookie, src_mac: s, auth: au }), None)?;
    }

    #[test]
    fn peer_info(h in header(), af in any::<u16>(), s in mac(), m in mac(), so in sock(), pref in proptest::option::of(sock()), load in any::<u32>(), up in any::<u32>(), ver in any::<[u8; 20]>()) {
        let p = PeerInfo { aflags: af, src_mac: s, mac: m, sock: so, preferred_sock: pref, load, uptime: up, version: ver };
        round_trip(&h, &Message::PeerInfo(p), Some(pref.is_some()))?;
    }

    #[test]
    fn query_peer(h in header(), s in mac(), t in mac(), af in any::<u16>()) {
        round_trip(&h, &Message::QueryPeer(QueryPeer { src_mac: s, target_mac: t, aflags: af }), None)?;
    }

    #[test]
    fn re_register_super(h in header()) {
        round_trip(&h, &Message::ReRegisterSuper, None)?;
    }

    #[test]
    fn sn_entry_from_sock(so in sock(), m in mac()) {
        let e = SnEntry::new(so, m);
        prop_assert_eq!(e.sock(), Some(so));
        prop_assert_eq!(SnEntry::from_bytes(&e.to_bytes()), e);
    }

    #[test]
    fn mac_text_round_trip(m in mac()) {
        prop_assert_eq!(m.to_string().parse::<Mac>().unwrap(), m);
    }
}
