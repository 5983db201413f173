//! Edge management interface (cli.md §5.1–§5.5): JSON commands and the
//! legacy text page.

use core::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use n2n_proto::types::{DevAddr, Mac};

use crate::mgmt::{
    Flavor, JsonRequest, MgmtError, Reply, ReqKind, Request, Value, error_line, parse_request,
};

use super::events::Topic;
use super::peers::{Peer, PeerTable};
use super::registration::CRIT_GOOD;
use super::{DropReason, Edge, EdgeConfig, Selection, VERSION};
use crate::time::Now;

/// What the driver must do after a management request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MgmtAction {
    /// Stop the edge (after sending the replies): call
    /// [`Edge::shutdown`](super::Edge::shutdown), drain, exit.
    Stop,
    /// Set the log level.
    SetVerbosity(u8),
    /// `s <tag> <topic>` (authorised, known topic): no replies from the
    /// core; [`Subscriptions::subscribe`](super::events::Subscriptions::subscribe)
    /// gives them.
    Subscribe {
        /// The topic.
        topic: Topic,
        /// The subscriber's tag.
        tag: String,
    },
    /// `help.events`: the reply is
    /// [`Subscriptions::help_events`](super::events::Subscriptions::help_events).
    HelpEvents {
        /// The request's tag.
        tag: String,
    },
    /// `post.test <text>`: send every reply but the last (`end`), then the
    /// datagrams of
    /// [`Subscriptions::post_test`](super::events::Subscriptions::post_test),
    /// then the `end` (C's order).
    PostTest {
        /// The argument text.
        text: String,
    },
}

/// Result of a management request: reply datagrams (each one JSON object
/// or text chunk, sent to the requester in order) and an optional action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MgmtOutcome {
    /// Reply datagrams.
    pub replies: Vec<String>,
    /// Action for the driver.
    pub action: Option<MgmtAction>,
}

/// Edge JSON commands: name, writable, help text (C order).
const COMMANDS: &[(&str, bool, &str)] = &[
    ("reload_communities", true, "Reserved for supernode"),
    ("stop", true, "Gracefully exit edge"),
    ("verbose", true, "Manage verbosity level"),
    ("communities", false, "Show current community"),
    ("edges", false, "List current edges/peers"),
    ("supernodes", false, "List current supernodes"),
    ("info", false, "Provide basic edge information"),
    ("timestamps", false, "Event timestamps"),
    ("packetstats", false, "traffic counters"),
    ("post.test", false, "send a test event"),
    ("help", true, "Show JSON commands"),
    ("help.events", false, "Show available Subscribe topics"),
    ("drops", false, "Dropped packets by reason (n2n-rs)"),
];

const TEXT_HELP: &str = "Help for edge management console:\n\
\tstop    | Gracefully exit edge\n\
\thelp    | This help message\n\
\t+verb   | Increase verbosity of logging\n\
\t-verb   | Decrease verbosity of logging\n\
\tr ...   | start query with JSON reply\n\
\tw ...   | start update with JSON reply\n\
\ts ...   | subscribe to event channel JSON reply\n\
\t<enter> | Display statistics\n\n";

/// The management side of an edge: password, verbosity, start time.
#[derive(Debug)]
pub(super) struct MgmtState {
    password: crate::mgmt::Password,
    /// Current verbosity (changed by `+verb`, `-verb`, `w verbose`).
    pub verbosity: u8,
    start: Now,
}

impl MgmtState {
    pub(super) fn new(cfg: &EdgeConfig, now: Now) -> Self {
        Self {
            password: crate::mgmt::Password::new(&cfg.mgmt_password),
            verbosity: cfg.verbosity,
            start: now,
        }
    }
}

/// Unix seconds of a monotonic instant, given the current `now`.
fn unix_of(now: Now, t: Option<Instant>) -> u64 {
    match t {
        Some(t) => {
            let ago = now.mono.saturating_duration_since(t).as_micros() as u64;
            now.unix_us.saturating_sub(ago) / 1_000_000
        }
        None => 0,
    }
}

fn secs_ago(now: Now, t: Instant) -> u64 {
    now.mono.saturating_duration_since(t).as_secs()
}

fn mac_upper(m: Mac) -> String {
    m.to_string().to_ascii_uppercase()
}

fn netmask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

fn ip4addr(a: DevAddr) -> String {
    if a.ip.is_unspecified() {
        String::new()
    } else {
        a.to_string()
    }
}

