//! `n2n-proto`: the n2n v3 protocol as spoken by C n2n 3.1.1, without I/O.
//!
//! Nothing in this crate reads a clock, the OS random number generator or a
//! socket: time stamps and random bytes are arguments.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod he;
pub mod pcap;
pub mod types;
pub mod wire;
