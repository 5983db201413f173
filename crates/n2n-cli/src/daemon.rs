//! What both daemons do with `-f` and `-v`/`-V` once their sockets are
//! bound: become a daemon unless in the foreground, then start logging.

use n2n_sys::log::{LogConfig, LogError, LogHandle, LogTarget};
use n2n_sys::process::{ProcessError, daemonize, daemonize_until_ready};

/// Becoming a daemon or starting the log failed (the binaries exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `daemon(3)` failed.
    #[error(transparent)]
    Daemon(#[from] ProcessError),
    /// The log could not be set up.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Unless `foreground` (`-f`), become a daemon (fork, new session, stdio on
/// `/dev/null`); then log at C trace `level` to stderr in the foreground,
/// to syslog as a daemon. Call before any thread is started.
pub fn detach_and_log(
    program: &str,
    foreground: bool,
    level: u32,
) -> Result<LogHandle, StartError> {
    if !foreground {
        daemonize()?;
    }
    start_log(program, foreground, level)
}

/// [`detach_and_log`], but the parent process returns only once the daemon
/// calls [`n2n_sys::process::startup_done`] (exit 0) or
/// [`n2n_sys::process::startup_failed`] (exit 1 with its message), like C
/// n2n's edge, which daemonizes once its TAP is configured.
pub fn detach_when_ready_and_log(
    program: &str,
    foreground: bool,
    level: u32,
) -> Result<LogHandle, StartError> {
    if !foreground {
        daemonize_until_ready(program)?;
    }
    start_log(program, foreground, level)
}

fn start_log(program: &str, foreground: bool, level: u32) -> Result<LogHandle, StartError> {
    Ok(n2n_sys::log::init(LogConfig {
        program: program.into(),
        level,
        target: if foreground && n2n_sys::log::stderr_is_journal() {
            LogTarget::Journal
        } else if foreground {
            LogTarget::Stderr
        } else {
            LogTarget::Syslog
        },
    })?)
}
