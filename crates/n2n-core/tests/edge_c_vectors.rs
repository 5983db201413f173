//! Our edge against the C n2n 3.1.1 captures: configured as e1 of each
//! scenario, it must send a REGISTER_SUPER field-equal to C's e1 (except
//! cookie and token), accept the C supernode's answers (ACK with our
//! cookie patched in), decrypt every PACKET C delivered to e1 into the
//! expected frame, and answer e2's REGISTER/relayed traffic with the same
//! REGISTER / REGISTER_ACK bytes C's e1 sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use n2n_core::Now;
use n2n_core::edge::{Edge, EdgeConfig, TapAddrMode};
use n2n_proto::he::{self, CommunityHe};
use n2n_proto::types::{Community, CompressionId, DevAddr, Mac, TransformId};
use serde_json::Value;

#[derive(Debug, Clone)]
struct Dg {
    i: usize,
    t: f64,
    src: SocketAddr,
    dst: SocketAddr,
    raw: Vec<u8>,
    ty: String,
    plain: Vec<u8>,
    frame: Option<Vec<u8>>,
}

fn load(dir: &Path) -> Vec<Dg> {
    let sc = n2n_testdata::Scenario::load(dir);
    let v: Vec<Dg> = sc
        .packets
        .into_iter()
        .zip(&sc.decoded)
        .enumerate()
        .map(|(i, (p, d))| {
            assert_eq!(d["i"].as_u64().unwrap() as usize, i);
            Dg {
                i,
                t: p.t,
                src: p.src.parse().unwrap(),
                dst: p.dst.parse().unwrap(),
                raw: p.bytes,
                ty: d["type"].as_str().unwrap().to_owned(),
                plain: n2n_testdata::unhex(d["plain_hex"].as_str().unwrap()),
                frame: d["frame_hex"].as_str().map(n2n_testdata::unhex),
            }
        })
        .collect();
    assert!(
        v.len() > 20,
        "{}: only {} datagrams",
        dir.display(),
        v.len()
    );
    v
}

struct Scenario {
    name: String,
    cfg: EdgeConfig,
    he: bool,
    e1: SocketAddr,
    e2: SocketAddr,
    sn: SocketAddr,
    dgs: Vec<Dg>,
}

fn scenario(name: &str) -> Scenario {
    let dir = n2n_testdata::captures_dir().join(name);
    let m: Value = n2n_testdata::read_json(&dir.join("manifest.json"));
    let u = &m["underlay"];
    let sock = |n: &str| -> SocketAddr {
        format!(
            "{}:{}",
            u[n]["ip"].as_str().unwrap(),
            u[n]["udp_port"].as_u64().unwrap()
        )
        .parse()
        .unwrap()
    };
    let sn = sock("sn");
    let community = Community::new(m["community"].as_str().unwrap()).unwrap();
    let mut cfg = EdgeConfig::new(community, vec![sn.to_string()]);
    let e1 = &m["overlay"]["e1"];
    cfg.mac = e1["mac"].as_str().unwrap().parse::<Mac>().unwrap();
    let (ip, bits) = e1["ip"].as_str().unwrap().split_once('/').unwrap();
    cfg.tap_addr = TapAddrMode::Static(DevAddr::new(
        ip.parse::<Ipv4Addr>().unwrap(),
        bits.parse().unwrap(),
    ));
    cfg.desc = e1["desc"].as_str().unwrap().to_owned();
    cfg.transform = TransformId::try_from(m["transform"]["id"].as_u64().unwrap() as u8).unwrap();
    cfg.key = m["key"]
        .as_str()
        .map(|k| k.as_bytes().to_vec())
        .unwrap_or_default();
    let comp = m["compression"].as_str().unwrap();
    let id = comp
        .split("id ")
        .nth(1)
        .and_then(|s| s.trim_end_matches(')').parse::<u8>().ok())
        .unwrap();
    cfg.compression = CompressionId::try_from(id).unwrap();
    let he = m["header_encryption"].as_bool().unwrap();
    cfg.header_encryption = he;
    Scenario {
        name: name.to_owned(),
        cfg,
        he,
        e1: sock("e1"),
        e2: sock("e2"),
        sn,
        dgs: load(&dir),
    }
}

fn drain(e: &mut Edge) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(t) = e.poll_transmit() {
        v.push((t.dst, t.bytes().to_vec()));
        e.recycle_transmit(t);
    }
    v
}

