//! Command line and configuration file of the supernode (cli.md §2, §3),
//! validated into [`SupernodeOptions`].
//!
//! Usage: `supernode <config-file> [options…]` or `supernode <options…>`.
//! A config file is recognised only as the first argument and only if it
//! does not start with `-`; its options come first, so options given after
//! it win (repeatable options accumulate).
//!
//! Exit codes: every configuration problem (unknown option, bad value,
//! unreadable or broken config/community file, option not supported yet)
//! prints one line `supernode: error: …` on stderr and exits with **2**, like
//! a usage error. `-h`/`--help` print help and exit 0. Failures of the
//! system at start (bind, daemon, privilege drop) exit with 1.
//!
//! Deliberate differences from C n2n (which prints help and exits 0 on any
//! option error, and warns-and-continues on many bad values): bad values are
//! errors; an explicit `-u`/`-g` is honoured even when user `n2n`/`nobody`
//! exists; a missing community file is an error instead of running open.
//!
//! The options are declared once in `options/table.rs` and parsed by the
//! command-line stack shared with the edge (`n2n_cli`): `getopt_long`
//! forms, C's configuration files, `N2N_FEDERATION`, help from the table.

mod table;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use n2n_cli::{CliError, Common, Flavor, conffile, required, values};
use n2n_core::mgmt::Password;
use n2n_core::supernode::autoip::{AutoIpError, AutoIpPool};
use n2n_core::supernode::community_list::{CommunityList, CommunityListError};
use n2n_core::supernode::{
    DEFAULT_MAX_COMMUNITIES, DEFAULT_MAX_EDGES, DEFAULT_MAX_EDGES_PER_COMMUNITY, FederationPeer,
    SupernodeConfig, federation_field, federation_field_over,
};
use n2n_proto::types::Mac;

use table::{Opt, TABLE};

/// Default UDP port.
pub const DEFAULT_PORT: u16 = 7654;
/// Default management port.
pub const DEFAULT_MGMT_PORT: u16 = 5645;
/// Default federation name.
pub const DEFAULT_FEDERATION: &str = "Federation";
/// Default version string sent in PONGs.
pub const DEFAULT_VERSION: &str = "3.1.1";
/// Longest version string (the 20-byte field keeps a NUL).
pub const MAX_VERSION: usize = 19;
/// Longest `-l` argument.
pub const MAX_SUPERNODE_HOST: usize = values::SUPERNODE_MAX;

/// Validated supernode options.
#[derive(Debug, Clone)]
pub struct SupernodeOptions {
    /// Main UDP socket address (`-p`): `0.0.0.0:port` for a bare port,
    /// else exactly the address given (IPv4 or `[IPv6]`).
    pub bind: SocketAddr,
    /// `-p` was a bare port: also listen on `[::]:port` (IPv6 only socket;
    /// a failure to bind it is logged, not fatal).
    pub also_ipv6: bool,
    /// Federation name without the leading `*` (`-F` / `N2N_FEDERATION`).
    pub federation: String,
    /// `N2N_FEDERATION` as found in the environment: C derives the
    /// federation's header keys from it, not from `-F` (crypto.md §6).
    pub federation_env: Option<String>,
    /// Other supernodes of the federation (`-l host:port`, repeatable).
    pub supernodes: Vec<String>,
    /// Supernode MAC (`-m`, bits fixed up); `None` = random at start.
    pub mac: Option<[u8; 6]>,
    /// MAC/IP spoofing protection (off with `-M`).
    pub spoofing_protection: bool,
    /// Version string for PONGs (`-V`, ≤ 19 bytes).
    pub version: String,
    /// Community file path (`-c`).
    pub community_file: Option<PathBuf>,
    /// Parsed community list (`Some` iff `community_file` is).
    pub communities: Option<CommunityList>,
    /// Auto-IP pool (`-a`).
    pub autoip: AutoIpPool,
    /// `--max-edges-per-community`.
    pub max_edges_per_community: usize,
    /// `--max-edges`.
    pub max_edges: usize,
    /// `--max-communities`.
    pub max_communities: usize,
    /// Management UDP port on 127.0.0.1 (`-t`).
    pub mgmt_port: u16,
    /// Management password (`--management-password`).
    pub mgmt_password: String,
    /// Stay in the foreground (`-f`).
    pub foreground: bool,
    /// C trace level: 2 + number of `-v`.
    pub verbosity: u32,
    /// `--tcp-max-connections`.
    pub tcp_max_connections: usize,
    /// `--tcp-idle-timeout`.
    pub tcp_idle_timeout: std::time::Duration,
    /// `--tcp-frame-timeout`.
    pub tcp_frame_timeout: std::time::Duration,
    /// `-u`.
    pub uid: Option<u32>,
    /// `-g`.
    pub gid: Option<u32>,
    /// `--metrics [IP:]PORT`: Prometheus metrics and the status page there
    /// (off by default).
    pub metrics: Option<SocketAddr>,
}

