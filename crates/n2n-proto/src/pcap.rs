//! A small reader of classic pcap files that yields the UDP datagrams.
//!
//! Works on the file contents (`&[u8]`, read by the caller) and never panics.
//! Supported: both byte orders, microsecond (`a1b2c3d4`) and nanosecond
//! (`a1b23c4d`) magic; link types Ethernet (1, with 802.1Q/802.1ad tags),
//! BSD loopback (0), raw IP (101, 12, 14), Linux cooked SLL (113) and SLL2
//! (276), IPv4 (228) and IPv6 (229). IPv4 and IPv6 UDP datagrams are
//! returned; everything else is skipped and counted in [`SkipCounts`].
//! Fragmented IP datagrams (and datagrams cut short by the snap length) are
//! skipped and counted too: n2n datagrams fit in one underlay frame.
//!
//! ```
//! # fn f(file: &[u8]) -> Result<(), n2n_proto::pcap::PcapError> {
//! let mut reader = n2n_proto::pcap::PcapReader::new(file)?;
//! for d in &mut reader {
//!     let d = d?;
//!     println!("{} -> {}: {} bytes", d.src, d.dst, d.payload.len());
//! }
//! # Ok(()) }
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Errors of the pcap reader (the file as a whole, not single packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// Shorter than the 24-byte global header.
    #[error("file shorter than the pcap global header")]
    TooShort,
    /// A pcapng file (not supported).
    #[error("pcapng files are not supported")]
    PcapNg,
    /// Not a pcap file.
    #[error("unknown pcap magic {0:#010x}")]
    BadMagic(u32),
    /// A link type this reader does not decode.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
    /// A record header or record data runs past the end of the file.
    #[error("record at offset {offset} truncated")]
    TruncatedRecord {
        /// File offset of the record header.
        offset: usize,
    },
}

/// One UDP datagram of the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Capture time, seconds since the Unix epoch.
    pub ts_sec: u32,
    /// Capture time, microseconds (nanosecond files are truncated to µs).
    pub ts_usec: u32,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// Per-reason counts of records that did not yield a datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Not IPv4/IPv6 (ARP, unknown ethertype, …).
    pub not_ip: usize,
    /// IP, but not UDP.
    pub not_udp: usize,
    /// Part of a fragmented IP datagram.
    pub fragment: usize,
    /// Cut short by the snap length.
    pub truncated: usize,
    /// Inconsistent IP or UDP header.
    pub malformed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Ethernet,
    Null,
    RawIp,
    Ipv4,
    Ipv6,
    Sll,
    Sll2,
}

/// Iterator over the UDP datagrams of a classic pcap file.
///
/// Yields `Err` once (and then ends) if a record runs past the end of the
/// file.
#[derive(Debug, Clone)]
pub struct PcapReader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
    nanos: bool,
    link_type: u32,
    link: Link,
    skipped: SkipCounts,
    done: bool,
}

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

fn arr<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    let s = b.get(at..at.checked_add(N)?)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Some(a)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    arr(b, at).map(u16::from_be_bytes)
}

enum Outcome<'a> {
    Datagram(SocketAddr, SocketAddr, &'a [u8]),
    Skip(fn(&mut SkipCounts) -> &mut usize),
}

use Outcome::Skip;

