//! Codec errors: one variant per reason a datagram is dropped or a message
//! cannot be written.

use core::fmt;

use super::header::MsgType;

/// Message types that C n2n 3.1.1 defines but never sends (wire.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeverSentType {
    /// Type 0, "ping" (PING is really a QUERY_PEER with a null target).
    Ping,
    /// Type 2, DEREGISTER.
    Deregister,
    /// Type 9, FEDERATION.
    Federation,
}

impl NeverSentType {
    /// The type code (0, 2 or 9).
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            NeverSentType::Ping => 0,
            NeverSentType::Deregister => 2,
            NeverSentType::Federation => 9,
        }
    }

    /// Upper-case name as in the C sources.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            NeverSentType::Ping => "PING",
            NeverSentType::Deregister => "DEREGISTER",
            NeverSentType::Federation => "FEDERATION",
        }
    }
}

impl fmt::Display for NeverSentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (type {})", self.name(), self.code())
    }
}

/// Why a datagram could not be decoded, or a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the 24-byte common header.
    #[error("datagram of {len} bytes is shorter than the 24-byte common header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// A field runs past the end of the datagram (offsets from the start of the datagram).
    #[error("truncated message: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed up to the end of the field being read.
        need: usize,
        /// Datagram length.
        have: usize,
    },
    /// Version byte is not 3.
    #[error("bad protocol version {0} (expected 3)")]
    BadVersion(u8),
    /// Message type 13..=31.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// Message type 0, 2 or 9: defined by C n2n but never sent.
    #[error("message type {0} is never sent")]
    NeverSent(NeverSentType),
    /// A parser for one message type was given another type.
    #[error("expected a {expected} message, got type {got}")]
    WrongType {
        /// The type the parser handles.
        expected: MsgType,
        /// The type code found in the header.
        got: u8,
    },
    /// Auth `token_size` above 48.
    #[error("auth token_size {0} exceeds 48")]
    TokenTooLarge(u16),
    /// REGISTER_SUPER_ACK `num_sn` above 44.
    #[error("REGISTER_SUPER_ACK lists {0} supernodes, at most 44 are allowed")]
    TooManySupernodes(u8),
    /// The output buffer cannot hold the message.
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Buffer length.
        have: usize,
    },
    /// The relay re-encode only handles PACKET and REGISTER.
    #[error("{0} messages are not relayed with an added socket")]
    NotRelayable(MsgType),
    /// A supernode-list entry was not a multiple of 26 bytes (building an `SnList`).
    #[error("supernode list of {0} bytes is not a whole number of 26-byte entries")]
    BadSnListLength(usize),
}
