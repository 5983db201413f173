//! The management protocol shared by edge and supernode (cli.md §5), as
//! typed values: request parsing, authorisation and JSON reply lines.
//!
//! One request per UDP datagram; the reply is one JSON object per datagram,
//! each followed by `\n`.

use core::fmt::Write as _;
use n2n_proto::crypto::pearson;

/// Longest request the C implementation looks at.
pub const MAX_REQUEST_LEN: usize = 79;
/// Default management password.
pub const DEFAULT_PASSWORD: &str = "n2n";

/// Kind of JSON request: `r`, `w` or `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqKind {
    /// `r`: read.
    Read,
    /// `w`: write (needs the password).
    Write,
    /// `s`: subscribe (needs the password).
    Subscribe,
}

/// A parsed JSON-style management request: `<type> <tag>[:<flags>[:<pw>]] <cmd> [args]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonRequest<'a> {
    /// Request kind.
    pub kind: ReqKind,
    /// Tag echoed as `_tag` (at most 9 characters kept).
    pub tag: &'a str,
    /// Password, when flag bit 0 is set.
    pub password: Option<&'a str>,
    /// Command name.
    pub cmd: &'a str,
    /// Everything after the command.
    pub args: &'a str,
}

/// A management request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// A JSON API request.
    Json(JsonRequest<'a>),
    /// A JSON API request that failed to parse: reply with this error.
    Bad {
        /// Tag, `-1` if it could not be parsed.
        tag: &'a str,
        /// Error code.
        error: MgmtError,
    },
    /// Legacy text request (the first line of the datagram, trimmed).
    Text(&'a str),
}

/// Management error codes (sent as `"error":"<code>"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MgmtError {
    #[error("notype")]
    /// No type field.
    NoType,
    #[error("badtype")]
    /// Type is not r/w/s.
    BadType,
    #[error("nooptions")]
    /// No options field.
    NoOptions,
    #[error("nocmd")]
    /// No command.
    NoCmd,
    #[error("badauth")]
    /// Wrong or missing password.
    BadAuth,
    #[error("unknowncmd")]
    /// Unknown command.
    UnknownCmd,
    #[error("readonly")]
    /// `w` to a read-only command.
    ReadOnly,
    #[error("writeonly")]
    /// `r` to a write-only command.
    WriteOnly,
    #[error("unknowntopic")]
    /// Unknown subscription topic.
    UnknownTopic,
    #[error("noaccess")]
    /// Not allowed in this configuration.
    NoAccess,
    #[error("unimplemented")]
    /// Not implemented.
    Unimplemented,
    #[error("nofile")]
    /// No community file.
    NoFile,
}

impl MgmtError {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            MgmtError::NoType => "notype",
            MgmtError::BadType => "badtype",
            MgmtError::NoOptions => "nooptions",
            MgmtError::NoCmd => "nocmd",
            MgmtError::BadAuth => "badauth",
            MgmtError::UnknownCmd => "unknowncmd",
            MgmtError::ReadOnly => "readonly",
            MgmtError::WriteOnly => "writeonly",
            MgmtError::UnknownTopic => "unknowntopic",
            MgmtError::NoAccess => "noaccess",
            MgmtError::Unimplemented => "unimplemented",
            MgmtError::NoFile => "nofile",
        }
    }
}

/// Which program parses: the edge additionally requires byte 0 to be a
/// lower-case letter for the JSON path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `edge`.
    Edge,
    /// `supernode`.
    Supernode,
}

fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parse one management datagram. Never panics; non-UTF-8 bytes end the
/// request at the first invalid byte.
pub fn parse_request(datagram: &[u8], flavor: Flavor) -> Request<'_> {
    let cut = &datagram[..datagram.len().min(MAX_REQUEST_LEN)];
    let text = match core::str::from_utf8(cut) {
        Ok(t) => t,
        Err(e) => core::str::from_utf8(&cut[..e.valid_up_to()]).unwrap_or(""),
    };
    let b = text.as_bytes();
    let is_json =
        b.len() >= 2 && b[1] == b' ' && (flavor == Flavor::Supernode || b[0].is_ascii_lowercase());
    if !is_json {
        let line = text.split(['\r', '\n']).next().unwrap_or("").trim();
        return Request::Text(line);
    }
    let line = text.split(['\r', '\n']).next().unwrap_or("");
    let mut parts = line.splitn(4, ' ').filter(|s| !s.is_empty());
    let Some(ty) = parts.next() else {
        return Request::Bad {
            tag: "-1",
            error: MgmtError::NoType,
        };
    };
    let kind = match ty {
        "r" => ReqKind::Read,
        "w" => ReqKind::Write,
        "s" => ReqKind::Subscribe,
        _ => {
            return Request::Bad {
                tag: "-1",
                error: MgmtError::BadType,
            };
        }
    };
    let Some(options) = parts.next() else {
        return Request::Bad {
            tag: "-1",
            error: MgmtError::NoOptions,
        };
    };
    let mut opt = options.split(':');
    let tag = truncate_str(opt.next().unwrap_or("-1"), 9);
    let flags = opt
        .next()
        .and_then(|f| u32::from_str_radix(f, 16).ok())
        .unwrap_or(0);
    let password = if flags & 1 != 0 { opt.next() } else { None };
    let Some(cmd) = parts.next() else {
        return Request::Bad {
            tag,
            error: MgmtError::NoCmd,
        };
    };
    let args = parts.next().unwrap_or("").trim();
    Request::Json(JsonRequest {
        kind,
        tag,
        password,
        cmd,
        args,
    })
}

/// The configured management password, stored as its pearson64 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Password(u64);

impl Password {
    /// Hash a password.
    pub fn new(pw: &str) -> Self {
        Self(pearson::hash64(pw.as_bytes()))
    }

    /// Is this request authorised? Reads need no password unless one is
    /// given (then it must match); writes and subscriptions always need it.
    pub fn authorise(&self, req: &JsonRequest<'_>) -> Result<(), MgmtError> {
        match req.password {
            Some(pw) if pearson::hash64(pw.as_bytes()) == self.0 => Ok(()),
            Some(_) => Err(MgmtError::BadAuth),
            None if req.kind == ReqKind::Read => Ok(()),
            None => Err(MgmtError::BadAuth),
        }
    }
}

impl Default for Password {
    fn default() -> Self {
        Self::new(DEFAULT_PASSWORD)
    }
}

