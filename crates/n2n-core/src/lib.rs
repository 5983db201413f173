//! `n2n-core`: sans-IO n2n edge and supernode state machines.
//!
//! Time, randomness and datagrams are inputs; transmits, TAP writes, events
//! and the next timeout are outputs. Nothing here reads a clock, the OS RNG or
//! a socket.
#![forbid(unsafe_code)]

pub mod config;
pub mod edge;
pub mod mgmt;
#[cfg(feature = "sim")]
pub mod sim;
pub mod supernode;
pub mod time;

pub use time::{MAX_DATAGRAM, Now, Transmit};
