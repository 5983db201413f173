//! Value types shared by the wire codec and the state machines.
//!
//! These are validated newtypes: a [`Community`] always fits the 20-byte
//! field, an [`Auth`] token is never longer than 48 bytes, a [`PeerSock`]
//! always has an encoding. Wire encodings are described in
//! `spec/wire.md` §3 and §4; the byte-level codecs live in [`crate::wire`].

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Why a value could not be built from user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Text is not a MAC address of the form `02:00:00:00:00:01`.
    #[error("invalid MAC address syntax")]
    BadMac,
    /// A community name must have at least one byte.
    #[error("community name is empty")]
    EmptyCommunity,
    /// A community name has at most 19 bytes (the 20-byte field keeps a NUL).
    #[error("community name is {0} bytes long, at most 19 are allowed")]
    CommunityTooLong(usize),
    /// A community name cannot contain a NUL byte.
    #[error("community name contains a NUL byte")]
    CommunityHasNul,
    /// An authentication token has at most 48 bytes.
    #[error("authentication token is {0} bytes long, at most 48 are allowed")]
    TokenTooLarge(usize),
}

// ---------------------------------------------------------------------------
// Mac

/// An Ethernet MAC address (6 raw bytes in transmission order).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `00:00:00:00:00:00`, used as "no MAC" (multicast REGISTER target, PING, bootstrap).
    pub const NULL: Mac = Mac([0; 6]);
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// The raw bytes.
    #[must_use]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// All six bytes are zero.
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.0 == [0; 6]
    }

    /// `ff:ff:ff:ff:ff:ff`.
    #[must_use]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// IPv4 multicast `01:00:5e:xx:xx:xx` with the top bit of byte 3 clear,
    /// or IPv6 multicast `33:33:xx:xx:xx:xx` (behaviour.md §6.1).
    #[must_use]
    pub fn is_multicast(&self) -> bool {
        let b = self.0;
        (b[0] == 0x01 && b[1] == 0x00 && b[2] == 0x5e && b[3] & 0x80 == 0)
            || (b[0] == 0x33 && b[1] == 0x33)
    }

    /// [`is_broadcast`](Self::is_broadcast) or [`is_multicast`](Self::is_multicast):
    /// the frames an edge always sends through the supernode.
    #[must_use]
    pub fn is_multi_or_broadcast(&self) -> bool {
        self.is_broadcast() || self.is_multicast()
    }
}

impl From<[u8; 6]> for Mac {
    fn from(b: [u8; 6]) -> Self {
        Mac(b)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl FromStr for Mac {
    type Err = ValueError;

    /// Accepts six `:`-separated (or `-`-separated) groups of one or two hex
    /// digits, case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split([':', '-']) {
            let slot = out.get_mut(n).ok_or(ValueError::BadMac)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(ValueError::BadMac);
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| ValueError::BadMac)?;
            n += 1;
        }
        if n == 6 {
            Ok(Mac(out))
        } else {
            Err(ValueError::BadMac)
        }
    }
}

// ---------------------------------------------------------------------------
// Community

/// Length of the community field in the common header.
pub const COMMUNITY_LEN: usize = 20;

/// The 20-byte community field of the common header.
///
/// [`Community::new`] builds a clean, zero-padded field from a name of 1 to
/// 19 bytes. [`Community::from_field`] keeps the 20 bytes as they are,
/// including any "residue" after the first NUL (the federation quirk of
/// crypto.md §6): all 20 bytes go into header checksums and key derivation,
/// while name matching uses [`name_bytes`](Self::name_bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community([u8; COMMUNITY_LEN]);

impl Community {
    /// Builds a zero-padded field from a name of 1..=19 bytes without NUL.
    pub fn new(name: &str) -> Result<Self, ValueError> {
        Self::from_name_bytes(name.as_bytes())
    }

    /// Like [`new`](Self::new) for raw bytes.
    pub fn from_name_bytes(name: &[u8]) -> Result<Self, ValueError> {
        if name.is_empty() {
            return Err(ValueError::EmptyCommunity);
        }
        if name.len() >= COMMUNITY_LEN {
            return Err(ValueError::CommunityTooLong(name.len()));
        }
        if name.contains(&0) {
            return Err(ValueError::CommunityHasNul);
        }
        let mut f = [0u8; COMMUNITY_LEN];
        for (d, s) in f.iter_mut().zip(name) {
            *d = *s;
        }
        Ok(Community(f))
    }

