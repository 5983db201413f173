//! The supernode: community list, auto-IP and the sans-IO state machine
//! ([`Supernode`]).

pub mod autoip;
pub mod community_list;
pub mod regex;

mod core;
mod edges;
mod mgmt;
mod outq;
pub mod stats;

pub use self::core::{
    CommunityInfo, DEFAULT_VERBOSITY, DEFAULT_VERSION, EDGE_TIMEOUT, EdgeInfo, PURGE_INTERVAL,
    REGISTRATION_LIFETIME, Supernode, SupernodeConfig, SupernodeEvent, federation_field,
};
pub use edges::HeState;
pub use mgmt::{MgmtAction, MgmtOutcome, ReloadRequest};
pub use stats::{DropReason, RefuseReason, SupernodeStats};
