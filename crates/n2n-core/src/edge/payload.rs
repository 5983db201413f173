//! The PACKET payload path: compression (crypto.md §3) then the payload
//! transform (crypto.md §2) on send; the reverse, bounded, on receive.
//!
//! This is the only place that knows the ciphers and compressors; the edge
//! calls [`Payload::encode`] / [`Payload::decode`] with caller buffers and
//! never allocates per packet.

use n2n_proto::types::{CompressionId, Community, TransformId};

use super::config::EdgeConfigError;
use super::stats::DropReason;

/// Largest frame a decompressor may produce (C limit).
pub const MAX_FRAME: usize = 2048;

/// AEAD nonce reported by [`Payload::decode`] for replay checking.
pub type Nonce = Option<()>;

/// Header fields authenticated by the AEAD transforms (unused by the C ones).
#[derive(Debug, Clone, Copy)]
pub struct PacketAad<'a> {
    /// 20-byte community field.
    pub community: &'a [u8; 20],
    /// PACKET srcMac.
    pub src_mac: [u8; 6],
    /// PACKET dstMac.
    pub dst_mac: [u8; 6],
}

/// Payload encoder/decoder of one edge.
#[derive(Debug)]
pub struct Payload {
    transform: TransformId,
    compression: CompressionId,
}

impl Payload {
    /// Sets up the configured transform and compression.
    pub fn new(
        transform: TransformId,
        key: &[u8],
        compression: CompressionId,
        _community: &Community,
        _nonce_seed: (u32, u64),
    ) -> Result<Self, EdgeConfigError> {
        match transform {
            TransformId::NULL => {
                if !key.is_empty() {
                    return Err(EdgeConfigError::Key(transform, "takes no key"));
                }
            }
            other => return Err(EdgeConfigError::UnknownTransform(other)),
        }
        if compression != CompressionId::NONE {
            return Err(EdgeConfigError::UnknownCompression(compression));
        }
        Ok(Self {
            transform,
            compression,
        })
    }

    /// Our transform id.
    pub fn transform(&self) -> TransformId {
        self.transform
    }

    /// Our compression setting.
    pub fn compression(&self) -> CompressionId {
        self.compression
    }

    /// Bytes the payload can be longer than the frame.
    pub fn overhead(&self) -> usize {
        0
    }

    /// Compress (if configured and worth it) and encrypt `frame` into
    /// `out`; returns the compression id written and the payload length.
    /// `random` is the 16-byte preamble/IV, `scratch` a 2048-byte buffer.
    pub fn encode(
        &mut self,
        frame: &[u8],
        _random: [u8; 16],
        _aad: &PacketAad<'_>,
        _scratch: &mut [u8],
        out: &mut [u8],
    ) -> Result<(CompressionId, usize), DropReason> {
        let dst = out
            .get_mut(..frame.len())
            .ok_or(DropReason::FrameTooLarge)?;
        dst.copy_from_slice(frame);
        Ok((CompressionId::NONE, frame.len()))
    }

    /// Decrypt `payload` and decompress according to `compression` into
    /// `out`; returns the frame length and, for AEAD transforms, the nonce
    /// to check against the sender's replay window.
    pub fn decode(
        &self,
        compression: CompressionId,
        payload: &[u8],
        _aad: &PacketAad<'_>,
        _scratch: &mut [u8],
        out: &mut [u8],
    ) -> Result<(usize, Nonce), DropReason> {
        if compression != CompressionId::NONE {
            return Err(DropReason::UnknownCompression);
        }
        let dst = out
            .get_mut(..payload.len())
            .ok_or(DropReason::FrameTooLarge)?;
        dst.copy_from_slice(payload);
        Ok((payload.len(), None))
    }
}
