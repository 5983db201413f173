//! Command-line tests that run the `edge` binary (no root needed: every
//! valid configuration is checked with `--dry-run`, which opens nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

fn edge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edge"));
    for k in ["N2N_KEY", "N2N_COMMUNITY", "N2N_PASSWORD"] {
        c.env_remove(k);
    }
    c
}

fn run(args: &[&str]) -> Output {
    edge().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `--dry-run` output as (name, value) pairs.
fn config(o: &Output) -> Vec<(String, String)> {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    stdout(o)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn get<'a>(cfg: &'a [(String, String)], key: &str) -> &'a str {
    cfg.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no '{key}' in {cfg:?}"))
}

/// A refused invocation: exit 2, one line on stderr containing `needle`.
fn refused(args: &[&str], needle: &str) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: '{needle}' not in: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(stdout(&o).is_empty(), "{args:?}");
}

/// Option names of C n2n's edge (the checked-in fixture
/// `tests/fixtures/c-edge-options.txt`, taken from the option tables of the
/// protocol notes' CLI chapter, section 1).
fn spec_edge_options() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c-edge-options.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (it is part of the repository)", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Whether `name` occurs in `text` as a whole option token.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn long_help_lists_every_spec_option() {
    let names = spec_edge_options();
    assert!(
        names.len() >= 40,
        "too few options in the fixture: {names:?}"
    );
    for must in [
        "-c",
        "--community",
        "-A1",
        "-A5",
        "-z2",
        "--select-mac",
        "-u",
        "--egid",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} not parsed: {names:?}"
        );
    }
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    let missing: Vec<&String> = names.iter().filter(|n| !mentions(&help, n)).collect();
    assert!(missing.is_empty(), "--help lacks {missing:?}");
    for ours in ["-A6", "-A7", "--dry-run"] {
        assert!(mentions(&help, ours), "--help lacks {ours}");
    }
    assert!(help.contains("ChaCha20-Poly1305") && help.contains("AES-256-GCM"));
    assert!(help.contains("Default 1500"), "MTU default documented");
    assert!(help.contains("IP_MTU_DISCOVER"), "DF behaviour documented");
    assert!(help.contains("EXIT STATUS"));
    // The checker itself can fail.
    assert!(!mentions(&help, "--no-such-option"));
    assert!(!mentions("--select-rtt", "-r"));
}

