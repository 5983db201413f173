//! `n2n-offload`: the edge's offload work on byte slices, without I/O.
//!
//! A TAP device opened with `IFF_VNET_HDR` and `TUN_F_CSUM | TUN_F_TSO4 |
//! TUN_F_TSO6` hands the edge TCP segments of up to 64 KiB (one read, one
//! [`VnetHdr`] in front) and frames whose transport checksum is only partly
//! computed; a UDP socket with `UDP_SEGMENT` sends a run of equal-sized
//! datagrams with one `sendmsg`. Every frame that leaves the edge must still
//! be an ordinary Ethernet frame in its own n2n PACKET (C peers unchanged),
//! so this crate does what a NIC would:
//!
//! * [`tso`]: complete a partial checksum ([`classify`]) or cut a TCP
//!   super-segment into frames small enough that each datagram fits the
//!   underlay ([`Tso::segment`]);
//! * [`gro`]: merge received in-order TCP/IPv4 segments of a flow into one
//!   GSO write to the TAP ([`Coalescer`]);
//! * [`gso`]: collect the datagrams of one burst for one `sendmsg` with
//!   `UDP_SEGMENT` ([`GsoBatch`]: same destination, equal sizes but for a
//!   shorter last one), the encapsulation writing straight into its slot.
//!
//! Nothing here reads a clock, a device or a socket, nothing is `unsafe`,
//! nothing panics: lengths are checked and malformed input is an
//! [`OffloadError`] or a refused merge. The OS side (ioctls, `sendmsg`) is
//! in `n2n-sys`, the shuttling in the edge driver.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod gro;
pub mod gso;
pub mod tso;
pub mod vnet;

pub use gro::Coalescer;
pub use gso::{Batch, GsoBatch};
pub use tso::{OffloadError, Read, Tso, classify};
pub use vnet::{VNET_HDR_LEN, VnetHdr};

/// Byte-order helpers shared by the modules (checked, never panic).
pub(crate) mod bytes {
    pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
        b.get_mut(at..at + 2)?.copy_from_slice(&v.to_be_bytes());
        Some(())
    }

    pub(crate) fn get16(b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at + 2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }

    pub(crate) fn get32(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at + 4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// EtherTypes and IP protocol numbers the offloads look at.
pub(crate) mod consts {
    pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
    pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
    pub(crate) const ETHERTYPE_VLAN: u16 = 0x8100;
    pub(crate) const IPPROTO_TCP: u8 = 6;
}

#[cfg(test)]
pub(crate) mod testutil;
