//! `edge`: the n2n v3 edge daemon.
//!
//! Exit status: 0 after help, 1 on a run-time failure (TAP, socket, …),
//! 2 on a bad command line or configuration file ([`cli::EXIT_USAGE`]).
//!
//! Current state: options are parsed and validated completely, the TAP
//! device (static or DHCP address mode) and the main UDP socket are set up,
//! then the program stops at the driver seam below, because the sans-IO
//! edge core (`n2n_core::edge`) is not written yet. Nothing of the protocol
//! is faked here.

use std::process::ExitCode;

use n2n_edge::cli::{self, EdgeOptions, Invocation, TapAddress};
use n2n_edge::sock::{self, MainSocketConfig};
use n2n_edge::tap::{self, Tap, TapConfig};

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() -> ExitCode {
    let mut argv = Vec::new();
    for a in std::env::args_os() {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(bad) => {
                eprintln!("edge: argument {bad:?} is not valid UTF-8");
                return ExitCode::from(cli::EXIT_USAGE as u8);
            }
        }
    }
    let inv = cli::parse_invocation(
        &argv,
        &|k| std::env::var(k).ok(),
        &|p| std::fs::read_to_string(p),
        &host_name,
    );
    match inv {
        Err(e) => {
            eprintln!("edge: {e} (see edge --help)");
            ExitCode::from(cli::EXIT_USAGE as u8)
        }
        Ok(Invocation::ShortHelp) => {
            print!("{}", cli::SHORT_HELP);
            ExitCode::SUCCESS
        }
        Ok(Invocation::LongHelp) => {
            print!("{}", cli::LONG_HELP);
            ExitCode::SUCCESS
        }
        Ok(Invocation::DryRun(opts)) => {
            for w in &opts.warnings {
                eprintln!("edge: warning: {w}");
            }
            print!("{}", opts.describe());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(opts)) => run(*opts),
    }
}

