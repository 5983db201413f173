//! TAP offloads: the virtio-net header of an `IFF_VNET_HDR` TAP device,
//! checksum completion and user-space TCP segmentation.
//!
//! With `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6` the kernel hands the edge
//! TCP segments of up to 64 KiB (one read, one [`VnetHdr`] in front) and
//! frames whose transport checksum is only partially computed. Every frame
//! that leaves the edge must still be a complete, ordinary Ethernet frame
//! (one n2n PACKET per frame, C peers unchanged), so:
//!
//! * a frame with `NEEDS_CSUM` gets its checksum completed in place;
//! * a TCP super-segment is cut into frames of at most a chosen size (so
//!   that each resulting datagram fits the underlay MTU without IP
//!   fragmentation), each with its own IPv4/IPv6 length, IPv4 id and header
//!   checksum, TCP sequence number, flags and checksum — what a NIC's TSO
//!   would produce.
//!
//! Frames written to the TAP carry a zero header (no offload, checksum to
//! be verified by the stack).
//!
//! Everything here works on byte slices with checked lengths and never
//! panics; malformed input is an [`OffloadError`].

/// Size of `struct virtio_net_hdr` (no mergeable buffers), the tun default.
pub const VNET_HDR_LEN: usize = 10;

/// Largest Ethernet frame produced by segmentation: the UDP payload that
/// crosses a 1500-byte path unfragmented also over IPv6 (1500 − 40 − 8 =
/// 1452; IPv4 allows 1472) minus the most a PACKET datagram adds to its
/// frame ([`n2n_proto::wire::MAX_PACKET_OVERHEAD`]: the header as relayed
/// with an IPv6 socket plus the AEAD overhead; header encryption adds
/// nothing) = 1366.
pub const SEG_FRAME_MAX: usize = 1452 - n2n_proto::wire::MAX_PACKET_OVERHEAD;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_*`.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_ECN: u8 = 0x80;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_TCP: u8 = 6;

/// Why a frame read from the TAP could not be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// Shorter than the virtio-net header.
    #[error("read shorter than the virtio-net header")]
    Short,
    /// Checksum start/offset outside the frame.
    #[error("checksum offset outside the frame")]
    BadChecksumOffset,
    /// A GSO type this edge did not enable.
    #[error("unsupported GSO type {0:#x}")]
    UnsupportedGso(u8),
    /// The headers of a TCP super-segment do not parse.
    #[error("malformed TCP super-segment")]
    BadSegment,
}

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

/// One's-complement sum of `data` (as big-endian 16-bit words) added to
/// `acc`, not folded.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_be_bytes(w);
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let Some(&last) = pairs.remainder().first() {
        acc += u64::from(last) << 8;
    }
    acc
}

/// Fold a sum to 16 bits (not inverted).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 0xffff.
    u16::try_from(acc).unwrap_or(0xffff)
}

/// The Internet checksum of `data` (inverted fold).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

fn put16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    b.get_mut(at..at + 2)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn get16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn get32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Complete a partial checksum (`NEEDS_CSUM`): the field at
/// `start + offset` holds the pseudo-header sum; the one's complement of
/// the sum from `start` to the end goes there.
pub fn complete_checksum(
    frame: &mut [u8],
    start: usize,
    offset: usize,
) -> Result<(), OffloadError> {
    let at = start
        .checked_add(offset)
        .filter(|&a| a + 2 <= frame.len() && start < frame.len())
        .ok_or(OffloadError::BadChecksumOffset)?;
    let c = match checksum(frame.get(start..).unwrap_or_default()) {
        0 => 0xffff,
        c => c,
    };
    put16(frame, at, c).ok_or(OffloadError::BadChecksumOffset)
}

/// What one TAP read holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// One ordinary frame (checksum completed): `buf[start..end]`.
    Frame {
        /// Offset of the Ethernet header in the read buffer.
        start: usize,
        /// End of the frame.
        end: usize,
    },
    /// A TCP super-segment to cut with [`Tso::segment`].
    Tso(Tso),
}

/// Process one read (`buf` = virtio-net header + frame): complete the
/// checksum of an ordinary frame, or describe a TCP super-segment so that
/// it is cut into frames of at most `max_frame` bytes.
pub fn classify(buf: &mut [u8], max_frame: usize) -> Result<Read, OffloadError> {
    let h = VnetHdr::parse(buf).ok_or(OffloadError::Short)?;
    let frame = buf.get_mut(VNET_HDR_LEN..).ok_or(OffloadError::Short)?;
    let gso = h.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        if h.flags & F_NEEDS_CSUM != 0 {
            complete_checksum(frame, usize::from(h.csum_start), usize::from(h.csum_offset))?;
        }
        return Ok(Read::Frame {
            start: VNET_HDR_LEN,
            end: buf.len(),
        });
    }
    if gso != GSO_TCPV4 && gso != GSO_TCPV6 {
        return Err(OffloadError::UnsupportedGso(h.gso_type));
    }
    Tso::new(frame, gso == GSO_TCPV6, usize::from(h.gso_size), max_frame).map(Read::Tso)
}

/// A TCP super-segment (frame without the virtio-net header) and how to
/// cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tso {
    v6: bool,
    /// Offset of the IP header.
    l3: usize,
    /// Offset of the TCP header.
    l4: usize,
    /// End of the headers (start of the TCP payload).
    hdrs: usize,
    /// Whole frame length.
    len: usize,
    /// Payload bytes per segment.
    mss: usize,
    seq: u32,
    ip_id: u16,
}

impl Tso {
    fn new(
        frame: &[u8],
        v6: bool,
        gso_size: usize,
        max_frame: usize,
    ) -> Result<Self, OffloadError> {
        let bad = OffloadError::BadSegment;
        let mut l3 = 14;
        let mut ethertype = get16(frame, 12).ok_or(bad)?;
        if ethertype == ETHERTYPE_VLAN {
            ethertype = get16(frame, 16).ok_or(bad)?;
            l3 = 18;
        }
        let (l4, ip_id) = if v6 {
            if ethertype != ETHERTYPE_IPV6 || frame.get(l3 + 6) != Some(&IPPROTO_TCP) {
                return Err(bad);
            }
            (l3 + 40, 0)
        } else {
            let vihl = *frame.get(l3).ok_or(bad)?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            if ethertype != ETHERTYPE_IPV4
                || vihl >> 4 != 4
                || ihl < 20
                || frame.get(l3 + 9) != Some(&IPPROTO_TCP)
            {
                return Err(bad);
            }
            (l3 + ihl, get16(frame, l3 + 4).ok_or(bad)?)
        };
        let doff = usize::from(*frame.get(l4 + 12).ok_or(bad)? >> 4) * 4;
        let hdrs = l4 + doff;
        if doff < 20 || hdrs > frame.len() {
            return Err(bad);
        }
        let room = max_frame
            .checked_sub(hdrs)
            .filter(|&r| r >= 64)
            .ok_or(bad)?;
        let mss = if gso_size == 0 {
            room
        } else {
            gso_size.min(room)
        };
        Ok(Self {
            v6,
            l3,
            l4,
            hdrs,
            len: frame.len(),
            mss,
            seq: get32(frame, l4 + 4).ok_or(bad)?,
            ip_id,
        })
    }

    /// Number of frames.
    pub fn count(&self) -> usize {
        let payload = self.len - self.hdrs;
        payload.div_ceil(self.mss).max(1)
    }

    /// Write segment `i` of `frame` (the super-segment, without the
    /// virtio-net header) into `out`; returns its length, or `None` if `i`
    /// is out of range or `out` too small.
    pub fn segment(&self, frame: &[u8], i: usize, out: &mut [u8]) -> Option<usize> {
        let n = self.count();
        if i >= n {
            return None;
        }
        let off = i * self.mss;
        let from = self.hdrs + off;
        let to = (from + self.mss).min(self.len);
        let chunk = to - from;
        let total = self.hdrs + chunk;
        out.get_mut(..self.hdrs)?
            .copy_from_slice(frame.get(..self.hdrs)?);
        out.get_mut(self.hdrs..total)?
            .copy_from_slice(frame.get(from..to)?);
        let tcp_len = total - self.l4;
        let pseudo = if self.v6 {
            put16(out, self.l3 + 4, u16::try_from(total - self.l3 - 40).ok()?)?;
            sum(out.get(self.l3 + 8..self.l3 + 40)?, 0)
        } else {
            put16(out, self.l3 + 2, u16::try_from(total - self.l3).ok()?)?;
            put16(
                out,
                self.l3 + 4,
                self.ip_id.wrapping_add(u16::try_from(i).ok()?),
            )?;
            put16(out, self.l3 + 10, 0)?;
            let c = checksum(out.get(self.l3..self.l4)?);
            put16(out, self.l3 + 10, c)?;
            sum(out.get(self.l3 + 12..self.l3 + 20)?, 0)
        };
        // TCP: sequence number, flags, checksum.
        let seq = self.seq.wrapping_add(u32::try_from(off).ok()?);
        out.get_mut(self.l4 + 4..self.l4 + 8)?
            .copy_from_slice(&seq.to_be_bytes());
        let flags = out.get_mut(self.l4 + 13)?;
        if i + 1 < n {
            *flags &= !0x09; // FIN, PSH only on the last segment
        }
        if i > 0 {
            *flags &= !0x80; // CWR only on the first
        }
        put16(out, self.l4 + 16, 0)?;
        let acc = pseudo + u64::from(IPPROTO_TCP) + u64::try_from(tcp_len).ok()?;
        let c = !fold(sum(out.get(self.l4..total)?, acc));
        put16(out, self.l4 + 16, c)?;
        Some(total)
    }
}

/// Largest IPv4 packet a coalesced super-frame may carry.
const GRO_MAX_IP: usize = 65_535;

/// Receive side: merges consecutive, in-order TCP/IPv4 segments of one
/// flow (same addresses, ports, ACK, window, options; only ACK/PSH flags;
/// valid checksum) into one super-frame that is written to the TAP with a
/// GSO virtio-net header, so the kernel handles one packet instead of
/// dozens (what GRO does on a NIC). Anything else is written as it came.
pub struct Coalescer {
    /// Virtio-net header followed by the super-frame.
    buf: Box<[u8]>,
    /// Frame bytes after the header (0: nothing pending).
    len: usize,
    l4: usize,
    hdrs: usize,
    /// Payload size of the first segment (`gso_size`).
    seg: usize,
    count: usize,
    next_seq: u32,
    /// A shorter or PSH segment was added: nothing may follow.
    closed: bool,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("len", &self.len)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new()
    }
}

/// A TCP/IPv4 segment that may be coalesced: (TCP offset, header end,
/// sequence number, flags).
fn gro_candidate(f: &[u8]) -> Option<(usize, usize, u32, u8)> {
    if get16(f, 12)? != ETHERTYPE_IPV4 || *f.get(14)? != 0x45 || *f.get(23)? != IPPROTO_TCP {
        return None;
    }
    // Not a fragment, exact length (no Ethernet padding).
    if get16(f, 20)? & 0x3fff != 0 || usize::from(get16(f, 16)?) + 14 != f.len() {
        return None;
    }
    let l4 = 34;
    let doff = usize::from(*f.get(l4 + 12)? >> 4) * 4;
    let hdrs = l4 + doff;
    let flags = *f.get(l4 + 13)?;
    // ACK, optionally PSH; some payload.
    if doff < 20 || flags & !0x08 != 0x10 || hdrs >= f.len() {
        return None;
    }
    // The checksum must be right: the super-frame's is recomputed.
    let acc = sum(
        f.get(26..34)?,
        u64::from(IPPROTO_TCP) + (f.len() - l4) as u64,
    );
    if fold(sum(f.get(l4..)?, acc)) != 0xffff {
        return None;
    }
    Some((l4, hdrs, get32(f, l4 + 4)?, flags))
}

impl Coalescer {
    /// An empty coalescer.
    pub fn new() -> Self {
        Self {
            buf: vec![0u8; VNET_HDR_LEN + 14 + GRO_MAX_IP].into_boxed_slice(),
            len: 0,
            l4: 0,
            hdrs: 0,
            seg: 0,
            count: 0,
            next_seq: 0,
            closed: false,
        }
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add `frame` to what is pending (or start with it when nothing is).
    /// `false`: it does not belong; [`Self::take`] what is pending, write
    /// it, then offer `frame` again (or write it as it is).
    pub fn add(&mut self, frame: &[u8]) -> bool {
        let Some((l4, hdrs, seq, flags)) = gro_candidate(frame) else {
            return false;
        };
        let payload = frame.len() - hdrs;
        if self.len == 0 {
            let Some(dst) = self.buf.get_mut(VNET_HDR_LEN..VNET_HDR_LEN + frame.len()) else {
                return false;
            };
            dst.copy_from_slice(frame);
            self.len = frame.len();
            self.l4 = l4;
            self.hdrs = hdrs;
            self.seg = payload;
            self.count = 1;
            self.next_seq = seq.wrapping_add(payload as u32);
            self.closed = flags & 0x08 != 0;
            return true;
        }
        let cur = self
            .buf
            .get(VNET_HDR_LEN..VNET_HDR_LEN + self.hdrs)
            .unwrap_or_default();
        let same = |a: usize, b: usize| cur.get(a..b).is_some() && cur.get(a..b) == frame.get(a..b);
        if self.closed
            || hdrs != self.hdrs
            || seq != self.next_seq
            || payload > self.seg
            || self.len - 14 + payload > GRO_MAX_IP
            // Ethernet, TOS, DF, TTL+protocol, addresses.
            || !same(0, 14)
            || !same(15, 16)
            || !same(20, 22)
            || !same(22, 24)
            || !same(26, 34)
            // Ports, ACK number, data offset, window, options.
            || !same(l4, l4 + 4)
            || !same(l4 + 8, l4 + 13)
            || !same(l4 + 14, l4 + 16)
            || !same(l4 + 20, hdrs)
        {
            return false;
        }
        let at = VNET_HDR_LEN + self.len;
        let (Some(dst), Some(src)) = (self.buf.get_mut(at..at + payload), frame.get(hdrs..)) else {
            return false;
        };
        dst.copy_from_slice(src);
        self.len += payload;
        self.count += 1;
        self.next_seq = seq.wrapping_add(payload as u32);
        if payload < self.seg || flags & 0x08 != 0 {
            self.closed = true;
            if let Some(f) = self.buf.get_mut(VNET_HDR_LEN + l4 + 13) {
                *f |= flags & 0x08;
            }
        }
        true
    }

    /// What is pending, ready to write to the TAP (virtio-net header
    /// first), and reset. Empty when nothing is pending.
    pub fn take(&mut self) -> &[u8] {
        let (len, count) = (self.len, self.count);
        self.len = 0;
        self.count = 0;
        let (l4, hdrs, seg) = (self.l4, self.hdrs, self.seg);
        let mut h = VnetHdr::default();
        if count > 1 {
            let Some(f) = self.buf.get_mut(VNET_HDR_LEN..VNET_HDR_LEN + len) else {
                return &[];
            };
            let ok = (|| {
                put16(f, 16, u16::try_from(len - 14).ok()?)?;
                put16(f, 24, 0)?;
                let c = checksum(f.get(14..34)?);
                put16(f, 24, c)?;
                let tcp_len = u64::try_from(len - l4).ok()?;
                let ps = fold(sum(f.get(26..34)?, u64::from(IPPROTO_TCP) + tcp_len));
                put16(f, l4 + 16, ps)?;
                Some(())
            })();
            if ok.is_none() {
                return &[];
            }
            h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: u16::try_from(hdrs).unwrap_or(0),
                gso_size: u16::try_from(seg).unwrap_or(0),
                csum_start: u16::try_from(l4).unwrap_or(0),
                csum_offset: 16,
            };
        }
        h.emit(&mut self.buf);
        self.buf.get(..VNET_HDR_LEN + len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Reference: RFC 1071 over 16-bit words.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for p in data.chunks(2) {
            let w = u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]);
            s += u32::from(w);
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn checksum_matches_reference() {
        let mut x: u32 = 12345;
        let data: Vec<u8> = (0..3001)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        for len in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 1500, 3001] {
            assert_eq!(checksum(&data[..len]), naive(&data[..len]), "{len}");
        }
        // The classic IPv4 header example.
        let ip = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&ip), 0xb861);
    }

    fn tcp_frame(v6: bool, payload: usize, flags: u8) -> Vec<u8> {
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

    fn tcp_checksum_ok(seg: &[u8], v6: bool) -> bool {
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

    fn with_hdr(h: VnetHdr, frame: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; VNET_HDR_LEN];
        h.emit(&mut b);
        b.extend_from_slice(frame);
        b
    }

    #[test]
    fn segments_ipv4_and_ipv6() {
        for v6 in [false, true] {
            let payload = 10_000;
            let frame = tcp_frame(v6, payload, 0x18 | 0x01 | 0x80);
            let h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
                hdr_len: 0,
                gso_size: 1448,
                csum_start: if v6 { 54 } else { 34 },
                csum_offset: 16,
            };
            let mut buf = with_hdr(h, &frame);
            let r = classify(&mut buf, SEG_FRAME_MAX).unwrap();
            assert!(matches!(r, Read::Tso(_)), "{r:?}");
            let Read::Tso(t) = r else { return };
            let hdrs = if v6 { 86 } else { 66 };
            let mss = SEG_FRAME_MAX - hdrs;
            assert_eq!(t.count(), payload.div_ceil(mss));
            let mut out = vec![0u8; 2000];
            let mut joined = Vec::new();
            for i in 0..t.count() {
                let n = t.segment(&buf[VNET_HDR_LEN..], i, &mut out).unwrap();
                assert!(n <= SEG_FRAME_MAX);
                let seg = &out[..n];
                assert!(tcp_checksum_ok(seg, v6), "segment {i}");
                if v6 {
                    assert_eq!(usize::from(get16(seg, 18).unwrap()), n - 54);
                } else {
                    assert_eq!(usize::from(get16(seg, 16).unwrap()), n - 14);
                    assert_eq!(checksum(&seg[14..34]), 0);
                    assert_eq!(get16(seg, 18).unwrap(), 0xfffeu16.wrapping_add(i as u16));
                }
                let seq = get32(seg, hdrs - 32 + 4).unwrap();
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add((i * mss) as u32));
                let fl = seg[hdrs - 32 + 13];
                let last = i + 1 == t.count();
                assert_eq!(fl & 0x09 != 0, last, "FIN/PSH on {i}");
                assert_eq!(fl & 0x80 != 0, i == 0, "CWR on {i}");
                assert_eq!(fl & 0x10, 0x10, "ACK kept");
                joined.extend_from_slice(&seg[hdrs..]);
            }
            assert_eq!(joined, frame[hdrs..]);
            assert!(
                t.segment(&buf[VNET_HDR_LEN..], t.count(), &mut out)
                    .is_none()
            );
            assert!(
                t.segment(&buf[VNET_HDR_LEN..], 0, &mut out[..100])
                    .is_none()
            );
        }
    }

    #[test]
    fn partial_checksum_completed() {
        let frame = tcp_frame(false, 100, 0x18);
        // Kernel style: the field holds the pseudo-header sum.
        let mut f = frame.clone();
        let tcp_len = f.len() - 34;
        let ps = fold(sum(&f[26..34], 6 + tcp_len as u64));
        f[50..52].copy_from_slice(&ps.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let mut buf = with_hdr(h, &f);
        let r = classify(&mut buf, SEG_FRAME_MAX).unwrap();
        assert_eq!(
            r,
            Read::Frame {
                start: VNET_HDR_LEN,
                end: buf.len()
            }
        );
        assert!(tcp_checksum_ok(&buf[VNET_HDR_LEN..], false));
        // No flag: untouched.
        let mut buf = with_hdr(VnetHdr::default(), &frame);
        classify(&mut buf, SEG_FRAME_MAX).unwrap();
        assert_eq!(&buf[VNET_HDR_LEN..], &frame[..]);
    }

    #[test]
    fn hostile_input_is_rejected_without_panic() {
        assert_eq!(classify(&mut [0u8; 5], 1376), Err(OffloadError::Short));
        let bad_off = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 60,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let mut b = with_hdr(bad_off, &[0u8; 64]);
        assert_eq!(classify(&mut b, 1376), Err(OffloadError::BadChecksumOffset));
        let udp = VnetHdr {
            gso_type: 5,
            ..VnetHdr::default()
        };
        let mut b = with_hdr(udp, &[0u8; 64]);
        assert_eq!(classify(&mut b, 1376), Err(OffloadError::UnsupportedGso(5)));
        // TSO header claims on garbage / truncated frames, every length.
        let frame = tcp_frame(false, 3000, 0x10);
        for gso in [GSO_TCPV4, GSO_TCPV6] {
            for len in 0..120 {
                let h = VnetHdr {
                    gso_type: gso,
                    gso_size: 1448,
                    ..VnetHdr::default()
                };
                let mut b = with_hdr(h, &frame[..len]);
                if let Ok(Read::Tso(t)) = classify(&mut b, 1376) {
                    let mut out = vec![0u8; 2000];
                    for i in 0..t.count() {
                        let _ = t.segment(&b[VNET_HDR_LEN..], i, &mut out);
                    }
                }
            }
        }
        // Too small a frame budget for the headers.
        let h = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 1448,
            ..VnetHdr::default()
        };
        let mut b = with_hdr(h, &frame);
        assert_eq!(classify(&mut b, 100), Err(OffloadError::BadSegment));
    }

    #[test]
    fn coalesces_what_was_segmented_and_nothing_else() {
        let frame = tcp_frame(false, 20_000, 0x18);
        let h = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 1448,
            ..VnetHdr::default()
        };
        let mut buf = with_hdr(h, &frame);
        let r = classify(&mut buf, SEG_FRAME_MAX).unwrap();
        assert!(matches!(r, Read::Tso(_)), "{r:?}");
        let Read::Tso(t) = r else { return };
        let mut segs = Vec::new();
        let mut out = vec![0u8; 2000];
        for i in 0..t.count() {
            let n = t.segment(&buf[VNET_HDR_LEN..], i, &mut out).unwrap();
            segs.push(out[..n].to_vec());
        }
        let mut co = Coalescer::new();
        for s in &segs {
            assert!(co.add(s));
        }
        // Anything after the short last segment starts anew.
        assert!(!co.add(&segs[0]));
        let sup = co.take().to_vec();
        assert!(co.is_empty());
        let vh = VnetHdr::parse(&sup).unwrap();
        assert_eq!(vh.gso_type, GSO_TCPV4);
        assert_eq!(vh.flags, F_NEEDS_CSUM);
        assert_eq!(usize::from(vh.gso_size), SEG_FRAME_MAX - 66);
        assert_eq!((vh.csum_start, vh.csum_offset, vh.hdr_len), (34, 16, 66));
        let f = &sup[VNET_HDR_LEN..];
        assert_eq!(f.len(), frame.len());
        assert_eq!(&f[66..], &frame[66..], "payload in order");
        assert_eq!(usize::from(get16(f, 16).unwrap()), f.len() - 14);
        assert_eq!(checksum(&f[14..34]), 0);
        assert_eq!(f[47] & 0x08, 0x08, "PSH of the last segment kept");
        // Completing the partial checksum gives a valid segment.
        let mut g = f.to_vec();
        complete_checksum(&mut g, 34, 16).unwrap();
        assert!(tcp_checksum_ok(&g, false));

        // Out of order, other flow, bad checksum, non-TCP: refused.
        assert!(co.add(&segs[0]));
        assert!(!co.add(&segs[2]), "gap");
        let mut other = segs[1].clone();
        other[35] ^= 1; // source port
        assert!(!co.add(&other), "other flow / bad checksum");
        let mut bad = segs[1].clone();
        bad[100] ^= 0xff;
        assert!(!co.add(&bad), "bad checksum");
        assert!(!co.add(&frame[..60]), "truncated");
        assert!(co.add(&segs[1]));
        let two = co.take().len();
        assert_eq!(two, VNET_HDR_LEN + 66 + 2 * (SEG_FRAME_MAX - 66));
        // A lone segment goes out unchanged behind a zero header.
        assert!(co.add(&segs[3]));
        let one = co.take();
        assert_eq!(&one[..VNET_HDR_LEN], &[0u8; VNET_HDR_LEN]);
        assert_eq!(&one[VNET_HDR_LEN..], &segs[3][..]);
        // IPv6 and garbage are not candidates.
        assert!(!co.add(&tcp_frame(true, 100, 0x10)));
        for len in 0..80 {
            assert!(!co.add(&frame[..len]));
        }
        assert!(co.is_empty());
    }
}
