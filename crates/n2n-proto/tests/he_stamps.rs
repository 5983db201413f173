//! Time stamps and replay protection (crypto.md §4.4, §4.5).
#![allow(clippy::unwrap_used)]

use n2n_proto::he::{
    self, FRAME, HeError, JITTER, STAMP_COUNTER_ONLY, StampGenerator, initial_prev,
    stamp_from_unix, verify_stamp,
};

const NOW_S: u64 = 1_795_606_466;
const MS: u64 = 0x0000_0000_0041_8937; // ≈ 1 ms in stamp units (2^32 / 1000)

fn now() -> u64 {
    stamp_from_unix(NOW_S, 500_000)
}

#[test]
fn stamp_layout() {
    let t = stamp_from_unix(0x655e_0f80, 0xa1);
    assert_eq!(t, 0x655e_0f80_000a_1000);
    assert_eq!(stamp_from_unix(1, 999_999), (1 << 32) | (999_999 << 12));
    // Out-of-range microseconds never spill into the seconds.
    assert_eq!(stamp_from_unix(1, u32::MAX) >> 32, 1);
    assert_eq!(JITTER, 0x2710_0000);
    assert_eq!(FRAME, 16 << 32);
}

#[test]
fn generator_strictly_increasing() {
    let mut g = StampGenerator::new();
    let mut last = 0;
    // Many stamps in one microsecond (counter overflow included), then the
    // clock advancing, then going backwards: always strictly increasing,
    // bits 3..0 always zero.
    let times = (0..1000)
        .map(|_| (NOW_S, 7))
        .chain((0..50).map(|i| (NOW_S, 8 + i)))
        .chain((0..50).map(|i| (NOW_S - 1, i)))
        .chain((0..10).map(|_| (NOW_S + 1, 0)));
    for (s, us) in times {
        let t = g.next(s, us);
        assert!(t > last, "{t:#x} after {last:#x}");
        assert_eq!(t & 0xf, 0);
        assert_eq!(g.last(), t);
        // A receiver without jitter accepts the sequence.
        let mut prev = last;
        verify_stamp(t, stamp_from_unix(s, us), Some(&mut prev), false).unwrap();
        last = t;
    }
    // A fresh microsecond resets the counter.
    let mut g = StampGenerator::new();
    assert_eq!(g.next(NOW_S, 1), stamp_from_unix(NOW_S, 1));
    assert_eq!(g.next(NOW_S, 1), stamp_from_unix(NOW_S, 1) + 0x10);
    assert_eq!(g.next(NOW_S, 2), stamp_from_unix(NOW_S, 2));
}

#[test]
fn window() {
    let n = now();
    for t in [n, n + FRAME - 1, n - FRAME + 1] {
        verify_stamp(t, n, None, false).unwrap();
    }
    for t in [
        n + FRAME,
        n - FRAME,
        n + 17 * (1 << 32),
        n - (1 << 40),
        0,
        u64::MAX,
        1 << 63,
    ] {
        assert_eq!(
            verify_stamp(t, n, None, true),
            Err(HeError::StampOutOfWindow),
            "{t:#x}"
        );
        let mut p = initial_prev(n);
        assert_eq!(
            verify_stamp(t, n, Some(&mut p), true),
            Err(HeError::StampOutOfWindow)
        );
        assert_eq!(p, initial_prev(n), "prev must not move on rejection");
    }
}

#[test]
fn replay_without_jitter() {
    let n = now();
    let mut prev = initial_prev(n);
    // A new peer: anything in the window is newer than now − FRAME.
    verify_stamp(n - FRAME + 1, n, Some(&mut prev), false).unwrap();
    verify_stamp(n, n, Some(&mut prev), false).unwrap();
    assert_eq!(prev, n);
    assert_eq!(
        verify_stamp(n, n, Some(&mut prev), false),
        Err(HeError::StampReplayed)
    );
    assert_eq!(
        verify_stamp(n - 0x10, n, Some(&mut prev), false),
        Err(HeError::StampReplayed)
    );
    assert_eq!(
        verify_stamp(n - MS, n, Some(&mut prev), false),
        Err(HeError::StampReplayed)
    );
    assert_eq!(prev, n);
    verify_stamp(n + 0x10, n, Some(&mut prev), false).unwrap();
    assert_eq!(prev, n + 0x10);
}

#[test]
fn reorder_with_jitter() {
    let n = now();
    let mut prev = n;
    // 100 ms late: accepted with jitter, prev stays at the newest stamp.
    verify_stamp(n - 100 * MS, n, Some(&mut prev), true).unwrap();
    assert_eq!(prev, n);
    // Equal: accepted with jitter (reordering of duplicates is tolerated).
    verify_stamp(n, n, Some(&mut prev), true).unwrap();
    // Just inside / outside the 160 ms tolerance.
    verify_stamp(n - JITTER + 1, n, Some(&mut prev), true).unwrap();
    assert_eq!(
        verify_stamp(n - JITTER, n, Some(&mut prev), true),
        Err(HeError::StampReplayed)
    );
    assert_eq!(
        verify_stamp(n - 200 * MS, n, Some(&mut prev), true),
        Err(HeError::StampReplayed)
    );
    // Counter-only stamps get 256 times the tolerance.
    let co = (n - 200 * MS) | STAMP_COUNTER_ONLY;
    verify_stamp(co, n, Some(&mut prev), true).unwrap();
    // (JITTER << 8 ≈ 39 s exceeds the ±16 s window, so anything in the
    // window is accepted unless prev is far ahead, e.g. after a clock jump.)
    let co_far = (n - 15 * (1 << 32)) | STAMP_COUNTER_ONLY;
    verify_stamp(co_far, n, Some(&mut prev), true).unwrap();
    let mut far_prev = n + 30 * (1 << 32);
    let co_too_far = (n - 10 * (1 << 32)) | STAMP_COUNTER_ONLY;
    assert_eq!(
        verify_stamp(co_too_far, n, Some(&mut far_prev), true),
        Err(HeError::StampReplayed)
    );
    let co_ok = (n - 8 * (1 << 32)) | STAMP_COUNTER_ONLY;
    verify_stamp(co_ok, n, Some(&mut far_prev), true).unwrap();
    assert_eq!(far_prev, n + 30 * (1 << 32));
    // ... but not without jitter.
    assert_eq!(
        verify_stamp(co, n, Some(&mut prev), false),
        Err(HeError::StampReplayed)
    );
    assert_eq!(prev, n);
    // Newer moves prev forward.
    verify_stamp(n + MS, n, Some(&mut prev), true).unwrap();
    assert_eq!(prev, n + MS);
}

#[test]
fn error_display_is_meaningful() {
    assert!(he::HeError::StampReplayed.to_string().contains("replay"));
}