/// NOTE: minimal logging until `n2n-sys` provides the shared logger
/// (syslog when daemonized, level changes from the management port).
fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => tracing::Level::ERROR,
        1 => tracing::Level::WARN,
        2 => tracing::Level::INFO,
        3 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn run(opts: EdgeOptions) -> ExitCode {
    init_logging(opts.verbosity);
    for w in &opts.warnings {
        tracing::warn!("{w}");
    }
    if !opts.foreground {
        // TODO(n2n-sys): daemonize (fork, detach, syslog) unless -f.
        tracing::warn!("running as a daemon is not implemented yet: staying in the foreground");
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(setup_and_drive(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything the driver loop owns.
#[derive(Debug)]
struct Io {
    /// `None` until the address is known (supernode-assigned mode).
    tap: Option<Tap>,
    sock: tokio::net::UdpSocket,
    mac: [u8; 6],
}

async fn setup_and_drive(opts: &EdgeOptions) -> Result<(), String> {
    let mac = match opts.mac {
        Some(m) => m,
        None => tap::random_mac().map_err(|e| format!("cannot draw a random MAC: {e}"))?,
    };

    let std_sock = sock::bind_main_socket(&MainSocketConfig {
        bind: opts.bind,
        tos: opts.tos,
        pmtu_discovery: opts.pmtu_discovery,
    })
    .map_err(|e| e.to_string())?;
    let sock = tokio::net::UdpSocket::from_std(std_sock).map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;

    let ipv4 = match opts.tap_address {
        TapAddress::Static { ip, prefix } => Some(Some((ip, prefix))),
        TapAddress::Dhcp => Some(None),
        // behaviour.md §2.1: the TAP is opened after the supernode assigned
        // the address (bootstrap REGISTER_SUPER with a null MAC).
        TapAddress::Auto => None,
    };
    let tap = match ipv4 {
        Some(ipv4) => Some(
            Tap::open(&TapConfig {
                name: opts.tap_name.clone(),
                mac,
                mtu: opts.mtu,
                ipv4,
            })
            .await
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    // TODO(n2n-sys): drop privileges here (-u/-g) now that the TAP exists.

    print_plan(opts, &mac, local, tap.as_ref());
    drive(opts, Io { tap, sock, mac }).await
}

fn print_plan(opts: &EdgeOptions, mac: &[u8; 6], local: std::net::SocketAddr, tap: Option<&Tap>) {
    let df = if opts.pmtu_discovery {
        "DF set (-D)"
    } else {
        "DF off, kernel fragments"
    };
    println!("edge: community '{}'", opts.community);
    println!("edge: supernodes {}", opts.supernodes.join(", "));
    println!("edge: UDP socket {local} ({df})");
    match tap {
        Some(t) => println!(
            "edge: TAP {} up, MAC {}, MTU {}, address {}",
            t.name(),
            tap::format_mac(mac),
            t.mtu(),
            match opts.tap_address {
                TapAddress::Static { ip, prefix } => format!("{ip}/{prefix}"),
                TapAddress::Dhcp => "from DHCP (not set by the edge)".into(),
                TapAddress::Auto => "-".into(),
            }
        ),
        None => println!(
            "edge: TAP {} (MAC {}, MTU {}) is created once the supernode assigns an address",
            opts.tap_name,
            tap::format_mac(mac),
            opts.mtu
        ),
    }
    println!(
        "edge: cipher {}{}, compression {:?}, header encryption {}, P2P {}",
        opts.cipher.name(),
        if opts.key.is_some() { " (key set)" } else { "" },
        opts.compression,
        if opts.header_encryption { "on" } else { "off" },
        if opts.p2p { "on" } else { "off (-S1)" },
    );
    println!(
        "edge: management on 127.0.0.1:{}, description '{}'",
        opts.mgmt_port, opts.desc
    );
}

/// ======================= TODO(edge-core): DRIVER SEAM =======================
///
/// The sans-IO edge state machine (`n2n_core::edge::Edge`, contract in
/// /work/wt/CORE-API.md) is not written yet. When it is, this function
/// becomes the loop below; until then it stops here with an error instead of
/// pretending to speak the protocol.
///
/// ```text
/// let now = || Now { mono: Instant::now(), unix_us: unix_micros() };
/// let mut edge = Edge::new(EdgeConfig::from(opts, io.mac), rng_seed_from_os(), now());
/// // resolve every -l host:port (IPv4), feed results; retry unresolved ones later
/// edge.set_supernode_addr(i, addr);
/// let mut frame = vec![0; tap.max_frame_len()];   // MTU + 14
/// let (mut dgram, mut out) = ([0u8; 65536], [0u8; MAX_DATAGRAM]);
/// loop {
///     // 1. drain outputs until nothing is left
///     while let Some(tx) = edge.poll_transmit(&mut out) { sock.send_to(&out[..tx.len], tx.dst).await }
///     while let Some(ev) = edge.poll_event() {
///         match ev {
///             Event::AssignAddress(a) => open the TAP now (Auto mode) / tap.set_ipv4(a.ip, a.prefix),
///             Event::Registered | peer events => log,
///             ...
///         }
///     }
///     let deadline = edge.poll_timeout();
///     // 2. wait for one input, feed it, go back to 1
///     tokio::select! {
///         n = tap.recv(&mut frame) => if let Some(tx) = edge.encapsulate(now(), &frame[..n], &mut out) {
///                                         sock.send_to(&out[..tx.len], tx.dst) },
///         (n, from) = sock.recv_from(&mut dgram) =>
///             if let Some(len) = edge.decapsulate(now(), from, &mut dgram[..n], false, &mut out) {
///                 tap.send(&out[..len]) },
///         (n, from) = mcast.recv_from(&mut dgram) => same with via_multicast = true,
///         (n, from) = mgmt.recv_from(&mut dgram) => {
///             let o = edge.handle_mgmt(now(), from, &dgram[..n]);
///             send o.replies to `from`; act on o.action (Stop => shutdown, SetVerbosity(v))
///         }
///         _ = sleep_until(deadline) => edge.handle_timeout(now()),
///         _ = sigint_or_sigterm => { edge.shutdown(now()); drain poll_transmit; return Ok(()) }
///     }
/// }
/// ```
///
/// Still to add around it: the multicast discovery socket (0.0.0.0:1968,
/// group 224.0.0.68, only with P2P and no `-e`), the management socket
/// (127.0.0.1:`-t`), signals, sd_notify READY=1, privilege drop (n2n-sys),
/// DHCP mode re-reading the TAP address every 30 s (`Tap::ipv4`).
async fn drive(opts: &EdgeOptions, io: Io) -> Result<(), String> {
    let Io { tap, sock, mac } = io;
    tracing::debug!(
        tap = ?tap,
        socket = ?sock.local_addr(),
        mac = %tap::format_mac(&mac),
        community = %opts.community,
        "driver inputs ready"
    );
    Err(
        "set-up done, but the n2n protocol core is not wired in yet \
         (TODO(edge-core) in crates/edge/src/main.rs); exiting"
            .into(),
    )
}
