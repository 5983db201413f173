//! `dist/man/supernode.1` documents every option of `supernode --help`, and
//! no option the binary does not have (`--version` is handled before the
//! option parser); groff formats it without a warning.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_testdata::manpage;

const BIN: &str = env!("CARGO_BIN_EXE_supernode");

#[test]
fn man_page_documents_every_option_of_help() {
    manpage::assert_documents_help(BIN, "supernode.1", 20);
}

#[test]
fn version_is_printed() {
    manpage::assert_version(BIN, "supernode", env!("CARGO_PKG_VERSION"), "supernode.1");
}

#[test]
fn groff_formats_it_without_warnings() {
    // groff is installed when missing (a loud skip without it, a failure
    // with N2N_E2E_REQUIRED=1).
    if n2n_tests::install::tool_available("supernode man page lint", "groff") {
        let w = manpage::groff_warnings("supernode.1");
        assert!(w.is_empty(), "{w}");
    }
}
