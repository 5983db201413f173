//! End-to-end decode of every C n2n 3.1.1 capture with the public API only:
//! `pcap` reads the datagrams, `he` removes header encryption where the
//! scenario uses it (keys and name fields derived from manifest.json, the
//! receiver's clock taken from the capture time and every stamp checked with
//! `he::verify_stamp`), `wire::decode` must give exactly decoded.jsonl's type
//! and header fields (and the `note` fields), and re-encoding plus
//! re-encryption with the recovered stamp and random bytes must give the
//! captured bytes back.
//!
//! The header-encryption key that works is found by trying (as a receiver
//! would), not read from decoded.jsonl; decoded.jsonl's `he` label is then
//! compared with it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::collapsible_if
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use n2n_proto::he::{self, CommunityHe, Decrypted, HeKeyKind, HeKeys, NAME_FIELD_LEN};
use n2n_proto::pcap::PcapReader;
use n2n_proto::wire::{self, HEADER_LEN, Message};
use serde_json::Value;

fn name_field(name: &[u8]) -> [u8; NAME_FIELD_LEN] {
    let mut f = [0u8; NAME_FIELD_LEN];
    f[..name.len()].copy_from_slice(name);
    f
}

/// The federation name field of a C supernode started with `-F name`:
/// `'*' + name + NUL` written over `*Federation` (crypto.md §6 quirk 2).
fn federation_field(name: &str) -> [u8; NAME_FIELD_LEN] {
    let mut f = he::DEFAULT_FEDERATION_FIELD;
    let mut s = Vec::from(&b"*"[..]);
    s.extend_from_slice(name.as_bytes());
    s.push(0);
    f[..s.len()].copy_from_slice(&s);
    f
}

/// How a datagram's header was protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeUsed {
    None,
    Community(HeKeyKind),
    Federation,
}

struct Keys {
    /// The community `rocks`, with the dynamic key in user/password mode.
    community: Option<CommunityHe>,
    userpw: bool,
    /// The federation: keys from `*Federation`, name field from `-F`.
    federation: CommunityHe,
}

fn keys_for(dir: &Path) -> Keys {
    let m: Value = n2n_testdata::read_json(&dir.join("manifest.json"));
    let community = m["community"].as_str().unwrap();
    assert_eq!(community, "rocks");
    let mut userpw = false;
    let community = if m["header_encryption"].as_bool().unwrap() {
        let mut c = CommunityHe::new(name_field(community.as_bytes()));
        if let Some(k) = m["auth"]["dynamic_key"]["key_hex"].as_str() {
            let d: [u8; 16] = hex::decode(k).unwrap().try_into().unwrap();
            c.set_dynamic_key(&d);
            userpw = true;
        }
        Some(c)
    } else {
        None
    };
    // `-F NAME` in the supernode command line gives the name field.
    let cmd = m["commands"]["supernode"].as_str().unwrap();
    let fed_name = cmd
        .split_whitespace()
        .skip_while(|t| *t != "-F")
        .nth(1)
        .unwrap_or("Federation");
    let fed20 = federation_field(fed_name);
    if fed_name == "Federation" {
        assert_eq!(fed20, he::DEFAULT_FEDERATION_FIELD);
    }
    Keys {
        community,
        userpw,
        federation: CommunityHe::with_static_keys(
            fed20,
            HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
        ),
    }
}

/// Remove header encryption as a receiver would: plain if it looks plain,
/// else the community (dynamic, then static without the trailer), else the
/// federation.
fn unprotect(k: &Keys, buf: &mut [u8]) -> Result<(HeUsed, Option<Decrypted>), String> {
    if he::looks_plain(buf) {
        return Ok((HeUsed::None, None));
    }
    if let Some(c) = &k.community
        && let Ok((kind, d)) = c.decrypt(buf)
    {
        return Ok((HeUsed::Community(kind), Some(d)));
    }
    match k.federation.decrypt(buf) {
        Ok((_, d)) => Ok((HeUsed::Federation, Some(d))),
        Err(e) => Err(format!("no key decrypts: {e}")),
    }
}

