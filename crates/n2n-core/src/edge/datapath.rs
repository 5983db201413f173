//! The PACKET data path (behaviour.md §5.2, §5.3, §6): the frame checks on
//! both sides, and the per-packet crypto of a PACKET — payload transform
//! and compression ([`Payload`]), our PACKET header template, header
//! encryption — in a [`DataShard`].
//!
//! A [`DataShard`] owns what the per-packet crypto needs and nothing the
//! edge's control state needs: its own handle on the payload transform
//! (for the AEADs sharing the edge's one nonce prefix and counter,
//! [`Transform::share`](n2n_proto::transform::Transform::share)),
//! compression state, the header template, a copy of the header keys and
//! scratch buffers. It has no timer, no RNG and no clock: what has to come
//! from the edge (the random IV bytes, the header-encryption stamp) is
//! decided under the edge by [`Edge::route`](super::Edge::route) and
//! carried in the [`Route`]. It writes into caller buffers and does not
//! allocate.
//!
//! The edge owns one shard itself (its `encapsulate` / `decapsulate` run on
//! it); [`Edge::data_shard`](super::Edge::data_shard) makes more, one per
//! thread of a multi-threaded driver (see the module docs of
//! [`edge`](super)).

use std::net::SocketAddr;

use n2n_proto::auth::{self, ReceivedTrailer};
use n2n_proto::he::{CommunityHe, HeKeyKind};
use n2n_proto::transform::{AeadNonce, TransformError};
use n2n_proto::types::{Community, CompressionId, Mac, TransformId};
use n2n_proto::wire::{Header, HeaderView, MsgType, PACKET_HEADER_LEN, Packet, PacketView};

use super::config::{EdgeConfig, EdgeConfigError};
use super::ctx::{Ctx, Identity};
use super::frame;
use super::payload::{PacketAad, Payload};
use super::rules;
use super::stats::{DropReason, EdgeStats};
use crate::{MAX_DATAGRAM, Transmit};

/// Most frames one [`Edge::encapsulate_many`](super::Edge::encapsulate_many)
/// call encodes.
pub const ENCODE_BATCH: usize = 8;

/// The per-packet crypto of one edge, for one thread: payload transform and
/// compression, PACKET header template, header keys, scratch buffers.
///
/// Made by [`Edge::data_shard`](super::Edge::data_shard) and used only with
/// the edge that made it. `Send`: each thread of a driver owns one while the
/// edge sits behind a lock. Sending: [`Edge::route`](super::Edge::route)
/// (locked) then [`DataShard::encode`]; receiving: [`DataShard::open`] then
/// [`Edge::finish`](super::Edge::finish) (locked).
pub struct DataShard {
    payload: Payload,
    /// Our PACKET header (no socket) with a null dstMac and no compression:
    /// each PACKET copies it and sets those two fields.
    head: [u8; PACKET_HEADER_LEN],
    community: Community,
    mac: Mac,
    /// Copy of the edge's header keys as of `generation`.
    he: Option<CommunityHe>,
    /// User/password (`-J`): PACKETs are header-encrypted over the IV too,
    /// headers decrypt with the trailer rules.
    user_password: bool,
    /// The edge's key generation `he` was copied at.
    generation: u64,
    /// Compression output / decryption output before decompression.
    scratch: Box<[u8]>,
    /// The datagram [`Edge::route`](super::Edge::route) built itself (a
    /// broadcast copied to every known peer), handed out by `encode`.
    prepared: Box<[u8]>,
    /// Bytes sent since the edge last took them (`encode` cannot count
    /// into the edge's counters: it runs unlocked).
    tally: Tally,
}

impl core::fmt::Debug for DataShard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataShard")
            .field("transform", &self.payload.transform())
            .field("compression", &self.payload.compression())
            .field("he", &self.he.is_some())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Byte counters of encoded PACKETs not yet added to [`EdgeStats`].
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    p2p_tx_bytes: u64,
    super_tx_bytes: u64,
}

/// The header-encryption stamp and pre-IV bytes of one PACKET, drawn under
/// the edge (its stamp generator and RNG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeSeal {
    pub stamp: u64,
    pub rand4: [u8; 4],
}

/// What the sealing of one PACKET needs from the edge: its PACKET
/// destination MAC and its random bytes, in the edge's RNG order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sealing {
    /// PACKET dstMac (the frame's, or the edge a bridged host is behind).
    pub pkt_dst: Mac,
    /// IV / preamble of transforms 2..5 (zero otherwise).
    pub random: [u8; 16],
    /// With `-H`.
    pub he: Option<HeSeal>,
}

