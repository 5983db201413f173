//! Send side: the datagrams of one burst collected for a single `sendmsg`
//! with UDP segmentation offload (`UDP_SEGMENT`).
//!
//! The kernel cuts such a send into datagrams of one size (the last may
//! be shorter), all to one destination. [`GsoBatch`] keeps them back to
//! back in one buffer: the caller writes each datagram straight into
//! [`GsoBatch::slot`] (the encapsulation's output buffer), then
//! [`GsoBatch::push`]es its length and destination. A datagram that cannot
//! join the run (other destination, larger, after a shorter one, run full)
//! stays in its slot: the caller sends [`GsoBatch::batch`], and
//! [`GsoBatch::clear`] makes that datagram the first of the next run.

use std::net::SocketAddr;

/// Bytes one GSO send may carry (the IPv4 UDP payload limit).
pub const GSO_MAX_BYTES: usize = 65_507;

/// A run of datagrams ready for one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The datagrams back to back.
    pub data: &'a [u8],
    /// Size of each datagram but the last (`UDP_SEGMENT`).
    pub segment: usize,
    /// Number of datagrams.
    pub count: usize,
    /// Their destination.
    pub dst: SocketAddr,
}

impl<'a> Batch<'a> {
    /// The datagrams one by one (to send without segmentation offload).
    pub fn datagrams(&self) -> std::slice::Chunks<'a, u8> {
        self.data.chunks(self.segment.max(1))
    }
}

/// Datagrams of one destination collected for a single UDP GSO send: all
/// of the same size except possibly the last.
pub struct GsoBatch {
    /// `max_bytes` for the run plus one slot behind it.
    buf: Box<[u8]>,
    slot: usize,
    max_bytes: usize,
    max_segments: usize,
    /// Bytes of the run (from offset 0).
    len: usize,
    /// Size of the first datagram.
    seg: usize,
    count: usize,
    dst: Option<SocketAddr>,
    /// A shorter datagram was added: it must be the last.
    closed: bool,
    /// A datagram written behind the run that did not join it (length,
    /// destination): the first of the next run.
    held: Option<(usize, SocketAddr)>,
}

