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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::{ArgAction, CommandFactory as _, FromArgMatches as _, Parser};
use n2n_core::config::{ConfigError, Flavor, config_file_arg, file_to_args};
use n2n_core::mgmt::Password;
use n2n_core::supernode::autoip::{AutoIpError, AutoIpPool};
use n2n_core::supernode::community_list::{CommunityList, CommunityListError};
use n2n_core::supernode::{SupernodeConfig, federation_field};
use n2n_proto::types::Mac;

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
pub const MAX_SUPERNODE_HOST: usize = 47;

const USAGE: &str = "supernode <config-file> [options...]\n       supernode [options...]";

const AFTER_HELP: &str = "\
A config file given as first argument holds one option per line in C n2n's
format (`-p=7654`, `-c /etc/n2n/community.list`, `-f`; `#` starts a comment);
options after it on the command line win.

Not supported yet (refused at start with an error): federation (-l, a -F or
N2N_FEDERATION other than 'Federation') and user/password communities
(`* <user> <key>` lines in the -c file).

Exit status: 0 after a clean stop (SIGINT, SIGTERM, management `stop`),
2 for a configuration error, 1 when the system refuses (bind, privileges).";

/// The raw command line, as clap parses it.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "supernode",
    about = "n2n supernode (Rust implementation, wire-compatible with n2n 3.1.1)",
    override_usage = USAGE,
    after_help = AFTER_HELP,
    args_override_self = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// UDP port to listen on, optionally with the local address to bind to
    /// (a dotted quad alone keeps the default port). A bare port listens on
    /// 0.0.0.0 and, if possible, [::]; `[IPv6]:port` binds that address.
    #[arg(
        short = 'p',
        long = "local-port",
        value_name = "[IP:]PORT",
        default_value = "7654"
    )]
    pub local_port: String,

    /// Federation name (only the default is supported yet).
    #[arg(
        short = 'F',
        value_name = "NAME",
        env = "N2N_FEDERATION",
        default_value = DEFAULT_FEDERATION
    )]
    pub federation: String,

    /// Another supernode of the federation, repeatable (not supported yet).
    #[arg(short = 'l', value_name = "HOST:PORT", action = ArgAction::Append)]
    pub supernodes: Vec<String>,

    /// Supernode MAC address (multicast bit cleared, locally-administered bit
    /// set); random by default.
    #[arg(short = 'm', value_name = "MAC")]
    pub mac: Option<String>,

    /// Disable MAC and IP address spoofing protection for communities
    /// without user/password authentication.
    #[arg(short = 'M')]
    pub no_spoofing_protection: bool,

    /// Version string sent to edges in PONGs (at most 19 characters).
    #[arg(short = 'V', value_name = "TEXT", default_value = DEFAULT_VERSION)]
    pub version_text: String,

    /// File of allowed communities (fixed names, regular expressions);
    /// enables community locking.
    #[arg(short = 'c', long = "communities", value_name = "PATH")]
    pub communities: Option<PathBuf>,

    /// Auto-IP pool: range of subnets handed to communities.
    #[arg(
        short = 'a',
        long = "autoip",
        value_name = "MIN-MAX/BITS",
        default_value = "10.128.0.0-10.255.255.0/24"
    )]
    pub autoip: String,

    /// Stay in the foreground (default: become a daemon logging to syslog).
    #[arg(short = 'f', long = "foreground")]
    pub foreground: bool,

    /// Management UDP port (bound to 127.0.0.1).
    #[arg(short = 't', long = "mgmt-port", value_name = "PORT", default_value_t = DEFAULT_MGMT_PORT)]
    pub mgmt_port: u16,

    /// Management password (needed for `w` requests).
    #[arg(long = "management-password", value_name = "PW", default_value = "n2n")]
    pub management_password: String,

    /// More logging, repeatable.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Numeric user id to drop privileges to (default: user n2n, else
    /// nobody; 0 keeps root).
    #[arg(short = 'u', long = "euid", value_name = "UID")]
    pub euid: Option<u32>,

    /// Numeric group id to drop privileges to (default: group of user n2n,
    /// else of nobody).
    #[arg(short = 'g', long = "egid", value_name = "GID")]
    pub egid: Option<u32>,
}

