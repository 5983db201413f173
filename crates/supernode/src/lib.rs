//! The n2n `supernode` daemon: command line ([`options`]), management
//! requests that need no core state ([`mgmt`]) and the tokio driver
//! ([`driver`]) with the seam where the sans-IO
//! `n2n_core::supernode::Supernode` plugs in.

pub mod driver;
pub mod mgmt;
pub mod options;
