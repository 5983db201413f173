//! Receive side: merge in-order TCP/IPv4 segments into one GSO write to
//! the TAP (what GRO does on a NIC).

use crate::bytes::{get16, get32, put16};
use crate::checksum::{checksum, fold, sum};
use crate::consts::{ETHERTYPE_IPV4, IPPROTO_TCP};
use crate::vnet::{F_NEEDS_CSUM, GSO_TCPV4, VNET_HDR_LEN, VnetHdr};

/// Largest IPv4 packet a coalesced super-frame may carry.
const GRO_MAX_IP: usize = 65_535;

/// Merges consecutive, in-order TCP/IPv4 segments of one flow (same
/// addresses, ports, ACK, window, options; only ACK/PSH flags; valid
/// checksum) into one super-frame that is written to the TAP with a GSO
/// virtio-net header, so the kernel handles one packet instead of dozens.
/// Anything else is written as it came.
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
        if len == 0 {
            return &[];
        }
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
    use crate::checksum::complete_checksum;
    use crate::testutil::{SEG_FRAME_MAX, tcp_checksum_ok, tcp_frame, with_hdr};
    use crate::tso::{Read, classify};

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

    #[test]
    fn take_of_nothing_is_empty_and_the_size_is_bounded() {
        let mut co = Coalescer::new();
        assert!(co.take().is_empty());
        // Full-size segments: the super-frame stops below 64 KiB of IP.
        let seg_payload = SEG_FRAME_MAX - 66;
        let mut seq = 1u32;
        let mut added = 0;
        for _ in 0..100 {
            let mut f = tcp_frame(false, seg_payload, 0x10);
            f[38..42].copy_from_slice(&seq.to_be_bytes());
            // Recompute the TCP checksum for the new sequence number.
            f[50..52].copy_from_slice(&[0, 0]);
            let acc = sum(&f[26..34], 6 + (f.len() - 34) as u64);
            let c = !fold(sum(&f[34..], acc));
            f[50..52].copy_from_slice(&c.to_be_bytes());
            if !co.add(&f) {
                break;
            }
            added += 1;
            seq = seq.wrapping_add(seg_payload as u32);
        }
        assert!(added > 1 && added < 100, "{added}");
        let sup = co.take();
        assert!(sup.len() - VNET_HDR_LEN - 14 <= GRO_MAX_IP, "{}", sup.len());
        assert_eq!(
            usize::from(get16(sup, VNET_HDR_LEN + 16).unwrap()) + 14,
            sup.len() - VNET_HDR_LEN
        );
    }
}
