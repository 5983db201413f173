//! `edge`: the n2n v3 edge daemon.
//!
//! Exit status: 0 after help or a clean stop (SIGINT, SIGTERM, management
//! `stop`), 1 on a run-time failure (TAP, socket, privileges, ...), 2 on a
//! bad command line or configuration file ([`cli::EXIT_USAGE`]).
//!
//! Start-up order: parse the options; bind the main and management sockets
//! (errors still reach the terminal); daemonize unless `-f`; start logging
//! (stderr, or syslog as a daemon); resolve the supernode names; build the
//! sans-IO core; start the background runtime (one tokio worker thread);
//! then, on this thread, run [`driver::Driver`]: it opens the TAP (at once
//! with `-a`, after the supernode assigned an address otherwise), drops
//! privileges and loops.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;

use n2n_core::edge::{Edge, VERSION};
use n2n_edge::cli::{self, EdgeOptions, Invocation, PreferredLocal, TapAddress};
use n2n_edge::config::edge_config;
use n2n_edge::driver::{self, Driver, Setup};
use n2n_edge::resolve;
use n2n_edge::sock::{self, MainSocketConfig};
use n2n_sys::notify::Notifier;
use n2n_sys::signals::Signals;

const PROGRAM: &str = "edge";

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{PROGRAM}: {msg}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let inv = n2n_cli::utf8_args(std::env::args_os()).and_then(|argv| {
        cli::parse_invocation(
            &argv,
            &|k| std::env::var(k).ok(),
            &|p| std::fs::read_to_string(p),
            &host_name,
        )
    });
    // `--version` (an extension: C n2n has none), handled before the
    // C-compatible option parser.
    if std::env::args_os().skip(1).any(|a| a == "--version") {
        println!(
            "edge {} (n2n-rs; n2n v3 protocol, compatible with C n2n {VERSION})",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    match inv {
        Err(e) => fail(cli::EXIT_USAGE, format_args!("{e} (see edge --help)")),
        Ok(Invocation::ShortHelp) => {
            print!("{}", cli::short_help());
            ExitCode::SUCCESS
        }
        Ok(Invocation::LongHelp) => {
            print!("{}", cli::long_help());
            ExitCode::SUCCESS
        }
        Ok(Invocation::DryRun(opts)) => {
            for w in &opts.warnings {
                eprintln!("{PROGRAM}: warning: {w}");
            }
            print!("{}", opts.describe());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(opts)) => {
            // -J on the command line: overwrite it where `ps` reads it
            // (N2N_PASSWORD never puts it there).
            if let Some(pw) = &opts.password {
                match n2n_sys::cmdline::hide_argument(pw.bytes(), &[b"-J"]) {
                    Ok(_) => {}
                    Err(e) => eprintln!("{PROGRAM}: warning: cannot hide -J from ps: {e}"),
                }
            }
            run(*opts)
        }
    }
}

/// `-e`: the advertised local socket. `auto` = the address of the
/// interface that routes to the first resolved supernode.
fn preferred_local(
    opts: &EdgeOptions,
    local_port: u16,
    first_sn: Option<SocketAddr>,
) -> Option<SocketAddr> {
    let ip = match opts.preferred_local? {
        PreferredLocal::Addr(a) => IpAddr::V4(a),
        PreferredLocal::Auto => {
            let Some(sn) = first_sn else {
                tracing::warn!("-e auto: no supernode address known, not advertising one");
                return None;
            };
            let probe = UdpSocket::bind(SocketAddr::new(
                if sn.is_ipv4() {
                    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                },
                0,
            ))
            .and_then(|s| s.connect(sn).and_then(|()| s.local_addr()));
            match probe {
                Ok(a) => a.ip(),
                Err(e) => {
                    tracing::warn!("-e auto: cannot find the local address towards {sn}: {e}");
                    return None;
                }
            }
        }
    };
    let s = SocketAddr::new(ip, local_port);
    tracing::info!("advertising local socket {s} to peers (-e)");
    Some(s)
}

fn rng_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("cannot read OS randomness: {e}"))?;
    Ok(seed)
}

