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
//! * options this edge does not implement (`-x`) and the removed
//!   `-n` are refused at start with a message naming the option, never
//!   ignored;
//! * words that are not options (e.g. the `3` of `-A 3`) are refused
//!   instead of being silently skipped as glibc's `getopt_long` does.
//!
//! Every error is one line naming the problem; the binary prints it and
//! exits with status [`EXIT_USAGE`] (2).
//!
//! The options are declared once, in `cli/table.rs` (the `--help` text is
//! rendered from it), and scanned by the stack shared with the supernode
//! (`n2n_cli`); `apply` stores each option as given, `validate`
//! adds defaults and cross-checks. `-A`/`-z` meet the wire ids in one
//! place, `cli/ids.rs`; `-R` rules are parsed by the core's
//! `TrafficRule::from_str`, the only `-R` grammar.

mod ids;
mod table;
#[cfg(test)]
mod tests;
mod values;

use std::fmt;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use zeroize::Zeroize;

pub use n2n_cli::values::SUPERNODE_MAX;
pub use n2n_cli::{CliError, EXIT_USAGE};
use n2n_cli::{Common, Flavor, conffile, required, values as shared};
pub use n2n_core::edge::TrafficRule;
use n2n_proto::auth::PublicKey;
use n2n_proto::types::{CompressionId, TransformId};

pub use ids::{
    cipher_from_cli, cipher_name, cipher_number, compression_from_cli, compression_name,
};
use table::{Opt, TABLE};
pub use values::parse_mac_text;

/// Longest community name (bytes) C n2n keeps.
pub const COMMUNITY_MAX: usize = 19;
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
/// Most data-path threads (`--threads`).
pub const MAX_THREADS: usize = 64;
/// Default registration interval (seconds).
pub const DEFAULT_REGISTER_INTERVAL: u32 = 20;
/// Default TAP device name.
pub const DEFAULT_TAP_NAME: &str = "edge0";
/// Default management password.
pub const DEFAULT_MGMT_PASSWORD: &str = n2n_core::mgmt::DEFAULT_PASSWORD;

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

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
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
    /// P2P allowed (false with `-S1` and `-S2`).
    pub p2p: bool,
    /// `-S2`: everything through one TCP connection to the supernode.
    pub tcp: bool,
    /// `-i`: supernode re-registration interval (≥ 1 s, default 20 s).
    pub register_interval: Duration,
    /// `-L`: hole-punching TTL mode (0 default, 1 none, >1 spray TTL).
    pub register_ttl: u8,
    /// `-A` after the selection rules of crypto.md §2.1 (the wire id).
    pub cipher: TransformId,
    /// `-k` / `N2N_KEY`: `Some` iff `cipher != TransformId::Null`.
    pub key: Option<Secret>,
    /// `-H`: header encryption (forced on by `-J`).
    pub header_encryption: bool,
    /// `-J` / `N2N_PASSWORD`: the password of user/password authentication
    /// (the user name is [`desc`](Self::desc)). Never printed: `Debug` and
    /// [`describe`](Self::describe) show only that it is set.
    pub password: Option<Secret>,
    /// `-P`: the federation public key for `-J` (`None`: the key of the
    /// default federation `Federation`).
    pub federation_key: Option<PublicKey>,
    /// `-z` (the wire id; `CompressionId::None` without `-z`).
    pub compression: CompressionId,
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
    /// `--metrics [IP:]PORT`: serve Prometheus metrics there (off by default).
    pub metrics: Option<std::net::SocketAddr>,
    /// `--bridge` (extension): the existing Linux bridge the TAP is
    /// enslaved to; the overlay address then goes on the bridge.
    pub bridge: Option<String>,
    /// `--threads` (extension): data-path threads (TAP queues and
    /// `SO_REUSEPORT` sockets), 1 = C's single thread.
    pub threads: usize,
    /// `--up-script` (extension): run once the TAP is up.
    pub up_script: Option<std::path::PathBuf>,
    /// `--down-script` (extension): run before the TAP goes away.
    pub down_script: Option<std::path::PathBuf>,
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
                format!(
                    "{} ({})",
                    cipher_name(self.cipher),
                    cipher_number(self.cipher)
                ),
            ),
            (
                "key",
                opt(self
                    .key
                    .as_ref()
                    .map(|k| format!("{} bytes", k.bytes().len()))),
            ),
            ("header_encryption", self.header_encryption.to_string()),
            (
                "user_password",
                match &self.password {
                    Some(_) => format!("on (user '{}', password set, not shown)", self.desc),
                    None => "off".into(),
                },
            ),
            (
                "federation_key",
                match &self.federation_key {
                    Some(k) => k.to_string(),
                    None if self.password.is_some() => {
                        format!(
                            "{} (federation 'Federation')",
                            PublicKey::default_federation()
                        )
                    }
                    None => "-".into(),
                },
            ),
            ("compression", compression_name(self.compression).to_owned()),
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
            ("metrics", opt(self.metrics.map(|m| m.to_string()))),
            ("bridge", opt(self.bridge.clone())),
            ("threads", self.threads.to_string()),
            (
                "up_script",
                opt(self.up_script.as_ref().map(|p| p.display().to_string())),
            ),
            (
                "down_script",
                opt(self.down_script.as_ref().map(|p| p.display().to_string())),
            ),
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

