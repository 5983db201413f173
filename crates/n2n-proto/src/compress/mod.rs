//! PACKET payload compression (crypto.md §3).
//!
//! | `-z` | wire id | algorithm |
//! |---|---|---|
//! | none | 1 | none |
//! | `-z1` / `-z` | 2 | LZO1X-1, raw stream |
//! | `-z2` | 3 | zstd, one frame |
//!
//! Sender: [`Compressor::compress`] returns `Some(len)` only when the
//! compressed form is non-empty and strictly shorter than the frame; on
//! `None` the frame is sent as is with id 1. The transform is applied after.
//!
//! Receiver: undo the transform, then [`Decompressor::decompress`]. Output is
//! bounded by `min(out.len(), MAX_FRAME_SIZE)`: a stream that would produce
//! more is an error ([`CompressError::TooLarge`]) detected before anything
//! is written past the bound and without allocating (C n2n overflowed a
//! stack buffer here). Every failure is a named [`CompressError`]; the caller
//! drops the packet.
//!
//! Compressed bytes are not identical to C n2n's, only mutually decodable.

mod lzo;
mod zstd;

/// Largest frame a PACKET may carry after decompression (C n2n's buffer).
pub const MAX_FRAME_SIZE: usize = 2048;

/// The payload compression id, PACKET byte 36 (44/56 with a socket; it
/// comes *before* the transform id), the one name of this concept in every
/// crate (also [`crate::types::CompressionId`]).
///
/// Only known ids are values of this type; a PACKET's raw byte is kept as a
/// `u8` by [`crate::wire::Packet`] / [`crate::wire::PacketView`] so that an
/// unknown id still decodes and re-encodes byte-exactly. Convert with
/// [`TryFrom<u8>`] / [`from_wire`](Self::from_wire); `-z<n>` with
/// [`from_cli`](Self::from_cli).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum CompressionId {
    /// 1: not compressed.
    #[default]
    None = 1,
    /// 2: LZO1X-1.
    Lzo = 2,
    /// 3: zstd.
    Zstd = 3,
}

impl CompressionId {
    /// The wire value.
    #[must_use]
    pub const fn to_wire(self) -> u8 {
        self as u8
    }

    /// Parses a wire value (1..=3); 0 and ≥ 4 are unknown.
    #[must_use]
    pub const fn from_wire(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::None),
            2 => Some(Self::Lzo),
            3 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// From the `-z` option: `-z`/`-z1` → LZO, `-z2` → zstd.
    pub fn from_cli(level: Option<u8>) -> Result<Self, CompressError> {
        match level {
            None | Some(0) => Ok(Self::None),
            Some(1) => Ok(Self::Lzo),
            Some(2) => Ok(Self::Zstd),
            Some(v) => Err(CompressError::UnknownCompression(v)),
        }
    }

    /// Lower-case name as used in logs and decoder output (also the
    /// [`Display`](core::fmt::Display) form).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lzo => "lzo",
            Self::Zstd => "zstd",
        }
    }
}

impl core::fmt::Display for CompressionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u8> for CompressionId {
    type Error = CompressError;
    fn try_from(v: u8) -> Result<Self, CompressError> {
        Self::from_wire(v).ok_or(CompressError::UnknownCompression(v))
    }
}

impl From<CompressionId> for u8 {
    fn from(id: CompressionId) -> u8 {
        id.to_wire()
    }
}

/// Why a payload could not be decompressed (each a named drop reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// Compression id 0 or ≥ 4.
    #[error("unknown compression id {0}")]
    UnknownCompression(u8),
    /// The data would decompress to more than `limit` bytes.
    #[error("decompressed frame would exceed {limit} bytes")]
    TooLarge {
        /// The output bound.
        limit: usize,
    },
    /// LZO stream ends in the middle of an instruction or literal run.
    #[error("LZO stream truncated")]
    LzoTruncated,
    /// LZO match refers to data before the start of the output.
    #[error("LZO match distance out of range")]
    LzoBadDistance,
    /// Bytes after the LZO end marker.
    #[error("{0} bytes after the LZO end marker")]
    LzoTrailingData(usize),
    /// Not a zstd frame, or a malformed frame header.
    #[error("bad zstd frame header")]
    ZstdHeader,
    /// A frame needing a dictionary or a window above the maximum frame size.
    #[error("unsupported zstd frame (dictionary or window too large)")]
    ZstdUnsupported,
    /// Malformed zstd block data.
    #[error("corrupt zstd frame")]
    ZstdCorrupt,
    /// Bytes after the zstd frame.
    #[error("{0} bytes after the zstd frame")]
    ZstdTrailingData(usize),
    /// The frame's declared content size differs from its content.
    #[error("zstd content size mismatch")]
    ZstdSizeMismatch,
    /// The frame's content checksum does not match.
    #[error("zstd checksum mismatch")]
    ZstdChecksum,
}

