//! Logging through `tracing` in C n2n's line format.
//!
//! Foreground: one line per event on stderr,
//! `25/Nov/2026 13:01:12 [supernode] WARNING: message key=value`.
//! Daemon: RFC 3164 datagrams to syslog's `/dev/log`
//! (`<28>Nov 25 13:01:12 supernode[1234]: WARNING: message`), falling back to
//! stderr when `/dev/log` cannot be reached.
//!
//! Verbosity uses C's trace levels: 0 errors, 1 + warnings, 2 + normal
//! (`info!`, the default), 3 + `debug!` (C's INFO), 4 and above + `trace!`
//! (C's DEBUG). `-v` adds one, `-V` removes one; the management `verbose`
//! command changes it at run time through [`LogHandle::set_level`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::{Registry, reload};

/// C's default trace level (errors, warnings and normal messages).
pub const DEFAULT_LEVEL: u32 = 2;
/// Path of the local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Trace level from the number of `-v` and `-V` flags.
pub fn level_from_flags(verbose: u8, quiet: u8) -> u32 {
    (DEFAULT_LEVEL + u32::from(verbose)).saturating_sub(u32::from(quiet))
}

/// The `tracing` filter for a C trace level.
pub fn level_filter(level: u32) -> LevelFilter {
    match level {
        0 => LevelFilter::ERROR,
        1 => LevelFilter::WARN,
        2 => LevelFilter::INFO,
        3 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Where log lines go.
#[derive(Debug, Clone)]
pub enum LogTarget {
    /// Standard error (foreground).
    Stderr,
    /// Syslog via `/dev/log` (daemon), stderr if that fails.
    Syslog,
    /// Syslog via another socket path (tests), stderr if that fails.
    SyslogAt(std::path::PathBuf),
    /// Collect lines in memory (tests).
    Memory(LogBuffer),
    /// Standard error read by journald (`$JOURNAL_STREAM`): no time stamp,
    /// no program name (journald adds both, the unit sets
    /// `SyslogIdentifier=`), a `<N>` syslog priority prefix per line.
    Journal,
}

/// Is standard error the journal stream systemd names in `$JOURNAL_STREAM`
/// (`device:inode`)?
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// A journal line: `<5>WARNING: message` (priority as for syslog).
pub fn format_journal(level: Level, message: &str) -> String {
    format!("<{}>{}{}", severity(level), level_prefix(level), message)
}

/// Where log lines actually went after set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Standard error.
    Stderr,
    /// Syslog.
    Syslog,
    /// Memory buffer.
    Memory,
    /// Standard error, journald format.
    Journal,
}

/// Shared in-memory log (for tests).
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<String>>>);

impl LogBuffer {
    /// Lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

/// Logging set-up.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Program name shown in brackets / as the syslog tag.
    pub program: String,
    /// Initial C trace level.
    pub level: u32,
    /// Destination.
    pub target: LogTarget,
}

/// Errors of the logging set-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    /// The reload handle lost its subscriber.
    #[error("cannot change the log level: {0}")]
    Reload(String),
}

/// Broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Full year.
    pub year: i32,
    /// Month 1..=12.
    pub month: u8,
    /// Day of month 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second (0..=60).
    pub second: u8,
}

impl LocalTime {
    /// Local time (the process's time zone, like C's `localtime`) of a
    /// Unix time; UTC if the conversion fails.
    pub fn from_unix(secs: i64) -> Self {
        let t: libc::time_t = secs as libc::time_t;
        // SAFETY: all-zero is a valid `tm` (plain integers and a nullable
        // pointer).
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the duration of the call;
        // localtime_r is thread-safe and writes only into `tm`.
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if !ok {
            return Self::utc(secs);
        }
        let b = |v: libc::c_int| u8::try_from(v).unwrap_or(0);
        Self {
            year: tm.tm_year + 1900,
            month: b(tm.tm_mon + 1),
            day: b(tm.tm_mday),
            hour: b(tm.tm_hour),
            minute: b(tm.tm_min),
            second: b(tm.tm_sec),
        }
    }

    /// UTC broken-down time of a Unix time.
    pub fn utc(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let b = |v: i64| u8::try_from(v).unwrap_or(0);
        Self {
            year: i32::try_from(y).unwrap_or(0),
            month: b(m),
            day: b(d),
            hour: b(rem / 3600),
            minute: b(rem % 3600 / 60),
            second: b(rem % 60),
        }
    }

    /// Now, local time.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    fn month_name(&self) -> &'static str {
        MONTHS
            .get(usize::from(self.month.saturating_sub(1)))
            .copied()
            .unwrap_or("???")
    }
}

fn level_prefix(level: Level) -> &'static str {
    if level == Level::ERROR {
        "ERROR: "
    } else if level == Level::WARN {
        "WARNING: "
    } else {
        ""
    }
}

