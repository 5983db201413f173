//! Child processes started by the helpers (inside a namespace), killed by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Error, Result, io_err};

/// How long [`Proc::kill`] waits after SIGTERM before sending SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub(crate) struct ProcState {
    child: Child,
    status: Option<ExitStatus>,
}

pub(crate) type Shared = Arc<Mutex<ProcState>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, ProcState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProcState {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn poll(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL. The child is never reaped before this returns,
/// so its PID cannot have been reused by another process.
pub(crate) fn terminate(s: &Shared, grace: Duration) -> Result<ExitStatus> {
    let mut st = lock(s);
    if let Some(status) = st.poll().map_err(io_err("polling child"))? {
        return Ok(status);
    }
    let pid = Pid::from_raw(i32::try_from(st.child.id()).unwrap_or(i32::MAX));
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = st.poll().map_err(io_err("polling child"))? {
            return Ok(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = st.child.kill(); // SIGKILL, by PID
    let status = st.child.wait().map_err(io_err("reaping child"))?;
    st.status = Some(status);
    Ok(status)
}

/// A process started by [`crate::Netns::spawn`]: stdout/stderr go to files (printed when a test
/// panics while the `Proc` is alive), it is killed (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    label: String,
    cmdline: String,
    pid: u32,
    state: Shared,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Proc {
    pub(crate) fn new(
        label: String,
        cmdline: String,
        child: Child,
        stdout_path: PathBuf,
        stderr_path: PathBuf,
    ) -> Proc {
        Proc {
            label,
            cmdline,
            pid: child.id(),
            state: Arc::new(Mutex::new(ProcState {
                child,
                status: None,
            })),
            stdout_path,
            stderr_path,
        }
    }

    pub(crate) fn shared(&self) -> Shared {
        Arc::clone(&self.state)
    }

    /// The label given to `spawn`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// PID of the process (the command itself: `ip netns exec` execs, it does not fork).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True while the process has not exited.
    pub fn is_running(&self) -> bool {
        matches!(lock(&self.state).poll(), Ok(None))
    }

    /// Exit status, if it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.state).poll().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = lock(&self.state).poll().map_err(io_err("polling child"))? {
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the process (by PID) if it is still running.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let mut st = lock(&self.state);
        if st.poll().map_err(io_err("polling child"))?.is_some() {
            return Err(Error::Other(format!("{} already exited", self.label)));
        }
        let pid = Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        kill(pid, sig).map_err(|e| Error::Other(format!("kill {sig} {}: {e}", self.pid)))
    }

    /// SIGTERM, then SIGKILL after [`KILL_GRACE`]; returns the exit status.
    pub fn kill(&self) -> Result<ExitStatus> {
        terminate(&self.state, KILL_GRACE)
    }

    /// Path of the captured stdout.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// Path of the captured stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Captured stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Captured stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Waits (bounded) until `needle` appears in stdout or stderr. Returns false on timeout or
    /// when the process exited without printing it.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline || !self.is_running() {
                // one last look: output may have landed just before exit
                return self.stdout().contains(needle) || self.stderr().contains(needle);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Prints the command line, status and the captured output (last 200 lines of each) to
    /// stderr.
    pub fn dump(&self) {
        let status = match self.exit_status() {
            Some(s) => s.to_string(),
            None => "running".to_string(),
        };
        eprintln!(
            "----- process `{}` pid {} ({status}): {}",
            self.label, self.pid, self.cmdline
        );
        for (what, text) in [("stdout", self.stdout()), ("stderr", self.stderr())] {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(200);
            eprintln!("----- {what} of `{}` ({} lines):", self.label, lines.len());
            for l in lines.get(from..).unwrap_or_default() {
                eprintln!("  | {l}");
            }
        }
        eprintln!("----- end of `{}`", self.label);
    }
}

fn read_lossy(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl Drop for Proc {
    fn drop(&mut self) {
        if thread::panicking() {
            self.dump();
        }
        if let Err(e) = terminate(&self.state, KILL_GRACE) {
            eprintln!(
                "n2n-tests: could not kill `{}` ({}): {e}",
                self.label, self.pid
            );
        }
    }
}
