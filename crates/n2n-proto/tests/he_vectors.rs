//! The C n2n 3.1.1 captures (n2n-testdata's vectors/n2n-3.1.1): the pcap reader
//! must reproduce packets.jsonl, and header decryption must reproduce
//! decoded.jsonl byte for byte (and re-encryption the wire bytes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use n2n_proto::he::{self, CommunityHe, Decrypted, HeKeyKind, HeKeys};
use n2n_proto::pcap::{PcapReader, SkipCounts};
use serde_json::Value;

const USERPW_D: &str = "f052801e1d42d4809db60be35e0da259";
const USERPW_KEY_TIME: u32 = 1_795_606_466;

fn field(name: &[u8]) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..name.len()].copy_from_slice(name);
    f
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("missing {k} in {v}"))
}

struct Datagram {
    ts_sec: u32,
    ts_usec: u32,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: Vec<u8>,
}

fn read_capture(dir: &Path) -> Vec<Datagram> {
    let file = std::fs::read(dir.join("capture.pcap")).unwrap();
    let mut r = PcapReader::new(&file).unwrap();
    assert_eq!(r.link_type(), 1);
    let out: Vec<Datagram> = (&mut r)
        .map(|d| {
            let d = d.unwrap();
            Datagram {
                ts_sec: d.ts_sec,
                ts_usec: d.ts_usec,
                src: d.src,
                dst: d.dst,
                bytes: d.payload.to_vec(),
            }
        })
        .collect();
    // The capture filter was `udp`: nothing may have been skipped.
    assert_eq!(r.skipped(), SkipCounts::default(), "{}", dir.display());
    out
}

#[test]
fn pcap_reader_matches_packets_jsonl() {
    for dir in n2n_testdata::scenario_dirs() {
        let caps = read_capture(&dir);
        let pk = n2n_testdata::jsonl(&dir.join("packets.jsonl"));
        let name = dir.display();
        assert_eq!(caps.len(), pk.len(), "{name}: datagram count");
        assert!(!caps.is_empty());
        let t0 = f64::from(caps[0].ts_sec) + f64::from(caps[0].ts_usec) * 1e-6;
        for (i, (c, p)) in caps.iter().zip(&pk).enumerate() {
            assert_eq!(
                c.src,
                s(p, "src").parse::<SocketAddr>().unwrap(),
                "{name} #{i}"
            );
            assert_eq!(
                c.dst,
                s(p, "dst").parse::<SocketAddr>().unwrap(),
                "{name} #{i}"
            );
            assert_eq!(hex::encode(&c.bytes), s(p, "hex"), "{name} #{i}");
            let t = f64::from(c.ts_sec) + f64::from(c.ts_usec) * 1e-6 - t0;
            let want = p["t"].as_f64().unwrap();
            assert!((t - want).abs() < 2e-6, "{name} #{i}: t {t} vs {want}");
        }
    }
}

/// The federation name field of a scenario, from its manifest: the hex
/// buffer named in the `-F` quirk note, else the default `*Federation`.
fn federation_field(dir: &Path) -> [u8; 20] {
    let m: Value = n2n_testdata::read_json(&dir.join("manifest.json"));
    let fed = &m["federation"];
    if let Some(q) = fed["header_encryption_quirk"].as_str() {
        let tok = q
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|t| t.len() == 40)
            .expect("20-byte hex buffer in the quirk note");
        hex::decode(tok).unwrap().try_into().unwrap()
    } else {
        assert!(s(fed, "name").starts_with("*Federation"), "{fed}");
        he::DEFAULT_FEDERATION_FIELD
    }
}

struct Ctx {
    rocks: CommunityHe,
    rocks_static_only: CommunityHe,
    fed: CommunityHe,
    /// Keys from the federation's own (renamed) field: must never work in
    /// federation-F (quirk 1).
    fed_own_keys: CommunityHe,
    userpw: bool,
}

