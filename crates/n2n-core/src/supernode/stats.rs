//! Supernode counters: C's management counters plus one counter per named
//! drop reason and per registration refusal reason.

use core::fmt;

/// Why the supernode dropped a datagram. Every drop is counted under one of
/// these (see [`SupernodeStats::drops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than the 24-byte common header.
    TooShort,
    /// A relayed copy would not fit a 2048-byte datagram.
    TooLong,
    /// Plain-looking header but version ≠ 3 (after header decryption).
    BadVersion,
    /// A field is missing or invalid (truncated, token > 48 bytes, …).
    Undecodable,
    /// Message type never sent by n2n (0, 2, 9, 13…31).
    UnsupportedType,
    /// A valid type the supernode does not accept from this sender
    /// (REGISTER_ACK, RE_REGISTER_SUPER, PEER_INFO, ACK/NAK from an edge).
    UnexpectedType,
    /// Looks header-encrypted but no community key decrypts it.
    HeNoKey,
    /// Plain datagram for a community locked to header encryption.
    HeDowngrade,
    /// Header-encryption time stamp outside ±16 s or not newer than the
    /// sender's previous one (replay).
    StampRejected,
    /// User/password community: a non-registration message under the
    /// static key.
    StaticKeyMisuse,
    /// TTL 0.
    TtlExpired,
    /// The message needs an existing community.
    UnknownCommunity,
    /// The community file does not allow this community name.
    CommunityNotAllowed,
    /// Unicast destination MAC not registered in the community (no
    /// federation to forward to).
    UnknownDestination,
    /// REGISTER with a broadcast/multicast destination MAC.
    MulticastRegister,
    /// FROM_SUPERNODE set, but the source is not a federation member.
    FromUnknownSupernode,
    /// Decrypts under the federation header keys, but its checksum does not
    /// match this supernode's federation name field: a member of another
    /// federation (`-F`), or a forgery.
    FederationForged,
    /// REGISTER_SUPER carrying the supernode's own MAC.
    OwnMac,
    /// UNREGISTER_SUPER whose auth block does not match the registration.
    AuthMismatch,
    /// UNREGISTER_SUPER for a MAC that is not registered.
    UnknownEdge,
    /// User/password REGISTER_SUPER of a listed user whose trailer does not
    /// verify (forged, tampered, or not under the static keys): dropped
    /// without an answer, as C does.
    BadTrailer,
    /// TCP: a frame's length prefix exceeds the largest datagram
    /// (wire.md §1); the connection was closed.
    TcpFrameTooLong,
    /// TCP: a connection refused at `--tcp-max-connections`.
    TcpConnectionLimit,
    /// TCP: a connection closed by `--tcp-idle-timeout` or
    /// `--tcp-frame-timeout` (a frame left unfinished too long).
    TcpTimeout,
    /// REGISTER_SUPER of a new edge in a community that holds
    /// `--max-edges-per-community` edges: dropped without an answer.
    CommunityFull,
    /// REGISTER_SUPER of a new edge while the supernode holds `--max-edges`
    /// edges in all: dropped without an answer.
    EdgeLimit,
    /// REGISTER_SUPER that would create a community while the supernode
    /// holds `--max-communities`: dropped without an answer.
    CommunityLimit,
    /// A plain (not header-encrypted) datagram naming the federation
    /// community: federation traffic is always encrypted.
    FederationPlain,
    /// A new supernode while the federation table is full (the cap,
    /// default [`super::DEFAULT_MAX_FEDERATION`]).
    FederationFull,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 29;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TooShort,
        DropReason::TooLong,
        DropReason::BadVersion,
        DropReason::Undecodable,
        DropReason::UnsupportedType,
        DropReason::UnexpectedType,
        DropReason::HeNoKey,
        DropReason::HeDowngrade,
        DropReason::StampRejected,
        DropReason::StaticKeyMisuse,
        DropReason::TtlExpired,
        DropReason::UnknownCommunity,
        DropReason::CommunityNotAllowed,
        DropReason::UnknownDestination,
        DropReason::MulticastRegister,
        DropReason::FromUnknownSupernode,
        DropReason::FederationForged,
        DropReason::OwnMac,
        DropReason::AuthMismatch,
        DropReason::UnknownEdge,
        DropReason::BadTrailer,
        DropReason::TcpFrameTooLong,
        DropReason::TcpConnectionLimit,
        DropReason::TcpTimeout,
        DropReason::CommunityFull,
        DropReason::EdgeLimit,
        DropReason::CommunityLimit,
        DropReason::FederationPlain,
        DropReason::FederationFull,
    ];

    /// snake_case name (management `packetstats` rows, logs).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::TooLong => "too_long",
            DropReason::BadVersion => "bad_version",
            DropReason::Undecodable => "undecodable",
            DropReason::UnsupportedType => "unsupported_type",
            DropReason::UnexpectedType => "unexpected_type",
            DropReason::HeNoKey => "he_no_key",
            DropReason::HeDowngrade => "he_downgrade",
            DropReason::StampRejected => "stamp_rejected",
            DropReason::StaticKeyMisuse => "static_key_misuse",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::UnknownCommunity => "unknown_community",
            DropReason::CommunityNotAllowed => "community_not_allowed",
            DropReason::UnknownDestination => "unknown_destination",
            DropReason::MulticastRegister => "multicast_register",
            DropReason::FromUnknownSupernode => "from_unknown_supernode",
            DropReason::FederationForged => "federation_forged",
            DropReason::OwnMac => "own_mac",
            DropReason::AuthMismatch => "auth_mismatch",
            DropReason::UnknownEdge => "unknown_edge",
            DropReason::BadTrailer => "bad_trailer",
            DropReason::TcpFrameTooLong => "tcp_frame_too_long",
            DropReason::TcpConnectionLimit => "tcp_connection_limit",
            DropReason::TcpTimeout => "tcp_timeout",
            DropReason::CommunityFull => "community_full",
            DropReason::EdgeLimit => "edge_limit",
            DropReason::CommunityLimit => "community_limit",
            DropReason::FederationPlain => "federation_plain",
            DropReason::FederationFull => "federation_full",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a REGISTER_SUPER was answered with a NAK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The MAC is registered with another auth block (token).
    MacInUse,
    /// The TAP IP address is registered by another MAC with another auth
    /// block.
    IpInUse,
    /// The auth scheme does not fit the community (user/password ⇔ the
    /// community has users).
    AuthSchemeMismatch,
    /// User/password community: the token's public key is not one of its
    /// users ("user or password not recognised").
    UnknownUser,
}

