//! TCP framing (wire.md §1): the streaming deframer on every split of a
//! multi-frame stream, 1-byte writes, the read_space/commit path, the
//! limits (2046-byte message, L + 2 > 2048 and L = 0 end the connection,
//! sticky), the buffer bound, no allocation, and a proptest round trip with
//! arbitrary chunking (fixed seed). Frames include every datagram of the C
//! captures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use n2n_proto::wire::tcp::{
    self, TCP_DEFRAMER_CAPACITY, TCP_MAX_MESSAGE_LEN, TcpDeframer, TcpFrameError,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

#[global_allocator]
static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;

fn frame_all(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    for m in msgs {
        let mut f = vec![0u8; m.len() + 2];
        assert_eq!(tcp::encode_frame(m, &mut f), Ok(m.len() + 2));
        s.extend_from_slice(&f);
    }
    s
}

/// Frames delivered, or the error with the frames delivered before it.
type RunResult = Result<Vec<Vec<u8>>, (TcpFrameError, Vec<Vec<u8>>)>;

/// Feeds `chunks` in order, draining after each; checks the bounds.
fn run(d: &mut TcpDeframer, chunks: &[&[u8]]) -> RunResult {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
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
                    Err(e) => return Err((e, out)),
                }
            }
            assert!(d.buffered() < 2048, "an incomplete frame is < 2048 bytes");
            if rest.is_empty() {
                break;
            }
            assert!(n > 0, "no progress after draining");
        }
    }
    Ok(out)
}

fn sample_messages() -> Vec<Vec<u8>> {
    vec![
        vec![0xaa],
        (0..24).collect(),
        vec![0x55; TCP_MAX_MESSAGE_LEN],
        (0..100u8).collect(),
        vec![1, 2],
    ]
}

#[test]
fn every_split_point() {
    let msgs = sample_messages();
    let stream = frame_all(&msgs);
    for i in 0..=stream.len() {
        let mut d = TcpDeframer::new();
        let got = run(&mut d, &[&stream[..i], &stream[i..]]).unwrap();
        assert_eq!(got, msgs, "split at {i}");
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn every_pair_of_split_points_small_stream() {
    let msgs: Vec<Vec<u8>> = vec![vec![1], vec![2, 3], (0..30).collect(), vec![9; 5]];
    let stream = frame_all(&msgs);
    for i in 0..=stream.len() {
        for j in i..=stream.len() {
            let mut d = TcpDeframer::new();
            let got = run(&mut d, &[&stream[..i], &stream[i..j], &stream[j..]]).unwrap();
            assert_eq!(got, msgs, "splits at {i}, {j}");
        }
    }
}

#[test]
fn one_byte_writes() {
    let msgs = sample_messages();
    let stream = frame_all(&msgs);
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let mut d = TcpDeframer::new();
    assert_eq!(run(&mut d, &chunks).unwrap(), msgs);
}

#[test]
fn one_huge_write() {
    // Many frames in one chunk larger than the buffer: feed takes what
    // fits, draining frees room.
    let msgs: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; 1000 + i]).collect();
    let stream = frame_all(&msgs);
    assert!(stream.len() > 10 * TCP_DEFRAMER_CAPACITY);
    let mut d = TcpDeframer::new();
    assert_eq!(run(&mut d, &[&stream]).unwrap(), msgs);
}

#[test]
fn capture_datagrams_through_tcp() {
    let mut n = 0;
    for s in n2n_testdata::scenarios() {
        let msgs: Vec<Vec<u8>> = s.packets.iter().map(|p| p.bytes.clone()).collect();
        let stream = frame_all(&msgs);
        for chunk in [1usize, 7, 100, 1500, 4096, 100_000] {
            let chunks: Vec<&[u8]> = stream.chunks(chunk).collect();
            let mut d = TcpDeframer::new();
            assert_eq!(
                run(&mut d, &chunks).unwrap(),
                msgs,
                "{} chunk {chunk}",
                s.name
            );
        }
        n += msgs.len();
    }
    assert!(n > 300, "{n} datagrams");
}

#[test]
fn read_space_and_commit() {
    let msgs = sample_messages();
    let stream = frame_all(&msgs);
    let mut d = TcpDeframer::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut step = 1;
    while pos < stream.len() {
        let space = d.read_space();
        assert!(space.len() >= 2049, "{}", space.len());
        let n = space.len().min(step).min(stream.len() - pos);
        space[..n].copy_from_slice(&stream[pos..pos + n]);
        d.commit(n);
        pos += n;
        step = step * 3 + 1;
        while let Some(f) = d.next_frame().unwrap() {
            out.push(f.to_vec());
        }
    }
    assert_eq!(out, msgs);
    // Over-committing is clamped, never past the buffer.
    let mut d = TcpDeframer::new();
    d.commit(usize::MAX);
    assert_eq!(d.buffered(), TCP_DEFRAMER_CAPACITY);
    assert_eq!(d.read_space().len(), 0);
    assert_eq!(d.feed(&[1, 2, 3]), 0);
    // 4096 zero bytes: a zero-length prefix.
    assert_eq!(d.next_frame(), Err(TcpFrameError::EmptyFrame));
}

