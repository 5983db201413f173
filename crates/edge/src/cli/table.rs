//! The edge's options, once: what the scanner accepts and what `--help`
//! says (cli.md §1, C's `k:a:c:Eu:g:m:M:s:d:l:p:fvVhrt:i:I:J:P:S::DL:z::A::Hn:R:e:T:x:`
//! plus its long options). Adding an option: a variant of [`Opt`], a row
//! here, an arm in `cli::apply`.

use n2n_cli::{CommonOpt, EnvVar, HasArg, OptDef, Section, Table};

use HasArg::{No, Optional, Required};

/// The edge's options (the keys of [`TABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    Community,
    Supernode,
    Bind,
    Tos,
    Pmtu,
    PreferredLocal,
    SupernodeOnly,
    Interval,
    Ttl,
    Key,
    Cipher,
    HeaderEnc,
    Compress,
    SelectRtt,
    SelectMac,
    Address,
    Mac,
    TapName,
    Mtu,
    Routing,
    Multicast,
    Desc,
    Password,
    FedKey,
    Rule,
    Metric,
    Route,
    Bridge,
    Threads,
    UpScript,
    DownScript,
    Common(CommonOpt),
    ShortHelp,
    LongHelp,
    NoPortForwarding,
    DryRun,
    Metrics,
    Meaningless,
}

const CONNECTION: &[OptDef<Opt>] = &[
    OptDef::both('c', "community", Required, Opt::Community)
        .value("<name>")
        .help(
            "community name, at most 19 bytes (longer: cut);\n\
             default: environment N2N_COMMUNITY. Required.",
        ),
    OptDef::both('l', "supernode-list", Required, Opt::Supernode)
        .value("<host:port>")
        .help(
            "add a supernode (repeatable, at most 47 chars).\n\
             Required.",
        ),
    OptDef::short('p', Required, Opt::Bind)
        .value("[ip:]port | ip")
        .help("bind the main UDP socket (default 0.0.0.0, any port)"),
    OptDef::short('T', Required, Opt::Tos)
        .value("<tos>")
        .help("IP TOS of the main socket (decimal or 0x..)"),
    OptDef::short('D', No, Opt::Pmtu).help(
        "enable path-MTU discovery: set DF on the main\n\
         socket (IP_MTU_DISCOVER=do). Default: DF off\n\
         (IP_MTU_DISCOVER=dont), so oversized datagrams\n\
         are fragmented by the kernel (see -M)",
    ),
    OptDef::short('e', Required, Opt::PreferredLocal)
        .value("<ip> | auto")
        .help(
            "advertise this local address to peers (auto: the\n\
             address routing to the supernode); disables\n\
             multicast peer discovery",
        ),
    OptDef::short('S', Optional, Opt::SupernodeOnly).forms(&[
        (
            "-S1",
            "no P2P: send everything through the supernode\n\
             (bare -S is the deprecated form of -S1)",
        ),
        (
            "-S2",
            "the same over one TCP connection to the\n\
             supernode (reconnects with backoff; for sites\n\
             that pass no UDP); -p only picks the address",
        ),
    ]),
    OptDef::short('i', Required, Opt::Interval)
        .value("<seconds>")
        .help("supernode re-registration interval (default 20, >= 1)"),
    OptDef::short('L', Required, Opt::Ttl).value("<ttl>").help(
        "hole punching when a peer is first seen: 0 one\n\
         direct REGISTER (default), 1 none, >1 spray\n\
         REGISTERs to 16 ports with this IP TTL",
    ),
    OptDef::short('k', Required, Opt::Key).value("<key>").help(
        "encryption key (default: environment N2N_KEY);\n\
         a key without -A selects AES",
    ),
    OptDef::short('A', Optional, Opt::Cipher).forms(&[
        ("-A1", "no encryption (with a key: AES is used instead)"),
        ("-A2", "Twofish"),
        ("-A3", "AES (default when a key is given; bare -A = -A3)"),
        ("-A4", "ChaCha20"),
        ("-A5", "Speck"),
        (
            "-A6",
            "ChaCha20-Poly1305 (extension of this edge, not\n\
             understood by C n2n)",
        ),
        (
            "-A7",
            "AES-256-GCM (extension of this edge, not\n\
             understood by C n2n)",
        ),
        ("", "-A2 to -A7 need a key."),
    ]),
    OptDef::short('H', No, Opt::HeaderEnc).help(
        "header encryption (the supernode must list the\n\
         community by name)",
    ),
    OptDef::short('z', Optional, Opt::Compress).forms(&[
        ("-z1", "compress with LZO (bare -z = -z1)"),
        ("-z2", "compress with zstd"),
    ]),
    OptDef::long("select-rtt", No, Opt::SelectRtt).help("choose the supernode by round-trip time"),
    OptDef::long("select-mac", No, Opt::SelectMac).help(
        "choose the supernode by lowest MAC address\n\
         (default: by reported load)",
    ),
];

