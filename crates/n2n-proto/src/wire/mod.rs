//! The n2n v3 wire codec (spec: `wire.md`), byte-exact with C n2n 3.1.1.
//!
//! Two levels, smoltcp style:
//!
//! * zero-copy views over a byte buffer, validated once by `new_checked`
//!   and panic-free afterwards: [`HeaderView`] (any message) and
//!   [`PacketView`] (the per-packet hot path);
//! * value reprs, one per message type, each with `parse(datagram)`,
//!   `emit(&header, buf)` and `buffer_len()`, plus the [`Message`] enum with
//!   [`decode`] / [`encode`].
//!
//! All functions work on *plain* headers: header encryption (crypto.md §4)
//! is removed before decoding and applied after encoding. Nothing here
//! allocates. Decoding follows the strict rules of wire.md §8: every field
//! is length-checked, auth tokens over 48 bytes and supernode lists over 44
//! entries are refused, trailing bytes after a complete message are ignored.
//!
//! Relay helpers for supernodes: [`relay_reencode`] (PACKET/REGISTER with
//! the sender's socket added) and the mutable [`HeaderView`] setters
//! (TTL/flags rewrite of any message in place).

mod body;
mod error;
mod field;
mod header;
mod packet;
mod peer;
mod register;
mod supernode;
pub mod tcp;

pub use error::{NeverSentType, WireError};
pub use header::{
    DEFAULT_TTL, Flags, HEADER_LEN, Header, HeaderView, MSG_TYPE_MAX_TYPE, MsgType, TYPE_MASK,
    VERSION, field as header_field, looks_plain,
};
pub use packet::{
    MAX_PACKET_OVERHEAD, PACKET_HEADER_LEN, PACKET_HEADER_LEN_MAX, PACKET_HEADER_LEN_SOCK, Packet,
    PacketView, max_overhead, packet_header_len, relay_reencode,
};
pub use peer::{PeerInfo, QueryPeer, VERSION_FIELD_LEN};
pub use register::{Register, RegisterAck};
pub use supernode::{
    MAX_SN_ENTRIES, RegisterSuper, RegisterSuperAck, RegisterSuperNak, SnEntry, SnList, SnListBuf,
    UnregisterSuper,
};

use body::{Body, emit_datagram};

/// Any decodable n2n message (the common header is returned separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    /// Type 1.
    Register(Register),
    /// Type 3 (payload borrowed from the datagram).
    Packet(Packet<'a>),
    /// Type 4.
    RegisterAck(RegisterAck),
    /// Type 5.
    RegisterSuper(RegisterSuper),
    /// Type 6.
    UnregisterSuper(UnregisterSuper),
    /// Type 7 (supernode list borrowed from the datagram).
    RegisterSuperAck(RegisterSuperAck<'a>),
    /// Type 8.
    RegisterSuperNak(RegisterSuperNak),
    /// Type 10.
    PeerInfo(PeerInfo),
    /// Type 11.
    QueryPeer(QueryPeer),
    /// Type 12: the common header alone.
    ReRegisterSuper,
}

impl Message<'_> {
    /// The message type.
    #[must_use]
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Register(_) => MsgType::Register,
            Message::Packet(_) => MsgType::Packet,
            Message::RegisterAck(_) => MsgType::RegisterAck,
            Message::RegisterSuper(_) => MsgType::RegisterSuper,
            Message::UnregisterSuper(_) => MsgType::UnregisterSuper,
            Message::RegisterSuperAck(_) => MsgType::RegisterSuperAck,
            Message::RegisterSuperNak(_) => MsgType::RegisterSuperNak,
            Message::PeerInfo(_) => MsgType::PeerInfo,
            Message::QueryPeer(_) => MsgType::QueryPeer,
            Message::ReRegisterSuper => MsgType::ReRegisterSuper,
        }
    }

    /// Length of the whole datagram [`encode`] writes for this message.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::Register(m) => m.buffer_len(),
            Message::Packet(m) => m.buffer_len(),
            Message::RegisterAck(m) => m.buffer_len(),
            Message::RegisterSuper(m) => m.buffer_len(),
            Message::UnregisterSuper(m) => m.buffer_len(),
            Message::RegisterSuperAck(m) => m.buffer_len(),
            Message::RegisterSuperNak(m) => m.buffer_len(),
            Message::PeerInfo(m) => m.buffer_len(),
            Message::QueryPeer(m) => m.buffer_len(),
            Message::ReRegisterSuper => HEADER_LEN,
        }
    }
}

fn body_of<'a, B: Body<'a>>(flags: Flags, datagram: &'a [u8]) -> Result<B, WireError> {
    B::parse_body(flags, &mut field::Reader::new(datagram, HEADER_LEN))
}

/// Decodes a plain-header datagram into its header and message.
///
/// Errors name the drop reason: [`WireError::TooShort`], `BadVersion`,
/// `UnknownType`, `NeverSent` (types 0, 2, 9), `Truncated`,
/// `TokenTooLarge`, `TooManySupernodes`. TTL 0 decodes (dropping it is
/// supernode policy). Never panics.
pub fn decode(datagram: &[u8]) -> Result<(Header, Message<'_>), WireError> {
    let (header, ty) = Header::parse(datagram)?;
    let f = header.flags;
    let msg = match ty {
        MsgType::Register => Message::Register(body_of(f, datagram)?),
        MsgType::Packet => Message::Packet(body_of(f, datagram)?),
        MsgType::RegisterAck => Message::RegisterAck(body_of(f, datagram)?),
        MsgType::RegisterSuper => Message::RegisterSuper(body_of(f, datagram)?),
        MsgType::UnregisterSuper => Message::UnregisterSuper(body_of(f, datagram)?),
        MsgType::RegisterSuperAck => Message::RegisterSuperAck(body_of(f, datagram)?),
        MsgType::RegisterSuperNak => Message::RegisterSuperNak(body_of(f, datagram)?),
        MsgType::PeerInfo => Message::PeerInfo(body_of(f, datagram)?),
        MsgType::QueryPeer => Message::QueryPeer(body_of(f, datagram)?),
        MsgType::ReRegisterSuper => Message::ReRegisterSuper,
    };
    Ok((header, msg))
}

/// Encodes `header` + `msg` at the start of `buf`; returns the length.
///
/// The type bits come from `msg`; for messages with an optional socket the
/// SOCKET flag follows the socket's presence, other flags are written as in
/// `header`. Fails only with [`WireError::BufferTooSmall`].
pub fn encode(header: &Header, msg: &Message<'_>, buf: &mut [u8]) -> Result<usize, WireError> {
    match msg {
        Message::Register(m) => emit_datagram(m, header, buf),
        Message::Packet(m) => emit_datagram(m, header, buf),
        Message::RegisterAck(m) => emit_datagram(m, header, buf),
        Message::RegisterSuper(m) => emit_datagram(m, header, buf),
        Message::UnregisterSuper(m) => emit_datagram(m, header, buf),
        Message::RegisterSuperAck(m) => emit_datagram(m, header, buf),
        Message::RegisterSuperNak(m) => emit_datagram(m, header, buf),
        Message::PeerInfo(m) => emit_datagram(m, header, buf),
        Message::QueryPeer(m) => emit_datagram(m, header, buf),
        Message::ReRegisterSuper => header.emit(MsgType::ReRegisterSuper, buf),
    }
}