impl std::fmt::Debug for GsoBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GsoBatch")
            .field("len", &self.len)
            .field("count", &self.count)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl GsoBatch {
    /// A batch of at most `max_segments` datagrams and `max_bytes` bytes
    /// (at most [`GSO_MAX_BYTES`]), each written into a slot of `slot`
    /// bytes.
    pub fn new(slot: usize, max_segments: usize, max_bytes: usize) -> Self {
        let max_bytes = max_bytes.clamp(slot, GSO_MAX_BYTES.max(slot));
        Self {
            buf: vec![0u8; max_bytes + slot].into_boxed_slice(),
            slot,
            max_bytes,
            max_segments: max_segments.max(1),
            len: 0,
            seg: 0,
            count: 0,
            dst: None,
            closed: false,
            held: None,
        }
    }

    /// Where the next datagram is to be written: right behind the run.
    /// Empty while a datagram is held (call [`Self::clear`] first).
    pub fn slot(&mut self) -> &mut [u8] {
        if self.held.is_some() {
            return &mut [];
        }
        self.buf
            .get_mut(self.len..self.len + self.slot)
            .unwrap_or_default()
    }

    /// The datagram just written into [`Self::slot`]: `len` bytes to
    /// `dst`. `true` if it joined the run (or was empty and is ignored);
    /// `false` if it cannot: send [`Self::batch`] first, then
    /// [`Self::clear`] — the datagram stays and starts the next run.
    pub fn push(&mut self, len: usize, dst: SocketAddr) -> bool {
        if self.held.is_some() || len == 0 || len > self.slot {
            return true;
        }
        if self.count == 0 {
            self.start(len, dst);
            return true;
        }
        let joins = self.dst == Some(dst)
            && !self.closed
            && len <= self.seg
            && self.count < self.max_segments
            && self.len + len <= self.max_bytes;
        if !joins {
            self.held = Some((len, dst));
            return false;
        }
        if len < self.seg {
            self.closed = true;
        }
        self.len += len;
        self.count += 1;
        true
    }

    fn start(&mut self, len: usize, dst: SocketAddr) {
        self.len = len;
        self.seg = len;
        self.count = 1;
        self.dst = Some(dst);
        self.closed = false;
    }

    /// The collected run, if any.
    pub fn batch(&self) -> Option<Batch<'_>> {
        let dst = self.dst.filter(|_| self.count > 0)?;
        Some(Batch {
            data: self.buf.get(..self.len)?,
            segment: self.seg,
            count: self.count,
            dst,
        })
    }

    /// Forget the run (it was sent); a held datagram moves to the front
    /// and becomes the first of the next run.
    pub fn clear(&mut self) {
        let end = self.len;
        self.len = 0;
        self.count = 0;
        self.dst = None;
        self.closed = false;
        if let Some((n, dst)) = self.held.take() {
            self.buf.copy_within(end..end + n, 0);
            self.start(n, dst);
        }
    }

    /// Whether nothing is collected or held.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.held.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 1], port))
    }

    /// Write `len` bytes of `fill` into the slot and push them.
    fn put(b: &mut GsoBatch, len: usize, fill: u8, dst: SocketAddr) -> bool {
        let slot = b.slot();
        assert!(slot.len() >= len, "slot of {} for {len}", slot.len());
        slot[..len].fill(fill);
        b.push(len, dst)
    }

    #[test]
    fn equal_datagrams_join_a_shorter_one_ends_the_run() {
        let mut b = GsoBatch::new(2048, 64, GSO_MAX_BYTES);
        assert!(b.is_empty() && b.batch().is_none());
        for i in 0..3 {
            assert!(put(&mut b, 1400, i, addr(1)));
        }
        assert!(put(&mut b, 700, 3, addr(1)), "a shorter last one joins");
        assert!(
            !put(&mut b, 700, 4, addr(1)),
            "nothing after the shorter one"
        );
        let r = b.batch().unwrap();
        assert_eq!((r.count, r.segment, r.dst), (4, 1400, addr(1)));
        assert_eq!(r.data.len(), 3 * 1400 + 700);
        let parts: Vec<&[u8]> = r.datagrams().collect();
        assert_eq!(parts.len(), 4);
        for (i, p) in parts.iter().enumerate() {
            assert!(p.iter().all(|&x| usize::from(x) == i), "datagram {i}");
        }
        // The held one starts the next run, its bytes intact.
        b.clear();
        let r = b.batch().unwrap();
        assert_eq!((r.count, r.segment, r.data.len()), (1, 700, 700));
        assert!(r.data.iter().all(|&x| x == 4));
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn other_destination_larger_datagram_and_limits_start_a_new_run() {
        let mut b = GsoBatch::new(2048, 3, GSO_MAX_BYTES);
        assert!(put(&mut b, 1000, 1, addr(1)));
        assert!(!put(&mut b, 1000, 2, addr(2)), "other destination");
        assert_eq!(b.slot().len(), 0, "no slot while a datagram is held");
        assert!(b.push(10, addr(1)), "ignored while held");
        assert_eq!(b.batch().unwrap().count, 1);
        b.clear();
        assert_eq!(b.batch().unwrap().dst, addr(2));
        assert!(!put(&mut b, 1001, 3, addr(2)), "larger than the first");
        b.clear();
        assert!(put(&mut b, 1001, 4, addr(2)));
        assert!(put(&mut b, 1001, 5, addr(2)));
        assert!(!put(&mut b, 1001, 6, addr(2)), "max_segments = 3");
        assert_eq!(b.batch().unwrap().count, 3);
        b.clear();
        // Byte limit: 2048 + 2048 > 3000.
        let mut b = GsoBatch::new(2048, 64, 3000);
        assert!(put(&mut b, 1500, 1, addr(1)));
        assert!(put(&mut b, 1500, 2, addr(1)));
        assert!(!put(&mut b, 1500, 3, addr(1)));
        assert_eq!(b.batch().unwrap().data.len(), 3000);
    }

    #[test]
    fn odd_lengths_are_ignored_and_the_run_stays_within_bounds() {
        let mut b = GsoBatch::new(100, 1000, GSO_MAX_BYTES);
        assert!(b.push(0, addr(1)));
        assert!(b.push(101, addr(1)), "longer than the slot: ignored");
        assert!(b.is_empty());
        // Fill to the byte limit: every slot is inside the buffer.
        let mut n = 0;
        while put(&mut b, 100, 7, addr(1)) {
            n += 1;
            assert!(n <= GSO_MAX_BYTES / 100 + 1);
        }
        assert_eq!(n, GSO_MAX_BYTES / 100);
        assert!(b.batch().unwrap().data.len() <= GSO_MAX_BYTES);
        b.clear();
        assert_eq!(b.batch().unwrap().count, 1);
    }
}
