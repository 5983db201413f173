//! Prints the end-to-end results table (`.ci/run` calls this after the tests).
//!
//! * `e2e-summary` prints it; exits 1 when a scenario failed.
//! * `e2e-summary --strict` also exits 1 when a scenario was skipped or none was recorded.
//! * `e2e-summary --reset` empties it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--reset") {
        n2n_tests::reset_results();
        return;
    }
    let strict = args.iter().any(|a| a == "--strict");
    let (pass, fail, skip) = n2n_tests::print_summary();
    if fail > 0 {
        eprintln!("e2e-summary: {fail} scenario(s) FAILED");
        std::process::exit(1);
    }
    if strict && skip > 0 {
        eprintln!("e2e-summary: {skip} scenario(s) skipped (not allowed with --strict)");
        std::process::exit(1);
    }
    if strict && pass == 0 {
        eprintln!("e2e-summary: no end-to-end scenario recorded (not allowed with --strict)");
        std::process::exit(1);
    }
}