/// `-h`: short help.
pub fn short_help() -> String {
    TABLE.short_help()
}

/// `--help`: every option, rendered from the option table.
pub fn long_help() -> String {
    TABLE.help()
}

/// Options as given, before defaults and cross-checks. Later values
/// overwrite earlier ones; repeatable options accumulate.
#[derive(Debug, Default)]
struct Raw {
    metrics: Option<std::net::SocketAddr>,
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
    cipher: Option<TransformId>,
    header_enc: bool,
    compression: Option<CompressionId>,
    selection: SelectionStrategy,
    address: Option<TapAddress>,
    mac: Option<[u8; 6]>,
    tap_name: Option<String>,
    mtu: Option<u16>,
    routing: bool,
    multicast: bool,
    desc: Option<String>,
    password: Option<Vec<u8>>,
    fed_key: Option<PublicKey>,
    rules: Vec<TrafficRule>,
    bridge: Option<String>,
    threads: Option<usize>,
    up_script: Option<String>,
    down_script: Option<String>,
    common: Common,
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
    let args = conffile::expand(argv, Flavor::Edge, read_file)?;
    parse_args(&args, env, host_name)
}

/// Parse options (no program name, no configuration file) into an
/// [`Invocation`].
pub fn parse_args(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    host_name: &dyn Fn() -> Option<String>,
) -> Result<Invocation, CliError> {
    let mut raw = Raw::default();
    let mut dry_run = false;
    for o in n2n_cli::options(&TABLE, args, env)? {
        match o.key {
            Opt::ShortHelp => return Ok(Invocation::ShortHelp),
            Opt::LongHelp => return Ok(Invocation::LongHelp),
            Opt::DryRun => dry_run = true,
            key => apply(&mut raw, key, &o.name, o.value.as_deref())?,
        }
    }
    let opts = Box::new(validate(raw, host_name)?);
    Ok(if dry_run {
        Invocation::DryRun(opts)
    } else {
        Invocation::Run(opts)
    })
}

