//! The system tools the test code starts are exactly the tools
//! `n2n_tests::install` installs (plus Debian's always-present Essential
//! programs), and the helpers start them only through `install`.
//!
//! A static scan of the workspace's tracked Rust files:
//! * the helpers (`tests/src`): every program named in `Command::new("…")`,
//!   `install::program("…")`, a `Netns` launch (`exec`, `spawn`, …) or an
//!   argv array literal (`["iperf3", "-s", …]`); `Command::new("literal")`
//!   itself only in `install.rs` (the one place that installs);
//! * the other suites (`tests/tests`, `crates/*/tests`): the programs of
//!   `Command::new("…")`, `Netns` launches and `require_tools`/`ensure_tools`
//!   lists; a file starting a tool of the table must go through `install`
//!   (or `require_root`/`require_tools`, which call it).
//!
//! `n2n-testdata` (no dependency on this crate) starts `git` (optional: it
//! walks the folder without it) and `groff` (only after its callers'
//! `tool_available("…", "groff")`, which this scan sees).
//!
//! At run time `install::ensure_program` refuses a program in neither table,
//! so argv built in ways this scan cannot see still cannot start an
//! unlisted tool.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use n2n_tests::install::{ESSENTIAL, TOOL_PACKAGES};
use regex::Regex;

/// A program started at `line` of a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Start {
    line: usize,
    prog: String,
    /// `Command::new("…")` (as opposed to a helper call or argv array).
    command_new: bool,
}

fn line_of(src: &str, at: usize) -> usize {
    src[..at].matches('\n').count() + 1
}