const OVERLAY: &[OptDef<Opt>] = &[
    OptDef::short('a', Required, Opt::Address)
        .value("[static:|dhcp:]<ip>[/bits]")
        .help(
            "TAP IPv4 address, prefix default 24. Without -a\n\
             the supernode assigns one. dhcp:0.0.0.0 (with -r)\n\
             leaves the address to a DHCP client on the TAP",
        ),
    OptDef::short('m', Required, Opt::Mac)
        .value("<xx:xx:xx:xx:xx:xx>")
        .help(
            "TAP MAC address (default: random, locally\n\
             administered)",
        ),
    OptDef::both('d', "tap-device", Required, Opt::TapName)
        .value("<name>")
        .help(
            "TAP device name (default edge0); an existing TAP\n\
             device of that name is reused",
        ),
    OptDef::short('M', Required, Opt::Mtu).value("<mtu>").help(
        "TAP MTU, 68..1950. Default 1500 (C n2n: 1290), so\n\
         that hosts and VMs bridged behind the edge can send\n\
         full 1514-byte frames; the resulting ~1600-byte\n\
         UDP datagrams are fragmented by the kernel because\n\
         DF is off (see -D). With -D, choose an MTU that\n\
         fits the path (about path MTU - 110)",
    ),
    OptDef::short('r', No, Opt::Routing).help(
        "allow routed/bridged traffic (no source/destination\n\
         address checks); needed for routers, bridges, DHCP",
    ),
    OptDef::short('E', No, Opt::Multicast).help(
        "accept multicast MAC frames (default: drop; needed\n\
         for IPv6 neighbour discovery)",
    ),
    OptDef::short('I', Required, Opt::Desc)
        .value("<text>")
        .help(
            "edge description, at most 15 bytes (default: host\n\
         name); also the user name for -J",
        ),
    OptDef::short('J', Required, Opt::Password)
        .value("<password>")
        .help(
            "user/password authentication (env N2N_PASSWORD,\n\
             which keeps it out of ps): user -I, the\n\
             supernode lists '* <user> <key>' from n2n-keygen;\n\
             needs -A4 or -A5, switches -H on",
        ),
    OptDef::short('P', Required, Opt::FedKey)
        .value("<public key>")
        .help(
            "federation public key for -J, from\n\
             'n2n-keygen -F <federation>' (default: that of\n\
             federation 'Federation')",
        ),
    OptDef::short('R', Required, Opt::Rule)
        .value("<rule>")
        .help(
            "traffic filter rule, repeatable:\n\
         src_ip[/bits][:port|:[start,end]],\n\
         dst_ip[/bits][:port|:[start,end]]\n\
         [,TCP+|TCP-][,UDP+|UDP-][,ICMP+|ICMP-]",
        ),
    OptDef::short('x', Required, Opt::Metric)
        .value("<metric>")
        .help("TAP interface metric: Windows only, refused here"),
    OptDef::short('n', Required, Opt::Route)
        .value("<net/bits:gw>")
        .help(
            "removed after n2n 3.1.1 (refused): add routes with\n\
             the OS tools instead",
        ),
    OptDef::long("bridge", Required, Opt::Bridge)
        .value("<bridge>")
        .help(
            "(extension) enslave the TAP to this existing Linux\n\
             bridge right after it is configured; the -a address\n\
             then goes on the bridge (an address on a bridge\n\
             port would not answer). Use with -r",
        ),
    OptDef::long("threads", Required, Opt::Threads)
        .value("<n>")
        .help(
            "(extension) data-path threads, 1..=64 (default 1,\n\
             or environment N2N_THREADS):\n\
             n TAP queues and n sockets on the -p port, flows\n\
             spread over them by the kernel; the control plane\n\
             stays on one thread. Not with -S2",
        ),
    OptDef::long("up-script", Required, Opt::UpScript)
        .value("<path>")
        .help(
            "(extension) run this program once the TAP is up\n\
             (still as root), environment N2N_EVENT=up, N2N_TAP,\n\
             N2N_MAC, N2N_IP (a.b.c.d/bits or empty),\n\
             N2N_COMMUNITY, N2N_BRIDGE; killed after 30 s, its\n\
             exit status is logged",
        ),
    OptDef::long("down-script", Required, Opt::DownScript)
        .value("<path>")
        .help(
            "(extension) run this program before the TAP goes\n\
             away at a clean stop (after -u/-g: as that user),\n\
             same environment with N2N_EVENT=down",
        ),
];