/// Which byte counter a datagram goes to, or that it is built already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    P2p,
    Supernode,
    /// Already built in the shard's `prepared` buffer (this many bytes) and
    /// counted.
    Prepared(usize),
}

/// Where one frame goes and how its PACKET is sealed: the answer of
/// [`Edge::route`](super::Edge::route), to be passed with the same frame
/// to [`DataShard::encode`] of the same shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    dst: SocketAddr,
    sealing: Sealing,
    kind: RouteKind,
}

impl Route {
    /// The datagram's destination (a peer or the supernode).
    #[must_use]
    pub fn dst(&self) -> SocketAddr {
        self.dst
    }

    pub(super) fn p2p(dst: SocketAddr, sealing: Sealing) -> Self {
        Self {
            dst,
            sealing,
            kind: RouteKind::P2p,
        }
    }

    pub(super) fn supernode(dst: SocketAddr, sealing: Sealing) -> Self {
        Self {
            dst,
            sealing,
            kind: RouteKind::Supernode,
        }
    }

    /// Whether the datagram was built during routing.
    pub(super) fn is_prepared(&self) -> bool {
        matches!(self.kind, RouteKind::Prepared(_))
    }

    pub(super) fn prepared(dst: SocketAddr, sealing: Sealing, len: usize) -> Self {
        Self {
            dst,
            sealing,
            kind: RouteKind::Prepared(len),
        }
    }
}

/// A received datagram after [`DataShard::open`]: header decrypted and, for
/// a PACKET, its payload decoded into `out`. Hand it to
/// [`Edge::finish`](super::Edge::finish) with the same `datagram` and `out`
/// buffers (once: `finish` consumes it).
#[derive(Debug)]
pub struct Opened {
    pub(super) from: SocketAddr,
    pub(super) via_multicast: bool,
    /// The key generation of the shard that opened it.
    pub(super) generation: u64,
    pub(super) header: Result<HeOpened, DropReason>,
    /// A PACKET's payload: frame length in `out` and, with an AEAD, its
    /// nonce; `None` when not decoded (not a PACKET, or one that `finish`
    /// drops before looking at the payload).
    pub(super) payload: Option<Result<(usize, Option<AeadNonce>), DropReason>>,
}

/// A decrypted header.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeOpened {
    /// Message length (without a user/password trailer).
    pub len: usize,
    /// The header-encryption stamp (with `-H`).
    pub stamp: Option<u64>,
    /// Which keys decrypted it.
    pub kind: HeKeyKind,
    /// User/password: the trailer of a message under the static keys.
    pub trailer: Option<ReceivedTrailer>,
}

/// `need` bytes fit a buffer of `cap` bytes.
#[inline]
pub(super) fn fits(need: usize, cap: usize) -> bool {
    need <= cap
}

impl DataShard {
    /// The configured transform and compression for an edge with `mac`
    /// and header keys `he`. `nonce_seed` = (random prefix, first counter)
    /// for the AEADs.
    pub(super) fn new(
        cfg: &EdgeConfig,
        mac: Mac,
        nonce_seed: (u32, u64),
        he: Option<CommunityHe>,
        user_password: bool,
    ) -> Result<Self, EdgeConfigError> {
        let payload = Payload::new(
            cfg.transform,
            &cfg.key,
            cfg.compression,
            &cfg.community,
            nonce_seed,
        )?;
        let head = packet_header(&cfg.community, mac, payload.transform())?;
        Ok(Self {
            payload,
            head,
            community: cfg.community,
            mac,
            he,
            user_password,
            generation: 0,
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            prepared: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            tally: Tally::default(),
        })
    }

    /// Another shard of the same edge (same keys, shared AEAD counter, own
    /// compression state and buffers), at this one's key generation.
    pub(super) fn share(&self) -> Self {
        Self {
            payload: self.payload.share(),
            head: self.head,
            community: self.community,
            mac: self.mac,
            he: self.he.clone(),
            user_password: self.user_password,
            generation: self.generation,
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            prepared: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            tally: Tally::default(),
        }
    }

    /// Takes the edge's header keys if they changed since the last copy
    /// (one compare otherwise).
    #[inline]
    pub(super) fn refresh(&mut self, ctx: &Ctx) {
        if self.generation != ctx.he_generation() {
            self.he = ctx.he().cloned();
            self.generation = ctx.he_generation();
        }
    }

