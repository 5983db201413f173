//! The output path shared by [`Edge`](crate::edge::Edge) and
//! [`Supernode`](crate::supernode::Supernode): encode a message into a
//! pooled buffer, *seal* it (header-encryption stamp, header encryption,
//! optional user/password trailer), queue it; the driver takes the queued
//! [`Datagram`]s, sends them straight from the pooled buffers and hands the
//! buffers back.
//!
//! Driver side (both machines):
//!
//! ```text
//! while let Some(d) = core.poll_transmit() {   // up to N for one sendmmsg
//!     send(d.dst, d.ttl, d.bytes());
//!     core.recycle_transmit(d);                 // buffer back to the pool
//! }
//! ```
//!
//! A driver may hold several [`Datagram`]s at once (a `sendmmsg` or GSO
//! batch) and call other methods of the machine meanwhile; a buffer that is
//! never handed back is simply freed and replaced by a new one. Every buffer
//! is [`MAX_DATAGRAM`] bytes, so after warm-up (the largest burst seen)
//! queueing allocates nothing and nothing is copied on the way out.
//!
//! The PACKET data path does not queue: `Edge::encapsulate` builds the
//! datagram in the caller's buffer and seals it there (the stamp from
//! `Output::next_stamp`, the rest in the edge's `DataShard`).

use std::collections::VecDeque;
use std::net::SocketAddr;

use n2n_proto::auth::SharedSecret;
use n2n_proto::he::{CommunityHe, HeKeyKind, StampGenerator, TRAILER_LEN};
use n2n_proto::wire::WireError;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::Rng;

use crate::time::{MAX_DATAGRAM, Now, Transmit};

/// A TCP connection of the supernode (an edge using `-S2`), numbered by the
/// driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a datagram goes: a UDP socket address, or a TCP connection (with
/// its peer's address, which is what the protocol reports for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dest {
    /// A UDP destination.
    Udp(SocketAddr),
    /// A TCP connection (length-framed, wire.md §1) and its remote address.
    Tcp(ConnId, SocketAddr),
}

impl Dest {
    /// The socket address (the remote address of a TCP connection).
    #[must_use]
    pub fn addr(self) -> SocketAddr {
        match self {
            Dest::Udp(a) | Dest::Tcp(_, a) => a,
        }
    }

    /// The connection, for a TCP destination.
    #[must_use]
    pub fn conn(self) -> Option<ConnId> {
        match self {
            Dest::Udp(_) => None,
            Dest::Tcp(c, _) => Some(c),
        }
    }

    /// `"UDP"` or `"TCP"` (management listings).
    #[must_use]
    pub fn proto(self) -> &'static str {
        match self {
            Dest::Udp(_) => "UDP",
            Dest::Tcp(..) => "TCP",
        }
    }
}

impl From<SocketAddr> for Dest {
    fn from(a: SocketAddr) -> Self {
        Dest::Udp(a)
    }
}

/// A queued datagram, owned by the driver from `poll_transmit` until it
/// gives it back with `recycle_transmit`.
#[derive(Debug)]
pub struct Datagram {
    /// Destination address (for a TCP connection: its remote address).
    pub dst: SocketAddr,
    /// The TCP connection to send it on (supernode only), `None` for UDP.
    pub conn: Option<ConnId>,
    /// IP TTL (IPv6 hop limit) for this datagram only, `None` for the
    /// socket's default: see [`Transmit::ttl`].
    pub ttl: Option<u8>,
    len: usize,
    buf: Box<[u8]>,
}

impl Datagram {
    /// The datagram's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }

    /// Its length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Never true (an empty datagram is not queued); for API symmetry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Destination, length and TTL.
    #[must_use]
    pub fn transmit(&self) -> Transmit {
        Transmit {
            dst: self.dst,
            len: self.len(),
            ttl: self.ttl,
        }
    }
}

/// A pooled buffer being filled ([`MAX_DATAGRAM`] bytes, contents
/// unspecified): queue it with [`Output::push`] or give it back with
/// [`Output::discard`].
#[derive(Debug)]
pub(crate) struct TxBuf(Box<[u8]>);

