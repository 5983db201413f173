//! TAP → network (behaviour.md §5.2, §6): one frame becomes one PACKET,
//! sent directly to a known peer, through the supernode, or — while the
//! supernode is lost — to every known peer.
//!
//! Two halves: [`Edge::route`] (checks, destination, counters, P2P
//! queries, the random bytes; under the driver's lock) and
//! [`DataShard::encode`] (compression, transform, header, header
//! encryption; unlocked). [`Edge::encapsulate`] is the two in a row on the
//! edge's own shard.

use rand_chacha::rand_core::Rng;

use super::Edge;
use super::datapath::{self, DataShard, ENCODE_BATCH, Route, Sealing};
use super::frame;
use super::stats::DropReason;
use crate::{MAX_DATAGRAM, Now, Transmit};

impl Edge {
    /// A frame read from the TAP. Returns the datagram to send (written to
    /// `out`, ≥ [`MAX_DATAGRAM`] bytes), or `None` when
    /// the frame was dropped (counted). A broadcast while the supernode is
    /// lost goes to every known peer: the first copy is returned, the
    /// others are queued to `poll_transmit`.
    ///
    /// = [`route`](Self::route) then [`DataShard::encode`] on the edge's
    /// own shard.
    pub fn encapsulate(&mut self, now: Now, frame: &[u8], out: &mut [u8]) -> Option<Transmit> {
        let r = match self.route_with(now, frame, out.len(), None) {
            Ok(route) => self.data.encode(frame, &route, out),
            Err(r) => Err(r),
        };
        self.data.flush_tally(&mut self.ctx.stats);
        let r = match r {
            Ok(t) => Some(t),
            Err(r) => {
                self.ctx.stats.drop(r);
                None
            }
        };
        self.peers.check_known_socks();
        r
    }

    /// [`encapsulate`](Self::encapsulate) of up to [`ENCODE_BATCH`]
    /// frames read from the TAP at once (the frames of one TCP
    /// super-segment): `tx[i]` gets what `encapsulate(now, frames[i],
    /// outs[i])` returns, with the same datagrams, queued copies and
    /// counters as those calls in order. The frames are routed one by one,
    /// then encoded together, so that AES encrypts four CBC chains at a
    /// time ([`DataShard`]'s batch); a datagram built during routing (a
    /// broadcast while the supernode is lost) is copied out right away.
    pub fn encapsulate_many(
        &mut self,
        now: Now,
        frames: &[&[u8]],
        outs: &mut [&mut [u8]],
        tx: &mut [Option<Transmit>],
    ) {
        let mut routes: [Option<Route>; ENCODE_BATCH] = [None; ENCODE_BATCH];
        let mut results: [Option<Result<Transmit, DropReason>>; ENCODE_BATCH] =
            [None; ENCODE_BATCH];
        self.route_many_with(now, frames, None, outs, &mut routes, &mut results);
        self.data.encode_many(frames, &routes, outs, &mut results);
        self.data.flush_tally(&mut self.ctx.stats);
        for (t, r) in tx.iter_mut().zip(results) {
            *t = match r {
                Some(Ok(t)) => Some(t),
                Some(Err(why)) => {
                    self.ctx.stats.drop(why);
                    None
                }
                None => None,
            };
        }
    }

    /// The locked half of [`encapsulate_many`](Self::encapsulate_many) on
    /// `shard` (a shard of this edge, `--threads`): [`route`](Self::route)
    /// of each frame into `routes[i]` (`None`: dropped, counted); a
    /// datagram built during routing (a broadcast while the supernode is
    /// lost) is encoded into `outs[i]` right away, its result in
    /// `results[i]`. Then [`DataShard::encode_many`] with the same frames,
    /// routes, outputs and results builds the rest without the lock; count
    /// its drops with [`count_drop`](Self::count_drop).
    pub fn route_many(
        &mut self,
        now: Now,
        frames: &[&[u8]],
        shard: &mut DataShard,
        outs: &mut [&mut [u8]],
        routes: &mut [Option<Route>],
        results: &mut [Option<Result<Transmit, DropReason>>],
    ) {
        self.route_many_with(now, frames, Some(shard), outs, routes, results);
    }

    fn route_many_with(
        &mut self,
        now: Now,
        frames: &[&[u8]],
        mut shard: Option<&mut DataShard>,
        outs: &mut [&mut [u8]],
        routes: &mut [Option<Route>],
        results: &mut [Option<Result<Transmit, DropReason>>],
    ) {
        let items = frames
            .iter()
            .zip(outs.iter_mut())
            .zip(routes.iter_mut().zip(results.iter_mut()))
            .take(ENCODE_BATCH);
        for ((frame, out), (route, res)) in items {
            *route = None;
            *res = None;
            match self.route_with(now, frame, out.len(), shard.as_deref_mut()) {
                Ok(r) if r.is_prepared() => {
                    let s = match shard.as_deref_mut() {
                        Some(s) => s,
                        None => &mut self.data,
                    };
                    *res = Some(s.encode(frame, &r, out));
                }
                Ok(r) => *route = Some(r),
                Err(why) => self.ctx.stats.drop(why),
            }
            self.peers.check_known_socks();
        }
    }