    /// Keeps all 20 bytes unchanged (no validation: this is what is on the wire).
    #[must_use]
    pub const fn from_field(field: [u8; COMMUNITY_LEN]) -> Self {
        Community(field)
    }

    /// The 20 bytes as sent on the wire.
    #[must_use]
    pub const fn field(&self) -> &[u8; COMMUNITY_LEN] {
        &self.0
    }

    /// The name: bytes up to (excluding) the first NUL, or all 20 without NUL.
    #[must_use]
    pub fn name_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(COMMUNITY_LEN);
        self.0.get(..end).unwrap_or(&self.0)
    }

    /// True when the bytes after the first NUL are all zero (a clean field).
    #[must_use]
    pub fn is_zero_padded(&self) -> bool {
        let n = self.name_bytes().len();
        self.0.iter().skip(n).all(|&b| b == 0)
    }
}

impl fmt::Display for Community {
    /// The name (up to the first NUL); non-printable bytes as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.name_bytes())
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Community(\"{self}\"")?;
        if !self.is_zero_padded() {
            write!(f, ", residue")?;
        }
        write!(f, ")")
    }
}

impl FromStr for Community {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Community::new(s)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        if b.is_ascii_graphic() || b == b' ' {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// PeerSock

/// A peer's socket address as carried in n2n messages (wire.md §3).
///
/// Encoding: u16 BE flags (`0x8000` = IPv6), u16 BE port, then 4 (IPv4) or
/// 16 (IPv6) address bytes: 8 or 20 bytes in total. The `0x4000` (TCP) bit is
/// ignored on decode and never sent. IPv6 flow info and scope id are not
/// carried (they are zero after decoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerSock(pub SocketAddr);

impl PeerSock {
    /// Flag bit marking an IPv6 socket.
    pub const FLAG_IPV6: u16 = 0x8000;
    /// TCP flag bit (post-3.1.1 code); ignored on decode, never sent.
    pub const FLAG_TCP: u16 = 0x4000;
    /// Encoded length of an IPv4 socket.
    pub const V4_LEN: usize = 8;
    /// Encoded length of an IPv6 socket.
    pub const V6_LEN: usize = 20;

    /// An IPv4 socket.
    #[must_use]
    pub const fn v4(ip: Ipv4Addr, port: u16) -> Self {
        PeerSock(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    }

    /// An IPv6 socket (flow info and scope id zero).
    #[must_use]
    pub const fn v6(ip: Ipv6Addr, port: u16) -> Self {
        PeerSock(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
    }

    /// The socket address.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.0
    }

    /// Length of the wire encoding (8 or 20).
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        match self.0 {
            SocketAddr::V4(_) => Self::V4_LEN,
            SocketAddr::V6(_) => Self::V6_LEN,
        }
    }
}

impl From<SocketAddr> for PeerSock {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(_) => PeerSock(a),
            SocketAddr::V6(v6) => PeerSock::v6(*v6.ip(), v6.port()),
        }
    }
}

impl From<PeerSock> for SocketAddr {
    fn from(s: PeerSock) -> Self {
        s.0
    }
}

impl fmt::Display for PeerSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PeerSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerSock({})", self.0)
    }
}

// ---------------------------------------------------------------------------
// DevAddr, DevDesc

/// The TAP address of an edge: IPv4 address and prefix length (wire: u32 BE + u8).
///
/// `0.0.0.0/0` means "none" / "please assign one".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DevAddr {
    /// The address.
    pub ip: Ipv4Addr,
    /// The prefix length (not range-checked: it is what the peer sent).
    pub prefix: u8,
}

impl DevAddr {
    /// `0.0.0.0/0`.
    pub const UNSPECIFIED: DevAddr = DevAddr {
        ip: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
    };

    /// Builds a `DevAddr`.
    #[must_use]
    pub const fn new(ip: Ipv4Addr, prefix: u8) -> Self {
        DevAddr { ip, prefix }
    }

    /// `0.0.0.0` (whatever the prefix).
    #[must_use]
    pub fn is_unspecified(&self) -> bool {
        self.ip.is_unspecified()
    }
}

impl Default for DevAddr {
    fn default() -> Self {
        Self::UNSPECIFIED
    }
}

