//! Every PACKET of every C n2n 3.1.1 capture decrypts (and decompresses) to
//! the frame the C library produced (`decoded.jsonl`: `plain_hex` is the
//! datagram with the header already decrypted, `frame_hex` the expected
//! Ethernet frame). The payload is located here without the wire codec:
//! header length 38, or 46 when the flags word has the socket bit 0x40.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::compress::{CompressionId, Decompressor, MAX_FRAME_SIZE};
use n2n_proto::transform::{NonceSeed, Transform, TransformId};
use std::path::{Path, PathBuf};

struct Scenario {
    name: String,
    transform: Transform,
    packets: Vec<(usize, Vec<u8>, Vec<u8>)>, // (index, plain datagram, frame)
}

fn load(dir: &Path) -> Scenario {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let manifest: serde_json::Value = n2n_testdata::read_json(&dir.join("manifest.json"));
    let id = manifest["transform"]["id"].as_u64().unwrap();
    let id = TransformId::from_wire(u8::try_from(id).unwrap()).unwrap();
    let key = manifest["key"].as_str().unwrap_or("");
    let community = manifest["community"].as_str().unwrap();
    let mut field = [0u8; 20];
    field[..community.len()].copy_from_slice(community.as_bytes());
    let seed = NonceSeed {
        prefix: 0,
        start: 0,
    };
    let transform = Transform::new(id, key.as_bytes(), &field, seed).unwrap();

    let text = std::fs::read_to_string(dir.join("decoded.jsonl")).unwrap();
    let mut packets = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] != "PACKET" {
            continue;
        }
        let plain = hex::decode(v["plain_hex"].as_str().unwrap()).unwrap();
        let frame = hex::decode(v["frame_hex"].as_str().unwrap()).unwrap();
        packets.push((v["i"].as_u64().unwrap() as usize, plain, frame));
    }
    Scenario {
        name,
        transform,
        packets,
    }
}

#[test]
fn every_captured_packet_decodes() {
    let root = n2n_testdata::vectors_dir().join("n2n-3.1.1");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("decoded.jsonl").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 12,
        "expected all capture folders in {}",
        root.display()
    );

    let mut dec = Decompressor::new();
    let mut total = 0;
    let mut by_comp = [0usize; 4];
    let mut by_transform = [0usize; 8];
    for dir in &dirs {
        let s = load(dir);
        assert!(!s.packets.is_empty(), "{}: no PACKET", s.name);
        for (i, plain, frame) in &s.packets {
            let flags = u16::from_be_bytes([plain[2], plain[3]]);
            let hl = if flags & 0x40 != 0 { 46 } else { 38 };
            let comp = plain[hl - 2];
            let tid = plain[hl - 1];
            assert_eq!(
                tid,
                s.transform.id().to_wire(),
                "{} #{i}: transform id",
                s.name
            );
            let payload = &plain[hl..];

            let mut clear = vec![0u8; payload.len()];
            let d = s.transform.decrypt(payload, &[], &mut clear).unwrap();
            assert_eq!(d.len, payload.len() - s.transform.overhead());
            let comp = CompressionId::from_wire(comp).unwrap();
            let mut out = vec![0u8; MAX_FRAME_SIZE];
            let n = dec.decompress(comp, &clear[..d.len], &mut out).unwrap();
            assert_eq!(
                hex::encode(&out[..n]),
                hex::encode(frame),
                "{} packet #{i} ({comp:?})",
                s.name
            );
            total += 1;
            by_comp[comp.to_wire() as usize] += 1;
            by_transform[tid as usize] += 1;
        }
    }
    eprintln!("{total} packets; by compression {by_comp:?}; by transform {by_transform:?}");
    assert!(total >= 250, "{total}");
    // LZO and zstd frames from C n2n were among them, and all five transforms.
    assert!(by_comp[2] >= 2 && by_comp[3] >= 2, "{by_comp:?}");
    for (t, n) in by_transform.iter().enumerate().take(6).skip(1) {
        assert!(*n > 0, "transform {t} not covered");
    }
}

/// Re-encrypting a captured frame with our encoder and the captured
/// preamble/IV reproduces the captured payload byte for byte (transforms
/// 2..5, packets with compression id 1). The IV of ChaCha20/Speck is in
/// clear; the AES/Twofish preamble R is recovered as `D(C_1)` (CBC with a
/// zero IV: `C_1 = E(R)`), using the reference cipher crates.
#[test]
fn encoder_reproduces_captured_payloads() {
    use aes::cipher::{BlockCipherDecrypt, KeyInit};
    let root = n2n_testdata::vectors_dir().join("n2n-3.1.1");
    let h = n2n_proto::crypto::pearson::hash256(b"s3cret");
    let aes_ref = aes::Aes128::new_from_slice(&h[16..]).unwrap(); // 6-char key
    let tf_ref = twofish::Twofish::new_from_slice(&h).unwrap();
    let mut checked = 0;
    for name in ["aes", "twofish", "chacha20", "speck"] {
        let mut s = load(&root.join(name));
        for (i, plain, frame) in &s.packets {
            let flags = u16::from_be_bytes([plain[2], plain[3]]);
            let hl = if flags & 0x40 != 0 { 46 } else { 38 };
            if plain[hl - 2] != 1 {
                continue;
            }
            let payload = &plain[hl..];
            assert!(payload.len() >= 32);
            let mut rand = [0u8; 16];
            rand.copy_from_slice(&payload[..16]);
            match s.transform.id() {
                TransformId::Aes => aes_ref.decrypt_block((&mut rand).into()),
                TransformId::Twofish => tf_ref.decrypt_block((&mut rand).into()),
                _ => {}
            }
            let mut out = vec![0u8; payload.len()];
            let n = s.transform.encrypt(frame, rand, &[], &mut out).unwrap();
            assert_eq!(hex::encode(&out[..n]), hex::encode(payload), "{name} #{i}");
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");
}