    /// [`refresh`](Self::refresh) and hand the bytes counted since over to
    /// the edge's counters.
    #[inline]
    pub(super) fn sync(&mut self, ctx: &mut Ctx) {
        self.refresh(ctx);
        self.flush_tally(&mut ctx.stats);
    }

    #[inline]
    pub(super) fn flush_tally(&mut self, stats: &mut EdgeStats) {
        let t = core::mem::take(&mut self.tally);
        stats.p2p_tx_bytes += t.p2p_tx_bytes;
        stats.super_tx_bytes += t.super_tx_bytes;
    }

    /// The key generation of the header keys this shard holds.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn transform(&self) -> TransformId {
        self.payload.transform()
    }

    pub(super) fn compression(&self) -> CompressionId {
        self.payload.compression()
    }

    /// The transform authenticates: peer tables may only learn from
    /// PACKETs that decrypted.
    pub(super) fn is_aead(&self) -> bool {
        self.payload.is_aead()
    }

    /// Whether a PACKET needs 16 random bytes (transforms 2..5).
    pub(super) fn needs_random(&self) -> bool {
        self.payload.needs_random()
    }

    /// Length of the datagram carrying an uncompressed `frame_len`-byte
    /// frame.
    pub(super) fn datagram_len(&self, frame_len: usize) -> usize {
        PACKET_HEADER_LEN + frame_len + self.payload.overhead()
    }

    // ------------------------------------------------------------------
    // Sending

    /// Writes the PACKET carrying `frame` (the frame given to
    /// [`Edge::route`](super::Edge::route)) to `route`'s destination into
    /// `out` (≥ [`MAX_DATAGRAM`] bytes): compression, payload transform,
    /// header, header encryption. No lock needed. A drop here (the frame
    /// does not fit `out`, the AEAD nonces are exhausted) is not counted:
    /// count it with [`Edge::count_drop`](super::Edge::count_drop); the
    /// route's own counters (`transop_tx`, `p2p_tx` / `super_tx`) stay.
    /// The datagram's bytes are added to the edge's counters at the next
    /// [`Edge::route`](super::Edge::route) / [`Edge::finish`](super::Edge::finish)
    /// / [`Edge::sync_shard`](super::Edge::sync_shard) with this shard.
    pub fn encode(
        &mut self,
        frame: &[u8],
        route: &Route,
        out: &mut [u8],
    ) -> Result<Transmit, DropReason> {
        let len = match route.kind {
            RouteKind::Prepared(len) => {
                let (d, s) = out
                    .get_mut(..len)
                    .zip(self.prepared.get(..len))
                    .ok_or(DropReason::FrameTooLarge)?;
                d.copy_from_slice(s);
                len
            }
            RouteKind::P2p | RouteKind::Supernode => {
                self.encode_into(frame, &route.sealing, out)?
            }
        };
        Ok(self.sent(route, len))
    }

    /// A `len`-byte datagram built for `route`: its bytes to the tally
    /// (a prepared one was counted when routed), its [`Transmit`].
    fn sent(&mut self, route: &Route, len: usize) -> Transmit {
        match route.kind {
            RouteKind::P2p => self.tally.p2p_tx_bytes += len as u64,
            RouteKind::Supernode => self.tally.super_tx_bytes += len as u64,
            RouteKind::Prepared(_) => {}
        }
        Transmit {
            dst: route.dst,
            len,
            ttl: None,
        }
    }

    /// [`encode`](Self::encode) of up to [`ENCODE_BATCH`] frames routed by
    /// [`Edge::route_many`](super::Edge::route_many): for each `Some` route
    /// `i`, the result of `encode(frames[i], route, outs[i])` goes to
    /// `results[i]` (the same bytes and counts); `None` routes are
    /// skipped. With AES and no compression the frames' CBC chains are
    /// encrypted four at a time. No lock needed.
    pub fn encode_many(
        &mut self,
        frames: &[&[u8]],
        routes: &[Option<Route>],
        outs: &mut [&mut [u8]],
        results: &mut [Option<Result<Transmit, DropReason>>],
    ) {
        let batch = self.payload.encrypts_in_batches();
        // Headers of the batched jobs (P2P / supernode routes that fit);
        // the others encoded one by one.
        let zero = [0u8; 16];
        let mut jobs: [(&[u8; 16], &[u8], &mut [u8]); ENCODE_BATCH] =
            core::array::from_fn(|_| (&zero, &[][..], Default::default()));
        let mut at = [0usize; ENCODE_BATCH];
        let mut k = 0;
        let items = frames
            .iter()
            .zip(routes)
            .zip(outs.iter_mut().zip(results.iter_mut()))
            .take(ENCODE_BATCH);
        for (i, ((frame, route), (out, res))) in items.enumerate() {
            let Some(route) = route else { continue };
            let fits = fits(self.datagram_len(frame.len()), out.len());
            if !(batch && fits && !route.is_prepared()) {
                *res = Some(self.encode(frame, route, out));
                continue;
            }
            // `fits`: at least the header and the payload.
            let (head, body) = out.split_at_mut(PACKET_HEADER_LEN);
            self.write_head(head, route.sealing.pkt_dst, CompressionId::None);
            if let (Some(j), Some(a)) = (jobs.get_mut(k), at.get_mut(k)) {
                *j = (&route.sealing.random, frame, body);
                *a = i;
                k += 1;
            }
        }
        if k == 0 {
            return;
        }
        let mut lens: [Result<usize, TransformError>; ENCODE_BATCH] =
            core::array::from_fn(|_| Ok(0));
        let (jobs, lens) = (
            jobs.get_mut(..k).unwrap_or_default(),
            lens.get_mut(..k).unwrap_or_default(),
        );
        self.payload.encrypt_many(jobs, lens);
        for (&i, l) in at.iter().zip(lens.iter()) {
            let (Some(Some(route)), Some(out), Some(res)) =
                (routes.get(i), outs.get_mut(i), results.get_mut(i))
            else {
                continue;
            };
            let len = l.map(|plen| PACKET_HEADER_LEN + plen);
            *res = Some(match len.map(|len| (len, out.get_mut(..len))) {
                Ok((len, Some(dgram))) => {
                    self.seal(dgram, route.sealing.he);
                    Ok(self.sent(route, len))
                }
                Ok((_, None)) => Err(DropReason::FrameTooLarge),
                Err(e) => Err(super::payload::map_err(e)),
            });
        }
    }

    /// [`encode`](Self::encode) into the shard's own `prepared` buffer (a
    /// datagram the edge copies to several peers); its length.
    pub(super) fn encode_prepared(
        &mut self,
        frame: &[u8],
        sealing: &Sealing,
    ) -> Result<usize, DropReason> {
        let mut buf = core::mem::take(&mut self.prepared);
        let r = self.encode_into(frame, sealing, &mut buf);
        self.prepared = buf;
        r
    }

    /// The datagram built by [`encode_prepared`](Self::encode_prepared).
    pub(super) fn prepared_bytes(&self, len: usize) -> Option<&[u8]> {
        self.prepared.get(..len)
    }

    /// Writes the (header-encrypted) PACKET carrying `frame` into `out`;
    /// returns its length.
    fn encode_into(
        &mut self,
        frame: &[u8],
        sealing: &Sealing,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        if !fits(self.datagram_len(frame.len()), out.len()) {
            return Err(DropReason::FrameTooLarge);
        }
        let aad = PacketAad {
            community: self.community.field(),
            src_mac: self.mac.0,
            dst_mac: sealing.pkt_dst.0,
        };
        let (head, body) = out
            .split_at_mut_checked(PACKET_HEADER_LEN)
            .ok_or(DropReason::FrameTooLarge)?;
        let (comp, plen) =
            self.payload
                .encode(frame, sealing.random, &aad, &mut self.scratch, body)?;
        self.write_head(head, sealing.pkt_dst, comp);
        let len = PACKET_HEADER_LEN + plen;
        let dgram = out.get_mut(..len).ok_or(DropReason::FrameTooLarge)?;
        self.seal(dgram, sealing.he);
        Ok(len)
    }

    /// Our PACKET header for `pkt_dst` with compression `comp` into `head`
    /// ([`PACKET_HEADER_LEN`] bytes, the part of the datagram before the
    /// payload).
    fn write_head(&self, head: &mut [u8], pkt_dst: Mac, comp: CompressionId) {
        if let Ok(head) = <&mut [u8; PACKET_HEADER_LEN]>::try_from(head) {
            *head = self.head;
            patch_packet_header(head, pkt_dst, comp);
        }
    }

    /// Header-encrypts the PACKET header of `dgram` with the dynamic key,
    /// when `-H`; with user/password also up to 16 payload bytes, the
    /// cipher's IV (crypto.md §4.6).
    fn seal(&self, dgram: &mut [u8], seal: Option<HeSeal>) {
        let (Some(he), Some(s)) = (&self.he, seal) else {
            return;
        };
        let len = dgram.len();
        let header_len = if self.user_password {
            auth::packet_encrypted_len(PACKET_HEADER_LEN, len.saturating_sub(PACKET_HEADER_LEN))
        } else {
            PACKET_HEADER_LEN
        };
        // Lengths are ≥ 24 and ≤ MAX_DATAGRAM here: cannot fail.
        let _ = he.encrypt(
            dgram,
            header_len.min(len),
            s.stamp,
            s.rand4,
            HeKeyKind::Dynamic,
        );
    }

    // ------------------------------------------------------------------
    // Receiving

    /// The first half of receiving `datagram` from `from` (main socket, or
    /// the local-discovery multicast socket with `via_multicast`): header
    /// decryption (user/password trailer rules included) and, for a PACKET,
    /// the payload's decryption and decompression into `out` (≥
    /// [`MAX_DATAGRAM`] bytes). No lock needed; nothing is counted or
    /// decided here: pass the result to [`Edge::finish`](super::Edge::finish)
    /// with the same `datagram` (decrypted in place) and `out`.
    pub fn open(
        &mut self,
        from: SocketAddr,
        datagram: &mut [u8],
        via_multicast: bool,
        out: &mut [u8],
    ) -> Opened {
        let header = self.open_header(datagram);
        let payload = match &header {
            Ok(h) => self.open_packet(datagram, h, out),
            Err(_) => None,
        };
        Opened {
            from,
            via_multicast,
            generation: self.generation,
            header,
            payload,
        }
    }

    /// Header decryption. On failure `datagram` is unchanged.
    fn open_header(&self, datagram: &mut [u8]) -> Result<HeOpened, DropReason> {
        match &self.he {
            Some(he) if self.user_password => match auth::decrypt_header(he, datagram) {
                Ok((kind, d, trailer)) => Ok(HeOpened {
                    len: d.len,
                    stamp: Some(d.stamp),
                    kind,
                    trailer,
                }),
                Err(_) => Err(DropReason::HeDecryptFailed),
            },
            Some(he) => match he.decrypt(datagram) {
                Ok((kind, d)) => Ok(HeOpened {
                    len: d.len,
                    stamp: Some(d.stamp),
                    kind,
                    trailer: None,
                }),
                Err(_) => Err(DropReason::HeDecryptFailed),
            },
            None => Ok(HeOpened {
                len: datagram.len(),
                stamp: None,
                kind: HeKeyKind::Dynamic,
                trailer: None,
            }),
        }
    }

    /// A PACKET's payload into `out`; `None` for anything else and for the
    /// PACKETs the edge drops before looking at the payload (static keys
    /// with user/password, another community, our own).
    fn open_packet(
        &mut self,
        datagram: &[u8],
        h: &HeOpened,
        out: &mut [u8],
    ) -> Option<Result<(usize, Option<AeadNonce>), DropReason>> {
        let msg = datagram.get(..h.len)?;
        let hv = HeaderView::new_checked(msg).ok()?;
        if hv.msg_type().ok()? != MsgType::Packet
            || (self.user_password && h.kind == HeKeyKind::Static)
            || hv.community_field() != self.community.field().as_slice()
        {
            return None;
        }
        let view = PacketView::new_checked(msg).ok()?;
        if view.src_mac() == self.mac {
            return None;
        }
        Some(self.decode(&view, out))
    }

    /// Decrypts and decompresses the payload of `view` into `out`: the
    /// frame length and, with an AEAD, the nonce for the sender's replay
    /// window.
    fn decode(
        &mut self,
        view: &PacketView<&[u8]>,
        out: &mut [u8],
    ) -> Result<(usize, Option<AeadNonce>), DropReason> {
        if view.transform() != self.payload.transform().to_wire() {
            return Err(DropReason::WrongTransform);
        }
        let aad = PacketAad {
            community: self.community.field(),
            src_mac: view.src_mac().0,
            dst_mac: view.dst_mac().0,
        };
        self.payload.decode(
            view.compression(),
            view.payload(),
            &aad,
            &mut self.scratch,
            out,
        )
    }
}

