//! Shared helpers for the wire integration tests: locating and loading the
//! C n2n 3.1.1 vectors in `<repo>/../shared/vectors`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::{Path, PathBuf};

/// `<repo>/../shared/vectors/n2n-3.1.1`, found by walking up from the crate
/// directory (works for the main checkout and for worktrees), or from
/// `$N2N_VECTORS`. Panics (fails the test) when missing.
pub fn vectors_dir() -> PathBuf {
    if let Ok(p) = std::env::var("N2N_VECTORS") {
        let p = PathBuf::from(p);
        assert!(p.is_dir(), "N2N_VECTORS={} is not a directory", p.display());
        return p;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        let cand = dir.join("shared").join("vectors").join("n2n-3.1.1");
        if cand.is_dir() {
            return cand;
        }
    }
    panic!(
        "test vectors not found: no shared/vectors/n2n-3.1.1 beside any ancestor of {} \
         (expected <repo>/../shared/vectors); set N2N_VECTORS",
        manifest.display()
    );
}

/// One line of `decoded.jsonl`.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub scenario: String,
    pub i: usize,
    pub src: String,
    pub dst: String,
    pub he: String,
    pub ty: String,
    pub plain: Vec<u8>,
    pub frame: Option<Vec<u8>>,
    pub note: Option<String>,
}

/// Scenario folders (all but `unit-expected`), sorted.
pub fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("read vectors dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap() != "unit-expected")
        .collect();
    v.sort();
    assert!(
        v.len() >= 12,
        "expected at least 12 scenario folders, found {}",
        v.len()
    );
    v
}

/// All datagrams of one scenario.
pub fn load(scenario: &Path) -> Vec<Datagram> {
    let name = scenario.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(scenario.join("decoded.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", scenario.display()));
    let out: Vec<Datagram> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            Datagram {
                scenario: name.clone(),
                i: v["i"].as_u64().unwrap() as usize,
                src: s("src").unwrap(),
                dst: s("dst").unwrap(),
                he: s("he").unwrap(),
                ty: s("type").unwrap(),
                plain: hex::decode(s("plain_hex").unwrap()).unwrap(),
                frame: s("frame_hex").map(|h| hex::decode(h).unwrap()),
                note: s("note"),
            }
        })
        .collect();
    assert!(!out.is_empty(), "{name}: empty decoded.jsonl");
    out
}

/// Every datagram of every scenario.
pub fn all_datagrams() -> Vec<Datagram> {
    scenarios().iter().flat_map(|s| load(s)).collect()
}
