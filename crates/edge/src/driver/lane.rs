//! One data path of the edge: a TAP queue, a socket on the main port, and
//! their buffers. The main loop runs lane 0 (with the discovery socket and
//! the `-S2` link); with `--threads N` each of N − 1 worker threads
//! ([`super::worker`]) runs one more. Every lane calls into the one core
//! behind its mutex, once per TAP read or received slot.
//!
//! TAP → network: up to [`BATCH`] reads per readiness. With offloads a
//! read is one frame (its checksum completed) or a TCP super-segment cut
//! into frames of at most [`SEG_FRAME_MAX`] bytes, so that each datagram
//! fits a 1500-byte underlay unfragmented (still one n2n PACKET per
//! frame). `encapsulate` writes each datagram straight into the free slot
//! of the GSO batch; a read's datagrams leave in one `sendmsg` with
//! `UDP_SEGMENT` per run of equal sizes and destination, then the control
//! transmits.
//!
//! Network → TAP: `recvmmsg` of up to [`RECV_BATCH`] datagrams, up to
//! [`BATCH`] per readiness; each is `decapsulate`d behind a zero
//! virtio-net header; in-order TCP segments are merged into one GSO write
//! to the TAP, the rest written as they are.

use std::io;
use std::ops::Deref;
use std::sync::Mutex;

use n2n_core::edge::{DataShard, ENCODE_BATCH, Edge};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_offload::{GsoBatch, Read, VNET_HDR_LEN};
use n2n_sys::udp::RecvBatch;

use super::ends::{TapIo, Udp};
use super::{BATCH, IDLE_GAP, RECV_BATCH, SEG_FRAME_MAX, decapsulate, encapsulate, lock};
use crate::tap::TapQueue;

/// A TAP queue and a socket with their buffers.
#[derive(Debug)]
pub(super) struct Lane<D> {
    pub(super) tap: TapIo<D>,
    pub(super) udp: Udp,
    /// Datagrams of one `recvmmsg`.
    pub(super) rx: RecvBatch,
    /// `--threads` > 1: this lane's shard of the core (its encryption and
    /// decryption run without the lock); `None`: the core's own.
    pub(super) shard: Option<DataShard>,
}

impl<D: Deref<Target = TapQueue>> Lane<D> {
    /// Frames from the TAP → datagrams (`t`: when the wait for input
    /// ended). `Err`: the TAP cannot be read.
    ///
    /// Reads until the TAP is empty, except on an idle path (the TAP was
    /// last readable [`IDLE_GAP`] or longer ago): then one read, so that a
    /// lone frame does not pay a second, failing `read` (the next
    /// `poll` tells whether more came).
    pub(super) fn on_tap_readable(&mut self, edge: &Mutex<Edge>, t: Now) -> io::Result<()> {
        let idle = self
            .tap
            .last_ready
            .is_none_or(|l| t.mono.saturating_duration_since(l) >= IDLE_GAP);
        self.tap.last_ready = Some(t.mono);
        for _ in 0..BATCH {
            let Some(dev) = &self.tap.dev else { break };
            let n = match dev.try_recv(&mut self.tap.read) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let vnet = dev.vnet_hdr();
            let udp = &mut self.udp;
            let Some(read) = self.tap.read.get_mut(..n) else {
                continue;
            };
            // The core's lock is taken per frame: the lanes' sends and
            // reads never wait for each other.
            if !vnet {
                encapsulate(edge, self.shard.as_mut(), t, read, &mut udp.gso);
            } else {
                match n2n_offload::classify(read, SEG_FRAME_MAX) {
                    Ok(Read::Frame { start, end }) => {
                        if let Some(f) = read.get(start..end) {
                            encapsulate(edge, self.shard.as_mut(), t, f, &mut udp.gso);
                        }
                    }
                    Ok(Read::Tso(tso)) => {
                        let whole = read.get(VNET_HDR_LEN..).unwrap_or_default();
                        let (bufs, shard) = (&mut self.tap.batch, self.shard.as_mut());
                        encapsulate_tso(edge, shard, t, &tso, whole, bufs, udp);
                    }
                    Err(err) => tracing::debug!("dropping a {n}-byte TAP read: {err}"),
                }
            }
            self.udp.flush();
            self.send_transmits(edge);
            if idle {
                break;
            }
        }
        Ok(())
    }

    /// Datagrams from the main (or discovery) socket → frames for the
    /// TAP, and what the core answers (`t`: when the wait ended).
    pub(super) fn on_socket_readable(&mut self, edge: &Mutex<Edge>, via_multicast: bool, t: Now) {
        for _ in 0..BATCH / RECV_BATCH {
            let sock = match via_multicast {
                false => &self.udp.main,
                true => match &self.udp.mcast {
                    Some(s) => s,
                    None => return,
                },
            };
            let n = sock.recv_ready(&mut self.rx);
            for i in 0..n {
                if let Some((dgrams, from)) = self.rx.datagrams(i) {
                    for dgram in dgrams {
                        let out = self.tap.frame_buf();
                        let shard = self.shard.as_mut();
                        let len = decapsulate(edge, shard, t, from, dgram, via_multicast, out);
                        if let Some(len) = len {
                            self.tap.write_frame(len);
                        }
                    }
                }
                self.send_transmits(edge);
            }
            if !self.rx.filled() {
                break;
            }
        }
        self.tap.flush();
    }

