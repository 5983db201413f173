//! The driver-side glue both daemons share: the `--metrics` server with its snapshot
//! hand-over, systemd's watchdog keep-alives and `STATUS=` lines, all driven from the
//! driver loop's timer step (no thread, no lock on the data path).
//!
//! ```text
//! loop {
//!     if telemetry.deadline() <= now { telemetry.tick(now, || snapshot(), || status()) }
//!     ...
//!     wait for inputs or min(core deadline, telemetry.deadline())
//! }
//! ```
//!
//! * The snapshot is built and [`Publisher::publish`]ed every [`PUBLISH_EVERY`] while a
//!   server runs (a scrape sees data at most that old); the HTTP server renders it on the
//!   blocking pool.
//! * `WATCHDOG=1` goes out every `WATCHDOG_USEC / 4` (see
//!   [`n2n_sys::notify::watchdog_interval`]): a loop that is stuck sends none, and systemd
//!   restarts the service after `WatchdogSec=`.
//! * `STATUS=<one line>` is sent every [`STATUS_EVERY`] when it changed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use n2n_sys::notify::Notifier;

use crate::metrics::Exporter;
use crate::server::{MetricsServer, ServeError, serve};
use crate::snapshot::{Provider, Publisher, channel};

/// How often the snapshot is refreshed while a metrics server runs.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// How often the `STATUS=` line is recomputed (sent when it changed).
pub const STATUS_EVERY: Duration = Duration::from_secs(2);

/// The shared driver-side state. `S` is the daemon's snapshot type.
#[derive(Debug)]
pub struct Telemetry<S: Send + Sync + 'static> {
    publisher: Option<Publisher<S>>,
    server: Option<MetricsServer>,
    notifier: Option<Notifier>,
    watchdog: Option<Duration>,
    next_watchdog: Option<Instant>,
    next_publish: Option<Instant>,
    next_status: Option<Instant>,
    last_status: String,
    warned: bool,
}

impl<S: Send + Sync + 'static> Telemetry<S> {
    /// Starts the metrics server on `metrics` (if given) on the current tokio runtime,
    /// serving what `exporter` makes of the published snapshots; reads the watchdog
    /// interval from the environment when there is a `notifier`.
    ///
    /// # Errors
    /// When the metrics address cannot be bound.
    pub async fn start<E: Exporter>(
        metrics: Option<SocketAddr>,
        initial: S,
        exporter: impl FnOnce(Provider<S>) -> E,
        notifier: Option<Notifier>,
        now: Instant,
    ) -> Result<Self, ServeError> {
        let (publisher, server) = match metrics {
            Some(addr) => {
                let (tx, rx) = channel(initial);
                let server = serve(addr, exporter(rx)).await?;
                tracing::info!("metrics on http://{}/metrics", server.local_addr());
                (Some(tx), Some(server))
            }
            None => (None, None),
        };
        let watchdog = notifier
            .as_ref()
            .and_then(|_| n2n_sys::notify::watchdog_interval());
        if let Some(w) = watchdog {
            tracing::debug!("systemd watchdog: keep-alive every {} ms", w.as_millis());
        }
        Ok(Self {
            next_publish: publisher.as_ref().map(|_| now),
            publisher,
            server,
            next_status: notifier.as_ref().map(|_| now + STATUS_EVERY),
            notifier,
            next_watchdog: watchdog.map(|w| now + w),
            watchdog,
            last_status: String::new(),
            warned: false,
        })
    }

    /// The bound metrics address, if a server runs.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::local_addr)
    }

    /// The watchdog keep-alive interval, if systemd asked for one.
    #[must_use]
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// When [`Self::tick`] wants to run next.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        [self.next_watchdog, self.next_publish, self.next_status]
            .into_iter()
            .flatten()
            .min()
    }

    /// Does what is due at `now`: a keep-alive, a snapshot (`snapshot` is called only
    /// then), a status line (`status` is called only then).
    pub fn tick(
        &mut self,
        now: Instant,
        snapshot: impl FnOnce() -> S,
        status: impl FnOnce() -> String,
    ) {
        if let (Some(w), Some(d)) = (self.watchdog, self.next_watchdog)
            && d <= now
        {
            self.next_watchdog = Some(now + w);
            self.notify("WATCHDOG=1");
        }
        if let (Some(p), Some(d)) = (&self.publisher, self.next_publish)
            && d <= now
        {
            p.publish(snapshot());
            self.next_publish = Some(now + PUBLISH_EVERY);
        }
        if let Some(d) = self.next_status
            && d <= now
        {
            self.next_status = Some(now + STATUS_EVERY);
            let line = status();
            if line != self.last_status {
                self.notify(&format!("STATUS={}", line.replace(['\n', '\r'], " ")));
                self.last_status = line;
            }
        }
    }

    /// `READY=1` with a status line (also remembered as the current status).
    pub fn ready(&mut self, status: &str) {
        self.notify(&format!(
            "READY=1\nSTATUS={}",
            status.replace(['\n', '\r'], " ")
        ));
        self.last_status = status.to_owned();
    }

    fn notify(&mut self, state: &str) {
        if let Some(n) = &self.notifier
            && let Err(e) = n.notify(state)
            && !self.warned
        {
            self.warned = true;
            tracing::warn!("sd_notify failed: {e} (further failures not logged)");
        }
    }
}
