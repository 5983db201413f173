//! The n2n `supernode` daemon: command line ([`options`]) and the tokio
//! driver ([`driver`]) around the sans-IO `n2n_core::supernode::Supernode`
//! (which also answers the management port). OS calls are in `n2n-sys`.
#![forbid(unsafe_code)]

pub mod driver;
pub mod options;