fn run(opts: EdgeOptions) -> ExitCode {
    // Sockets first: bind errors reach the terminal, before daemonizing.
    let main_cfg = MainSocketConfig {
        bind: opts.bind,
        tos: opts.tos,
        pmtu_discovery: opts.pmtu_discovery,
        reuse_port: opts.threads > 1,
    };
    let main = match sock::bind_main(&main_cfg) {
        Ok(m) => m,
        Err(e) => return fail(1, e),
    };
    let local = match main.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(1, format_args!("main socket: {e}")),
    };
    let mgmt = match sock::bind_management(opts.mgmt_port) {
        Ok(m) => m,
        Err(e) => {
            return fail(
                1,
                format_args!(
                    "cannot open the management port (-t {}): {e}",
                    opts.mgmt_port
                ),
            );
        }
    };
    // Without -f the parent returns once the TAP is configured (C's order).
    let log = match n2n_cli::daemon::detach_when_ready_and_log(
        PROGRAM,
        opts.foreground,
        u32::from(opts.verbosity),
    ) {
        Ok(h) => h,
        Err(e) => return fail(1, e),
    };
    for w in &opts.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "starting n2n edge {VERSION} (n2n-rs {})",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!("using compression: {}.", opts.compression);
    tracing::info!("using {} cipher.", cli::cipher_name(opts.cipher));
    if opts.header_encryption {
        tracing::info!("using header encryption.");
    }

    // Supernode names (behaviour.md §3): resolved now, again later.
    tracing::info!(
        "number of supernodes in the list: {}",
        opts.supernodes.len()
    );
    for (i, s) in opts.supernodes.iter().enumerate() {
        tracing::info!("supernode {i} => {s}");
    }
    let mut names = Vec::new();
    for n in resolve::names(&opts.supernodes) {
        let r = match resolve::resolve_blocking(&n.text, main.dual_stack) {
            Ok(a) => {
                tracing::info!(
                    "supernode2sock successfully resolves supernode address for {} to {a}",
                    n.text
                );
                Some(a)
            }
            Err(e) => {
                tracing::warn!(
                    "supernode2sock fails to resolve supernode host {}: {e}; retrying every {} s",
                    n.text,
                    resolve::RETRY.as_secs()
                );
                None
            }
        };
        names.push((n, r));
    }
    for s in &opts.supernodes {
        if let Ok(a) = s.parse::<SocketAddr>()
            && a.is_ipv6()
            && !main.dual_stack
        {
            tracing::warn!("supernode {s} is IPv6 but the main socket is IPv4 only (-p)");
        }
    }
    let first_sn = opts.supernodes.first().and_then(|s| {
        s.parse::<SocketAddr>().ok().or_else(|| {
            names
                .iter()
                .find(|(n, _)| n.index == 0)
                .and_then(|(_, a)| *a)
        })
    });

    match opts.tap_address {
        TapAddress::Static { .. } => tracing::info!("use manually set IP address"),
        TapAddress::Auto => tracing::info!("automatically assign IP address by supernode"),
        TapAddress::Dhcp => tracing::info!("obtain IP from other edge DHCP services"),
    }
    tracing::info!("binding to local port {}", local.port());
    tracing::info!(
        "PMTU discovery {}",
        if opts.pmtu_discovery {
            "enabled"
        } else {
            "disabled"
        }
    );

    let cfg = match edge_config(&opts, preferred_local(&opts, local.port(), first_sn)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            n2n_sys::process::startup_failed(&e.to_string());
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    let seed = match rng_seed() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            n2n_sys::process::startup_failed(&e.to_string());
            return ExitCode::FAILURE;
        }
    };
    let mut edge = match Edge::new(cfg, seed, driver::now()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("{e}");
            n2n_sys::process::startup_failed(&e.to_string());
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    for (n, a) in &names {
        if let Some(a) = a {
            edge.set_supernode_addr(n.index, *a);
        }
    }
    edge.set_local_addr(local);

    // The background tasks' runtime: one worker thread; the loop runs on
    // this thread (driver.rs).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("edge-bg")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            n2n_sys::process::startup_failed(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let setup = Setup {
        opts,
        edge,
        main,
        main_cfg,
        mgmt,
        names,
        log,
        notifier: Notifier::from_env(),
    };
    let result = (|| {
        let signals = {
            let _rt = runtime.enter();
            Signals::new().map_err(|source| driver::DriverError::Io {
                what: "installing signal handlers",
                source,
            })?
        };
        Driver::new(setup, runtime.handle().clone())?.run(signals)
    })();
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            n2n_sys::process::startup_failed(&e.to_string());
            if let Some(n) = Notifier::from_env() {
                let _ = n.stopping(&format!("failed: {e}"));
            }
            ExitCode::FAILURE
        }
    }
}
