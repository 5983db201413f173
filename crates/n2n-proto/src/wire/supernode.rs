//! Edge ↔ supernode registration: REGISTER_SUPER (5), UNREGISTER_SUPER (6),
//! REGISTER_SUPER_ACK (7) with its supernode list, REGISTER_SUPER_NAK (8).

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::WireError;
use super::body::{Body, datagram_methods};
use super::field::{Reader, Writer};
use super::header::{Flags, MsgType};
use crate::types::{Auth, DevAddr, DevDesc, Mac, PeerSock};

/// REGISTER_SUPER (type 5), wire.md §5.4: registration with a supernode.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 4 | cookie (random, fresh each time) |
/// | 28 | 6 | edge_mac (null during bootstrap IP request) |
/// | 34 | 8/20 | opt sock (SOCKET flag): edge's preferred local socket, or the edge's public socket when a supernode forwards |
/// | 34/42 | 5 | dev_addr (0/0 = please assign) |
/// | 39/47 | 16 | dev_desc |
/// | 55/63 | 4+n | auth (scheme, token_size n ≤ 48, token) |
/// | 59+n | 4 | key_time (0 from edges) |
///
/// Length 63 + n (+8 with an IPv4 socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterSuper {
    /// Random cookie, echoed by the ACK/NAK.
    pub cookie: u32,
    /// Registering edge (or supernode) MAC.
    pub edge_mac: Mac,
    /// Optional socket (see table).
    pub sock: Option<PeerSock>,
    /// TAP address, 0/0 to request one.
    pub dev_addr: DevAddr,
    /// Description.
    pub dev_desc: DevDesc,
    /// Authentication block.
    pub auth: Auth,
    /// Dynamic-key time (crypto.md §5.6); 0 from edges.
    pub key_time: u32,
}

impl<'a> Body<'a> for RegisterSuper {
    const TYPE: MsgType = MsgType::RegisterSuper;

    fn parse_body(flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(RegisterSuper {
            cookie: r.u32()?,
            edge_mac: r.mac()?,
            sock: if flags.contains(Flags::SOCKET) {
                Some(r.sock()?)
            } else {
                None
            },
            dev_addr: r.dev_addr()?,
            dev_desc: r.dev_desc()?,
            auth: r.auth()?,
            key_time: r.u32()?,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.cookie)?;
        w.mac(&self.edge_mac)?;
        if let Some(s) = &self.sock {
            w.sock(s)?;
        }
        w.dev_addr(&self.dev_addr)?;
        w.dev_desc(&self.dev_desc)?;
        w.auth(&self.auth)?;
        w.u32(self.key_time)
    }

    fn body_len(&self) -> usize {
        4 + 6 + self.sock.map_or(0, |s| s.encoded_len()) + 5 + 16 + self.auth.encoded_len() + 4
    }

    fn socket_flag(&self) -> Option<bool> {
        Some(self.sock.is_some())
    }
}
datagram_methods!(RegisterSuper);

/// UNREGISTER_SUPER (type 6), wire.md §5.5: clean leave.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 4+n | auth (**before** the MAC) |
/// | 28+n | 6 | src_mac |
///
/// Length 34 + n (50 for simple id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnregisterSuper {
    /// Authentication block (as in REGISTER_SUPER).
    pub auth: Auth,
    /// The leaving edge.
    pub src_mac: Mac,
}

impl<'a> Body<'a> for UnregisterSuper {
    const TYPE: MsgType = MsgType::UnregisterSuper;

