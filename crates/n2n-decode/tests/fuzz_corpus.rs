//! Seed corpus of the fuzz targets (`fuzz/corpus/<target>/`), made from the
//! C n2n 3.1.1 vectors: one file per datagram (duplicates dropped).
//!
//! * `decode_any`: every datagram with its header in clear (decoded.jsonl
//!   `plain_hex`), plus the raw bytes of header-encrypted ones;
//! * `header_decrypt`: every datagram as captured (packets.jsonl);
//! * `decrypt_packet`: every PACKET payload (transformed, as on the wire);
//! * `decompress`: the compressed frames of `aes-lzo` / `aes-zstd` (payload
//!   decrypted with the vectors' key) and their frames uncompressed;
//! * `tcp_deframe`: 4 chunk-size bytes, then the first datagrams of each
//!   scenario TCP-framed, plus hostile streams (oversize and zero lengths,
//!   the largest frame, a partial frame);
//! * `userpw_auth`: from `userpw-auth`, every REGISTER_SUPER, ACK and
//!   UNREGISTER_SUPER as captured, their 48-byte tokens, each ACK's answer
//!   followed by the challenge it echoes (checked here with alice's and
//!   bob's keys), and the community file's key texts.
//!
//! `N2N_WRITE_FUZZ_CORPUS=1 cargo test -p n2n-decode --test fuzz_corpus`
//! (re)writes the files; without it the test checks that every seed is
//! committed with the right bytes (fuzzing may add more files).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use n2n_proto::auth::{self, AnswerToken, PrivateKey, UserKeys, UserToken};
use n2n_proto::compress::{self, CompressionId};
use n2n_proto::he::{self, HeKeys};
use n2n_proto::transform::{NonceSeed, Transform, TransformId};
use n2n_proto::wire::{self, Message, tcp};
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
    tcp_seeds(&mut s);
    userpw_seeds(&mut s);
    s
}

