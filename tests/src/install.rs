//! The one place where the tests, the demo and the throughput harness start system tools, and
//! where missing tools are installed, so that the README's two commands work on a fresh Debian
//! machine (as root) with nothing installed beforehand.
//!
//! * [`TOOL_PACKAGES`] lists every system tool the helpers (and the workspace's other test
//!   suites) run, with its Debian package; [`ESSENTIAL`] the programs of Debian's *Essential*
//!   packages, which are always there.
//! * [`program`] builds the [`Command`] for a tool and [`ensure_program`] makes sure a tool run
//!   through `ip netns exec` exists: a tool of [`TOOL_PACKAGES`] that is missing is installed
//!   first ([`ensure_tools`]); a tool in neither list is an error, so a helper cannot start a
//!   new tool without listing it here. `tests/tests/tools_installed.rs` checks statically that
//!   the programs the sources start are exactly the ones listed.

use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result, which};

/// Program → Debian package that provides it: every system tool the tests start.
pub const TOOL_PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("ping", "iputils-ping"),
    ("iperf3", "iperf3"),
    ("nft", "nftables"),
    // NFQUEUE rule of the userspace netem fallback (kernels without sch_netem).
    ("iptables", "iptables"),
    ("dnsmasq", "dnsmasq-base"),
    // TFTP client of the virtual cluster's "installer image" fetch.
    ("curl", "curl"),
    ("sysctl", "procps"),
    ("kill", "procps"),
    // `modprobe sch_netem` before falling back to the userspace netem.
    ("modprobe", "kmod"),
    ("chromium", "chromium"),
    // Cross-check of our zstd frames against the reference implementation.
    ("zstd", "zstd"),
    // `systemd-analyze verify` of the shipped units (works without systemd as PID 1).
    ("systemd-analyze", "systemd"),
    // Lint of the man pages (`groff -man -ww -z`).
    ("groff", "groff-base"),
];

/// Programs of Debian's Essential packages (installed on every Debian system), and apt itself:
/// started by the helpers, never installed.
pub const ESSENTIAL: &[(&str, &str)] = &[
    ("apt-get", "apt"),
    ("sh", "dash"),
    ("cat", "coreutils"),
    ("sha256sum", "coreutils"),
    ("env", "coreutils"),
    ("sleep", "coreutils"),
    ("true", "coreutils"),
    ("false", "coreutils"),
    ("getconf", "libc-bin"),
];

/// The Debian package of `prog`, if it is one of [`TOOL_PACKAGES`].
pub fn package_of(prog: &str) -> Option<&'static str> {
    TOOL_PACKAGES
        .iter()
        .find(|(t, _)| *t == prog)
        .map(|(_, p)| *p)
}

/// Makes sure `prog` can be started: a path (contains `/`: a binary of this workspace, cargo)
/// or a program of [`ESSENTIAL`] is fine as is; a program of [`TOOL_PACKAGES`] is installed
/// when missing ([`ensure_tools`]) and is an [`Error::Unsupported`] naming its package when it
/// is still missing; any other name is an error (list it in [`TOOL_PACKAGES`]).
pub fn ensure_program(prog: &str) -> Result<()> {
    if prog.contains('/') || ESSENTIAL.iter().any(|(t, _)| *t == prog) {
        return Ok(());
    }
    let Some(pkg) = package_of(prog) else {
        return Err(Error::Unsupported(format!(
            "`{prog}` is not a known system tool: add it to n2n_tests::install::TOOL_PACKAGES"
        )));
    };
    let installed = ensure_tools(&[prog]);
    if which(prog).is_some() {
        return Ok(());
    }
    let why = installed
        .err()
        .unwrap_or_else(|| "apt-get did not provide it".into());
    Err(Error::Unsupported(format!(
        "program `{prog}` (Debian package {pkg}) is not installed: {why}"
    )))
}

/// The [`Command`] for system tool `prog` (see [`ensure_program`]), found on `PATH` or in the
/// sbin directories, which a non-root `PATH` may lack.
pub fn program(prog: &str) -> Result<Command> {
    ensure_program(prog)?;
    Ok(Command::new(which(prog).unwrap_or_else(|| prog.into())))
}

/// [`ensure_program`] for end-to-end steps that are not in a network namespace: when `tool`
/// is missing and cannot be installed, prints a loud SKIP and returns `false` (the caller
/// returns), or panics when `N2N_E2E_REQUIRED=1`. Needs no root when the tool is there.
#[allow(clippy::panic)]
pub fn tool_available(test_name: &str, tool: &str) -> bool {
    let Err(e) = ensure_program(tool) else {
        return true;
    };
    let msg = format!("SKIP `{test_name}`: {e}");
    if crate::e2e_required() {
        crate::loud(&format!(
            "{msg}\nN2N_E2E_REQUIRED=1, so this skip is a FAILURE"
        ));
        panic!("{msg} (N2N_E2E_REQUIRED=1 forbids skipping)");
    }
    crate::loud(&format!(
        "{msg}\n(set N2N_E2E_REQUIRED=1 to make this a failure)"
    ));
    false
}

/// If running as root on a system with `apt-get` and one of `tools` is missing,
/// installs the Debian packages of *all* known tools once per process (serialised
/// across processes with a lock file). Returns what was done, or why nothing was.
/// Never panics; the caller re-checks the tools and skips/fails as before.
pub fn ensure_tools(tools: &[&str]) -> std::result::Result<(), String> {
    if tools.iter().all(|t| which(t).is_some()) {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("not root: cannot install missing tools".into());
    }
    if which("apt-get").is_none() {
        return Err("no apt-get: install the missing tools by hand".into());
    }
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(install_all).clone()
}

fn install_all() -> std::result::Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_programs_are_refused() {
        let e = ensure_program("no-such-tool-n2n").unwrap_err().to_string();
        assert!(e.contains("TOOL_PACKAGES"), "{e}");
        // Paths (our binaries) and Essential programs need no entry.
        ensure_program("/bin/sh").unwrap();
        ensure_program("sh").unwrap();
        assert_eq!(package_of("tc"), Some("iproute2"));
        assert_eq!(package_of("sh"), None);
    }

    #[test]
    fn tables_do_not_overlap() {
        for (t, _) in ESSENTIAL {
            assert_eq!(package_of(t), None, "{t} is in both tables");
        }
        let mut names: Vec<&str> = TOOL_PACKAGES.iter().map(|(t, _)| *t).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a program is listed twice");
    }
}