/// The plain form of one of our datagrams.
fn plain(he: Option<&CommunityHe>, d: &[u8]) -> Vec<u8> {
    let mut d = d.to_vec();
    if let Some(he) = he {
        let (_, dec) = he.decrypt(&mut d).expect("our datagram does not decrypt");
        d.truncate(dec.len);
    }
    d
}

fn msg_type(plain: &[u8]) -> u8 {
    (u16::from_be_bytes([plain[2], plain[3]]) & 0x1f) as u8
}

/// Puts `cookie` into a C REGISTER_SUPER_ACK (re-encrypting with its own
/// stamp and random bytes when header encryption is on).
fn patch_ack_cookie(he: Option<&CommunityHe>, raw: &[u8], cookie: u32) -> Vec<u8> {
    let mut d = raw.to_vec();
    match he {
        None => d[24..28].copy_from_slice(&cookie.to_be_bytes()),
        Some(he) => {
            let (kind, dec) = he.decrypt(&mut d).unwrap();
            d[24..28].copy_from_slice(&cookie.to_be_bytes());
            let len = dec.len;
            he::encrypt(
                &mut d[..len],
                dec.header_len,
                dec.stamp,
                dec.rand4,
                he.keys(kind),
                he.name_field(),
            )
            .unwrap();
        }
    }
    d
}

/// Unix time (µs) of the first datagram, from its HE stamp; any fixed
/// time without header encryption.
fn base_unix_us(s: &Scenario, he: Option<&CommunityHe>) -> u64 {
    match he {
        None => 1_795_606_373_500_000,
        Some(he) => {
            let d0 = &s.dgs[0];
            let mut d = d0.raw.clone();
            let (_, dec) = he.decrypt(&mut d).unwrap();
            let secs = dec.stamp >> 32;
            let us = (dec.stamp >> 12) & 0xfffff;
            secs * 1_000_000 + us - (d0.t * 1e6) as u64
        }
    }
}

/// REGISTER_SUPER: every byte but cookie (24..28) and token (59..75).
fn masked_register_super(p: &[u8]) -> Vec<u8> {
    let mut v = p.to_vec();
    assert_eq!(v.len(), 79, "REGISTER_SUPER length");
    v[24..28].fill(0);
    v[59..75].fill(0);
    v
}

