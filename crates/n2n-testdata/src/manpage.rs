//! Checks of the man pages in `dist/man/` against a binary's `--help`: the
//! option names are taken from the help text (whatever produces it), so the
//! man pages do not depend on how the command line is implemented.

use std::collections::BTreeSet;

/// `true` for an option name: `-c`, `-A3`, `--select-rtt`.
fn is_option(t: &str) -> bool {
    let body = t
        .strip_prefix("--")
        .or_else(|| t.strip_prefix('-'))
        .unwrap_or("");
    body.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The options a help text documents: on every line that starts (after
/// indentation) with `-`, the leading option names, up to the first word
/// that is not one (`-c, --community <name>  …` gives `-c` and
/// `--community`; clap's `--verbose...` gives `--verbose`).
pub fn help_options(help: &str) -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        for word in line.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
            let word = word.trim_end_matches("...");
            if !is_option(word) {
                break;
            }
            v.insert(word.to_owned());
        }
    }
    v
}

/// Man-page source as plain words: font escapes (`\fB`…) removed, `\-` as
/// `-`, quotes dropped.
pub fn plain(troff: &str) -> String {
    let mut s = troff.replace("\\-", "-").replace('"', " ");
    for esc in ["\\fB", "\\fI", "\\fR", "\\fP", "\\&", "\\e"] {
        s = s.replace(esc, " ");
    }
    s
}

/// The options the man page documents: the option names on the tag line of
/// every `.TP` in its `OPTIONS` section.
pub fn man_options(troff: &str) -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    let mut in_options = false;
    let mut tag_next = false;
    for line in troff.lines() {
        if let Some(h) = line.strip_prefix(".SH ") {
            in_options = h.trim().trim_matches('"') == "OPTIONS";
            continue;
        }
        if !in_options {
            continue;
        }
        if line.starts_with(".TP") {
            tag_next = true;
            continue;
        }
        if tag_next {
            tag_next = false;
            let words = plain(line);
            let mut words = words.split_whitespace();
            if words.next().is_some_and(|m| !m.starts_with('.')) {
                continue; // not a macro line: no tag
            }
            v.extend(words.filter(|w| is_option(w)).map(str::to_owned));
        }
    }
    v
}

/// What is wrong between a `--help` text and a man page: options of the help
/// missing from the man page's OPTIONS section, and options the man page
/// documents that the help does not know (except those in `extra`, e.g.
/// `--version`, handled outside the option parser).
pub fn mismatches(help: &str, troff: &str, extra: &[&str]) -> Vec<String> {
    let help = help_options(help);
    let man = man_options(troff);
    let mut v: Vec<String> = help
        .difference(&man)
        .map(|o| format!("{o} is in --help but not in the man page's OPTIONS"))
        .collect();
    v.extend(
        man.difference(&help)
            .filter(|o| !extra.contains(&o.as_str()))
            .map(|o| format!("{o} is in the man page but not in --help")),
    );
    v
}

/// `dist/man/<name>` of this checkout: its path and text.
pub fn read(name: &str) -> (std::path::PathBuf, String) {
    let path = crate::repo::root().join("dist/man").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// The standard output of `bin arg` (which must succeed).
pub fn run(bin: &str, arg: &str) -> String {
    let out = std::process::Command::new(bin)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    assert!(out.status.success(), "{bin} {arg}: {}", out.status);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Asserts that man page `man` (in `dist/man`) documents every option of
/// `bin --help` and no other (but `--version`), and that `bin --help` has at
/// least `min_options` options (the parse found them).
pub fn assert_documents_help(bin: &str, man: &str, min_options: usize) {
    let help = run(bin, "--help");
    let n = help_options(&help).len();
    assert!(n >= min_options, "only {n} options found in {bin} --help");
    let (_, text) = read(man);
    let bad = mismatches(&help, &text, &["--version"]);
    assert!(bad.is_empty(), "dist/man/{man}:\n{}", bad.join("\n"));
}

/// Asserts that `bin --version` prints `<program> <version> …` and that man
/// page `man` names the same version.
pub fn assert_version(bin: &str, program: &str, version: &str, man: &str) {
    let text = run(bin, "--version");
    assert!(text.starts_with(&format!("{program} {version} ")), "{text}");
    let (_, page) = read(man);
    assert!(
        page.contains(&format!("\"n2n-rs {version}\"")),
        "dist/man/{man} names another version than {version}"
    );
}

/// What `groff -man -ww -z` says about man page `man` (empty: no warning).
pub fn groff_warnings(man: &str) -> String {
    let (path, _) = read(man);
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("groff: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        err
    } else {
        format!("{} {err}", out.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "usage: edge [options]\n\
        A file holds -c=x lines.\n \
        -c, --community <name>     community name\n \
        -A1                        no encryption\n                            \
        -A2 to -A7 need a key.\n \
        -p [ip:]port | ip          bind\n  \
        -v, --verbose...           more logging\n      \
        --management-password <PW>  pw\n";

    const MAN: &str = ".TH EDGE 8\n.SH NAME\nedge\n.SH OPTIONS\n\
        .TP\n.BR \\-c \", \" \\-\\-community \" \\fIname\\fR\"\n\
        Community (see\n.BR \\-k ).\n\
        .TP\n.B \\-A1\nnull\n.TP\n.B \\-A2\nTwofish\n\
        .TP\n.BR \\-p \" [\\fIip\\fB:\\fR]\\fIport\\fR | \\fIip\\fR\"\nbind\n\
        .TP\n.BR \\-v \", \" \\-\\-verbose\nmore\n\
        .TP\n.BI \\-\\-management\\-password \" pw\"\npw\n\
        .TP\n.B \\-\\-version\nversion\n\
        .SH FILES\n.TP\n.B \\-x\nnot an option heading\n";

    #[test]
    fn reads_the_options_of_help_and_man_page() {
        let want: BTreeSet<String> = [
            "-c",
            "--community",
            "-A1",
            "-A2",
            "-p",
            "-v",
            "--verbose",
            "--management-password",
        ]
        .map(String::from)
        .into();
        assert_eq!(help_options(HELP), want);
        let mut man = want.clone();
        man.insert("--version".into());
        assert_eq!(man_options(MAN), man);
        assert!(mismatches(HELP, MAN, &["--version"]).is_empty());
    }

    #[test]
    fn reports_both_directions() {
        let help = format!("{HELP} -H                         header encryption\n");
        let m = mismatches(&help, MAN, &[]);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("-H is in --help"), "{m:?}");
        assert!(m[1].starts_with("--version is in the man page"), "{m:?}");
    }
}
