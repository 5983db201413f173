//! Under journald (`$JOURNAL_STREAM` names standard error), the supernode's log
//! lines carry a `<N>` priority prefix and no time stamp; with another
//! standard error they keep C's format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::UdpSocket;
use std::os::unix::fs::MetadataExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_supernode");

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the supernode for a moment with stderr in a file; `journal` sets
/// `JOURNAL_STREAM` to that file's `device:inode` (else to another file's).
fn log_lines(journal: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let other = dir.path().join("other");
    let file = std::fs::File::create(&path).unwrap();
    std::fs::write(&other, "").unwrap();
    let m = std::fs::metadata(if journal { &path } else { &other }).unwrap();
    let (p, t) = (free_udp_port().to_string(), free_udp_port().to_string());
    let mut child = Command::new(BIN)
        .args(["-f", "-p", &p, "-t", &t, "-u", "0", "-g", "0"])
        .env_remove("NOTIFY_SOCKET")
        .env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()))
        .stdin(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10)
        && !std::fs::read_to_string(&path)
            .unwrap()
            .contains("supernode started")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn journal_lines_have_priorities_and_no_time_stamps() {
    let lines = log_lines(true);
    assert!(
        lines.iter().any(|l| l == "<5>supernode started"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>WARNING: using default federation name")),
        "{lines:?}"
    );
    for l in &lines {
        assert!(l.starts_with('<'), "{l}");
        assert!(!l.contains("[supernode]"), "{l}");
    }
}

#[test]
fn other_stderr_keeps_c_format() {
    let lines = log_lines(false);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" [supernode] supernode started")),
        "{lines:?}"
    );
}