fn tcp_stream(chunk_sizes: [u8; 4], msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = chunk_sizes.to_vec();
    let mut buf = [0u8; tcp::TCP_MAX_FRAME_LEN];
    for m in msgs {
        let n = tcp::encode_frame(m, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// `tcp_deframe` seeds: the fuzz input is 4 chunk-size bytes, then the stream.
fn tcp_seeds(s: &mut Seeds) {
    for (k, dir) in n2n_testdata::scenario_dirs().iter().enumerate() {
        let scen = dir.file_name().unwrap().to_string_lossy().into_owned();
        let pk = n2n_testdata::jsonl(&dir.join("packets.jsonl"));
        let msgs: Vec<Vec<u8>> = pk
            .iter()
            .take(6)
            .map(|p| hex::decode(p["hex"].as_str().unwrap()).unwrap())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let k = k as u8;
        s.add(
            "tcp_deframe",
            scen,
            tcp_stream([k, 3 * k + 1, 0, 255 - k], &refs),
        );
    }
    let max = vec![0x5a; tcp::TCP_MAX_MESSAGE_LEN];
    s.add(
        "tcp_deframe",
        "max-frame".into(),
        tcp_stream([255; 4], &[&max, b"x"]),
    );
    let mut over = tcp_stream([0; 4], &[b"ok"]);
    over.extend_from_slice(&[0x07, 0xff, 1, 2, 3]);
    s.add("tcp_deframe", "oversize".into(), over);
    let mut zero = tcp_stream([1, 2, 3, 4], &[b"abc"]);
    zero.extend_from_slice(&[0, 0, 0, 1, 9]);
    s.add("tcp_deframe", "zero-length".into(), zero);
    let mut partial = tcp_stream([0, 0, 0, 0], &[b"one", b"two"]);
    partial.extend_from_slice(&[0x01, 0x00, 1, 2, 3]);
    s.add("tcp_deframe", "partial".into(), partial);
}

/// `userpw_auth` seeds from the `userpw-auth` capture. The fuzz target's
/// fixed keys are alice's (federation rocksFed), so her ACK seed (answer ‖
/// challenge) opens.
fn userpw_seeds(s: &mut Seeds) {
    let dir = n2n_testdata::captures_dir().join("userpw-auth");
    let m = n2n_testdata::read_json(&dir.join("manifest.json"));
    let pk = n2n_testdata::jsonl(&dir.join("packets.jsonl"));
    let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
    let fed20 = auth::federation_field_from_option(b"rocksFed");
    let prv_f = PrivateKey::federation(auth::federation_key_name(&fed20));
    let mut edges = HashMap::new();
    for (user, u) in m["auth"]["users"].as_object().unwrap() {
        let ul = &m["underlay"][u["edge"].as_str().unwrap()];
        let sock = format!("{}:{}", ul["ip"].as_str().unwrap(), ul["udp_port"]);
        let keys = UserKeys::new(
            user.as_bytes(),
            u["password"].as_str().unwrap().as_bytes(),
            &prv_f.public_key(),
        );
        edges.insert(sock, keys);
    }
    let dk = &m["auth"]["dynamic_key"];
    let mut community = [0u8; 20];
    community[..5].copy_from_slice(b"rocks");
    let d = auth::dynamic_key(&community, &fed20, dk["key_time"].as_u64().unwrap() as u32);
    assert_eq!(hex::encode(d), dk["key_hex"].as_str().unwrap());
    let static_keys = HeKeys::from_community_field(&community);
    let mut last = HashMap::new();
    let mut acks = 0;
    for (i, (p, dd)) in pk.iter().zip(&dec).enumerate() {
        let wire_bytes = hex::decode(p["hex"].as_str().unwrap()).unwrap();
        let plain = hex::decode(dd["plain_hex"].as_str().unwrap()).unwrap();
        let name = format!("userpw-auth-{i:03}");
        let (src, dst) = (p["src"].as_str().unwrap(), p["dst"].as_str().unwrap());
        match wire::decode(&plain) {
            Ok((_, Message::RegisterSuper(rs))) => {
                let t = UserToken::from_auth(&rs.auth).unwrap();
                let keys = &edges[src];
                assert_eq!(keys.secret().verify_trailer(&wire_bytes), Ok(()));
                last.insert(src.to_owned(), t.challenge(keys.secret()));
                s.add("userpw_auth", name.clone(), wire_bytes);
                s.add(
                    "userpw_auth",
                    format!("{name}-token"),
                    t.as_bytes().to_vec(),
                );
            }
            Ok((_, Message::RegisterSuperAck(ack))) => {
                let a = AnswerToken::from_auth(&ack.auth).unwrap();
                let keys = &edges[dst];
                let c = last[dst];
                assert_eq!(keys.secret().open_answer(&a, &c), Ok(d), "{name}");
                let mut buf = wire_bytes.clone();
                assert!(he::decrypt_without_trailer(&mut buf, &static_keys, &community).is_ok());
                let mut seed = a.as_bytes().to_vec();
                seed.extend_from_slice(&c);
                s.add("userpw_auth", name.clone(), wire_bytes);
                s.add("userpw_auth", format!("{name}-answer"), seed);
                acks += 1;
            }
            Ok((_, Message::UnregisterSuper(un))) => {
                let t = UserToken::from_auth(&un.auth).unwrap();
                s.add("userpw_auth", name.clone(), wire_bytes);
                s.add(
                    "userpw_auth",
                    format!("{name}-token"),
                    t.as_bytes().to_vec(),
                );
            }
            _ => {}
        }
    }
    assert_eq!(acks, 2);
    let list = std::fs::read_to_string(dir.join("community.list")).unwrap();
    for (k, line) in list.lines().enumerate() {
        if let Some(key) = line.split_whitespace().nth(2) {
            s.add(
                "userpw_auth",
                format!("userpw-auth-key-{k}"),
                key.as_bytes().to_vec(),
            );
        }
    }
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
        "tcp_deframe",
        "userpw_auth",
    ] {
        let (n, _) = per_target.get(t).copied().unwrap_or_default();
        assert!(n >= 10, "{t}: only {n} seeds ({per_target:?})");
    }
    let total: usize = per_target.values().map(|v| v.1).sum();
    assert!(total < 400_000, "seed corpus too large: {total} bytes");
}
