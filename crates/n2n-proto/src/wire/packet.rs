//! PACKET (type 3), its zero-copy view, and the supernode relay re-encode.

use super::WireError;
use super::body::{Body, datagram_methods, effective_flags};
use super::field::{Reader, Writer, check_out_len, write_sock};
use super::header::{Flags, HEADER_LEN, Header, HeaderView, MsgType};
use crate::types::{CompressionId, Mac, PeerSock, TransformId};

/// Header length of a PACKET without socket (24 + 6 + 6 + 1 + 1).
pub const PACKET_HEADER_LEN: usize = 38;
/// Header length of a PACKET with an IPv4 socket (relayed by a supernode).
pub const PACKET_HEADER_LEN_SOCK: usize = 46;
/// Largest PACKET header: with an IPv6 socket (relayed by a supernode).
pub const PACKET_HEADER_LEN_MAX: usize = PACKET_HEADER_LEN + PeerSock::V6_LEN;

/// Offsets of the fixed PACKET fields (wire.md §5.2).
const SRC_MAC_AT: usize = HEADER_LEN;
const DST_MAC_AT: usize = HEADER_LEN + 6;
const SOCK_AT: usize = HEADER_LEN + 12;

/// The most bytes a PACKET datagram can be longer than the Ethernet frame
/// it carries with transform `transform`: the largest PACKET header (a
/// supernode's relay adds the sender's socket, 58 bytes with IPv6) plus the
/// transform's overhead. Header encryption works in place and adds nothing
/// (the user/password trailer of crypto.md §5.4 is never put on PACKETs).
///
/// [`MAX_PACKET_OVERHEAD`] bounds it for every transform.
#[must_use]
pub const fn max_overhead(transform: TransformId) -> usize {
    PACKET_HEADER_LEN_MAX + transform.overhead()
}

/// [`max_overhead`] of the costliest transform (86: 58-byte relayed header
/// plus the AEADs' 28).
pub const MAX_PACKET_OVERHEAD: usize = PACKET_HEADER_LEN_MAX + TransformId::MAX_OVERHEAD;

/// PACKET header length for a given optional socket: 38, 46 (IPv4) or 58 (IPv6).
#[must_use]
pub fn packet_header_len(sock: Option<&PeerSock>) -> usize {
    PACKET_HEADER_LEN + sock.map_or(0, PeerSock::encoded_len)
}

/// PACKET (type 3), wire.md §5.2: an encapsulated, transformed Ethernet frame.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 6 | src_mac |
/// | 30 | 6 | dst_mac |
/// | 36 | 8/20 | opt sock (SOCKET flag; added by a relaying supernode) |
/// | 36/44 | 1 | compression id (**before** the transform id) |
/// | 37/45 | 1 | transform id |
/// | 38/46 | … | payload to the end of the datagram |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet<'a> {
    /// Sending edge's TAP MAC.
    pub src_mac: Mac,
    /// Destination edge MAC (or broadcast/multicast).
    pub dst_mac: Mac,
    /// Original sender's public socket, added by a relaying supernode.
    pub sock: Option<PeerSock>,
    /// Compression id, the raw wire byte (unknown ids are kept so that they
    /// re-encode byte-exactly): see [`CompressionId::try_from`].
    pub compression: u8,
    /// Transform id, the raw wire byte: see [`TransformId::try_from`].
    pub transform: u8,
    /// The transformed payload (runs to the end of the datagram).
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Length of the header part (38, 46 or 58), i.e. the payload offset.
    #[must_use]
    pub fn header_len(&self) -> usize {
        packet_header_len(self.sock.as_ref())
    }

    /// Writes only the header part (common header, MACs, socket, ids) at the
    /// start of `buf`, ignoring `self.payload`; returns the header length.
    ///
    /// For in-place encryption: build the payload at `buf[header_len()..]`
    /// first (or after), then call this on the front of the same buffer.
    pub fn emit_header(&self, header: &Header, buf: &mut [u8]) -> Result<usize, WireError> {
        let need = self.header_len();
        check_out_len(buf, need)?;
        let h = Header {
            flags: effective_flags(header, self),
            ..*header
        };
        h.emit(MsgType::Packet, buf)?;
        let mut w = Writer::new(buf, HEADER_LEN);
        self.emit_fields(&mut w)?;
        Ok(w.pos())
    }

    fn emit_fields(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.mac(&self.src_mac)?;
        w.mac(&self.dst_mac)?;
        if let Some(s) = &self.sock {
            w.sock(s)?;
        }
        w.u8(self.compression)?;
        w.u8(self.transform)
    }
}

