//! Any bytes through the wire codec: `wire::decode`, `HeaderView`,
//! `PacketView` and the relay re-encode must never panic; whatever decodes
//! must re-encode to a datagram that decodes to the same header and message,
//! and re-encoding that gives the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_proto::types::PeerSock;
use n2n_proto::wire::{self, Flags, HeaderView, Message, PacketView};

fn check_header_view(data: &[u8]) {
    let Ok(hv) = HeaderView::new_checked(data) else {
        assert!(
            wire::decode(data).is_err(),
            "decode ok but HeaderView refused"
        );
        return;
    };
    assert_eq!(hv.version(), wire::VERSION);
    let _ = (
        hv.ttl(),
        hv.flags_word(),
        hv.msg_type_code(),
        hv.body().len(),
    );
    let h = hv.to_header();
    assert_eq!(h.ttl, hv.ttl());
    assert_eq!(h.flags, hv.flags());
    assert_eq!(h.community.field()[..], hv.community_field()[..]);
    assert_eq!(
        hv.msg_type().ok(),
        wire::Header::parse(data).ok().map(|(_, t)| t)
    );

    // Setters write exactly what the getters read back.
    let mut copy = data.to_vec();
    let mut mv = HeaderView::new_unchecked(&mut copy[..]);
    mv.set_ttl(h.ttl.wrapping_sub(1));
    mv.set_flags(h.flags | Flags::FROM_SUPERNODE);
    assert_eq!(mv.ttl(), h.ttl.wrapping_sub(1));
    assert!(mv.flags().contains(Flags::FROM_SUPERNODE));
    assert_eq!(
        mv.msg_type_code(),
        hv.msg_type_code(),
        "type bits changed by set_flags"
    );
    assert_eq!(copy[24..], data[24..]);
}

fn check_packet_view(data: &[u8], decoded: Option<&Message<'_>>) {
    match (PacketView::new_checked(data), decoded) {
        (Ok(pv), Some(Message::Packet(p))) => {
            assert_eq!(&pv.to_repr(), p);
            assert_eq!(pv.header_len(), p.header_len());
            assert_eq!(pv.payload().len() + pv.header_len(), data.len());
            let _ = (pv.ttl(), pv.flags(), pv.header(), pv.as_bytes().len());
        }
        (Ok(_), other) => panic!("PacketView accepted, decode gave {other:?}"),
        (Err(_), Some(Message::Packet(_))) => panic!("decode gave a PACKET, PacketView refused"),
        (Err(_), _) => {}
    }
}

fn check_relay(data: &[u8], msg: &Message<'_>) {
    let sender = PeerSock::v4([198, 18, 0, 9].into(), 4242);
    let mut out = vec![0u8; data.len() + 64];
    let r = wire::relay_reencode(data, sender, 1, &mut out);
    match msg {
        Message::Packet(_) | Message::Register(_) => {
            let n = r.expect("relay of a decodable PACKET/REGISTER failed");
            let (h2, m2) = wire::decode(&out[..n]).expect("relayed datagram does not decode");
            assert_eq!(h2.ttl, 1);
            assert!(h2.flags.contains(Flags::SOCKET | Flags::FROM_SUPERNODE));
            match (msg, &m2) {
                (Message::Packet(a), Message::Packet(b)) => {
                    assert_eq!(b.sock, Some(sender));
                    assert_eq!((a.src_mac, a.dst_mac), (b.src_mac, b.dst_mac));
                    assert_eq!((a.compression, a.transform), (b.compression, b.transform));
                    assert_eq!(a.payload, b.payload);
                }
                (Message::Register(a), Message::Register(b)) => {
                    assert_eq!(b.sock, Some(sender));
                    assert_eq!(
                        (a.cookie, a.src_mac, a.dst_mac),
                        (b.cookie, b.src_mac, b.dst_mac)
                    );
                    assert_eq!((a.dev_addr, a.dev_desc), (b.dev_addr, b.dev_desc));
                }
                _ => panic!("relay changed the message type"),
            }
        }
        _ => assert!(r.is_err(), "relay of {:?} accepted", msg.msg_type()),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = wire::looks_plain(data);
    check_header_view(data);
    let decoded = wire::decode(data);
    check_packet_view(data, decoded.as_ref().ok().map(|(_, m)| m));
    let Ok((hdr, msg)) = decoded else { return };

    check_relay(data, &msg);

    // Re-encode, re-decode: the same header and message.
    let len = msg.buffer_len();
    assert!(
        len <= data.len(),
        "buffer_len {len} > datagram {}",
        data.len()
    );
    let mut buf = vec![0u8; len];
    let n = wire::encode(&hdr, &msg, &mut buf).expect("encode of a decoded message failed");
    assert_eq!(n, len);
    let (h2, m2) = wire::decode(&buf).expect("re-encoded message does not decode");
    assert_eq!(h2, hdr);
    assert_eq!(m2, msg);

    // Encoding is a fixed point after one round.
    let mut buf2 = vec![0u8; m2.buffer_len()];
    let n2 = wire::encode(&h2, &m2, &mut buf2).expect("second encode failed");
    assert_eq!(buf2[..n2], buf[..]);

    // A buffer one byte short is refused, not overrun.
    if len > 0 {
        let mut short = vec![0u8; len - 1];
        assert!(wire::encode(&hdr, &msg, &mut short).is_err());
    }
});
