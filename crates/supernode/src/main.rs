//! `supernode` binary: see `n2n_supernode::options` for the command line and
//! the exit codes (0 clean stop, 1 system failure, 2 configuration error).

use std::process::ExitCode;

use n2n_supernode::driver::{Driver, bind_sockets};
use n2n_supernode::options::{self, Parsed};
use n2n_sys::notify::Notifier;
use n2n_sys::process::{PrivilegeDrop, drop_privileges};
use n2n_sys::signals::Signals;

const PROGRAM: &str = "supernode";

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{PROGRAM}: error: {msg}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let args = match n2n_cli::utf8_args(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => return fail(n2n_cli::EXIT_USAGE, e),
    };
    // `--version` (an extension: C n2n has none; `-V` is the version text
    // sent to edges).
    if args.iter().skip(1).any(|a| a == "--version") {
        println!(
            "supernode {} (n2n-rs; n2n v3 protocol, compatible with C n2n {})",
            env!("CARGO_PKG_VERSION"),
            options::DEFAULT_VERSION
        );
        return ExitCode::SUCCESS;
    }
    let opts = match options::parse(&args) {
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(o)) => *o,
        Err(e) => return fail(e.exit_code(), e),
    };

    // Bind before daemonizing and dropping privileges: errors reach the
    // terminal and privileged ports work.
    let sockets = match bind_sockets(&opts) {
        Ok(s) => s,
        Err(e) => return fail(1, e),
    };
    let log = match n2n_cli::daemon::detach_and_log(PROGRAM, opts.foreground, opts.verbosity) {
        Ok(h) => h,
        Err(e) => return fail(1, e),
    };

    tracing::warn!(
        "using default federation name; FOR TESTING ONLY, usage of a custom federation name (-F) \
         is highly recommended!"
    );
    match (&opts.communities, &opts.community_file) {
        (Some(list), Some(path)) => {
            tracing::info!("loaded {list} from {}", path.display());
        }
        _ => tracing::info!("no community file (-c): any community is accepted"),
    }

    match drop_privileges(opts.uid, opts.gid) {
        Ok(PrivilegeDrop::Dropped { uid, gid }) => {
            tracing::info!("dropping privileges to uid={uid}, gid={gid}");
        }
        Ok(PrivilegeDrop::KeptRoot) => {
            tracing::warn!("running as root is discouraged, check out the -u/-g options");
        }
        Ok(PrivilegeDrop::NotRoot { uid, gid }) => {
            if opts.uid.is_some() || opts.gid.is_some() {
                tracing::warn!("not running as root (uid={uid}, gid={gid}): -u/-g have no effect");
            }
        }
        Err(e) => {
            tracing::error!("{e}");
            return fail(1, e);
        }
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(1, format_args!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let signals = Signals::new()?;
        let driver = Driver::new(sockets, &opts, log, Notifier::from_env())?;
        driver.run(signals).await
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            fail(1, e)
        }
    }
}
