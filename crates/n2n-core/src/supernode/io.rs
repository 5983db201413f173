//! The supernode's output side ([`Io`]: the shared output path, counters,
//! events, randomness) and the small helpers every handler uses.

use std::collections::VecDeque;

use n2n_proto::auth::{ReceivedTrailer, SharedSecret};
use n2n_proto::he::{self, CommunityHe, HeKeyKind};
use n2n_proto::wire::WireError;
use rand_chacha::ChaCha20Rng;

use super::SupernodeEvent;
use super::stats::{DropReason, SupernodeStats};
use crate::Now;
use crate::output::{Dest, Output, Seal, Trailer};

/// Events kept when the driver does not drain them.
const MAX_EVENTS: usize = 4096;

/// Header-encryption context of a decrypted datagram.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeCtx {
    pub(super) kind: HeKeyKind,
    pub(super) stamp: u64,
    /// Static-key attempt in a user/password community: the trailer to
    /// verify (crypto.md §5.4).
    pub(super) trailer: Option<ReceivedTrailer>,
}

/// Output side: queue, counters, events, randomness, stamps. Kept apart
/// from the community table so both can be borrowed at once.
#[derive(Debug)]
pub(super) struct Io {
    pub(super) out: Output,
    pub(super) stats: SupernodeStats,
    pub(super) events: VecDeque<SupernodeEvent>,
    pub(super) rng: ChaCha20Rng,
}

impl Io {
    pub(super) fn event(&mut self, e: SupernodeEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(e);
        }
    }

    /// Encode with `write`, seal (header encryption, user/password
    /// trailer) when `seal` is given, queue for `dst`.
    pub(super) fn send<F>(
        &mut self,
        now: Now,
        dst: Dest,
        seal: Option<Seal<'_>>,
        write: F,
    ) -> Result<(), DropReason>
    where
        F: FnOnce(&mut [u8]) -> Result<usize, WireError>,
    {
        // The supernode's queue is unbounded: nothing is ever evicted.
        let _ = self
            .out
            .send(now, &mut self.rng, dst, None, seal.as_ref(), write)
            .map_err(|_| DropReason::TooLong)?;
        Ok(())
    }
}

/// How to seal an outgoing message of a community whose header keys are
/// `he` (`None`: plain): the whole message (`header_len` `None`) or its
/// first bytes, with the 16 random bytes of a user/password trailer
/// (`random_trailer`: a NAK) or none.
pub(super) fn seal(
    he: Option<(&CommunityHe, HeKeyKind)>,
    header_len: Option<usize>,
    random_trailer: bool,
) -> Option<Seal<'_>> {
    he.map(|(he, kind)| Seal {
        he,
        kind,
        header_len,
        trailer: if random_trailer {
            Trailer::Random
        } else {
            Trailer::None
        },
    })
}

/// Sealing of a whole message under the static keys `he`, signed with a
/// user's trailer (crypto.md §5.4): REGISTER_SUPER_ACK, and REGISTER_SUPER
/// forwarded to other supernodes, in user/password communities.
pub(super) fn seal_signed<'a>(he: &'a CommunityHe, user: &'a SharedSecret) -> Option<Seal<'a>> {
    Some(Seal {
        he,
        kind: HeKeyKind::Static,
        header_len: None,
        trailer: Trailer::Signed(user),
    })
}

pub(super) fn map_wire_err(e: WireError) -> DropReason {
    match e {
        WireError::TooShort { .. } => DropReason::TooShort,
        WireError::BadVersion(_) => DropReason::BadVersion,
        WireError::UnknownType(_) | WireError::NeverSent(_) => DropReason::UnsupportedType,
        _ => DropReason::Undecodable,
    }
}

/// Verifies a header-encryption stamp against the sender's `prev` (no-op
/// for plain datagrams).
pub(super) fn check_stamp(
    ctx: Option<HeCtx>,
    now_stamp: u64,
    prev: Option<&mut u64>,
    jitter: bool,
) -> Result<(), DropReason> {
    match ctx {
        None => Ok(()),
        Some(c) => he::verify_stamp(c.stamp, now_stamp, prev, jitter)
            .map_err(|_| DropReason::StampRejected),
    }
}