    /// Send every datagram the core queued (and hand the shard's byte
    /// counts to the core).
    pub(super) fn send_transmits(&mut self, edge: &Mutex<Edge>) {
        let mut e = lock(edge);
        if let Some(s) = &mut self.shard {
            e.sync_shard(s);
        }
        while let Some(d) = e.poll_transmit() {
            self.udp.send(d.bytes(), d.dst, d.ttl);
            e.recycle_transmit(d);
        }
    }
}

/// The frames of a TCP super-segment → datagrams in the GSO batch,
/// [`ENCODE_BATCH`] frames per call into the core
/// (`Edge::encapsulate_many`, or with a shard `Edge::route_many` locked and
/// `DataShard::encode_many` unlocked: AES encrypts four frames' CBC chains
/// at a time), each datagram then copied into the batch's free slot (a copy of
/// ~1.4 KB costs ~1/60 of what the interleaving saves: `benches/offload`).
fn encapsulate_tso(
    edge: &Mutex<Edge>,
    mut shard: Option<&mut DataShard>,
    t: n2n_core::Now,
    tso: &n2n_offload::Tso,
    whole: &[u8],
    bufs: &mut EncodeBufs,
    udp: &mut Udp,
) {
    let count = tso.count();
    let mut i = 0;
    while i < count {
        // Cut up to ENCODE_BATCH segments into the first free buffers (a
        // segment that cannot be cut is skipped, as one at a time).
        let mut lens = [0usize; ENCODE_BATCH];
        let mut k = 0;
        while i < count && k < ENCODE_BATCH {
            let buf = bufs.frames.chunks_exact_mut(MAX_DATAGRAM).nth(k);
            if let (Some(buf), Some(len)) = (buf, lens.get_mut(k))
                && let Some(n) = tso.segment(whole, i, buf)
            {
                *len = n;
                k += 1;
            }
            i += 1;
        }
        let mut frames: [&[u8]; ENCODE_BATCH] = [&[]; ENCODE_BATCH];
        for ((f, b), n) in frames
            .iter_mut()
            .zip(bufs.frames.chunks_exact(MAX_DATAGRAM))
            .zip(lens)
        {
            *f = b.get(..n).unwrap_or_default();
        }
        let mut outs: [&mut [u8]; ENCODE_BATCH] = Default::default();
        for (o, d) in outs
            .iter_mut()
            .zip(bufs.dgrams.chunks_exact_mut(MAX_DATAGRAM))
        {
            *o = d;
        }
        let mut tx = [None; ENCODE_BATCH];
        let (frames, outs) = (
            frames.get(..k).unwrap_or_default(),
            outs.get_mut(..k).unwrap_or_default(),
        );
        match shard.as_deref_mut() {
            None => lock(edge).encapsulate_many(t, frames, outs, &mut tx),
            // --threads: only the routing under the lock.
            Some(shard) => {
                let mut routes = [None; ENCODE_BATCH];
                let mut results = [None; ENCODE_BATCH];
                lock(edge).route_many(t, frames, shard, outs, &mut routes, &mut results);
                shard.encode_many(frames, &routes, outs, &mut results);
                for (t, r) in tx.iter_mut().zip(results) {
                    *t = r.and_then(Result::ok);
                }
                let mut drops = results.iter().flatten().filter_map(|r| r.err()).peekable();
                if drops.peek().is_some() {
                    let mut e = lock(edge);
                    drops.for_each(|why| e.count_drop(why));
                }
            }
        }
        for (t, d) in tx.iter().zip(outs.iter()) {
            let Some(t) = t else { continue };
            let (Some(src), slot) = (d.get(..t.len), udp.gso.slot()) else {
                continue;
            };
            let Some(dst) = slot.get_mut(..t.len) else {
                continue;
            };
            dst.copy_from_slice(src);
            if !udp.gso.push(t.len, t.dst) {
                udp.send_run();
            }
        }
    }
}

/// The buffers of [`encapsulate_tso`]: [`ENCODE_BATCH`] frames cut from a
/// super-segment and their datagrams.
pub(super) struct EncodeBufs {
    frames: Box<[u8]>,
    dgrams: Box<[u8]>,
}

impl std::fmt::Debug for EncodeBufs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodeBufs").finish_non_exhaustive()
    }
}

impl EncodeBufs {
    pub(super) fn new() -> Self {
        Self {
            frames: super::buffer(ENCODE_BATCH * MAX_DATAGRAM),
            dgrams: super::buffer(ENCODE_BATCH * MAX_DATAGRAM),
        }
    }
}

/// A GSO batch for a lane.
pub(super) fn gso_batch() -> GsoBatch {
    GsoBatch::new(
        n2n_core::MAX_DATAGRAM,
        n2n_sys::udp::MAX_SEGMENTS,
        n2n_offload::gso::GSO_MAX_BYTES,
    )
}