const LOCAL: &[OptDef<Opt>] = &[
    OptDef::short('f', No, Opt::Common(CommonOpt::Foreground))
        .help("stay in the foreground (default: run as a daemon)"),
    OptDef::short('t', Required, Opt::Common(CommonOpt::MgmtPort))
        .value("<port>")
        .help("management UDP port on 127.0.0.1 (default 5644)"),
    OptDef::long(
        "management-password",
        Required,
        Opt::Common(CommonOpt::MgmtPassword),
    )
    .value("<pw>")
    .help("management password (default n2n)"),
    OptDef::both('v', "verbose", No, Opt::Common(CommonOpt::Verbose))
        .help("more logging (repeatable)"),
    OptDef::short('V', No, Opt::Common(CommonOpt::Quiet)).help("less logging (repeatable)"),
    OptDef::both('u', "euid", Required, Opt::Common(CommonOpt::Uid))
        .value("<uid>")
        .help(
            "user id to run as once the TAP is set up\n\
             (default: user n2n; stays root if there is no\n\
             such user; 0 keeps root)",
        ),
    OptDef::both('g', "egid", Required, Opt::Common(CommonOpt::Gid))
        .value("<gid>")
        .help("group id, likewise"),
    OptDef::short('h', No, Opt::ShortHelp).help("short help"),
    OptDef::long("help", No, Opt::LongHelp).help("this help"),
    OptDef::long("no-port-forwarding", No, Opt::NoPortForwarding).help(
        "accepted for 3.1.1 compatibility; this edge never\n\
         maps ports with UPnP/NAT-PMP anyway",
    ),
    OptDef::long("metrics", Required, Opt::Metrics)
        .value("[ip:]port")
        .help(
            "(extension) serve Prometheus metrics at\n\
             http://ip:port/metrics (ip default 127.0.0.1;\n\
             off by default)",
        ),
    OptDef::long("dry-run", No, Opt::DryRun).help(
        "(extension) check the options, print the resulting\n\
         configuration and exit without opening anything",
    ),
    // In C's option string, without a meaning: refused by name.
    OptDef::short('s', Required, Opt::Meaningless),
];

/// Every option of the edge.
pub(crate) const TABLE: Table<Opt> = Table {
    about: "n2n v3 edge (layer-2 P2P VPN), compatible with C n2n 3.1.1",
    usage: &[
        "edge <config file> [options...]",
        "edge -c <community> -l <supernode host:port> [options...]",
    ],
    intro: "\
A configuration file (first argument, not starting with '-') holds one option
per line, e.g. '-c=mynetwork', '-k mysecret', '-A3'; options given after it on
the command line are applied after it (later wins, repeatable ones add up).
Short options with an optional argument need it attached: -A3, -z1, -S1.
Long options take '--name=value' or '--name value'.",
    env: &[
        EnvVar {
            name: "N2N_KEY",
            key: Opt::Key,
        },
        EnvVar {
            name: "N2N_COMMUNITY",
            key: Opt::Community,
        },
        EnvVar {
            name: "N2N_PASSWORD",
            key: Opt::Password,
        },
        EnvVar {
            name: "N2N_THREADS",
            key: Opt::Threads,
        },
    ],
    epilogue: "\
EXIT STATUS
 0 success or help, 1 run-time failure (TAP, socket, ...), 2 bad command
 line or configuration file (the message names the problem)",
    brief: " -c <community>       community name          -l <host:port>  supernode (repeatable)
 -k <key>             encryption key          -A1..-A7        cipher (key alone = AES)
 -a [static:|dhcp:]<ip>[/bits]  TAP address   -d <name>       TAP device (edge0)
 -M <mtu>             TAP MTU (1500)          -r              allow routing/bridging
 -f                   foreground              -v / -V         more / less logging

Run 'edge --help' for every option.",
    ..Table::new(
        "edge",
        &[
            Section {
                title: "UNDERLYING CONNECTION",
                options: CONNECTION,
            },
            Section {
                title: "TAP DEVICE AND OVERLAY",
                options: OVERLAY,
            },
            Section {
                title: "LOCAL OPTIONS",
                options: LOCAL,
            },
        ],
    )
};
