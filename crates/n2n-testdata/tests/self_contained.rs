//! The checkout needs nothing outside itself: no tracked source, script,
//! manifest, CI step, fuzz target or seed names a path above the repository
//! root (the `shared` folder next to a development checkout, the `/work` folder,
//! `../..` climbing out), and the test data the suites read is inside it.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_testdata::repo;

#[test]
fn no_tracked_file_names_a_path_outside_the_checkout() {
    let root = repo::root();
    let files = repo::files();
    let manifests: std::collections::HashSet<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| *f == "Cargo.toml" || f.ends_with("/Cargo.toml"))
        .collect();
    // Whatever else happens, the places the issue named are scanned.
    for must in [
        "Cargo.toml",
        ".ci/run",
        "fuzz/Cargo.toml",
        "crates/edge/tests/cli.rs",
        "crates/n2n-decode/tests/fuzz_corpus.rs",
        "crates/n2n-testdata/src/lib.rs",
        "README.md",
    ] {
        assert!(files.iter().any(|f| f == must), "{must} is not listed");
    }
    assert!(
        files.iter().any(|f| f.starts_with("fuzz/corpus/")),
        "no fuzz seeds listed"
    );
    let mut scanned = 0;
    let mut bad = Vec::new();
    for rel in &files {
        let Ok(bytes) = std::fs::read(root.join(rel)) else {
            continue; // deleted in the work tree, not yet committed
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue; // binary (pcaps, most fuzz seeds)
        };
        scanned += 1;
        let depth = repo::base_depth(rel, |m| manifests.contains(m));
        for hit in repo::outside_paths(&text, depth) {
            bad.push(format!("{rel}:{}: {}", hit.line, hit.what));
        }
    }
    assert!(scanned > 150, "only {scanned} text files scanned");
    assert!(
        bad.is_empty(),
        "paths outside the checkout:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_test_data_is_part_of_the_checkout() {
    let root = repo::root().canonicalize().unwrap();
    if std::env::var_os("N2N_VECTORS_DIR").is_none_or(|v| v.is_empty()) {
        let v = n2n_testdata::captures_dir().canonicalize().unwrap();
        assert!(
            v.starts_with(&root),
            "{} is outside {}",
            v.display(),
            root.display()
        );
    }
    let files = repo::files();
    for needed in [
        "crates/n2n-testdata/vectors/n2n-3.1.1/aes/capture.pcap",
        "crates/edge/tests/fixtures/c-edge-options.txt",
    ] {
        assert!(files.iter().any(|f| f == needed), "{needed} is not tracked");
    }
}

#[test]
fn every_crate_is_dual_licensed_and_the_texts_are_there() {
    let root = repo::root();
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
    let workspace = read("Cargo.toml");
    assert!(workspace.contains("license = \"MIT OR Apache-2.0\""));
    let mut crates = 0;
    for rel in repo::files()
        .iter()
        .filter(|f| f.ends_with("Cargo.toml") && *f != "Cargo.toml")
    {
        let text = read(rel);
        if !text.contains("[package]") {
            continue;
        }
        crates += 1;
        assert!(
            text.lines().any(|l| {
                let l = l.replace(' ', "");
                l == "license.workspace=true" || l == "license=\"MITORApache-2.0\""
            }),
            "{rel} has no `license` (MIT OR Apache-2.0)"
        );
    }
    assert!(crates >= 10, "only {crates} crates found");
    let mit = read("LICENSE-MIT");
    assert!(mit.starts_with("Copyright (c) The n2n-rs developers"));
    assert!(mit.contains("Permission is hereby granted, free of charge"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    assert!(apache.contains("END OF TERMS AND CONDITIONS"));
    let readme = read("README.md");
    assert!(readme.contains("LICENSE-MIT") && readme.contains("LICENSE-APACHE"));
}