impl<'a> Body<'a> for Packet<'a> {
    const TYPE: MsgType = MsgType::Packet;

    fn parse_body(flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(Packet {
            src_mac: r.mac()?,
            dst_mac: r.mac()?,
            sock: if flags.contains(Flags::SOCKET) {
                Some(r.sock()?)
            } else {
                None
            },
            compression: r.u8()?,
            transform: r.u8()?,
            payload: r.rest(),
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        self.emit_fields(w)?;
        w.put(self.payload)
    }

    fn body_len(&self) -> usize {
        self.header_len() - HEADER_LEN + self.payload.len()
    }

    fn socket_flag(&self) -> Option<bool> {
        Some(self.sock.is_some())
    }
}
datagram_methods!(Packet<'a>);

/// Zero-copy view of a PACKET datagram, for the per-packet hot path.
///
/// [`new_checked`](Self::new_checked) validates version, type and length
/// once; afterwards no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<T: AsRef<[u8]>> {
    buf: T,
    header_len: usize,
}

impl<T: AsRef<[u8]>> PacketView<T> {
    /// Checks the common header (version 3, type PACKET) and that the
    /// datagram holds the whole PACKET header (socket included if flagged).
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let hv = HeaderView::new_checked(buf.as_ref())?;
        let ty = hv.msg_type()?;
        if ty != MsgType::Packet {
            return Err(WireError::WrongType {
                expected: MsgType::Packet,
                got: ty.code(),
            });
        }
        let mut r = Reader::new(buf.as_ref(), HEADER_LEN);
        r.take(12)?;
        if hv.flags().contains(Flags::SOCKET) {
            r.sock()?;
        }
        r.take(2)?;
        let header_len = r.pos();
        Ok(PacketView { buf, header_len })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The common header view.
    pub fn header_view(&self) -> HeaderView<&[u8]> {
        HeaderView::new_unchecked(self.buf.as_ref())
    }

    /// The common header as a value.
    pub fn header(&self) -> Header {
        self.header_view().to_header()
    }

    /// TTL byte.
    pub fn ttl(&self) -> u8 {
        self.header_view().ttl()
    }

    /// Flag bits.
    pub fn flags(&self) -> Flags {
        self.header_view().flags()
    }

    /// Payload offset: 38, 46 (IPv4 socket) or 58 (IPv6 socket).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    fn mac_at(&self, off: usize) -> Mac {
        let mut m = [0u8; 6];
        if let Some(s) = self.buf.as_ref().get(off..off + 6) {
            m.copy_from_slice(s);
        }
        Mac(m)
    }

    /// Bytes 24..30.
    pub fn src_mac(&self) -> Mac {
        self.mac_at(SRC_MAC_AT)
    }

    /// Bytes 30..36.
    pub fn dst_mac(&self) -> Mac {
        self.mac_at(DST_MAC_AT)
    }

    /// The socket at 36, if the SOCKET flag is set.
    pub fn sock(&self) -> Option<PeerSock> {
        if self.flags().contains(Flags::SOCKET) {
            Reader::new(self.buf.as_ref(), SOCK_AT).sock().ok()
        } else {
            None
        }
    }

    /// Compression id, the raw byte (`header_len - 2`): see
    /// [`CompressionId::try_from`].
    pub fn compression(&self) -> u8 {
        self.buf
            .as_ref()
            .get(self.header_len - 2)
            .copied()
            .unwrap_or(0)
    }

    /// Transform id, the raw byte (`header_len - 1`): see
    /// [`TransformId::try_from`].
    pub fn transform(&self) -> u8 {
        self.buf
            .as_ref()
            .get(self.header_len - 1)
            .copied()
            .unwrap_or(0)
    }

    /// The transformed payload (from `header_len` to the end).
    pub fn payload(&self) -> &[u8] {
        self.buf.as_ref().get(self.header_len..).unwrap_or(&[])
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The value form, borrowing the payload.
    pub fn to_repr(&self) -> Packet<'_> {
        Packet {
            src_mac: self.src_mac(),
            dst_mac: self.dst_mac(),
            sock: self.sock(),
            compression: self.compression(),
            transform: self.transform(),
            payload: self.payload(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> PacketView<T> {
    /// The payload, mutable (in-place decryption).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len;
        self.buf.as_mut().get_mut(h..).unwrap_or(&mut [])
    }

    /// Sets the TTL byte.
    pub fn set_ttl(&mut self, ttl: u8) {
        HeaderView::new_unchecked(self.buf.as_mut()).set_ttl(ttl);
    }

    fn set_mac_at(&mut self, off: usize, mac: Mac) {
        if let Some(d) = self.buf.as_mut().get_mut(off..off + 6) {
            d.copy_from_slice(&mac.0);
        }
    }

    /// Sets srcMac (bytes 24..30).
    pub fn set_src_mac(&mut self, mac: Mac) {
        self.set_mac_at(SRC_MAC_AT, mac);
    }

    /// Sets dstMac (bytes 30..36).
    pub fn set_dst_mac(&mut self, mac: Mac) {
        self.set_mac_at(DST_MAC_AT, mac);
    }

    /// Sets the compression id (byte `header_len - 2`).
    pub fn set_compression(&mut self, id: CompressionId) {
        let at = self.header_len - 2;
        if let Some(b) = self.buf.as_mut().get_mut(at) {
            *b = id.to_wire();
        }
    }

    /// Sets the transform id (byte `header_len - 1`).
    pub fn set_transform(&mut self, id: TransformId) {
        let at = self.header_len - 1;
        if let Some(b) = self.buf.as_mut().get_mut(at) {
            *b = id.to_wire();
        }
    }
}

/// Offset of the optional socket field for the relayable types.
fn sock_offset(ty: MsgType) -> Result<usize, WireError> {
    match ty {
        MsgType::Register => Ok(HEADER_LEN + 4 + 6 + 6),
        MsgType::Packet => Ok(HEADER_LEN + 6 + 6),
        other => Err(WireError::NotRelayable(other)),
    }
}

/// Supernode relay of a PACKET or REGISTER (wire.md §6): copies `datagram`
/// into `out` with TTL `ttl`, flags `| SOCKET | FROM_SUPERNODE`, and
/// `sender` inserted as the socket field (replacing one that is already
/// there). Everything after the socket field, trailing bytes included, is
/// copied unchanged, as the C supernode does. Returns the output length.
///
/// The input must be a complete plain-header REGISTER or PACKET; other types
/// give [`WireError::NotRelayable`]. No allocation.
pub fn relay_reencode(
    datagram: &[u8],
    sender: PeerSock,
    ttl: u8,
    out: &mut [u8],
) -> Result<usize, WireError> {
    let hv = HeaderView::new_checked(datagram)?;
    let ty = hv.msg_type()?;
    let off = sock_offset(ty)?;
    let flags = hv.flags();
    // Validate the whole message and find where the old socket ends.
    let mut r = Reader::new(datagram, HEADER_LEN);
    r.take(off - HEADER_LEN)?;
    if flags.contains(Flags::SOCKET) {
        r.sock()?;
    }
    let rest_at = r.pos();
    match ty {
        MsgType::Register => {
            r.take(5 + 16)?;
        }
        _ => {
            r.take(2)?;
        }
    }
    let rest = datagram.get(rest_at..).unwrap_or(&[]);
    let need = off + sender.encoded_len() + rest.len();
    check_out_len(out, need)?;
    let front = datagram.get(..off).ok_or(WireError::Truncated {
        need: off,
        have: datagram.len(),
    })?;
    let have = out.len();
    let (head, tail) = out
        .split_at_mut_checked(off)
        .ok_or(WireError::BufferTooSmall { need, have })?;
    head.copy_from_slice(front);
    let n = write_sock(tail, &sender)?;
    let rest_out = tail
        .get_mut(n..n + rest.len())
        .ok_or(WireError::BufferTooSmall { need, have })?;
    rest_out.copy_from_slice(rest);
    let mut ov = HeaderView::new_unchecked(&mut *out);
    ov.set_ttl(ttl);
    ov.set_flags(flags | Flags::SOCKET | Flags::FROM_SUPERNODE);
    Ok(need)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::types::Community;

    #[test]
    fn setters_match_emit() {
        let header = Header::new(Community::new("rocks").unwrap());
        let pkt = |dst: Mac, c: CompressionId, t: TransformId| Packet {
            src_mac: Mac([2, 0, 0, 0, 0, 1]),
            dst_mac: dst,
            sock: None,
            compression: c.into(),
            transform: t.into(),
            payload: &[],
        };
        let mut tpl = [0u8; PACKET_HEADER_LEN];
        let n =
            pkt(Mac::NULL, CompressionId::None, TransformId::Null).emit_header(&header, &mut tpl);
        assert_eq!(n, Ok(PACKET_HEADER_LEN));
        for t in TransformId::ALL {
            for c in [CompressionId::None, CompressionId::Lzo, CompressionId::Zstd] {
                for dst in [Mac([2, 0, 0, 0, 0, 2]), Mac::BROADCAST] {
                    let mut want = [0u8; PACKET_HEADER_LEN];
                    pkt(dst, c, t).emit_header(&header, &mut want).unwrap();
                    let mut got = tpl;
                    let mut v = PacketView::new_checked(&mut got[..]).unwrap();
                    v.set_dst_mac(dst);
                    v.set_compression(c);
                    v.set_transform(t);
                    assert_eq!(got, want, "{t} {c} {dst}");
                    let v = PacketView::new_checked(&got[..]).unwrap();
                    assert_eq!((v.compression(), v.transform()), (c.into(), t.into()));
                }
            }
        }
        let mut b = tpl;
        let mut v = PacketView::new_checked(&mut b[..]).unwrap();
        v.set_src_mac(Mac([2, 9, 9, 9, 9, 9]));
        assert_eq!(
            PacketView::new_checked(&b[..]).unwrap().src_mac(),
            Mac([2, 9, 9, 9, 9, 9])
        );
    }

    #[test]
    fn max_overhead_bounds_relayed_packets() {
        assert_eq!(PACKET_HEADER_LEN_MAX, 58);
        assert_eq!(max_overhead(TransformId::Null), 58);
        assert_eq!(max_overhead(TransformId::Aes), 58 + 16);
        let worst = TransformId::ALL.iter().map(|&t| max_overhead(t)).max();
        assert_eq!(worst, Some(MAX_PACKET_OVERHEAD));
        assert_eq!(MAX_PACKET_OVERHEAD, 86);
        // A relayed PACKET (IPv6 sender socket) never exceeds frame + overhead.
        let sender = PeerSock::v6(std::net::Ipv6Addr::LOCALHOST, 1);
        for t in TransformId::ALL {
            let frame = [0u8; 100];
            let payload = vec![0u8; frame.len() + t.overhead()];
            let p = Packet {
                src_mac: Mac([2, 0, 0, 0, 0, 1]),
                dst_mac: Mac([2, 0, 0, 0, 0, 2]),
                sock: None,
                compression: CompressionId::None.into(),
                transform: t.into(),
                payload: &payload,
            };
            let mut d = [0u8; 512];
            let n = super::super::encode(
                &Header::new(Community::new("c").unwrap()),
                &super::super::Message::Packet(p),
                &mut d,
            )
            .unwrap();
            let mut r = [0u8; 512];
            let m = relay_reencode(&d[..n], sender, 1, &mut r).unwrap();
            assert_eq!(m, frame.len() + max_overhead(t), "{t}");
        }
    }
}
