//! systemd readiness notification (`sd_notify`) in pure Rust: one unix
//! datagram per state change to `$NOTIFY_SOCKET` (a path, or an abstract
//! socket when it starts with `@`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Environment variable naming the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Addr {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// A notification target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    addr: Addr,
}

impl Notifier {
    /// The target named by `$NOTIFY_SOCKET`; `None` when it is unset or
    /// empty (not started by systemd with `Type=notify`).
    pub fn from_env() -> Option<Self> {
        std::env::var_os(NOTIFY_SOCKET)
            .filter(|v| !v.is_empty())
            .map(|v| Self::new(&v))
    }

    /// A target given like `$NOTIFY_SOCKET`: a path, or `@name` for an
    /// abstract socket.
    pub fn new(socket: &OsStr) -> Self {
        let bytes = socket.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => Addr::Abstract(name.to_vec()),
            None => Addr::Path(PathBuf::from(OsString::from(socket))),
        };
        Self { addr }
    }

    /// Send a raw state string such as `"READY=1"` (several assignments
    /// may be separated by newlines).
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let sent = match &self.addr {
            Addr::Path(p) => sock.send_to(state.as_bytes(), p)?,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Addr::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)?
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Addr::Abstract(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "abstract unix sockets need Linux",
                ));
            }
        };
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to the notification socket",
            ));
        }
        Ok(())
    }

    /// `READY=1`, with a status line.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STOPPING=1`, with a status line.
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=<text>` (newlines replaced by spaces).
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("STATUS={}", one_line(status)))
    }
}

/// Environment variable with the watchdog timeout in microseconds.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// Environment variable naming the process the watchdog is meant for.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// How often to send `WATCHDOG=1`: a quarter of `$WATCHDOG_USEC` (systemd
/// restarts the service when none arrives within it). `None` when unset,
/// zero, unparsable, or `$WATCHDOG_PID` names another process.
pub fn watchdog_interval() -> Option<std::time::Duration> {
    watchdog_interval_from(
        std::env::var(WATCHDOG_USEC).ok().as_deref(),
        std::env::var(WATCHDOG_PID).ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_interval`] from given values (testable).
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    my_pid: u32,
) -> Option<std::time::Duration> {
    if let Some(p) = pid
        && p.trim().parse::<u32>().ok() != Some(my_pid)
    {
        return None;
    }
    let us: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(std::time::Duration::from_micros((us / 4).max(1)))
}

impl Notifier {
    /// `WATCHDOG=1`: the service is alive.
    pub fn watchdog(&self) -> io::Result<()> {
        self.notify("WATCHDOG=1")
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut b = [0u8; 256];
        let n = sock.recv(&mut b).unwrap();
        String::from_utf8(b[..n].to_vec()).unwrap()
    }

    #[test]
    fn path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.as_os_str());
        n.ready("listening on 7654").unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=listening on 7654");
        n.status("two\nlines").unwrap();
        assert_eq!(recv(&server), "STATUS=two lines");
        n.stopping("bye").unwrap();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=bye");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("n2n-sys-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(OsStr::new(&format!("@{name}")));
        n.notify("READY=1").unwrap();
        assert_eq!(recv(&server), "READY=1");
    }

    #[test]
    fn watchdog_interval_is_a_quarter() {
        use std::time::Duration;
        let w = |u, p| watchdog_interval_from(u, p, 42);
        assert_eq!(w(Some("2000000"), None), Some(Duration::from_millis(500)));
        assert_eq!(
            w(Some("2000000"), Some("42")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(w(Some("2000000"), Some("43")), None);
        assert_eq!(w(Some("0"), None), None);
        assert_eq!(w(Some("x"), None), None);
        assert_eq!(w(None, Some("42")), None);
    }

    #[test]
    fn missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(dir.path().join("nobody-listens").as_os_str());
        assert!(n.notify("READY=1").is_err());
    }
}