    fn parse_body(_flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(UnregisterSuper {
            auth: r.auth()?,
            src_mac: r.mac()?,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.auth(&self.auth)?;
        w.mac(&self.src_mac)
    }

    fn body_len(&self) -> usize {
        self.auth.encoded_len() + 6
    }
}
datagram_methods!(UnregisterSuper);

// ---------------------------------------------------------------------------
// Supernode list

/// Most supernode entries in one REGISTER_SUPER_ACK (C receivers overflow beyond).
pub const MAX_SN_ENTRIES: usize = 44;

/// One 26-byte supernode-list entry (wire.md §3.1): a raw dump of the Linux
/// in-memory socket, then the supernode's MAC. **Not** the normal socket
/// encoding: family is the Linux constant, the port is little-endian.
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 1 | family: 2 = IPv4, 10 = IPv6 |
/// | 1 | 1 | padding (0; ignored) |
/// | 2 | 2 | port, **little-endian** |
/// | 4 | 16 | address; IPv4 uses the first 4 bytes |
/// | 20 | 6 | MAC |
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnEntry {
    /// Address family number as sent.
    pub family: u8,
    /// Port (host order; little-endian on the wire).
    pub port: u16,
    /// The 16 address bytes as sent.
    pub addr: [u8; 16],
    /// The supernode's MAC.
    pub mac: Mac,
}

impl SnEntry {
    /// Encoded length.
    pub const ENCODED_LEN: usize = 26;
    /// Linux `AF_INET`.
    pub const AF_INET: u8 = 2;
    /// Linux `AF_INET6`.
    pub const AF_INET6: u8 = 10;

    /// Builds an entry the way an x86 Linux C supernode writes it.
    #[must_use]
    pub fn new(sock: PeerSock, mac: Mac) -> Self {
        let mut addr = [0u8; 16];
        let family = match sock.0 {
            SocketAddr::V4(a) => {
                for (d, s) in addr.iter_mut().zip(a.ip().octets()) {
                    *d = s;
                }
                Self::AF_INET
            }
            SocketAddr::V6(a) => {
                addr = a.ip().octets();
                Self::AF_INET6
            }
        };
        SnEntry {
            family,
            port: sock.0.port(),
            addr,
            mac,
        }
    }

    /// The socket, if the family is known: 2 → IPv4; 10 (Linux), 23
    /// (Windows), 28 (FreeBSD), 30 (macOS) → IPv6; anything else → `None`.
    #[must_use]
    pub fn sock(&self) -> Option<PeerSock> {
        let a = self.addr;
        match self.family {
            Self::AF_INET => Some(PeerSock::v4(
                Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                self.port,
            )),
            10 | 23 | 28 | 30 => Some(PeerSock::v6(Ipv6Addr::from(a), self.port)),
            _ => None,
        }
    }

    /// Decodes 26 bytes (the padding byte is ignored).
    #[must_use]
    pub fn from_bytes(b: &[u8; 26]) -> Self {
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&b[4..20]);
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&b[20..26]);
        SnEntry {
            family: b[0],
            port: u16::from_le_bytes([b[2], b[3]]),
            addr,
            mac: Mac(mac),
        }
    }

    /// Encodes to 26 bytes (padding byte 0).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 26] {
        let mut b = [0u8; 26];
        b[0] = self.family;
        b[2..4].copy_from_slice(&self.port.to_le_bytes());
        b[4..20].copy_from_slice(&self.addr);
        b[20..26].copy_from_slice(&self.mac.0);
        b
    }
}

impl fmt::Debug for SnEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sock() {
            Some(s) => write!(f, "SnEntry({s} {})", self.mac),
            None => write!(
                f,
                "SnEntry(family {} port {} {})",
                self.family, self.port, self.mac
            ),
        }
    }
}

/// The supernode list of a REGISTER_SUPER_ACK as raw bytes (0..=44 entries
/// of 26 bytes), kept verbatim so re-encoding is exact.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SnList<'a> {
    raw: &'a [u8],
}

impl<'a> SnList<'a> {
    /// No entries.
    pub const EMPTY: SnList<'static> = SnList { raw: &[] };

    /// Wraps raw entry bytes; the length must be `26·k` with `k ≤ 44`.
    pub fn from_raw(raw: &'a [u8]) -> Result<Self, WireError> {
        if !raw.len().is_multiple_of(SnEntry::ENCODED_LEN) {
            return Err(WireError::BadSnListLength(raw.len()));
        }
        let k = raw.len() / SnEntry::ENCODED_LEN;
        if k > MAX_SN_ENTRIES {
            return Err(WireError::TooManySupernodes(
                u8::try_from(k).unwrap_or(u8::MAX),
            ));
        }
        Ok(SnList { raw })
    }

    /// The raw bytes (26 per entry).
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Number of entries (`num_sn`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.raw.len() / SnEntry::ENCODED_LEN
    }

    /// No entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = SnEntry> + 'a {
        self.raw.chunks_exact(SnEntry::ENCODED_LEN).map(|c| {
            let mut b = [0u8; 26];
            b.copy_from_slice(c);
            SnEntry::from_bytes(&b)
        })
    }
}

impl fmt::Debug for SnList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Fixed-capacity builder for an [`SnList`] (no allocation).
#[derive(Clone)]
pub struct SnListBuf {
    buf: [u8; MAX_SN_ENTRIES * SnEntry::ENCODED_LEN],
    len: usize,
}

impl SnListBuf {
    /// Empty.
    #[must_use]
    pub const fn new() -> Self {
        SnListBuf {
            buf: [0; MAX_SN_ENTRIES * SnEntry::ENCODED_LEN],
            len: 0,
        }
    }

    /// Appends an entry; fails with [`WireError::TooManySupernodes`] beyond 44.
    pub fn push(&mut self, e: &SnEntry) -> Result<(), WireError> {
        let start = self.len * SnEntry::ENCODED_LEN;
        let slot = self
            .buf
            .get_mut(start..start + SnEntry::ENCODED_LEN)
            .ok_or(WireError::TooManySupernodes(MAX_SN_ENTRIES as u8 + 1))?;
        slot.copy_from_slice(&e.to_bytes());
        self.len += 1;
        Ok(())
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// No entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for another entry.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.len >= MAX_SN_ENTRIES
    }