/// Checks of a frame read from the TAP, once registered (behaviour.md §6).
pub(super) fn check_outgoing(
    cfg: &EdgeConfig,
    me: &Identity,
    frame: &[u8],
) -> Result<(), DropReason> {
    if frame::dst_mac(frame).is_multicast() && !cfg.multicast {
        return Err(DropReason::MulticastDisabled);
    }
    if !cfg.routing
        && let Some(src_ip) = frame::ipv4_src(frame)
        && src_ip != me.dev_addr.ip
    {
        return Err(DropReason::ForeignSourceIp);
    }
    if !rules::allows(&cfg.traffic_rules, frame) {
        return Err(DropReason::TrafficRule);
    }
    Ok(())
}

/// Destination checks of a decrypted frame (behaviour.md §5.3, §6); the
/// `-R` rules come after bridging learnt its source.
pub(super) fn check_incoming(cfg: &EdgeConfig, me: &Identity, f: &[u8]) -> Result<(), DropReason> {
    if f.len() < frame::ETH_HEADER_LEN {
        return Err(DropReason::FrameTooShort);
    }
    let inner_dst = frame::dst_mac(f);
    if inner_dst.is_multicast() && !cfg.multicast {
        return Err(DropReason::MulticastDisabled);
    }
    if !cfg.routing && !inner_dst.is_multi_or_broadcast() && inner_dst != me.mac {
        // C writes it to the TAP, whose kernel side discards it (the
        // TAP is not promiscuous without bridging). Dropping it here
        // also stops the garbage a wrong key produces with the C
        // transforms, which have no integrity check.
        return Err(DropReason::ForeignDestinationMac);
    }
    if !cfg.routing
        && !inner_dst.is_multi_or_broadcast()
        && let Some(ip) = frame::ipv4_dst(f)
        && ip != me.dev_addr.ip
    {
        return Err(DropReason::ForeignDestinationIp);
    }
    Ok(())
}

