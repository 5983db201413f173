//! Typed edge configuration (cli.md §1), filled by the `edge` binary from
//! its command line / configuration file.

use std::net::SocketAddr;
use std::time::Duration;

use n2n_proto::auth::UserKeys;
use n2n_proto::types::{Community, CompressionId, DevAddr, Mac, TransformId};

use super::rules::TrafficRule;

/// How the TAP gets its IPv4 address (`-a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapAddrMode {
    /// `-a [static:]ip[/bits]`.
    Static(DevAddr),
    /// No `-a`: ask the supernode (bootstrap REGISTER_SUPER with a null MAC,
    /// behaviour.md §2.1); the answer is reported as
    /// [`Event::AssignAddress`](super::Event::AssignAddress).
    Auto,
    /// `-a dhcp:0.0.0.0` (with `-r`): a DHCP server inside the overlay
    /// configures the TAP; the driver reports the address it reads with
    /// [`Edge::set_tap_addr`](super::Edge::set_tap_addr).
    Dhcp,
}

/// Peer-to-peer mode (`-S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum P2pMode {
    /// Default: hole punching, direct paths when possible.
    #[default]
    Enabled,
    /// `-S1`: everything through the supernode; no REGISTER / REGISTER_ACK
    /// is ever sent (behaviour.md §5.6).
    SupernodeOnly,
    /// `-S2`: the same over one TCP connection to the current supernode
    /// (the driver carries the datagrams for the current supernode over
    /// it, length-framed, wire.md §1); one REGISTER_SUPER attempt per
    /// supernode before failing over (behaviour.md §2.2), no supernode
    /// PINGs.
    SupernodeTcp,
}

/// Supernode selection strategy (behaviour.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// Default: load reported in PONGs plus local pending-peer count.
    #[default]
    Load,
    /// `--select-rtt`.
    Rtt,
    /// `--select-mac`: lowest supernode MAC wins.
    Mac,
}

/// Everything the edge state machine needs to know from the command line.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// `-c`.
    pub community: Community,
    /// `-l host:port`, in order. Entries that parse as a socket address are
    /// used directly; names are resolved by the driver and fed with
    /// [`Edge::set_supernode_addr`](super::Edge::set_supernode_addr).
    pub supernodes: Vec<String>,
    /// Payload transform (`-A` after C's selection rule: key without `-A` = AES).
    pub transform: TransformId,
    /// Raw `-k` key bytes (empty for the null transform).
    pub key: Vec<u8>,
    /// `-z`: [`CompressionId::None`], `Lzo` or `Zstd`.
    pub compression: CompressionId,
    /// `-H` (forced on by [`user_password`](Self::user_password)).
    pub header_encryption: bool,
    /// `-J` (with `-I` as the user name and `-P` as the federation key):
    /// user/password authentication (crypto.md §5) with these keys
    /// ([`UserKeys::new`]); `None`: simple id. Needs
    /// [`TransformId::ChaCha20`] or [`TransformId::Speck`]; switches header
    /// encryption on. The password itself never reaches the core.
    pub user_password: Option<UserKeys>,
    /// `-m`; [`Mac::NULL`] = draw a random locally administered MAC.
    pub mac: Mac,
    /// `-a`.
    pub tap_addr: TapAddrMode,
    /// `-I` (at most 15 bytes are used).
    pub desc: String,
    /// `-M` (only reported; fragmentation is the TAP's business).
    pub mtu: u16,
    /// `-r`: lift the routing checks, enable bridging MAC learning.
    pub routing: bool,
    /// `-E`: accept and forward multicast frames.
    pub multicast: bool,
    /// `-S1`.
    pub p2p: P2pMode,
    /// `-i` (≥ 1 s, default 20 s): re-registration interval and P2P time base.
    pub register_interval: Duration,
    /// `-L` (0 = one direct REGISTER, 1 = none, > 1 = spray 16 ports).
    pub register_ttl: u8,
    /// `-e`: preferred local socket advertised in REGISTER_SUPER; disables
    /// multicast discovery.
    pub preferred_local: Option<SocketAddr>,
    /// `--select-rtt` / `--select-mac`.
    pub selection: Selection,
    /// `--management-password` (default `n2n`).
    pub mgmt_password: String,
    /// `-R` rules, in command-line order.
    pub traffic_rules: Vec<TrafficRule>,
    /// Initial log level reported/changed by management `verbose` (default 2).
    pub verbosity: u8,
}

impl EdgeConfig {
    /// A configuration with C's defaults for everything but the community
    /// and the supernode list: null transform, no compression, no header
    /// encryption, random MAC, auto IP, MTU 1290, P2P on, `-i 20`, load
    /// selection, password `n2n`.
    pub fn new(community: Community, supernodes: Vec<String>) -> Self {
        Self {
            community,
            supernodes,
            transform: TransformId::Null,
            key: Vec::new(),
            compression: CompressionId::None,
            header_encryption: false,
            user_password: None,
            mac: Mac::NULL,
            tap_addr: TapAddrMode::Auto,
            desc: String::new(),
            mtu: 1290,
            routing: false,
            multicast: false,
            p2p: P2pMode::Enabled,
            register_interval: Duration::from_secs(20),
            register_ttl: 0,
            preferred_local: None,
            selection: Selection::Load,
            mgmt_password: crate::mgmt::DEFAULT_PASSWORD.to_owned(),
            traffic_rules: Vec::new(),
            verbosity: 2,
        }
    }
}

/// Why [`Edge::new`](super::Edge::new) refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeConfigError {
    /// No `-l`.
    #[error("no supernode given")]
    NoSupernode,
    /// `-i 0`.
    #[error("registration interval must be at least 1 s")]
    BadInterval,
    /// A cipher without a key, or a key with the null transform.
    #[error("transform {0} {1}")]
    Key(TransformId, &'static str),
    /// The payload transform could not be set up.
    #[error("transform setup failed: {0}")]
    Transform(String),
    /// A static TAP address of 0.0.0.0 or a prefix above 32.
    #[error("bad static TAP address {0}")]
    BadTapAddr(DevAddr),
    /// The MAC is multicast/broadcast.
    #[error("bad MAC address {0}")]
    BadMac(Mac),
    /// User/password authentication with a cipher other than ChaCha20 or
    /// Speck (C's rule and wording).
    #[error("user-password authentication requires ChaCha20 (-A4) or SPECK (-A5) to be used")]
    UserPasswordCipher,
}
