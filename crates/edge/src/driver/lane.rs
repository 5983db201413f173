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

use n2n_core::edge::{DataShard, Edge};
use n2n_offload::{GsoBatch, Read, VNET_HDR_LEN};
use n2n_sys::udp::RecvBatch;

use super::ends::{TapIo, Udp};
use super::{BATCH, RECV_BATCH, SEG_FRAME_MAX, decapsulate, encapsulate, lock, now};
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
    /// Frames from the TAP → datagrams. `Err`: the TAP cannot be read.
    pub(super) fn on_tap_readable(&mut self, edge: &Mutex<Edge>) -> io::Result<()> {
        for _ in 0..BATCH {
            let Some(dev) = &self.tap.dev else { break };
            let n = match dev.try_recv(&mut self.tap.read) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let vnet = dev.vnet_hdr();
            let t = now();
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
                        for i in 0..tso.count() {
                            if let Some(len) = tso.segment(whole, i, &mut self.tap.seg)
                                && let Some(f) = self.tap.seg.get(..len)
                                && encapsulate(edge, self.shard.as_mut(), t, f, &mut udp.gso)
                            {
                                udp.send_run();
                            }
                        }
                    }
                    Err(err) => tracing::debug!("dropping a {n}-byte TAP read: {err}"),
                }
            }
            self.udp.flush();
            self.send_transmits(edge);
        }
        Ok(())
    }

    /// Datagrams from the main (or discovery) socket → frames for the
    /// TAP, and what the core answers.
    pub(super) fn on_socket_readable(&mut self, edge: &Mutex<Edge>, via_multicast: bool) {
        for _ in 0..BATCH / RECV_BATCH {
            let sock = match via_multicast {
                false => &self.udp.main,
                true => match &self.udp.mcast {
                    Some(s) => s,
                    None => return,
                },
            };
            let n = sock.recv_ready(&mut self.rx);
            let t = now();
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
            if n < RECV_BATCH {
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

/// A GSO batch for a lane.
pub(super) fn gso_batch() -> GsoBatch {
    GsoBatch::new(
        n2n_core::MAX_DATAGRAM,
        n2n_sys::udp::MAX_SEGMENTS,
        n2n_offload::gso::GSO_MAX_BYTES,
    )
}
