//! Rate limiter for the RE_REGISTER_SUPER fast path (see the module docs of
//! [`super`]): at most one RE_REGISTER_SUPER per sender socket per
//! [`RE_REGISTER_MIN_GAP`], in a fixed-size table allocated once.
//!
//! The table is direct-mapped by a keyed hash of the socket: a slot holds
//! the last socket answered and when. A sender whose slot is held by another
//! socket answered less than `RE_REGISTER_MIN_GAP` ago is not answered (the
//! caller counts it). So a flood of spoofed sources yields at most
//! [`RE_REGISTER_SLOTS`] answers per `RE_REGISTER_MIN_GAP` and no memory
//! growth; an edge that loses its slot is answered on a later datagram or
//! re-registers at its regular interval anyway.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Minimum gap between two RE_REGISTER_SUPER to one socket.
pub const RE_REGISTER_MIN_GAP: Duration = Duration::from_secs(1);
/// Size of the rate-limit table (bound on answers per `RE_REGISTER_MIN_GAP`).
pub const RE_REGISTER_SLOTS: usize = 1024;

#[derive(Debug)]
pub(crate) struct ReRegisterLimiter {
    slots: Box<[Option<(SocketAddr, Instant)>]>,
    key: u64,
}

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ReRegisterLimiter {
    /// `key` randomises the slot choice so that senders cannot aim at a slot.
    pub(crate) fn new(key: u64) -> Self {
        Self {
            slots: vec![None; RE_REGISTER_SLOTS].into_boxed_slice(),
            key,
        }
    }

    fn slot(&self, a: SocketAddr) -> usize {
        let ip = match a.ip() {
            IpAddr::V4(v4) => u64::from(u32::from(v4)),
            IpAddr::V6(v6) => {
                let x = u128::from(v6);
                mix((x >> 64) as u64) ^ (x as u64)
            }
        };
        let h = mix(self.key ^ mix(ip ^ (u64::from(a.port()) << 48)));
        (h % RE_REGISTER_SLOTS as u64) as usize
    }

    /// May `from` be answered now? Records the answer when it may.
    pub(crate) fn allow(&mut self, from: SocketAddr, now: Instant) -> bool {
        let i = self.slot(from);
        let Some(slot) = self.slots.get_mut(i) else {
            return false;
        };
        match slot {
            Some((_, t)) if now.saturating_duration_since(*t) < RE_REGISTER_MIN_GAP => false,
            _ => {
                *slot = Some((from, now));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_per_socket_per_gap() {
        let mut l = ReRegisterLimiter::new(7);
        let t = Instant::now();
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        assert!(l.allow(a, t));
        assert!(!l.allow(a, t + Duration::from_millis(999)));
        assert!(l.allow(a, t + Duration::from_millis(1000)));
        // A flood of distinct sources within one gap: at most one per slot.
        let n = (0..20_000u32)
            .filter(|i| {
                let s = SocketAddr::from(([192, 0, (i >> 8) as u8, *i as u8], 1000 + (*i as u16)));
                l.allow(s, t + Duration::from_millis(1500))
            })
            .count();
        assert!(n <= RE_REGISTER_SLOTS, "{n}");
        assert!(n > RE_REGISTER_SLOTS / 2, "{n}");
        assert_eq!(l.slots.len(), RE_REGISTER_SLOTS);
    }
}
