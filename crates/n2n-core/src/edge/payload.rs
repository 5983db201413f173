//! The PACKET payload path: compression (crypto.md §3) then the payload
//! transform (crypto.md §2) on send; the reverse, bounded, on receive.
//!
//! This is the only place that knows the ciphers and compressors
//! (`n2n_proto::transform`, `n2n_proto::compress`); the edge calls
//! [`Payload::encode`] / [`Payload::decode`] with caller buffers.

use n2n_proto::compress::{Compressor, Decompressor};
use n2n_proto::transform::{self, AeadNonce, NonceSeed, Transform, TransformError};
use n2n_proto::types::{Community, CompressionId, TransformId};
use n2n_proto::wire::VERSION;

use super::config::EdgeConfigError;
use super::stats::DropReason;

/// Header fields authenticated by the AEAD transforms (ignored by the C ones).
#[derive(Debug, Clone, Copy)]
pub struct PacketAad<'a> {
    /// 20-byte community field.
    pub community: &'a [u8; 20],
    /// PACKET srcMac.
    pub src_mac: [u8; 6],
    /// PACKET dstMac.
    pub dst_mac: [u8; 6],
}

impl PacketAad<'_> {
    /// `compression` is the raw wire byte (a received PACKET's may be unknown).
    fn bytes(&self, compression: u8, transform: TransformId) -> [u8; 35] {
        transform::packet_aad(
            VERSION,
            self.community,
            &self.src_mac,
            &self.dst_mac,
            compression,
            transform.to_wire(),
        )
    }
}

/// Payload encoder/decoder of one edge.
#[derive(Debug)]
pub struct Payload {
    transform: Transform,
    compression: CompressionId,
    compressor: Compressor,
    decompressor: Decompressor,
}

pub(super) fn map_err(e: TransformError) -> DropReason {
    match e {
        TransformError::OutputTooSmall { .. } => DropReason::FrameTooLarge,
        _ => DropReason::PayloadDecryptFailed,
    }
}

impl Payload {
    /// Sets up the configured transform and compression. `nonce_seed` =
    /// (random prefix, first counter) for the AEAD transforms.
    pub fn new(
        id: TransformId,
        key: &[u8],
        compression: CompressionId,
        community: &Community,
        nonce_seed: (u32, u64),
    ) -> Result<Self, EdgeConfigError> {
        if id.needs_key() && key.is_empty() {
            return Err(EdgeConfigError::Key(id, "needs a key"));
        }
        let seed = NonceSeed {
            prefix: nonce_seed.0,
            start: nonce_seed.1,
        };
        let transform = Transform::new(id, key, community.field(), seed)
            .map_err(|e| EdgeConfigError::Transform(e.to_string()))?;
        Ok(Self {
            transform,
            compression,
            compressor: Compressor::new(),
            decompressor: Decompressor::new(),
        })
    }

    /// Another encoder/decoder with the same key (for the AEADs the same
    /// nonce prefix and counter, shared) and its own compression state.
    pub fn share(&self) -> Self {
        Self {
            transform: self.transform.share(),
            compression: self.compression,
            compressor: Compressor::new(),
            decompressor: Decompressor::new(),
        }
    }

    /// Our transform id.
    pub fn transform(&self) -> TransformId {
        self.transform.id()
    }

    /// Our compression setting.
    pub fn compression(&self) -> CompressionId {
        self.compression
    }

    /// Bytes the payload can be longer than the frame.
    pub fn overhead(&self) -> usize {
        self.transform.overhead()
    }

    /// Whether [`Self::encode`] uses its `random` argument (the IV or
    /// preamble of transforms 2..5; null and the AEADs ignore it).
    pub fn needs_random(&self) -> bool {
        !matches!(
            self.transform.id(),
            transform::TransformId::Null
                | transform::TransformId::ChaCha20Poly1305
                | transform::TransformId::Aes256Gcm
        )
    }

    /// Whether the transform authenticates (ids 6, 7).
    pub fn is_aead(&self) -> bool {
        self.transform.id().is_aead()
    }

    /// Whether [`Self::encrypt_many`] pays: no compression (its output
    /// length is known only after compressing) and a transform that
    /// interleaves several frames ([`Transform::encrypts_in_batches`]).
    pub fn encrypts_in_batches(&self) -> bool {
        self.compression == CompressionId::None && self.transform.encrypts_in_batches()
    }

    /// [`Self::encode`] of several frames without compression (only when
    /// [`Self::encrypts_in_batches`]): job `i` = (random bytes, frame,
    /// output), its payload length or error to `lens[i]`.
    pub fn encrypt_many(
        &mut self,
        jobs: &mut [(&[u8; 16], &[u8], &mut [u8])],
        lens: &mut [Result<usize, TransformError>],
    ) {
        self.transform.encrypt_many(jobs, lens);
    }

    /// Compress (if configured and worth it) and encrypt `frame` into
    /// `out`; returns the compression id written and the payload length.
    /// `random` is the 16-byte preamble/IV, `scratch` a 2048-byte buffer.
    pub fn encode(
        &mut self,
        frame: &[u8],
        random: [u8; 16],
        aad: &PacketAad<'_>,
        scratch: &mut [u8],
        out: &mut [u8],
    ) -> Result<(CompressionId, usize), DropReason> {
        let mut comp_id = CompressionId::None;
        let mut data = frame;
        if self.compression != CompressionId::None
            && let Ok(Some(n)) = self.compressor.compress(self.compression, frame, scratch)
            && let Some(d) = scratch.get(..n)
        {
            comp_id = self.compression;
            data = d;
        }
        let a;
        let aad: &[u8] = if self.is_aead() {
            a = aad.bytes(comp_id.to_wire(), self.transform.id());
            &a
        } else {
            &[] // ignored by transforms 1..5
        };
        let n = self
            .transform
            .encrypt(data, random, aad, out)
            .map_err(|e| match e {
                TransformError::OutputTooSmall { .. } => DropReason::FrameTooLarge,
                // Only the AEAD counter can run out: nothing else fails here.
                _ => DropReason::PayloadDecryptFailed,
            })?;
        Ok((comp_id, n))
    }

    /// Decrypt `payload` and decompress according to `compression` (the
    /// PACKET's raw byte) into `out`; returns the frame length and, for AEAD
    /// transforms, the nonce to check against the sender's replay window.
    pub fn decode(
        &mut self,
        compression: u8,
        payload: &[u8],
        aad: &PacketAad<'_>,
        scratch: &mut [u8],
        out: &mut [u8],
    ) -> Result<(usize, Option<AeadNonce>), DropReason> {
        let a;
        let aad: &[u8] = if self.is_aead() {
            a = aad.bytes(compression, self.transform.id());
            &a
        } else {
            &[] // ignored by transforms 1..5
        };
        let cid =
            CompressionId::try_from(compression).map_err(|_| DropReason::UnknownCompression)?;
        if cid == CompressionId::None {
            let d = self.transform.decrypt(payload, aad, out).map_err(map_err)?;
            return Ok((d.len, d.nonce));
        }
        let d = self
            .transform
            .decrypt(payload, aad, scratch)
            .map_err(map_err)?;
        let plain = scratch.get(..d.len).ok_or(DropReason::FrameTooLarge)?;
        let n = self
            .decompressor
            .decompress(cid, plain, out)
            .map_err(|_| DropReason::DecompressFailed)?;
        Ok((n, d.nonce))
    }
}
