//! RE_REGISTER_SUPER at the edge (extension of behaviour.md §2.3).
//!
//! C edges act on RE_REGISTER_SUPER only in user/password mode. This edge
//! also acts on it without user/password, because this crate's supernode
//! sends it to senders it does not know (after a restart, see
//! [`crate::supernode`]): then relayed traffic resumes at once instead of at
//! the next regular REGISTER_SUPER (`-i`). It is accepted only from the
//! current supernode's socket (FROM_SUPERNODE set, header-encryption stamp
//! verified when `-H`), only in the main loop, and acted upon at most once
//! per [`FAST_REREGISTER_MIN_GAP`]; everything else is a counted drop.
//! REGISTER_SUPER goes out immediately (`sn_wait = 2` without the random
//! back-off); the regular interval restarts from now.

use std::time::Duration;

use n2n_proto::he;

use super::stats::DropReason;
use super::{Edge, Phase, SnWait};
use crate::time::Now;

/// Minimum gap between two re-registrations triggered by RE_REGISTER_SUPER.
pub const FAST_REREGISTER_MIN_GAP: Duration = Duration::from_secs(1);

impl Edge {
    pub(super) fn rx_re_register(
        &mut self,
        now: Now,
        sn_idx: Option<usize>,
        stamp: Option<u64>,
    ) -> Result<(), DropReason> {
        let idx = sn_idx
            .filter(|&i| i == self.cur)
            .ok_or(DropReason::ReRegisterNotCurrent)?;
        if let Some(stamp) = stamp {
            let prev = self.sns.get_mut(idx).map(|s| &mut s.he_prev);
            he::verify_stamp(stamp, now.he_stamp(), prev, false)
                .map_err(|_| DropReason::HeStampRejected)?;
        }
        if self.phase != Phase::Running {
            return Err(DropReason::ReRegisterIgnored);
        }
        if self
            .last_fast_rereg
            .is_some_and(|t| now.mono.saturating_duration_since(t) < FAST_REREGISTER_MIN_GAP)
        {
            return Err(DropReason::ReRegisterRateLimited);
        }
        self.last_fast_rereg = Some(now.mono);
        self.send_register_super(now, false);
        self.sn_wait = SnWait::Waiting;
        self.last_register_req = Some(now.mono);
        Ok(())
    }
}
