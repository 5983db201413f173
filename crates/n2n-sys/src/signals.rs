//! SIGINT / SIGTERM / SIGHUP for tokio drivers.

use std::io;

use tokio::signal::unix::{SignalKind, signal};

/// A signal the daemons react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: stop.
    Interrupt,
    /// SIGTERM: stop.
    Terminate,
    /// SIGHUP: the supernode dumps its tables to the log.
    Hangup,
}

impl Signal {
    /// Does this signal ask the program to stop?
    pub fn is_stop(self) -> bool {
        matches!(self, Signal::Interrupt | Signal::Terminate)
    }

    /// Conventional name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

/// Listens for SIGINT, SIGTERM and SIGHUP. Create inside a tokio runtime
/// (with the `signal` driver enabled); from then on these signals no longer
/// kill the process but are delivered through [`Signals::recv`].
#[derive(Debug)]
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Wait for the next signal (cancel-safe, usable in `select!`).
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.int.recv() => Signal::Interrupt,
            Some(()) = self.term.recv() => Signal::Terminate,
            Some(()) = self.hup.recv() => Signal::Hangup,
            else => std::future::pending::<Signal>().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn delivers_sighup() {
        let mut s = Signals::new().unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), s.recv())
            .await
            .unwrap();
        assert_eq!(got, Signal::Hangup);
        assert!(!got.is_stop());
        assert!(Signal::Terminate.is_stop());
    }
}