fn he_label(k: &Keys, used: HeUsed) -> &'static str {
    match used {
        HeUsed::None => "none",
        HeUsed::Community(HeKeyKind::Dynamic) if k.userpw => "dynamic",
        HeUsed::Community(_) => "static",
        HeUsed::Federation => "federation",
    }
}

/// decoded.jsonl `note` tokens against the decoded message.
fn check_note(note: &str, msg: &Message<'_>, what: &str) {
    for tok in note.split_whitespace() {
        let (k, v) = tok.split_once('=').unwrap();
        let v: u64 = v.parse().unwrap();
        let got: u64 = match (k, msg) {
            ("transform", Message::Packet(p)) => p.transform.into(),
            ("compression", Message::Packet(p)) => p.compression.into(),
            ("header_len", Message::Packet(p)) => p.header_len() as u64,
            ("key_time", Message::RegisterSuperAck(a)) => a.key_time.into(),
            ("auth_scheme", Message::RegisterSuperAck(a)) => a.auth.scheme().into(),
            ("token_size", Message::RegisterSuperAck(a)) => a.auth.token_size().into(),
            ("num_sn", Message::RegisterSuperAck(a)) => a.sn_list.len() as u64,
            _ => panic!("{what}: unexpected note token {tok}"),
        };
        assert_eq!(got, v, "{what}: note {tok}");
    }
}