/// Validated supernode options.
#[derive(Debug, Clone)]
pub struct SupernodeOptions {
    /// Main UDP socket address (`-p`): `0.0.0.0:port` for a bare port,
    /// else exactly the address given (IPv4 or `[IPv6]`).
    pub bind: SocketAddr,
    /// `-p` was a bare port: also listen on `[::]:port` (IPv6 only socket;
    /// a failure to bind it is logged, not fatal).
    pub also_ipv6: bool,
    /// Federation name without the leading `*` (`-F` / `N2N_FEDERATION`;
    /// only "Federation" is accepted yet).
    pub federation: String,
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
    /// Management UDP port on 127.0.0.1 (`-t`).
    pub mgmt_port: u16,
    /// Management password (`--management-password`).
    pub mgmt_password: String,
    /// Stay in the foreground (`-f`).
    pub foreground: bool,
    /// C trace level: 2 + number of `-v`.
    pub verbosity: u32,
    /// `-u`.
    pub uid: Option<u32>,
    /// `-g`.
    pub gid: Option<u32>,
}

/// A configuration problem; every variant is one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// No arguments at all.
    #[error("at least one option is required (e.g. -f); see --help")]
    NoArguments,
    /// An argument is not valid UTF-8.
    #[error("argument {0} is not valid UTF-8")]
    NotUtf8(usize),
    /// The config file cannot be read.
    #[error("config file {path}: {err}")]
    ConfigRead {
        /// Path.
        path: PathBuf,
        /// Error.
        err: std::io::Error,
    },
    /// The config file is malformed.
    #[error("config file {path}: {err}")]
    ConfigFile {
        /// Path.
        path: PathBuf,
        /// Error naming the line.
        err: ConfigError,
    },
    /// clap refused the command line.
    #[error("{0}")]
    Cli(String),
    /// An option's value is invalid.
    #[error("option {option}: {reason}")]
    BadValue {
        /// The option, e.g. `-p`.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
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
    /// The community file lists users (user/password authentication).
    #[error(
        "community file {path}: line {line}: community '{community}' has users: user/password \
         authentication is not supported yet"
    )]
    UserPassword {
        /// Path.
        path: PathBuf,
        /// Community name.
        community: String,
        /// Line of its first user.
        line: usize,
    },
}

impl OptionsError {
    /// Process exit code for this error (always 2: a configuration error).
    pub fn exit_code(&self) -> i32 {
        2
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

/// Expand a leading config file into arguments (`args[0]` is the program).
pub fn expand_config_file(args: &[String]) -> Result<Vec<String>, OptionsError> {
    let Some(path) = config_file_arg(args) else {
        return Ok(args.to_vec());
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|err| OptionsError::ConfigRead {
        path: path.clone(),
        err,
    })?;
    let file_args = file_to_args(&text, Flavor::Supernode)
        .map_err(|err| OptionsError::ConfigFile { path, err })?;
    let mut out = Vec::with_capacity(args.len() + file_args.len());
    out.extend(args.first().cloned());
    out.extend(file_args);
    out.extend(args.iter().skip(2).cloned());
    Ok(out)
}

/// Parse and validate the process arguments (`args[0]` is the program).
pub fn parse(args: &[String]) -> Result<Parsed, OptionsError> {
    if args.len() < 2 {
        return Err(OptionsError::NoArguments);
    }
    let args = expand_config_file(args)?;
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Ok(Parsed::Help(e.render().to_string()))
                }
                _ => Err(OptionsError::Cli(first_line(&e.render().to_string()))),
            };
        }
    };
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| OptionsError::Cli(first_line(&e.to_string())))?;
    Ok(Parsed::Run(Box::new(SupernodeOptions::from_cli(cli)?)))
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    l.strip_prefix("error: ").unwrap_or(l).to_owned()
}

