//! The .deb and the .rpm are described twice in `dist/Cargo.toml` (cargo-deb
//! and cargo-generate-rpm metadata): both must install the same files from the
//! same sources, every source must exist (or be staged by
//! `dist/build-packages.sh`), and `dist/check-packages.sh` must expect exactly
//! these files. The packages themselves are built and installed by `.ci/run`
//! (`dist/build-packages.sh`, `dist/check-packages.sh`).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn section<'a>(toml: &'a str, header: &str) -> &'a str {
    let start = toml.find(header).unwrap_or_else(|| panic!("no {header}"));
    let rest = &toml[start + header.len()..];
    let end = rest.find("\n[").unwrap_or(rest.len());
    &rest[..end]
}

/// (source, destination) of the cargo-deb assets (`["src", "dest", "mode"]`).
fn deb_assets(toml: &str) -> BTreeSet<(String, String)> {
    let re = Regex::new(r#"\[\s*"([^"]+)",\s*"([^"]+)",\s*"[0-7]+"\s*\]"#).unwrap();
    re.captures_iter(section(toml, "[package.metadata.deb]"))
        .map(|c| (c[1].to_owned(), format!("/{}", &c[2])))
        .collect()
}

/// (source, destination) of the cargo-generate-rpm assets.
fn rpm_assets(toml: &str) -> BTreeSet<(String, String)> {
    let re = Regex::new(r#"source = "([^"]+)", dest = "([^"]+)""#).unwrap();
    re.captures_iter(section(toml, "[package.metadata.generate-rpm]"))
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect()
}

#[test]
fn deb_and_rpm_install_the_same_files() {
    let toml = read("Cargo.toml");
    let deb = deb_assets(&toml);
    let rpm = rpm_assets(&toml);
    assert!(deb.len() >= 13, "{deb:?}");
    assert_eq!(deb, rpm, "cargo-deb and cargo-generate-rpm assets differ");
    for dest in [
        "/usr/sbin/edge",
        "/usr/sbin/supernode",
        "/usr/bin/n2n-decode",
        "/usr/bin/n2n-site",
        "/usr/share/man/man1/n2n-site.1.gz",
        "/usr/lib/systemd/system/edge.service",
        "/usr/lib/systemd/system/edge@.service",
        "/usr/lib/systemd/system/supernode.service",
        "/etc/n2n/edge.conf",
        "/etc/n2n/supernode.conf",
        "/usr/share/man/man8/edge.8.gz",
        "/usr/share/man/man1/supernode.1.gz",
    ] {
        assert!(deb.iter().any(|(_, d)| d == dest), "no {dest}");
    }
    // Every /etc file is a noreplace config file of the .rpm (dpkg marks
    // /etc files as conffiles by itself).
    let conf = Regex::new(r#"dest = "(/etc/[^"]+)"[^}]*config = "noreplace""#).unwrap();
    let marked: BTreeSet<&str> = conf
        .captures_iter(&toml)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    let etc: BTreeSet<&str> = rpm
        .iter()
        .map(|(_, d)| d.as_str())
        .filter(|d| d.starts_with("/etc/"))
        .collect();
    assert_eq!(marked, etc);
}

#[test]
fn every_source_exists_or_is_staged() {
    let toml = read("Cargo.toml");
    let build = read("build-packages.sh");
    // The binaries: `for b in NAMES; do` + `strip -o "$stage/$b" ...`.
    let strip_loop =
        Regex::new(r#"for b in ([a-z0-9 -]+); do\n\s*strip -o "\$stage/\$b""#).unwrap();
    let stripped: Vec<&str> = strip_loop
        .captures(&build)
        .map(|c| c.get(1).unwrap().as_str().split_whitespace().collect())
        .unwrap_or_default();
    assert!(
        stripped.contains(&"edge"),
        "no strip loop in build-packages.sh"
    );
    for (src, dest) in deb_assets(&toml) {
        if let Some(staged) = src.strip_prefix("target/release/n2n-dist/") {
            // build-packages.sh writes "$stage/<name>" (or "$stage/${u##*/}" for units).
            let named = build.contains(&format!("$stage/{staged}"))
                || (staged.ends_with(".service") && build.contains(staged))
                || stripped.contains(&staged);
            assert!(named, "{src} ({dest}) is not staged by build-packages.sh");
        } else {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(&src);
            assert!(p.is_file(), "{src} ({dest}) does not exist");
        }
    }
}

#[test]
fn check_packages_expects_exactly_these_files() {
    let toml = read("Cargo.toml");
    let check = read("check-packages.sh");
    let start = check.find("cat >\"$work/expected\" <<'EOF'\n").unwrap();
    let body = &check[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let listed: BTreeSet<String> = body[..body.find("\nEOF\n").unwrap()]
        .lines()
        .map(str::to_owned)
        .collect();
    let dests: BTreeSet<String> = deb_assets(&toml).into_iter().map(|(_, d)| d).collect();
    assert_eq!(listed, dests);
}