/// A configuration problem; every variant is one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// No arguments at all.
    #[error("at least one option is required (e.g. -f); see --help")]
    NoArguments,
    /// The command line, configuration file or an option value is wrong.
    #[error(transparent)]
    Cli(#[from] CliError),
    /// An option that is not implemented yet.
    #[error("option {option} is not supported yet ({what})")]
    Unsupported {
        /// The option.
        option: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The community file cannot be read.
    #[error("community file {path}: {err}")]
    CommunityRead {
        /// Path.
        path: PathBuf,
        /// Error.
        err: std::io::Error,
    },
    /// The community file is malformed.
    #[error("community file {path}: {err}")]
    CommunityFile {
        /// Path.
        path: PathBuf,
        /// Error naming the line.
        err: CommunityListError,
    },
}

impl OptionsError {
    /// Process exit code for this error (always 2: a configuration error).
    pub fn exit_code(&self) -> u8 {
        n2n_cli::EXIT_USAGE
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these options.
    Run(Box<SupernodeOptions>),
    /// Print this text on stdout and exit 0 (`-h`, `--help`).
    Help(String),
}

/// The help text (`-h`, `--help`), rendered from the option table.
pub fn help() -> String {
    TABLE.help()
}

/// Parse and validate the process arguments (`args[0]` is the program),
/// with `N2N_FEDERATION` from the process environment.
pub fn parse(args: &[String]) -> Result<Parsed, OptionsError> {
    parse_with(args, &|k| std::env::var(k).ok())
}

/// [`parse`] with an explicit environment lookup.
pub fn parse_with(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, OptionsError> {
    if args.len() < 2 {
        return Err(OptionsError::NoArguments);
    }
    let args = conffile::expand(args, Flavor::Supernode, &|p| std::fs::read_to_string(p))?;
    let mut raw = Raw {
        federation_env: env("N2N_FEDERATION"),
        ..Raw::default()
    };
    for o in n2n_cli::options(&TABLE, &args, env)? {
        if o.key == Opt::Help {
            return Ok(Parsed::Help(help()));
        }
        raw.apply(o.key, &o.name, o.value.as_deref())?;
    }
    Ok(Parsed::Run(Box::new(raw.validate()?)))
}

/// Options as given, before defaults and cross-checks (later wins, `-l`
/// accumulates).
#[derive(Debug, Default)]
struct Raw {
    bind: Option<(SocketAddr, bool)>,
    federation: Option<String>,
    federation_env: Option<String>,
    supernodes: Vec<String>,
    mac: Option<[u8; 6]>,
    no_spoofing_protection: bool,
    version: Option<String>,
    communities: Option<PathBuf>,
    autoip: Option<AutoIpPool>,
    metrics: Option<SocketAddr>,
    tcp_max_connections: Option<usize>,
    tcp_idle_timeout: Option<u64>,
    tcp_frame_timeout: Option<u64>,
    max_edges_per_community: Option<usize>,
    max_edges: Option<usize>,
    max_communities: Option<usize>,
    common: Common,
}

/// Default `--tcp-max-connections`.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;
/// Default `--tcp-idle-timeout` (seconds; an edge re-registers every 20 s).
pub const DEFAULT_TCP_IDLE_TIMEOUT: u64 = 120;
/// Default `--tcp-frame-timeout` (seconds).
pub const DEFAULT_TCP_FRAME_TIMEOUT: u64 = 10;

fn positive(name: &str, v: Option<&str>, what: &str) -> Result<u64, CliError> {
    let v = required(name, v)?;
    match v.trim().parse::<u64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(CliError::bad(
            name,
            format!("'{v}' is not {what} (1..1000000)"),
        )),
    }
}

/// `-p`: the socket address, and whether it was a bare port (which also
/// listens on `[::]`).
fn parse_local_port(name: &str, v: &str) -> Result<(SocketAddr, bool), CliError> {
    let bind = n2n_sys::udp::parse_bind_addr(v, IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT)
        .map_err(|e| CliError::bad(name, e.to_string()))?;
    if bind.port() == 0 {
        return Err(CliError::bad(name, "port must be 1..65535"));
    }
    // A bare port binds 0.0.0.0 like C, plus [::] (IPv6 only) when the
    // system allows; an explicit address binds exactly that.
    Ok((bind, v.trim().parse::<u16>().is_ok()))
}

impl Raw {
    /// Apply one option (`name` as written, for messages).
    fn apply(&mut self, key: Opt, name: &str, value: Option<&str>) -> Result<(), CliError> {
        match key {
            Opt::LocalPort => self.bind = Some(parse_local_port(name, required(name, value)?)?),
            Opt::Federation => self.federation = Some(required(name, value)?.to_owned()),
            Opt::Supernode => {
                let v = required(name, value)?;
                values::supernode(name, v)?;
                self.supernodes.push(v.to_owned());
            }
            Opt::Mac => {
                let v = required(name, value)?;
                let mut m = values::mac(v, &[':', '-']).ok_or_else(|| {
                    CliError::bad(
                        name,
                        format!("'{v}' is not a MAC address xx:xx:xx:xx:xx:xx"),
                    )
                })?;
                m[0] &= !0x01; // clear the multicast bit
                m[0] |= 0x02; // set the locally-administered bit
                self.mac = Some(m);
            }
            Opt::NoSpoofingProtection => self.no_spoofing_protection = true,
            Opt::VersionText => {
                let v = required(name, value)?;
                if v.len() > MAX_VERSION {
                    return Err(CliError::bad(
                        name,
                        format!("version text '{v}' is longer than {MAX_VERSION} bytes"),
                    ));
                }
                self.version = Some(v.to_owned());
            }
            Opt::Communities => self.communities = Some(required(name, value)?.into()),
            Opt::AutoIp => {
                self.autoip = Some(
                    required(name, value)?
                        .parse()
                        .map_err(|e: AutoIpError| CliError::bad(name, e.to_string()))?,
                );
            }
            Opt::Metrics => {
                self.metrics = Some(
                    n2n_metrics::parse_metrics_addr(required(name, value)?)
                        .map_err(|e| CliError::bad(name, e.to_string()))?,
                );
            }
            Opt::TcpMaxConnections => {
                self.tcp_max_connections =
                    Some(positive(name, value, "a number of connections")? as usize);
            }
            Opt::TcpIdleTimeout => {
                self.tcp_idle_timeout = Some(positive(name, value, "a number of seconds")?);
            }
            Opt::TcpFrameTimeout => {
                self.tcp_frame_timeout = Some(positive(name, value, "a number of seconds")?);
            }
            Opt::MaxEdgesPerCommunity => {
                self.max_edges_per_community = Some(parse_cap(name, value)?);
            }
            Opt::MaxEdges => self.max_edges = Some(parse_cap(name, value)?),
            Opt::MaxCommunities => self.max_communities = Some(parse_cap(name, value)?),
            Opt::Common(c) => self.common.apply(c, name, value)?,
            Opt::Help => {}
        }
        Ok(())
    }

    /// Defaults and cross-checks; reads the community file.
    fn validate(self) -> Result<SupernodeOptions, OptionsError> {
        let (bind, also_ipv6) = match self.bind {
            Some(b) => b,
            None => parse_local_port("-p", &DEFAULT_PORT.to_string())?,
        };
        let federation = self
            .federation
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| DEFAULT_FEDERATION.to_owned());
        let mgmt_port = self.common.mgmt_port.unwrap_or(DEFAULT_MGMT_PORT);
        if mgmt_port == bind.port() {
            return Err(CliError::bad(
                "-t",
                format!("management port {mgmt_port} is the same as the main port"),
            )
            .into());
        }
        let communities = self
            .communities
            .as_deref()
            .map(load_community_file)
            .transpose()?;
        let common = self.common;
        Ok(SupernodeOptions {
            bind,
            also_ipv6,
            federation,
            federation_env: self.federation_env.filter(|e| !e.is_empty()),
            supernodes: self.supernodes,
            mac: self.mac,
            spoofing_protection: !self.no_spoofing_protection,
            version: self.version.unwrap_or_else(|| DEFAULT_VERSION.to_owned()),
            community_file: self.communities,
            communities,
            autoip: self.autoip.unwrap_or_default(),
            max_edges_per_community: self
                .max_edges_per_community
                .unwrap_or(DEFAULT_MAX_EDGES_PER_COMMUNITY),
            max_edges: self.max_edges.unwrap_or(DEFAULT_MAX_EDGES),
            max_communities: self.max_communities.unwrap_or(DEFAULT_MAX_COMMUNITIES),
            mgmt_port,
            tcp_max_connections: self
                .tcp_max_connections
                .unwrap_or(DEFAULT_TCP_MAX_CONNECTIONS),
            tcp_idle_timeout: std::time::Duration::from_secs(
                self.tcp_idle_timeout.unwrap_or(DEFAULT_TCP_IDLE_TIMEOUT),
            ),
            tcp_frame_timeout: std::time::Duration::from_secs(
                self.tcp_frame_timeout.unwrap_or(DEFAULT_TCP_FRAME_TIMEOUT),
            ),
            verbosity: common.verbosity(),
            mgmt_password: common
                .mgmt_password
                .unwrap_or_else(|| n2n_core::mgmt::DEFAULT_PASSWORD.to_owned()),
            foreground: common.foreground,
            uid: common.uid,
            gid: common.gid,
            metrics: self.metrics,
        })
    }
}

/// A cap (`--max-…`): a count 1..=10 000 000 (more is no cap, only a typo).
fn parse_cap(name: &str, value: Option<&str>) -> Result<usize, CliError> {
    let v = required(name, value)?;
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CAP).contains(&n) => Ok(n),
        _ => Err(CliError::bad(
            name,
            format!("'{v}' is not a count 1..{MAX_CAP}"),
        )),
    }
}

