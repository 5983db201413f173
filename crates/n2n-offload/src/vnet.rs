//! The virtio-net header in front of every read and write of an
//! `IFF_VNET_HDR` TAP device.

/// Size of `struct virtio_net_hdr` (no mergeable buffers), the tun default.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN` (a flag on the GSO type).
pub const GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr` (little endian, as the tun driver uses on
/// little-endian hosts and with `TUNSETVNETLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers (advisory).
    pub hdr_len: u16,
    /// Segment payload size.
    pub gso_size: u16,
    /// Where checksumming starts (from the Ethernet header).
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Parse the first [`VNET_HDR_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let h = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        Some(Self {
            flags: h[0],
            gso_type: h[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// Write into the first [`VNET_HDR_LEN`] bytes of `b`.
    pub fn emit(&self, b: &mut [u8]) {
        if let Some(h) = b.get_mut(..VNET_HDR_LEN) {
            h[0] = self.flags;
            h[1] = self.gso_type;
            h[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
            h[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
            h[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
            h[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_little_endian() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 0x0102,
            gso_size: 1448,
            csum_start: 54,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN + 2];
        h.emit(&mut b);
        assert_eq!(&b[..4], &[1, 0x84, 0x02, 0x01]);
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(VnetHdr::parse(&b[..VNET_HDR_LEN - 1]), None);
        // Too short a buffer: nothing written, no panic.
        let mut short = [0xaa; 4];
        h.emit(&mut short);
        assert_eq!(short, [0xaa; 4]);
    }
}
