//! The `n2n-rs` packages (.deb and .rpm): this crate holds no code, only the
//! package metadata in its `Cargo.toml`. Build both packages with
//! `dist/build-packages.sh`, check them with `dist/check-packages.sh`.
