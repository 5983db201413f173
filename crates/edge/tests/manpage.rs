//! `dist/man/edge.8` documents every option of `edge --help`, and no option
//! the binary does not have (`--version` is handled before the option
//! parser); groff formats it without a warning.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use n2n_testdata::manpage;

fn man_page() -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dist/man/edge.8");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_page_documents_every_option_of_help() {
    let help = help();
    let options = manpage::help_options(&help);
    assert!(
        options.len() >= 45,
        "only {} options in --help",
        options.len()
    );
    let (_, man) = man_page();
    let bad = manpage::mismatches(&help, &man, &["--version"]);
    assert!(bad.is_empty(), "dist/man/edge.8:\n{}", bad.join("\n"));
}

#[test]
fn version_is_printed() {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("edge {} ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let (_, man) = man_page();
    assert!(
        man.contains("n2n-rs 0.1.0"),
        "the man page names another version"
    );
}

#[test]
fn groff_formats_it_without_warnings() {
    if !n2n_tests::install::tool_available("edge man page lint", "groff") {
        return;
    }
    let (path, _) = man_page();
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}
