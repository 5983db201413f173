//! zstd through `ruzstd` (pure Rust), with a bounded decoder.
//!
//! Decoding: the frame header is parsed here first; frames using a
//! dictionary, declaring a content size above the bound or a window above
//! [`MAX_WINDOW`] are refused before `ruzstd` sees them, and `ruzstd` is told
//! the same window limit (it then also refuses any block larger than the
//! window). Blocks are decoded one at a time and drained into the caller's
//! buffer, so at most about two windows (4 KiB) are ever buffered and output
//! beyond the bound is an error. C n2n's frames (`ZSTD_compress` of at most
//! 2048 bytes) are single-segment frames whose window equals their content
//! size, so they always pass.
//!
//! Encoding: `ruzstd` at its fastest level with a small matcher of our own
//! (block = frame, matches within it), then the frame header is rewritten
//! the way `ZSTD_compress` writes it (single segment, content size present,
//! no checksum), which makes our frames pass our own strict decoder and is
//! 3..4 bytes shorter. The blocks themselves are untouched.

use super::CompressError;
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use ruzstd::encoding::{CompressionLevel, FrameCompressor, Matcher, Sequence};
use std::io::{Cursor, Read};

/// Largest window a frame may declare (= the maximum frame size).
pub(crate) const MAX_WINDOW: u64 = super::MAX_FRAME_SIZE as u64;

const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The parts of a zstd frame header needed here.
#[derive(Clone, Copy, Debug)]
struct Header {
    len: usize,
    checksum: bool,
    has_dict: bool,
    content_size: Option<u64>,
    window: u64,
}

