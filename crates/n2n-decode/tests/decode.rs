//! Runs the `n2n-decode` binary on every C n2n 3.1.1 capture with the
//! scenario's manifest parameters and checks its output against
//! packets.jsonl / decoded.jsonl; then hostile files and arguments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_n2n-decode");

fn manifest(dir: &Path) -> Value {
    n2n_testdata::read_json(&dir.join("manifest.json"))
}

/// The n2n-decode arguments a scenario's manifest calls for.
fn args_for(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut a = vec!["-c".to_owned(), m["community"].as_str().unwrap().to_owned()];
    if let Some(k) = m["key"].as_str() {
        a.extend(["-k".to_owned(), k.to_owned()]);
    }
    a.extend([
        "-A".to_owned(),
        m["transform"]["id"].as_u64().unwrap().to_string(),
    ]);
    if m["header_encryption"].as_bool().unwrap() {
        a.push("-H".to_owned());
    }
    if let Some(d) = m["auth"]["dynamic_key"]["key_hex"].as_str() {
        a.extend(["--dynamic-key".to_owned(), d.to_owned()]);
    }
    if m.get("federation").is_some() {
        let cmd = m["commands"]["supernode"].as_str().unwrap();
        let name = cmd
            .split_whitespace()
            .skip_while(|t| *t != "-F")
            .nth(1)
            .unwrap_or("Federation");
        a.extend(["--federation".to_owned(), name.to_owned()]);
    }
    a.push("--time-from-capture".to_owned());
    a.push(dir.join("capture.pcap").display().to_string());
    a
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

#[test]
fn every_capture_decodes_like_decoded_jsonl() {
    let mut packets = 0usize;
    let mut he_lines = 0usize;
    for dir in n2n_testdata::scenario_dirs() {
        let scen = dir.file_name().unwrap().to_string_lossy().into_owned();
        let args = args_for(&dir);
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{scen} {args:?}: {:?} {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "{scen}: stderr {stderr}");
        let got = lines(&out);
        let pk = n2n_testdata::jsonl(&dir.join("packets.jsonl"));
        let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
        assert_eq!(got.len(), pk.len(), "{scen}: line count");
        assert_eq!(got.len(), dec.len(), "{scen}: line count");
        for (i, ((g, p), d)) in got.iter().zip(&pk).zip(&dec).enumerate() {
            let what = format!("{scen} #{i}: {g}");
            assert_eq!(g["n"].as_u64(), Some(i as u64), "{what}");
            assert_ne!(s(g, "type"), "ERROR", "{what}");
            assert_eq!(s(g, "type"), s(d, "type"), "{what}");
            assert_eq!(s(g, "src"), s(p, "src"), "{what}");
            assert_eq!(s(g, "dst"), s(p, "dst"), "{what}");
            assert_eq!(
                g["len"].as_u64(),
                Some(s(p, "hex").len() as u64 / 2),
                "{what}"
            );
            let rel = g["t"].as_f64().unwrap();
            assert!((rel - p["t"].as_f64().unwrap()).abs() < 2e-6, "{what}");
            // Header fields from the ground truth's plain bytes.
            let plain = hex::decode(s(d, "plain_hex")).unwrap();
            assert_eq!(g["ttl"].as_u64(), Some(u64::from(plain[1])), "{what}");
            let word = u16::from_be_bytes([plain[2], plain[3]]);
            assert_eq!(
                g["flags"].as_u64(),
                Some(u64::from(word & 0xffe0)),
                "{what}"
            );
            let name: Vec<u8> = plain[4..24]
                .iter()
                .copied()
                .take_while(|&b| b != 0)
                .collect();
            assert_eq!(s(g, "community").as_bytes(), &name[..], "{what}");
            // Header encryption: the same key as the C harness, stamps in window.
            match s(d, "he") {
                "none" => assert_eq!(g["he"], false, "{what}"),
                k => {
                    he_lines += 1;
                    assert_eq!(g["he"], true, "{what}");
                    assert_eq!(s(g, "he_key"), k, "{what}");
                    assert_eq!(g["stamp_ok"], true, "{what}");
                    assert!(g["stamp"].as_u64().is_some(), "{what}");
                }
            }
            if s(d, "type") == "PACKET" {
                packets += 1;
                assert!(g.get("payload_error").is_none(), "{what}");
                assert!(g.get("transform_mismatch").is_none(), "{what}");
                let frame = s(d, "frame_hex");
                assert_eq!(s(g, "frame_hex"), frame, "{what}");
                let fb = hex::decode(frame).unwrap();
                assert_eq!(
                    s(g, "ethertype"),
                    format!("0x{:02x}{:02x}", fb[12], fb[13]),
                    "{what}"
                );
                assert!(g["transform"].as_u64().is_some() && g["payload_len"].as_u64().is_some());
                if fb[12..14] == [8, 0] {
                    let ip =
                        |o: usize| format!("{}.{}.{}.{}", fb[o], fb[o + 1], fb[o + 2], fb[o + 3]);
                    assert_eq!(s(g, "ip_src"), ip(26), "{what}");
                    assert_eq!(s(g, "ip_dst"), ip(30), "{what}");
                    assert_eq!(g["ip_proto"].as_u64(), Some(u64::from(fb[23])), "{what}");
                }
            }
            if let Some(note) = d["note"].as_str() {
                for tok in note.split_whitespace() {
                    let (k, v) = tok.split_once('=').unwrap();
                    let k = if k == "header_len" { continue } else { k };
                    assert_eq!(
                        g[k].as_u64(),
                        Some(v.parse().unwrap()),
                        "{what}: note {tok}"
                    );
                }
            }
        }
    }
    assert_eq!(packets, 21 * 10 + 26 * 2, "PACKET lines");
    assert_eq!(he_lines, 37 * 3 + 6 * 2, "header-encrypted lines");
}

fn temp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("n2n-decode-{}-{name}", std::process::id()))
}