impl<'a> PcapReader<'a> {
    /// Parse the global header.
    pub fn new(data: &'a [u8]) -> Result<Self, PcapError> {
        let magic_bytes: [u8; 4] = arr(data, 0).ok_or(PcapError::TooShort)?;
        let magic = u32::from_le_bytes(magic_bytes);
        let (big_endian, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            0x0a0d_0d0a => return Err(PcapError::PcapNg),
            m => return Err(PcapError::BadMagic(m)),
        };
        if data.len() < GLOBAL_HEADER_LEN {
            return Err(PcapError::TooShort);
        }
        let mut r = Self {
            data,
            pos: GLOBAL_HEADER_LEN,
            big_endian,
            nanos,
            link_type: 0,
            link: Link::Ethernet,
            skipped: SkipCounts::default(),
            done: false,
        };
        // The upper bits of the link-type field may carry FCS information.
        r.link_type = r.u32_at(20).ok_or(PcapError::TooShort)? & 0x0fff_ffff;
        r.link = match r.link_type {
            1 => Link::Ethernet,
            0 => Link::Null,
            12 | 14 | 101 => Link::RawIp,
            228 => Link::Ipv4,
            229 => Link::Ipv6,
            113 => Link::Sll,
            276 => Link::Sll2,
            t => return Err(PcapError::UnsupportedLinkType(t)),
        };
        Ok(r)
    }

    /// The link type of the file.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Whether the file has nanosecond time stamps.
    pub fn is_nanosecond(&self) -> bool {
        self.nanos
    }

