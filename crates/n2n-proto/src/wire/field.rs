//! Bounds-checked cursors used by every message codec. Offsets and lengths
//! reported in errors are relative to the start of the datagram.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::WireError;
use crate::types::{AUTH_TOKEN_MAX, Auth, DevAddr, DevDesc, Mac, PeerSock};

/// Reads fields front to back, checking the remaining length before each one.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated {
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(WireError::Truncated {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Everything after the cursor.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn mac(&mut self) -> Result<Mac, WireError> {
        Ok(Mac(self.array()?))
    }

    pub(crate) fn sock(&mut self) -> Result<PeerSock, WireError> {
        let flags = self.u16()?;
        let port = self.u16()?;
        if flags & PeerSock::FLAG_IPV6 != 0 {
            Ok(PeerSock::v6(Ipv6Addr::from(self.array::<16>()?), port))
        } else {
            Ok(PeerSock::v4(Ipv4Addr::from(self.array::<4>()?), port))
        }
    }

    pub(crate) fn dev_addr(&mut self) -> Result<DevAddr, WireError> {
        let ip = Ipv4Addr::from(self.u32()?);
        let prefix = self.u8()?;
        Ok(DevAddr { ip, prefix })
    }

    pub(crate) fn dev_desc(&mut self) -> Result<DevDesc, WireError> {
        Ok(DevDesc(self.array()?))
    }

    pub(crate) fn auth(&mut self) -> Result<Auth, WireError> {
        let scheme = self.u16()?;
        let size = self.u16()?;
        if usize::from(size) > AUTH_TOKEN_MAX {
            return Err(WireError::TokenTooLarge(size));
        }
        let token = self.take(usize::from(size))?;
        Auth::new(scheme, token).map_err(|_| WireError::TokenTooLarge(size))
    }
}

/// Writes fields front to back; each write checks the buffer length.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8], pos: usize) -> Self {
        Writer { buf, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn put(&mut self, data: &[u8]) -> Result<(), WireError> {
        let have = self.buf.len();
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(WireError::BufferTooSmall {
                need: usize::MAX,
                have,
            })?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall { need: end, have })?;
        dst.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn mac(&mut self, m: &Mac) -> Result<(), WireError> {
        self.put(&m.0)
    }

    pub(crate) fn sock(&mut self, s: &PeerSock) -> Result<(), WireError> {
        match s.0 {
            std::net::SocketAddr::V4(a) => {
                self.u16(0)?;
                self.u16(a.port())?;
                self.put(&a.ip().octets())
            }
            std::net::SocketAddr::V6(a) => {
                self.u16(PeerSock::FLAG_IPV6)?;
                self.u16(a.port())?;
                self.put(&a.ip().octets())
            }
        }
    }

    pub(crate) fn dev_addr(&mut self, d: &DevAddr) -> Result<(), WireError> {
        self.u32(u32::from(d.ip))?;
        self.u8(d.prefix)
    }

    pub(crate) fn dev_desc(&mut self, d: &DevDesc) -> Result<(), WireError> {
        self.put(&d.0)
    }

    pub(crate) fn auth(&mut self, a: &Auth) -> Result<(), WireError> {
        self.u16(a.scheme())?;
        self.u16(a.token_size())?;
        self.put(a.token())
    }
}

/// Fails early with the full required length, so a short buffer is reported
/// once with the right numbers instead of at the first field that overflows.
pub(crate) fn check_out_len(buf: &[u8], need: usize) -> Result<(), WireError> {
    if buf.len() < need {
        Err(WireError::BufferTooSmall {
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Writes a socket at the start of `buf` (wire.md §3); returns its length.
pub(crate) fn write_sock(buf: &mut [u8], s: &PeerSock) -> Result<usize, WireError> {
    let mut w = Writer::new(buf, 0);
    w.sock(s)?;
    Ok(w.pos())
}
