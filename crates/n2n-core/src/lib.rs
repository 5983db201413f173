//! `n2n-core`: sans-IO n2n edge and supernode state machines.
//!
//! Time, randomness and datagrams are inputs; transmits, TAP writes, events
//! and the next timeout are outputs. Nothing here reads a clock, the OS RNG or
//! a socket.
//!
//! Contract of [`edge::Edge`] and [`supernode::Supernode`]: mutate with
//! `handle_*` (and, for the edge, `encapsulate` / `decapsulate`), then drain
//! `poll_transmit` (handing each [`Datagram`] back with `recycle_transmit`
//! once sent, see [`output`]) and `poll_event` until both return `None`;
//! then ask `poll_timeout()` when to call `handle_timeout` next.
//!
//! With the `sim` feature, [`sim`] is a deterministic network simulator
//! (links, NATs, time warp) that runs both state machines.
#![forbid(unsafe_code)]

pub mod edge;
pub mod mgmt;
pub mod output;
#[cfg(feature = "sim")]
pub mod sim;
pub mod supernode;
pub mod time;

pub use output::{ConnId, Datagram, Dest};
pub use time::{MAX_DATAGRAM, Now, Transmit};
