//! Process-level set-up: daemonizing and dropping privileges.

use nix::unistd::{Gid, Group, Uid, User};

/// Errors of process set-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// `daemon(3)` failed.
    #[error("cannot become a daemon: {0}")]
    Daemon(nix::Error),
    /// A privilege-changing call failed.
    #[error("cannot drop privileges to uid={uid}, gid={gid}: {call} failed: {err}")]
    Drop {
        /// Target user id.
        uid: u32,
        /// Target group id.
        gid: u32,
        /// Which call failed.
        call: &'static str,
        /// The error.
        err: nix::Error,
    },
}

/// Detach from the terminal like C n2n's `daemon(0, 0)`: fork, new
/// session, `chdir("/")`, stdin/stdout/stderr to `/dev/null`.
///
/// Must be called before any thread is started (in particular before the
/// tokio runtime is built). Sockets opened before stay open in the daemon.
pub fn daemonize() -> Result<(), ProcessError> {
    nix::unistd::daemon(false, false).map_err(ProcessError::Daemon)
}

/// The write end of the start-up pipe of [`daemonize_until_ready`], in
/// the daemon.
static STARTUP: std::sync::Mutex<Option<std::io::PipeWriter>> = std::sync::Mutex::new(None);

/// Byte that tells the waiting parent the daemon is up.
const READY_BYTE: u8 = 0;

/// Like [`daemonize`], but the parent process waits until the daemon
/// calls [`startup_done`] (it then exits 0) or [`startup_failed`] (it
/// prints the message to its stderr as `<program>: <message>` and exits
/// 1); if the daemon exits before either, the parent exits 1 with a
/// message pointing to the log. C n2n's edge daemonizes only once its TAP
/// is configured; this gives scripts the same guarantee.
///
/// Returns in the daemon only. Must be called before any thread is
/// started.
pub fn daemonize_until_ready(program: &str) -> Result<(), ProcessError> {
    use std::io::{Read, Write};
    let os = |e: std::io::Error| {
        ProcessError::Daemon(nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))
    };
    let (mut rx, tx) = std::io::pipe().map_err(os)?;
    // SAFETY: called before any other thread exists (documented contract),
    // so the child may run arbitrary code after the fork.
    match unsafe { nix::unistd::fork() }.map_err(ProcessError::Daemon)? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(tx);
            let mut msg = Vec::new();
            let _ = rx.read_to_end(&mut msg);
            let code = match msg.split_first() {
                Some((&READY_BYTE, _)) => 0,
                Some(_) => {
                    let text = String::from_utf8_lossy(&msg);
                    let _ = writeln!(std::io::stderr(), "{program}: {}", text.trim_end());
                    1
                }
                None => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{program}: the daemon stopped during start-up (see the system log)"
                    );
                    1
                }
            };
            // SAFETY: `_exit` ends the process without running the
            // child's duplicated atexit handlers or flushing shared stdio.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Child => {
            drop(rx);
            nix::unistd::setsid().map_err(ProcessError::Daemon)?;
            std::env::set_current_dir("/").map_err(os)?;
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(os)?;
            for n in 0..3 {
                // SAFETY: dup2 onto the standard descriptors 0..2, which
                // this process owns; `null` stays open until after.
                if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), n) } < 0 {
                    return Err(ProcessError::Daemon(nix::Error::last()));
                }
            }
            *STARTUP.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
            Ok(())
        }
    }
}

/// Tell the parent waiting in [`daemonize_until_ready`] that the daemon is
/// up (no effect otherwise, or when already told).
pub fn startup_done() {
    use std::io::Write;
    if let Some(mut tx) = STARTUP.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = tx.write_all(&[READY_BYTE]);
    }
}

/// Tell the parent waiting in [`daemonize_until_ready`] that start-up
/// failed with `message` (no effect otherwise, or when already told).
pub fn startup_failed(message: &str) {
    use std::io::Write;
    if let Some(mut tx) = STARTUP.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let msg = if message.is_empty() {
            "start-up failed"
        } else {
            message
        };
        let _ = tx.write_all(msg.as_bytes());
    }
}