impl TxBuf {
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// How to header-encrypt one outgoing message (crypto.md §4).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seal<'a> {
    /// The community's header keys.
    pub he: &'a CommunityHe,
    /// Which of them.
    pub kind: HeKeyKind,
    /// Bytes to encrypt: `None` = the whole message, `Some(n)` = the first
    /// `n` (a PACKET's header, capped at the message length).
    pub header_len: Option<usize>,
    /// The 16 bytes appended after the encrypted message in user/password
    /// communities (crypto.md §5.4).
    pub trailer: Trailer<'a>,
}

/// The user/password trailer of a sealed message (crypto.md §5.4).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trailer<'a> {
    /// No trailer.
    None,
    /// 16 random bytes: a supernode's REGISTER_SUPER_NAK, which the edge
    /// does not check.
    Random,
    /// `E(pearson128(encrypted message))` with this secret (S of an edge,
    /// S_u of a user at the supernode): REGISTER_SUPER and its ACK.
    Signed(&'a SharedSecret),
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The encoder did not fit the message into [`MAX_DATAGRAM`] bytes, or
    /// header encryption refused its length.
    TooLong,
}

/// Whether queueing evicted the oldest datagram (queue at its limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Queued {
    /// Queued, nothing lost.
    Ok,
    /// Queued; the oldest queued datagram was discarded to make room.
    EvictedOldest,
}

/// The seal step and the transmit queue of one state machine.
#[derive(Debug)]
pub(crate) struct Output {
    queue: VecDeque<Datagram>,
    free: Vec<Box<[u8]>>,
    stamps: StampGenerator,
    max_queued: usize,
    max_free: usize,
}

