//! Ethernet frame helpers (behaviour.md §6): MACs, IPv4 addresses, the
//! gratuitous ARP.

use std::net::Ipv4Addr;

use n2n_proto::types::Mac;

/// Ethernet header length.
pub const ETH_HEADER_LEN: usize = 14;
/// Gratuitous ARP frame length.
pub const GARP_LEN: usize = 42;

#[inline]
fn mac_at(frame: &[u8], off: usize) -> Mac {
    let mut m = [0u8; 6];
    if let Some(s) = frame.get(off..off + 6) {
        m.copy_from_slice(s);
    }
    Mac(m)
}

/// Destination MAC (bytes 0..6).
#[inline]
pub fn dst_mac(frame: &[u8]) -> Mac {
    mac_at(frame, 0)
}

/// Source MAC (bytes 6..12).
#[inline]
pub fn src_mac(frame: &[u8]) -> Mac {
    mac_at(frame, 6)
}

#[inline]
fn is_ipv4(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x00][..])
}

/// IPv4 source address, for IPv4 frames of at least 34 bytes.
#[inline]
pub fn ipv4_src(frame: &[u8]) -> Option<Ipv4Addr> {
    if !is_ipv4(frame) {
        return None;
    }
    let a = frame.get(26..30)?;
    Some(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
}

/// IPv4 destination address, for IPv4 frames of at least 34 bytes.
#[inline]
pub fn ipv4_dst(frame: &[u8]) -> Option<Ipv4Addr> {
    if !is_ipv4(frame) {
        return None;
    }
    let a = frame.get(30..34)?;
    Some(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
}

/// The gratuitous ARP reply of behaviour.md §6.4.
pub fn gratuitous_arp(mac: Mac, ip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    f[0..6].copy_from_slice(&Mac::BROADCAST.0);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..16].copy_from_slice(&[0x00, 0x01]); // htype Ethernet
    f[16..18].copy_from_slice(&[0x08, 0x00]); // ptype IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&[0x00, 0x02]); // reply
    f[22..28].copy_from_slice(&mac.0);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&Mac::BROADCAST.0);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_matches_c_capture() {
        // aes capture, datagram 2: the frame e1 sent after registering.
        let want =
            "ffffffffffff020000000001080600010800060400020200000000010ac80001ffffffffffff0ac80001";
        let f = gratuitous_arp(Mac([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 200, 0, 1));
        let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
        assert_eq!(ipv4_src(&f), None);
        assert_eq!(dst_mac(&f), Mac::BROADCAST);
        assert_eq!(src_mac(&f), Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(ipv4_dst(&[0u8; 10]), None);
    }
}