fn ctx(dir: &Path) -> Ctx {
    let scen = dir.file_name().unwrap().to_str().unwrap();
    let userpw = scen == "userpw-auth";
    let rocks20 = field(b"rocks");
    let mut rocks = CommunityHe::new(rocks20);
    if userpw {
        let d: [u8; 16] = hex::decode(USERPW_D).unwrap().try_into().unwrap();
        rocks.set_dynamic_key(&d);
    }
    let fed20 = if scen.starts_with("federation") {
        federation_field(dir)
    } else {
        he::DEFAULT_FEDERATION_FIELD
    };
    Ctx {
        rocks,
        rocks_static_only: CommunityHe::new(rocks20),
        fed: CommunityHe::with_static_keys(
            fed20,
            HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
        ),
        fed_own_keys: CommunityHe::new(fed20),
        userpw,
    }
}

/// Decrypting must fail and leave the buffer untouched.
fn must_fail(c: &CommunityHe, wire: &[u8], what: &str) {
    let mut b = wire.to_vec();
    assert!(
        c.decrypt(&mut b).is_err(),
        "{what}: decrypted under wrong keys"
    );
    assert_eq!(b, wire, "{what}: buffer modified by a failed attempt");
}

/// Check a decryption against the ground truth, then re-encrypt the plain
/// bytes with the recovered stamp and random bytes: must give the wire bytes.
fn check_decrypted(
    c: &CommunityHe,
    kind: HeKeyKind,
    wire: &[u8],
    buf: &[u8],
    d: Decrypted,
    plain: &[u8],
    what: &str,
) {
    assert_eq!(d.len, plain.len(), "{what}: length");
    assert_eq!(
        hex::encode(&buf[..d.len]),
        hex::encode(plain),
        "{what}: plain"
    );
    assert_eq!(buf[d.len..], wire[d.len..], "{what}: trailer touched");
    let mut re = plain.to_vec();
    c.encrypt(&mut re, d.header_len, d.stamp, d.rand4, kind)
        .unwrap();
    assert_eq!(
        hex::encode(&re),
        hex::encode(&wire[..d.len]),
        "{what}: re-encryption"
    );
}