    /// The locked half of sending a frame read from the TAP: frame checks
    /// and `-R` rules, peer lookup (a known P2P socket or the supernode),
    /// the counters (`transop_tx`, `p2p_tx` / `super_tx`, …), the P2P
    /// query for an unknown destination, and the random bytes and
    /// header-encryption stamp of the PACKET. Then
    /// [`DataShard::encode`] on `shard` (a shard of this edge) with the same
    /// frame and an `out` of at least [`MAX_DATAGRAM`] bytes builds the
    /// datagram without the lock. `None`: dropped (counted).
    ///
    /// A broadcast while the supernode is lost is built here with `shard`
    /// and queued to `poll_transmit` for all known peers but the first;
    /// `encode` then only copies it to `out`.
    ///
    /// Also brings `shard` up to date: the edge's header keys (the
    /// user/password dynamic key) if they changed since, and the bytes its
    /// last `encode` sent into the counters.
    pub fn route(&mut self, now: Now, frame: &[u8], shard: &mut DataShard) -> Option<Route> {
        let r = match self.route_with(now, frame, MAX_DATAGRAM, Some(shard)) {
            Ok(r) => Some(r),
            Err(r) => {
                self.ctx.stats.drop(r);
                None
            }
        };
        self.peers.check_known_socks();
        r
    }

    /// Count a drop the driver saw outside the edge: a failed
    /// [`DataShard::encode`].
    pub fn count_drop(&mut self, reason: DropReason) {
        self.ctx.stats.drop(reason);
    }

    /// Bring `shard` up to date without a datagram: take the edge's current
    /// header keys if they changed, add the bytes it sent to the counters
    /// (which [`route`](Self::route) and [`finish`](Self::finish) do
    /// anyway). Call it before reading [`stats`](Self::stats) for exact
    /// byte counters.
    pub fn sync_shard(&mut self, shard: &mut DataShard) {
        shard.sync(&mut self.ctx);
    }

    /// A new [`DataShard`] of this edge, for one more thread: the same
    /// transform key (the AEADs' nonce prefix and counter shared with every
    /// other shard of this edge), compression, header template and current
    /// header keys.
    pub fn data_shard(&self) -> DataShard {
        let mut s = self.data.share();
        s.refresh(&self.ctx);
        s
    }

    /// [`route`](Self::route) with `shard` (`None`: the edge's own) for an
    /// `out` of `cap` bytes.
    fn route_with(
        &mut self,
        now: Now,
        frame: &[u8],
        cap: usize,
        shard: Option<&mut DataShard>,
    ) -> Result<Route, DropReason> {
        let shard = match shard {
            Some(s) => s,
            None => &mut self.data,
        };
        shard.sync(&mut self.ctx);
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
        if !datapath::fits(shard.datagram_len(frame.len()), cap) {
            return Err(DropReason::FrameTooLarge);
        }
        // The PACKET's random bytes, in the order the single-threaded path
        // always drew them: IV, then the header-encryption stamp and bytes.
        let mut random = [0u8; 16];
        if shard.needs_random() {
            self.ctx.rng.fill_bytes(&mut random);
        }
        let sealing = Sealing {
            pkt_dst,
            random,
            he: self.ctx.packet_seal(now),
        };
        let fan_out = pkt_dst.is_multi_or_broadcast() && !self.reg.sn_registered();
        // Supernode lost: a broadcast is built here, once, for every known
        // peer (before it is counted, as a failed encoding is not).
        let prepared = if fan_out && self.peers.known_socks().next().is_some() {
            Some(shard.encode_prepared(frame, &sealing)?)
        } else {
            None
        };
        let ctx = &mut self.ctx;
        ctx.stats.transop_tx += 1;

        if pkt_dst.is_multi_or_broadcast() {
            if fan_out {
                // Supernode lost: straight to every known peer.
                let mut socks = self.peers.known_socks();
                let (Some(first), Some(len)) = (socks.next(), prepared) else {
                    return Err(DropReason::NoDestination);
                };
                let data = shard.prepared_bytes(len).ok_or(DropReason::FrameTooLarge)?;
                let mut n = 1;
                for s in socks {
                    let q = ctx.out.push_copy(s, None, data);
                    ctx.count_queued(q);
                    n += 1;
                }
                ctx.stats.p2p_tx += n;
                ctx.stats.p2p_tx_bytes += n * len as u64;
                return Ok(Route::prepared(first, sealing, len));
            }
            let sn = self
                .reg
                .current_supernode()
                .ok_or(DropReason::NoSupernodeAddress)?;
            ctx.stats.super_tx += 1;
            ctx.stats.super_broadcast_tx += 1;
            return Ok(Route::supernode(sn, sealing));
        }

        let fresh = ctx.cfg.register_interval / 2;
        if let Some(s) = self.peers.direct_sock(now, ctx, pkt_dst, fresh) {
            ctx.stats.p2p_tx += 1;
            return Ok(Route::p2p(s, sealing));
        }
        let sn = self
            .reg
            .current_supernode()
            .ok_or(DropReason::NoSupernodeAddress)?;
        ctx.stats.super_tx += 1;
        if ctx.p2p() {
            self.peers.query(now, ctx, pkt_dst, Some(sn));
        }
        Ok(Route::supernode(sn, sealing))
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
            let out = b.bytes_mut();
            let r = match self.route_with(now, &f, out.len(), None) {
                Ok(route) => self.data.encode(&f, &route, out),
                Err(r) => Err(r),
            };
            self.data.flush_tally(&mut self.ctx.stats);
            if let Ok(t) = r {
                let q = self.ctx.out.push(t.dst, None, b, t.len);
                self.ctx.count_queued(q);
            } else {
                self.ctx.out.discard(b);
            }
        }
    }
}
