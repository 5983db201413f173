//! The supernode's options, once: what the scanner accepts and what
//! `--help` says (cli.md §2). Adding an option: a variant of [`Opt`], a row
//! here, an arm in `options::apply`.

use n2n_cli::{CommonOpt, EnvVar, HasArg, OptDef, Section, Table};

use HasArg::{No, Required};

/// The supernode's options (the keys of [`TABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    LocalPort,
    Federation,
    Supernode,
    Mac,
    NoSpoofingProtection,
    VersionText,
    Communities,
    AutoIp,
    Metrics,
    TcpMaxConnections,
    TcpIdleTimeout,
    TcpFrameTimeout,
    MaxEdgesPerCommunity,
    MaxEdges,
    MaxCommunities,
    Common(CommonOpt),
    Help,
}

const OPTIONS: &[OptDef<Opt>] = &[
    OptDef::both('p', "local-port", Required, Opt::LocalPort)
        .value("<[IP:]PORT>")
        .help(
            "UDP port to listen on, optionally with the local\n\
             address to bind to (a dotted quad alone keeps the\n\
             default port). A bare port listens on 0.0.0.0\n\
             and, if possible, [::]; `[IPv6]:port` binds that\n\
             address [default: 7654]",
        ),
    OptDef::short('F', Required, Opt::Federation)
        .value("<NAME>")
        .help(
            "Federation name, shared by all supernodes of a\n\
             federation (at most 17 characters; pick your own,\n\
             the default is for testing only)\n\
             [env: N2N_FEDERATION] [default: Federation]",
        ),
    OptDef::short('l', Required, Opt::Supernode)
        .value("<HOST:PORT>")
        .help(
            "Another supernode of the federation, repeatable;\n\
             names are re-resolved every 60 s",
        ),
    OptDef::short('m', Required, Opt::Mac).value("<MAC>").help(
        "Supernode MAC address (multicast bit cleared,\n\
         locally-administered bit set); random by default",
    ),
    OptDef::short('M', No, Opt::NoSpoofingProtection).help(
        "Disable MAC and IP address spoofing protection\n\
         for communities without user/password\n\
         authentication",
    ),
    OptDef::short('V', Required, Opt::VersionText)
        .value("<TEXT>")
        .help(
            "Version string sent to edges in PONGs (at most 19\n\
             characters) [default: 3.1.1]",
        ),
    OptDef::both('c', "communities", Required, Opt::Communities)
        .value("<PATH>")
        .help(
            "File of allowed communities (fixed names, regular\n\
             expressions); enables community locking",
        ),
    OptDef::both('a', "autoip", Required, Opt::AutoIp)
        .value("<MIN-MAX/BITS>")
        .help(
            "Auto-IP pool: range of subnets handed to communities\n\
             [default: 10.128.0.0-10.255.255.0/24]",
        ),
    OptDef::long("metrics", Required, Opt::Metrics)
        .value("<[IP:]PORT>")
        .help(
            "Serve Prometheus metrics (GET /metrics) and a\n\
             status page (GET /) over HTTP there; IP defaults\n\
             to 127.0.0.1 [default: off]",
        ),
    OptDef::long("tcp-max-connections", Required, Opt::TcpMaxConnections)
        .value("<N>")
        .help(
            "Most TCP connections (-S2 edges) at once; further\n\
             ones are closed at once [default: 1024]",
        ),
    OptDef::long("tcp-idle-timeout", Required, Opt::TcpIdleTimeout)
        .value("<SECONDS>")
        .help(
            "Close a TCP connection that sent nothing for this\n\
             long [default: 120]",
        ),
    OptDef::long("tcp-frame-timeout", Required, Opt::TcpFrameTimeout)
        .value("<SECONDS>")
        .help(
            "Close a TCP connection whose frame stays incomplete\n\
             this long (half-open, slowloris) [default: 10]",
        ),
    OptDef::long(
        "max-edges-per-community",
        Required,
        Opt::MaxEdgesPerCommunity,
    )
    .value("<N>")
    .help(
        "Edges one community may hold; a new edge beyond it\n\
             is dropped (counted as community_full)\n\
             [default: 4096]",
    ),
    OptDef::long("max-edges", Required, Opt::MaxEdges)
        .value("<N>")
        .help(
            "Edges in all communities; a new edge beyond it is\n\
             dropped (counted as edge_limit) [default: 65536]",
        ),
    OptDef::long("max-communities", Required, Opt::MaxCommunities)
        .value("<N>")
        .help(
            "Communities (fixed ones included); a new one beyond\n\
             it is not created (counted as community_limit)\n\
             [default: 1024]",
        ),
    OptDef::both('f', "foreground", No, Opt::Common(CommonOpt::Foreground)).help(
        "Stay in the foreground (default: become a daemon\n\
         logging to syslog)",
    ),
    OptDef::both('t', "mgmt-port", Required, Opt::Common(CommonOpt::MgmtPort))
        .value("<PORT>")
        .help("Management UDP port (bound to 127.0.0.1)\n[default: 5645]"),
    OptDef::long(
        "management-password",
        Required,
        Opt::Common(CommonOpt::MgmtPassword),
    )
    .value("<PW>")
    .help("Management password (needed for `w` requests)\n[default: n2n]"),
    OptDef::both('v', "verbose", No, Opt::Common(CommonOpt::Verbose))
        .help("More logging, repeatable"),
    OptDef::both('u', "euid", Required, Opt::Common(CommonOpt::Uid))
        .value("<UID>")
        .help(
            "Numeric user id to drop privileges to (default:\n\
             user n2n, else nobody; 0 keeps root)",
        ),
    OptDef::both('g', "egid", Required, Opt::Common(CommonOpt::Gid))
        .value("<GID>")
        .help(
            "Numeric group id to drop privileges to (default:\n\
             group of user n2n, else of nobody)",
        ),
    OptDef::both('h', "help", No, Opt::Help).help("Print help"),
];

/// Every option of the supernode.
pub(crate) const TABLE: Table<Opt> = Table {
    about: "n2n supernode (Rust implementation, wire-compatible with n2n 3.1.1)",
    usage: &[
        "supernode <config-file> [options...]",
        "supernode [options...]",
    ],
    intro: "\
A config file given as first argument holds one option per line in C n2n's
format (`-p=7654`, `-c /etc/n2n/community.list`, `-f`; `#` starts a comment);
options after it on the command line win.",
    env: &[EnvVar {
        name: "N2N_FEDERATION",
        key: Opt::Federation,
    }],
    epilogue: "\
FEDERATION
 Supernodes started with the same -F name and at least one -l between
 them form a federation: they register with each other, forward edges'
 registrations, unknown unicast, broadcasts and peer queries, and hand
 edges the list of supernodes in every REGISTER_SUPER_ACK, so edges fail
 over to any of them. As in C the header keys of the federation traffic
 come from 'Federation' (or N2N_FEDERATION), not from -F.

EXIT STATUS
 0 after a clean stop (SIGINT, SIGTERM, management `stop`), 2 for a
 configuration error, 1 when the system refuses (bind, privileges).",
    // clap, the earlier parser, took `-p=7654` as `-p 7654`.
    equals_after_short: true,
    ..Table::new(
        "supernode",
        &[Section {
            title: "OPTIONS",
            options: OPTIONS,
        }],
    )
};
