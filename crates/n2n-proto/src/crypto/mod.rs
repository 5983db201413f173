//! Cryptographic primitives written for n2n (no I/O, no RNG).
pub mod pearson;
pub mod speck;
