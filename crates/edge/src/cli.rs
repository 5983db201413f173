//! The edge command line (cli.md §1), configuration files (cli.md §3.1) and
//! their validation, producing a typed [`EdgeOptions`].
//!
//! Option names, defaults and meanings follow C n2n 3.1.1's `edge`, with
//! these deliberate differences (all listed in `edge --help`):
//!
//! * the default TAP MTU is **1500** (C: 1290) so that VMs and containers
//!   bridged behind the edge can send full-size 1514-byte frames; the main
//!   UDP socket keeps C's default of *not* setting DF (`IP_MTU_DISCOVER` =
//!   "don't"), so the kernel fragments the resulting ~1600-byte datagrams on
//!   the underlay; C peers reassemble them (their buffers are 2048 bytes);
//! * `-A6` (ChaCha20-Poly1305) and `-A7` (AES-256-GCM) are extensions of
//!   this implementation, not understood by C n2n;
//! * options this edge does not implement (`-J`, `-P`, `-S2`, `-x`) and the
//!   removed `-n` are refused at start with a message naming the option,
//!   never ignored;
//! * words that are not options (e.g. the `3` of `-A 3`) are refused
//!   instead of being silently skipped as glibc's `getopt_long` does.
//!
//! Every error is one line naming the problem; the binary prints it and
//! exits with status [`EXIT_USAGE`] (2).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use n2n_core::config::{ConfigError, Flavor, config_file_arg, file_to_args};

use crate::getopt::{self, HasArg, Item, OptSpec, ScanError};
use crate::rules::{RuleError, TrafficRule, parse_rule};

/// Exit status for a bad command line or configuration file.
pub const EXIT_USAGE: i32 = 2;

/// Longest community name (bytes) C n2n keeps.
pub const COMMUNITY_MAX: usize = 19;
/// Longest `-l` value (characters) C n2n accepts.
pub const SUPERNODE_MAX: usize = 47;
/// Longest description (`-I`, default host name) in bytes.
pub const DESC_MAX: usize = 15;
/// Longest Linux interface name.
pub const IFNAME_MAX: usize = 15;
/// Default TAP MTU of this edge (C n2n: 1290, see the module docs).
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest accepted TAP MTU (the IPv4 minimum).
pub const MIN_MTU: u16 = 68;
/// Largest accepted TAP MTU: a frame plus the worst-case PACKET header and
/// cipher overhead must fit the 2048-byte datagram buffers of C n2n and of
/// `n2n_core` (`MAX_DATAGRAM`).
pub const MAX_MTU: u16 = 1950;
/// Default management port.
pub const DEFAULT_MGMT_PORT: u16 = 5644;
/// Default registration interval (seconds).
pub const DEFAULT_REGISTER_INTERVAL: u32 = 20;
/// Default verbosity (C `TRACE_NORMAL`).
pub const DEFAULT_VERBOSITY: u8 = 2;
/// Default TAP device name.
pub const DEFAULT_TAP_NAME: &str = "edge0";
/// Default management password.
pub const DEFAULT_MGMT_PASSWORD: &str = n2n_core::mgmt::DEFAULT_PASSWORD;

/// Payload cipher (`-A`), with the wire transform id as discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cipher {
    /// `-A1`: no encryption.
    Null = 1,
    /// `-A2`: Twofish-CBC-CTS.
    Twofish = 2,
    /// `-A3`: AES-CBC-CTS (key size from the key length).
    Aes = 3,
    /// `-A4`: ChaCha20.
    ChaCha20 = 4,
    /// `-A5`: Speck-CTR.
    Speck = 5,
    /// `-A6`: ChaCha20-Poly1305 (extension of this implementation).
    ChaCha20Poly1305 = 6,
    /// `-A7`: AES-256-GCM (extension of this implementation).
    Aes256Gcm = 7,
}

impl Cipher {
    /// The number written after `-A`.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// From the number written after `-A`.
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            1 => Self::Null,
            2 => Self::Twofish,
            3 => Self::Aes,
            4 => Self::ChaCha20,
            5 => Self::Speck,
            6 => Self::ChaCha20Poly1305,
            7 => Self::Aes256Gcm,
            _ => return None,
        })
    }

    /// Human name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Twofish => "Twofish",
            Self::Aes => "AES",
            Self::ChaCha20 => "ChaCha20",
            Self::Speck => "Speck",
            Self::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            Self::Aes256Gcm => "AES-256-GCM",
        }
    }
}

/// Payload compression (`-z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression (default).
    #[default]
    None,
    /// `-z1` / bare `-z`: LZO1X.
    Lzo,
    /// `-z2`: zstd.
    Zstd,
}

/// Supernode selection strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelectionStrategy {
    /// By the load the supernodes report (default).
    #[default]
    Load,
    /// `--select-rtt`: by round-trip time.
    Rtt,
    /// `--select-mac`: by lowest MAC address.
    Mac,
}

/// How the TAP gets its IPv4 address (`-a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapAddress {
    /// `-a [static:]ip[/bits]`.
    Static {
        /// Address.
        ip: Ipv4Addr,
        /// Prefix length (default 24).
        prefix: u8,
    },
    /// No `-a`: assigned by the supernode.
    Auto,
    /// `-a dhcp:ip[/bits]`: left unconfigured by the edge; a DHCP client
    /// on the TAP gets it from a DHCP server inside the overlay.
    Dhcp,
}

/// `-e`: the local socket advertised to peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferredLocal {
    /// `-e auto`: the address of the interface that routes to the
    /// supernode.
    Auto,
    /// `-e ip`.
    Addr(Ipv4Addr),
}