fn parse_header(src: &[u8]) -> Result<Header, CompressError> {
    let bad = CompressError::ZstdHeader;
    if src.get(..4) != Some(&MAGIC[..]) {
        return Err(bad);
    }
    let fhd = *src.get(4).ok_or(bad)?;
    let fcs_flag = fhd >> 6;
    let single = fhd & 0x20 != 0;
    if fhd & 0x08 != 0 {
        return Err(bad); // reserved bit
    }
    let checksum = fhd & 0x04 != 0;
    let dict_len = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let mut pos = 5;
    let mut window = 0;
    if !single {
        let wd = *src.get(pos).ok_or(bad)?;
        pos += 1;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        window = base + (base / 8) * u64::from(wd & 7);
    }
    let dict_id = src.get(pos..pos + dict_len).ok_or(bad)?;
    let has_dict = dict_id.iter().any(|&b| b != 0);
    pos += dict_len;
    let fcs_len = match fcs_flag {
        0 => usize::from(single),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let fcs_bytes = src.get(pos..pos + fcs_len).ok_or(bad)?;
    pos += fcs_len;
    let mut v = [0u8; 8];
    v[..fcs_len].copy_from_slice(fcs_bytes);
    let mut content_size = (fcs_len > 0).then(|| u64::from_le_bytes(v));
    if fcs_len == 2 {
        content_size = content_size.map(|c| c + 256);
    }
    if single {
        window = content_size.unwrap_or(0);
    }
    Ok(Header {
        len: pos,
        checksum,
        has_dict,
        content_size,
        window,
    })
}

/// Reusable zstd decoder state (its tables are allocated once).
pub(crate) struct ZstdDecoder {
    dec: FrameDecoder,
}

impl ZstdDecoder {
    pub(crate) fn new() -> Self {
        let mut dec = FrameDecoder::new();
        dec.set_max_window_size(MAX_WINDOW);
        Self { dec }
    }

    pub(crate) fn decompress(
        &mut self,
        src: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CompressError> {
        let limit = out.len();
        let h = parse_header(src)?;
        if h.has_dict {
            return Err(CompressError::ZstdUnsupported);
        }
        if h.content_size.is_some_and(|c| c > limit as u64) {
            return Err(CompressError::TooLarge { limit });
        }
        if h.window > MAX_WINDOW {
            return Err(CompressError::ZstdUnsupported);
        }
        let mut rd = src;
        self.dec
            .reset(&mut rd)
            .map_err(|_| CompressError::ZstdHeader)?;
        let mut op = 0usize;
        loop {
            let finished = self
                .dec
                .decode_blocks(&mut rd, BlockDecodingStrategy::UptoBlocks(1))
                .map_err(|_| CompressError::ZstdCorrupt)?;
            loop {
                let dst = out.get_mut(op..).unwrap_or_default();
                let n = self.dec.read(dst).map_err(|_| CompressError::ZstdCorrupt)?;
                if n == 0 {
                    break;
                }
                op += n;
            }
            if self.dec.can_collect() > 0 {
                return Err(CompressError::TooLarge { limit });
            }
            if finished {
                break;
            }
        }
        if !rd.is_empty() {
            return Err(CompressError::ZstdTrailingData(rd.len()));
        }
        if h.content_size.is_some_and(|c| c != op as u64) {
            return Err(CompressError::ZstdSizeMismatch);
        }
        if h.checksum && self.dec.get_checksum_from_data() != self.dec.get_calculated_checksum() {
            return Err(CompressError::ZstdChecksum);
        }
        Ok(op)
    }
}

/// Block size of the encoder: frames up to this size are one block.
const SPACE: usize = super::MAX_FRAME_SIZE;
const HASH_BITS: u32 = 12;

/// A small greedy matcher for `ruzstd`'s encoder (its own one zero-fills a
/// 128 KiB window for every frame, which dominated the cost on packets).
/// Matches stay inside the current block (at most [`SPACE`] bytes), found
/// with a 4-byte hash table as in LZ4/LZO.
struct SmallMatcher {
    current: Vec<u8>,
    spare: Vec<Vec<u8>>,
    table: Box<[u16; 1 << HASH_BITS]>,
}

impl SmallMatcher {
    fn new() -> Self {
        Self {
            current: Vec::new(),
            spare: Vec::new(),
            table: Box::new([0; 1 << HASH_BITS]),
        }
    }
}

#[inline(always)]
fn read32(s: &[u8], i: usize) -> u32 {
    match s.get(i..i + 4) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

impl Matcher for SmallMatcher {
    fn get_next_space(&mut self) -> Vec<u8> {
        let mut v = self.spare.pop().unwrap_or_default();
        v.resize(SPACE, 0);
        v
    }

    fn get_last_space(&mut self) -> &[u8] {
        &self.current
    }

    fn commit_space(&mut self, space: Vec<u8>) {
        let old = core::mem::replace(&mut self.current, space);
        self.spare.push(old);
    }

    fn skip_matching(&mut self) {}

    fn start_matching(&mut self, mut handle_sequence: impl for<'a> FnMut(Sequence<'a>)) {
        let d = &self.current[..];
        let n = d.len();
        self.table.fill(0);
        let mut lit = 0usize; // start of pending literals
        let mut i = 1usize;
        while i + 8 <= n {
            let v = read32(d, i);
            let h = (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize;
            let cand = usize::from(self.table[h]);
            self.table[h] = i as u16;
            if cand < i && read32(d, cand) == v {
                let mut len = 4;
                while i + len < n && d[i + len] == d[cand + len] {
                    len += 1;
                }
                handle_sequence(Sequence::Triple {
                    literals: &d[lit..i],
                    offset: i - cand,
                    match_len: len,
                });
                i += len;
                lit = i;
            } else {
                i += 1 + ((i - lit) >> 6);
            }
        }
        handle_sequence(Sequence::Literals {
            literals: &d[lit..],
        });
    }

    fn reset(&mut self, _level: CompressionLevel) {}

    fn window_size(&self) -> u64 {
        SPACE as u64
    }
}

type Compressor = FrameCompressor<Cursor<Vec<u8>>, Vec<u8>, SmallMatcher>;

/// Reusable zstd encoder state.
pub(crate) struct ZstdEncoder {
    fc: Compressor,
}

impl ZstdEncoder {
    pub(crate) fn new() -> Self {
        Self {
            fc: Compressor::new_with_matcher(SmallMatcher::new(), CompressionLevel::Fastest),
        }
    }

    /// Compresses `src` into one frame in `out`; `None` if it does not fit.
    pub(crate) fn compress(&mut self, src: &[u8], out: &mut [u8]) -> Option<usize> {
        let mut cur = self.fc.take_source().unwrap_or_default();
        cur.get_mut().clear();
        cur.get_mut().extend_from_slice(src);
        cur.set_position(0);
        self.fc.set_source(cur);
        let mut drain = self.fc.take_drain().unwrap_or_default();
        drain.clear();
        self.fc.set_drain(drain);
        self.fc.compress();
        let enc = self.fc.drain()?;

        let h = parse_header(enc).ok()?;
        let body_end = enc.len().checked_sub(if h.checksum { 4 } else { 0 })?;
        let body = enc.get(h.len..body_end)?;

        // Single segment, no checksum, no dictionary, content size present.
        let n = src.len() as u64;
        let mut hdr = [0u8; 13];
        hdr[..4].copy_from_slice(&MAGIC);
        let hlen = if n <= 255 {
            hdr[4] = 0x20;
            hdr[5] = n as u8;
            6
        } else if n <= 65535 + 256 {
            hdr[4] = 0x60;
            hdr[5..7].copy_from_slice(&((n - 256) as u16).to_le_bytes());
            7
        } else if n <= u64::from(u32::MAX) {
            hdr[4] = 0xa0;
            hdr[5..9].copy_from_slice(&(n as u32).to_le_bytes());
            9
        } else {
            hdr[4] = 0xe0;
            hdr[5..13].copy_from_slice(&n.to_le_bytes());
            13
        };
        let total = hlen + body.len();
        let dst = out.get_mut(..total)?;
        dst[..hlen].copy_from_slice(&hdr[..hlen]);
        dst[hlen..].copy_from_slice(body);
        Some(total)
    }
}