/// Our PACKET header template: `Packet::emit_header` with a null dstMac and
/// no compression.
fn packet_header(
    community: &Community,
    mac: Mac,
    transform: TransformId,
) -> Result<[u8; PACKET_HEADER_LEN], EdgeConfigError> {
    let mut head = [0u8; PACKET_HEADER_LEN];
    let pkt = Packet {
        src_mac: mac,
        dst_mac: Mac::NULL,
        sock: None,
        compression: CompressionId::None.into(),
        transform: transform.into(),
        payload: &[],
    };
    match pkt.emit_header(&Header::new(*community), &mut head) {
        Ok(PACKET_HEADER_LEN) => Ok(head),
        _ => Err(EdgeConfigError::Transform(
            "PACKET header does not fit".to_owned(),
        )),
    }
}

/// Sets dstMac and the compression id in a copy of the template.
#[inline]
fn patch_packet_header(head: &mut [u8; PACKET_HEADER_LEN], dst: Mac, comp: CompressionId) {
    if let Ok(mut v) = PacketView::new_checked(&mut head[..]) {
        v.set_dst_mac(dst);
        v.set_compression(comp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_header_template_matches_emit_header() {
        let community = Community::new("rocks").unwrap();
        let src = Mac([2, 0, 0, 0, 0, 1]);
        for tid in TransformId::ALL {
            let tpl = packet_header(&community, src, tid).unwrap();
            for dst in [
                Mac([2, 0, 0, 0, 0, 2]),
                Mac::BROADCAST,
                Mac([0x01, 0x00, 0x5e, 1, 2, 3]),
            ] {
                for comp in [CompressionId::None, CompressionId::Lzo, CompressionId::Zstd] {
                    let mut want = [0u8; PACKET_HEADER_LEN];
                    let pkt = Packet {
                        src_mac: src,
                        dst_mac: dst,
                        sock: None,
                        compression: comp.into(),
                        transform: tid.into(),
                        payload: &[],
                    };
                    let n = pkt.emit_header(&Header::new(community), &mut want);
                    assert_eq!(n, Ok(PACKET_HEADER_LEN));
                    let mut got = tpl;
                    patch_packet_header(&mut got, dst, comp);
                    assert_eq!(got, want, "transform {tid} dst {dst} comp {comp}");
                }
            }
        }
    }

    /// A driver keeps the edge behind a lock and moves shards to threads.
    #[test]
    fn shard_and_edge_are_send() {
        fn send<T: Send>() {}
        send::<DataShard>();
        send::<Route>();
        send::<Opened>();
        send::<super::super::Edge>();
    }
}
