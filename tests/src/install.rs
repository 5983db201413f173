//! Installs the system tools the end-to-end tests and the demo need, so that the
//! README's two commands work on a fresh Debian machine (as root).

use std::process::Command;
use std::sync::OnceLock;

use crate::which;

/// Program → Debian package that provides it.
pub const TOOL_PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("ping", "iputils-ping"),
    ("iperf3", "iperf3"),
    ("nft", "nftables"),
    ("iptables", "iptables"),
    ("dnsmasq", "dnsmasq-base"),
    ("sysctl", "procps"),
    ("modprobe", "kmod"),
    ("chromium", "chromium"),
];

/// If running as root on a system with `apt-get` and one of `tools` is missing,
/// installs the Debian packages of *all* known tools once per process (serialised
/// across processes with a lock file). Returns what was done, or why nothing was.
/// Never panics; the caller re-checks the tools and skips/fails as before.
pub fn ensure_tools(tools: &[&str]) -> Result<(), String> {
    if tools.iter().all(|t| which(t).is_some()) {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("not root: cannot install missing tools".into());
    }
    if which("apt-get").is_none() {
        return Err("no apt-get: install the missing tools by hand".into());
    }
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(install_all).clone()
}

fn install_all() -> Result<(), String> {
    let lock_path = std::env::temp_dir().join("n2n-tests-apt.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| format!("{lock_path:?}: {e}"))?;
    lock.lock()
        .map_err(|e| format!("lock {lock_path:?}: {e}"))?;
    let missing: Vec<&str> = TOOL_PACKAGES
        .iter()
        .filter(|(t, _)| which(t).is_none())
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut pkgs: Vec<&str> = TOOL_PACKAGES.iter().map(|(_, p)| *p).collect();
    pkgs.sort_unstable();
    pkgs.dedup();
    crate::loud(&format!(
        "n2n-tests: installing Debian packages {pkgs:?} (missing: {missing:?})"
    ));
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))
    };
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(pkgs.iter().copied());
    if !apt(&install)?.success() {
        let updated = apt(&["update", "-qq"])?;
        if !updated.success() || !apt(&install)?.success() {
            return Err("apt-get install failed".into());
        }
    }
    Ok(())
}
