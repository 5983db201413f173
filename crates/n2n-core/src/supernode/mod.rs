//! The supernode: community list, auto-IP and the sans-IO state machine
//! ([`Supernode`]).
//!
//! # Extension: RE_REGISTER_SUPER to unregistered senders
//!
//! A restarted supernode knows no edge; C edges only re-register at their
//! next regular REGISTER_SUPER (`-i`, 20 s by default), so relayed traffic
//! would stay down that long. When this supernode receives a PACKET,
//! REGISTER or QUERY_PEER (not a PING) in an existing or allowed community
//! from a sender that is not registered there (source MAC unknown, or
//! registered at another socket), it answers that socket with
//! RE_REGISTER_SUPER (type 12, header only, flags FROM_SUPERNODE,
//! header-encrypted with the community's dynamic key when the community uses
//! header encryption), at most once per socket per second
//! ([`RE_REGISTER_MIN_GAP`], fixed table of [`RE_REGISTER_SLOTS`] slots:
//! no allocation under a flood of spoofed sources; suppressed answers are
//! counted in [`SupernodeStats::re_register_limited`]). The datagram itself
//! is still relayed or dropped as before.
//!
//! This is wire compatible: the message is a valid n2n v3 RE_REGISTER_SUPER.
//! C edges ignore it unless they use user/password authentication
//! (behaviour.md §2.3), in which case they re-register, which is what is
//! wanted. This crate's edge accepts it from its current supernode also
//! without user/password and re-registers at once (rate-limited).
//!
//! Limit: only a sender can be told. An edge that sends nothing through the
//! restarted supernode (e.g. the silent receiver of one-way traffic) is known
//! again only after its own next regular REGISTER_SUPER.

pub mod autoip;
pub mod community_list;
pub mod regex;

mod communities;
mod config;
mod core;
mod edges;
mod federation;
mod forward;
mod intake;
mod io;
mod mgmt;
mod register;
mod reregister;
pub mod stats;
mod users;

pub use self::config::{
    DEFAULT_MAX_COMMUNITIES, DEFAULT_MAX_EDGES, DEFAULT_MAX_EDGES_PER_COMMUNITY, DEFAULT_VERBOSITY,
    DEFAULT_VERSION, SupernodeConfig, federation_field, federation_field_over,
};
pub use self::core::{CommunityInfo, EdgeInfo, Supernode, SupernodeEvent};
pub use self::federation::{
    ASSOC_TIMEOUT, DEFAULT_MAX_FEDERATION, FED_FORWARD_WITHIN, FED_INTERVAL, FED_LIST_WITHIN,
    FED_PURGE_AFTER, FED_REREGISTER_AFTER, FederationInfo, FederationPeer, MAX_ASSOCIATIONS,
};
pub use self::register::REGISTRATION_LIFETIME;
pub use edges::{EDGE_TIMEOUT, HeState, PURGE_INTERVAL};
pub use mgmt::{MgmtAction, MgmtOutcome, ReloadRequest};
pub use reregister::{RE_REGISTER_MIN_GAP, RE_REGISTER_SLOTS};
pub use stats::{DropReason, RefuseReason, SupernodeStats};
