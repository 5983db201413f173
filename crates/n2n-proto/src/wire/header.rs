//! The 24-byte common header (wire.md §2).
//!
//! | off | size | field |
//! |---|---|---|
//! | 0 | 1 | version, always 3 |
//! | 1 | 1 | TTL |
//! | 2 | 2 | flags word, u16 BE: bits 0–4 message type, bits 5–15 flags |
//! | 4 | 20 | community, NUL padded |

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use super::WireError;
use super::error::NeverSentType;
use super::field::check_out_len;
use crate::types::{COMMUNITY_LEN, Community};

/// Length of the common header.
pub const HEADER_LEN: usize = 24;
/// The only protocol version.
pub const VERSION: u8 = 3;
/// TTL put by senders on messages they originate.
pub const DEFAULT_TTL: u8 = 2;
/// Mask of the message type inside the flags word.
pub const TYPE_MASK: u16 = 0x001f;
/// Highest type a supernode accepts in an unencrypted datagram (crypto.md §4.8).
pub const MSG_TYPE_MAX_TYPE: u8 = 11;

/// Constant byte ranges of the common header.
pub mod field {
    use core::ops::Range;
    /// Version byte.
    pub const VERSION: usize = 0;
    /// TTL byte.
    pub const TTL: usize = 1;
    /// Flags word (u16 BE, message type in the low 5 bits).
    pub const FLAGS: Range<usize> = 2..4;
    /// Community field.
    pub const COMMUNITY: Range<usize> = 4..24;
}

/// The flag bits of the flags word (the message type bits are never part of it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// No flag set.
    pub const EMPTY: Flags = Flags(0);
    /// `0x0020`: set by a supernode on everything it originates or relays.
    pub const FROM_SUPERNODE: Flags = Flags(0x0020);
    /// `0x0040`: an optional socket field is present.
    pub const SOCKET: Flags = Flags(0x0040);
    /// `0x0080`: defined, never set.
    pub const OPTIONS: Flags = Flags(0x0080);

    /// Keeps bits 5..=15 of `word` (drops the message type bits).
    #[must_use]
    pub const fn from_bits(word: u16) -> Self {
        Flags(word & !TYPE_MASK)
    }

    /// The bits (type bits zero).
    #[must_use]
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// All bits of `other` are set.
    #[must_use]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clears the bits of `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// Copy with `other` set or cleared.
    #[must_use]
    pub const fn with(self, other: Flags, on: bool) -> Self {
        if on {
            Flags(self.0 | other.0)
        } else {
            Flags(self.0 & !other.0)
        }
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#06x}", self.0)?;
        if self.contains(Flags::FROM_SUPERNODE) {
            f.write_str(" FROM_SN")?;
        }
        if self.contains(Flags::SOCKET) {
            f.write_str(" SOCKET")?;
        }
        if self.contains(Flags::OPTIONS) {
            f.write_str(" OPTIONS")?;
        }
        f.write_str(")")
    }
}

/// The message types that are sent (wire.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MsgType {
    /// 1: edge-to-edge hole punching / keep-alive.
    Register = 1,
    /// 3: encapsulated Ethernet frame.
    Packet = 3,
    /// 4: answer to REGISTER.
    RegisterAck = 4,
    /// 5: registration with a supernode.
    RegisterSuper = 5,
    /// 6: clean leave.
    UnregisterSuper = 6,
    /// 7: registration accepted.
    RegisterSuperAck = 7,
    /// 8: registration refused.
    RegisterSuperNak = 8,
    /// 10: answer to QUERY_PEER (PONG for a PING).
    PeerInfo = 10,
    /// 11: ask for a peer's socket (PING with a null target).
    QueryPeer = 11,
    /// 12: "re-register now" (header only).
    ReRegisterSuper = 12,
}

impl MsgType {
    /// Classifies a type code (the low 5 bits of the flags word).
    pub const fn from_code(code: u8) -> Result<Self, WireError> {
        Ok(match code {
            1 => MsgType::Register,
            3 => MsgType::Packet,
            4 => MsgType::RegisterAck,
            5 => MsgType::RegisterSuper,
            6 => MsgType::UnregisterSuper,
            7 => MsgType::RegisterSuperAck,
            8 => MsgType::RegisterSuperNak,
            10 => MsgType::PeerInfo,
            11 => MsgType::QueryPeer,
            12 => MsgType::ReRegisterSuper,
            0 => return Err(WireError::NeverSent(NeverSentType::Ping)),
            2 => return Err(WireError::NeverSent(NeverSentType::Deregister)),
            9 => return Err(WireError::NeverSent(NeverSentType::Federation)),
            other => return Err(WireError::UnknownType(other)),
        })
    }

    /// The type code.
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Upper-case name as in the C sources / logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            MsgType::Register => "REGISTER",
            MsgType::Packet => "PACKET",
            MsgType::RegisterAck => "REGISTER_ACK",
            MsgType::RegisterSuper => "REGISTER_SUPER",
            MsgType::UnregisterSuper => "UNREGISTER_SUPER",
            MsgType::RegisterSuperAck => "REGISTER_SUPER_ACK",
            MsgType::RegisterSuperNak => "REGISTER_SUPER_NAK",
            MsgType::PeerInfo => "PEER_INFO",
            MsgType::QueryPeer => "QUERY_PEER",
            MsgType::ReRegisterSuper => "RE_REGISTER_SUPER",
        }
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The common header as a value (the version is implied, the message type
/// comes from the message being encoded or decoded).
///
/// On encode the SOCKET bit of `flags` is recomputed for messages whose
/// socket field is optional (REGISTER, PACKET, REGISTER_ACK, REGISTER_SUPER,
/// PEER_INFO); for the others the flags are written as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Time to live.
    pub ttl: u8,
    /// Flag bits (never the type bits).
    pub flags: Flags,
    /// Community field.
    pub community: Community,
}

