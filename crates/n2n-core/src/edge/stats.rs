//! Edge counters: C n2n's packet statistics plus one counter per named
//! drop reason.

use core::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $var:ident => $name:literal, )*) => {
        /// Why the edge dropped a datagram, a TAP frame or a control message.
        /// Every drop increments exactly one of these counters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum DropReason {
            $( $(#[$doc])* $var, )*
        }

        impl DropReason {
            /// All reasons, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$var,)*];

            /// snake_case name (management `packetstats` rows).
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$var => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Datagram does not decode (too short, truncated field, bad version,
    /// unknown type, oversized token or supernode list).
    Malformed => "malformed",
    /// Header encryption on and no key decrypts the datagram.
    HeDecryptFailed => "he_decrypt_failed",
    /// Header-encryption time stamp outside ±16 s or not newer than the
    /// sender's previous one.
    HeStampRejected => "he_stamp_rejected",
    /// FROM_SUPERNODE flag from a socket that is not one of our supernodes.
    FromUnknownSupernode => "from_unknown_supernode",
    /// Community field is not ours.
    WrongCommunity => "wrong_community",
    /// PACKET received, or frame to send, before the first REGISTER_SUPER_ACK.
    NotRegistered => "not_registered",
    /// PACKET whose transform id differs from ours.
    WrongTransform => "wrong_transform",
    /// Payload does not decrypt (too short, AEAD tag mismatch).
    PayloadDecryptFailed => "payload_decrypt_failed",
    /// AEAD nonce replayed or too old.
    PayloadReplay => "payload_replay",
    /// Unknown or unsupported compression id.
    UnknownCompression => "unknown_compression",
    /// Decompression failed or exceeded the 2048-byte limit.
    DecompressFailed => "decompress_failed",
    /// Frame shorter than an Ethernet header.
    FrameTooShort => "frame_too_short",
    /// Frame or datagram does not fit the buffers.
    FrameTooLarge => "frame_too_large",
    /// Multicast frame without `-E`.
    MulticastDisabled => "multicast_disabled",
    /// TAP frame with an IPv4 source other than ours (no `-r`).
    ForeignSourceIp => "foreign_source_ip",
    /// Received unicast IPv4 frame for another destination (no `-r`).
    ForeignDestinationIp => "foreign_destination_ip",
    /// Received frame for another MAC (not ours, not broadcast, not IP
    /// multicast) without `-r`: the TAP would discard it.
    ForeignDestinationMac => "foreign_destination_mac",
    /// A `-R` rule said drop.
    TrafficRule => "traffic_rule",
    /// Broadcast while the supernode is lost and no P2P peer is known.
    NoDestination => "no_destination",
    /// No supernode address resolved yet.
    NoSupernodeAddress => "no_supernode_address",
    /// REGISTER_SUPER_ACK/NAK with a cookie we did not send last.
    StaleCookie => "stale_cookie",
    /// REGISTER_SUPER_ACK while not waiting for one.
    UnsolicitedAck => "unsolicited_ack",
    /// Unicast REGISTER for another MAC, or our own multicast REGISTER.
    RegisterNotForUs => "register_not_for_us",
    /// REGISTER_ACK from a peer we are not trying to reach.
    AckFromUnknownPeer => "ack_from_unknown_peer",
    /// PEER_INFO not from a supernode, or about a loopback socket.
    BadPeerInfo => "bad_peer_info",
    /// PEER_INFO about a peer we are not looking for (late answer).
    UnsolicitedPeerInfo => "unsolicited_peer_info",
    /// Datagram after [`Edge::shutdown`](super::Edge::shutdown).
    Stopped => "stopped",
    /// PONG from a supernode we do not know.
    UnknownPong => "unknown_pong",
    /// Message an edge never handles (QUERY_PEER, REGISTER_SUPER, ...).
    UnexpectedMessage => "unexpected_message",
    /// RE_REGISTER_SUPER without user/password authentication.
    ReRegisterIgnored => "re_register_ignored",
    /// RE_REGISTER_SUPER from a supernode that is not the current one.
    ReRegisterNotCurrent => "re_register_not_current",
    /// RE_REGISTER_SUPER less than a second after the last one acted upon.
    ReRegisterRateLimited => "re_register_rate_limited",
    /// A PACKET from ourselves (looped back by a broadcast).
    OwnPacket => "own_packet",
    /// The driver did not drain `poll_transmit`: the oldest queued datagram
    /// was discarded.
    QueueFull => "queue_full",
    /// User/password: a REGISTER_SUPER_ACK whose trailer does not verify
    /// with our key (forged, tampered, not under the static keys).
    BadTrailer => "bad_trailer",
    /// User/password: a REGISTER_SUPER_ACK whose answer does not echo our
    /// last challenge (stale, replayed, another user's).
    BadAnswer => "bad_answer",
    /// User/password: a message other than REGISTER_SUPER_ACK/NAK under
    /// the static keys.
    StaticKeyMisuse => "static_key_misuse",
    /// Management request refused (wrong password etc.) — counted for visibility.
    MgmtRejected => "mgmt_rejected",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Packet counters (management `packetstats`, the text page) and drops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// PACKET payloads encoded by the transform.
    pub transop_tx: u64,
    /// PACKET payloads decoded by the transform.
    pub transop_rx: u64,
    /// PACKETs sent directly to a peer.
    pub p2p_tx: u64,
    /// PACKETs received directly from a peer.
    pub p2p_rx: u64,
    /// PACKETs sent through the supernode.
    pub super_tx: u64,
    /// PACKETs received through the supernode.
    pub super_rx: u64,
    /// Broadcast/multicast PACKETs sent through the supernode.
    pub super_broadcast_tx: u64,
    /// Broadcast/multicast PACKETs received through the supernode.
    pub super_broadcast_rx: u64,
    /// Bytes (whole datagrams) of the PACKETs counted in `p2p_tx`.
    pub p2p_tx_bytes: u64,
    /// Bytes of the PACKETs counted in `p2p_rx`.
    pub p2p_rx_bytes: u64,
    /// Bytes of the PACKETs counted in `super_tx`.
    pub super_tx_bytes: u64,
    /// Bytes of the PACKETs counted in `super_rx`.
    pub super_rx_bytes: u64,
    drops: DropCounts,
}

#[derive(Clone, PartialEq, Eq)]
struct DropCounts([u64; DropReason::ALL.len()]);

impl Default for DropCounts {
    fn default() -> Self {
        Self([0; DropReason::ALL.len()])
    }
}

impl fmt::Debug for DropCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (r, n) in DropReason::ALL.iter().zip(self.0.iter()) {
            if *n != 0 {
                m.entry(&r.name(), n);
            }
        }
        m.finish()
    }
}

impl EdgeStats {
    /// Count one drop.
    pub(crate) fn drop(&mut self, reason: DropReason) {
        if let Some(c) = self.drops.0.get_mut(reason as usize) {
            *c += 1;
        }
    }

    /// How many drops of this reason.
    #[must_use]
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.0.get(reason as usize).copied().unwrap_or(0)
    }

    /// Sum of all drops.
    #[must_use]
    pub fn total_drops(&self) -> u64 {
        self.drops.0.iter().sum()
    }

    /// Non-zero drop counters, in [`DropReason::ALL`] order.
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .copied()
            .zip(self.drops.0.iter().copied())
            .filter(|(_, n)| *n != 0)
    }
}