    /// Records skipped so far, by reason.
    pub fn skipped(&self) -> SkipCounts {
        self.skipped
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let a = arr::<4>(self.data, at)?;
        Some(if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn link_payload(&self, frame: &'a [u8]) -> Option<(u16, &'a [u8])> {
        // Returns (ethertype, network-layer bytes); ethertype 0 = guess from version.
        match self.link {
            Link::Ethernet => {
                let mut et = be16(frame, 12)?;
                let mut off = 14;
                while et == 0x8100 || et == 0x88a8 {
                    et = be16(frame, off + 2)?;
                    off += 4;
                }
                Some((et, frame.get(off..)?))
            }
            Link::Null => Some((0, frame.get(4..)?)),
            Link::RawIp => Some((0, frame)),
            Link::Ipv4 => Some((0x0800, frame)),
            Link::Ipv6 => Some((0x86dd, frame)),
            Link::Sll => Some((be16(frame, 14)?, frame.get(16..)?)),
            Link::Sll2 => Some((be16(frame, 0)?, frame.get(20..)?)),
        }
    }

    fn decode(&self, frame: &'a [u8], wire_len: usize) -> Outcome<'a> {
        let Some((et, net)) = self.link_payload(frame) else {
            return Skip(|s| &mut s.malformed);
        };
        let version = net.first().map(|b| b >> 4);
        let ipv4 = match (et, version) {
            (0x0800, _) | (0, Some(4)) => true,
            (0x86dd, _) | (0, Some(6)) => false,
            _ => return Skip(|s| &mut s.not_ip),
        };
        let cut = frame.len() < wire_len;
        if ipv4 {
            decode_ipv4(net, cut)
        } else {
            decode_ipv6(net, cut)
        }
    }
}

fn decode_ipv4(net: &[u8], cut: bool) -> Outcome<'_> {
    let Some(&vihl) = net.first() else {
        return Skip(|s| &mut s.malformed);
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    let (Some(total), Some(frag), Some(&proto)) = (be16(net, 2), be16(net, 6), net.get(9)) else {
        return Skip(|s| &mut s.malformed);
    };
    let total = usize::from(total);
    if vihl >> 4 != 4 || ihl < 20 || total < ihl {
        return Skip(|s| &mut s.malformed);
    }
    if proto != 17 {
        return Skip(|s| &mut s.not_udp);
    }
    if frag & 0x3fff != 0 {
        return Skip(|s| &mut s.fragment);
    }
    let Some(ip) = net.get(..total) else {
        return if cut {
            Skip(|s| &mut s.truncated)
        } else {
            Skip(|s| &mut s.malformed)
        };
    };
    let (Some(src), Some(dst)) = (arr::<4>(ip, 12), arr::<4>(ip, 16)) else {
        return Skip(|s| &mut s.malformed);
    };
    let Some(udp) = ip.get(ihl..) else {
        return Skip(|s| &mut s.malformed);
    };
    decode_udp(
        IpAddr::V4(Ipv4Addr::from(src)),
        IpAddr::V4(Ipv4Addr::from(dst)),
        udp,
    )
}

fn decode_ipv6(net: &[u8], cut: bool) -> Outcome<'_> {
    let (Some(plen), Some(mut next), Some(src), Some(dst)) = (
        be16(net, 4),
        net.get(6).copied(),
        arr::<16>(net, 8),
        arr::<16>(net, 24),
    ) else {
        return Skip(|s| &mut s.malformed);
    };
    if net.first().map(|b| b >> 4) != Some(6) {
        return Skip(|s| &mut s.malformed);
    }
    let end = 40 + usize::from(plen);
    let Some(ip) = net.get(..end) else {
        return if cut {
            Skip(|s| &mut s.truncated)
        } else {
            Skip(|s| &mut s.malformed)
        };
    };
    let mut off = 40;
    loop {
        match next {
            17 => break,
            // hop-by-hop, routing, destination options
            0 | 43 | 60 => {
                let (Some(&nh), Some(&hlen)) = (ip.get(off), ip.get(off + 1)) else {
                    return Skip(|s| &mut s.malformed);
                };
                next = nh;
                off += (usize::from(hlen) + 1) * 8;
            }
            44 => {
                let (Some(&nh), Some(fo)) = (ip.get(off), be16(ip, off + 2)) else {
                    return Skip(|s| &mut s.malformed);
                };
                // An "atomic" fragment (offset 0, no more fragments) is whole.
                if fo & 0xfff9 != 0 {
                    return Skip(|s| &mut s.fragment);
                }
                next = nh;
                off += 8;
            }
            _ => return Skip(|s| &mut s.not_udp),
        }
    }
    let Some(udp) = ip.get(off..) else {
        return Skip(|s| &mut s.malformed);
    };
    decode_udp(
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        udp,
    )
}

/// `udp` is the UDP header and everything after it up to the end of the IP
/// datagram. IPv6 jumbograms (UDP length 0) are counted as malformed.
fn decode_udp(src: IpAddr, dst: IpAddr, udp: &[u8]) -> Outcome<'_> {
    let (Some(sp), Some(dp), Some(ulen)) = (be16(udp, 0), be16(udp, 2), be16(udp, 4)) else {
        return Skip(|s| &mut s.malformed);
    };
    let ulen = usize::from(ulen);
    if ulen < 8 {
        return Skip(|s| &mut s.malformed);
    }
    match udp.get(8..ulen) {
        Some(p) => Outcome::Datagram(SocketAddr::new(src, sp), SocketAddr::new(dst, dp), p),
        None => Skip(|s| &mut s.malformed),
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<UdpDatagram<'a>, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.pos < self.data.len() {
            let offset = self.pos;
            let hdr = (
                self.u32_at(offset),
                self.u32_at(offset + 4),
                self.u32_at(offset + 8),
                self.u32_at(offset + 12),
            );
            let (Some(ts_sec), Some(ts_frac), Some(incl), Some(orig)) = hdr else {
                self.done = true;
                return Some(Err(PcapError::TruncatedRecord { offset }));
            };
            let start = offset + RECORD_HEADER_LEN;
            let frame = usize::try_from(incl)
                .ok()
                .and_then(|n| start.checked_add(n))
                .and_then(|end| self.data.get(start..end).map(|f| (f, end)));
            let Some((frame, end)) = frame else {
                self.done = true;
                return Some(Err(PcapError::TruncatedRecord { offset }));
            };
            self.pos = end;
            let wire_len = usize::try_from(orig).unwrap_or(usize::MAX);
            match self.decode(frame, wire_len) {
                Outcome::Datagram(src, dst, payload) => {
                    let ts_usec = if self.nanos { ts_frac / 1000 } else { ts_frac };
                    return Some(Ok(UdpDatagram {
                        ts_sec,
                        ts_usec,
                        src,
                        dst,
                        payload,
                    }));
                }
                Skip(counter) => *counter(&mut self.skipped) += 1,
            }
        }
        None
    }
}