/// Parse `xx:xx:xx:xx:xx:xx` (also `-` separated).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Read and parse a community file, refusing user/password communities.
pub fn load_community_file(path: &Path) -> Result<CommunityList, OptionsError> {
    let text = std::fs::read_to_string(path).map_err(|err| OptionsError::CommunityRead {
        path: path.to_owned(),
        err,
    })?;
    let list = CommunityList::parse(&text).map_err(|err| OptionsError::CommunityFile {
        path: path.to_owned(),
        err,
    })?;
    if let Some(c) = list.user_communities().next() {
        return Err(OptionsError::UserPassword {
            path: path.to_owned(),
            community: c.name.clone(),
            line: c.users.first().map_or(c.line, |u| u.line),
        });
    }
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
        cfg.mgmt_password = Password::new(&self.mgmt_password);
        cfg.federation = federation_field(&self.federation);
        cfg.verbosity = u8::try_from(self.verbosity).unwrap_or(u8::MAX);
        cfg
    }

    /// Validate a parsed command line (reads the community file).
    pub fn from_cli(cli: Cli) -> Result<Self, OptionsError> {
        let bad = |option, reason: String| OptionsError::BadValue { option, reason };

        let bind = n2n_sys::udp::parse_bind_addr(
            &cli.local_port,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            DEFAULT_PORT,
        )
        .map_err(|e| bad("-p", e.to_string()))?;
        if bind.port() == 0 {
            return Err(bad("-p", "port must be 1..65535".into()));
        }
        // A bare port binds 0.0.0.0 like C, plus [::] (IPv6 only) when the
        // system allows; an explicit address binds exactly that.
        let also_ipv6 = cli.local_port.trim().parse::<u16>().is_ok();

        if let Some(l) = cli.supernodes.first() {
            if l.len() > MAX_SUPERNODE_HOST {
                return Err(bad(
                    "-l",
                    format!("'{l}' is longer than {MAX_SUPERNODE_HOST} characters"),
                ));
            }
            if !l.contains(':') {
                return Err(bad("-l", format!("'{l}' has no ':port'")));
            }
            return Err(OptionsError::Unsupported {
                option: "-l",
                what: "federation with other supernodes is not implemented",
            });
        }
        if cli.federation != DEFAULT_FEDERATION {
            return Err(OptionsError::Unsupported {
                option: "-F (or N2N_FEDERATION)",
                what: "only the default federation name 'Federation' is implemented",
            });
        }

        let mac = match &cli.mac {
            None => None,
            Some(s) => {
                let mut m = parse_mac(s).ok_or_else(|| {
                    bad(
                        "-m",
                        format!("'{s}' is not a MAC address xx:xx:xx:xx:xx:xx"),
                    )
                })?;
                m[0] &= !0x01; // clear the multicast bit
                m[0] |= 0x02; // set the locally-administered bit
                Some(m)
            }
        };

        if cli.version_text.len() > MAX_VERSION {
            return Err(bad(
                "-V",
                format!(
                    "version text '{}' is longer than {MAX_VERSION} bytes",
                    cli.version_text
                ),
            ));
        }

        let autoip: AutoIpPool = cli
            .autoip
            .parse()
            .map_err(|e: AutoIpError| bad("-a", e.to_string()))?;

        if cli.mgmt_port == 0 {
            return Err(bad("-t", "port must be 1..65535".into()));
        }
        if cli.mgmt_port == bind.port() {
            return Err(bad(
                "-t",
                format!(
                    "management port {} is the same as the main port",
                    cli.mgmt_port
                ),
            ));
        }

        let communities = cli
            .communities
            .as_deref()
            .map(load_community_file)
            .transpose()?;

        Ok(Self {
            bind,
            also_ipv6,
            federation: cli.federation,
            mac,
            spoofing_protection: !cli.no_spoofing_protection,
            version: cli.version_text,
            community_file: cli.communities,
            communities,
            autoip,
            mgmt_port: cli.mgmt_port,
            mgmt_password: cli.management_password,
            foreground: cli.foreground,
            verbosity: n2n_sys::log::level_from_flags(cli.verbose, 0),
            uid: cli.euid,
            gid: cli.egid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("supernode")
            .chain(a.iter().copied())
            .map(String::from)
            .collect()
    }

    fn run(a: &[&str]) -> Result<SupernodeOptions, OptionsError> {
        match parse(&args(a))? {
            Parsed::Run(o) => Ok(*o),
            Parsed::Help(h) => panic!("unexpected help: {h}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&["-f"]).unwrap();
        assert_eq!(o.bind, "0.0.0.0:7654".parse().unwrap());
        assert_eq!(o.mgmt_port, 5645);
        assert_eq!(o.mgmt_password, "n2n");
        assert_eq!(o.version, "3.1.1");
        assert_eq!(o.autoip, AutoIpPool::default());
        assert_eq!(o.verbosity, 2);
        assert!(o.foreground && o.spoofing_protection);
        assert!(o.mac.is_none() && o.communities.is_none() && o.uid.is_none());
    }

    #[test]
    fn every_option() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("community.list");
        std::fs::write(&list, "home 192.168.168.0/24\nntop[0-1][0-9]\n").unwrap();
        let o = run(&[
            "-p",
            "127.0.0.1:7000",
            "-F",
            "Federation",
            "-m",
            "01:02:03:04:05:06",
            "-M",
            "-V",
            "my-version",
            "--communities",
            list.to_str().unwrap(),
            "--autoip=10.0.0.0-10.0.255.0/24",
            "--foreground",
            "--mgmt-port",
            "6000",
            "--management-password",
            "pw",
            "-vv",
            "--verbose",
            "-u",
            "1000",
            "--egid",
            "1001",
        ])
        .unwrap();
        assert_eq!(o.bind, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(o.mac, Some([0x02, 2, 3, 4, 5, 6]));
        assert!(!o.spoofing_protection);
        assert_eq!(o.version, "my-version");
        let c = o.communities.unwrap();
        assert!(c.allows(b"home") && c.allows(b"ntop12") && !c.allows(b"other"));
        assert_eq!(o.autoip.to_string(), "10.0.0.0-10.0.255.0/24");
        assert_eq!(o.mgmt_port, 6000);
        assert_eq!(o.mgmt_password, "pw");
        assert_eq!(o.verbosity, 5);
        assert_eq!((o.uid, o.gid), (Some(1000), Some(1001)));
        // IP-only and port-only -p forms.
        assert_eq!(
            run(&["-p", "10.1.2.3"]).unwrap().bind,
            "10.1.2.3:7654".parse().unwrap()
        );
        let o = run(&["-p=7001"]).unwrap();
        assert_eq!(o.bind, "0.0.0.0:7001".parse().unwrap());
        assert!(o.also_ipv6);
        let o = run(&["-p", "[::1]:7002"]).unwrap();
        assert_eq!(o.bind, "[::1]:7002".parse().unwrap());
        assert!(!o.also_ipv6);
        assert!(!run(&["-p", "0.0.0.0:7003"]).unwrap().also_ipv6);
    }

    #[test]
    fn config_file_then_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("supernode.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(
            f,
            "# test\n-p=7100\n-t 6100\n-v\n-f\n--management-password secret"
        )
        .unwrap();
        let p = conf.to_str().unwrap();
        let o = run(&[p]).unwrap();
        assert_eq!(o.bind.port(), 7100);
        assert_eq!(o.mgmt_port, 6100);
        assert_eq!(o.mgmt_password, "secret");
        assert_eq!(o.verbosity, 3);
        assert!(o.foreground);
        // Later options win; counts accumulate.
        let o = run(&[p, "-p", "7200", "-v"]).unwrap();
        assert_eq!(o.bind.port(), 7200);
        assert_eq!(o.mgmt_port, 6100);
        assert_eq!(o.verbosity, 4);

        std::fs::write(&conf, "-f\nbogus line\n").unwrap();
        let e = run(&[p]).unwrap_err().to_string();
        assert!(e.contains("supernode.conf") && e.contains("line 2"), "{e}");
        let e = run(&["/nonexistent/sn.conf"]).unwrap_err().to_string();
        assert!(e.starts_with("config file /nonexistent/sn.conf:"), "{e}");
    }

    #[test]
    fn community_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("c.list");
        let l = list.to_str().unwrap();
        std::fs::write(&list, "ok\nhome 192.168.168.1/24\n").unwrap();
        let e = run(&["-c", l]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("c.list") && e.contains("line 2") && e.contains("192.168.168.1/24"),
            "{e}"
        );
        std::fs::write(&list, "# nothing\n").unwrap();
        assert!(
            run(&["-c", l])
                .unwrap_err()
                .to_string()
                .contains("no community")
        );
        std::fs::write(
            &list,
            "net\n* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG\n",
        )
        .unwrap();
        let e = run(&["-c", l]).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("not supported yet"),
            "{e}"
        );
        let e = run(&["-c", "/nonexistent/list"]).unwrap_err().to_string();
        assert!(e.starts_with("community file /nonexistent/list:"), "{e}");
    }

    #[test]
    fn refused_and_bad_values() {
        let msg = |a: &[&str]| run(a).unwrap_err().to_string();
        let e = msg(&["-l", "sn.example.net:7654"]);
        assert!(e.contains("-l") && e.contains("not supported yet"), "{e}");
        assert!(msg(&["-l", "nocolon"]).contains("no ':port'"));
        let e = msg(&["-F", "myfed"]);
        assert!(e.contains("-F") && e.contains("not supported yet"), "{e}");
        assert!(msg(&["-p", "70000"]).starts_with("option -p:"));
        assert!(msg(&["-p", "0"]).starts_with("option -p:"));
        assert!(msg(&["-p", "::1"]).starts_with("option -p:"));
        assert!(msg(&["-t", "0"]).starts_with("option -t:"));
        assert!(msg(&["-t", "7654"]).contains("same as the main port"));
        assert!(msg(&["-a", "10.0.0.0-10.0.0.0/31"]).starts_with("option -a:"));
        assert!(msg(&["-V", "12345678901234567890"]).starts_with("option -V:"));
        assert!(run(&["-V", "1234567890123456789"]).is_ok());
        assert!(msg(&["-m", "01:02:03"]).starts_with("option -m:"));
        assert!(msg(&["-u", "abc"]).contains("abc"));
        let e = msg(&["-x"]);
        assert!(e.contains("'-x'") && !e.contains('\n'), "{e}");
        assert!(msg(&["stray", "-f"]).contains("stray"));
        assert!(matches!(parse(&args(&[])), Err(OptionsError::NoArguments)));
    }

    #[test]
    fn help_lists_every_option() {
        for flag in ["-h", "--help"] {
            let Parsed::Help(h) = parse(&args(&[flag])).unwrap() else {
                panic!("no help")
            };
            for opt in [
                "--local-port",
                "-F",
                "-l",
                "-m",
                "-M",
                "-V",
                "--communities",
                "--autoip",
                "--foreground",
                "--mgmt-port",
                "--management-password",
                "--verbose",
                "--euid",
                "--egid",
                "--help",
                "N2N_FEDERATION",
            ] {
                assert!(h.contains(opt), "{flag} help lacks {opt}:\n{h}");
            }
        }
    }

    #[test]
    fn core_config_follows_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("c.list");
        std::fs::write(&list, "rocks\n").unwrap();
        let random = Mac([0x02, 9, 9, 9, 9, 9]);
        let o = run(&["-f"]).unwrap();
        let c = o.core_config(random);
        assert_eq!(c.mac, random);
        assert!(c.spoofing_protection && c.communities.is_none());
        assert_eq!(c.version, "3.1.1");
        assert_eq!(c.verbosity, 2);
        assert_eq!(c.federation, federation_field("Federation"));
        assert_eq!(c.mgmt_password, Password::new("n2n"));
        let o = run(&[
            "-m",
            "01:00:00:00:00:07",
            "-M",
            "-V",
            "v9",
            "-c",
            list.to_str().unwrap(),
            "-a",
            "10.0.0.0-10.0.255.0/24",
            "--management-password",
            "pw",
            "-vv",
        ])
        .unwrap();
        let c = o.core_config(random);
        assert_eq!(c.mac, Mac([0x02, 0, 0, 0, 0, 7]));
        assert!(!c.spoofing_protection);
        assert_eq!(c.version, "v9");
        assert!(c.communities.unwrap().allows(b"rocks"));
        assert_eq!(c.community_file.as_deref(), Some(list.as_path()));
        assert_eq!(c.auto_ip.to_string(), "10.0.0.0-10.0.255.0/24");
        assert_eq!(c.mgmt_password, Password::new("pw"));
        assert_eq!(c.verbosity, 4);
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("aa:bb:cc:dd:ee:ff"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        );
        assert_eq!(parse_mac("0-1-2-3-4-5"), Some([0, 1, 2, 3, 4, 5]));
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aaa:bb:cc:dd:ee:ff",
            "gg:bb:cc:dd:ee:ff",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
