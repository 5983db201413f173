//! Shared helpers for the wire integration tests: locating and loading the
//! C n2n 3.1.1 vectors in `crates/n2n-testdata/vectors`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::Path;

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
    n2n_testdata::scenario_dirs()
        .iter()
        .flat_map(|s| load(s))
        .collect()
}