/// A secret (key, password): its bytes are never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wrap bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    /// The secret bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// The validated edge configuration.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// `-c` / `N2N_COMMUNITY`: community name, 1..=19 bytes.
    pub community: String,
    /// `-l`: supernodes as `host:port` (≤ 47 characters each, ≥ 1), in order.
    pub supernodes: Vec<String>,
    /// `-p`: bind address of the main UDP socket (default `0.0.0.0:0`).
    pub bind: SocketAddrV4,
    /// `-T`: IP TOS of the main socket (`None`: not set).
    pub tos: Option<u8>,
    /// `-D`: set DF on the main socket (`IP_MTU_DISCOVER` = do); default
    /// false = "don't" (the kernel fragments large datagrams).
    pub pmtu_discovery: bool,
    /// `-e`: advertised local socket (disables multicast discovery).
    pub preferred_local: Option<PreferredLocal>,
    /// P2P allowed (false with `-S1`).
    pub p2p: bool,
    /// `-i`: supernode re-registration interval (≥ 1 s, default 20 s).
    pub register_interval: Duration,
    /// `-L`: hole-punching TTL mode (0 default, 1 none, >1 spray TTL).
    pub register_ttl: u8,
    /// `-A` after the selection rules of crypto.md §2.1.
    pub cipher: Cipher,
    /// `-k` / `N2N_KEY`: `Some` iff `cipher != Cipher::Null`.
    pub key: Option<Secret>,
    /// `-H`: header encryption.
    pub header_encryption: bool,
    /// `-z`.
    pub compression: Compression,
    /// `--select-rtt` / `--select-mac`.
    pub selection: SelectionStrategy,
    /// `-a`.
    pub tap_address: TapAddress,
    /// `-m`: TAP MAC (`None`: random locally administered unicast).
    pub mac: Option<[u8; 6]>,
    /// `-d`: TAP device name (default `edge0`).
    pub tap_name: String,
    /// `-M`: TAP MTU (default 1500).
    pub mtu: u16,
    /// `-r`: routing/bridging allowed.
    pub routing: bool,
    /// `-E`: accept multicast MAC frames.
    pub multicast: bool,
    /// `-I`: description (default host name), ≤ 15 bytes.
    pub desc: String,
    /// `-R`: traffic filter rules, in order given (the core's type).
    pub rules: Vec<TrafficRule>,
    /// `-f`: stay in the foreground.
    pub foreground: bool,
    /// `-t`: management UDP port on 127.0.0.1 (default 5644).
    pub mgmt_port: u16,
    /// `--management-password` (default `n2n`).
    pub mgmt_password: String,
    /// Log level: 2 plus the number of `-v` minus the number of `-V`
    /// (0 = errors only, 1 warnings, 2 normal, 3 info, 4+ debug).
    pub verbosity: u8,
    /// `-u`: user id to drop to (`None`: user `n2n`, else `nobody`).
    pub uid: Option<u32>,
    /// `-g`: group id to drop to (`None`: as for `uid`).
    pub gid: Option<u32>,
    /// Non-fatal remarks to log once logging is up (truncations,
    /// deprecated forms, key equal to community, …).
    pub warnings: Vec<String>,
}

impl EdgeOptions {
    /// The configuration as `name: value` lines (secrets shown only as
    /// their length), as printed by `--dry-run`.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
        let lines: Vec<(&str, String)> = vec![
            ("community", self.community.clone()),
            ("supernodes", self.supernodes.join(",")),
            ("bind", self.bind.to_string()),
            ("tos", opt(self.tos.map(|t| t.to_string()))),
            ("pmtu_discovery", self.pmtu_discovery.to_string()),
            (
                "preferred_local",
                opt(self.preferred_local.map(|p| match p {
                    PreferredLocal::Auto => "auto".into(),
                    PreferredLocal::Addr(a) => a.to_string(),
                })),
            ),
            ("p2p", self.p2p.to_string()),
            (
                "register_interval",
                self.register_interval.as_secs().to_string(),
            ),
            ("register_ttl", self.register_ttl.to_string()),
            (
                "cipher",
                format!("{} ({})", self.cipher.name(), self.cipher.id()),
            ),
            (
                "key",
                opt(self
                    .key
                    .as_ref()
                    .map(|k| format!("{} bytes", k.bytes().len()))),
            ),
            ("header_encryption", self.header_encryption.to_string()),
            ("compression", format!("{:?}", self.compression)),
            ("selection", format!("{:?}", self.selection)),
            (
                "tap_address",
                match self.tap_address {
                    TapAddress::Static { ip, prefix } => format!("static {ip}/{prefix}"),
                    TapAddress::Auto => "auto".into(),
                    TapAddress::Dhcp => "dhcp".into(),
                },
            ),
            ("mac", opt(self.mac.map(|m| crate::tap::format_mac(&m)))),
            ("tap_name", self.tap_name.clone()),
            ("mtu", self.mtu.to_string()),
            ("routing", self.routing.to_string()),
            ("multicast", self.multicast.to_string()),
            ("desc", self.desc.clone()),
            (
                "rules",
                self.rules
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("foreground", self.foreground.to_string()),
            ("mgmt_port", self.mgmt_port.to_string()),
            (
                "mgmt_password",
                if self.mgmt_password == DEFAULT_MGMT_PASSWORD {
                    "default".into()
                } else {
                    format!("{} bytes", self.mgmt_password.len())
                },
            ),
            ("verbosity", self.verbosity.to_string()),
            ("uid", opt(self.uid.map(|u| u.to_string()))),
            ("gid", opt(self.gid.map(|g| g.to_string()))),
        ];
        for (k, v) in lines {
            let _ = writeln!(s, "{k}: {v}");
        }
        s
    }
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// `-h`: short help.
    ShortHelp,
    /// `--help`: long help.
    LongHelp,
    /// Run the edge.
    Run(Box<EdgeOptions>),
    /// `--dry-run` (extension): validate, print the configuration, exit.
    DryRun(Box<EdgeOptions>),
}

