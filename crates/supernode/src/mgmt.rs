//! Management requests that need no supernode core state (cli.md §5):
//! `help`, `verbose`, `stop` and error replies, with C's command table.
//!
//! The result has the shape of the core's future
//! `handle_mgmt(now, from, request) -> MgmtOutcome` (CORE-API.md), so the
//! driver can switch to the core without changing how replies are sent.
//! Commands that need the core's tables (`communities`, `edges`,
//! `timestamps`, `packetstats`, `reload_communities`, the text status) are
//! answered with the error `unimplemented` / a text line saying so, never
//! with made-up data.

use n2n_core::mgmt::{
    Flavor, JsonRequest, MgmtError, Password, Reply, ReqKind, Request, error_line, parse_request,
};

/// What the driver must do after a management request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtAction {
    /// Stop the supernode (clean exit).
    Stop,
    /// Set the C trace level.
    SetVerbosity(u8),
}

/// Replies (one datagram each) and an optional action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MgmtOutcome {
    /// Reply datagrams, in order.
    pub replies: Vec<String>,
    /// Action for the driver.
    pub action: Option<MgmtAction>,
}

struct Command {
    name: &'static str,
    help: &'static str,
    write_ok: bool,
}

/// C's supernode command table, in the order C lists it.
const COMMANDS: &[Command] = &[
    Command {
        name: "supernodes",
        help: "Reserved for edge",
        write_ok: false,
    },
    Command {
        name: "stop",
        help: "Gracefully exit edge",
        write_ok: true,
    },
    Command {
        name: "verbose",
        help: "Manage verbosity level",
        write_ok: true,
    },
    Command {
        name: "reload_communities",
        help: "Reloads communities and user's public keys",
        write_ok: true,
    },
    Command {
        name: "communities",
        help: "List current communities",
        write_ok: false,
    },
    Command {
        name: "edges",
        help: "List current edges/peers",
        write_ok: false,
    },
    Command {
        name: "timestamps",
        help: "Event timestamps",
        write_ok: false,
    },
    Command {
        name: "packetstats",
        help: "Traffic statistics",
        write_ok: false,
    },
    Command {
        name: "help",
        help: "Show JSON commands",
        write_ok: false,
    },
];

/// Text reply to `help` / `?`.
pub const TEXT_HELP: &str = "Help for supernode management console:\n\
    \thelp               | This help message\n\
    \treload_communities | Reloads communities and user's public keys\n\
    \t<enter>            | Display status and statistics\n";

/// C's `strtoul(s, NULL, 0)`: optional sign, `0x` hex, leading-zero octal
/// or decimal, stopping at the first invalid character; 0 if none.
pub fn c_strtoul(s: &str) -> u64 {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let mut v: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        v = v
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
    }
    if neg { v.wrapping_neg() } else { v }
}

/// Answer a management datagram without core state.
/// `trace_level` is the current log level (for `verbose`).
pub fn handle_local(password: &Password, trace_level: u32, request: &[u8]) -> MgmtOutcome {
    match parse_request(request, Flavor::Supernode) {
        Request::Bad { tag, error } => MgmtOutcome {
            replies: vec![error_line(tag, error)],
            action: None,
        },
        Request::Text(line) => {
            let text = if line.starts_with("help") || line.starts_with('?') {
                TEXT_HELP.to_owned()
            } else if line.starts_with("reload_communities") {
                "reload_communities is not implemented yet\n".to_owned()
            } else {
                "status not available: the supernode core is not implemented yet\n".to_owned()
            };
            MgmtOutcome {
                replies: vec![text],
                action: None,
            }
        }
        Request::Json(req) => handle_json(password, trace_level, &req),
    }
}