/// Replays scenario `name` (up to `stop_at` seconds, if given) against our
/// edge as e1; returns the edge and the time reached.
fn run_until(name: &str, stop_at: Option<f64>) -> (Edge, Now) {
    let s = scenario(name);
    let he_ctx = s.he.then(|| CommunityHe::new(*s.cfg.community.field()));
    let he = he_ctx.as_ref();
    let t0 = Instant::now();
    let base = base_unix_us(&s, he);
    let at = |t: f64| {
        let d = Duration::from_secs_f64(t.max(0.0));
        Now::new(t0 + d, base + d.as_micros() as u64)
    };
    let c_rs = s
        .dgs
        .iter()
        .find(|d| d.src == s.e1 && d.ty == "REGISTER_SUPER")
        .unwrap();
    // Start when C's e1 sent its first REGISTER_SUPER.
    let mut edge = Edge::new(s.cfg.clone(), [0x5a; 32], at(c_rs.t)).unwrap();
    edge.handle_timeout(at(c_rs.t));
    let first = drain(&mut edge);
    let (dst, rs) = first
        .iter()
        .find(|(_, d)| msg_type(&plain(he, d)) == 5)
        .unwrap_or_else(|| panic!("{name}: no REGISTER_SUPER"));
    assert_eq!(*dst, s.sn, "{name}");
    let ours = plain(he, rs);
    assert_eq!(
        hex::encode(masked_register_super(&ours)),
        hex::encode(masked_register_super(&c_rs.plain)),
        "{name}: REGISTER_SUPER differs from C's"
    );
    // Auth: simple id, 16 bytes.
    assert_eq!(&ours[55..59], &[0, 1, 0, 16]);
    let mut cookie = u32::from_be_bytes(ours[24..28].try_into().unwrap());

    let mut out = vec![0u8; n2n_core::MAX_DATAGRAM];
    let mut frames_ok = 0;
    let mut acks_checked = 0;
    let mut regs_checked = 0;
    let mut to_e2: Vec<Vec<u8>> = Vec::new();
    let garp = {
        let mut g = vec![0xffu8; 6];
        g.extend_from_slice(&s.cfg.mac.0);
        g
    };
    let mut sent_ok = 0;
    let mut last = at(c_rs.t);
    for d in &s.dgs {
        if stop_at.is_some_and(|t| d.t > t) {
            break;
        }
        let now = at(d.t);
        last = now;
        if d.src == s.e1
            && let Some(f) = &d.frame
        {
            // A frame C's e1 read from its TAP (not the automatic
            // gratuitous ARPs): ours must go to the same place.
            if f.starts_with(&garp)
                && f.len() == 42
                && f[12..14] == [8, 6]
                && f[28..32] == f[38..42]
            {
                continue;
            }
            edge.handle_timeout(now);
            drain(&mut edge);
            let t = edge
                .encapsulate(now, f, &mut out)
                .unwrap_or_else(|| panic!("{name} #{}: frame dropped {:?}", d.i, edge.stats()));
            assert_eq!(t.dst, d.dst, "{name} #{}: C sent it elsewhere", d.i);
            sent_ok += 1;
            to_e2.extend(
                drain(&mut edge)
                    .into_iter()
                    .filter(|(dst, _)| *dst == s.e2)
                    .map(|(_, b)| plain(he, &b)),
            );
            continue;
        }
        if d.dst != s.e1 {
            continue;
        }
        edge.handle_timeout(now);
        for (dst, b) in drain(&mut edge) {
            let p = plain(he, &b);
            if dst == s.sn && msg_type(&p) == 5 {
                cookie = u32::from_be_bytes(p[24..28].try_into().unwrap());
            }
        }
        let mut buf = if d.ty == "REGISTER_SUPER_ACK" {
            patch_ack_cookie(he, &d.raw, cookie)
        } else {
            d.raw.clone()
        };
        let drops_before = edge.stats().total_drops();
        let r = edge.decapsulate(now, d.src, &mut buf, false, &mut out);
        let sent = drain(&mut edge);
        if d.ty == "REGISTER_SUPER_ACK" {
            assert!(edge.is_registered(), "{name} #{}: ACK not accepted", d.i);
        }
        if let Some(f) = &d.frame {
            let n =
                r.unwrap_or_else(|| panic!("{name} #{}: PACKET dropped: {:?}", d.i, edge.stats()));
            assert_eq!(hex::encode(&out[..n]), hex::encode(f), "{name} #{}", d.i);
            frames_ok += 1;
        } else {
            assert_eq!(
                edge.stats().total_drops(),
                drops_before,
                "{name} #{} {}: dropped: {:?}",
                d.i,
                d.ty,
                edge.stats()
            );
        }
        to_e2.extend(
            sent.into_iter()
                .filter(|(dst, _)| *dst == s.e2)
                .map(|(_, b)| plain(he, &b)),
        );
    }
    if stop_at.is_some() {
        return (edge, last);
    }
    assert!(sent_ok >= 5, "{name}: only {sent_ok} frames sent");
    // Every REGISTER / REGISTER_ACK C's e1 sent to e2 must be among ours,
    // byte for byte (plain form).
    for c in s.dgs.iter().filter(|c| c.src == s.e1 && c.dst == s.e2) {
        if c.ty != "REGISTER" && c.ty != "REGISTER_ACK" {
            continue;
        }
        assert!(
            to_e2.contains(&c.plain),
            "{name} #{}: C sent {} {} to e2, we sent {:?}",
            c.i,
            c.ty,
            hex::encode(&c.plain),
            to_e2.iter().map(hex::encode).collect::<Vec<_>>()
        );
        if c.ty == "REGISTER_ACK" {
            acks_checked += 1;
        } else {
            regs_checked += 1;
        }
    }
    let expected_frames = s
        .dgs
        .iter()
        .filter(|d| d.dst == s.e1 && d.frame.is_some())
        .count();
    assert!(expected_frames >= 6, "{name}");
    assert_eq!(frames_ok, expected_frames, "{name}");
    assert!(acks_checked >= 1, "{name}: no REGISTER_ACK compared");
    assert!(regs_checked >= 1, "{name}: no REGISTER compared");
    eprintln!(
        "{}: {} frames in, {} frames out to C's destinations, {} REGISTER_ACK, {} REGISTER equal to C",
        s.name, frames_ok, sent_ok, acks_checked, regs_checked
    );
    if name == "federation" {
        // The second supernode was learnt from the ACK list.
        assert!(
            edge.supernode_addrs()
                .contains(&Some("198.18.0.253:7654".parse().unwrap())),
            "{:?}",
            edge.supernode_addrs()
        );
    }
    (edge, last)
}