/// A bad command line or configuration file: one line naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// getopt-level error (unknown option, missing argument…).
    #[error("{0}")]
    Scan(#[from] ScanError),
    /// A word that is not an option.
    #[error("unexpected argument '{word}'{hint}")]
    Positional {
        /// The word.
        word: String,
        /// Extra hint (e.g. about `-A 3`).
        hint: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {reason}")]
    ConfigRead {
        /// Path given.
        path: String,
        /// OS error text.
        reason: String,
    },
    /// The configuration file is malformed.
    #[error("configuration file {path}: {source}")]
    ConfigSyntax {
        /// Path given.
        path: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// An option's argument is invalid.
    #[error("option {option}: {reason}")]
    BadValue {
        /// The option as written.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// A traffic rule is invalid.
    #[error("option -R: {0}")]
    Rule(#[from] RuleError),
    /// An option this edge refuses (not supported, removed, meaningless).
    #[error("option {option} is not supported: {reason}")]
    Unsupported {
        /// The option.
        option: String,
        /// Why / what to do instead.
        reason: String,
    },
    /// A missing or inconsistent setting.
    #[error("{0}")]
    Invalid(String),
}

fn bad(option: &str, reason: impl Into<String>) -> CliError {
    CliError::BadValue {
        option: option.to_owned(),
        reason: reason.into(),
    }
}

fn unsupported(option: &str, reason: impl Into<String>) -> CliError {
    CliError::Unsupported {
        option: option.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
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
    Foreground,
    MgmtPort,
    MgmtPassword,
    Verbose,
    Quiet,
    Uid,
    Gid,
    ShortHelp,
    LongHelp,
    NoPortForwarding,
    DryRun,
    Meaningless,
}

const fn spec(
    short: Option<char>,
    long: Option<&'static str>,
    arg: HasArg,
    key: Opt,
) -> OptSpec<Opt> {
    OptSpec {
        short,
        long,
        arg,
        key,
    }
}

use HasArg::{No, Optional, Required};

/// C edge: `k:a:c:Eu:g:m:M:s:d:l:p:fvVhrt:i:I:J:P:S::DL:z::A::Hn:R:e:T:x:`
/// plus its long options.
const SPECS: &[OptSpec<Opt>] = &[
    spec(Some('c'), Some("community"), Required, Opt::Community),
    spec(Some('l'), Some("supernode-list"), Required, Opt::Supernode),
    spec(Some('p'), None, Required, Opt::Bind),
    spec(Some('T'), None, Required, Opt::Tos),
    spec(Some('D'), None, No, Opt::Pmtu),
    spec(Some('e'), None, Required, Opt::PreferredLocal),
    spec(Some('S'), None, Optional, Opt::SupernodeOnly),
    spec(Some('i'), None, Required, Opt::Interval),
    spec(Some('L'), None, Required, Opt::Ttl),
    spec(Some('k'), None, Required, Opt::Key),
    spec(Some('A'), None, Optional, Opt::Cipher),
    spec(Some('H'), None, No, Opt::HeaderEnc),
    spec(Some('z'), None, Optional, Opt::Compress),
    spec(None, Some("select-rtt"), No, Opt::SelectRtt),
    spec(None, Some("select-mac"), No, Opt::SelectMac),
    spec(Some('a'), None, Required, Opt::Address),
    spec(Some('m'), None, Required, Opt::Mac),
    spec(Some('d'), Some("tap-device"), Required, Opt::TapName),
    spec(Some('M'), None, Required, Opt::Mtu),
    spec(Some('r'), None, No, Opt::Routing),
    spec(Some('E'), None, No, Opt::Multicast),
    spec(Some('I'), None, Required, Opt::Desc),
    spec(Some('J'), None, Required, Opt::Password),
    spec(Some('P'), None, Required, Opt::FedKey),
    spec(Some('R'), None, Required, Opt::Rule),
    spec(Some('x'), None, Required, Opt::Metric),
    spec(Some('n'), None, Required, Opt::Route),
    spec(Some('f'), None, No, Opt::Foreground),
    spec(Some('t'), None, Required, Opt::MgmtPort),
    spec(
        None,
        Some("management-password"),
        Required,
        Opt::MgmtPassword,
    ),
    spec(Some('v'), Some("verbose"), No, Opt::Verbose),
    spec(Some('V'), None, No, Opt::Quiet),
    spec(Some('u'), Some("euid"), Required, Opt::Uid),
    spec(Some('g'), Some("egid"), Required, Opt::Gid),
    spec(Some('h'), None, No, Opt::ShortHelp),
    spec(None, Some("help"), No, Opt::LongHelp),
    spec(None, Some("no-port-forwarding"), No, Opt::NoPortForwarding),
    spec(None, Some("dry-run"), No, Opt::DryRun),
    spec(Some('s'), None, Required, Opt::Meaningless),
];

/// Options as given, before defaults and cross-checks. Later values
/// overwrite earlier ones; repeatable options accumulate.
#[derive(Debug, Default)]
struct Raw {
    community: Option<String>,
    supernodes: Vec<String>,
    bind: Option<SocketAddrV4>,
    tos: Option<u8>,
    pmtu: bool,
    preferred_local: Option<PreferredLocal>,
    supernode_only: Option<u8>,
    interval: Option<u32>,
    ttl: Option<u8>,
    key: Option<Vec<u8>>,
    cipher: Option<Cipher>,
    header_enc: bool,
    compression: Compression,
    selection: SelectionStrategy,
    address: Option<TapAddress>,
    mac: Option<[u8; 6]>,
    tap_name: Option<String>,
    mtu: Option<u16>,
    routing: bool,
    multicast: bool,
    desc: Option<String>,
    password: Option<String>,
    fed_key: Option<String>,
    rules: Vec<TrafficRule>,
    foreground: bool,
    mgmt_port: Option<u16>,
    mgmt_password: Option<String>,
    verbose: u32,
    quiet: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    warnings: Vec<String>,
}

/// Parse the whole invocation: `argv` *including* the program name, an
/// environment lookup (`N2N_KEY`, `N2N_COMMUNITY`, `N2N_PASSWORD`), a file
/// reader for the optional configuration file, and a host-name source for
/// the default description.
///
/// A configuration file is recognised only as the first argument and only
/// if it does not start with `-`; the options after it are applied after
/// the file's (later wins, repeatable options accumulate).
pub fn parse_invocation(
    argv: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
    host_name: &dyn Fn() -> Option<String>,
) -> Result<Invocation, CliError> {
    let mut args: Vec<String> = Vec::new();
    let mut rest = argv.get(1..).unwrap_or_default();
    if let Some(path) = config_file_arg(argv) {
        let text = read_file(path).map_err(|e| CliError::ConfigRead {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        args = file_to_args(&text, Flavor::Edge).map_err(|source| CliError::ConfigSyntax {
            path: path.to_owned(),
            source,
        })?;
        rest = argv.get(2..).unwrap_or_default();
    }
    args.extend(rest.iter().cloned());
    parse_args(&args, env, host_name)
}

/// Parse options (no program name, no configuration file) into an
/// [`Invocation`].
pub fn parse_args(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    host_name: &dyn Fn() -> Option<String>,
) -> Result<Invocation, CliError> {
    let items = getopt::scan(SPECS, args)?;
    let mut raw = Raw::default();
    let mut dry_run = false;
    for item in items {
        match item {
            Item::Positional {
                word,
                after_optional,
            } => {
                let hint = match after_optional {
                    Some(opt) => {
                        format!(" (the argument of {opt} must be attached, e.g. {opt}{word})")
                    }
                    None => String::new(),
                };
                return Err(CliError::Positional { word, hint });
            }
            Item::Opt { key, name, value } => match key {
                Opt::ShortHelp => return Ok(Invocation::ShortHelp),
                Opt::LongHelp => return Ok(Invocation::LongHelp),
                Opt::DryRun => dry_run = true,
                _ => apply(&mut raw, key, &name, value)?,
            },
        }
    }
    let opts = Box::new(validate(raw, env, host_name)?);
    Ok(if dry_run {
        Invocation::DryRun(opts)
    } else {
        Invocation::Run(opts)
    })
}

fn req(name: &str, value: Option<String>) -> Result<String, CliError> {
    value.ok_or_else(|| CliError::Scan(ScanError::MissingArgument(name.to_owned())))
}

fn apply(raw: &mut Raw, key: Opt, name: &str, value: Option<String>) -> Result<(), CliError> {
    match key {
        Opt::Community => raw.community = Some(req(name, value)?),
        Opt::Supernode => {
            let v = req(name, value)?;
            check_supernode(name, &v)?;
            raw.supernodes.push(v);
        }
        Opt::Bind => raw.bind = Some(parse_bind(name, &req(name, value)?)?),
        Opt::Tos => {
            let v = req(name, value)?;
            let tos = parse_c_integer(&v)
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| bad(name, format!("'{v}' is not a TOS value 0..255")))?;
            raw.tos = Some(tos);
        }
        Opt::Pmtu => raw.pmtu = true,
        Opt::PreferredLocal => {
            let v = req(name, value)?;
            raw.preferred_local = Some(if v == "auto" {
                PreferredLocal::Auto
            } else {
                PreferredLocal::Addr(v.parse().map_err(|_| {
                    bad(name, format!("'{v}' is neither an IPv4 address nor 'auto'"))
                })?)
            });
        }
        Opt::SupernodeOnly => {
            raw.supernode_only = Some(match value.as_deref() {
                None => {
                    raw.warnings
                        .push("bare -S is deprecated, use -S1".to_owned());
                    1
                }
                Some("1") => 1,
                Some("2") => 2,
                Some(v) => {
                    return Err(bad(name, format!("'-S{v}': use -S1 (or -S2)")));
                }
            });
        }
        Opt::Interval => {
            let v = req(name, value)?;
            let secs: u32 = v
                .parse()
                .map_err(|_| bad(name, format!("'{v}' is not a number of seconds")))?;
            if secs < 1 {
                return Err(bad(
                    name,
                    "the registration interval must be at least 1 second",
                ));
            }
            raw.interval = Some(secs);
        }
        Opt::Ttl => {
            let v = req(name, value)?;
            raw.ttl = Some(
                v.parse()
                    .map_err(|_| bad(name, format!("'{v}' is not a TTL 0..255")))?,
            );
        }
        Opt::Key => {
            let v = req(name, value)?;
            if v.is_empty() {
                return Err(bad(name, "the key is empty"));
            }
            raw.key = Some(v.into_bytes());
        }
        Opt::Cipher => {
            raw.cipher = Some(match value.as_deref() {
                None => {
                    raw.warnings
                        .push("bare -A is deprecated, use -A3 for AES".to_owned());
                    Cipher::Aes
                }
                Some(v) => v
                    .parse::<u8>()
                    .ok()
                    .and_then(Cipher::from_id)
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!("unknown cipher '-A{v}' (use -A1 … -A7, see --help)"),
                        )
                    })?,
            });
        }
        Opt::HeaderEnc => raw.header_enc = true,
        Opt::Compress => {
            raw.compression = match value.as_deref() {
                None | Some("1") => Compression::Lzo,
                Some("2") => Compression::Zstd,
                Some(v) => {
                    return Err(bad(
                        name,
                        format!("unknown compression '-z{v}' (use -z1 LZO or -z2 zstd)"),
                    ));
                }
            };
        }
        Opt::SelectRtt => raw.selection = SelectionStrategy::Rtt,
        Opt::SelectMac => raw.selection = SelectionStrategy::Mac,
        Opt::Address => raw.address = Some(parse_address(name, &req(name, value)?)?),
        Opt::Mac => raw.mac = Some(parse_mac(name, &req(name, value)?)?),
        Opt::TapName => {
            let v = req(name, value)?;
            check_ifname(name, &v)?;
            raw.tap_name = Some(v);
        }
        Opt::Mtu => {
            let v = req(name, value)?;
            let mtu = v
                .parse::<u16>()
                .ok()
                .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
                .ok_or_else(|| bad(name, format!("MTU '{v}' is not in {MIN_MTU}..{MAX_MTU}")))?;
            raw.mtu = Some(mtu);
        }
        Opt::Routing => raw.routing = true,
        Opt::Multicast => raw.multicast = true,
        Opt::Desc => raw.desc = Some(req(name, value)?),
        Opt::Password => raw.password = Some(req(name, value)?),
        Opt::FedKey => raw.fed_key = Some(req(name, value)?),
        Opt::Rule => raw.rules.push(parse_rule(&req(name, value)?)?),
        Opt::Metric => {
            return Err(unsupported(
                name,
                "the TAP interface metric exists on Windows only",
            ));
        }
        Opt::Route => {
            return Err(unsupported(
                name,
                "routes through the overlay were removed after n2n 3.1.1; \
                 add them with the OS tools (ip route add NET via GW)",
            ));
        }
        Opt::Foreground => raw.foreground = true,
        Opt::MgmtPort => {
            let v = req(name, value)?;
            raw.mgmt_port = Some(
                v.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(name, format!("'{v}' is not a port 1..65535")))?,
            );
        }
        Opt::MgmtPassword => raw.mgmt_password = Some(req(name, value)?),
        Opt::Verbose => raw.verbose += 1,
        Opt::Quiet => raw.quiet += 1,
        Opt::Uid => raw.uid = Some(parse_id(name, &req(name, value)?)?),
        Opt::Gid => raw.gid = Some(parse_id(name, &req(name, value)?)?),
        Opt::NoPortForwarding => {
            // Honoured by construction: this edge never maps ports (UPnP /
            // NAT-PMP), so the request is already fulfilled.
        }
        Opt::Meaningless => {
            return Err(unsupported(name, "it has no meaning for the edge"));
        }
        Opt::ShortHelp | Opt::LongHelp | Opt::DryRun => {}
    }
    Ok(())
}

fn validate(
    raw: Raw,
    env: &dyn Fn(&str) -> Option<String>,
    host_name: &dyn Fn() -> Option<String>,
) -> Result<EdgeOptions, CliError> {
    let mut warnings = raw.warnings;
    let env_nonempty = |k: &str| env(k).filter(|v| !v.is_empty());

    // Community.
    let community = raw
        .community
        .or_else(|| env_nonempty("N2N_COMMUNITY"))
        .ok_or_else(|| {
            CliError::Invalid("no community given: use -c <name> (or N2N_COMMUNITY)".into())
        })?;
    if community.is_empty() {
        return Err(bad("-c", "the community name is empty"));
    }
    let full_len = community.len();
    let community = truncate_bytes(&community, COMMUNITY_MAX)
        .ok_or_else(|| {
            bad(
                "-c",
                format!(
                    "community '{community}' is longer than {COMMUNITY_MAX} bytes \
                     and cannot be cut at a character boundary"
                ),
            )
        })?
        .to_owned();
    if community.len() < full_len {
        warnings.push(format!(
            "community name truncated to {COMMUNITY_MAX} bytes: '{community}'"
        ));
    }

    // Supernodes.
    if raw.supernodes.is_empty() {
        return Err(CliError::Invalid(
            "no supernode given: use -l <host:port>".into(),
        ));
    }

    // Cipher and key (crypto.md §2.1).
    let key = raw
        .key
        .or_else(|| env_nonempty("N2N_KEY").map(String::into_bytes));
    let cipher = match (raw.cipher, key.is_some()) {
        (None, true) => Cipher::Aes,
        (None, false) | (Some(Cipher::Null), false) => Cipher::Null,
        (Some(Cipher::Null), true) => {
            warnings.push("-A1 (no encryption) given together with a key: using AES".into());
            Cipher::Aes
        }
        (Some(c), false) => {
            return Err(bad(
                &format!("-A{}", c.id()),
                format!("cipher {} needs a key: use -k <key> (or N2N_KEY)", c.name()),
            ));
        }
        (Some(c), true) => c,
    };
    if key.as_deref() == Some(community.as_bytes()) {
        warnings.push("the key equals the community name; choose a secret key".into());
    }
    // User/password authentication: validate as C does, then refuse.
    let password = raw.password.or_else(|| env_nonempty("N2N_PASSWORD"));
    // -J forces header encryption (C); kept for when -J is implemented.
    let header_encryption = raw.header_enc || password.is_some();
    if password.is_some() {
        if !matches!(cipher, Cipher::ChaCha20 | Cipher::Speck) {
            return Err(bad(
                "-J",
                "user/password authentication needs -A4 (ChaCha20) or -A5 (Speck)",
            ));
        }
        return Err(unsupported(
            "-J",
            "user/password authentication (also set by N2N_PASSWORD) is not implemented yet",
        ));
    }
    if raw.fed_key.is_some() {
        return Err(unsupported(
            "-P",
            "the federation public key is only used by user/password authentication (-J), \
             which is not implemented yet",
        ));
    }
    if raw.supernode_only == Some(2) {
        return Err(unsupported(
            "-S2",
            "connecting to the supernode over TCP is not implemented yet (use -S1 for UDP)",
        ));
    }

    let tap_address = raw.address.unwrap_or(TapAddress::Auto);
    if tap_address == TapAddress::Dhcp && !raw.routing {
        warnings.push("-a dhcp: usually needs -r so that DHCP traffic is not dropped".into());
    }
    let mtu = raw.mtu.unwrap_or(DEFAULT_MTU);

    let desc_src = match raw.desc {
        Some(d) => d,
        None => host_name().unwrap_or_default(),
    };
    let desc = truncate_bytes(&desc_src, DESC_MAX)
        .ok_or_else(|| {
            bad(
                "-I",
                format!(
                    "description '{desc_src}' is longer than {DESC_MAX} bytes \
                     and cannot be cut at a character boundary"
                ),
            )
        })?
        .to_owned();
    if desc.len() < desc_src.len() {
        warnings.push(format!(
            "description truncated to {DESC_MAX} bytes: '{desc}'"
        ));
    }

    let verbosity = (u32::from(DEFAULT_VERBOSITY) + raw.verbose).saturating_sub(raw.quiet);

    Ok(EdgeOptions {
        community,
        supernodes: raw.supernodes,
        bind: raw
            .bind
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        tos: raw.tos,
        pmtu_discovery: raw.pmtu,
        preferred_local: raw.preferred_local,
        p2p: raw.supernode_only.is_none(),
        register_interval: Duration::from_secs(u64::from(
            raw.interval.unwrap_or(DEFAULT_REGISTER_INTERVAL),
        )),
        register_ttl: raw.ttl.unwrap_or(0),
        key: if cipher == Cipher::Null {
            None
        } else {
            key.map(Secret::new)
        },
        cipher,
        header_encryption,
        compression: raw.compression,
        selection: raw.selection,
        tap_address,
        mac: raw.mac,
        tap_name: raw.tap_name.unwrap_or_else(|| DEFAULT_TAP_NAME.to_owned()),
        mtu,
        routing: raw.routing,
        multicast: raw.multicast,
        desc,
        rules: raw.rules,
        foreground: raw.foreground,
        mgmt_port: raw.mgmt_port.unwrap_or(DEFAULT_MGMT_PORT),
        mgmt_password: raw
            .mgmt_password
            .unwrap_or_else(|| DEFAULT_MGMT_PASSWORD.to_owned()),
        verbosity: u8::try_from(verbosity).unwrap_or(u8::MAX),
        uid: raw.uid,
        gid: raw.gid,
        warnings,
    })
}

/// The longest prefix of `s` of at most `max` bytes, or `None` when the cut
/// would split a character.
fn truncate_bytes(s: &str, max: usize) -> Option<&str> {
    if s.len() <= max {
        Some(s)
    } else {
        s.get(..max)
    }
}

fn check_supernode(name: &str, v: &str) -> Result<(), CliError> {
    if v.chars().count() > SUPERNODE_MAX {
        return Err(bad(
            name,
            format!("supernode '{v}' is longer than {SUPERNODE_MAX} characters"),
        ));
    }
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| bad(name, format!("supernode '{v}' has no port: use host:port")))?;
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(bad(name, format!("supernode '{v}' has no valid host name")));
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            bad(
                name,
                format!("supernode '{v}': '{port}' is not a port 1..65535"),
            )
        })?;
    Ok(())
}

