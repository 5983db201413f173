//! The PACKET data path (behaviour.md §5.2, §5.3, §6): the frame checks on
//! both sides, and the PACKET itself — payload transform and compression
//! ([`Payload`]), our PACKET header template, header encryption and stamps
//! (through [`Ctx::seal_packet`]).
//!
//! [`DataPath`] owns the transform state (AEAD nonce counter, compressor
//! dictionaries), the header template and the scratch buffer; it has no
//! timer. It writes into caller buffers and does not allocate.

use n2n_proto::transform::AeadNonce;
use n2n_proto::types::{Community, CompressionId, Mac, TransformId};
use n2n_proto::wire::{Header, PACKET_HEADER_LEN, Packet, PacketView};
use rand_chacha::rand_core::Rng;

use super::config::{EdgeConfig, EdgeConfigError};
use super::ctx::{Ctx, Identity};
use super::frame;
use super::payload::{PacketAad, Payload};
use super::rules;
use super::stats::DropReason;
use crate::{MAX_DATAGRAM, Now};

/// The data-path sub-machine.
#[derive(Debug)]
pub(super) struct DataPath {
    payload: Payload,
    /// Our PACKET header (no socket) with a null dstMac and no compression:
    /// each PACKET copies it and sets those two fields.
    head: [u8; PACKET_HEADER_LEN],
    /// Compression output / decryption output before decompression.
    scratch: Box<[u8]>,
}

impl DataPath {
    /// The configured transform and compression for an edge with `mac`.
    /// `nonce_seed` = (random prefix, first counter) for the AEADs.
    pub(super) fn new(
        cfg: &EdgeConfig,
        mac: Mac,
        nonce_seed: (u32, u64),
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
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
        })
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

    /// Writes the (header-encrypted) PACKET carrying `frame` to `pkt_dst`
    /// into `out`; returns its length.
    pub(super) fn encode(
        &mut self,
        now: Now,
        ctx: &mut Ctx,
        frame: &[u8],
        pkt_dst: Mac,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        let need = PACKET_HEADER_LEN + frame.len() + self.payload.overhead();
        if out.len() < need.min(MAX_DATAGRAM) || need > out.len() {
            return Err(DropReason::FrameTooLarge);
        }
        let mut random = [0u8; 16];
        if self.payload.needs_random() {
            ctx.rng.fill_bytes(&mut random);
        }
        let aad = PacketAad {
            community: ctx.cfg.community.field(),
            src_mac: ctx.me.mac.0,
            dst_mac: pkt_dst.0,
        };
        let (head, body) = out
            .split_at_mut_checked(PACKET_HEADER_LEN)
            .ok_or(DropReason::FrameTooLarge)?;
        let (comp, plen) = self
            .payload
            .encode(frame, random, &aad, &mut self.scratch, body)?;
        let head: &mut [u8; PACKET_HEADER_LEN] =
            head.try_into().map_err(|_| DropReason::FrameTooLarge)?;
        *head = self.head;
        patch_packet_header(head, pkt_dst, comp);
        let len = PACKET_HEADER_LEN + plen;
        let dgram = out.get_mut(..len).ok_or(DropReason::FrameTooLarge)?;
        ctx.seal_packet(now, dgram, PACKET_HEADER_LEN);
        Ok(len)
    }

    /// Decrypts and decompresses the payload of `view` (from `src` to
    /// `dst`) into `out`: the frame length and, with an AEAD, the nonce
    /// for the sender's replay window.
    pub(super) fn decode(
        &mut self,
        community: &Community,
        view: &PacketView<&[u8]>,
        out: &mut [u8],
    ) -> Result<(usize, Option<AeadNonce>), DropReason> {
        if view.transform() != self.payload.transform().to_wire() {
            return Err(DropReason::WrongTransform);
        }
        let aad = PacketAad {
            community: community.field(),
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
}
