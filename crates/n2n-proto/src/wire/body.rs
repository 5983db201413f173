//! Shared plumbing: every message repr implements [`Body`] and gets the
//! public `parse` / `emit` / `buffer_len` methods from [`datagram_methods!`].

use super::WireError;
use super::field::{Reader, Writer, check_out_len};
use super::header::{Flags, HEADER_LEN, Header, MsgType};

/// The part of a message after the common header.
pub(crate) trait Body<'a>: Sized {
    /// The message type this body belongs to.
    const TYPE: MsgType;
    /// Parses the body; the reader starts at offset 24 of the datagram.
    fn parse_body(flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError>;
    /// Writes the body; the writer starts at offset 24.
    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError>;
    /// Length of the body.
    fn body_len(&self) -> usize;
    /// `Some(present)` for messages whose SOCKET flag announces an optional
    /// socket field: the flag written is then forced to match.
    fn socket_flag(&self) -> Option<bool> {
        None
    }
}

pub(crate) fn parse_datagram<'a, B: Body<'a>>(
    datagram: &'a [u8],
) -> Result<(Header, B), WireError> {
    let (header, ty) = Header::parse(datagram)?;
    if ty != B::TYPE {
        return Err(WireError::WrongType {
            expected: B::TYPE,
            got: ty.code(),
        });
    }
    let mut r = Reader::new(datagram, HEADER_LEN);
    let body = B::parse_body(header.flags, &mut r)?;
    Ok((header, body))
}

/// The flags actually written for `body` under `header`.
pub(crate) fn effective_flags<'a, B: Body<'a>>(header: &Header, body: &B) -> Flags {
    match body.socket_flag() {
        Some(on) => header.flags.with(Flags::SOCKET, on),
        None => header.flags,
    }
}

pub(crate) fn emit_datagram<'a, B: Body<'a>>(
    body: &B,
    header: &Header,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    check_out_len(buf, HEADER_LEN + body.body_len())?;
    let h = Header {
        flags: effective_flags(header, body),
        ..*header
    };
    h.emit(B::TYPE, buf)?;
    let mut w = Writer::new(buf, HEADER_LEN);
    body.emit_body(&mut w)?;
    Ok(w.pos())
}

/// Adds `parse(datagram) -> (Header, Self)`, `emit(&self, &Header, buf)` and
/// `buffer_len()` to a [`Body`] implementor.
macro_rules! datagram_methods {
    ($name:ident $(<$lt:lifetime>)?) => {
        impl<'a> $name $(<$lt>)? {
            /// Parses a whole datagram (common header included). Fails unless
            /// the header is valid, the type matches and every field is
            /// present; trailing bytes are ignored.
            pub fn parse(datagram: &'a [u8]) -> Result<($crate::wire::Header, Self), $crate::wire::WireError> {
                $crate::wire::body::parse_datagram(datagram)
            }

            /// Writes the whole datagram (common header with this message's
            /// type, then the body) at the start of `buf`; returns its length.
            /// For messages with an optional socket the SOCKET flag is set
            /// exactly when the socket is present.
            pub fn emit(&self, header: &$crate::wire::Header, buf: &mut [u8]) -> Result<usize, $crate::wire::WireError> {
                $crate::wire::body::emit_datagram(self, header, buf)
            }

            /// Length of the whole datagram [`emit`](Self::emit) writes.
            #[must_use]
            pub fn buffer_len(&self) -> usize {
                $crate::wire::HEADER_LEN + <Self as $crate::wire::body::Body<'a>>::body_len(self)
            }
        }
    };
}
pub(crate) use datagram_methods;