/// Sender-side compression state, reused across packets.
pub struct Compressor {
    dict: Box<lzo::Dict>,
    zstd: Option<zstd::ZstdEncoder>,
}

impl core::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// New state (the zstd encoder is created on first use).
    pub fn new() -> Self {
        Self {
            dict: Box::new([0; lzo::DICT_SIZE]),
            zstd: None,
        }
    }

    /// Compresses `frame` with `id` into `out`. `Ok(Some(len))` if the result
    /// is non-empty, strictly shorter than `frame` and fits in `out`;
    /// `Ok(None)` means "send uncompressed with id 1" (always for
    /// [`CompressionId::None`]). LZO does not allocate; the zstd encoder
    /// (`ruzstd`) allocates internally.
    pub fn compress(
        &mut self,
        id: CompressionId,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Option<usize>, CompressError> {
        let cap = out.len().min(frame.len().saturating_sub(1));
        let out = &mut out[..cap];
        let n = match id {
            CompressionId::None => None,
            CompressionId::Lzo => lzo::compress(frame, out, &mut self.dict),
            CompressionId::Zstd => self
                .zstd
                .get_or_insert_with(zstd::ZstdEncoder::new)
                .compress(frame, out),
        };
        Ok(n.filter(|&n| n > 0 && n < frame.len()))
    }
}

/// Receiver-side decompression state, reused across packets.
pub struct Decompressor {
    zstd: Option<zstd::ZstdDecoder>,
}

impl core::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decompressor").finish_non_exhaustive()
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor {
    /// New state (the zstd decoder is created on first use).
    pub fn new() -> Self {
        Self { zstd: None }
    }

    /// Decompresses `data` (the decrypted payload) with `id` into `out`;
    /// returns the frame length, at most `min(out.len(), MAX_FRAME_SIZE)`.
    /// Id 1 copies `data` under the same bound.
    pub fn decompress(
        &mut self,
        id: CompressionId,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CompressError> {
        let limit = out.len().min(MAX_FRAME_SIZE);
        let out = &mut out[..limit];
        match id {
            CompressionId::None => {
                out.get_mut(..data.len())
                    .ok_or(CompressError::TooLarge { limit })?
                    .copy_from_slice(data);
                Ok(data.len())
            }
            CompressionId::Lzo => lzo::decompress(data, out),
            CompressionId::Zstd => self
                .zstd
                .get_or_insert_with(zstd::ZstdDecoder::new)
                .decompress(data, out),
        }
    }
}

/// One-shot [`Compressor::compress`] (LZO uses an 8 KiB stack table).
pub fn compress(
    id: CompressionId,
    frame: &[u8],
    out: &mut [u8],
) -> Result<Option<usize>, CompressError> {
    match id {
        CompressionId::Lzo => {
            let cap = out.len().min(frame.len().saturating_sub(1));
            let mut dict = [0u16; lzo::DICT_SIZE];
            Ok(lzo::compress(frame, &mut out[..cap], &mut dict)
                .filter(|&n| n > 0 && n < frame.len()))
        }
        _ => Compressor::new().compress(id, frame, out),
    }
}

/// One-shot [`Decompressor::decompress`] (zstd allocates its tables per call;
/// keep a [`Decompressor`] on hot paths).
pub fn decompress(id: CompressionId, data: &[u8], out: &mut [u8]) -> Result<usize, CompressError> {
    Decompressor::new().decompress(id, data, out)
}
