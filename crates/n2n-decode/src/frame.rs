//! The decrypted Ethernet frame of a PACKET, described with `etherparse`.

use etherparse::{Ethernet2Slice, NetSlice, SlicedPacket, TransportSlice};

use crate::json::Obj;

fn mac_str(m: [u8; 6]) -> String {
    n2n_proto::types::Mac(m).to_string()
}

fn ip_bytes(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => {
            let a: [u8; 4] = b.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(a).to_string())
        }
        16 => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(a).to_string())
        }
        _ => None,
    }
}

/// Appends `frame_len`, `frame_hex`, `eth_dst`, `eth_src`, `ethertype` and,
/// when they parse, ARP / IPv4 / IPv6 / ICMP / UDP / TCP fields; a frame
/// that does not parse gets `frame_error`.
pub fn fields(o: &mut Obj, frame: &[u8]) {
    o.len("frame_len", frame.len());
    o.hex("frame_hex", frame);
    let eth = match Ethernet2Slice::from_slice_without_fcs(frame) {
        Ok(e) => e,
        Err(e) => {
            o.display("frame_error", e);
            return;
        }
    };
    o.str("eth_dst", &mac_str(eth.destination()));
    o.str("eth_src", &mac_str(eth.source()));
    o.str("ethertype", &format!("0x{:04x}", eth.ether_type().0));
    let pkt = match SlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => {
            o.display("frame_error", e);
            return;
        }
    };
    match &pkt.net {
        Some(NetSlice::Arp(a)) => {
            o.num("arp_op", a.operation().0);
            if let Some(s) = ip_bytes(a.sender_protocol_addr()) {
                o.str("arp_sender_ip", &s);
            }
            if let Some(s) = ip_bytes(a.target_protocol_addr()) {
                o.str("arp_target_ip", &s);
            }
        }
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            o.display("ip_src", h.source_addr());
            o.display("ip_dst", h.destination_addr());
            o.num("ip_proto", h.protocol().0);
            if h.is_fragmenting_payload() {
                o.bool("ip_fragment", true);
            }
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            o.display("ip_src", h.source_addr());
            o.display("ip_dst", h.destination_addr());
            o.num("ip_proto", h.next_header().0);
        }
        None => {}
    }
    match &pkt.transport {
        Some(TransportSlice::Icmpv4(i)) => {
            o.num("icmp_type", i.type_u8())
                .num("icmp_code", i.code_u8());
        }
        Some(TransportSlice::Icmpv6(i)) => {
            o.num("icmp_type", i.type_u8())
                .num("icmp_code", i.code_u8());
        }
        Some(TransportSlice::Udp(u)) => {
            o.num("sport", u.source_port())
                .num("dport", u.destination_port());
        }
        Some(TransportSlice::Tcp(t)) => {
            o.num("sport", t.source_port())
                .num("dport", t.destination_port());
        }
        _ => {}
    }
}
