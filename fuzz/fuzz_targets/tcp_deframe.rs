//! The TCP deframer on arbitrary bytes with arbitrary chunking (chunk sizes
//! from the first 4 input bytes, the stream is the rest). Invariants: never
//! more buffered than the fixed capacity (and < 2048 once no frame is
//! complete), every frame 1..=2046 bytes, the frames re-framed are a prefix
//! of the stream, an error names the offending prefix and is sticky, and
//! re-framing the frames and feeding them again (1-byte writes, and via
//! read_space/commit in one go) gives the same frames without an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_proto::wire::tcp::{
    self, TCP_DEFRAMER_CAPACITY, TCP_MAX_MESSAGE_LEN, TcpDeframer, TcpFrameError,
};

/// Feeds the chunks, draining after each feed; returns the frames and the
/// error that stopped it, if any.
fn deframe<'a>(
    d: &mut TcpDeframer,
    chunks: impl Iterator<Item = &'a [u8]>,
) -> (Vec<Vec<u8>>, Option<TcpFrameError>) {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        loop {
            let n = d.feed(rest);
            rest = &rest[n..];
            assert!(d.buffered() <= TCP_DEFRAMER_CAPACITY);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => {
                        assert!((1..=TCP_MAX_MESSAGE_LEN).contains(&f.len()));
                        out.push(f.to_vec());
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(d.next_frame(), Err(e), "error not sticky");
                        assert_eq!(d.feed(chunk), 0, "bytes accepted after an error");
                        return (out, Some(e));
                    }
                }
            }
            assert!(d.buffered() < 2048);
            if rest.is_empty() {
                break;
            }
            assert!(n > 0, "no progress with a drained buffer");
        }
    }
    (out, None)
}

fn reframe(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    let mut buf = [0u8; 2048];
    for f in frames {
        let n = tcp::encode_frame(f, &mut buf).expect("a deframed message re-frames");
        s.extend_from_slice(&buf[..n]);
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = data.split_at(data.len().min(4));
    let sizes: Vec<usize> = if sizes.is_empty() {
        vec![1]
    } else {
        sizes.iter().map(|&b| usize::from(b) * 23 + 1).collect()
    };
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < stream.len() {
        let n = sizes[k % sizes.len()].min(stream.len() - pos);
        chunks.push(&stream[pos..pos + n]);
        pos += n;
        k += 1;
    }

    let mut d = TcpDeframer::new();
    let (frames, err) = deframe(&mut d, chunks.into_iter());
    let re = reframe(&frames);
    assert_eq!(&stream[..re.len()], &re[..], "frames are not the stream");
    match err {
        None => assert_eq!(d.buffered(), stream.len() - re.len()),
        Some(TcpFrameError::TooLong(l)) => {
            assert!(l > TCP_MAX_MESSAGE_LEN);
            let p = &stream[re.len()..re.len() + 2];
            assert_eq!(usize::from(u16::from_be_bytes([p[0], p[1]])), l);
        }
        Some(TcpFrameError::EmptyFrame) => assert_eq!(&stream[re.len()..re.len() + 2], &[0, 0]),
        Some(e) => panic!("unexpected {e:?}"),
    }

    // Re-framed output fed again: same frames, no error.
    let mut d2 = TcpDeframer::new();
    let (again, err2) = deframe(&mut d2, re.chunks(1));
    assert_eq!(err2, None);
    assert_eq!(again, frames);
    assert_eq!(d2.buffered(), 0);

    let mut d3 = TcpDeframer::new();
    let mut rest = &re[..];
    let mut third = Vec::new();
    while !rest.is_empty() {
        let space = d3.read_space();
        assert!(space.len() > 2048);
        let n = space.len().min(rest.len());
        space[..n].copy_from_slice(&rest[..n]);
        d3.commit(n);
        rest = &rest[n..];
        while let Some(f) = d3.next_frame().expect("re-framed stream errs") {
            third.push(f.to_vec());
        }
    }
    assert_eq!(third, frames);

    // The encoder on the raw stream as one message.
    let mut out = vec![0u8; stream.len() + 2];
    match tcp::encode_frame(stream, &mut out) {
        Ok(n) => {
            assert!(n == stream.len() + 2 && (1..=TCP_MAX_MESSAGE_LEN).contains(&stream.len()))
        }
        Err(TcpFrameError::EmptyFrame) => assert!(stream.is_empty()),
        Err(TcpFrameError::TooLong(l)) => assert!(l == stream.len() && l > TCP_MAX_MESSAGE_LEN),
        Err(e) => panic!("unexpected {e:?}"),
    }
});
