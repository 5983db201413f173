//! Bounded execution of external commands.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Error, Result, io_err};

/// Output of a finished command.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub(crate) fn reader(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Polls `child` until it exits or `timeout` passes.
pub(crate) fn wait_child(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to completion, killing it after `timeout`. A non-zero exit is *not* an error
/// here (see [`run_ok`]).
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let desc = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("spawning `{desc}`")))?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status =
        wait_child(&mut child, timeout).map_err(io_err(format!("waiting for `{desc}`")))?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Timeout {
            what: desc,
            after: timeout,
        });
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `cmd` and fails unless it exits with status 0. Returns stdout.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let o = run(cmd, timeout)?;
    if o.status.success() {
        Ok(o.stdout)
    } else {
        Err(Error::Command {
            cmd: describe(cmd),
            status: o.status.to_string(),
            stderr: format!("{}{}", o.stderr.trim(), o.stdout.trim()),
        })
    }
}

/// `ip <args>` in the caller's namespace (only used with `-n <ns>` / `netns` subcommands).
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run_ok(
        crate::install::program("ip")?.args(args),
        crate::CMD_TIMEOUT,
    )
}
