//! Supernode management (cli.md §5.6): the JSON API with C's exact field
//! order and the legacy text status page.

use core::fmt::Write as _;
use std::net::SocketAddr;

use n2n_proto::types::{Community, Mac};

use super::core::Supernode;
use crate::Now;
use crate::mgmt::{Flavor, JsonRequest, MgmtError, Reply, ReqKind, Request, Value, error_line};

/// What the driver has to do after a management request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MgmtAction {
    /// `w … stop`: shut down.
    Stop,
    /// `w … verbose N`: new log level (already applied to the core).
    SetVerbosity(u8),
    /// Reload the community file: read and parse it, call
    /// [`Supernode::set_communities`], then send
    /// [`ReloadRequest::replies`] to the requester.
    ReloadCommunities(ReloadRequest),
}

/// The answer still owed for a `reload_communities` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRequest {
    /// JSON tag, or `None` for the legacy text command.
    tag: Option<String>,
}

impl ReloadRequest {
    /// The reply datagrams once the reload succeeded (`ok`) or failed.
    pub fn replies(&self, ok: bool) -> Vec<String> {
        match &self.tag {
            None if ok => vec!["OK.\n".to_owned()],
            None => vec![
                "Error while re-loading community file (not found or no valid content)\n"
                    .to_owned(),
            ],
            Some(tag) => {
                let mut r = Reply::begin(tag, "reload_communities");
                r.row(&[("ok", Value::Int(i64::from(!ok)))]);
                r.end()
            }
        }
    }
}

/// Result of [`Supernode::handle_mgmt`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MgmtOutcome {
    /// Reply datagrams, in order, to the requester.
    pub replies: Vec<String>,
    /// Something for the driver to do.
    pub action: Option<MgmtAction>,
}

/// The JSON commands, in C's help order: (name, writable, help).
const COMMANDS: [(&str, bool, &str); 10] = [
    ("supernodes", false, "Reserved for edge"),
    ("stop", true, "Gracefully exit edge"),
    ("verbose", true, "Manage verbosity level"),
    (
        "reload_communities",
        true,
        "Reloads communities and user's public keys",
    ),
    ("communities", false, "List current communities"),
    ("edges", false, "List current edges/peers"),
    ("timestamps", false, "Event timestamps"),
    ("packetstats", false, "Traffic statistics"),
    ("help", true, "Show JSON commands"),
    ("drops", false, "Dropped packets by reason (n2n-rs)"),
];

const TEXT_HELP: &str = "Help for supernode management console:\n\
\thelp                 | This help message\n\
\treload_communities   | Reloads communities and user's public keys\n\
\t<enter>              | Display status and statistics\n";

const RULE_DOUBLE: &str = "========================================================================================================\n";
const RULE_SINGLE: &str = "--------------------------------------------------------------------------------------------------------\n";

/// MAC as C's `macaddr_str` prints it (upper case).
fn mac_upper(m: &Mac) -> String {
    let b = m.0;
    format!(
        "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

fn name_str(c: &Community) -> String {
    String::from_utf8_lossy(c.name_bytes()).into_owned()
}

/// C's `strtoul(s, NULL, 0)`: decimal, `0x` hex or `0` octal prefix,
/// leading white space, stops at the first invalid digit, 0 if none.
fn c_strtoul(s: &str) -> u64 {
    let s = s.trim_start();
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s.strip_prefix('+').unwrap_or(s))
    };
    let mut v: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        v = v
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
    }
    v
}

impl Supernode {
    /// Handle one management datagram (UDP 5645) from `from`.
    pub fn handle_mgmt(&mut self, now: Now, _from: SocketAddr, request: &[u8]) -> MgmtOutcome {
        match crate::mgmt::parse_request(request, Flavor::Supernode) {
            Request::Bad { tag, error } => MgmtOutcome {
                replies: vec![error_line(tag, error)],
                action: None,
            },
            Request::Json(req) => self.handle_json(&req),
            Request::Text(line) => self.handle_text(now, line),
        }
    }

    fn handle_text(&mut self, now: Now, line: &str) -> MgmtOutcome {
        if line.starts_with("help") || line.starts_with('?') {
            return MgmtOutcome {
                replies: vec![TEXT_HELP.to_owned()],
                action: None,
            };
        }
        if line.starts_with("reload_communities") {
            if self.cfg.community_file.is_none() {
                return MgmtOutcome {
                    replies: vec![
                        "No community file provided (-c command line option)\n".to_owned(),
                    ],
                    action: None,
                };
            }
            return MgmtOutcome {
                replies: Vec::new(),
                action: Some(MgmtAction::ReloadCommunities(ReloadRequest { tag: None })),
            };
        }
        MgmtOutcome {
            replies: self.status_page(now),
            action: None,
        }
    }