impl fmt::Display for DevAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// Length of the `dev_desc` field.
pub const DEV_DESC_LEN: usize = 16;

/// The 16-byte edge description (`-I`), NUL padded. Raw bytes are kept as
/// received (bytes after the NUL included) so re-encoding is exact.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DevDesc(pub [u8; DEV_DESC_LEN]);

impl DevDesc {
    /// All zero.
    pub const EMPTY: DevDesc = DevDesc([0; DEV_DESC_LEN]);

    /// Copies at most 15 bytes of `s` (like C's `strncpy` with room for the NUL).
    #[must_use]
    pub fn new(s: &str) -> Self {
        let mut d = [0u8; DEV_DESC_LEN];
        for (dst, src) in d.iter_mut().take(DEV_DESC_LEN - 1).zip(s.as_bytes()) {
            *dst = *src;
        }
        DevDesc(d)
    }

    /// The 16 raw bytes.
    #[must_use]
    pub const fn bytes(&self) -> &[u8; DEV_DESC_LEN] {
        &self.0
    }

    /// Bytes up to the first NUL (all 16 if there is none).
    #[must_use]
    pub fn name_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(DEV_DESC_LEN);
        self.0.get(..end).unwrap_or(&self.0)
    }
}

impl fmt::Display for DevDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.name_bytes())
    }
}

impl fmt::Debug for DevDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevDesc(\"{self}\")")
    }
}

// ---------------------------------------------------------------------------
// Auth

/// Largest accepted authentication token.
pub const AUTH_TOKEN_MAX: usize = 48;

/// An authentication block: u16 BE scheme, u16 BE token_size, token bytes
/// (wire.md §4). The token is at most [`AUTH_TOKEN_MAX`] bytes; bytes beyond
/// the token length are always zero, so `==` compares scheme and token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auth {
    scheme: u16,
    token: [u8; AUTH_TOKEN_MAX],
    len: u8,
}

impl Auth {
    /// Scheme 0: no authentication.
    pub const SCHEME_NONE: u16 = 0;
    /// Scheme 1: simple id (16 random bytes).
    pub const SCHEME_SIMPLE_ID: u16 = 1;
    /// Scheme 2: user/password (48-byte token).
    pub const SCHEME_USER_PASSWORD: u16 = 2;

    /// Scheme 0 with an empty token (what supernodes put in ACK/NAK).
    pub const NONE: Auth = Auth {
        scheme: 0,
        token: [0; AUTH_TOKEN_MAX],
        len: 0,
    };

    /// Builds an auth block; fails when `token` is longer than 48 bytes.
    pub fn new(scheme: u16, token: &[u8]) -> Result<Self, ValueError> {
        if token.len() > AUTH_TOKEN_MAX {
            return Err(ValueError::TokenTooLarge(token.len()));
        }
        let mut t = [0u8; AUTH_TOKEN_MAX];
        for (d, s) in t.iter_mut().zip(token) {
            *d = *s;
        }
        Ok(Auth {
            scheme,
            token: t,
            len: token.len() as u8,
        })
    }

    /// The scheme.
    #[must_use]
    pub const fn scheme(&self) -> u16 {
        self.scheme
    }

    /// The token bytes (length = token_size).
    #[must_use]
    pub fn token(&self) -> &[u8] {
        self.token.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// token_size as on the wire.
    #[must_use]
    pub const fn token_size(&self) -> u16 {
        self.len as u16
    }

    /// Encoded length: 4 + token_size.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        4 + self.len as usize
    }
}

