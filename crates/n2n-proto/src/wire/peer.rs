//! QUERY_PEER (type 11, also PING) and PEER_INFO (type 10, also PONG).

use super::WireError;
use super::body::{Body, datagram_methods};
use super::field::{Reader, Writer};
use super::header::{Flags, MsgType};
use crate::types::{Mac, PeerSock};

/// Length of the PEER_INFO version string field.
pub const VERSION_FIELD_LEN: usize = 20;

/// PEER_INFO (type 10), wire.md §5.8: answer to QUERY_PEER; "PONG" when
/// `mac` is null.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 2 | aflags (0) |
/// | 26 | 6 | src_mac (PONG: supernode MAC; else the asking edge) |
/// | 32 | 6 | mac (the peer described; null in a PONG) |
/// | 38 | 8/20 | sock, mandatory: peer's public socket (PONG: requester's own) |
/// | 46 | 8/20 | opt preferred_sock (SOCKET flag) |
/// | 46/54 | 4 | load |
/// | 50/58 | 4 | uptime (seconds) |
/// | 54/62 | 20 | version string, raw |
///
/// Length 74 (82 with a preferred socket). C fills load/uptime/version with
/// stack garbage except in a PONG: they are kept raw (exact re-encode) and
/// should only be trusted when [`is_pong`](Self::is_pong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// Always 0 from C.
    pub aflags: u16,
    /// See table.
    pub src_mac: Mac,
    /// The peer described (null in a PONG).
    pub mac: Mac,
    /// Public socket.
    pub sock: PeerSock,
    /// Preferred (LAN) socket.
    pub preferred_sock: Option<PeerSock>,
    /// Supernode load.
    pub load: u32,
    /// Supernode uptime in seconds.
    pub uptime: u32,
    /// Version string field, NUL terminated, raw (bytes after the NUL kept).
    pub version: [u8; VERSION_FIELD_LEN],
}

impl PeerInfo {
    /// A null `mac`: the answer to a PING.
    #[must_use]
    pub fn is_pong(&self) -> bool {
        self.mac.is_null()
    }

    /// Version bytes up to the first NUL.
    #[must_use]
    pub fn version_bytes(&self) -> &[u8] {
        let end = self
            .version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(VERSION_FIELD_LEN);
        self.version.get(..end).unwrap_or(&self.version)
    }

    /// A zero-padded version field from text (at most 19 bytes kept).
    #[must_use]
    pub fn version_field(s: &str) -> [u8; VERSION_FIELD_LEN] {
        let mut f = [0u8; VERSION_FIELD_LEN];
        for (d, c) in f.iter_mut().take(VERSION_FIELD_LEN - 1).zip(s.as_bytes()) {
            *d = *c;
        }
        f
    }
}

impl<'a> Body<'a> for PeerInfo {
    const TYPE: MsgType = MsgType::PeerInfo;

    fn parse_body(flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(PeerInfo {
            aflags: r.u16()?,
            src_mac: r.mac()?,
            mac: r.mac()?,
            sock: r.sock()?,
            preferred_sock: if flags.contains(Flags::SOCKET) {
                Some(r.sock()?)
            } else {
                None
            },
            load: r.u32()?,
            uptime: r.u32()?,
            version: r.array()?,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u16(self.aflags)?;
        w.mac(&self.src_mac)?;
        w.mac(&self.mac)?;
        w.sock(&self.sock)?;
        if let Some(s) = &self.preferred_sock {
            w.sock(s)?;
        }
        w.u32(self.load)?;
        w.u32(self.uptime)?;
        w.put(&self.version)
    }

    fn body_len(&self) -> usize {
        2 + 6
            + 6
            + self.sock.encoded_len()
            + self.preferred_sock.map_or(0, |s| s.encoded_len())
            + 4
            + 4
            + 20
    }

    fn socket_flag(&self) -> Option<bool> {
        Some(self.preferred_sock.is_some())
    }
}
datagram_methods!(PeerInfo);

/// QUERY_PEER (type 11), wire.md §5.9: ask for a peer's socket; a null
/// `target_mac` makes it a PING.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 6 | src_mac (asking edge) |
/// | 30 | 6 | target_mac (null = PING) |
/// | 36 | 2 | aflags (0) |
///
/// Length 38.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryPeer {
    /// The asking edge.
    pub src_mac: Mac,
    /// The peer asked about; null for a PING.
    pub target_mac: Mac,
    /// Always 0 from C.
    pub aflags: u16,
}

impl QueryPeer {
    /// A null target: supernode PING.
    #[must_use]
    pub fn is_ping(&self) -> bool {
        self.target_mac.is_null()
    }
}

impl<'a> Body<'a> for QueryPeer {
    const TYPE: MsgType = MsgType::QueryPeer;

    fn parse_body(_flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(QueryPeer {
            src_mac: r.mac()?,
            target_mac: r.mac()?,
            aflags: r.u16()?,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.mac(&self.src_mac)?;
        w.mac(&self.target_mac)?;
        w.u16(self.aflags)
    }

    fn body_len(&self) -> usize {
        14
    }
}
datagram_methods!(QueryPeer);
