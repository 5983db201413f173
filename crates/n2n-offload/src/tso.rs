//! TAP reads: complete a partial checksum, or cut a TCP super-segment
//! into frames of at most a chosen size, each with its own IPv4/IPv6
//! length, IPv4 id and header checksum, TCP sequence number, flags and
//! checksum — what a NIC's TSO would produce.

use crate::bytes::{get16, get32, put16};
use crate::checksum::{checksum, complete_checksum, fold, sum};
use crate::consts::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, IPPROTO_TCP};
use crate::vnet::{F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, VNET_HDR_LEN, VnetHdr};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testutil::{SEG_FRAME_MAX, tcp_checksum_ok, tcp_frame, with_hdr};

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
}