    /// The list, borrowing this buffer.
    #[must_use]
    pub fn as_list(&self) -> SnList<'_> {
        SnList {
            raw: self
                .buf
                .get(..self.len * SnEntry::ENCODED_LEN)
                .unwrap_or(&[]),
        }
    }
}

impl Default for SnListBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SnListBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_list(), f)
    }
}

// ---------------------------------------------------------------------------
// ACK / NAK

/// REGISTER_SUPER_ACK (type 7), wire.md §5.6.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 4 | cookie (from the REGISTER_SUPER) |
/// | 28 | 6 | src_mac = the supernode's MAC |
/// | 34 | 5 | dev_addr (assigned, or 0/0) |
/// | 39 | 2 | lifetime (15; ignored) |
/// | 41 | 8/20 | sock, **mandatory** whatever the SOCKET flag: requester's public socket |
/// | 49 | 4+n | auth |
/// | 53+n | 1 | num_sn (≤ 44) |
/// | 54+n | 26·k | supernode list ([`SnEntry`]) |
/// | 54+n+26k | 4 | key_time |
///
/// Length 58 + n + 26·k. The header flags are written as given (C sets
/// SOCKET | FROM_SUPERNODE, word `0x0067`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterSuperAck<'a> {
    /// Cookie of the REGISTER_SUPER.
    pub cookie: u32,
    /// The supernode's MAC.
    pub src_mac: Mac,
    /// Assigned TAP address or 0/0.
    pub dev_addr: DevAddr,
    /// Registration lifetime in seconds (C: 15).
    pub lifetime: u16,
    /// Requester's public socket.
    pub sock: PeerSock,
    /// Authentication block (scheme 0 unless user/password).
    pub auth: Auth,
    /// Other supernodes.
    pub sn_list: SnList<'a>,
    /// Dynamic-key time.
    pub key_time: u32,
}

impl<'a> Body<'a> for RegisterSuperAck<'a> {
    const TYPE: MsgType = MsgType::RegisterSuperAck;

    fn parse_body(_flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        let cookie = r.u32()?;
        let src_mac = r.mac()?;
        let dev_addr = r.dev_addr()?;
        let lifetime = r.u16()?;
        let sock = r.sock()?;
        let auth = r.auth()?;
        let num_sn = r.u8()?;
        if usize::from(num_sn) > MAX_SN_ENTRIES {
            return Err(WireError::TooManySupernodes(num_sn));
        }
        let sn_list = SnList {
            raw: r.take(usize::from(num_sn) * SnEntry::ENCODED_LEN)?,
        };
        let key_time = r.u32()?;
        Ok(RegisterSuperAck {
            cookie,
            src_mac,
            dev_addr,
            lifetime,
            sock,
            auth,
            sn_list,
            key_time,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.cookie)?;
        w.mac(&self.src_mac)?;
        w.dev_addr(&self.dev_addr)?;
        w.u16(self.lifetime)?;
        w.sock(&self.sock)?;
        w.auth(&self.auth)?;
        w.u8(self.sn_list.len() as u8)?;
        w.put(self.sn_list.raw())?;
        w.u32(self.key_time)
    }

    fn body_len(&self) -> usize {
        4 + 6
            + 5
            + 2
            + self.sock.encoded_len()
            + self.auth.encoded_len()
            + 1
            + self.sn_list.raw.len()
            + 4
    }
}
datagram_methods!(RegisterSuperAck<'a>);

/// REGISTER_SUPER_NAK (type 8), wire.md §5.7.
///
/// | off | size | field |
/// |---|---|---|
/// | 24 | 4 | cookie (from the rejected REGISTER_SUPER) |
/// | 28 | 6 | src_mac = **the rejected edge's MAC** |
/// | 34 | 4+n | auth (C: scheme 0, size 0) |
///
/// Length 38 + n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterSuperNak {
    /// Cookie of the rejected REGISTER_SUPER.
    pub cookie: u32,
    /// The rejected edge.
    pub src_mac: Mac,
    /// Authentication block.
    pub auth: Auth,
}

impl<'a> Body<'a> for RegisterSuperNak {
    const TYPE: MsgType = MsgType::RegisterSuperNak;

    fn parse_body(_flags: Flags, r: &mut Reader<'a>) -> Result<Self, WireError> {
        Ok(RegisterSuperNak {
            cookie: r.u32()?,
            src_mac: r.mac()?,
            auth: r.auth()?,
        })
    }

    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.cookie)?;
        w.mac(&self.src_mac)?;
        w.auth(&self.auth)
    }

    fn body_len(&self) -> usize {
        10 + self.auth.encoded_len()
    }
}
datagram_methods!(RegisterSuperNak);