fn handle_json(password: &Password, trace_level: u32, req: &JsonRequest<'_>) -> MgmtOutcome {
    let err = |e: MgmtError| MgmtOutcome {
        replies: vec![error_line(req.tag, e)],
        action: None,
    };
    if let Err(e) = password.authorise(req) {
        return err(e);
    }
    let Some(cmd) = COMMANDS.iter().find(|c| c.name == req.cmd) else {
        return err(MgmtError::UnknownCmd);
    };
    let write = req.kind != ReqKind::Read;
    if write && !cmd.write_ok {
        return err(MgmtError::ReadOnly);
    }
    let mut reply = Reply::begin(req.tag, req.cmd);
    let mut action = None;
    match cmd.name {
        "help" => {
            for c in COMMANDS {
                reply.row(&[("cmd", c.name.into()), ("help", c.help.into())]);
            }
        }
        "stop" => {
            if write {
                action = Some(MgmtAction::Stop);
            }
            reply.row(&[("keep_running", (!write).into())]);
        }
        "verbose" => {
            let mut level = trace_level;
            if write && !req.args.is_empty() {
                let v = u8::try_from(c_strtoul(req.args)).unwrap_or(u8::MAX);
                action = Some(MgmtAction::SetVerbosity(v));
                level = u32::from(v);
            }
            reply.row(&[("traceLevel", level.into())]);
        }
        "reload_communities" if !write => return err(MgmtError::WriteOnly),
        // Everything else needs the core's state.
        _ => return err(MgmtError::Unimplemented),
    }
    MgmtOutcome {
        replies: reply.end(),
        action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(req: &str) -> MgmtOutcome {
        handle_local(&Password::default(), 2, req.as_bytes())
    }

    #[test]
    fn help_matches_the_c_capture() {
        // vectors/n2n-3.1.1/aes/mgmt/supernode.txt, "r 5 help".
        let capture =
            std::fs::read_to_string("/work/shared/vectors/n2n-3.1.1/aes/mgmt/supernode.txt");
        let out = ask("r 5 help");
        assert_eq!(out.action, None);
        assert_eq!(out.replies.len(), COMMANDS.len() + 2);
        assert_eq!(
            out.replies[0],
            "{\"_tag\":\"5\",\"_type\":\"begin\",\"cmd\":\"help\"}\n"
        );
        assert_eq!(
            out.replies[1],
            "{\"_tag\":\"5\",\"_type\":\"row\",\"cmd\":\"supernodes\",\"help\":\"Reserved for edge\"}\n"
        );
        assert_eq!(
            out.replies[10],
            "{\"_tag\":\"5\",\"_type\":\"end\",\"cmd\":\"help\"}\n"
        );
        if let Ok(capture) = capture {
            let section: Vec<&str> = capture
                .split("### sn: r 5 help\n")
                .nth(1)
                .unwrap()
                .lines()
                .take_while(|l| !l.starts_with("###"))
                .collect();
            let ours: Vec<&str> = out.replies.iter().map(|l| l.trim_end()).collect();
            assert_eq!(ours, section);
        }
    }

    #[test]
    fn verbose_read_and_write() {
        let out = ask("r 1 verbose");
        assert_eq!(
            out.replies[1],
            "{\"_tag\":\"1\",\"_type\":\"row\",\"traceLevel\":2}\n"
        );
        assert_eq!(out.action, None);
        assert_eq!(
            ask("w 1 verbose 3").replies[0],
            error_line("1", MgmtError::BadAuth)
        );
        let out = ask("w 1:1:n2n verbose 4");
        assert_eq!(out.action, Some(MgmtAction::SetVerbosity(4)));
        assert!(out.replies[1].contains("\"traceLevel\":4"));
        assert_eq!(
            ask("w 1:1:n2n verbose 0x3").action,
            Some(MgmtAction::SetVerbosity(3))
        );
        // w without argument only reports.
        assert_eq!(ask("w 1:1:n2n verbose").action, None);
        assert_eq!(
            ask("r 1:1:bad verbose").replies[0],
            error_line("1", MgmtError::BadAuth)
        );
    }

    #[test]
    fn stop_needs_write_and_password() {
        let out = ask("r 7 stop");
        assert_eq!(out.action, None);
        assert!(out.replies[1].contains("\"keep_running\":1"));
        assert_eq!(ask("w 7 stop").action, None);
        let out = ask("w 7:1:n2n stop");
        assert_eq!(out.action, Some(MgmtAction::Stop));
        assert!(out.replies[1].contains("\"keep_running\":0"));
        let pw = Password::new("secret");
        assert_eq!(handle_local(&pw, 2, b"w 7:1:n2n stop").action, None);
        assert_eq!(
            handle_local(&pw, 2, b"w 7:1:secret stop").action,
            Some(MgmtAction::Stop)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            ask("r 2 nonsense").replies,
            [error_line("2", MgmtError::UnknownCmd)]
        );
        assert_eq!(
            ask("w 2:1:n2n help").replies,
            [error_line("2", MgmtError::ReadOnly)]
        );
        assert_eq!(
            ask("x 2 help").replies,
            [error_line("-1", MgmtError::BadType)]
        );
        assert_eq!(ask("r 2").replies, [error_line("2", MgmtError::NoCmd)]);
        assert_eq!(
            ask("r 2 reload_communities").replies,
            [error_line("2", MgmtError::WriteOnly)]
        );
        assert_eq!(
            ask("s 2 help").replies,
            [error_line("2", MgmtError::BadAuth)]
        );
        for needs_core in [
            "edges",
            "communities",
            "timestamps",
            "packetstats",
            "supernodes",
        ] {
            assert_eq!(
                ask(&format!("r 3 {needs_core}")).replies,
                [error_line("3", MgmtError::Unimplemented)]
            );
        }
    }

    #[test]
    fn text_requests() {
        assert_eq!(ask("help\n").replies, [TEXT_HELP]);
        assert_eq!(ask("?").replies, [TEXT_HELP]);
        assert!(ask("\n").replies[0].contains("not implemented"));
        assert!(ask("reload_communities").replies[0].contains("not implemented"));
        let garbage = handle_local(&Password::default(), 2, &[0xff, 0xfe, 0x00, 0x01]);
        assert_eq!(garbage.replies.len(), 1);
        assert_eq!(garbage.action, None);
    }

    #[test]
    fn strtoul_like_c() {
        assert_eq!(c_strtoul("3"), 3);
        assert_eq!(c_strtoul(" 0x1f"), 31);
        assert_eq!(c_strtoul("010"), 8);
        assert_eq!(c_strtoul("0"), 0);
        assert_eq!(c_strtoul("12abc"), 12);
        assert_eq!(c_strtoul("abc"), 0);
        assert_eq!(c_strtoul("+5"), 5);
        assert_eq!(c_strtoul("-1"), u64::MAX);
    }
}
