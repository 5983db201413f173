//! TCP framing of edge ↔ supernode traffic (wire.md §1 "TCP framing",
//! edge `-S2`, the supernode's TCP listener): every message is preceded by
//! its length as a 2-byte big-endian prefix, the message bytes being
//! exactly those of the UDP datagram.
//!
//! Sans-IO and allocation-free: [`TcpDeframer`] owns a fixed buffer of
//! [`TCP_DEFRAMER_CAPACITY`] bytes (one largest frame plus one read), the
//! driver reads socket bytes into [`TcpDeframer::read_space`] (or copies
//! them in with [`TcpDeframer::feed`]) and takes complete messages out with
//! [`TcpDeframer::next_frame`]. [`encode_frame`] / [`frame_prefix`] write
//! the prefix for sending.
//!
//! Limits, as C n2n 3.1.1 enforces them on both sides: a prefix L with
//! L + 2 > 2048 (L > [`TCP_MAX_MESSAGE_LEN`]) ends the connection. A
//! zero-length frame (L = 0) ends it too: the spec is silent, C never sends
//! one, and a C receiver given one stops processing the connection (its
//! reader keeps asking for 0 more bytes and re-reads the same prefix), so
//! no C peer can rely on it; here it is [`TcpFrameError::EmptyFrame`].
//! Errors are sticky: once [`TcpDeframer::next_frame`] has returned one the
//! deframer accepts no more bytes and the connection must be closed.

/// Bytes of the length prefix.
pub const TCP_PREFIX_LEN: usize = 2;
/// Largest frame (prefix included): C's packet buffer, `N2N_PKT_BUF_SIZE`.
pub const TCP_MAX_FRAME_LEN: usize = 2048;
/// Largest message in a frame: 2046 bytes.
pub const TCP_MAX_MESSAGE_LEN: usize = TCP_MAX_FRAME_LEN - TCP_PREFIX_LEN;
/// The deframer's buffer: one largest frame plus one read of the same size.
/// It never holds more.
pub const TCP_DEFRAMER_CAPACITY: usize = 2 * TCP_MAX_FRAME_LEN;

