//! End-to-end test helpers for n2n-rs: small, disposable network topologies built from Linux
//! network namespaces, so that each scenario reads as a short script of intent.
//!
//! ```no_run
//! use n2n_tests::*;
//! # fn main() -> n2n_tests::Result<()> {
//! if !require_root("two_hosts") { return Ok(()); }
//! let lab = Lab::new("two_hosts");
//! let wan = lab.bridge("wan")?;
//! let a = lab.netns("a")?;
//! let b = lab.netns("b")?;
//! wan.attach(&a, "eth0", Some("198.18.0.1/24"))?;
//! wan.attach(&b, "eth0", Some("198.18.0.2/24"))?;
//! let r = ping(&a, "198.18.0.2", 56, 3, false)?;
//! assert_eq!(r.received, 3);
//! # Ok(()) }
//! ```
//!
//! Rules the helpers enforce:
//! * Nothing is ever configured in the root network namespace: every address, route, bridge,
//!   NAT rule and qdisc lives in a namespace created here (bridges live in a "switch" namespace).
//! * Every namespace is deleted when its guard drops (also while unwinding from a panic), and
//!   processes started in it are killed by PID first. Namespaces left behind by a test process
//!   that was SIGKILLed are swept by the next [`Lab::new`] (their owner PID no longer exists).
//! * Every external command and every wait is bounded in time.
//!
//! Underlay addresses come from 198.18.0.0/15; overlay (n2n) addresses should use 10.200.0.0/16
//! style ranges inside the namespaces only.

mod bins;
pub mod browser;
mod cmd;
mod dhcp;
mod impair;
pub mod install;
mod mgmt;
mod netns;
pub mod perf;
mod proc;
mod results;
pub mod scenario;
pub mod snload;
pub mod tapfwd;
mod tools;
mod topo;
pub mod vcluster;

use std::time::Duration;

pub use bins::{find_binary, target_dir, workspace_dir};
pub use dhcp::{
    DhcpLease, DhcpReply, build_request, dhcp_configure, dhcp_lease, link_mac, parse_reply,
};
pub use impair::{ImpairStats, Impairment, ImpairmentSpec};
pub use mgmt::{
    MGMT_TIMEOUT, MgmtClient, UdpEchoServer, mgmt_query, mgmt_query_timeout, mgmt_rows,
    udp_exchange, udp_whoami,
};
pub use netns::{Lab, NS_PREFIX, NeighTableGuard, Netns};
pub use nix::sys::signal::Signal;
pub use proc::{KILL_GRACE, Proc};
pub use results::{
    Outcome, ResultRow, Scenario, print_summary, read_results, record, reset_results, results_path,
};
pub use tools::{
    IperfResult, Netem, PingResult, iperf3_client, iperf3_server, netem, parse_iperf3_json,
    parse_ping, ping, ping_every, wait_until,
};
pub use topo::{BRIDGE_DEV, Bridge, NAT_LAN_DEV, NAT_WAN_DEV, NatKind, NatRouter, veth};

/// Default bound for one external command (`ip`, `nft`, `tc`, ...).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the helpers. Tests usually just `unwrap()` them; the messages carry the command
/// line and its stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error during {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("command `{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("timed out after {after:?}: {what}")]
    Timeout { what: String, after: Duration },
    #[error("could not parse {what}: {detail}")]
    Parse { what: String, detail: String },
    #[error("not supported here: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Other(String),
}

/// Result alias of the helpers.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// True when `N2N_E2E_REQUIRED=1` (set by `.ci/run`): skipping an end-to-end test is then a
/// failure.
pub fn e2e_required() -> bool {
    std::env::var("N2N_E2E_REQUIRED").is_ok_and(|v| v == "1")
}

/// Gate for end-to-end tests: returns `true` when running as root with the needed tools.
///
/// Otherwise prints a loud SKIP banner, records a `skip` row in the results table and returns
/// `false` (the test should then `return`). When `N2N_E2E_REQUIRED=1` it panics instead, so a
/// skipped end-to-end test fails CI.
pub fn require_root(test_name: &str) -> bool {
    require_tools(test_name, &["ip", "nft", "ping", "tc", "sysctl"])
}

/// Like [`require_root`] but also checks that each program in `tools` is on `PATH`
/// (e.g. `&["ip", "iperf3"]`).
pub fn require_tools(test_name: &str, tools: &[&str]) -> bool {
    if let Err(e) = install::ensure_tools(tools) {
        loud(&format!("n2n-tests: {e}"));
    }
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root privileges (run the tests as root)".to_string());
    }
    for t in tools {
        if which(t).is_none() {
            missing.push(format!(
                "program `{t}` (as root with apt-get it is installed automatically; see n2n_tests::install)"
            ));
        }
    }
    if missing.is_empty() {
        return true;
    }
    skip(test_name, &missing.join(", "));
    false
}

/// Writes a banner to the real stderr, bypassing the test harness's output capture (so a skip
/// is visible even for a passing test).
pub fn loud(msg: &str) {
    use std::io::Write;
    let bar = "!".repeat(78);
    let _ = std::io::stderr().write_all(format!("\n{bar}\n{msg}\n{bar}\n").as_bytes());
}

#[allow(clippy::panic)]
fn skip(test_name: &str, why: &str) {
    let msg = format!("SKIP end-to-end test `{test_name}`: missing {why}");
    if e2e_required() {
        loud(&format!(
            "{msg}\nN2N_E2E_REQUIRED=1, so this skip is a FAILURE"
        ));
        record(
            test_name,
            Outcome::Fail,
            &[("reason", format!("skipped: {why}"))],
        );
        panic!("{msg} (N2N_E2E_REQUIRED=1 forbids skipping)");
    }
    loud(&format!(
        "{msg}\n(set N2N_E2E_REQUIRED=1 to make this a failure)"
    ));
    record(test_name, Outcome::Skip, &[("reason", why.to_string())]);
}

/// Finds `prog` on `PATH` (plus the sbin directories, which a non-root `PATH` may lack).
pub fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}
