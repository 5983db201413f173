//! TAP → network (behaviour.md §5.2, §6): one frame becomes one PACKET,
//! sent directly to a known peer, through the supernode, or — while the
//! supernode is lost — to every known peer.

use super::Edge;
use super::datapath;
use super::frame;
use super::stats::DropReason;
use crate::{Now, Transmit};

impl Edge {
    /// A frame read from the TAP. Returns the datagram to send (written to
    /// `out`, ≥ [`MAX_DATAGRAM`](crate::MAX_DATAGRAM) bytes), or `None` when
    /// the frame was dropped (counted) or its copies were queued to
    /// `poll_transmit`.
    pub fn encapsulate(&mut self, now: Now, frame: &[u8], out: &mut [u8]) -> Option<Transmit> {
        let r = match self.encapsulate_inner(now, frame, out) {
            Ok(t) => t,
            Err(r) => {
                self.ctx.stats.drop(r);
                None
            }
        };
        self.peers.check_known_socks();
        r
    }

    fn encapsulate_inner(
        &mut self,
        now: Now,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Option<Transmit>, DropReason> {
        if frame.len() < frame::ETH_HEADER_LEN {
            return Err(DropReason::FrameTooShort);
        }
        if self.reg.last_sup().is_none() || self.stopped {
            return Err(DropReason::NotRegistered);
        }
        datapath::check_outgoing(&self.ctx.cfg, &self.ctx.me, frame)?;
        let dst = frame::dst_mac(frame);
        let pkt_dst = if self.ctx.cfg.routing && !dst.is_multi_or_broadcast() {
            self.peers.bridge_route(dst)
        } else {
            dst
        };
        let len = self.data.encode(now, &mut self.ctx, frame, pkt_dst, out)?;
        let ctx = &mut self.ctx;
        ctx.stats.transop_tx += 1;
        let to = |dst| {
            Ok(Some(Transmit {
                dst,
                len,
                ttl: None,
            }))
        };

        if pkt_dst.is_multi_or_broadcast() {
            if !self.reg.sn_registered() {
                // Supernode lost: straight to every known peer.
                let mut socks = self.peers.known_socks();
                let Some(first) = socks.next() else {
                    return Err(DropReason::NoDestination);
                };
                let data = out.get(..len).ok_or(DropReason::FrameTooLarge)?;
                let mut n = 1;
                for s in socks {
                    let q = ctx.out.push_copy(s, None, data);
                    ctx.count_queued(q);
                    n += 1;
                }
                ctx.stats.p2p_tx += n;
                ctx.stats.p2p_tx_bytes += n * len as u64;
                return to(first);
            }
            let sn = self
                .reg
                .current_supernode()
                .ok_or(DropReason::NoSupernodeAddress)?;
            ctx.stats.super_tx += 1;
            ctx.stats.super_tx_bytes += len as u64;
            ctx.stats.super_broadcast_tx += 1;
            return to(sn);
        }

        let fresh = ctx.cfg.register_interval / 2;
        if let Some(s) = self.peers.direct_sock(now, ctx, pkt_dst, fresh) {
            ctx.stats.p2p_tx += 1;
            ctx.stats.p2p_tx_bytes += len as u64;
            return to(s);
        }
        let sn = self
            .reg
            .current_supernode()
            .ok_or(DropReason::NoSupernodeAddress)?;
        ctx.stats.super_tx += 1;
        ctx.stats.super_tx_bytes += len as u64;
        if ctx.p2p() {
            self.peers.query(now, ctx, pkt_dst, Some(sn));
        }
        to(sn)
    }

    /// The gratuitous ARPs after the first registration (behaviour.md §6.4),
    /// through the normal send path, queued.
    pub(super) fn send_gratuitous_arps(&mut self, now: Now) {
        let me = self.ctx.me;
        if me.dev_addr.ip.is_unspecified() {
            return;
        }
        let f = frame::gratuitous_arp(me.mac, me.dev_addr.ip);
        for _ in 0..2 {
            let mut b = self.ctx.out.take();
            if let Ok(Some(t)) = self.encapsulate_inner(now, &f, b.bytes_mut()) {
                let q = self.ctx.out.push(t.dst, None, b, t.len);
                self.ctx.count_queued(q);
            } else {
                self.ctx.out.discard(b);
            }
        }
    }
}
