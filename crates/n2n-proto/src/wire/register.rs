//! REGISTER (type 1) and REGISTER_ACK (type 4): edge-to-edge messages.

use super::WireError;
use super::body::{Body, datagram_methods};
use super::field::{Reader, Writer};
use super::header::{Flags, MsgType};
use crate::types::{DevAddr, DevDesc, Mac, PeerSock};

/// REGISTER (type 1), wire.md §5.1: hole punching and keep-alive between edges.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 4 | cookie (see [`crate::types::cookie`]) |
/// | 28 | 6 | src_mac |
/// | 34 | 6 | dst_mac (null for multicast discovery) |
/// | 40 | 8/20 | opt sock (SOCKET flag; added by a relaying supernode) |
/// | 40/48 | 5 | dev_addr |
/// | 45/53 | 16 | dev_desc |
///
/// Length 61, or 69 with an IPv4 socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Register {
    /// Path tag / priority.
    pub cookie: u32,
    /// Sender edge.
    pub src_mac: Mac,
    /// Target edge.
    pub dst_mac: Mac,
    /// Sender's public socket, added by a relaying supernode.
    pub sock: Option<PeerSock>,
    /// Sender's TAP address.
    pub dev_addr: DevAddr,
    /// Sender's description.
    pub dev_desc: DevDesc,
}

impl<'a> Body<'a> for Register {
    const TYPE: MsgType = MsgType::Register;

    fn parse_body(flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(Register {
            cookie: r.u32()?,
            src_mac: r.mac()?,
            dst_mac: r.mac()?,
            sock: if flags.contains(Flags::SOCKET) {
                Some(r.sock()?)
            } else {
                None
            },
            dev_addr: r.dev_addr()?,
            dev_desc: r.dev_desc()?,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.cookie)?;
        w.mac(&self.src_mac)?;
        w.mac(&self.dst_mac)?;
        if let Some(s) = &self.sock {
            w.sock(s)?;
        }
        w.dev_addr(&self.dev_addr)?;
        w.dev_desc(&self.dev_desc)
    }

    fn body_len(&self) -> usize {
        4 + 6 + 6 + self.sock.map_or(0, |s| s.encoded_len()) + 5 + 16
    }

    fn socket_flag(&self) -> Option<bool> {
        Some(self.sock.is_some())
    }
}
datagram_methods!(Register);

/// REGISTER_ACK (type 4), wire.md §5.3: direct answer to a REGISTER.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 4 | cookie (copied from the REGISTER) |
/// | 28 | 6 | **dst_mac** = src_mac of the REGISTER |
/// | 34 | 6 | **src_mac** = the acknowledging edge |
/// | 40 | 8/20 | opt sock (SOCKET flag; C never sends it) |
///
/// Length 40. Destination MAC comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterAck {
    /// Cookie of the REGISTER being acknowledged.
    pub cookie: u32,
    /// The edge that sent the REGISTER.
    pub dst_mac: Mac,
    /// The acknowledging edge.
    pub src_mac: Mac,
    /// Optional socket (accepted, never sent by C).
    pub sock: Option<PeerSock>,
}

impl<'a> Body<'a> for RegisterAck {
    const TYPE: MsgType = MsgType::RegisterAck;

    fn parse_body(flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(RegisterAck {
            cookie: r.u32()?,
            dst_mac: r.mac()?,
            src_mac: r.mac()?,
            sock: if flags.contains(Flags::SOCKET) {
                Some(r.sock()?)
            } else {
                None
            },
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.cookie)?;
        w.mac(&self.dst_mac)?;
        w.mac(&self.src_mac)?;
        if let Some(s) = &self.sock {
            w.sock(s)?;
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        16 + self.sock.map_or(0, |s| s.encoded_len())
    }

    fn socket_flag(&self) -> Option<bool> {
        Some(self.sock.is_some())
    }
}
datagram_methods!(RegisterAck);
