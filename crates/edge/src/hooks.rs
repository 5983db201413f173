//! `--up-script` / `--down-script` (extensions): programs run after the TAP
//! is up and before it goes away.
//!
//! The program is started directly (no shell, no `PATH` search) with the
//! edge's standard output and error, an empty argument list and these
//! environment variables added to the edge's own:
//!
//! | variable | value |
//! |---|---|
//! | `N2N_EVENT` | `up` or `down` |
//! | `N2N_TAP` | TAP device name |
//! | `N2N_MAC` | TAP MAC, `aa:bb:cc:dd:ee:ff` |
//! | `N2N_IP` | overlay address `a.b.c.d/bits`, empty when none (DHCP) |
//! | `N2N_COMMUNITY` | community name |
//! | `N2N_BRIDGE` | the `--bridge` bridge, empty without |
//!
//! It gets [`SCRIPT_TIMEOUT`]; then it is killed. Its exit status (or the
//! kill) is logged; a failing script does not stop the edge.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How long a script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// After the TAP is up.
    Up,
    /// Before the TAP goes away.
    Down,
}

impl Hook {
    /// `up` / `down`.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Up => "up",
            Hook::Down => "down",
        }
    }
}

/// What the script is told.
#[derive(Debug, Clone)]
pub struct HookEnv {
    /// TAP device name.
    pub tap: String,
    /// TAP MAC as text.
    pub mac: String,
    /// `a.b.c.d/bits` or empty.
    pub ip: String,
    /// Community name.
    pub community: String,
    /// Bridge name or empty.
    pub bridge: String,
}

/// How a script ended.
#[derive(Debug)]
pub enum HookOutcome {
    /// It exited with this status (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It ran longer than the timeout and was killed.
    TimedOut,
    /// It could not be started.
    Failed(std::io::Error),
}

/// Whether `path` names an executable regular file (checked at start so
/// that a typo is an error before the TAP is created).
pub fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let md = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !md.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if md.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not executable", path.display()));
    }
    Ok(())
}

/// Run `path` for `hook` with `env`, at most `timeout`; log and return how
/// it ended.
pub async fn run(path: &Path, hook: Hook, env: &HookEnv, timeout: Duration) -> HookOutcome {
    let mut cmd = tokio::process::Command::new(path);
    cmd.env("N2N_EVENT", hook.name())
        .env("N2N_TAP", &env.tap)
        .env("N2N_MAC", &env.mac)
        .env("N2N_IP", &env.ip)
        .env("N2N_COMMUNITY", &env.community)
        .env("N2N_BRIDGE", &env.bridge)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let outcome = match cmd.spawn() {
        Err(e) => HookOutcome::Failed(e),
        Ok(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => HookOutcome::Exited(status.code()),
            Ok(Err(e)) => HookOutcome::Failed(e),
            Err(_) => {
                let _ = child.kill().await;
                HookOutcome::TimedOut
            }
        },
    };
    let p = path.display();
    let h = hook.name();
    match &outcome {
        HookOutcome::Exited(Some(0)) => tracing::info!("{h}-script {p} exited with status 0"),
        HookOutcome::Exited(Some(c)) => tracing::warn!("{h}-script {p} exited with status {c}"),
        HookOutcome::Exited(None) => tracing::warn!("{h}-script {p} was killed by a signal"),
        HookOutcome::TimedOut => tracing::warn!(
            "{h}-script {p} still running after {} s: killed",
            timeout.as_secs()
        ),
        HookOutcome::Failed(e) => tracing::warn!("{h}-script {p} could not be run: {e}"),
    }
    outcome
}
