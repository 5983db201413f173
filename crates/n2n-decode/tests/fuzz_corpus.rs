//! Seed corpus of the fuzz targets (`fuzz/corpus/<target>/`), made from the
//! C n2n 3.1.1 vectors: one file per datagram (duplicates dropped).
//!
//! * `decode_any`: every datagram with its header in clear (decoded.jsonl
//!   `plain_hex`), plus the raw bytes of header-encrypted ones;
//! * `header_decrypt`: every datagram as captured (packets.jsonl);
//! * `decrypt_packet`: every PACKET payload (transformed, as on the wire);
//! * `decompress`: the compressed frames of `aes-lzo` / `aes-zstd` (payload
//!   decrypted with the vectors' key) and their frames uncompressed.
//!
//! `N2N_WRITE_FUZZ_CORPUS=1 cargo test -p n2n-decode --test fuzz_corpus`
//! (re)writes the files; without it the test checks that every seed is
//! committed with the right bytes (fuzzing may add more files).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use n2n_proto::compress::{self, CompressionId};
use n2n_proto::transform::{NonceSeed, Transform, TransformId};
use n2n_proto::wire::{self, Message};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[derive(Default)]
struct Seeds {
    files: BTreeMap<(&'static str, String), Vec<u8>>,
    seen: HashSet<(&'static str, Vec<u8>)>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, name: String, bytes: Vec<u8>) {
        if self.seen.insert((target, bytes.clone())) {
            self.files.insert((target, name), bytes);
        }
    }
}

fn seeds() -> Seeds {
    let mut s = Seeds::default();
    let dirs = n2n_testdata::scenario_dirs();
    let mut community = [0u8; 20];
    community[..5].copy_from_slice(b"rocks");
    for dir in dirs {
        let scen = dir.file_name().unwrap().to_string_lossy().into_owned();
        let pk = n2n_testdata::jsonl(&dir.join("packets.jsonl"));
        let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
        assert_eq!(pk.len(), dec.len());
        for (i, (p, d)) in pk.iter().zip(&dec).enumerate() {
            let name = format!("{scen}-{i:03}");
            let wire_bytes = hex::decode(p["hex"].as_str().unwrap()).unwrap();
            let plain = hex::decode(d["plain_hex"].as_str().unwrap()).unwrap();
            s.add("header_decrypt", name.clone(), wire_bytes.clone());
            s.add("decode_any", name.clone(), plain.clone());
            if d["he"] != "none" {
                s.add("decode_any", format!("{name}-wire"), wire_bytes);
            }
            let Ok((_, Message::Packet(pkt))) = wire::decode(&plain) else {
                continue;
            };
            s.add("decrypt_packet", name.clone(), pkt.payload.to_vec());
            let Some(cid) = CompressionId::from_wire(pkt.compression) else {
                continue;
            };
            if cid == CompressionId::None {
                continue;
            }
            // Undo the transform (key from the manifest) to get the
            // compressed frame, and check it against the ground truth.
            let m: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                    .unwrap();
            let key = m["key"].as_str().unwrap();
            let id = TransformId::from_wire(pkt.transform).unwrap();
            let t = Transform::new(
                id,
                key.as_bytes(),
                &community,
                NonceSeed {
                    prefix: 0,
                    start: 0,
                },
            )
            .unwrap();
            let mut out = vec![0u8; pkt.payload.len()];
            let dd = t.decrypt(pkt.payload, &[], &mut out).unwrap();
            let compressed = out[..dd.len].to_vec();
            let mut frame = vec![0u8; compress::MAX_FRAME_SIZE];
            let n = compress::decompress(cid, &compressed, &mut frame).unwrap();
            assert_eq!(
                hex::encode(&frame[..n]),
                d["frame_hex"].as_str().unwrap(),
                "{name}: decompressed frame"
            );
            s.add("decompress", name.clone(), compressed);
            s.add("decompress", format!("{name}-frame"), frame[..n].to_vec());
        }
    }
    s
}

#[test]
fn fuzz_seed_corpus_is_committed() {
    let s = seeds();
    let root = corpus_dir();
    let write = std::env::var_os("N2N_WRITE_FUZZ_CORPUS").is_some();
    let mut per_target: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((target, name), bytes) in &s.files {
        let path = root.join(target).join(name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            let got = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; regenerate with N2N_WRITE_FUZZ_CORPUS=1 cargo test -p n2n-decode --test fuzz_corpus",
                    path.display()
                )
            });
            assert_eq!(got, *bytes, "{}: stale seed", path.display());
        }
        let e = per_target.entry(target).or_default();
        e.0 += 1;
        e.1 += bytes.len();
    }
    // Every target has seeds, and the corpus stays small.
    for t in [
        "decode_any",
        "header_decrypt",
        "decrypt_packet",
        "decompress",
    ] {
        let (n, _) = per_target.get(t).copied().unwrap_or_default();
        assert!(n >= 10, "{t}: only {n} seeds ({per_target:?})");
    }
    let total: usize = per_target.values().map(|v| v.1).sum();
    assert!(total < 400_000, "seed corpus too large: {total} bytes");
}
