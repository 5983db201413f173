//! The checkout itself: its tracked files, and a scanner for paths that
//! leave it (the test suites, benches, fuzz seeds and scripts must need
//! nothing outside the repository).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The root of this checkout (two levels above this crate).
pub fn root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .expect("n2n-testdata lives in <root>/crates/n2n-testdata")
        .to_path_buf()
}

/// The files of the checkout, relative to [`root`], sorted: `git ls-files`
/// when the checkout is a git work tree, otherwise every file below the root
/// except `target/` and `.git/` folders (a source tarball).
pub fn files() -> Vec<String> {
    let root = root();
    let git = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output();
    let mut v: Vec<String> = match git {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => {
            let mut v = Vec::new();
            walk(&root, &root, &mut v);
            v
        }
    };
    v.sort();
    v
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let p = e.expect("readable directory entry").path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if p.is_dir() {
            if !matches!(name.as_deref(), Some("target" | ".git")) {
                walk(root, &p, out);
            }
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// One path in a file that points outside the checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsidePath {
    /// 1-based line number.
    pub line: usize,
    /// What was found.
    pub what: String,
}

/// How many folders below the root relative paths in `rel` (a file of the
/// checkout, `/`-separated) start from: the crate root (the nearest folder
/// with a `Cargo.toml`, as `CARGO_MANIFEST_DIR` and cargo's `path =` keys
/// use) for Rust sources, the file's own folder for everything else
/// (scripts use `$(dirname "$0")`).
pub fn base_depth(rel: &str, has_manifest: impl Fn(&str) -> bool) -> usize {
    let dir: Vec<&str> = rel.split('/').collect();
    let dir = &dir[..dir.len().saturating_sub(1)];
    if rel.ends_with(".rs") {
        for n in (0..=dir.len()).rev() {
            let d = dir[..n].join("/");
            let manifest = if d.is_empty() {
                "Cargo.toml".to_owned()
            } else {
                format!("{d}/Cargo.toml")
            };
            if has_manifest(&manifest) {
                return n;
            }
        }
    }
    dir.len()
}

/// The places in `text` that name a path outside the checkout, for a file
/// whose relative paths start `base_depth` folders below the root (see
/// [`base_depth`]): the `shared` folder next to a development checkout
/// (its spec and vectors), absolute paths into the development machine's
/// `/work` folder,
/// and relative paths whose leading `..` components climb above the root.
pub fn outside_paths(text: &str, base_depth: usize) -> Vec<OutsidePath> {
    // Built at run time so that this file does not match itself.
    let shared = format!("{}/", "shared");
    let work = format!("/{}/", "work");
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut report = |what: String| found.push(OutsidePath { line: i + 1, what });
        for (at, _) in line.match_indices(&shared) {
            if !word_char_before(line, at) {
                report(format!(
                    "path into the shared folder: {}",
                    excerpt(line, at)
                ));
            }
        }
        for (at, _) in line.match_indices(&work) {
            if !word_char_before(line, at) {
                report(format!("absolute /work path: {}", excerpt(line, at)));
            }
        }
        let mut from = 0;
        while let Some(off) = line[from..].find("..") {
            let at = from + off;
            let ups = climbs(line, at);
            from = at + 2 + 3 * ups.saturating_sub(1);
            if ups > base_depth {
                report(format!(
                    "{ups} × `..` from {base_depth} folder(s) below the root: {}",
                    excerpt(line, at)
                ));
            }
        }
    }
    found
}

fn word_char_before(line: &str, at: usize) -> bool {
    line[..at]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// The number of `..` path components starting at byte `at` (0 when the
/// dots there are not a path component, like a Rust range `0..n` or a rest
/// pattern `{ a, .. }`: a `..` counts only next to a `/`).
fn climbs(line: &str, at: usize) -> usize {
    let before = line[..at].chars().next_back();
    let starts_component =
        before.is_none_or(|c| matches!(c, '/' | '"' | '\'' | '`' | '(' | '=' | ':' | ' ' | '\t'));
    if !starts_component || (before != Some('/') && !line[at..].starts_with("../")) {
        return 0;
    }
    let ends_component = |c: Option<char>| {
        c.is_none_or(|c| matches!(c, '/' | '"' | '\'' | '`' | ')' | ' ' | '\t' | ';'))
    };
    let mut n = 0;
    let mut rest = &line[at..];
    while let Some(r) = rest.strip_prefix("..") {
        if !ends_component(r.chars().next()) {
            break;
        }
        n += 1;
        match r.strip_prefix('/') {
            Some(r) => rest = r,
            None => break,
        }
    }
    n
}

fn excerpt(line: &str, at: usize) -> String {
    let start = line[..at]
        .char_indices()
        .rev()
        .nth(20)
        .map_or(0, |(i, _)| i);
    let end = line[at..]
        .char_indices()
        .nth(40)
        .map_or(line.len(), |(i, _)| at + i);
    line[start..end].trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(n: usize) -> String {
        vec![".."; n].join("/")
    }

    #[test]
    fn finds_the_shared_folder_and_work_paths() {
        let shared = format!("let p = \"{}/{}/spec/cli.md\";", up(1), "shared");
        assert_eq!(outside_paths(&shared, 5).len(), 1, "{shared}");
        let vectors = format!("dir={}/vectors", "shared");
        assert_eq!(outside_paths(&vectors, 0).len(), 1);
        let work = format!("cat /{}/main/x", "work");
        assert_eq!(outside_paths(&work, 3).len(), 1);
        // Words that merely end in the same letters are not paths.
        let ok = format!("un{}/x /homework/ network/{}/", "shared", "work");
        assert!(outside_paths(&ok, 0).is_empty(), "{ok}");
    }

    #[test]
    fn counts_climbs_against_the_depth() {
        let three = format!("repo=$(cd \"$here/{}\" && pwd)", up(3));
        assert!(outside_paths(&three, 3).is_empty());
        let hits = outside_paths(&three, 2);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].what.contains("3 × `..`"), "{hits:?}");
        let rs = format!(
            "Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\"{}/fuzz\")",
            up(2)
        );
        assert!(outside_paths(&rs, 2).is_empty());
        assert_eq!(outside_paths(&rs, 1).len(), 1);
        let root = format!("cd \"$(dirname \"$0\")/{}\"", up(1));
        assert!(outside_paths(&root, 1).is_empty());
        assert_eq!(outside_paths(&root, 0).len(), 1);
        // Second line, reported with its number.
        let two = format!("fine\npath = \"{}/x\"", up(2));
        assert_eq!(outside_paths(&two, 1)[0].line, 2);
    }

    #[test]
    fn rust_ranges_are_not_paths() {
        let code = "for i in 0..n { v[..3]; let s = &x[a..]; Foo { a, .. }; \
                    Bar { ..Default::default() } } (0..=9)";
        assert!(outside_paths(code, 0).is_empty());
    }

    #[test]
    fn base_depth_uses_the_crate_root_for_rust() {
        let manifests = ["Cargo.toml", "crates/edge/Cargo.toml", "fuzz/Cargo.toml"];
        let has = |m: &str| manifests.contains(&m);
        assert_eq!(base_depth("crates/edge/tests/cli.rs", has), 2);
        assert_eq!(base_depth("crates/edge/dist/install.sh", has), 3);
        assert_eq!(base_depth("fuzz/fuzz_targets/a.rs", has), 1);
        assert_eq!(base_depth(".ci/run", has), 1);
        assert_eq!(base_depth("README.md", has), 0);
    }
}
