//! Time as the state machines see it. They never read a clock: every
//! `handle_*` call carries a [`Now`].

use std::time::{Duration, Instant};

/// The current time, given by the driver (or a simulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: drives every timer.
    pub mono: Instant,
    /// Wall-clock time in microseconds since the Unix epoch: header-encryption
    /// time stamps and the Unix-seconds values of the management interface.
    pub unix_us: u64,
}

impl Now {
    /// Build from a monotonic instant and Unix microseconds.
    pub fn new(mono: Instant, unix_us: u64) -> Self {
        Self { mono, unix_us }
    }

    /// Whole Unix seconds.
    pub fn unix_secs(&self) -> u64 {
        self.unix_us / 1_000_000
    }

    /// The header-encryption time stamp for this moment (crypto.md §4.4).
    pub fn he_stamp(&self) -> u64 {
        n2n_proto::he::stamp_from_unix(self.unix_secs(), (self.unix_us % 1_000_000) as u32)
    }

    /// This moment advanced by `d` (both clocks), for simulations.
    pub fn advance(self, d: Duration) -> Self {
        Self {
            mono: self.mono + d,
            unix_us: self.unix_us + u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// A datagram written into the caller's buffer (`Edge::encapsulate`), or
/// the destination, length and TTL of a queued [`Datagram`](crate::Datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: std::net::SocketAddr,
    /// Number of bytes written at the start of the buffer.
    pub len: usize,
    /// IP TTL (IPv6 hop limit) for this datagram only, `None` for the
    /// socket's default. Set on the REGISTERs an edge sprays with `-L` > 1
    /// (behaviour.md §5.4): they should open the local NAT but expire before
    /// reaching the peer's NAT.
    pub ttl: Option<u8>,
}

/// Buffers handed to the cores must hold at least this many bytes (the C
/// implementations use 2048-byte buffers too).
pub const MAX_DATAGRAM: usize = 2048;
