//! `n2n-throughput`: end-to-end throughput of the n2n tunnel vs. a raw veth, in network
//! namespaces (root required). See `n2n_tests::perf` and `--help`.
//!
//! ```text
//! cargo run --release -p n2n-tests --bin n2n-throughput -- \
//!     [--runs N] [--seconds S] [--json out.json] [--ciphers null,aes,...] [--quick]
//! ```

use std::process::ExitCode;

use n2n_tests::perf::{self, Invocation, PerfConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == n2n_tests::tapfwd::FLAG) {
        // Internal mode: the floor forwarder the harness starts in a namespace
        // (SIGTERM ends it: it has nothing to clean up).
        let e = n2n_tests::tapfwd::run(args.get(1..).unwrap_or_default()).err();
        eprintln!(
            "n2n-throughput {}: {}",
            n2n_tests::tapfwd::FLAG,
            e.unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    // Before any thread exists: Ctrl-C / SIGTERM stop the run and clean up.
    if let Err(e) = perf::stop_on_signals() {
        eprintln!("n2n-throughput: {e}");
        return ExitCode::from(2);
    }
    let cfg = match PerfConfig::parse_args(&args) {
        Ok(Invocation::Help) => {
            print!("{}", perf::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run(c)) => c,
        Err(e) => {
            eprintln!("n2n-throughput: {e}\n\n{}", perf::USAGE);
            return ExitCode::from(2);
        }
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("n2n-throughput: must run as root (it creates network namespaces)");
        return ExitCode::from(2);
    }
    let report = match perf::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("n2n-throughput: set-up failed: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", report.table());
    if let Some(path) = &cfg.json {
        let text = match serde_json::to_string_pretty(&report.to_json()) {
            Ok(t) => t + "\n",
            Err(e) => {
                eprintln!("n2n-throughput: cannot serialise the report: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("n2n-throughput: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
        eprintln!("n2n-throughput: JSON report written to {}", path.display());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!("n2n-throughput: some measurements FAILED (see the table)");
        ExitCode::from(1)
    }
}