/// A foreground log line: `25/Nov/2026 13:01:12 [program] WARNING: message`.
pub fn format_line(t: &LocalTime, program: &str, level: Level, message: &str) -> String {
    format!(
        "{:02}/{}/{:04} {:02}:{:02}:{:02} [{}] {}{}",
        t.day,
        t.month_name(),
        t.year,
        t.hour,
        t.minute,
        t.second,
        program,
        level_prefix(level),
        message
    )
}

/// Syslog severity of a level (RFC 5424 numbers).
fn severity(level: Level) -> u8 {
    if level == Level::ERROR {
        3
    } else if level == Level::WARN {
        4
    } else if level == Level::INFO {
        5
    } else if level == Level::DEBUG {
        6
    } else {
        7
    }
}

/// An RFC 3164 syslog datagram, facility daemon:
/// `<29>Nov  5 13:01:12 program[pid]: message`.
pub fn format_syslog(
    t: &LocalTime,
    program: &str,
    pid: u32,
    level: Level,
    message: &str,
) -> String {
    const FACILITY_DAEMON: u8 = 3;
    format!(
        "<{}>{} {:>2} {:02}:{:02}:{:02} {}[{}]: {}{}",
        FACILITY_DAEMON * 8 + severity(level),
        t.month_name(),
        t.day,
        t.hour,
        t.minute,
        t.second,
        program,
        pid,
        level_prefix(level),
        message
    )
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

enum Sink {
    Stderr,
    Journal,
    Syslog {
        sock: UnixDatagram,
        path: std::path::PathBuf,
        pid: u32,
    },
    Memory(LogBuffer),
}

struct N2nLayer {
    program: String,
    sink: Sink,
}

impl<S: Subscriber> Layer<S> for N2nLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        f.message.push_str(&f.rest);
        let level = *event.metadata().level();
        let now = LocalTime::now();
        match &self.sink {
            Sink::Stderr => {
                let line = format_line(&now, &self.program, level, &f.message);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Sink::Syslog { sock, path, pid } => {
                let dgram = format_syslog(&now, &self.program, *pid, level, &f.message);
                if sock.send(dgram.as_bytes()).is_err() {
                    // syslogd may have restarted: reconnect once.
                    if sock.connect(path).is_err() || sock.send(dgram.as_bytes()).is_err() {
                        let line = format_line(&now, &self.program, level, &f.message);
                        let _ = writeln!(std::io::stderr().lock(), "{line}");
                    }
                }
            }
            Sink::Memory(buf) => buf.push(format_line(&now, &self.program, level, &f.message)),
            Sink::Journal => {
                let line = format_journal(level, &f.message);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }
}

/// Handle to change the log level at run time.
#[derive(Debug, Clone)]
pub struct LogHandle {
    reload: reload::Handle<LevelFilter, Registry>,
    level: Arc<AtomicU32>,
    destination: Destination,
}

impl LogHandle {
    /// Current C trace level.
    pub fn level(&self) -> u32 {
        self.level.load(Ordering::Relaxed)
    }

    /// Set the C trace level.
    pub fn set_level(&self, level: u32) -> Result<(), LogError> {
        self.reload
            .modify(|f| *f = level_filter(level))
            .map_err(|e| LogError::Reload(e.to_string()))?;
        self.level.store(level, Ordering::Relaxed);
        Ok(())
    }

    /// Where the lines go.
    pub fn destination(&self) -> Destination {
        self.destination
    }
}

fn connect_syslog(path: &std::path::Path) -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(path).ok()?;
    Some(sock)
}

/// Build a subscriber and its level handle without installing it.
pub fn build(cfg: LogConfig) -> (impl Subscriber + Send + Sync + 'static, LogHandle) {
    let syslog_at = |path: std::path::PathBuf| match connect_syslog(&path) {
        Some(sock) => (
            Sink::Syslog {
                sock,
                path,
                pid: std::process::id(),
            },
            Destination::Syslog,
        ),
        None => (Sink::Stderr, Destination::Stderr),
    };
    let (sink, destination) = match cfg.target {
        LogTarget::Stderr => (Sink::Stderr, Destination::Stderr),
        LogTarget::Syslog => syslog_at(SYSLOG_SOCKET.into()),
        LogTarget::SyslogAt(p) => syslog_at(p),
        LogTarget::Memory(b) => (Sink::Memory(b), Destination::Memory),
        LogTarget::Journal => (Sink::Journal, Destination::Journal),
    };
    let (filter, reload) = reload::Layer::new(level_filter(cfg.level));
    let subscriber = Registry::default().with(filter).with(N2nLayer {
        program: cfg.program,
        sink,
    });
    let handle = LogHandle {
        reload,
        level: Arc::new(AtomicU32::new(cfg.level)),
        destination,
    };
    (subscriber, handle)
}

/// Install the global subscriber.
pub fn init(cfg: LogConfig) -> Result<LogHandle, LogError> {
    let (subscriber, handle) = build(cfg);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadyInstalled)?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_like_c() {
        let t = LocalTime::utc(1_795_606_373); // 2026-11-25 11:32:53 UTC
        assert_eq!(
            format_line(&t, "supernode", Level::INFO, "supernode started"),
            "25/Nov/2026 11:32:53 [supernode] supernode started"
        );
        assert_eq!(
            format_line(&t, "edge", Level::WARN, "x"),
            "25/Nov/2026 11:32:53 [edge] WARNING: x"
        );
        assert_eq!(
            format_line(&t, "edge", Level::ERROR, "y"),
            "25/Nov/2026 11:32:53 [edge] ERROR: y"
        );
    }

    #[test]
    fn journal_format() {
        assert_eq!(
            format_journal(Level::INFO, "edge started"),
            "<5>edge started"
        );
        assert_eq!(format_journal(Level::WARN, "x"), "<4>WARNING: x");
        assert_eq!(format_journal(Level::ERROR, "y"), "<3>ERROR: y");
        assert_eq!(format_journal(Level::DEBUG, "z"), "<6>z");
    }

    #[test]
    fn utc_calendar() {
        let t = LocalTime::utc(0);
        assert_eq!((t.year, t.month, t.day, t.hour), (1970, 1, 1, 0));
        let t = LocalTime::utc(951_782_400); // 2000-02-29
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
        let t = LocalTime::utc(1_709_251_199); // 2024-02-29 23:59:59
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2024, 2, 29, 23, 59, 59)
        );
    }

    #[test]
    fn syslog_format_rfc3164() {
        let t = LocalTime {
            year: 2026,
            month: 11,
            day: 5,
            hour: 3,
            minute: 4,
            second: 5,
        };
        assert_eq!(
            format_syslog(&t, "supernode", 42, Level::WARN, "hi"),
            "<28>Nov  5 03:04:05 supernode[42]: WARNING: hi"
        );
        assert!(format_syslog(&t, "s", 1, Level::ERROR, "e").starts_with("<27>"));
        assert!(format_syslog(&t, "s", 1, Level::INFO, "e").starts_with("<29>"));
        assert!(format_syslog(&t, "s", 1, Level::TRACE, "e").starts_with("<31>"));
    }

    #[test]
    fn levels_and_reload() {
        assert_eq!(level_from_flags(0, 0), 2);
        assert_eq!(level_from_flags(2, 0), 4);
        assert_eq!(level_from_flags(0, 5), 0);
        let buf = LogBuffer::default();
        let (sub, handle) = build(LogConfig {
            program: "supernode".into(),
            level: DEFAULT_LEVEL,
            target: LogTarget::Memory(buf.clone()),
        });
        assert_eq!(handle.destination(), Destination::Memory);
        tracing::subscriber::with_default(sub, || {
            tracing::info!("normal");
            tracing::debug!("hidden");
            tracing::warn!(peer = "1.2.3.4:5", "careful");
            handle.set_level(3).unwrap();
            assert_eq!(handle.level(), 3);
            tracing::debug!("shown");
            tracing::trace!("still hidden");
            handle.set_level(0).unwrap();
            tracing::warn!("now hidden");
            tracing::error!("error");
        });
        let lines = buf.lines();
        let msgs: Vec<&str> = lines
            .iter()
            .map(|l| l.split_once("[supernode] ").unwrap().1)
            .collect();
        assert_eq!(
            msgs,
            [
                "normal",
                "WARNING: careful peer=1.2.3.4:5",
                "shown",
                "ERROR: error"
            ]
        );
    }

    #[test]
    fn syslog_sink_sends_datagrams_and_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let (sub, handle) = build(LogConfig {
            program: "supernode".into(),
            level: DEFAULT_LEVEL,
            target: LogTarget::SyslogAt(path),
        });
        assert_eq!(handle.destination(), Destination::Syslog);
        tracing::subscriber::with_default(sub, || tracing::warn!("to syslog"));
        let mut b = [0u8; 512];
        let n = server.recv(&mut b).unwrap();
        let got = std::str::from_utf8(&b[..n]).unwrap();
        assert!(got.starts_with("<28>"), "{got}");
        assert!(
            got.ends_with(&format!(
                " supernode[{}]: WARNING: to syslog",
                std::process::id()
            )),
            "{got}"
        );
        let (_, handle) = build(LogConfig {
            program: "x".into(),
            level: 2,
            target: LogTarget::SyslogAt(dir.path().join("missing")),
        });
        assert_eq!(handle.destination(), Destination::Stderr);
    }
}