impl Header {
    /// TTL 2, no flags: what an edge puts on everything it sends.
    #[must_use]
    pub const fn new(community: Community) -> Self {
        Header {
            ttl: DEFAULT_TTL,
            flags: Flags::EMPTY,
            community,
        }
    }

    /// TTL 2, FROM_SUPERNODE: what a supernode puts on messages it originates.
    #[must_use]
    pub const fn from_supernode(community: Community) -> Self {
        Header {
            ttl: DEFAULT_TTL,
            flags: Flags::FROM_SUPERNODE,
            community,
        }
    }

    /// Parses and validates the common header; returns it with the message type.
    pub fn parse(datagram: &[u8]) -> Result<(Header, MsgType), WireError> {
        let v = HeaderView::new_checked(datagram)?;
        let ty = v.msg_type()?;
        Ok((v.to_header(), ty))
    }

    /// Writes the 24-byte header with message type `ty` at the start of `buf`.
    pub fn emit(&self, ty: MsgType, buf: &mut [u8]) -> Result<usize, WireError> {
        self.emit_word(self.flags.bits() | u16::from(ty.code()), buf)
    }

    pub(crate) fn emit_word(&self, word: u16, buf: &mut [u8]) -> Result<usize, WireError> {
        check_out_len(buf, HEADER_LEN)?;
        let mut v = HeaderView::new_unchecked(buf);
        v.set_version(VERSION);
        v.set_ttl(self.ttl);
        v.set_flags_word(word);
        v.set_community(&self.community);
        Ok(HEADER_LEN)
    }
}

/// Zero-copy view of the common header over any byte buffer.
///
/// After [`new_checked`](Self::new_checked) succeeds (length ≥ 24, version 3)
/// no accessor can panic. The message type is not validated here
/// ([`msg_type`](Self::msg_type) does that) so that a supernode can look at
/// TTL and flags of anything.
#[derive(Debug, Clone, Copy)]
pub struct HeaderView<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> HeaderView<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    /// Use [`new_checked`](Self::new_checked) on received data.
    pub const fn new_unchecked(buf: T) -> Self {
        HeaderView { buf }
    }

    /// Checks length (≥ 24) and version (3).
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::TooShort { len: b.len() });
        }
        if b[field::VERSION] != VERSION {
            return Err(WireError::BadVersion(b[field::VERSION]));
        }
        Ok(HeaderView { buf })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// Version byte (3 after `new_checked`).
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[field::VERSION]
    }

    /// TTL byte (0 is a valid decode; dropping it is supernode policy).
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[field::TTL]
    }

    /// The whole flags word, type bits included.
    pub fn flags_word(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[field::FLAGS.start], b[field::FLAGS.start + 1]])
    }

    /// The type code (low 5 bits of the flags word), unvalidated.
    pub fn msg_type_code(&self) -> u8 {
        (self.flags_word() & TYPE_MASK) as u8
    }

    /// The message type, or the error naming why it is not decodable.
    pub fn msg_type(&self) -> Result<MsgType, WireError> {
        MsgType::from_code(self.msg_type_code())
    }

    /// The flag bits.
    pub fn flags(&self) -> Flags {
        Flags::from_bits(self.flags_word())
    }

    /// The 20 community bytes.
    pub fn community_field(&self) -> &[u8] {
        &self.buf.as_ref()[field::COMMUNITY]
    }

    /// The community field as a value (residue kept).
    pub fn community(&self) -> Community {
        let mut f = [0u8; COMMUNITY_LEN];
        f.copy_from_slice(self.community_field());
        Community::from_field(f)
    }

    /// The header as a value.
    pub fn to_header(&self) -> Header {
        Header {
            ttl: self.ttl(),
            flags: self.flags(),
            community: self.community(),
        }
    }

    /// Everything after the common header.
    pub fn body(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HeaderView<T> {
    /// Sets the version byte.
    pub fn set_version(&mut self, v: u8) {
        self.buf.as_mut()[field::VERSION] = v;
    }

    /// Sets the TTL (relaying supernodes write incoming − 1).
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buf.as_mut()[field::TTL] = ttl;
    }

    /// Sets the whole flags word (type bits included).
    pub fn set_flags_word(&mut self, word: u16) {
        self.buf.as_mut()[field::FLAGS].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the flag bits, keeping the type bits.
    pub fn set_flags(&mut self, flags: Flags) {
        let word = (self.flags_word() & TYPE_MASK) | flags.bits();
        self.set_flags_word(word);
    }

    /// Writes the community field.
    pub fn set_community(&mut self, c: &Community) {
        self.buf.as_mut()[field::COMMUNITY].copy_from_slice(c.field());
    }
}

/// The plain-packet heuristic of a supernode (crypto.md §4.8): `true` when
/// the datagram is taken as *not* header-encrypted.
///
/// `len ≥ 24`, byte 23 = 0 (community NUL-terminated), version byte 3,
/// type ≤ 11 and flags word < `0x0080`.
#[must_use]
pub fn looks_plain(datagram: &[u8]) -> bool {
    match datagram.get(..HEADER_LEN) {
        Some(h) => {
            let word = u16::from_be_bytes([h[2], h[3]]);
            h[23] == 0
                && h[0] == VERSION
                && (word & TYPE_MASK) as u8 <= MSG_TYPE_MAX_TYPE
                && word < 0x0080
        }
        None => false,
    }
}