#[test]
fn every_capture_decodes_to_decoded_jsonl_and_reencodes() {
    let mut per_label: HashMap<&'static str, usize> = HashMap::new();
    let mut total = 0usize;
    for dir in n2n_testdata::scenario_dirs() {
        let scen = dir.file_name().unwrap().to_string_lossy().into_owned();
        let file = std::fs::read(dir.join("capture.pcap")).unwrap();
        let caps: Vec<_> = PcapReader::new(&file)
            .unwrap()
            .map(|d| d.unwrap())
            .collect();
        let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
        assert_eq!(caps.len(), dec.len(), "{scen}: datagram count");
        let keys = keys_for(&dir);
        // Last accepted stamp per sending socket.
        let mut prev: HashMap<SocketAddr, u64> = HashMap::new();

        for (i, (cap, d)) in caps.iter().zip(&dec).enumerate() {
            let what = format!("{scen} #{i}");
            assert_eq!(cap.src.to_string(), d["src"].as_str().unwrap(), "{what}");
            assert_eq!(cap.dst.to_string(), d["dst"].as_str().unwrap(), "{what}");
            let wire_bytes = cap.payload;
            let mut buf = wire_bytes.to_vec();
            let (used, dd) = unprotect(&keys, &mut buf).unwrap_or_else(|e| panic!("{what}: {e}"));
            let label = he_label(&keys, used);
            assert_eq!(label, d["he"].as_str().unwrap(), "{what}: header key");
            *per_label.entry(label).or_default() += 1;
            total += 1;

            // The receiver's clock is the capture time.
            if let Some(dd) = dd {
                let now = he::stamp_from_unix(u64::from(cap.ts_sec), cap.ts_usec);
                he::verify_stamp(dd.stamp, now, None, false)
                    .unwrap_or_else(|e| panic!("{what}: stamp {e}"));
                let p = prev.entry(cap.src).or_insert_with(|| he::initial_prev(now));
                he::verify_stamp(dd.stamp, now, Some(p), false)
                    .unwrap_or_else(|e| panic!("{what}: stamp {e}"));
            }
            let msg_len = dd.map_or(buf.len(), |x| x.len);
            let plain = &buf[..msg_len];
            let want_plain = hex::decode(d["plain_hex"].as_str().unwrap()).unwrap();
            assert_eq!(
                hex::encode(plain),
                hex::encode(&want_plain),
                "{what}: plain"
            );

            let (hdr, msg) = wire::decode(plain).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(msg.msg_type().name(), d["type"].as_str().unwrap(), "{what}");
            // Header fields, from the ground truth's own bytes.
            assert_eq!(hdr.ttl, want_plain[1], "{what}: ttl");
            let word = u16::from_be_bytes([want_plain[2], want_plain[3]]);
            assert_eq!(hdr.flags.bits(), word & !wire::TYPE_MASK, "{what}: flags");
            assert_eq!(
                u16::from(msg.msg_type().code()),
                word & wire::TYPE_MASK,
                "{what}: type code"
            );
            assert_eq!(
                &hdr.community.field()[..],
                &want_plain[4..HEADER_LEN],
                "{what}"
            );
            if let Some(note) = d["note"].as_str() {
                check_note(note, &msg, &what);
            }

            // Re-encode: the plain bytes exactly (no C message has trailing
            // bytes after the user/password trailer is removed).
            assert_eq!(msg.buffer_len(), plain.len(), "{what}: buffer_len");
            let mut re = vec![0u8; msg.buffer_len()];
            let n = wire::encode(&hdr, &msg, &mut re).unwrap();
            assert_eq!(n, plain.len(), "{what}");
            assert_eq!(hex::encode(&re), hex::encode(plain), "{what}: re-encode");

            // Re-encrypt with the recovered stamp and random bytes, put the
            // trailer back: the captured datagram.
            if let Some(dd) = dd {
                let (c, kind) = match used {
                    HeUsed::Community(kind) => (keys.community.as_ref().unwrap(), kind),
                    HeUsed::Federation => (&keys.federation, HeKeyKind::Static),
                    HeUsed::None => unreachable!(),
                };
                c.encrypt(&mut re, dd.header_len, dd.stamp, dd.rand4, kind)
                    .unwrap();
                re.extend_from_slice(&wire_bytes[dd.len..]);
                if dd.len != wire_bytes.len() {
                    assert!(keys.userpw, "{what}: trailer outside user/password");
                    assert_eq!(wire_bytes.len() - dd.len, he::TRAILER_LEN, "{what}");
                }
            }
            assert_eq!(hex::encode(&re), hex::encode(wire_bytes), "{what}: wire");
        }
    }
    // Every kind of protection was met (numbers from the vectors' README).
    assert_eq!(total, 10 * 37 + 2 * 61, "{per_label:?}");
    assert_eq!(
        per_label.get("static"),
        Some(&(37 + 37 + 4)),
        "{per_label:?}"
    );
    assert_eq!(per_label.get("dynamic"), Some(&33), "{per_label:?}");
    assert_eq!(per_label.get("federation"), Some(&12), "{per_label:?}");
}

/// The same bytes with the wrong federation keys (from the renamed field)
/// or the wrong name field must not decode: the federation-F quirk matters.
#[test]
fn federation_f_needs_both_quirks() {
    let dir = n2n_testdata::captures_dir().join("federation-F");
    let file = std::fs::read(dir.join("capture.pcap")).unwrap();
    let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
    let right = keys_for(&dir).federation;
    let fed20 = federation_field("rocksFed");
    assert_eq!(&fed20[..12], b"*rocksFed\0n\0");
    let own_keys = CommunityHe::new(fed20);
    let clean_field = CommunityHe::with_static_keys(
        name_field(b"*rocksFed"),
        HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
    );
    let mut n = 0;
    for (cap, d) in PcapReader::new(&file)
        .unwrap()
        .map(|d| d.unwrap())
        .zip(&dec)
    {
        if d["he"] != "federation" {
            continue;
        }
        n += 1;
        for wrong in [&own_keys, &clean_field] {
            let mut b = cap.payload.to_vec();
            assert!(wrong.decrypt(&mut b).is_err());
            assert_eq!(b, cap.payload, "failed attempt left the buffer changed");
        }
        let mut b = cap.payload.to_vec();
        right.decrypt(&mut b).unwrap();
        let (hdr, _) = wire::decode(&b).unwrap();
        assert_eq!(hdr.community.field(), &fed20);
    }
    assert_eq!(n, 6);
}
