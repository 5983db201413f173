//! What the edge driver writes to the log: the core's events in C-like
//! wording, the exit statistics, and rate-limited I/O errors.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use n2n_core::edge::{EdgeStats, Event, PeerRemoval, SwitchReason};

/// At most one warning per this period for repeated send/write errors.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Logs the first error of a kind, then at most one per period with a count.
#[derive(Debug, Default)]
pub(super) struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    pub(super) fn report(&mut self, what: std::fmt::Arguments<'_>, quiet: bool) {
        let t = Instant::now();
        if quiet {
            tracing::debug!("{what}");
            return;
        }
        if self
            .last
            .is_some_and(|l| t.saturating_duration_since(l) < ERROR_LOG_PERIOD)
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!("{what} ({} similar errors not shown)", self.suppressed);
        } else {
            tracing::warn!("{what}");
        }
        self.suppressed = 0;
        self.last = Some(t);
    }

    /// A failed `sendto`. Discovery to 224.0.0.68 fails without a
    /// multicast route: expected, so only a debug line.
    pub(super) fn send_failed(&mut self, dst: SocketAddr, len: usize, e: &std::io::Error) {
        let quiet = dst == n2n_core::edge::MULTICAST_DISCOVERY;
        self.report(
            format_args!("sendto {dst} failed: {e} ({len} bytes)"),
            quiet,
        );
    }
}

fn show(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "(unresolved)".to_owned(), |a| a.to_string())
}

/// The log line(s) of one core event (the driver acts on some of them
/// afterwards).
pub(super) fn log_event(ev: &Event, user_password: bool) {
    match ev {
        Event::AssignAddress(a) => {
            tracing::info!("supernode assigned IP address {}/{}", a.ip, a.prefix);
        }
        Event::Registered { supernode, first } => tracing::info!(
            "[OK] edge <<< ================ >>> supernode [{supernode}]{}",
            if *first { "" } else { " (re-registered)" }
        ),
        Event::RegistrationNak { supernode } => tracing::warn!(
            "supernode {supernode} refused the registration: {}",
            if user_password {
                "user or password not recognised (or MAC or IP address already in use)"
            } else {
                "MAC or IP address already in use"
            }
        ),
        Event::SupernodeSwitched { from, to, reason } => {
            if *reason == SwitchReason::Timeout {
                tracing::warn!(
                    "supernode {} not responding, switching to {}",
                    show(*from),
                    show(*to)
                );
            } else {
                let why = match reason {
                    SwitchReason::Bootstrap => "bootstrap",
                    SwitchReason::Timeout => "no answer",
                    SwitchReason::Selection => "better supernode",
                };
                tracing::info!(
                    "switching supernode from {} to {} ({why})",
                    show(*from),
                    show(*to)
                );
            }
        }
        // The reopening logs its outcome.
        Event::ReopenSocket => {}
        Event::SupernodeLearned { sock, mac } => {
            tracing::info!("adding supernode = {sock} ({mac})");
        }
        Event::PeerAdded { mac, sock, direct } => {
            let at = sock.map_or_else(String::new, |s| format!(" [{s}]"));
            if *direct {
                tracing::info!("P2P connection established: {mac}{at}");
            } else {
                tracing::debug!("pending peer {mac}{at}");
            }
        }
        Event::PeerRemoved {
            mac,
            sock,
            direct,
            reason,
        } => {
            let at = sock.map_or_else(String::new, |s| format!(" [{s}]"));
            match (direct, reason) {
                (true, PeerRemoval::Purged | PeerRemoval::Stale) => tracing::info!(
                    "P2P connection to {mac}{at} lost ({}), using the supernode",
                    if *reason == PeerRemoval::Purged {
                        "purged"
                    } else {
                        "no direct traffic"
                    }
                ),
                _ => tracing::debug!("peer {mac}{at} removed ({reason:?})"),
            }
        }
        other => tracing::debug!("event {other:?}"),
    }
}

/// The C edge's exit statistics.
pub fn log_packet_stats(s: &EdgeStats) {
    tracing::info!("**********************************");
    tracing::info!("Packet stats:");
    tracing::info!("      TX P2P: {} pkts", s.p2p_tx);
    tracing::info!("      RX P2P: {} pkts", s.p2p_rx);
    tracing::info!(
        "      TX Supernode: {} pkts ({} broadcast)",
        s.super_tx,
        s.super_broadcast_tx
    );
    tracing::info!(
        "      RX Supernode: {} pkts ({} broadcast)",
        s.super_rx,
        s.super_broadcast_rx
    );
    let drops: Vec<String> = s
        .nonzero_drops()
        .map(|(r, n)| format!("{}={n}", r.name()))
        .collect();
    if !drops.is_empty() {
        tracing::info!("      dropped: {}", drops.join(", "));
    }
    tracing::info!("**********************************");
}
