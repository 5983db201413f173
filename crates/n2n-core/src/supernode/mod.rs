//! Supernode building blocks (the state machine plugs in here).

pub mod autoip;
pub mod community_list;
pub mod regex;