#[test]
fn header_decryption_matches_decoded_jsonl() {
    let mut total = [0usize; 4]; // none, static, dynamic, federation
    for dir in n2n_testdata::scenario_dirs() {
        let caps = read_capture(&dir);
        let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(caps.len(), dec.len(), "{name}: decoded.jsonl count");
        let cx = ctx(&dir);
        // Last accepted stamp per sending socket: every C process issues
        // strictly increasing stamps, so no jitter is needed.
        let mut prev: HashMap<SocketAddr, u64> = HashMap::new();

        for (i, (cap, d)) in caps.iter().zip(&dec).enumerate() {
            let what = format!("{name} #{i} {} {}", s(d, "he"), s(d, "type"));
            assert_eq!(d["i"].as_u64(), Some(i as u64));
            let wire = &cap.bytes[..];
            let plain = hex::decode(s(d, "plain_hex")).unwrap();
            let now = he::stamp_from_unix(u64::from(cap.ts_sec), cap.ts_usec);
            let mut buf = wire.to_vec();
            let (comm, want_kind, slot) = match s(d, "he") {
                "none" => {
                    assert_eq!(wire, &plain[..], "{what}");
                    assert!(he::looks_plain(wire), "{what}");
                    must_fail(&cx.rocks, wire, &what);
                    must_fail(&cx.fed, wire, &what);
                    total[0] += 1;
                    continue;
                }
                "static" if cx.userpw => (&cx.rocks, HeKeyKind::Static, 1),
                // Without a dynamic key the first (full-length) attempt uses
                // the static keys and is reported as `Dynamic`.
                "static" => (&cx.rocks, HeKeyKind::Dynamic, 1),
                "dynamic" => {
                    assert!(cx.userpw);
                    must_fail(&cx.rocks_static_only, wire, &what);
                    (&cx.rocks, HeKeyKind::Dynamic, 2)
                }
                "federation" => {
                    must_fail(&cx.rocks, wire, &what);
                    if name == "federation-F" {
                        must_fail(&cx.fed_own_keys, wire, &what);
                    }
                    (&cx.fed, HeKeyKind::Dynamic, 3)
                }
                other => panic!("{what}: unknown he {other}"),
            };
            total[slot] += 1;
            assert!(!he::looks_plain(wire), "{what}");
            if slot != 3 {
                must_fail(&cx.fed, wire, &what);
            }

            let (kind, dd) = comm
                .decrypt(&mut buf)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(kind, want_kind, "{what}");
            check_decrypted(comm, kind, wire, &buf, dd, &plain, &what);

            // The free functions agree.
            let keys = comm.keys(kind);
            let mut b2 = wire.to_vec();
            let d2 = if cx.userpw && kind == HeKeyKind::Static {
                assert_eq!(wire.len(), plain.len() + he::TRAILER_LEN, "{what}");
                // A full-length attempt with the right keys sees the trailer
                // in the checksum and must fail without damage.
                let mut b3 = wire.to_vec();
                assert!(he::decrypt(&mut b3, keys, comm.name_field()).is_err());
                assert_eq!(b3, wire);
                he::decrypt_without_trailer(&mut b2, keys, comm.name_field()).unwrap()
            } else {
                he::decrypt(&mut b2, keys, comm.name_field()).unwrap()
            };
            assert_eq!(d2, dd);
            assert_eq!(b2, buf);

            // Header length: the whole message, or the PACKET header
            // (+16 in user/password communities).
            if s(d, "type") == "PACKET" {
                let note = s(d, "note");
                let h: usize = note.rsplit("header_len=").next().unwrap().parse().unwrap();
                let want = if cx.userpw {
                    h + 16.min(plain.len() - h)
                } else {
                    h
                };
                assert_eq!(dd.header_len, want, "{what}");
            } else {
                assert_eq!(dd.header_len, plain.len(), "{what}");
            }

            // Time stamp: within ±16 s of the capture time, and strictly
            // increasing per sender.
            he::verify_stamp(dd.stamp, now, None, false).unwrap_or_else(|e| panic!("{what}: {e}"));
            let p = prev.entry(cap.src).or_insert_with(|| he::initial_prev(now));
            he::verify_stamp(dd.stamp, now, Some(p), false)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            // ... and a replay of it is refused.
            let mut p2 = *p;
            assert_eq!(
                he::verify_stamp(dd.stamp, now, Some(&mut p2), false),
                Err(he::HeError::StampReplayed),
                "{what}"
            );
            // A receiver whose clock is 16 s off refuses it.
            assert_eq!(
                he::verify_stamp(dd.stamp, now + he::FRAME + (1 << 32), None, false),
                Err(he::HeError::StampOutOfWindow)
            );
        }
    }
    // Every kind was exercised (the numbers are from the vector README/jsonl).
    assert!(total[0] > 100, "{total:?}");
    assert_eq!(total[1], 37 + 37 + 4, "{total:?}");
    assert_eq!(total[2], 33, "{total:?}");
    assert_eq!(total[3], 12, "{total:?}");
}

#[test]
fn userpw_dynamic_key_from_formula() {
    let d = he::dynamic_key(&field(b"rocks"), &field(b"*rocksFed\0n"), USERPW_KEY_TIME);
    assert_eq!(hex::encode(d), USERPW_D);
    // The federation field recorded in the federation-F manifest is that buffer.
    let f = federation_field(&n2n_testdata::captures_dir().join("federation-F"));
    assert_eq!(f, field(b"*rocksFed\0n"));
    assert_eq!(
        hex::encode(he::dynamic_key(&field(b"rocks"), &f, USERPW_KEY_TIME)),
        USERPW_D
    );
}