/// Apply one option (`name` as written, for messages).
fn apply(raw: &mut Raw, key: Opt, name: &str, value: Option<&str>) -> Result<(), CliError> {
    match key {
        Opt::Community => raw.community = Some(required(name, value)?.to_owned()),
        Opt::Supernode => {
            let v = required(name, value)?;
            shared::supernode(name, v)?;
            raw.supernodes.push(v.to_owned());
        }
        Opt::Bind => raw.bind = Some(values::bind(name, required(name, value)?)?),
        Opt::Tos => {
            let v = required(name, value)?;
            let tos = shared::c_integer(v)
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| CliError::bad(name, format!("'{v}' is not a TOS value 0..255")))?;
            raw.tos = Some(tos);
        }
        Opt::Pmtu => raw.pmtu = true,
        Opt::PreferredLocal => {
            let v = required(name, value)?;
            raw.preferred_local = Some(if v == "auto" {
                PreferredLocal::Auto
            } else {
                PreferredLocal::Addr(v.parse().map_err(|_| {
                    CliError::bad(name, format!("'{v}' is neither an IPv4 address nor 'auto'"))
                })?)
            });
        }
        Opt::SupernodeOnly => {
            raw.supernode_only = Some(match value {
                None => {
                    raw.warnings
                        .push("bare -S is deprecated, use -S1".to_owned());
                    1
                }
                Some("1") => 1,
                Some("2") => 2,
                Some(v) => return Err(CliError::bad(name, format!("'-S{v}': use -S1 (or -S2)"))),
            });
        }
        Opt::Interval => {
            let v = required(name, value)?;
            let secs: u32 = v
                .parse()
                .map_err(|_| CliError::bad(name, format!("'{v}' is not a number of seconds")))?;
            if secs < 1 {
                return Err(CliError::bad(
                    name,
                    "the registration interval must be at least 1 second",
                ));
            }
            raw.interval = Some(secs);
        }
        Opt::Ttl => {
            let v = required(name, value)?;
            raw.ttl = Some(
                v.parse()
                    .map_err(|_| CliError::bad(name, format!("'{v}' is not a TTL 0..255")))?,
            );
        }
        Opt::Key => {
            let v = required(name, value)?;
            if v.is_empty() {
                return Err(CliError::bad(name, "the key is empty"));
            }
            raw.key = Some(v.as_bytes().to_vec());
        }
        Opt::Cipher => {
            raw.cipher = Some(match value {
                None => {
                    raw.warnings
                        .push("bare -A is deprecated, use -A3 for AES".to_owned());
                    TransformId::Aes
                }
                Some(v) => cipher_from_cli(v).ok_or_else(|| {
                    CliError::bad(
                        name,
                        format!("unknown cipher '-A{v}' (use -A1 … -A7, see --help)"),
                    )
                })?,
            });
        }
        Opt::HeaderEnc => raw.header_enc = true,
        Opt::Compress => {
            raw.compression = Some(compression_from_cli(value).ok_or_else(|| {
                CliError::bad(
                    name,
                    format!(
                        "unknown compression '-z{}' (use -z1 LZO or -z2 zstd)",
                        value.unwrap_or_default()
                    ),
                )
            })?);
        }
        Opt::Metrics => {
            raw.metrics = Some(
                n2n_metrics::parse_metrics_addr(required(name, value)?).map_err(|e| {
                    CliError::BadValue {
                        option: name.to_owned(),
                        reason: e.to_string(),
                    }
                })?,
            );
        }
        Opt::SelectRtt => raw.selection = SelectionStrategy::Rtt,
        Opt::SelectMac => raw.selection = SelectionStrategy::Mac,
        Opt::Address => raw.address = Some(values::address(name, required(name, value)?)?),
        Opt::Mac => raw.mac = Some(values::mac(name, required(name, value)?)?),
        Opt::TapName => {
            let v = required(name, value)?;
            values::ifname(name, v)?;
            raw.tap_name = Some(v.to_owned());
        }
        Opt::Mtu => {
            let v = required(name, value)?;
            let mtu = v
                .parse::<u16>()
                .ok()
                .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
                .ok_or_else(|| {
                    CliError::bad(name, format!("MTU '{v}' is not in {MIN_MTU}..{MAX_MTU}"))
                })?;
            raw.mtu = Some(mtu);
        }
        Opt::Routing => raw.routing = true,
        Opt::Multicast => raw.multicast = true,
        Opt::Desc => raw.desc = Some(required(name, value)?.to_owned()),
        Opt::Password => {
            let v = required(name, value)?;
            if v.is_empty() {
                return Err(CliError::bad(name, "the password is empty"));
            }
            raw.password = Some(v.as_bytes().to_vec());
        }
        Opt::FedKey => {
            let v = required(name, value)?;
            raw.fed_key = Some(PublicKey::from_text(v.as_bytes()).map_err(|e| {
                CliError::bad(
                    name,
                    format!("'{v}' is not a federation public key (n2n-keygen -F <name> prints one): {e}"),
                )
            })?);
        }
        Opt::Rule => raw.rules.push(
            required(name, value)?
                .parse()
                .map_err(|e: n2n_core::edge::RuleError| CliError::bad(name, e.to_string()))?,
        ),
        Opt::Metric => {
            return Err(CliError::unsupported(
                name,
                "the TAP interface metric exists on Windows only",
            ));
        }
        Opt::Route => {
            return Err(CliError::unsupported(
                name,
                "routes through the overlay were removed after n2n 3.1.1; \
                 add them with the OS tools (ip route add NET via GW)",
            ));
        }
        Opt::Bridge => {
            let v = required(name, value)?;
            values::ifname(name, v)?;
            raw.bridge = Some(v.to_owned());
        }
        Opt::Threads => {
            let v = required(name, value)?;
            raw.threads = Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_THREADS).contains(n))
                    .ok_or_else(|| {
                        CliError::bad(
                            name,
                            format!("'{v}' is not a thread count (1..={MAX_THREADS})"),
                        )
                    })?,
            );
        }
        Opt::UpScript => raw.up_script = Some(values::script(name, required(name, value)?)?),
        Opt::DownScript => raw.down_script = Some(values::script(name, required(name, value)?)?),
        Opt::Common(c) => raw.common.apply(c, name, value)?,
        Opt::NoPortForwarding => {
            // Honoured by construction: this edge never maps ports (UPnP /
            // NAT-PMP), so the request is already fulfilled.
        }
        Opt::Meaningless => {
            return Err(CliError::unsupported(
                name,
                "it has no meaning for the edge",
            ));
        }
        Opt::ShortHelp | Opt::LongHelp | Opt::DryRun => {}
    }
    Ok(())
}

