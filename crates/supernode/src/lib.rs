//! The n2n `supernode` daemon: command line ([`options`]) and the tokio
//! driver ([`driver`]) around the sans-IO `n2n_core::supernode::Supernode`
//! (which also answers the management port).

pub mod driver;
pub mod options;