/// Exit 2 and exactly one `n2n-decode: ...` line on stderr.
fn assert_exit2(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: stderr {err:?}");
    assert!(err.starts_with("n2n-decode: "), "{what}: {err}");
}

#[test]
fn bad_files_exit_2_with_one_line() {
    let missing = temp("does-not-exist.pcap");
    let out = run(&[&missing]);
    assert_exit2(&out, "missing file");
    assert!(out.stdout.is_empty());

    let text = temp("not-a-pcap.txt");
    std::fs::write(&text, b"this is not a capture file at all\n").unwrap();
    let out = run(&[&text]);
    assert_exit2(&out, "text file");
    assert!(out.stdout.is_empty());

    let empty = temp("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert_exit2(&run(&[&empty]), "empty file");

    // A pcapng section header.
    let ng = temp("ng.pcapng");
    std::fs::write(
        &ng,
        [
            0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x1c, 0x4d, 0x3c, 0x2b, 0x1a,
        ],
    )
    .unwrap();
    assert_exit2(&run(&[&ng]), "pcapng");

    // A capture cut in the middle of its 5th record: the first four are
    // printed, then the error.
    let cap = std::fs::read(n2n_testdata::captures_dir().join("null/capture.pcap")).unwrap();
    let mut off = 24;
    for _ in 0..4 {
        let incl = u32::from_le_bytes(cap[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    let cut = temp("cut.pcap");
    std::fs::write(&cut, &cap[..off + 20]).unwrap();
    let out = run(&[&cut]);
    assert_exit2(&out, "truncated capture");
    assert_eq!(lines(&out).len(), 4);

    for p in [text, empty, ng, cut] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let cap = n2n_testdata::captures_dir().join("aes/capture.pcap");
    let cap = cap.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &[],
        &["-H", cap],
        &["--dynamic-key", "f052801e1d42d4809db60be35e0da259", cap],
        &["-c", "rocks", "--dynamic-key", "f052", cap],
        &["-A", "9", "-k", "x", cap],
        &["-A", "3", cap],
        &["-A"],
        &["-k"],
        &["--nope", cap],
        &[cap, cap],
        &["-c", "a-community-name-longer-than-19", "-H", cap],
    ];
    for c in cases {
        let out = run(c);
        assert_exit2(&out, &format!("{c:?}"));
        assert!(out.stdout.is_empty(), "{c:?}");
    }
    let out = run(&["-h"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: n2n-decode"));
}

/// Undecodable datagrams give ERROR lines and the run goes on.
#[test]
fn errors_are_lines_not_aborts() {
    let v = n2n_testdata::captures_dir();
    // Header-encrypted capture without -H: every datagram is an ERROR line.
    let out = run(&[v.join("aes-he/capture.pcap")]);
    assert!(out.status.success());
    let got = lines(&out);
    assert_eq!(got.len(), 37);
    for g in &got {
        assert_eq!(s(g, "type"), "ERROR", "{g}");
        assert!(!s(g, "error").is_empty());
        assert!(g["hex"].as_str().is_some());
    }
    // With -H but the wrong community: ERROR lines naming the HE failure.
    let out = run(&[
        "-c".as_ref(),
        "stones".as_ref(),
        "-H".as_ref(),
        v.join("aes-he/capture.pcap").as_os_str(),
    ]);
    let got = lines(&out);
    assert_eq!(got.len(), 37);
    assert!(
        got.iter()
            .all(|g| s(g, "type") == "ERROR"
                && s(g, "error").starts_with("header decryption failed"))
    );

    // Federation traffic without --federation: those six are ERROR lines,
    // the rest decodes.
    let out = run(&[v.join("federation-F/capture.pcap")]);
    let got = lines(&out);
    assert_eq!(got.len(), 61);
    assert_eq!(got.iter().filter(|g| s(g, "type") == "ERROR").count(), 6);
    // ... and --federation with the clean name (no residue) does not open them.
    let out = run(&[
        "--federation".as_ref(),
        "Federation".as_ref(),
        v.join("federation-F/capture.pcap").as_os_str(),
    ]);
    assert_eq!(
        lines(&out)
            .iter()
            .filter(|g| s(g, "type") == "ERROR")
            .count(),
        6
    );

    // Wrong payload key on an LZO capture: garbage that fails to decompress
    // gives payload_error on PACKET lines, never an abort.
    let out = run(&[
        "-k".as_ref(),
        "wrong".as_ref(),
        v.join("aes-lzo/capture.pcap").as_os_str(),
    ]);
    assert!(out.status.success());
    let got = lines(&out);
    assert_eq!(got.len(), 37);
    let dec = n2n_testdata::jsonl(&v.join("aes-lzo/decoded.jsonl"));
    let mut errors = 0;
    for (g, d) in got.iter().zip(&dec) {
        assert_eq!(s(g, "type"), s(d, "type"));
        if s(g, "type") == "PACKET" {
            if g.get("payload_error").is_some() {
                errors += 1;
            } else {
                assert_ne!(
                    g["frame_hex"], d["frame_hex"],
                    "wrong key gave the right frame"
                );
            }
        }
    }
    assert!(errors > 0, "no payload_error with a wrong key");

    // An AEAD transform selected on a ChaCha20 capture: the packets say 4,
    // they are still decoded with transform 4 and flagged as a mismatch.
    let out = run(&[
        "-k".as_ref(),
        "s3cret".as_ref(),
        "-A6".as_ref(),
        v.join("chacha20/capture.pcap").as_os_str(),
    ]);
    let got = lines(&out);
    let dec = n2n_testdata::jsonl(&v.join("chacha20/decoded.jsonl"));
    for (g, d) in got.iter().zip(&dec) {
        if s(g, "type") == "PACKET" {
            assert_eq!(g["transform_mismatch"], true);
            assert_eq!(g["frame_hex"], d["frame_hex"]);
        }
    }
}

/// Rewrite every record's capture time by `delta` seconds.
fn shift_times(cap: &[u8], delta: i64) -> Vec<u8> {
    let mut out = cap.to_vec();
    let mut off = 24;
    while off + 16 <= out.len() {
        let ts = i64::from(u32::from_le_bytes(out[off..off + 4].try_into().unwrap()));
        out[off..off + 4].copy_from_slice(&((ts + delta) as u32).to_le_bytes());
        let incl = u32::from_le_bytes(out[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    out
}

#[test]
fn time_from_capture_checks_stamps() {
    let v = n2n_testdata::captures_dir();
    let cap = std::fs::read(v.join("chacha20-he/capture.pcap")).unwrap();
    for (delta, ok) in [
        (0i64, true),
        (15, true),
        (-15, true),
        (17, false),
        (-17, false),
    ] {
        let f = temp(&format!("shift{delta}.pcap"));
        std::fs::write(&f, shift_times(&cap, delta)).unwrap();
        let with = run(&[
            "-c".as_ref(),
            "rocks".as_ref(),
            "-H".as_ref(),
            "--time-from-capture".as_ref(),
            f.as_os_str(),
        ]);
        let got = lines(&with);
        assert_eq!(got.len(), 37);
        for g in &got {
            assert_eq!(g["he"], true, "{g}");
            assert_eq!(g["stamp_ok"], ok, "shift {delta}: {g}");
            if !ok {
                assert!(s(g, "stamp_error").contains("window"), "{g}");
            }
        }
        // Without --time-from-capture stamps are only decrypted.
        let without = run(&[
            "-c".as_ref(),
            "rocks".as_ref(),
            "-H".as_ref(),
            f.as_os_str(),
        ]);
        for g in lines(&without) {
            assert!(g.get("stamp_ok").is_none() && g["stamp"].as_u64().is_some());
            assert_ne!(s(&g, "type"), "ERROR");
        }
        let _ = std::fs::remove_file(f);
    }
    // A replayed datagram (the same record twice) fails the replay check.
    let mut off = 24;
    let incl = u32::from_le_bytes(cap[off + 8..off + 12].try_into().unwrap()) as usize;
    let first = cap[off..off + 16 + incl].to_vec();
    off += 16 + incl;
    let mut dup = cap[..off].to_vec();
    dup.extend_from_slice(&first);
    let f = temp("replay.pcap");
    std::fs::write(&f, &dup).unwrap();
    let got = lines(&run(&[
        "-c".as_ref(),
        "rocks".as_ref(),
        "-H".as_ref(),
        "--time-from-capture".as_ref(),
        f.as_os_str(),
    ]));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["stamp_ok"], true);
    assert_eq!(got[1]["stamp_ok"], false);
    assert!(s(&got[1], "stamp_error").contains("replay"));
    let _ = std::fs::remove_file(f);
}

/// A raw-IP (link type 101) pcap of UDP datagrams from 198.18.0.1:50001 to
/// 198.18.0.254:7654, all at capture time `ts`.
fn raw_ip_pcap(datagrams: &[Vec<u8>], ts: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&101u32.to_le_bytes());
    for (i, d) in datagrams.iter().enumerate() {
        let total = 20 + 8 + d.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 254]);
        ip.extend_from_slice(&50001u16.to_be_bytes());
        ip.extend_from_slice(&7654u16.to_be_bytes());
        ip.extend_from_slice(&((8 + d.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(d);
        f.extend_from_slice(&ts.to_le_bytes());
        f.extend_from_slice(&(i as u32).to_le_bytes());
        f.extend_from_slice(&(ip.len() as u32).to_le_bytes());
        f.extend_from_slice(&(ip.len() as u32).to_le_bytes());
        f.extend_from_slice(&ip);
    }
    f
}

/// Every truncation and many bit flips of real datagrams (plain and
/// header-encrypted, every transform): one valid JSON line each, exit 0.
#[test]
fn hostile_datagrams_never_stop_the_run() {
    let v = n2n_testdata::captures_dir();
    let mut ds: Vec<Vec<u8>> = Vec::new();
    let mut ts = 0u32;
    for scen in [
        "aes-lzo",
        "aes-zstd",
        "userpw-auth",
        "federation-F",
        "twofish",
        "speck",
    ] {
        let pk = n2n_testdata::jsonl(&v.join(scen).join("packets.jsonl"));
        let dec = n2n_testdata::jsonl(&v.join(scen).join("decoded.jsonl"));
        for (p, d) in pk.iter().zip(&dec).step_by(3) {
            let wire = hex::decode(s(p, "hex")).unwrap();
            let plain = hex::decode(s(d, "plain_hex")).unwrap();
            for b in [&wire, &plain] {
                for cut in (0..b.len()).step_by(7) {
                    ds.push(b[..cut].to_vec());
                }
                for i in (0..b.len()).step_by(5) {
                    let mut m = b.clone();
                    m[i] ^= 1 << (i % 8);
                    ds.push(m);
                }
            }
        }
        let cap = std::fs::read(v.join(scen).join("capture.pcap")).unwrap();
        ts = u32::from_le_bytes(cap[24..28].try_into().unwrap());
    }
    ds.push(vec![0xff; 3000]);
    ds.push(Vec::new());
    let f = temp("hostile.pcap");
    std::fs::write(&f, raw_ip_pcap(&ds, ts)).unwrap();
    for extra in [
        &["-k", "s3cret", "-A3"][..],
        &["-k", "s3cret", "-A2"],
        &[
            "-k",
            "s3cret",
            "-A4",
            "-c",
            "rocks",
            "--dynamic-key",
            "f052801e1d42d4809db60be35e0da259",
        ],
        &[
            "-k",
            "s3cret",
            "-A7",
            "--federation",
            "rocksFed",
            "-c",
            "rocks",
            "-H",
            "--time-from-capture",
        ],
        &[],
    ] {
        let mut args: Vec<&std::ffi::OsStr> = extra.iter().map(|a| a.as_ref()).collect();
        args.push(f.as_os_str());
        let out = run(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = lines(&out);
        assert_eq!(got.len(), ds.len(), "{extra:?}");
        let errors = got.iter().filter(|g| s(g, "type") == "ERROR").count();
        assert!(
            errors > 0 && errors < got.len(),
            "{extra:?}: {errors} errors"
        );
    }
    let _ = std::fs::remove_file(f);
}
