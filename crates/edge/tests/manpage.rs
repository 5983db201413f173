//! `dist/man/edge.8` documents every option of `edge --help`, and no option
//! the binary does not have (`--version` is handled before the option
//! parser); groff formats it without a warning.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_testdata::manpage;

const BIN: &str = env!("CARGO_BIN_EXE_edge");

#[test]
fn man_page_documents_every_option_of_help() {
    manpage::assert_documents_help(BIN, "edge.8", 45);
}

#[test]
fn version_is_printed() {
    manpage::assert_version(BIN, "edge", env!("CARGO_PKG_VERSION"), "edge.8");
}

#[test]
fn groff_formats_it_without_warnings() {
    // groff is installed when missing (a loud skip without it, a failure
    // with N2N_E2E_REQUIRED=1).
    if n2n_tests::install::tool_available("edge man page lint", "groff") {
        let w = manpage::groff_warnings("edge.8");
        assert!(w.is_empty(), "{w}");
    }
}