#[test]
fn short_help() {
    let o = run(&["-h"]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    assert!(h.contains("usage: edge") && h.contains("--help"), "{h}");
    assert!(h.len() < stdout(&run(&["--help"])).len());
}

#[test]
fn refused_options_name_the_option() {
    let base = ["-c", "rocks", "-l", "sn.example.net:7654"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    refused(
        &with(&["-J", "pw", "-k", "k"]),
        "requires ChaCha20 (-A4) or SPECK (-A5)",
    );
    refused(&with(&["-P", "somekey"]), "-P");
    refused(&with(&["-x", "3"]), "-x");
    refused(&with(&["-n", "10.0.0.0/8:10.1.0.1"]), "-n");
    refused(&with(&["-s", "x"]), "-s");
    refused(&with(&["-q"]), "-q");
    refused(&with(&["--frobnicate"]), "--frobnicate");
    refused(&with(&["-A", "3"]), "-A3");
    refused(&with(&["-z", "1"]), "-z1");
    refused(&with(&["-A9", "-k", "k"]), "-A9");
    refused(&with(&["--select-rtt=yes"]), "--select-rtt");
    refused(&with(&["-d"]), "-d");
    // (-S2 is accepted now: TCP to the supernode.)
    let o = run(&with(&["-x", "3"]));
    assert!(stderr(&o).contains("not supported"), "{}", stderr(&o));
}

#[test]
fn validation_rules() {
    refused(&["-l", "h:1"], "community");
    refused(&["-c", "", "-l", "h:1"], "empty");
    refused(&["-c", "rocks"], "supernode");
    refused(&["-c", "rocks", "-l", "nohost"], "port");
    refused(&["-c", "rocks", "-l", "h:1", "-i", "0"], "-i");
    for a in ["-A2", "-A3", "-A4", "-A5", "-A6", "-A7"] {
        refused(&["-c", "rocks", "-l", "h:1", a], a);
    }
    refused(
        &["-c", "rocks", "-l", "h:1", "-J", "pw", "-k", "k", "-A3"],
        "-A4",
    );
    refused(&["-c", "rocks", "-l", "h:1", "-M", "20000"], "-M");
    refused(
        &["-c", "rocks", "-l", "h:1", "-m", "ff:ff:ff:ff:ff:ff"],
        "multicast",
    );
    refused(&["-c", "rocks", "-l", "h:1", "-a", "10.0.0.1/40"], "-a");
    refused(&["-c", "rocks", "-l", "h:1", "-R", "1.2.3.4"], "-R");

    // key without -A: AES; -A1 with a key: AES (with a warning); nothing: null
    let c = config(&run(&[
        "-c",
        "rocks",
        "-l",
        "h:1",
        "-k",
        "secret",
        "--dry-run",
    ]));
    assert_eq!(get(&c, "cipher"), "AES (3)");
    assert_eq!(get(&c, "key"), "6 bytes");
    let o = run(&[
        "-c",
        "rocks",
        "-l",
        "h:1",
        "-k",
        "secret",
        "-A1",
        "--dry-run",
    ]);
    assert_eq!(get(&config(&o), "cipher"), "AES (3)");
    assert!(stderr(&o).contains("-A1"), "{}", stderr(&o));
    let c = config(&run(&["-c", "rocks", "-l", "h:1", "--dry-run"]));
    assert_eq!(get(&c, "cipher"), "null (1)");
    assert_eq!(get(&c, "key"), "-");
    let c = config(&run(&[
        "-c",
        "rocks",
        "-l",
        "h:1",
        "-A5",
        "-k",
        "k",
        "--dry-run",
    ]));
    assert_eq!(get(&c, "cipher"), "Speck (5)");
    // key equal to community: warning
    let o = run(&["-c", "rocks", "-l", "h:1", "-k", "rocks", "--dry-run"]);
    assert!(stderr(&o).contains("community"), "{}", stderr(&o));
    // defaults
    let c = config(&run(&["-c", "rocks", "-l", "h:1", "--dry-run"]));
    assert_eq!(get(&c, "mtu"), "1500");
    assert_eq!(get(&c, "pmtu_discovery"), "false");
    assert_eq!(get(&c, "tap_name"), "edge0");
    assert_eq!(get(&c, "mgmt_port"), "5644");
    assert_eq!(get(&c, "register_interval"), "20");
    assert_eq!(get(&c, "verbosity"), "2");
    // getopt forms: clustered flags, attached arguments, long options
    let c = config(&run(&[
        "--community=rocks",
        "--supernode-list",
        "a:1",
        "-lb:2",
        "-fvrE",
        "-M",
        "1400",
        "-A3",
        "-kk",
        "-z1",
        "-S1",
        "--tap-device=n2n0",
        "--dry-run",
    ]));
    assert_eq!(get(&c, "supernodes"), "a:1,b:2");
    assert_eq!(get(&c, "foreground"), "true");
    assert_eq!(get(&c, "verbosity"), "3");
    assert_eq!(get(&c, "routing"), "true");
    assert_eq!(get(&c, "multicast"), "true");
    assert_eq!(get(&c, "mtu"), "1400");
    assert_eq!(get(&c, "compression"), "Lzo");
    assert_eq!(get(&c, "p2p"), "false");
    assert_eq!(get(&c, "tap_name"), "n2n0");
}

fn temp_file(text: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let p = std::env::temp_dir().join(format!(
        "n2n-edge-cli-{}-{}.conf",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn config_file() {
    let conf = temp_file(
        "# Rocks\n\
         -c=rocks\n\
         -k=my secret key with spaces\n\
         -l sn1.example.net:7654\n\
         -a 192.168.100.1/24\n\
         \"-A3\"\n\
         --select-rtt\n\
         -d=n2n0\n\
         -r\n",
    );
    let path = conf.to_str().unwrap();
    let c = config(&run(&[path, "--dry-run"]));
    assert_eq!(get(&c, "community"), "rocks");
    assert_eq!(
        get(&c, "key"),
        "25 bytes",
        "whole rest of the line is the key"
    );
    assert_eq!(get(&c, "cipher"), "AES (3)");
    assert_eq!(get(&c, "supernodes"), "sn1.example.net:7654");
    assert_eq!(get(&c, "tap_address"), "static 192.168.100.1/24");
    assert_eq!(get(&c, "selection"), "Rtt");
    assert_eq!(get(&c, "tap_name"), "n2n0");
    assert_eq!(get(&c, "routing"), "true");

    // Later command-line options win; repeatable ones accumulate.
    let c = config(&run(&[
        path,
        "-c",
        "late",
        "-l",
        "sn2.example.net:7654",
        "-k",
        "x",
        "--dry-run",
    ]));
    assert_eq!(get(&c, "community"), "late");
    assert_eq!(
        get(&c, "supernodes"),
        "sn1.example.net:7654,sn2.example.net:7654"
    );
    assert_eq!(get(&c, "key"), "1 bytes");

    // A config file is only recognised as the first argument.
    refused(&["-c", "x", path], path);
    // Errors in the file name the file and the line.
    let bad = temp_file("-c=rocks\ncommunity rocks\n");
    refused(&[bad.to_str().unwrap(), "-l", "h:1"], "line 2");
    let bad2 = temp_file("-c=rocks\n-l h:1\n-A 3\n");
    refused(&[bad2.to_str().unwrap()], "-A3");
    refused(&["/nonexistent/edge.conf"], "/nonexistent/edge.conf");
    for p in [conf, bad, bad2] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn environment() {
    let c = config(
        &edge()
            .env("N2N_KEY", "envkey")
            .env("N2N_COMMUNITY", "envnet")
            .args(["-l", "h:1", "--dry-run"])
            .output()
            .unwrap(),
    );
    assert_eq!(get(&c, "community"), "envnet");
    assert_eq!(get(&c, "key"), "6 bytes");
    assert_eq!(get(&c, "cipher"), "AES (3)", "N2N_KEY selects AES");
    // The command line wins.
    let c = config(
        &edge()
            .env("N2N_KEY", "envkey")
            .env("N2N_COMMUNITY", "envnet")
            .args(["-l", "h:1", "-c", "cli", "-k", "k2", "--dry-run"])
            .output()
            .unwrap(),
    );
    assert_eq!(get(&c, "community"), "cli");
    assert_eq!(get(&c, "key"), "2 bytes");
    // N2N_PASSWORD means -J: header encryption on, the password not shown.
    let o = edge()
        .env("N2N_PASSWORD", "pw-from-env")
        .args([
            "-c",
            "x",
            "-l",
            "h:1",
            "-A4",
            "-k",
            "k",
            "-I",
            "alice",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let c = config(&o);
    assert_eq!(
        get(&c, "user_password"),
        "on (user 'alice', password set, not shown)"
    );
    assert_eq!(get(&c, "header_encryption"), "true");
    assert!(!stdout(&o).contains("pw-from-env") && !stderr(&o).contains("pw-from-env"));
    // Nor when given with -J.
    let o = run(&[
        "-c",
        "x",
        "-l",
        "h:1",
        "-A5",
        "-k",
        "k",
        "-J",
        "pw-on-cli",
        "-P",
        "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm",
        "--dry-run",
    ]);
    let c = config(&o);
    assert_eq!(
        get(&c, "federation_key"),
        "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm"
    );
    assert!(!stdout(&o).contains("pw-on-cli") && !stderr(&o).contains("pw-on-cli"));
}