impl Output {
    /// A queue of at most `max_queued` datagrams (then the oldest is
    /// evicted) keeping at most `max_free` spare buffers.
    pub(crate) fn new(max_queued: usize, max_free: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            free: Vec::new(),
            stamps: StampGenerator::new(),
            max_queued,
            max_free,
        }
    }

    /// A buffer of [`MAX_DATAGRAM`] bytes.
    pub(crate) fn take(&mut self) -> TxBuf {
        TxBuf(
            self.free
                .pop()
                .unwrap_or_else(|| vec![0u8; MAX_DATAGRAM].into_boxed_slice()),
        )
    }

    /// Give back an unused buffer.
    pub(crate) fn discard(&mut self, b: TxBuf) {
        self.keep(b.0);
    }

    fn keep(&mut self, b: Box<[u8]>) {
        if self.free.len() < self.max_free {
            self.free.push(b);
        }
    }

    /// Queue the first `len` bytes of `b` for `dst`.
    pub(crate) fn push(
        &mut self,
        dst: impl Into<Dest>,
        ttl: Option<u8>,
        b: TxBuf,
        len: usize,
    ) -> Queued {
        let mut r = Queued::Ok;
        if self.queue.len() >= self.max_queued {
            if let Some(old) = self.queue.pop_front() {
                self.keep(old.buf);
            }
            r = Queued::EvictedOldest;
        }
        let len = len.min(b.0.len());
        let dst = dst.into();
        self.queue.push_back(Datagram {
            dst: dst.addr(),
            conn: dst.conn(),
            ttl,
            len,
            buf: b.0,
        });
        r
    }

    /// Queue a copy of `data` (at most [`MAX_DATAGRAM`] bytes are kept).
    pub(crate) fn push_copy(
        &mut self,
        dst: impl Into<Dest>,
        ttl: Option<u8>,
        data: &[u8],
    ) -> Queued {
        let mut b = self.take();
        let n = data.len().min(MAX_DATAGRAM);
        if let (Some(d), Some(s)) = (b.0.get_mut(..n), data.get(..n)) {
            d.copy_from_slice(s);
        }
        self.push(dst, ttl, b, n)
    }

    /// Queue a copy of the most recently queued datagram for another
    /// destination (broadcast fan-out). `None` if the queue is empty.
    pub(crate) fn push_copy_of_last(&mut self, dst: impl Into<Dest>) -> Option<Queued> {
        let mut b = self.take();
        let Some(last) = self.queue.back() else {
            self.discard(b);
            return None;
        };
        let (len, ttl) = (last.len, last.ttl);
        match (b.0.get_mut(..len), last.buf.get(..len)) {
            (Some(d), Some(s)) => d.copy_from_slice(s),
            _ => {
                self.discard(b);
                return None;
            }
        }
        Some(self.push(dst, ttl, b, len))
    }

    /// The oldest queued datagram.
    pub(crate) fn pop(&mut self) -> Option<Datagram> {
        self.queue.pop_front()
    }

    /// A datagram's buffer back into the pool.
    pub(crate) fn recycle(&mut self, d: Datagram) {
        self.keep(d.buf);
    }

    /// Number of queued datagrams.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The next header-encryption stamp (strictly increasing).
    pub(crate) fn next_stamp(&mut self, now: Now) -> u64 {
        let micros = (now.unix_us % 1_000_000) as u32;
        self.stamps.next(now.unix_secs(), micros)
    }

    /// Header-encrypts `msg` in place with the next stamp and 4 random
    /// bytes from `rng`, then writes `seal.trailer` into the 16 bytes after
    /// it (they must exist in `msg`'s buffer: `buf` is the whole buffer,
    /// `len` the message length). Returns the sealed length.
    pub(crate) fn seal(
        &mut self,
        now: Now,
        rng: &mut ChaCha20Rng,
        seal: &Seal<'_>,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SendError> {
        let stamp = self.next_stamp(now);
        let mut rand4 = [0u8; 4];
        rng.fill_bytes(&mut rand4);
        let h = seal.header_len.map_or(len, |n| n.min(len));
        let msg = buf.get_mut(..len).ok_or(SendError::TooLong)?;
        seal.he
            .encrypt(msg, h, stamp, rand4, seal.kind)
            .map_err(|_| SendError::TooLong)?;
        match seal.trailer {
            Trailer::None => Ok(len),
            Trailer::Random => {
                let t = buf
                    .get_mut(len..len + TRAILER_LEN)
                    .ok_or(SendError::TooLong)?;
                rng.fill_bytes(t);
                Ok(len + TRAILER_LEN)
            }
            Trailer::Signed(secret) => secret
                .append_trailer(buf, len)
                .map_err(|_| SendError::TooLong),
        }
    }

    /// Encode with `write` into a pooled buffer, seal it when `seal` is
    /// given, queue it for `dst` with `ttl`.
    pub(crate) fn send<F>(
        &mut self,
        now: Now,
        rng: &mut ChaCha20Rng,
        dst: impl Into<Dest>,
        ttl: Option<u8>,
        seal: Option<&Seal<'_>>,
        write: F,
    ) -> Result<Queued, SendError>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, WireError>,
    {
        let mut b = self.take();
        let sealed = match write(b.bytes_mut()) {
            Ok(n) => match seal {
                Some(s) => self.seal(now, rng, s, b.bytes_mut(), n),
                None => Ok(n),
            },
            Err(_) => Err(SendError::TooLong),
        };
        match sealed {
            Ok(n) => Ok(self.push(dst, ttl, b, n)),
            Err(e) => {
                self.discard(b);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use std::time::Instant;

    fn now() -> Now {
        Now::new(Instant::now(), 1_795_606_373_000_000)
    }

    #[test]
    fn recycles_buffers_and_hands_them_out_without_copy() {
        let mut q = Output::new(usize::MAX, usize::MAX);
        let dst: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut b = q.take();
        b.bytes_mut()[..3].copy_from_slice(b"abc");
        assert_eq!(q.push(dst, Some(3), b, 3), Queued::Ok);
        let other: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert_eq!(q.push_copy_of_last(other), Some(Queued::Ok));
        assert_eq!(q.len(), 2);
        let d = q.pop().unwrap();
        assert_eq!((d.dst, d.ttl, d.bytes()), (dst, Some(3), &b"abc"[..]));
        assert_eq!(
            d.transmit(),
            Transmit {
                dst,
                len: 3,
                ttl: Some(3)
            }
        );
        let p = d.bytes().as_ptr();
        q.recycle(d);
        let e = q.pop().unwrap();
        assert_eq!((e.dst, e.bytes()), (other, &b"abc"[..]));
        q.recycle(e);
        assert!(q.pop().is_none());
        assert_eq!(q.free.len(), 2);
        // The recycled buffers are handed out again.
        let b = q.take();
        assert!(b.0.as_ptr() == p || q.free.iter().any(|f| f.as_ptr() == p));
        q.discard(b);
        assert_eq!(q.push_copy_of_last(dst), None);
        assert_eq!(q.free.len(), 2);
    }

    #[test]
    fn limits_evict_the_oldest_and_bound_the_pool() {
        let mut q = Output::new(2, 1);
        let d = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        assert_eq!(q.push_copy(d(1), None, b"1"), Queued::Ok);
        assert_eq!(q.push_copy(d(2), None, b"2"), Queued::Ok);
        assert_eq!(q.push_copy(d(3), None, b"3"), Queued::EvictedOldest);
        let a = q.pop().unwrap();
        let b = q.pop().unwrap();
        assert_eq!((a.dst, b.dst), (d(2), d(3)));
        q.recycle(a);
        q.recycle(b);
        assert_eq!(q.free.len(), 1);
    }

    /// Sends `msg` through `q` sealed with `seal`; the queued datagram.
    fn send_one(q: &mut Output, rng: &mut ChaCha20Rng, seal: &Seal<'_>, msg: &[u8]) -> Datagram {
        let dst: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let write = |b: &mut [u8]| {
            b[..msg.len()].copy_from_slice(msg);
            Ok(msg.len())
        };
        assert_eq!(
            q.send(now(), rng, dst, None, Some(seal), write),
            Ok(Queued::Ok)
        );
        let d = q.pop().unwrap();
        assert_eq!(d.len(), msg.len() + TRAILER_LEN);
        d
    }

    #[test]
    fn send_seals_with_stamp_and_trailer() {
        let mut q = Output::new(usize::MAX, usize::MAX);
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let he = CommunityHe::new(*b"rocks\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let dst: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let msg = [
            3u8, 2, 0, 5, b'r', b'o', b'c', b'k', b's', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 9, 9,
        ];
        let seal = Seal {
            he: &he,
            kind: HeKeyKind::Static,
            header_len: None,
            trailer: Trailer::Random,
        };
        let d = send_one(&mut q, &mut rng, &seal, &msg);
        let mut got = d.bytes().to_vec();
        let (kind, dec) = he.decrypt(&mut got).unwrap();
        assert_eq!(kind, HeKeyKind::Static);
        assert_eq!(&got[..dec.len], &msg[..]);
        // Encoder failures are not queued, their buffer is kept.
        let fail = |_: &mut [u8]| Err(WireError::BufferTooSmall { need: 1, have: 0 });
        assert_eq!(
            q.send(now(), &mut rng, dst, None, None, fail),
            Err(SendError::TooLong)
        );
        assert_eq!(q.len(), 0);
        q.recycle(d);
        assert_eq!(q.free.len(), 2);
    }

    #[test]
    fn signed_trailer_verifies_with_the_secret_only() {
        use n2n_proto::auth::{PublicKey, UserKeys};
        let mut q = Output::new(usize::MAX, usize::MAX);
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let he = CommunityHe::new(*b"rocks\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let fed = PublicKey::default_federation();
        let alice = UserKeys::new(b"alice", b"alicepw", &fed);
        let bob = UserKeys::new(b"bob", b"bobpw", &fed);
        let seal = Seal {
            he: &he,
            kind: HeKeyKind::Static,
            header_len: None,
            trailer: Trailer::Signed(alice.secret()),
        };
        let msg = [
            3u8, 2, 0, 5, b'r', b'o', b'c', b'k', b's', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 1,
        ];
        let d = send_one(&mut q, &mut rng, &seal, &msg);
        assert_eq!(alice.secret().verify_trailer(d.bytes()), Ok(()));
        assert!(bob.secret().verify_trailer(d.bytes()).is_err());
        let mut got = d.bytes().to_vec();
        let (kind, dec) = he.decrypt(&mut got).unwrap();
        assert_eq!((kind, &got[..dec.len]), (HeKeyKind::Static, &msg[..]));
    }
}