fn sock_str(s: Option<SocketAddr>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

impl Edge {
    /// One management datagram from `from` (127.0.0.1 only; the driver
    /// enforces that). Returns the reply datagrams and what to do.
    pub fn handle_mgmt(&mut self, now: Now, from: SocketAddr, request: &[u8]) -> MgmtOutcome {
        let _ = from;
        if request.starts_with(b"stop") {
            return MgmtOutcome {
                replies: Vec::new(),
                action: Some(MgmtAction::Stop),
            };
        }
        if request.starts_with(b"help") || request.starts_with(b"?") {
            return MgmtOutcome {
                replies: vec![TEXT_HELP.to_owned()],
                action: None,
            };
        }
        if request.starts_with(b"+verb") {
            self.mgmt.verbosity = self.mgmt.verbosity.saturating_add(1);
            return MgmtOutcome {
                replies: vec![format!("> +OK traceLevel={}\n", self.mgmt.verbosity)],
                action: Some(MgmtAction::SetVerbosity(self.mgmt.verbosity)),
            };
        }
        if request.starts_with(b"-verb") {
            if self.mgmt.verbosity == 0 {
                return MgmtOutcome {
                    replies: vec![format!("> -NOK traceLevel={}\n", self.mgmt.verbosity)],
                    action: None,
                };
            }
            self.mgmt.verbosity -= 1;
            return MgmtOutcome {
                replies: vec![format!("> -OK traceLevel={}\n", self.mgmt.verbosity)],
                action: Some(MgmtAction::SetVerbosity(self.mgmt.verbosity)),
            };
        }
        match parse_request(request, Flavor::Edge) {
            Request::Text(_) => MgmtOutcome {
                replies: self.text_page(now),
                action: None,
            },
            Request::Bad { tag, error } => {
                self.ctx.stats.drop(DropReason::MgmtRejected);
                MgmtOutcome {
                    replies: vec![error_line(tag, error)],
                    action: None,
                }
            }
            Request::Json(j) => self.json(now, &j),
        }
    }

    fn json(&mut self, now: Now, j: &JsonRequest<'_>) -> MgmtOutcome {
        let err = |e| MgmtOutcome {
            replies: vec![error_line(j.tag, e)],
            action: None,
        };
        if let Err(e) = self.mgmt.password.authorise(j) {
            self.ctx.stats.drop(DropReason::MgmtRejected);
            return err(e);
        }
        if j.kind == ReqKind::Subscribe {
            // The topic is the command field (C's argv0).
            return match Topic::from_name(j.cmd) {
                None => err(MgmtError::UnknownTopic),
                Some(topic) => MgmtOutcome {
                    replies: Vec::new(),
                    action: Some(MgmtAction::Subscribe {
                        topic,
                        tag: j.tag.to_owned(),
                    }),
                },
            };
        }
        let Some(&(cmd, writable, _)) = COMMANDS.iter().find(|(c, _, _)| *c == j.cmd) else {
            return err(MgmtError::UnknownCmd);
        };
        if j.kind == ReqKind::Write && !writable {
            return err(MgmtError::ReadOnly);
        }
        let mut action = None;
        let mut r = Reply::begin(j.tag, cmd);
        match cmd {
            // Errors raised inside a command come between begin and end (C).
            "reload_communities" => r.error(MgmtError::Unimplemented),
            "communities" => {
                if self.ctx.he().is_some() {
                    r.error(MgmtError::NoAccess);
                } else {
                    let c = self.ctx.cfg.community.to_string();
                    r.row(&[("community", c.as_str().into())]);
                }
            }
            "stop" => {
                let keep = if j.kind == ReqKind::Write {
                    action = Some(MgmtAction::Stop);
                    0u8
                } else {
                    1
                };
                r.row(&[("keep_running", keep.into())]);
            }
            "verbose" => {
                if j.kind == ReqKind::Write
                    && let Ok(v) = j.args.trim().parse::<u8>()
                {
                    self.mgmt.verbosity = v;
                    action = Some(MgmtAction::SetVerbosity(v));
                }
                r.row(&[("traceLevel", self.mgmt.verbosity.into())]);
            }
            "edges" => return self.json_edges(now, j.tag),
            "supernodes" => self.json_supernodes(now, &mut r),
            "info" => {
                let mac = mac_upper(self.ctx.me.mac);
                let ip = if self.ctx.me.dev_addr.ip.is_unspecified() {
                    String::new()
                } else {
                    self.ctx.me.dev_addr.ip.to_string()
                };
                let mask = netmask(self.ctx.me.dev_addr.prefix).to_string();
                let sock = self
                    .ctx
                    .cfg
                    .preferred_local
                    .or(self.ctx.me.local_addr)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "0.0.0.0:0".to_owned());
                r.row(&[
                    ("version", VERSION.into()),
                    ("macaddr", mac.as_str().into()),
                    ("ip4addr", ip.as_str().into()),
                    ("ip4netmask", mask.as_str().into()),
                    ("sockaddr", sock.as_str().into()),
                ]);
            }
            "timestamps" => {
                r.row(&[
                    ("start_time", now_secs(self.mgmt.start).into()),
                    ("last_super", unix_of(now, self.reg.last_sup()).into()),
                    ("last_p2p", unix_of(now, self.peers.last_p2p_rx()).into()),
                ]);
            }
            "packetstats" => {
                let s = &self.ctx.stats;
                for (ty, tx, rx) in [
                    ("transop", s.transop_tx, s.transop_rx),
                    ("p2p", s.p2p_tx, s.p2p_rx),
                    ("super", s.super_tx, s.super_rx),
                    (
                        "super_broadcast",
                        s.super_broadcast_tx,
                        s.super_broadcast_rx,
                    ),
                ] {
                    r.row(&[
                        ("type", ty.into()),
                        ("tx_pkt", tx.into()),
                        ("rx_pkt", rx.into()),
                    ]);
                }
            }
            "drops" => {
                for (reason, n) in self.ctx.stats.nonzero_drops() {
                    r.row(&[
                        ("type", "drop".into()),
                        ("reason", reason.name().into()),
                        ("count", n.into()),
                    ]);
                }
            }
            "post.test" => {
                r.row(&[("sending", "test".into())]);
                action = Some(MgmtAction::PostTest {
                    text: j.args.to_owned(),
                });
            }
            "help" => {
                for (c, _, h) in COMMANDS {
                    r.row(&[("cmd", (*c).into()), ("help", (*h).into())]);
                }
            }
            "help.events" => {
                return MgmtOutcome {
                    replies: Vec::new(),
                    action: Some(MgmtAction::HelpEvents {
                        tag: j.tag.to_owned(),
                    }),
                };
            }
            _ => return err(MgmtError::UnknownCmd),
        }
        MgmtOutcome {
            replies: r.end(),
            action,
        }
    }

    fn json_edges(&self, now: Now, tag: &str) -> MgmtOutcome {
        let mut r = Reply::begin(tag, "edges");
        let mut rows = |mode: &str, t: &PeerTable| {
            let mut v: Vec<(&Mac, &Peer)> = t.iter().collect();
            v.sort_by_key(|(m, _)| **m);
            for (m, p) in v {
                let ip = ip4addr(p.dev_addr);
                let mac = mac_upper(*m);
                let sock = sock_str(p.sock);
                let desc = p.desc.to_string();
                r.row(&[
                    ("mode", mode.into()),
                    ("ip4addr", ip.as_str().into()),
                    ("purgeable", 1u8.into()),
                    ("local", p.local.into()),
                    ("macaddr", mac.as_str().into()),
                    ("sockaddr", sock.as_str().into()),
                    ("desc", desc.as_str().into()),
                    ("last_p2p", unix_of(now, p.last_p2p).into()),
                    ("last_sent_query", unix_of(now, p.last_sent_query).into()),
                    ("last_seen", unix_of(now, Some(p.last_seen)).into()),
                ]);
            }
        };
        rows("pSp", self.peers.pending());
        rows("p2p", self.peers.known());
        let mut lines = r.end();
        // C puts literal newlines before these two fields.
        for l in lines.iter_mut().filter(|l| l.contains("\"_type\":\"row\"")) {
            *l = l
                .replace(",\"last_sent_query\":", ",\n\"last_sent_query\":")
                .replace(",\"last_seen\":", ",\n\"last_seen\":");
        }
        MgmtOutcome {
            replies: lines,
            action: None,
        }
    }

    fn selection_str(&self, i: usize) -> String {
        let Some(sn) = self.reg.supernodes().get(i) else {
            return String::new();
        };
        if sn.criterion >= CRIT_GOOD {
            return String::new();
        }
        match self.ctx.cfg.selection {
            Selection::Load => format!("load = {:8}", sn.criterion),
            Selection::Rtt => format!("rtt = {:6} ms", sn.criterion),
            Selection::Mac => {
                if i == self.reg.current() {
                    "active".to_owned()
                } else {
                    "standby".to_owned()
                }
            }
        }
    }

    fn current_flag(&self, i: usize) -> u8 {
        if i != self.reg.current() {
            0
        } else if self.reg.sn_registered() {
            1
        } else {
            2
        }
    }

    fn json_supernodes(&self, now: Now, r: &mut Reply) {
        for (i, sn) in self.reg.supernodes().iter().enumerate() {
            let version = sn.version_str();
            let mac = mac_upper(sn.mac);
            let sock = sn
                .addr
                .map(|a| a.to_string())
                .or_else(|| sn.name.clone())
                .unwrap_or_default();
            let sel = self.selection_str(i);
            let fields = [
                ("version", version.as_str().into()),
                ("purgeable", sn.purgeable.into()),
                ("current", self.current_flag(i).into()),
                ("macaddr", mac.as_str().into()),
                ("sockaddr", sock.as_str().into()),
                ("selection", Value::Str(&sel)),
                ("last_seen", unix_of(now, sn.last_seen).into()),
                ("uptime", sn.uptime.into()),
                // `-S2` only (C's rows have no such field): how it is reached.
                ("proto", "TCP".into()),
            ];
            let n = if self.reg.is_tcp() {
                fields.len()
            } else {
                fields.len() - 1
            };
            r.row(fields.get(..n).unwrap_or(&fields));
        }
    }

    /// The legacy text status page (empty request line).
    fn text_page(&self, now: Now) -> Vec<String> {
        let mut out = Vec::new();
        let rule_eq = "=".repeat(109);
        let rule_dash = "-".repeat(109);
        let community = if self.ctx.he().is_some() {
            "-- header encrypted --".to_owned()
        } else {
            self.ctx.cfg.community.to_string()
        };
        let mut s = String::new();
        let _ = writeln!(s, "COMMUNITY '{community}'\n");
        let _ = writeln!(
            s,
            " ### | TAP             | MAC               | EDGE                  | HINT            | LAST SEEN |     UPTIME"
        );
        let _ = writeln!(s, "{rule_eq}");
        out.push(core::mem::take(&mut s));
        let peer_line = |n: usize, m: &Mac, p: &Peer| {
            let tap = if p.dev_addr.ip.is_unspecified() {
                String::new()
            } else {
                p.dev_addr.ip.to_string()
            };
            format!(
                "{:>4} | {:<15} | {:<17} | {:<21} | {:<15} | {:>9} |\n",
                n,
                tap,
                if m.is_null() {
                    String::new()
                } else {
                    mac_upper(*m)
                },
                sock_str(p.sock),
                p.desc.to_string(),
                secs_ago(now, p.last_seen)
            )
        };
        let _ = writeln!(s, "SUPERNODE FORWARD");
        let mut pending: Vec<_> = self.peers.pending().iter().collect();
        pending.sort_by_key(|(m, _)| **m);
        for (i, (m, p)) in pending.iter().enumerate() {
            s.push_str(&peer_line(i + 1, m, p));
        }
        let _ = writeln!(s, "{rule_dash}");
        let _ = writeln!(s, "PEER TO PEER");
        let mut known: Vec<_> = self.peers.known().iter().collect();
        known.sort_by_key(|(m, _)| **m);
        for (i, (m, p)) in known.iter().enumerate() {
            s.push_str(&peer_line(i + 1, m, p));
        }
        let _ = writeln!(s, "{rule_dash}");
        out.push(core::mem::take(&mut s));
        let _ = writeln!(s, "SUPERNODES");
        for (i, sn) in self.reg.supernodes().iter().enumerate() {
            let seen = sn
                .last_seen
                .map(|t| secs_ago(now, t).to_string())
                .unwrap_or_default();
            let up = if sn.last_seen.is_some() {
                sn.uptime.to_string()
            } else {
                String::new()
            };
            let sock = sn
                .addr
                .map(|a| a.to_string())
                .or_else(|| sn.name.clone())
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "{:<19} {}{} | {:<17} | {:<21} | {:<15} | {:>9} | {:>10}",
                sn.version_str(),
                if sn.purgeable { ' ' } else { 'l' },
                if i == self.reg.current() { '*' } else { ' ' },
                mac_upper(sn.mac),
                sock,
                self.selection_str(i),
                seen,
                up
            );
        }
        let _ = writeln!(s, "{rule_eq}");
        let st = &self.ctx.stats;
        let _ = writeln!(
            s,
            "uptime {} | pend_peers {} | known_peers {} | transop {},{}",
            secs_ago(now, self.mgmt.start.mono),
            self.peers.pending().len(),
            self.peers.known().len(),
            st.transop_tx,
            st.transop_rx
        );
        let _ = writeln!(
            s,
            "super {},{} | p2p {},{}",
            st.super_tx, st.super_rx, st.p2p_tx, st.p2p_rx
        );
        // C prints `now - t` with t = 0 for "never" (the Unix time).
        let ago = |t: Option<Instant>| match t {
            Some(t) => secs_ago(now, t),
            None => now.unix_secs(),
        };
        let _ = writeln!(
            s,
            "last_super {} sec ago | last_p2p {} sec ago",
            ago(self.reg.last_sup()),
            ago(self.peers.last_p2p_rx())
        );
        let _ = write!(s, "\nType \"help\" to see more commands.\n\n");
        out.push(s);
        out
    }
}

fn now_secs(n: Now) -> u64 {
    n.unix_secs()
}
