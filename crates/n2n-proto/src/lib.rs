//! `n2n-proto`: the n2n v3 protocol as spoken by C n2n 3.1.1, without I/O.
//!
//! Nothing in this crate reads a clock, the OS random number generator or a
//! socket: time stamps and random bytes are arguments.
// `deny`, not `forbid`: one module (`transform::dispatch`) calls
// `#[target_feature]` functions after run-time CPU detection, which needs
// `unsafe` and a scoped `#[allow(unsafe_code)]`.
#![deny(unsafe_code)]

pub mod auth;
pub mod compress;
pub mod crypto;
pub mod he;
pub mod pcap;
pub mod transform;
pub mod types;
pub mod wire;
