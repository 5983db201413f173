//! Test support shared by the workspace's test suites (not published):
//!
//! * the C n2n 3.1.1 captures, checked in under this crate's `vectors/`
//!   folder ([`vectors_dir`], [`captures_dir`], [`scenario_dirs`],
//!   [`scenarios`], [`jsonl`], [`read_json`], [`unhex`]);
//! * [`CountingAlloc`], a global allocator wrapper counting allocations per
//!   thread ([`allocations`], [`allocations_during`]);
//! * [`repo`]: the checkout's files and a scanner for paths leaving it;
//! * [`manpage`]: the man pages' options against a binary's `--help`.
//!
//! Everything here panics (fails the test loudly) when the vectors are
//! missing or malformed: tests must not pass vacuously.
#![allow(clippy::panic, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

pub use serde_json::Value;

pub mod manpage;
pub mod repo;

/// The capture set's folder name inside [`vectors_dir`].
pub const CAPTURE_SET: &str = "n2n-3.1.1";

/// The vectors directory: `crates/n2n-testdata/vectors` of this checkout,
/// found from this crate's own manifest directory (no path outside the
/// repository is ever searched).
///
/// `$N2N_VECTORS_DIR`, when set and not empty, overrides it (it may name the
/// vectors directory itself or its `n2n-3.1.1` folder), e.g. to run the
/// suites against a newer capture set. Panics when the folder lacks
/// `n2n-3.1.1`.
pub fn vectors_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("N2N_VECTORS_DIR").filter(|d| !d.is_empty()) {
        let p = PathBuf::from(d);
        if p.join(CAPTURE_SET).is_dir() {
            return p;
        }
        if p.file_name().is_some_and(|n| n == CAPTURE_SET)
            && p.is_dir()
            && let Some(parent) = p.parent()
        {
            return parent.to_path_buf();
        }
        panic!(
            "N2N_VECTORS_DIR={} is neither a vectors directory nor its {CAPTURE_SET} folder",
            p.display()
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    assert!(
        dir.join(CAPTURE_SET).is_dir(),
        "test vectors not found: {} has no {CAPTURE_SET} folder (it is part of the repository)",
        dir.display()
    );
    dir
}

/// `vectors/n2n-3.1.1`: the capture folders.
pub fn captures_dir() -> PathBuf {
    vectors_dir().join(CAPTURE_SET)
}

/// Every scenario folder of `n2n-3.1.1` (every folder but `unit-expected`),
/// sorted; asserts there are at least 12 and that each holds `capture.pcap`.
pub fn scenario_dirs() -> Vec<PathBuf> {
    let dir = captures_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "unit-expected"))
        .collect();
    v.sort();
    assert!(v.len() >= 12, "expected ≥ 12 scenarios, found {}", v.len());
    for p in &v {
        assert!(
            p.join("capture.pcap").is_file(),
            "{}: no capture.pcap",
            p.display()
        );
    }
    v
}

/// One line of a scenario's `packets.jsonl`: a captured UDP datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Seconds since the capture's start.
    pub t: f64,
    /// `ip:port` of the sender.
    pub src: String,
    /// `ip:port` of the receiver.
    pub dst: String,
    /// The UDP payload.
    pub bytes: Vec<u8>,
}

/// One C n2n 3.1.1 capture scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Folder name (`aes`, `federation-F`, ...).
    pub name: String,
    /// The folder.
    pub path: PathBuf,
    /// `manifest.json`.
    pub manifest: Value,
    /// `packets.jsonl`, in capture order.
    pub packets: Vec<Packet>,
    /// `decoded.jsonl`, one value per packet.
    pub decoded: Vec<Value>,
}

impl Scenario {
    /// Loads the scenario in `path`.
    pub fn load(path: &Path) -> Scenario {
        let name = path
            .file_name()
            .expect("scenario folder name")
            .to_string_lossy()
            .into_owned();
        let packets = jsonl(&path.join("packets.jsonl"))
            .iter()
            .map(|p| Packet {
                t: p["t"].as_f64().expect("packets.jsonl: t"),
                src: p["src"].as_str().expect("packets.jsonl: src").to_owned(),
                dst: p["dst"].as_str().expect("packets.jsonl: dst").to_owned(),
                bytes: unhex(p["hex"].as_str().expect("packets.jsonl: hex")),
            })
            .collect();
        Scenario {
            name,
            manifest: read_json(&path.join("manifest.json")),
            packets,
            decoded: jsonl(&path.join("decoded.jsonl")),
            path: path.to_path_buf(),
        }
    }
}

/// Every scenario of [`scenario_dirs`], loaded.
pub fn scenarios() -> Vec<Scenario> {
    scenario_dirs().iter().map(|p| Scenario::load(p)).collect()
}

/// The non-empty lines of a JSON-lines file.
pub fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// A JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Hex to bytes; panics on bad hex.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator forwarding to [`System`] and counting the calls to
/// `alloc` and `realloc` made by the current thread. Install it in a test
/// binary with
///
/// ```text
/// #[global_allocator]
/// static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

/// Allocations (and reallocations) made so far by this thread through
/// [`CountingAlloc`] (0 forever when it is not the global allocator).
pub fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

/// The allocations this thread makes while running `f`.
pub fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = allocations();
    f();
    allocations() - before
}

/// The 512-byte pattern `0, 1, .., 15, 0, 1, ..` of test-vectors.md §5.
pub fn pattern512() -> Vec<u8> {
    (0..512).map(|i| (i % 16) as u8).collect()
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// Mixed, partly compressible data: 64-byte blocks of zeros, text, short
/// runs and [`noise`].
pub fn sample(seed: u64, n: usize) -> Vec<u8> {
    let noise = noise(seed, n);
    (0..n)
        .map(|i| match (i / 64 + seed as usize) % 4 {
            0 => 0,
            1 => b"the quick brown fox "[i % 20],
            2 => (i % 7) as u8,
            _ => noise[i],
        })
        .collect()
}