#[test]
fn oversize_prefix_closes_and_is_sticky() {
    for len in [2047usize, 2048, 0x7fff, 0xffff] {
        let good = frame_all(&[vec![7; 30]]);
        let mut stream = good.clone();
        stream.extend_from_slice(&(len as u16).to_be_bytes());
        // The error comes with the prefix, before any body byte.
        let mut d = TcpDeframer::new();
        let (e, out) = run(&mut d, &[&stream]).unwrap_err();
        assert_eq!(e, TcpFrameError::TooLong(len));
        assert_eq!(
            out,
            vec![vec![7; 30]],
            "frames before the bad prefix delivered"
        );
        assert_eq!(d.error(), Some(e));
        assert_eq!(d.next_frame(), Err(e));
        assert_eq!(d.feed(&good), 0, "nothing accepted after the error");
        assert_eq!(d.read_space().len(), 0);
        d.commit(10);
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.next_frame(), Err(e));
        // Split inside the prefix: same.
        let mut d = TcpDeframer::new();
        let k = stream.len() - 1;
        let (e2, _) = run(&mut d, &[&stream[..k], &stream[k..]]).unwrap_err();
        assert_eq!(e2, e);
    }
    // The largest message is fine.
    let mut d = TcpDeframer::new();
    let max = vec![3u8; TCP_MAX_MESSAGE_LEN];
    assert_eq!(
        run(&mut d, &[&frame_all(std::slice::from_ref(&max))]).unwrap(),
        vec![max]
    );
}

#[test]
fn zero_length_frame_closes() {
    let mut stream = frame_all(&[vec![1, 2, 3]]);
    stream.extend_from_slice(&[0, 0]);
    stream.extend_from_slice(&frame_all(&[vec![4]]));
    let mut d = TcpDeframer::new();
    let (e, out) = run(&mut d, &[&stream]).unwrap_err();
    assert_eq!(e, TcpFrameError::EmptyFrame);
    assert_eq!(out, vec![vec![1, 2, 3]]);
    assert_eq!(d.next_frame(), Err(TcpFrameError::EmptyFrame));
    // The encoder refuses to make one.
    assert_eq!(tcp::frame_prefix(0), Err(TcpFrameError::EmptyFrame));
    assert_eq!(
        tcp::encode_frame(&[], &mut [0u8; 4]),
        Err(TcpFrameError::EmptyFrame)
    );
    assert_eq!(
        tcp::encode_frame(&[0; 2047], &mut [0u8; 4096]),
        Err(TcpFrameError::TooLong(2047))
    );
}

#[test]
fn partial_frame_is_reported() {
    let mut d = TcpDeframer::new();
    assert!(!d.in_frame());
    assert_eq!(d.feed(&[0]), 1);
    assert_eq!(d.next_frame(), Ok(None));
    assert!(d.in_frame());
    assert_eq!(d.feed(&[2, 5]), 2);
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(d.feed(&[6]), 1);
    assert_eq!(d.next_frame(), Ok(Some(&[5u8, 6][..])));
    assert!(!d.in_frame());
}

#[test]
fn deframing_does_not_allocate() {
    let msgs = sample_messages();
    let stream = frame_all(&msgs);
    let mut d = TcpDeframer::new();
    let mut out = [0u8; 2048];
    let mut total = 0usize;
    let n = n2n_testdata::allocations_during(|| {
        for chunk in stream.chunks(333) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let k = d.feed(rest);
                rest = &rest[k..];
                while let Some(f) = d.next_frame().unwrap() {
                    total += tcp::encode_frame(f, &mut out).unwrap();
                }
            }
        }
    });
    assert_eq!(n, 0);
    assert_eq!(total, stream.len());
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x7463_7032),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn round_trip_any_chunking(
        msgs in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 1..=TCP_MAX_MESSAGE_LEN), 0..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream = frame_all(&msgs);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        at.push(0);
        at.push(stream.len());
        at.sort_unstable();
        let chunks: Vec<&[u8]> = at.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
        let mut d = TcpDeframer::new();
        prop_assert_eq!(run(&mut d, &chunks).unwrap(), msgs);
        prop_assert_eq!(d.buffered(), 0);
    }

    /// Arbitrary bytes: frames that re-frame to a prefix of the input, then
    /// either a need for more bytes or a typed error.
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..6000), chunk in 1usize..3000) {
        let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
        let mut d = TcpDeframer::new();
        let (frames, err) = match run(&mut d, &chunks) {
            Ok(f) => (f, None),
            Err((e, f)) => (f, Some(e)),
        };
        let re = frame_all(&frames);
        prop_assert_eq!(&data[..re.len()], &re[..]);
        match err {
            None => prop_assert_eq!(d.buffered(), data.len() - re.len()),
            Some(TcpFrameError::TooLong(l)) => {
                prop_assert!(l > TCP_MAX_MESSAGE_LEN);
                prop_assert_eq!(usize::from(u16::from_be_bytes([data[re.len()], data[re.len() + 1]])), l);
            }
            Some(TcpFrameError::EmptyFrame) => prop_assert_eq!(&data[re.len()..re.len() + 2], &[0u8, 0][..]),
            Some(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
