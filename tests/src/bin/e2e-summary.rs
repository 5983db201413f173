//! Prints the end-to-end results table (`.ci/run` calls this after the tests).
//! `e2e-summary --reset` empties it instead. Exits non-zero when a scenario failed.

fn main() {
    if std::env::args().any(|a| a == "--reset") {
        n2n_tests::reset_results();
        return;
    }
    let (_pass, fail, _skip) = n2n_tests::print_summary();
    if fail > 0 {
        std::process::exit(1);
    }
}