/// The source without its `#[cfg(test)]` unit-test module (the helpers keep
/// it last), whose arrays are test data, not argv.
fn without_unit_tests(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

/// Programs `src` starts. `helper`: also the first word of every argv array
/// literal (the helpers build argv as arrays), except arrays that are
/// arguments (`ip(&[…])`, `.ip(&[…])`, `.args([…])`, `apt(&[…])`).
fn started(src: &str, helper: bool) -> Vec<Start> {
    let prog = r#""([a-z][a-z0-9_.-]*)""#;
    let forms = [
        (format!(r"Command::new\(\s*{prog}"), true),
        (format!(r"\b(?:program|ensure_program)\(\s*{prog}"), false),
        (
            format!(r"\.(?:exec|exec_status|exec_timeout)\(\s*&\[\s*{prog}"),
            false,
        ),
        (format!(r"\.(?:spawn|spawn_env)\([^;]*?&\[\s*{prog}"), false),
        (format!(r"\btool_available\([^;]*?,\s*{prog}"), false),
    ];
    let mut v = Vec::new();
    for (re, command_new) in forms {
        for c in Regex::new(&re).unwrap().captures_iter(src) {
            let m = c.get(1).unwrap();
            v.push(Start {
                line: line_of(src, m.start()),
                prog: m.as_str().to_owned(),
                command_new,
            });
        }
    }
    // Every name of a tool list.
    let list = Regex::new(r"\b(?:ensure_tools|require_tools)\([^;]*?&\[([^\]]*)\]").unwrap();
    let word = Regex::new(prog).unwrap();
    for c in list.captures_iter(src) {
        for w in word.captures_iter(c.get(1).unwrap().as_str()) {
            v.push(Start {
                line: line_of(src, c.get(1).unwrap().start()),
                prog: w[1].to_owned(),
                command_new: false,
            });
        }
    }
    if helper {
        let array = Regex::new(&format!(r"(?:vec!\[|\[)\s*{prog}\s*,")).unwrap();
        let argument = Regex::new(r"(?:\bip\(&|\.ip\(&|\.args\(|\bapt\(&)\s*$").unwrap();
        for c in array.captures_iter(src) {
            let whole = c.get(0).unwrap();
            if argument.is_match(&src[..whole.start()]) {
                continue;
            }
            let m = c.get(1).unwrap();
            v.push(Start {
                line: line_of(src, m.start()),
                prog: m.as_str().to_owned(),
                command_new: false,
            });
        }
    }
    v.sort();
    v.dedup();
    v
}

fn rust_files(prefixes: &[&str]) -> Vec<String> {
    n2n_testdata::repo::files()
        .into_iter()
        .filter(|f| f.ends_with(".rs") && prefixes.iter().any(|p| f.starts_with(p)))
        .collect()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(n2n_testdata::repo::root().join(rel)).unwrap()
}

fn is_suite(rel: &str) -> bool {
    rel.starts_with("tests/tests/")
        || (rel.starts_with("crates/") && rel.split('/').nth(2) == Some("tests"))
}

#[test]
fn the_tools_the_tests_start_are_the_tools_install_installs() {
    let table: BTreeSet<&str> = TOOL_PACKAGES.iter().map(|(t, _)| *t).collect();
    let essential: BTreeSet<&str> = ESSENTIAL.iter().map(|(t, _)| *t).collect();
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();

    let helpers = rust_files(&["tests/src/"]);
    assert!(helpers.iter().any(|f| f == "tests/src/impair.rs"));
    for rel in &helpers {
        let text = read(rel);
        let src = without_unit_tests(&text);
        for s in started(src, rel != "tests/src/install.rs") {
            if s.command_new && rel != "tests/src/install.rs" {
                problems.push(format!(
                    "{rel}:{}: Command::new(\"{}\") bypasses n2n_tests::install::program",
                    s.line, s.prog
                ));
            }
            used.entry(s.prog)
                .or_default()
                .push(format!("{rel}:{}", s.line));
        }
    }
    // This file's own samples are not program starts.
    let suites: Vec<String> = rust_files(&["tests/tests/", "crates/"])
        .into_iter()
        .filter(|f| is_suite(f) && f != "tests/tests/tools_installed.rs")
        .collect();
    assert!(suites.iter().any(|f| f == "crates/edge/tests/tap.rs"));
    for rel in &suites {
        let src = read(rel);
        let installs = src.contains("install::")
            || src.contains("require_tools(")
            || src.contains("require_root(");
        for s in started(&src, false) {
            if table.contains(s.prog.as_str()) && !installs {
                problems.push(format!(
                    "{rel}:{}: starts `{}` without n2n_tests::install (ensure_tools, \
                     tool_available) or require_root/require_tools",
                    s.line, s.prog
                ));
            }
            used.entry(s.prog)
                .or_default()
                .push(format!("{rel}:{}", s.line));
        }
    }

    for (prog, wher) in &used {
        if !table.contains(prog.as_str()) && !essential.contains(prog.as_str()) {
            problems.push(format!(
                "`{prog}` is started ({}) but is neither in install::TOOL_PACKAGES nor in \
                 install::ESSENTIAL",
                wher.join(", ")
            ));
        }
    }
    for t in &table {
        if !used.contains_key(*t) {
            problems.push(format!(
                "install::TOOL_PACKAGES lists `{t}`, which no test code starts"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_finds_each_form() {
    let src = r#"
        let a = Command::new("tcpdump").arg("-n");
        let b = ns.exec(&["nft", "-f", &p])?;
        let c = ns.spawn(
            "server",
            &["iperf3", "-s"],
        )?;
        let d = vec!["tc", "qdisc", "replace"];
        let e = ["iptables", "-w", "5"];
        ns.ip(&["link", "add", "x"])?;
        ip(&["netns", "add", &name])?;
        cmd.args(["build", "--bin"]);
        install::program("modprobe")?;
        require_tools("t", &["ip", "dnsmasq"]);
        tool_available("t", "zstd");
    "#;
    let got: Vec<(String, bool)> = started(src, true)
        .into_iter()
        .map(|s| (s.prog, s.command_new))
        .collect();
    let names: BTreeSet<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    let want = [
        "dnsmasq", "iperf3", "ip", "iptables", "modprobe", "nft", "tc", "tcpdump", "zstd",
    ];
    assert_eq!(names, want.into_iter().collect(), "{got:?}");
    assert!(got.contains(&("tcpdump".into(), true)));
    // Outside the helpers, argv arrays are not taken (test data there).
    let suite: BTreeSet<String> = started(src, false).into_iter().map(|s| s.prog).collect();
    assert!(!suite.contains("tc") && !suite.contains("iptables"));
    assert!(suite.contains("nft") && suite.contains("iperf3"));
    // Unit tests of a helper are not scanned.
    let helper = "let x = [\"ping\", \"-c\"];\n#[cfg(test)]\nmod tests { [\"null\", \"aes\"]; }";
    let progs: Vec<String> = started(without_unit_tests(helper), true)
        .into_iter()
        .map(|s| s.prog)
        .collect();
    assert_eq!(progs, ["ping"]);
}
