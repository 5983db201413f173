//! Payload compression (crypto.md §3).