/// A JSON value in a reply row.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A number.
    Int(i64),
    /// A string (escaped as JSON).
    Str(&'a str),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u8> for Value<'_> {
    fn from(v: u8) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds the reply datagrams of one JSON request.
#[derive(Debug)]
pub struct Reply {
    tag: String,
    cmd: String,
    lines: Vec<String>,
}

impl Reply {
    /// Start a reply: emits the `begin` line.
    pub fn begin(tag: &str, cmd: &str) -> Self {
        let mut r = Self {
            tag: tag.to_owned(),
            cmd: cmd.to_owned(),
            lines: Vec::new(),
        };
        let mut l = String::new();
        r.head(&mut l, "begin");
        l.push_str(",\"cmd\":");
        push_json_str(&mut l, cmd);
        l.push_str("}\n");
        r.lines.push(l);
        r
    }

    fn head(&self, l: &mut String, ty: &str) {
        l.push_str("{\"_tag\":");
        push_json_str(l, &self.tag);
        l.push_str(",\"_type\":\"");
        l.push_str(ty);
        l.push('"');
    }

    /// Add a `row` line with these fields, in order.
    pub fn row(&mut self, fields: &[(&str, Value<'_>)]) {
        let mut l = String::new();
        self.head(&mut l, "row");
        for (k, v) in fields {
            l.push(',');
            push_json_str(&mut l, k);
            l.push(':');
            match v {
                Value::Int(i) => {
                    let _ = write!(l, "{i}");
                }
                Value::Str(s) => push_json_str(&mut l, s),
            }
        }
        l.push_str("}\n");
        self.lines.push(l);
    }

    /// Add an `error` line (an error raised inside a command: C sends it
    /// between `begin` and `end`).
    pub fn error(&mut self, err: MgmtError) {
        let mut l = String::new();
        self.head(&mut l, "error");
        l.push_str(",\"error\":\"");
        l.push_str(err.code());
        l.push_str("\"}\n");
        self.lines.push(l);
    }

    /// Finish with the `end` line and return all datagrams.
    pub fn end(mut self) -> Vec<String> {
        let mut l = String::new();
        self.head(&mut l, "end");
        l.push_str(",\"cmd\":");
        push_json_str(&mut l, &self.cmd);
        l.push_str("}\n");
        self.lines.push(l);
        self.lines
    }
}

/// A one-line error reply.
pub fn error_line(tag: &str, err: MgmtError) -> String {
    let mut l = String::from("{\"_tag\":");
    push_json_str(&mut l, tag);
    l.push_str(",\"_type\":\"error\",\"error\":\"");
    l.push_str(err.code());
    l.push_str("\"}\n");
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_requests() {
        let r = parse_request(b"r 1 edges", Flavor::Supernode);
        assert_eq!(
            r,
            Request::Json(JsonRequest {
                kind: ReqKind::Read,
                tag: "1",
                password: None,
                cmd: "edges",
                args: ""
            })
        );
        let Request::Json(j) = parse_request(b"w 7:1:n2n verbose 3\n", Flavor::Edge) else {
            panic!("not json")
        };
        assert_eq!(
            (j.kind, j.tag, j.password, j.cmd, j.args),
            (ReqKind::Write, "7", Some("n2n"), "verbose", "3")
        );
        assert_eq!(Password::default().authorise(&j), Ok(()));
        let Request::Json(j) = parse_request(b"w 7:1:bad stop", Flavor::Edge) else {
            panic!()
        };
        assert_eq!(Password::default().authorise(&j), Err(MgmtError::BadAuth));
        let Request::Json(j) = parse_request(b"w 7 stop", Flavor::Edge) else {
            panic!()
        };
        assert_eq!(Password::default().authorise(&j), Err(MgmtError::BadAuth));
        assert_eq!(
            parse_request(b"x 1 edges", Flavor::Supernode),
            Request::Bad {
                tag: "-1",
                error: MgmtError::BadType
            }
        );
        assert_eq!(
            parse_request(b"r 5", Flavor::Supernode),
            Request::Bad {
                tag: "5",
                error: MgmtError::NoCmd
            }
        );
        assert_eq!(parse_request(b"", Flavor::Edge), Request::Text(""));
        assert_eq!(
            parse_request(b"stop\n", Flavor::Edge),
            Request::Text("stop")
        );
        // edge: byte 0 must be lower case for JSON
        assert_eq!(
            parse_request(b"R 1 edges", Flavor::Edge),
            Request::Text("R 1 edges")
        );
        // tag truncated to 9 chars
        let Request::Json(j) = parse_request(b"r 0123456789abc help", Flavor::Edge) else {
            panic!()
        };
        assert_eq!(j.tag, "012345678");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for len in 0..200 {
            let mut d = vec![0u8; len];
            for b in d.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            if len > 1 {
                d[1] = b' ';
            }
            let _ = parse_request(&d, Flavor::Edge);
            let _ = parse_request(&d, Flavor::Supernode);
        }
    }

    #[test]
    fn reply_lines_match_c_format() {
        let mut r = Reply::begin("3", "packetstats");
        r.row(&[
            ("type", "reg_super".into()),
            ("rx_pkt", 2u64.into()),
            ("nak", 0u64.into()),
        ]);
        let lines = r.end();
        assert_eq!(
            lines[0],
            "{\"_tag\":\"3\",\"_type\":\"begin\",\"cmd\":\"packetstats\"}\n"
        );
        assert_eq!(
            lines[1],
            "{\"_tag\":\"3\",\"_type\":\"row\",\"type\":\"reg_super\",\"rx_pkt\":2,\"nak\":0}\n"
        );
        assert_eq!(
            lines[2],
            "{\"_tag\":\"3\",\"_type\":\"end\",\"cmd\":\"packetstats\"}\n"
        );
        assert_eq!(
            error_line("-1", MgmtError::BadType),
            "{\"_tag\":\"-1\",\"_type\":\"error\",\"error\":\"badtype\"}\n"
        );
        let mut r = Reply::begin("1", "edges");
        r.row(&[("desc", "a\"b".into())]);
        let l = r.end();
        let v: Vec<serde_json::Value> =
            l.iter().map(|s| serde_json::from_str(s).unwrap()).collect();
        assert_eq!(v[1]["desc"], "a\"b");
    }
}