/// The user C n2n drops to by default: `n2n` if it exists, else `nobody`
/// (uid and primary gid).
pub fn default_user() -> Option<(u32, u32)> {
    ["n2n", "nobody"].iter().find_map(|name| {
        User::from_name(name)
            .ok()
            .flatten()
            .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
    })
}

/// Group id of a group name (for messages and tests).
pub fn group_id(name: &str) -> Option<u32> {
    Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// What [`drop_privileges`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeDrop {
    /// Now running as this uid/gid.
    Dropped {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// Running as root and staying root (`-u 0 -g 0`, or no `n2n`/`nobody`
    /// user and no `-u`/`-g`).
    KeptRoot,
    /// Not running as root: nothing to drop (e.g. systemd `DynamicUser=`).
    NotRoot {
        /// Effective user id.
        uid: u32,
        /// Effective group id.
        gid: u32,
    },
}

/// Drop root privileges after the sockets are bound.
///
/// `uid`/`gid` are the `-u`/`-g` values; a missing one defaults to the
/// [`default_user`]'s. Nothing happens when not running as root, or when
/// the target is uid 0 and gid 0. Otherwise supplementary groups are
/// replaced by `gid`, then `setgid(gid)`, then `setuid(uid)`; any failure
/// is an error (the caller should exit rather than run as root).
///
/// Unlike C n2n, an explicit non-zero `-u`/`-g` is honoured even when the
/// `n2n` or `nobody` user exists (cli.md §2 quirk not reproduced).
pub fn drop_privileges(uid: Option<u32>, gid: Option<u32>) -> Result<PrivilegeDrop, ProcessError> {
    let euid = Uid::effective();
    if !euid.is_root() {
        return Ok(PrivilegeDrop::NotRoot {
            uid: euid.as_raw(),
            gid: Gid::effective().as_raw(),
        });
    }
    let default = default_user();
    let uid = uid.or(default.map(|d| d.0)).unwrap_or(0);
    let gid = gid.or(default.map(|d| d.1)).unwrap_or(0);
    if uid == 0 && gid == 0 {
        return Ok(PrivilegeDrop::KeptRoot);
    }
    let fail = |call, err| ProcessError::Drop {
        uid,
        gid,
        call,
        err,
    };
    let g = Gid::from_raw(gid);
    nix::unistd::setgroups(&[g]).map_err(|e| fail("setgroups", e))?;
    nix::unistd::setgid(g).map_err(|e| fail("setgid", e))?;
    nix::unistd::setuid(Uid::from_raw(uid)).map_err(|e| fail("setuid", e))?;
    Ok(PrivilegeDrop::Dropped { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_root_is_reported_not_changed() {
        if Uid::effective().is_root() {
            // Dropping in a unit test would affect the whole test process;
            // the binary's integration test covers the root path.
            return;
        }
        let r = drop_privileges(Some(12345), Some(12345)).unwrap();
        assert_eq!(
            r,
            PrivilegeDrop::NotRoot {
                uid: Uid::effective().as_raw(),
                gid: Gid::effective().as_raw()
            }
        );
    }

    #[test]
    fn root_drops_in_a_child_process() {
        use nix::sys::wait::{WaitStatus, waitpid};
        use nix::unistd::{ForkResult, fork, getgroups};
        if !Uid::effective().is_root() {
            return;
        }
        // SAFETY: the child only makes syscalls and exits with _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let ok = matches!(
                    drop_privileges(Some(65534), Some(65533)),
                    Ok(PrivilegeDrop::Dropped {
                        uid: 65534,
                        gid: 65533
                    })
                )
                    && Uid::current().as_raw() == 65534
                    && Uid::effective().as_raw() == 65534
                    && Gid::current().as_raw() == 65533
                    && getgroups().map(|g| g == [Gid::from_raw(65533)]).unwrap_or(false)
                    // Root cannot be regained.
                    && nix::unistd::setuid(Uid::from_raw(0)).is_err();
                // SAFETY: _exit is always safe to call.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-n2n-test"), None);
        if let Some((uid, _)) = default_user() {
            assert_ne!(uid, 0, "n2n/nobody must not be root");
        }
    }
}