fn parse_bind(name: &str, v: &str) -> Result<SocketAddrV4, CliError> {
    let ip = |s: &str| -> Result<Ipv4Addr, CliError> {
        if s.is_empty() {
            return Ok(Ipv4Addr::UNSPECIFIED);
        }
        s.parse()
            .map_err(|_| bad(name, format!("'{s}' is not an IPv4 address")))
    };
    let port = |s: &str| -> Result<u16, CliError> {
        s.parse()
            .map_err(|_| bad(name, format!("'{s}' is not a port 0..65535")))
    };
    if let Some((a, p)) = v.split_once(':') {
        Ok(SocketAddrV4::new(ip(a)?, port(p)?))
    } else if v.contains('.') {
        Ok(SocketAddrV4::new(ip(v)?, 0))
    } else {
        Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port(v)?))
    }
}

/// `strtol(s, NULL, 0)` for non-negative values: `0x..` hex, `0..` octal,
/// else decimal; the whole string must be consumed.
fn parse_c_integer(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(s.get(1..)?, 8).ok()
    } else {
        s.parse().ok()
    }
}

fn parse_address(name: &str, v: &str) -> Result<TapAddress, CliError> {
    let (dhcp, spec) = if let Some(r) = v.strip_prefix("static:") {
        (false, r)
    } else if let Some(r) = v.strip_prefix("dhcp:") {
        (true, r)
    } else {
        (false, v)
    };
    let (ip_text, prefix) = match spec.split_once('/') {
        Some((ip, bits)) => (
            ip,
            bits.parse::<u8>()
                .ok()
                .filter(|b| (1..=32).contains(b))
                .ok_or_else(|| bad(name, format!("prefix '/{bits}' is not 1..32")))?,
        ),
        None => (spec, 24),
    };
    let ip: Ipv4Addr = ip_text
        .parse()
        .map_err(|_| bad(name, format!("'{ip_text}' is not an IPv4 address")))?;
    if dhcp {
        return Ok(TapAddress::Dhcp);
    }
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(bad(
            name,
            format!("{ip} is not a usable static address (omit -a to get one from the supernode)"),
        ));
    }
    Ok(TapAddress::Static { ip, prefix })
}

