//! Frames for the unit tests.
#![allow(clippy::unwrap_used)]

use crate::checksum::{fold, sum};
use crate::consts::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP};
use crate::vnet::{VNET_HDR_LEN, VnetHdr};

/// The segment size the edge uses (1376 bytes today).
pub(crate) const SEG_FRAME_MAX: usize = 1376;

/// An Ethernet frame with a TCP segment (32-byte TCP header with a
/// timestamp-like option), `payload` bytes of data.
pub(crate) fn tcp_frame(v6: bool, payload: usize, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f[0] = 0x02;
    f[6] = 0x02;
    f[11] = 1;
    if v6 {
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        let pl = u16::try_from(32 + payload).unwrap_or(u16::MAX);
        ip[4..6].copy_from_slice(&pl.to_be_bytes());
        ip[6] = IPPROTO_TCP;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip[24..40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&ip);
    } else {
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        let tl = u16::try_from(20 + 32 + payload).unwrap_or(u16::MAX);
        ip[2..4].copy_from_slice(&tl.to_be_bytes());
        ip[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = IPPROTO_TCP;
        ip[12..16].copy_from_slice(&[10, 200, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 200, 0, 2]);
        f.extend_from_slice(&ip);
    }
    let mut tcp = vec![0u8; 32];
    tcp[0..2].copy_from_slice(&5201u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    tcp[12] = 8 << 4;
    tcp[13] = flags;
    tcp[20] = 1;
    tcp[21] = 1;
    tcp[22] = 8;
    tcp[23] = 10;
    f.extend_from_slice(&tcp);
    f.extend((0..payload).map(|i| (i * 7) as u8));
    f
}

/// Whether the TCP checksum of a segment (Ethernet frame) verifies.
pub(crate) fn tcp_checksum_ok(seg: &[u8], v6: bool) -> bool {
    let (l3, l4) = (14, if v6 { 54 } else { 34 });
    let tcp = &seg[l4..];
    let mut acc = if v6 {
        sum(&seg[l3 + 8..l3 + 40], 0)
    } else {
        sum(&seg[l3 + 12..l3 + 20], 0)
    };
    acc += 6 + tcp.len() as u64;
    fold(sum(tcp, acc)) == 0xffff
}

/// `h` followed by `frame`, as a TAP read.
pub(crate) fn with_hdr(h: VnetHdr, frame: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; VNET_HDR_LEN];
    h.emit(&mut b);
    b.extend_from_slice(frame);
    b
}