/// `s` cut to `max` bytes (with a warning naming `what.1`), or an error
/// naming `option` and `what.0` when the cut would split a character.
fn truncated(
    option: &str,
    what: (&str, &str),
    s: String,
    max: usize,
    warnings: &mut Vec<String>,
) -> Result<String, CliError> {
    let cut = shared::truncate_bytes(&s, max).ok_or_else(|| {
        CliError::bad(
            option,
            format!(
                "{} '{s}' is longer than {max} bytes and cannot be cut at a character boundary",
                what.0
            ),
        )
    })?;
    if cut.len() < s.len() {
        warnings.push(format!("{} truncated to {max} bytes: '{cut}'", what.1));
    }
    Ok(cut.to_owned())
}

fn validate(raw: Raw, host_name: &dyn Fn() -> Option<String>) -> Result<EdgeOptions, CliError> {
    let mut warnings = raw.warnings;

    // Community (N2N_COMMUNITY arrives as -c).
    let community = raw.community.ok_or_else(|| {
        CliError::Invalid("no community given: use -c <name> (or N2N_COMMUNITY)".into())
    })?;
    if community.is_empty() {
        return Err(CliError::bad("-c", "the community name is empty"));
    }
    let community = truncated(
        "-c",
        ("community", "community name"),
        community,
        COMMUNITY_MAX,
        &mut warnings,
    )?;

    // Supernodes.
    if raw.supernodes.is_empty() {
        return Err(CliError::Invalid(
            "no supernode given: use -l <host:port>".into(),
        ));
    }

    // Cipher and key (crypto.md §2.1; N2N_KEY arrives as -k).
    let key = raw.key;
    let cipher = match (raw.cipher, key.is_some()) {
        (None, true) => TransformId::Aes,
        (None, false) => TransformId::Null,
        (Some(TransformId::Null), false) => TransformId::Null,
        (Some(TransformId::Null), true) => {
            warnings.push("-A1 (no encryption) given together with a key: using AES".into());
            TransformId::Aes
        }
        (Some(c), false) => {
            return Err(CliError::bad(
                &format!("-A{}", cipher_number(c)),
                format!(
                    "cipher {} needs a key: use -k <key> (or N2N_KEY)",
                    cipher_name(c)
                ),
            ));
        }
        (Some(c), true) => c,
    };
    if key.as_deref() == Some(community.as_bytes()) {
        warnings.push("the key equals the community name; choose a secret key".into());
    }
    // User/password authentication (N2N_PASSWORD arrives as -J): C's rule
    // and wording; -J forces header encryption.
    let header_encryption = raw.header_enc || raw.password.is_some();
    if raw.password.is_some() && !matches!(cipher, TransformId::ChaCha20 | TransformId::Speck) {
        return Err(CliError::bad(
            "-J",
            "user-password authentication requires ChaCha20 (-A4) or SPECK (-A5) to be used",
        ));
    }
    if raw.fed_key.is_some() && raw.password.is_none() {
        warnings.push("-P (federation public key) has no effect without -J".to_owned());
    }

    let tap_address = raw.address.unwrap_or(TapAddress::Auto);
    if tap_address == TapAddress::Dhcp && !raw.routing {
        warnings.push("-a dhcp: usually needs -r so that DHCP traffic is not dropped".into());
    }
    let tap_name = raw.tap_name.unwrap_or_else(|| DEFAULT_TAP_NAME.to_owned());
    if raw.bridge.as_deref() == Some(tap_name.as_str()) {
        return Err(CliError::bad(
            "--bridge",
            format!("the bridge cannot be the TAP device itself ('{tap_name}')"),
        ));
    }
    if raw.bridge.is_some() && !raw.routing {
        warnings.push("--bridge: usually needs -r so that bridged traffic is not dropped".into());
    }
    let desc = raw.desc.unwrap_or_else(|| host_name().unwrap_or_default());
    let desc = truncated(
        "-I",
        ("description", "description"),
        desc,
        DESC_MAX,
        &mut warnings,
    )?;
    let mut threads = raw.threads.unwrap_or(1);
    if threads > 1 && raw.supernode_only == Some(2) {
        warnings.push(format!(
            "--threads {threads}: -S2 carries the datagrams for the supernode over one \
             TCP connection: running one data-path thread"
        ));
        threads = 1;
    }
    let common = raw.common;
    let verbosity = u8::try_from(common.verbosity()).unwrap_or(u8::MAX);

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
        tcp: raw.supernode_only == Some(2),
        register_interval: Duration::from_secs(u64::from(
            raw.interval.unwrap_or(DEFAULT_REGISTER_INTERVAL),
        )),
        register_ttl: raw.ttl.unwrap_or(0),
        key: if cipher == TransformId::Null {
            None
        } else {
            key.map(Secret::new)
        },
        cipher,
        header_encryption,
        password: raw.password.map(Secret::new),
        federation_key: raw.fed_key,
        compression: raw.compression.unwrap_or(CompressionId::None),
        selection: raw.selection,
        tap_address,
        mac: raw.mac,
        tap_name,
        mtu: raw.mtu.unwrap_or(DEFAULT_MTU),
        routing: raw.routing,
        multicast: raw.multicast,
        desc,
        rules: raw.rules,
        foreground: common.foreground,
        mgmt_port: common.mgmt_port.unwrap_or(DEFAULT_MGMT_PORT),
        mgmt_password: common
            .mgmt_password
            .unwrap_or_else(|| DEFAULT_MGMT_PASSWORD.to_owned()),
        verbosity,
        uid: common.uid,
        gid: common.gid,
        metrics: raw.metrics,
        bridge: raw.bridge,
        threads,
        up_script: raw.up_script.map(std::path::PathBuf::from),
        down_script: raw.down_script.map(std::path::PathBuf::from),
        warnings,
    })
}
