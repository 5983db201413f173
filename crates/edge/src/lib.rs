#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! The n2n edge daemon's I/O side: command line and configuration files
//! ([`cli`]), traffic rules ([`rules`]), the Linux TAP device ([`tap`]) and the
//! main UDP socket ([`sock`]). The protocol itself lives in the sans-IO
//! `n2n_core` edge state machine; the `edge` binary drives it.

pub mod cli;
mod getopt;
pub mod rules;
pub mod sock;
pub mod tap;