impl RefuseReason {
    /// Number of reasons.
    pub const COUNT: usize = 4;

    /// Every reason, in counter order.
    pub const ALL: [RefuseReason; Self::COUNT] = [
        RefuseReason::MacInUse,
        RefuseReason::IpInUse,
        RefuseReason::AuthSchemeMismatch,
        RefuseReason::UnknownUser,
    ];

    /// snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            RefuseReason::MacInUse => "mac_in_use",
            RefuseReason::IpInUse => "ip_in_use",
            RefuseReason::AuthSchemeMismatch => "auth_scheme_mismatch",
            RefuseReason::UnknownUser => "unknown_user",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Supernode counters. The first fields are C's (`packetstats`,
/// `timestamps`, text status page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupernodeStats {
    /// Unicast PACKET/REGISTER forwards (C `fwd`).
    pub fwd: u64,
    /// Broadcast/multicast copies sent (C `broadcast`, one per destination).
    pub broadcast: u64,
    /// REGISTER_SUPER received (C `reg_super`).
    pub reg_super: u64,
    /// REGISTER_SUPER_NAK sent (C `reg_super_nak`).
    pub reg_super_nak: u64,
    /// Transmit errors (C `errors`): queued datagrams the driver's buffer
    /// could not hold.
    pub errors: u64,
    /// Unix seconds of the last forward (0 = never).
    pub last_fwd: u64,
    /// Unix seconds of the last REGISTER_SUPER (0 = never).
    pub last_reg_super: u64,
    /// RE_REGISTER_SUPER sent to unregistered senders (restart fast path).
    pub re_register_sent: u64,
    /// RE_REGISTER_SUPER not sent because of the per-socket rate limit.
    pub re_register_limited: u64,
    /// TCP connections opened (`-S2` edges).
    pub tcp_opened: u64,
    /// TCP connections closed.
    pub tcp_closed: u64,
    /// Frames received over TCP.
    pub tcp_frames: u64,
    /// Datagrams forwarded to federation members (one per member).
    pub fed_forwarded: u64,
    /// REGISTER_SUPERs sent to federation members.
    pub fed_reg_sent: u64,
    /// REGISTER_SUPERs received from federation members (federation
    /// community).
    pub fed_reg_received: u64,
    drops: [u64; DropReason::COUNT],
    refusals: [u64; RefuseReason::COUNT],
}

impl SupernodeStats {
    /// Count one dropped datagram.
    pub fn count_drop(&mut self, reason: DropReason) {
        let c = &mut self.drops[reason.index()];
        *c = c.saturating_add(1);
    }

    /// Count one NAK.
    pub fn count_refusal(&mut self, reason: RefuseReason) {
        let c = &mut self.refusals[reason.index()];
        *c = c.saturating_add(1);
        self.reg_super_nak = self.reg_super_nak.saturating_add(1);
    }

    /// Datagrams dropped for `reason`.
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// NAKs sent for `reason`.
    pub fn refusal_count(&self, reason: RefuseReason) -> u64 {
        self.refusals[reason.index()]
    }

    /// Every drop reason with its count (zeros included), in a fixed order.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.drops[r.index()]))
    }

    /// Every refusal reason with its count.
    pub fn refusals(&self) -> impl Iterator<Item = (RefuseReason, u64)> + '_ {
        RefuseReason::ALL
            .iter()
            .map(|r| (*r, self.refusals[r.index()]))
    }

    /// Total of all drop counters.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_tables_are_consistent() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?} out of order");
        }
        for (i, r) in RefuseReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?} out of order");
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        let mut s = SupernodeStats::default();
        s.count_drop(DropReason::UnknownEdge);
        s.count_drop(DropReason::UnknownEdge);
        s.count_refusal(RefuseReason::IpInUse);
        assert_eq!(s.drop_count(DropReason::UnknownEdge), 2);
        assert_eq!(s.total_drops(), 2);
        assert_eq!(s.reg_super_nak, 1);
        assert_eq!(s.refusal_count(RefuseReason::IpInUse), 1);
    }
}