/// Parse `xx:xx:xx:xx:xx:xx` (one or two hex digits per byte).
pub fn parse_mac_text(v: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = v.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn parse_mac(name: &str, v: &str) -> Result<[u8; 6], CliError> {
    let mac = parse_mac_text(v).ok_or_else(|| {
        bad(
            name,
            format!("'{v}' is not a MAC address xx:xx:xx:xx:xx:xx"),
        )
    })?;
    if mac[0] & 1 != 0 {
        return Err(bad(name, format!("{v} is a multicast address")));
    }
    if mac == [0; 6] {
        return Err(bad(name, "00:00:00:00:00:00 is not a valid MAC address"));
    }
    Ok(mac)
}

fn check_ifname(name: &str, v: &str) -> Result<(), CliError> {
    if crate::tap::valid_ifname(v) {
        Ok(())
    } else {
        Err(bad(
            name,
            format!(
                "'{v}' is not a valid interface name (1..{IFNAME_MAX} bytes, no '/', ':' or spaces)"
            ),
        ))
    }
}

fn parse_id(name: &str, v: &str) -> Result<u32, CliError> {
    v.parse()
        .map_err(|_| bad(name, format!("'{v}' is not a numeric id")))
}

/// `-h`: short help.
pub const SHORT_HELP: &str = "\
edge: n2n v3 edge (layer-2 P2P VPN), compatible with C n2n 3.1.1

usage: edge <config file> [options...]
       edge -c <community> -l <supernode host:port> [options...]

 -c <community>       community name          -l <host:port>  supernode (repeatable)
 -k <key>             encryption key          -A1..-A7        cipher (key alone = AES)
 -a [static:|dhcp:]<ip>[/bits]  TAP address   -d <name>       TAP device (edge0)
 -M <mtu>             TAP MTU (1500)          -r              allow routing/bridging
 -f                   foreground              -v / -V         more / less logging

Run 'edge --help' for every option.
";

/// `--help`: long help listing every option.
pub const LONG_HELP: &str = "\
edge: n2n v3 edge (layer-2 P2P VPN), compatible with C n2n 3.1.1

usage: edge <config file> [options...]
       edge -c <community> -l <supernode host:port> [options...]

A configuration file (first argument, not starting with '-') holds one option
per line, e.g. '-c=mynetwork', '-k mysecret', '-A3'; options given after it on
the command line are applied after it (later wins, repeatable ones add up).
Short options with an optional argument need it attached: -A3, -z1, -S1.
Long options take '--name=value' or '--name value'.

UNDERLYING CONNECTION
 -c, --community <name>     community name, at most 19 bytes (longer: cut);
                            default: environment N2N_COMMUNITY. Required.
 -l, --supernode-list <host:port>
                            add a supernode (repeatable, at most 47 chars).
                            Required.
 -p [ip:]port | ip          bind the main UDP socket (default 0.0.0.0, any port)
 -T <tos>                   IP TOS of the main socket (decimal or 0x..)
 -D                         enable path-MTU discovery: set DF on the main
                            socket (IP_MTU_DISCOVER=do). Default: DF off
                            (IP_MTU_DISCOVER=dont), so oversized datagrams
                            are fragmented by the kernel (see -M)
 -e <ip> | auto             advertise this local address to peers (auto: the
                            address routing to the supernode); disables
                            multicast peer discovery
 -S1                        no P2P: send everything through the supernode
                            (bare -S is the deprecated form of -S1)
 -S2                        the same over TCP: NOT SUPPORTED by this edge
                            (refused at start)
 -i <seconds>               supernode re-registration interval (default 20, >= 1)
 -L <ttl>                   hole punching when a peer is first seen: 0 one
                            direct REGISTER (default), 1 none, >1 spray
                            REGISTERs to 16 ports with this IP TTL
 -k <key>                   encryption key (default: environment N2N_KEY);
                            a key without -A selects AES
 -A1                        no encryption (with a key: AES is used instead)
 -A2                        Twofish
 -A3                        AES (default when a key is given; bare -A = -A3)
 -A4                        ChaCha20
 -A5                        Speck
 -A6                        ChaCha20-Poly1305 (extension of this edge, not
                            understood by C n2n)
 -A7                        AES-256-GCM (extension of this edge, not
                            understood by C n2n)
                            -A2 to -A7 need a key.
 -H                         header encryption (the supernode must list the
                            community by name)
 -z1                        compress with LZO (bare -z = -z1)
 -z2                        compress with zstd
 --select-rtt               choose the supernode by round-trip time
 --select-mac               choose the supernode by lowest MAC address
                            (default: by reported load)

TAP DEVICE AND OVERLAY
 -a [static:|dhcp:]<ip>[/bits]
                            TAP IPv4 address, prefix default 24. Without -a
                            the supernode assigns one. dhcp:0.0.0.0 (with -r)
                            leaves the address to a DHCP client on the TAP
 -m <xx:xx:xx:xx:xx:xx>     TAP MAC address (default: random, locally
                            administered)
 -d, --tap-device <name>    TAP device name (default edge0); an existing TAP
                            device of that name is reused
 -M <mtu>                   TAP MTU, 68..1950. Default 1500 (C n2n: 1290), so
                            that hosts and VMs bridged behind the edge can send
                            full 1514-byte frames; the resulting ~1600-byte
                            UDP datagrams are fragmented by the kernel because
                            DF is off (see -D). With -D, choose an MTU that
                            fits the path (about path MTU - 110)
 -r                         allow routed/bridged traffic (no source/destination
                            address checks); needed for routers, bridges, DHCP
 -E                         accept multicast MAC frames (default: drop; needed
                            for IPv6 neighbour discovery)
 -I <text>                  edge description, at most 15 bytes (default: host
                            name)
 -J <password>              user/password authentication (env N2N_PASSWORD):
                            NOT SUPPORTED by this edge (refused at start)
 -P <public key>            federation public key for -J: NOT SUPPORTED
                            (refused at start)
 -R <rule>                  traffic filter rule, repeatable:
                            src_ip[/bits][:port|:[start,end]],
                            dst_ip[/bits][:port|:[start,end]]
                            [,TCP+|TCP-][,UDP+|UDP-][,ICMP+|ICMP-]
 -x <metric>                TAP interface metric: Windows only, refused here
 -n <net/bits:gw>           removed after n2n 3.1.1 (refused): add routes with
                            the OS tools instead

LOCAL OPTIONS
 -f                         stay in the foreground (default: run as a daemon)
 -t <port>                  management UDP port on 127.0.0.1 (default 5644)
 --management-password <pw> management password (default n2n)
 -v, --verbose              more logging (repeatable)
 -V                         less logging (repeatable)
 -u, --euid <uid>           user id to run as once the TAP is set up
                            (default: user n2n, else nobody; 0 keeps root)
 -g, --egid <gid>           group id, likewise
 -h                         short help
 --help                     this help
 --no-port-forwarding       accepted for 3.1.1 compatibility; this edge never
                            maps ports with UPnP/NAT-PMP anyway
 --dry-run                  (extension) check the options, print the resulting
                            configuration and exit without opening anything

ENVIRONMENT
 N2N_KEY, N2N_COMMUNITY, N2N_PASSWORD   used when -k, -c, -J are not given

EXIT STATUS
 0 success or help, 1 run-time failure (TAP, socket, ...), 2 bad command
 line or configuration file (the message names the problem)
";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn host() -> Option<String> {
        Some("myhost".into())
    }

    fn run(args: &[&str]) -> Result<EdgeOptions, CliError> {
        run_env(args, &no_env)
    }

    fn run_env(
        args: &[&str],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EdgeOptions, CliError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse_args(&args, env, &host)? {
            Invocation::Run(o) => Ok(*o),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&["-c", "rocks", "-l", "sn.example.net:7654"]).unwrap();
        assert_eq!(o.community, "rocks");
        assert_eq!(o.supernodes, ["sn.example.net:7654"]);
        assert_eq!(o.bind, "0.0.0.0:0".parse().unwrap());
        assert_eq!(o.tos, None);
        assert!(!o.pmtu_discovery);
        assert!(o.p2p);
        assert_eq!(o.register_interval, Duration::from_secs(20));
        assert_eq!(o.register_ttl, 0);
        assert_eq!(o.cipher, Cipher::Null);
        assert!(o.key.is_none());
        assert!(!o.header_encryption);
        assert_eq!(o.compression, Compression::None);
        assert_eq!(o.selection, SelectionStrategy::Load);
        assert_eq!(o.tap_address, TapAddress::Auto);
        assert_eq!(o.mac, None);
        assert_eq!(o.tap_name, "edge0");
        assert_eq!(o.mtu, 1500);
        assert!(!o.routing && !o.multicast && !o.foreground);
        assert_eq!(o.desc, "myhost");
        assert_eq!(o.mgmt_port, 5644);
        assert_eq!(o.mgmt_password, "n2n");
        assert_eq!(o.verbosity, 2);
        assert_eq!((o.uid, o.gid), (None, None));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn every_option() {
        let o = run(&[
            "--community=net",
            "--supernode-list",
            "a:1",
            "-lb:2",
            "-p",
            "10.0.0.1:5000",
            "-T0x10",
            "-D",
            "-e",
            "192.168.1.2",
            "-S1",
            "-i",
            "7",
            "-L",
            "3",
            "-k",
            "a key with spaces",
            "-A5",
            "-H",
            "-z2",
            "--select-mac",
            "-a",
            "static:10.1.2.3/16",
            "-m",
            "2:0:0:a:b:C",
            "--tap-device",
            "n2n1",
            "-M",
            "1400",
            "-rE",
            "-I",
            "desc",
            "-R",
            "1.2.3.0/24,0.0.0.0/0,TCP-",
            "-R",
            "0.0.0.0/0,0.0.0.0/0,UDP+",
            "-f",
            "-t",
            "6000",
            "--management-password",
            "pw",
            "-vvv",
            "-V",
            "--euid",
            "100",
            "-g",
            "200",
            "--no-port-forwarding",
        ])
        .unwrap();
        assert_eq!(o.community, "net");
        assert_eq!(o.supernodes, ["a:1", "b:2"]);
        assert_eq!(o.bind, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(o.tos, Some(16));
        assert!(o.pmtu_discovery);
        assert_eq!(
            o.preferred_local,
            Some(PreferredLocal::Addr(Ipv4Addr::new(192, 168, 1, 2)))
        );
        assert!(!o.p2p);
        assert_eq!(o.register_interval, Duration::from_secs(7));
        assert_eq!(o.register_ttl, 3);
        assert_eq!(o.cipher, Cipher::Speck);
        assert_eq!(o.key.as_ref().unwrap().bytes(), b"a key with spaces");
        assert!(o.header_encryption);
        assert_eq!(o.compression, Compression::Zstd);
        assert_eq!(o.selection, SelectionStrategy::Mac);
        assert_eq!(
            o.tap_address,
            TapAddress::Static {
                ip: Ipv4Addr::new(10, 1, 2, 3),
                prefix: 16
            }
        );
        assert_eq!(o.mac, Some([2, 0, 0, 0xa, 0xb, 0xc]));
        assert_eq!(o.tap_name, "n2n1");
        assert_eq!(o.mtu, 1400);
        assert!(o.routing && o.multicast && o.foreground);
        assert_eq!(o.desc, "desc");
        assert_eq!(o.rules.len(), 2);
        assert_eq!(o.mgmt_port, 6000);
        assert_eq!(o.mgmt_password, "pw");
        assert_eq!(o.verbosity, 4);
        assert_eq!((o.uid, o.gid), (Some(100), Some(200)));
        // The secret is not printed.
        assert!(!format!("{o:?}").contains("a key with spaces"));
    }

    #[test]
    fn cipher_selection() {
        let base = ["-c", "x", "-l", "h:1"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            run(&v)
        };
        assert_eq!(with(&["-k", "k"]).unwrap().cipher, Cipher::Aes);
        let o = with(&["-k", "k", "-A1"]).unwrap();
        assert_eq!(o.cipher, Cipher::Aes);
        assert_eq!(o.warnings.len(), 1);
        assert_eq!(with(&["-A1"]).unwrap().cipher, Cipher::Null);
        assert!(with(&["-A1"]).unwrap().key.is_none());
        let o = with(&["-A"]).unwrap_err();
        assert!(
            o.to_string().contains("-A3") && o.to_string().contains("key"),
            "{o}"
        );
        for n in 2..=7 {
            let a = format!("-A{n}");
            let e = with(&[&a]).unwrap_err();
            assert!(e.to_string().contains(&a), "{e}");
            assert_eq!(with(&[&a, "-k", "k"]).unwrap().cipher.id(), n);
        }
        for bad in ["-A0", "-A8", "-Ax", "-A33"] {
            assert!(with(&[bad, "-k", "k"]).is_err(), "{bad}");
        }
        // bare -A = AES, deprecated
        let o = with(&["-A", "-k", "k"]).unwrap();
        assert_eq!(o.cipher, Cipher::Aes);
        assert!(!o.warnings.is_empty());
        // key from env, command line wins
        let env = |k: &str| (k == "N2N_KEY").then(|| "envkey".to_string());
        let o = run_env(&base, &env).unwrap();
        assert_eq!(
            (o.cipher, o.key.unwrap().bytes()),
            (Cipher::Aes, &b"envkey"[..])
        );
        let o = run_env(&["-c", "x", "-l", "h:1", "-k", "cli"], &env).unwrap();
        assert_eq!(o.key.unwrap().bytes(), b"cli");
        // key == community warns
        let o = with(&["-k", "x"]).unwrap();
        assert!(o.warnings.iter().any(|w| w.contains("community")));
    }

    #[test]
    fn password_rules() {
        let e = run(&["-c", "x", "-l", "h:1", "-J", "pw", "-k", "k"]).unwrap_err();
        assert!(e.to_string().contains("-A4"), "{e}");
        let e = run(&["-c", "x", "-l", "h:1", "-J", "pw", "-k", "k", "-A4"]).unwrap_err();
        assert!(matches!(e, CliError::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("-J"));
        let env = |k: &str| (k == "N2N_PASSWORD").then(|| "pw".to_string());
        let e = run_env(&["-c", "x", "-l", "h:1", "-k", "k", "-A5"], &env).unwrap_err();
        assert!(e.to_string().contains("-J") && e.to_string().contains("N2N_PASSWORD"));
        let e = run(&["-c", "x", "-l", "h:1", "-P", "abc"]).unwrap_err();
        assert!(e.to_string().contains("-P"));
    }

    #[test]
    fn refusals() {
        for (args, needle) in [
            (&["-S2"][..], "-S2"),
            (&["-x", "5"][..], "-x"),
            (&["-n", "10.0.0.0/8:10.1.1.1"][..], "-n"),
            (&["-s", "x"][..], "-s"),
            (&["-S3"][..], "-S"),
            (&["-z3"][..], "-z"),
            (&["-q"][..], "-q"),
            (&["--bogus"][..], "--bogus"),
            (&["-A", "3"][..], "-A3"),
            (&["stray"][..], "stray"),
            (&["-i", "0"][..], "-i"),
            (&["-i", "x"][..], "-i"),
            (&["-L", "256"][..], "-L"),
            (&["-M", "67"][..], "-M"),
            (&["-M", "1951"][..], "-M"),
            (&["-m", "01:00:5e:00:00:01"][..], "multicast"),
            (&["-m", "00:00:00:00:00:00"][..], "-m"),
            (&["-m", "1:2:3:4:5"][..], "-m"),
            (&["-m", "1:2:3:4:5:6:7"][..], "-m"),
            (&["-m", "100:2:3:4:5:6"][..], "-m"),
            (&["-a", "1.2.3.4/33"][..], "-a"),
            (&["-a", "1.2.3/24"][..], "-a"),
            (&["-a", "0.0.0.0"][..], "-a"),
            (&["-a", "dhcp:x"][..], "-a"),
            (&["-d", "a/b"][..], "-d"),
            (&["-d", "sixteen-chars-xx"][..], "-d"),
            (&["-p", "1.2.3.4:x"][..], "-p"),
            (&["-p", "70000"][..], "-p"),
            (&["-T", "256"][..], "-T"),
            (&["-e", "x"][..], "-e"),
            (&["-t", "0"][..], "-t"),
            (&["-u", "-1"][..], "-u"),
            (&["-k", ""][..], "-k"),
            (&["-R", "1.2.3.4"][..], "-R"),
            (&["-l", "nohost"][..], "-l"),
            (&["-l", ":5"][..], "-l"),
            (&["-l", "h:0"][..], "-l"),
            (
                &["-l", "a-very-long-supernode-name.example.invalid.net:7654"][..],
                "47",
            ),
        ] {
            let mut v = vec!["-c", "x", "-l", "h:1"];
            v.extend_from_slice(args);
            let e = run(&v).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn required_and_env() {
        let e = run(&["-l", "h:1"]).unwrap_err().to_string();
        assert!(e.contains("community"), "{e}");
        let e = run(&["-c", "", "-l", "h:1"]).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = run(&["-c", "x"]).unwrap_err().to_string();
        assert!(e.contains("supernode"), "{e}");
        let env = |k: &str| (k == "N2N_COMMUNITY").then(|| "envnet".to_string());
        assert_eq!(run_env(&["-l", "h:1"], &env).unwrap().community, "envnet");
        assert_eq!(
            run_env(&["-l", "h:1", "-c", "cli"], &env)
                .unwrap()
                .community,
            "cli"
        );
    }

    #[test]
    fn truncation_and_values() {
        let o = run(&[
            "-c",
            "0123456789abcdefghijKLM",
            "-l",
            "h:1",
            "-I",
            "a-very-long-description",
        ])
        .unwrap();
        assert_eq!(o.community, "0123456789abcdefghi");
        assert_eq!(o.desc, "a-very-long-des");
        assert_eq!(o.warnings.len(), 2);
        let o = run(&[
            "-c",
            "x",
            "-l",
            "h:1",
            "-p",
            "1.2.3.4",
            "-T",
            "010",
            "-e",
            "auto",
            "-S",
            "-z",
            "-a",
            "dhcp:0.0.0.0",
            "-r",
        ])
        .unwrap();
        assert_eq!(o.bind, "1.2.3.4:0".parse().unwrap());
        assert_eq!(o.tos, Some(8));
        assert_eq!(o.preferred_local, Some(PreferredLocal::Auto));
        assert!(!o.p2p);
        assert_eq!(o.compression, Compression::Lzo);
        assert_eq!(o.tap_address, TapAddress::Dhcp);
        let o = run(&[
            "-c", "x", "-l", "h:1", "-p", "5000", "-a", "10.0.0.1", "-VVVVV",
        ])
        .unwrap();
        assert_eq!(o.bind, "0.0.0.0:5000".parse().unwrap());
        assert_eq!(
            o.tap_address,
            TapAddress::Static {
                ip: Ipv4Addr::new(10, 0, 0, 1),
                prefix: 24
            }
        );
        assert_eq!(o.verbosity, 0);
        // later wins
        let o = run(&[
            "-c",
            "a",
            "-c",
            "b",
            "-l",
            "h:1",
            "--select-rtt",
            "-M",
            "1300",
            "-M",
            "1280",
        ])
        .unwrap();
        assert_eq!(
            (o.community.as_str(), o.mtu, o.selection),
            ("b", 1280, SelectionStrategy::Rtt)
        );
    }

    #[test]
    fn help() {
        let a = |v: &[&str]| {
            parse_args(
                &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &no_env,
                &host,
            )
        };
        assert!(matches!(a(&["-h"]), Ok(Invocation::ShortHelp)));
        assert!(matches!(
            a(&["-c", "x", "--help"]),
            Ok(Invocation::LongHelp)
        ));
        assert!(matches!(a(&["--he"]), Ok(Invocation::LongHelp)));
    }

    #[test]
    fn config_file() {
        let argv: Vec<String> = ["edge", "/x/edge.conf", "-c", "late", "-l", "b:2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let read = |p: &str| {
            assert_eq!(p, "/x/edge.conf");
            Ok("-c=rocks\n-k my secret key\n-l a:1\n-A3\n".to_string())
        };
        let Invocation::Run(o) = parse_invocation(&argv, &no_env, &read, &host).unwrap() else {
            panic!()
        };
        assert_eq!(o.community, "late");
        assert_eq!(o.supernodes, ["a:1", "b:2"]);
        assert_eq!(o.key.unwrap().bytes(), b"my secret key");
        let fail = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let e = parse_invocation(&argv, &no_env, &fail, &host).unwrap_err();
        assert!(e.to_string().contains("/x/edge.conf"));
        let bad = |_: &str| Ok("community rocks\n".to_string());
        let e = parse_invocation(&argv, &no_env, &bad, &host).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