fn run(name: &str) {
    run_until(name, None);
}

#[test]
fn c_aes() {
    run("aes");
}

#[test]
fn c_null() {
    run("null");
}

#[test]
fn c_twofish() {
    run("twofish");
}

#[test]
fn c_chacha20() {
    run("chacha20");
}

#[test]
fn c_speck() {
    run("speck");
}

#[test]
fn c_aes_lzo() {
    run("aes-lzo");
}

#[test]
fn c_aes_zstd() {
    run("aes-zstd");
}

#[test]
fn c_aes_he() {
    run("aes-he");
}

#[test]
fn c_chacha20_he() {
    run("chacha20-he");
}

#[test]
fn c_federation() {
    run("federation");
}

/// Parses the JSON reply datagrams of one command (literal newlines inside
/// rows are valid JSON whitespace).
fn rows(lines: &[String]) -> Vec<serde_json::Map<String, Value>> {
    lines
        .iter()
        .map(|l| {
            assert!(l.ends_with('\n'), "{l:?}");
            serde_json::from_str::<Value>(l).unwrap()
        })
        .filter(|v| v["_type"] == "row")
        .map(|v| v.as_object().unwrap().clone())
        .collect()
}

/// The keys of a flat JSON object line, in order.
fn keys_in_order(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    let mut start = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' if !in_str => {
                in_str = true;
                start = i + 1;
            }
            b'"' => {
                in_str = false;
                if b.get(i + 1) == Some(&b':') {
                    keys.push(line[start..i].to_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

/// C's e1 answers in `mgmt/e1.txt`, by command.
fn c_mgmt(name: &str) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(n2n_testdata::captures_dir().join(name).join("mgmt/e1.txt"))
        .unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(h) = line.strip_prefix("### e1: ") {
            cur = Some(h.trim().to_owned());
            out.push((h.trim().to_owned(), Vec::new()));
        } else if line.starts_with('{') {
            out.last_mut().unwrap().1.push(line.to_owned());
        } else if let Some(last) = out.last_mut().and_then(|(_, v)| v.last_mut()) {
            // Continuation of a row with literal newlines.
            last.push_str(line);
        }
    }
    let _ = cur;
    out
}

#[test]
fn c_aes_management_matches_e1() {
    // C's management queries ran about 7 s into the capture (after e1's PONG).
    let (mut edge, now) = run_until("aes", Some(7.0));
    edge.set_local_addr("0.0.0.0:50001".parse().unwrap());
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    for (req, c_lines) in c_mgmt("aes") {
        let ours = edge.handle_mgmt(now, from, req.as_bytes()).replies;
        // Same datagram structure: begin, rows, end (or one error line).
        assert_eq!(ours.len(), c_lines.len(), "{req}: {ours:?} vs {c_lines:?}");
        assert_eq!(ours.first(), c_lines.first(), "{req}");
        assert_eq!(ours.last(), c_lines.last(), "{req}");
        for (lo, lc) in ours.iter().zip(&c_lines) {
            assert_eq!(keys_in_order(lo), keys_in_order(lc), "{req}: fields");
        }
        let (o, c) = (rows(&ours), rows(&c_lines));
        assert_eq!(o.len(), c.len());
        for (ro, rc) in o.iter().zip(&c) {
            for (k, vc) in rc {
                let vo = &ro[k];
                let is_time = k.starts_with("last_") || k == "start_time";
                if is_time && vc.as_u64().unwrap_or(0) > 0 {
                    let d = vo.as_i64().unwrap() - vc.as_i64().unwrap();
                    assert!(d.abs() <= 1, "{req}.{k}: ours {vo} C {vc}");
                } else {
                    assert_eq!(vo, vc, "{req}.{k}");
                }
            }
        }
        // The edges rows carry C's literal newlines.
        if req.ends_with("edges") {
            assert_eq!(ours[1].matches('\n').count(), 3, "{:?}", ours[1]);
        }
    }
}
