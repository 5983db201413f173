#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! The n2n edge daemon's I/O side: command line and configuration files
//! ([`cli`], on the shared `n2n_cli` stack), the mapping to the core's
//! configuration ([`config`]), supernode name resolution ([`resolve`]), the
//! Linux TAP device ([`tap`]), the `--up-script`/`--down-script` hooks ([`hooks`]), the sockets ([`sock`]) and the tokio
//! [`driver`] that runs the sans-IO `n2n_core::edge::Edge` between them
//! (offload work on the bytes in `n2n-offload`, OS calls in `n2n-sys`).
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod driver;
pub mod hooks;
pub mod resolve;
pub mod sock;
pub mod tap;
