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
    /// Compression id.
    pub compression: CompressionId,
    /// Transform id.
    pub transform: TransformId,
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
        w.u8(self.compression.0)?;
        w.u8(self.transform.0)
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
            compression: CompressionId(r.u8()?),
            transform: TransformId(r.u8()?),
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
        self.mac_at(24)
    }

    /// Bytes 30..36.
    pub fn dst_mac(&self) -> Mac {
        self.mac_at(30)
    }

    /// The socket at 36, if the SOCKET flag is set.
    pub fn sock(&self) -> Option<PeerSock> {
        if self.flags().contains(Flags::SOCKET) {
            Reader::new(self.buf.as_ref(), 36).sock().ok()
        } else {
            None
        }
    }

    /// Compression id (byte `header_len - 2`).
    pub fn compression(&self) -> CompressionId {
        CompressionId(
            self.buf
                .as_ref()
                .get(self.header_len - 2)
                .copied()
                .unwrap_or(0),
        )
    }

    /// Transform id (byte `header_len - 1`).
    pub fn transform(&self) -> TransformId {
        TransformId(
            self.buf
                .as_ref()
                .get(self.header_len - 1)
                .copied()
                .unwrap_or(0),
        )
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
