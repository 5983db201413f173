//! The two ends of the edge's data path: the UDP side (sockets and the
//! GSO batch the encapsulation writes into) and the TAP side (device,
//! buffers, the coalescer in front of it).

use std::net::SocketAddr;

use n2n_core::MAX_DATAGRAM;
use n2n_offload::{Coalescer, GsoBatch, VNET_HDR_LEN};
use n2n_sys::udp::{SyncSocket, gso_unsupported};

use super::report::ErrorLog;
use super::tcp::TcpLink;
use super::{TAP_READ_BUF, buffer};
use crate::tap::TapQueue;

/// The UDP side: the main and discovery sockets and the GSO batch the
/// encapsulation writes into.
#[derive(Debug)]
pub(super) struct Udp {
    pub(super) main: SyncSocket,
    pub(super) mcast: Option<SyncSocket>,
    pub(super) gso: GsoBatch,
    /// Off with `N2N_UDP_GSO=0` or once the kernel refused to segment.
    pub(super) gso_on: bool,
    pub(super) errors: ErrorLog,
    /// `-S2`: the connection that carries the datagrams for the current
    /// supernode.
    pub(super) tcp: Option<TcpLink>,
}

impl Udp {
    /// Send one datagram (with its own TTL if it has one).
    pub(super) fn send(&mut self, data: &[u8], dst: SocketAddr, ttl: Option<u8>) {
        if let Some(l) = &mut self.tcp
            && l.routes(dst)
        {
            l.send(data);
            return;
        }
        if let Err(e) = self.main.send_to_ttl(data, dst, ttl) {
            self.errors.send_failed(dst, data.len(), &e);
        }
    }

    /// Send everything collected (a datagram that did not join the last
    /// run goes out after it).
    pub(super) fn flush(&mut self) {
        while !self.gso.is_empty() {
            self.send_run();
        }
    }

    /// Send the collected run: one `sendmsg` with `UDP_SEGMENT`, or one
    /// datagram at a time if there is one or the kernel cannot segment. A
    /// datagram that did not join it becomes the next run.
    pub(super) fn send_run(&mut self) {
        if let Some(b) = self.gso.batch() {
            if let Some(l) = &mut self.tcp
                && l.routes(b.dst)
            {
                for d in b.datagrams() {
                    l.send(d);
                }
                self.gso.clear();
                return;
            }
            let mut sent = false;
            if b.count > 1
                && self.gso_on
                && let Ok(seg) = u16::try_from(b.segment)
            {
                match self.main.send_segments(b.data, seg, b.dst) {
                    Ok(_) => sent = true,
                    Err(e) if gso_unsupported(&e) => {
                        tracing::info!(
                            "UDP segmentation offload unavailable ({e}): sending one by one"
                        );
                        self.gso_on = false;
                    }
                    Err(e) => {
                        let (n, len) = (b.count, b.data.len());
                        let what = format_args!(
                            "sendmsg {} failed: {e} ({n} datagrams, {len} bytes)",
                            b.dst
                        );
                        self.errors.report(what, false);
                        sent = true;
                    }
                }
            }
            if !sent {
                for d in b.datagrams() {
                    if let Err(e) = self.main.send_to(d, b.dst) {
                        self.errors.send_failed(b.dst, d.len(), &e);
                    }
                }
            }
        }
        self.gso.clear();
    }
}

/// The TAP side: the device or one of its queues (once open) and its
/// buffers.
#[derive(Debug)]
pub(super) struct TapIo<D> {
    pub(super) dev: Option<D>,
    /// One read (virtio-net header first if offloads are on).
    pub(super) read: Box<[u8]>,
    /// A frame from `decapsulate`, at [`VNET_HDR_LEN`] after a zero
    /// virtio-net header.
    pub(super) out: Box<[u8]>,
    pub(super) gro: Coalescer,
    /// The frames of a super-segment encoded together.
    pub(super) batch: super::lane::EncodeBufs,
    pub(super) errors: ErrorLog,
    /// When the TAP was last readable (see `Lane::on_tap_readable`).
    pub(super) last_ready: Option<std::time::Instant>,
}

impl<D> TapIo<D> {
    /// Buffers for a device that is not open yet.
    pub(super) fn new(dev: Option<D>) -> Self {
        Self {
            dev,
            read: buffer(TAP_READ_BUF),
            out: buffer(VNET_HDR_LEN + MAX_DATAGRAM),
            gro: Coalescer::new(),
            batch: super::lane::EncodeBufs::new(),
            errors: ErrorLog::default(),
            last_ready: None,
        }
    }
}

impl<D: std::ops::Deref<Target = TapQueue>> TapIo<D> {
    /// Where `decapsulate` writes a frame.
    pub(super) fn frame_buf(&mut self) -> &mut [u8] {
        self.out.get_mut(VNET_HDR_LEN..).unwrap_or_default()
    }

    /// The `len`-byte frame in [`Self::frame_buf`] → TAP: TCP segments are
    /// merged into one GSO write, anything else goes out behind the zero
    /// virtio-net header (or bare without offloads).
    pub(super) fn write_frame(&mut self, len: usize) {
        let Some(tap) = &self.dev else { return };
        let frame = self.out.get(VNET_HDR_LEN..VNET_HDR_LEN + len);
        let Some(frame) = frame else { return };
        if !tap.vnet_hdr() {
            return tap_write(tap, frame, &mut self.errors);
        }
        if self.gro.add(frame) {
            return;
        }
        if !self.gro.is_empty() {
            tap_write(tap, self.gro.take(), &mut self.errors);
        }
        if !self.gro.add(frame)
            && let Some(f) = self.out.get(..VNET_HDR_LEN + len)
        {
            tap_write(tap, f, &mut self.errors);
        }
    }

    /// Write what the coalescer holds.
    pub(super) fn flush(&mut self) {
        if let Some(tap) = &self.dev
            && !self.gro.is_empty()
        {
            tap_write(tap, self.gro.take(), &mut self.errors);
        }
    }
}

/// How long a TAP write waits for the device to take a frame.
const TAP_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Write one frame to the TAP.
fn tap_write(tap: &TapQueue, frame: &[u8], errors: &mut ErrorLog) {
    if let Err(e) = tap.send(frame, TAP_WRITE_WAIT) {
        let (len, name) = (frame.len(), tap.name());
        errors.report(
            format_args!("writing {len} bytes to TAP {name} failed: {e}"),
            false,
        );
    }
}
