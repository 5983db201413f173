//! The clocks the drivers read for the sans-IO cores.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use n2n_core::Now;

/// The current time for the cores: the monotonic clock and the wall clock
/// in Unix microseconds (0 before 1970, saturating far in the future).
pub fn now() -> Now {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        // Not `as_micros()`: its u128 division is a libcall on every read.
        .map(|d| {
            d.as_secs()
                .saturating_mul(1_000_000)
                .saturating_add(u64::from(d.subsec_micros()))
        })
        .unwrap_or(0);
    Now::new(Instant::now(), unix_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_clocks_move_forward() {
        let a = now();
        let b = now();
        assert!(b.mono >= a.mono);
        assert!(b.unix_us >= a.unix_us);
        // After 2020-01-01 and before 2200.
        assert!((1_577_836_800..7_258_118_400).contains(&a.unix_secs()));
    }
}