    /// The legacy text status page (one datagram per community header and
    /// per edge, like C).
    fn status_page(&self, now: Now) -> Vec<String> {
        let now_s = now.unix_secs();
        let mut out = Vec::new();
        let mut cur = String::new();
        cur.push_str(
            " ### | TAP                 | MAC               | EDGE                      | HINT            | LAST SEEN\n",
        );
        cur.push_str(RULE_DOUBLE);
        let mut n_comm = 0usize;
        let mut n_edges = 0usize;
        for entry in self.listing() {
            if n_comm > 0 {
                cur.push_str(RULE_SINGLE);
            }
            n_comm += 1;
            let Some(c) = entry else {
                cur.push_str("FEDERATION '-/-'\n");
                out.push(std::mem::take(&mut cur));
                for (i, p) in self
                    .fed
                    .peers
                    .iter()
                    .filter(|p| p.addr.is_some())
                    .enumerate()
                {
                    n_edges += 1;
                    let sock = p.addr.map(|a| a.to_string()).unwrap_or_default();
                    let seen = now_s.saturating_sub(p.last_seen_unix);
                    out.push(format!(
                        "{:4} | {:<19} | {:<17} | {:<21} {:<3} | {:<15} | {:>9}\n",
                        i + 1,
                        "",
                        mac_upper(&p.mac),
                        sock,
                        "",
                        "",
                        format!("{seen:9}"),
                    ));
                }
                continue;
            };
            let kind = if c.fixed {
                "FIXED NAME COMMUNITY"
            } else {
                "COMMUNITY"
            };
            let _ = writeln!(cur, "{kind} '{}'", name_str(&c.field));
            out.push(std::mem::take(&mut cur));
            let mut edges: Vec<_> = c.edges.values().collect();
            edges.sort_by_key(|e| e.seq);
            for (i, e) in edges.iter().enumerate() {
                n_edges += 1;
                let tap = if e.dev_addr.ip.is_unspecified() {
                    String::new()
                } else {
                    e.dev_addr.to_string()
                };
                let seen = now_s.saturating_sub(e.last_seen_unix);
                out.push(format!(
                    "{:4} | {:<19} | {:<17} | {:<21} {:<3} | {:<15} | {:>9}\n",
                    i + 1,
                    tap,
                    mac_upper(&e.mac),
                    e.sock.addr().to_string(),
                    if e.sock.conn().is_some() { "TCP" } else { "" },
                    String::from_utf8_lossy(e.desc.name_bytes()),
                    format!("{seen:9}"),
                ));
            }
        }
        let st = self.stats();
        cur.push_str(RULE_DOUBLE);
        let _ = writeln!(
            cur,
            "uptime {} | edges {} | reg_sup {} | reg_nak {} | errors {} ",
            now_s.saturating_sub(self.start.unix_secs()),
            n_edges,
            st.reg_super,
            st.reg_super_nak,
            st.errors
        );
        let _ = writeln!(
            cur,
            "fwd {} | broadcast {} | cur_cmnts {}",
            st.fwd, st.broadcast, n_comm
        );
        let _ = write!(
            cur,
            "last_fwd  {} sec ago | last reg  {} sec ago\n\n",
            now_s.saturating_sub(st.last_fwd),
            now_s.saturating_sub(st.last_reg_super)
        );
        out.push(cur);
        out
    }

    /// Communities in C's hash order, `None` standing for the federation.
    fn listing(&self) -> Vec<Option<&super::edges::CommunityState>> {
        let mut v: Vec<(u64, Option<&super::edges::CommunityState>)> = self
            .communities_in_order()
            .into_iter()
            .map(|c| (c.seq, Some(c)))
            .collect();
        v.push((self.federation_seq, None));
        v.sort_by_key(|(s, _)| *s);
        v.into_iter().map(|(_, c)| c).collect()
    }

