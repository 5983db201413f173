//! LZO1X and zstd decompression of arbitrary bytes with the 2048-byte frame
//! bound: never a panic, never more than the bound (or the output buffer)
//! written; then the input as a frame: compress → decompress gives it back.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use n2n_proto::compress::{
    self, CompressError, CompressionId, Compressor, Decompressor, MAX_FRAME_SIZE,
};

thread_local! {
    static STATE: RefCell<(Compressor, Decompressor)> =
        RefCell::new((Compressor::new(), Decompressor::new()));
}

const IDS: [CompressionId; 3] = [CompressionId::None, CompressionId::Lzo, CompressionId::Zstd];

fuzz_target!(|data: &[u8]| {
    STATE.with(|s| {
        let (comp, decomp) = &mut *s.borrow_mut();
        for id in IDS {
            // Full bound, with canaries after it.
            let mut out = vec![0xa5u8; MAX_FRAME_SIZE + 64];
            match decomp.decompress(id, data, &mut out) {
                Ok(n) => assert!(n <= MAX_FRAME_SIZE),
                Err(CompressError::UnknownCompression(_)) => panic!("known id refused"),
                Err(_) => {}
            }
            assert!(
                out[MAX_FRAME_SIZE..].iter().all(|&b| b == 0xa5),
                "{id:?}: wrote past the 2048-byte bound"
            );
            // A small output buffer: the bound is the buffer.
            let small = usize::from(data.first().copied().unwrap_or(0));
            let mut out = vec![0u8; small];
            if let Ok(n) = decomp.decompress(id, data, &mut out) {
                assert!(n <= small);
            }
            // The one-shot function agrees with the reused state.
            let mut a = vec![0u8; MAX_FRAME_SIZE];
            let mut b = vec![0u8; MAX_FRAME_SIZE];
            let ra = compress::decompress(id, data, &mut a);
            let rb = decomp.decompress(id, data, &mut b);
            assert_eq!(ra, rb, "{id:?}: one-shot and reused decoder disagree");
            if let Ok(n) = ra {
                assert_eq!(a[..n], b[..n]);
            }
        }

        // Round trip of the input as a frame (frames are at most 2048 bytes).
        let frame = &data[..data.len().min(MAX_FRAME_SIZE)];
        for id in [CompressionId::Lzo, CompressionId::Zstd] {
            let mut c = vec![0u8; MAX_FRAME_SIZE + 64];
            let n = match comp.compress(id, frame, &mut c) {
                Ok(Some(n)) => n,
                Ok(None) => continue, // not shorter: sent uncompressed
                Err(e) => panic!("{id:?}: compress failed: {e}"),
            };
            assert!(n < frame.len(), "{id:?}: compressed form not shorter");
            let mut back = vec![0u8; MAX_FRAME_SIZE];
            let m = decomp
                .decompress(id, &c[..n], &mut back)
                .unwrap_or_else(|e| panic!("{id:?}: own output refused: {e}"));
            assert_eq!(&back[..m], frame, "{id:?}: round trip");
        }
    });
});
