//! The supernode's output queue: datagrams waiting for `poll_transmit`.
//!
//! Every queued datagram lives in its own `MAX_DATAGRAM`-byte buffer taken
//! from a free list and given back once the driver has copied it out, so
//! after warm-up (the largest burst seen so far) queuing allocates nothing.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::{MAX_DATAGRAM, Transmit};

#[derive(Debug)]
struct Slot {
    dst: SocketAddr,
    len: usize,
    buf: Box<[u8]>,
}

/// Queue of datagrams with recycled buffers.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    queue: VecDeque<Slot>,
    free: Vec<Box<[u8]>>,
}

/// A buffer being filled; give it back with [`OutQueue::push`] or
/// [`OutQueue::recycle`].
#[derive(Debug)]
pub(crate) struct SlotBuf(Box<[u8]>);

impl SlotBuf {
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl OutQueue {
    /// A buffer of `MAX_DATAGRAM` bytes (contents unspecified).
    pub(crate) fn take(&mut self) -> SlotBuf {
        SlotBuf(
            self.free
                .pop()
                .unwrap_or_else(|| vec![0u8; MAX_DATAGRAM].into_boxed_slice()),
        )
    }

    /// Return an unused buffer.
    pub(crate) fn recycle(&mut self, b: SlotBuf) {
        self.free.push(b.0);
    }

    /// Queue the first `len` bytes of `b` for `dst`.
    pub(crate) fn push(&mut self, dst: SocketAddr, b: SlotBuf, len: usize) {
        let len = len.min(b.0.len());
        self.queue.push_back(Slot { dst, len, buf: b.0 });
    }

    /// Queue a copy of the most recently queued datagram for another
    /// destination (broadcast fan-out). Returns false if the queue is empty.
    pub(crate) fn push_copy_of_last(&mut self, dst: SocketAddr) -> bool {
        let mut b = self.take();
        let Some(last) = self.queue.back() else {
            self.recycle(b);
            return false;
        };
        let len = last.len;
        match (b.0.get_mut(..len), last.buf.get(..len)) {
            (Some(d), Some(s)) => d.copy_from_slice(s),
            _ => {
                self.recycle(b);
                return false;
            }
        }
        self.push(dst, b, len);
        true
    }

    /// Copy the oldest datagram into `out`. `Some(Err(len))` when `out` is
    /// too small (the datagram is discarded).
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> Option<Result<Transmit, usize>> {
        let slot = self.queue.pop_front()?;
        let res = match (out.get_mut(..slot.len), slot.buf.get(..slot.len)) {
            (Some(d), Some(s)) => {
                d.copy_from_slice(s);
                Ok(Transmit {
                    dst: slot.dst,
                    len: slot.len,
                    ttl: None,
                })
            }
            _ => Err(slot.len),
        };
        self.free.push(slot.buf);
        Some(res)
    }

    /// Number of queued datagrams.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycles_buffers() {
        let mut q = OutQueue::default();
        let dst: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut b = q.take();
        b.bytes_mut()[..3].copy_from_slice(b"abc");
        q.push(dst, b, 3);
        assert!(q.push_copy_of_last("127.0.0.1:2".parse().unwrap()));
        let mut out = [0u8; 16];
        let t = q.pop_into(&mut out).unwrap().unwrap();
        assert_eq!((t.dst, &out[..t.len]), (dst, &b"abc"[..]));
        let mut small = [0u8; 2];
        assert_eq!(q.pop_into(&mut small), Some(Err(3)));
        assert!(q.pop_into(&mut out).is_none());
        assert_eq!(q.free.len(), 2);
        let _ = q.take();
        assert_eq!(q.free.len(), 1);
        assert!(!q.push_copy_of_last(dst));
    }
}