impl Default for Auth {
    fn default() -> Self {
        Self::NONE
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth {{ scheme: {}, token: ", self.scheme)?;
        for b in self.token() {
            write!(f, "{b:02x}")?;
        }
        write!(f, " }}")
    }
}

// ---------------------------------------------------------------------------
// Cookies, transform and compression ids

/// REGISTER cookie values used by the C edge (wire.md §5.1). Larger means a
/// better path. REGISTER_SUPER cookies are random u32 values instead.
pub mod cookie {
    /// "No registration yet" placeholder in peer state.
    pub const NO_REG: u32 = 0x0000_0000;
    /// REGISTER sent through the supernode.
    pub const FORWARDED: u32 = 0x0000_1000;
    /// REGISTER sprayed to predicted ports.
    pub const PORT: u32 = 0x0000_4000;
    /// REGISTER sent directly to the peer's public socket.
    pub const REGULAR: u32 = 0x0001_0000;
    /// REGISTER sent to the local-discovery multicast group.
    pub const MCAST: u32 = 0x0040_0000;
    /// REGISTER sent to the peer's advertised preferred (LAN) socket.
    pub const LOCAL: u32 = 0x0100_0000;
}

// The payload transform and compression ids: one type each, defined next
// to their implementations and named here with the other wire values.
pub use crate::compress::CompressionId;
pub use crate::transform::TransformId;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mac_display_parse() {
        let m: Mac = "02:00:00:00:00:01".parse().unwrap();
        assert_eq!(m, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(m.to_string(), "02:00:00:00:00:01");
        assert_eq!(
            "CA:D6:5B:8F:9F:D8".parse::<Mac>().unwrap().to_string(),
            "ca:d6:5b:8f:9f:d8"
        );
        assert_eq!(
            "0:1:2:3:4:5".parse::<Mac>().unwrap(),
            Mac([0, 1, 2, 3, 4, 5])
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:0g",
            "002:0:0:0:0:0",
            "::::::",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_classes() {
        assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multi_or_broadcast());
        assert!(!Mac::BROADCAST.is_multicast());
        assert!(Mac([1, 0, 0x5e, 0x7f, 0, 1]).is_multicast());
        assert!(!Mac([1, 0, 0x5e, 0x80, 0, 1]).is_multicast());
        assert!(Mac([0x33, 0x33, 0, 0, 0, 1]).is_multicast());
        assert!(!Mac([0x33, 0x34, 0, 0, 0, 1]).is_multi_or_broadcast());
        assert!(!Mac([2, 0, 0, 0, 0, 1]).is_multi_or_broadcast());
        assert!(Mac::NULL.is_null() && !Mac([0, 0, 0, 0, 0, 1]).is_null());
    }

    #[test]
    fn community_rules() {
        let c = Community::new("rocks").unwrap();
        assert_eq!(c.name_bytes(), b"rocks");
        assert_eq!(&c.field()[..6], b"rocks\0");
        assert_eq!(c.to_string(), "rocks");
        assert_eq!(Community::new(""), Err(ValueError::EmptyCommunity));
        assert!(Community::new(&"a".repeat(19)).is_ok());
        assert_eq!(
            Community::new(&"a".repeat(20)),
            Err(ValueError::CommunityTooLong(20))
        );
        assert_eq!(Community::new("a\0b"), Err(ValueError::CommunityHasNul));
        let mut f = [0u8; 20];
        f[..11].copy_from_slice(b"*rocksFed\0n");
        let fed = Community::from_field(f);
        assert_eq!(fed.name_bytes(), b"*rocksFed");
        assert_eq!(fed.field(), &f);
        assert!(!fed.is_zero_padded());
        assert_ne!(fed, Community::new("*rocksFed").unwrap());
        assert_eq!(Community::from_field([b'x'; 20]).name_bytes().len(), 20);
    }

    #[test]
    fn dev_desc_and_auth() {
        let d = DevDesc::new("a_very_long_description");
        assert_eq!(d.name_bytes(), b"a_very_long_des");
        assert_eq!(d.0[15], 0);
        assert_eq!(DevDesc::new("e1").to_string(), "e1");
        assert!(Auth::new(1, &[0; 49]).is_err());
        let a = Auth::new(1, &[7; 16]).unwrap();
        assert_eq!(
            (a.scheme(), a.token_size(), a.token()),
            (1, 16, &[7u8; 16][..])
        );
        assert_eq!(a.encoded_len(), 20);
        assert_eq!(
            DevAddr::new(Ipv4Addr::new(10, 0, 0, 1), 24).to_string(),
            "10.0.0.1/24"
        );
        assert_eq!(TransformId::Aes.to_string(), "aes");
        assert_eq!(CompressionId::Lzo.to_string(), "lzo");
        // Unknown wire ids are not ids: the error names the value.
        assert_eq!(
            CompressionId::try_from(9).map_err(|e| e.to_string()),
            Err("unknown compression id 9".to_owned())
        );
        assert_eq!(
            TransformId::try_from(9).map_err(|e| e.to_string()),
            Err("unknown transform id 9".to_owned())
        );
    }
}
