//! Background re-resolution of the `-l` supernode names (behaviour.md
//! §3): every [`resolve::REFRESH`], every [`resolve::RETRY`] while one
//! fails, and at once after a supernode stopped answering.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use n2n_core::edge::Edge;
use tokio::sync::mpsc;

use super::background::{Background, Tx};

use crate::resolve::{self, SupernodeName};

/// Background re-resolution of `-l` names.
#[derive(Debug)]
pub(super) struct Resolver {
    names: Vec<SupernodeName>,
    current: Vec<Option<SocketAddr>>,
    failed: Vec<bool>,
    allow_v6: bool,
    next: Instant,
    in_flight: bool,
    bg: Background,
    tx: Tx<Vec<(usize, io::Result<SocketAddr>)>>,
    pub(super) rx: mpsc::Receiver<Vec<(usize, io::Result<SocketAddr>)>>,
}

impl Resolver {
    pub(super) fn new(
        names: Vec<(SupernodeName, Option<SocketAddr>)>,
        allow_v6: bool,
        bg: &Background,
    ) -> Self {
        let failed: Vec<bool> = names.iter().map(|(_, a)| a.is_none()).collect();
        let period = if failed.iter().any(|f| *f) {
            resolve::RETRY
        } else {
            resolve::REFRESH
        };
        // One round in flight at a time.
        let (tx, rx) = bg.channel(2);
        Self {
            current: names.iter().map(|(_, a)| *a).collect(),
            names: names.into_iter().map(|(n, _)| n).collect(),
            failed,
            allow_v6,
            next: Instant::now() + period,
            in_flight: false,
            bg: bg.clone(),
            tx,
            rx,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        (!self.names.is_empty() && !self.in_flight).then_some(self.next)
    }

    pub(super) fn start(&mut self) {
        if self.names.is_empty() || self.in_flight {
            return;
        }
        self.in_flight = true;
        let names = self.names.clone();
        let tx = self.tx.clone();
        let allow_v6 = self.allow_v6;
        self.bg.spawn(async move {
            let mut out = Vec::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                out.push((i, resolve::resolve(&n.text, allow_v6).await));
            }
            let _ = tx.send(out).await;
        });
    }

    /// Apply a round's results to the core.
    pub(super) fn apply(&mut self, edge: &mut Edge, results: Vec<(usize, io::Result<SocketAddr>)>) {
        self.in_flight = false;
        for (i, r) in results {
            let (Some(name), Some(cur), Some(failed)) = (
                self.names.get(i),
                self.current.get_mut(i),
                self.failed.get_mut(i),
            ) else {
                continue;
            };
            match r {
                Ok(addr) => {
                    if *cur != Some(addr) {
                        tracing::info!(
                            "supernode2sock successfully resolves supernode address for {} to {addr}",
                            name.text
                        );
                        edge.set_supernode_addr(name.index, addr);
                        *cur = Some(addr);
                    }
                    *failed = false;
                }
                Err(e) => {
                    if !*failed {
                        tracing::warn!(
                            "supernode2sock fails to resolve supernode host {}: {e}{}",
                            name.text,
                            match cur {
                                Some(a) => format!(" (keeping {a})"),
                                None => String::new(),
                            }
                        );
                    }
                    *failed = true;
                }
            }
        }
        let period = if self.failed.iter().any(|f| *f) {
            resolve::RETRY
        } else {
            resolve::REFRESH
        };
        self.next = Instant::now() + period;
    }
}