/// Largest value of a `--max-…` cap.
pub const MAX_CAP: usize = 10_000_000;

/// Parse `xx:xx:xx:xx:xx:xx` (also `-` separated).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    values::mac(s, &[':', '-'])
}

/// Read and parse a community file (fixed names with their `* user key`
/// lines, regular expressions).
pub fn load_community_file(path: &Path) -> Result<CommunityList, OptionsError> {
    let text = std::fs::read_to_string(path).map_err(|err| OptionsError::CommunityRead {
        path: path.to_owned(),
        err,
    })?;
    let list = CommunityList::parse(&text).map_err(|err| OptionsError::CommunityFile {
        path: path.to_owned(),
        err,
    })?;
    Ok(list)
}

impl SupernodeOptions {
    /// The core's configuration; `mac` is used when `-m` was not given
    /// (the driver passes a random locally-administered one).
    pub fn core_config(&self, random_mac: Mac) -> SupernodeConfig {
        let mut cfg = SupernodeConfig::new(self.mac.map_or(random_mac, Mac));
        cfg.spoofing_protection = self.spoofing_protection;
        cfg.version.clone_from(&self.version);
        cfg.communities.clone_from(&self.communities);
        cfg.community_file.clone_from(&self.community_file);
        cfg.auto_ip = self.autoip;
        cfg.max_edges_per_community = self.max_edges_per_community;
        cfg.max_edges = self.max_edges;
        cfg.max_communities = self.max_communities;
        cfg.mgmt_password = Password::new(&self.mgmt_password);
        // crypto.md §6: the keys come from the name C had before -F.
        let base = self
            .federation_env
            .as_deref()
            .map_or(n2n_proto::he::DEFAULT_FEDERATION_FIELD, |e| {
                *federation_field(e).field()
            });
        cfg.federation_keys = base;
        cfg.federation = federation_field_over(&base, &self.federation);
        cfg.supernodes = self
            .supernodes
            .iter()
            .map(|name| FederationPeer {
                name: name.clone(),
                addr: name.parse().ok(),
            })
            .collect();
        cfg.verbosity = u8::try_from(self.verbosity).unwrap_or(u8::MAX);
        cfg
    }
}