    fn handle_json(&mut self, req: &JsonRequest<'_>) -> MgmtOutcome {
        let err = |e: MgmtError| MgmtOutcome {
            replies: vec![error_line(req.tag, e)],
            action: None,
        };
        if let Err(e) = self.cfg.mgmt_password.authorise(req) {
            return err(e);
        }
        let Some(&(cmd, writable, _)) = COMMANDS.iter().find(|(c, _, _)| *c == req.cmd) else {
            return err(MgmtError::UnknownCmd);
        };
        let write = req.kind == ReqKind::Write;
        if write && !writable {
            return err(MgmtError::ReadOnly);
        }
        let mut r = Reply::begin(req.tag, cmd);
        let mut action = None;
        // Errors raised inside a command come between begin and end (C).
        let mut inner_error = None;
        match cmd {
            "supernodes" => inner_error = Some(MgmtError::Unimplemented),
            "stop" => {
                if write {
                    self.keep_running = false;
                    action = Some(MgmtAction::Stop);
                }
                r.row(&[("keep_running", Value::from(self.keep_running))]);
            }
            "verbose" => {
                if write && !req.args.is_empty() {
                    let v = u8::try_from(c_strtoul(req.args)).unwrap_or(u8::MAX);
                    self.verbosity = v;
                    action = Some(MgmtAction::SetVerbosity(v));
                }
                r.row(&[("traceLevel", Value::from(self.verbosity))]);
            }
            "reload_communities" => {
                if !write {
                    inner_error = Some(MgmtError::WriteOnly);
                } else if self.cfg.community_file.is_none() {
                    inner_error = Some(MgmtError::NoFile);
                } else {
                    // The driver reads the file, then sends the full reply.
                    return MgmtOutcome {
                        replies: Vec::new(),
                        action: Some(MgmtAction::ReloadCommunities(ReloadRequest {
                            tag: Some(req.tag.to_owned()),
                        })),
                    };
                }
            }
            "communities" => {
                for entry in self.listing() {
                    match entry {
                        None => r.row(&[
                            ("community", Value::Str("-/-")),
                            ("purgeable", Value::Int(0)),
                            ("is_federation", Value::Int(1)),
                            ("ip4addr", Value::Str("")),
                        ]),
                        Some(c) => {
                            let name = name_str(&c.field);
                            let subnet = c.subnet.map(|s| s.to_string()).unwrap_or_default();
                            r.row(&[
                                ("community", Value::Str(&name)),
                                ("purgeable", Value::from(!c.fixed)),
                                ("is_federation", Value::Int(0)),
                                ("ip4addr", Value::Str(&subnet)),
                            ]);
                        }
                    }
                }
            }
            "edges" => {
                // The federation's members first, as C lists them.
                for p in self.fed.peers.iter().filter(|p| p.addr.is_some()) {
                    let mac = if p.mac.is_null() {
                        String::new()
                    } else {
                        mac_upper(&p.mac)
                    };
                    let sock = p.addr.map(|a| a.to_string()).unwrap_or_default();
                    r.row(&[
                        ("community", Value::Str("-/-")),
                        ("ip4addr", Value::Str("")),
                        ("purgeable", Value::from(p.name.is_none())),
                        ("macaddr", Value::Str(&mac)),
                        ("sockaddr", Value::Str(&sock)),
                        ("proto", Value::Str("UDP")),
                        ("desc", Value::Str("")),
                        ("last_seen", Value::from(p.last_seen_unix)),
                    ]);
                }
                for e in self.edges() {
                    let name = name_str(&e.community);
                    let ip = if e.dev_addr.ip.is_unspecified() {
                        String::new()
                    } else {
                        e.dev_addr.to_string()
                    };
                    let mac = if e.mac.is_null() {
                        String::new()
                    } else {
                        mac_upper(&e.mac)
                    };
                    let sock = e.sock.to_string();
                    let desc = String::from_utf8_lossy(e.desc.name_bytes()).into_owned();
                    r.row(&[
                        ("community", Value::Str(&name)),
                        ("ip4addr", Value::Str(&ip)),
                        ("purgeable", Value::Int(1)),
                        ("macaddr", Value::Str(&mac)),
                        ("sockaddr", Value::Str(&sock)),
                        ("proto", Value::Str(if e.tcp { "TCP" } else { "UDP" })),
                        ("desc", Value::Str(&desc)),
                        ("last_seen", Value::from(e.last_seen_unix)),
                    ]);
                }
            }
            "timestamps" => {
                let st = self.stats();
                r.row(&[
                    ("start_time", Value::from(self.start.unix_secs())),
                    ("last_fwd", Value::from(st.last_fwd)),
                    ("last_reg_super", Value::from(st.last_reg_super)),
                ]);
            }
            "packetstats" => {
                let st = self.stats().clone();
                r.row(&[("type", "forward".into()), ("tx_pkt", st.fwd.into())]);
                r.row(&[
                    ("type", "broadcast".into()),
                    ("tx_pkt", st.broadcast.into()),
                ]);
                r.row(&[
                    ("type", "reg_super".into()),
                    ("rx_pkt", st.reg_super.into()),
                    ("nak", st.reg_super_nak.into()),
                ]);
                r.row(&[("type", "errors".into()), ("tx_pkt", st.errors.into())]);
            }
            "drops" => {
                let st = self.stats().clone();
                for (reason, count) in st.drops() {
                    r.row(&[
                        ("type", "drop".into()),
                        ("reason", reason.name().into()),
                        ("count", count.into()),
                    ]);
                }
            }
            _ => {
                for (c, _, h) in COMMANDS {
                    r.row(&[("cmd", Value::Str(c)), ("help", Value::Str(h))]);
                }
            }
        }
        let mut replies = r.end();
        if let Some(e) = inner_error {
            let at = replies.len().saturating_sub(1);
            replies.insert(at, error_line(req.tag, e));
        }
        MgmtOutcome { replies, action }
    }
}

#[cfg(test)]
mod tests {
    use super::c_strtoul;

    #[test]
    fn strtoul_like_c() {
        assert_eq!(c_strtoul("3"), 3);
        assert_eq!(c_strtoul(" 0x10"), 16);
        assert_eq!(c_strtoul("010"), 8);
        assert_eq!(c_strtoul("7abc"), 7);
        assert_eq!(c_strtoul("abc"), 0);
        assert_eq!(c_strtoul(""), 0);
        assert_eq!(c_strtoul("99999999999999999999999"), u64::MAX);
    }
}