/// A framing violation (the connection must be closed), or an encoder
/// argument that cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpFrameError {
    /// A length prefix over 2046 (L + 2 > 2048).
    #[error("TCP frame length {0} over the maximum of {TCP_MAX_MESSAGE_LEN} bytes (L + 2 > 2048)")]
    TooLong(usize),
    /// A zero length prefix.
    #[error("zero-length TCP frame")]
    EmptyFrame,
    /// The encoder's output buffer is too small.
    #[error("buffer of {have} bytes too small for a {need}-byte TCP frame")]
    BufferTooSmall {
        /// Bytes needed (prefix included).
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

fn check_len(len: usize) -> Result<u16, TcpFrameError> {
    if len == 0 {
        return Err(TcpFrameError::EmptyFrame);
    }
    if len > TCP_MAX_MESSAGE_LEN {
        return Err(TcpFrameError::TooLong(len));
    }
    // len ≤ 2046.
    Ok(len as u16)
}

/// The 2-byte prefix of a `len`-byte message (for vectored writes: prefix,
/// then the message). `len` must be 1..=2046.
pub fn frame_prefix(len: usize) -> Result<[u8; TCP_PREFIX_LEN], TcpFrameError> {
    check_len(len).map(u16::to_be_bytes)
}

/// Writes `message` framed (prefix, then the bytes) at the start of `out`;
/// returns the frame length `message.len() + 2`.
pub fn encode_frame(message: &[u8], out: &mut [u8]) -> Result<usize, TcpFrameError> {
    let prefix = frame_prefix(message.len())?;
    let need = message.len() + TCP_PREFIX_LEN;
    let have = out.len();
    let out = out
        .get_mut(..need)
        .ok_or(TcpFrameError::BufferTooSmall { need, have })?;
    let (p, m) = out.split_at_mut(TCP_PREFIX_LEN);
    p.copy_from_slice(&prefix);
    m.copy_from_slice(message);
    Ok(need)
}

/// Streaming deframer of one TCP connection (see the module docs).
///
/// ```
/// use n2n_proto::wire::tcp::TcpDeframer;
/// let mut d = TcpDeframer::new();
/// let stream = [0, 3, b'a', b'b', b'c', 0, 1];
/// assert_eq!(d.feed(&stream), stream.len());
/// assert_eq!(d.next_frame(), Ok(Some(&b"abc"[..])));
/// assert_eq!(d.next_frame(), Ok(None)); // 1 of 3 bytes of the next frame
/// assert_eq!(d.buffered(), 2);
/// ```
#[derive(Clone)]
pub struct TcpDeframer {
    buf: [u8; TCP_DEFRAMER_CAPACITY],
    /// Start of the unconsumed bytes.
    start: usize,
    /// End of the received bytes.
    end: usize,
    error: Option<TcpFrameError>,
}

impl core::fmt::Debug for TcpDeframer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpDeframer")
            .field("buffered", &self.buffered())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Default for TcpDeframer {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpDeframer {
    /// An empty deframer.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; TCP_DEFRAMER_CAPACITY],
            start: 0,
            end: 0,
            error: None,
        }
    }

    /// Received bytes not yet returned as a frame (never more than
    /// [`TCP_DEFRAMER_CAPACITY`]; at most 2047 once [`next_frame`]
    /// has returned `None`).
    ///
    /// [`next_frame`]: Self::next_frame
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether bytes are pending: once [`next_frame`](Self::next_frame)
    /// has returned `None`, a frame has been started but not completed (for
    /// half-open / slow-sender timeouts).
    #[must_use]
    pub fn in_frame(&self) -> bool {
        self.buffered() > 0
    }

    /// The framing error that ended the connection, if any.
    #[must_use]
    pub fn error(&self) -> Option<TcpFrameError> {
        self.error
    }

    /// Free space to read socket bytes into; report how many were written
    /// with [`commit`](Self::commit). At least 2049 bytes once
    /// [`next_frame`](Self::next_frame) has returned `None`; empty after an
    /// error.
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.error.is_some() {
            return &mut [];
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written into [`read_space`]. Values
    /// beyond the free space are clamped.
    ///
    /// [`read_space`]: Self::read_space
    pub fn commit(&mut self, n: usize) {
        if self.error.is_none() {
            self.end = self.end.saturating_add(n).min(TCP_DEFRAMER_CAPACITY);
        }
    }

    /// Copies as much of `data` as fits into the buffer; returns how many
    /// bytes were taken (0 when the buffer is full — take the complete
    /// frames out first — or after an error).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let space = self.read_space();
        let n = space.len().min(data.len());
        space[..n].copy_from_slice(&data[..n]);
        self.commit(n);
        n
    }

    /// The next complete message (without its prefix), `None` when more
    /// bytes are needed, or the framing error after which the connection
    /// must be closed (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, TcpFrameError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let pending = &self.buf[self.start..self.end];
        let Some(prefix) = pending.get(..TCP_PREFIX_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if let Err(e) = check_len(len) {
            self.error = Some(e);
            self.start = 0;
            self.end = 0;
            return Err(e);
        }
        let total = TCP_PREFIX_LEN + len;
        if pending.len() < total {
            return Ok(None);
        }
        let from = self.start + TCP_PREFIX_LEN;
        let to = self.start + total;
        if to == self.end {
            // Drained: the next read starts at the front without a copy.
            self.start = 0;
            self.end = 0;
        } else {
            self.start = to;
        }
        Ok(Some(&self.buf[from..to]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_encode() {
        assert_eq!(frame_prefix(1), Ok([0, 1]));
        assert_eq!(frame_prefix(2046), Ok([0x07, 0xfe]));
        assert_eq!(frame_prefix(2047), Err(TcpFrameError::TooLong(2047)));
        assert_eq!(frame_prefix(0), Err(TcpFrameError::EmptyFrame));
        let mut out = [0u8; 5];
        assert_eq!(encode_frame(b"abc", &mut out), Ok(5));
        assert_eq!(out, [0, 3, b'a', b'b', b'c']);
        assert_eq!(
            encode_frame(b"abcd", &mut out),
            Err(TcpFrameError::BufferTooSmall { need: 6, have: 5 })
        );
    }

    #[test]
    fn drained_frame_resets_the_buffer() {
        let mut d = TcpDeframer::new();
        assert_eq!(d.feed(&[0, 2, 9, 9]), 4);
        assert_eq!(d.next_frame(), Ok(Some(&[9u8, 9][..])));
        assert_eq!((d.start, d.end), (0, 0));
        assert_eq!(d.read_space().len(), TCP_DEFRAMER_CAPACITY);
    }
}
