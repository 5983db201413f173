//! The supernode's community list file (`-c`, cli.md §3.2).
//!
//! ```text
//! # fixed names
//! mynetwork
//! home 192.168.168.0/24
//! netleo
//! * logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG
//! # regular expression: ntop00 … ntop19
//! ntop[0-1][0-9]
//! ```
//!
//! Line rules: lines shorter than 2 bytes, blank lines and lines starting
//! with `#` are skipped; a line starting with `*` is a user of the most
//! recent fixed-name community (`* <user> <43-char public key>`); otherwise
//! the first token is a regular expression if it contains one of
//! `. * + ? [ ] \` ([`regex`](super::regex)), else a fixed community name
//! (≤ 19 bytes) optionally followed by its auto-IP subnet `a.b.c.d/bits`.
//! A trailing `# comment` after the tokens is allowed.
//!
//! C n2n ignores or mangles many malformed lines (a bad subnet becomes a
//! warning, a long name is cut, a user line after an expression becomes the
//! expression `*`, an over-long class makes an expression never match).
//! Here every such line is an error naming the line and the problem, and a
//! file without any community or expression is an error too (C would leave
//! the supernode open to every community).

use core::fmt;

use n2n_proto::auth::{self, KeyTextError, PublicKey};

use super::autoip::{AutoIpError, Subnet};
use super::regex::{Regex, RegexError, is_regex};

/// Longest community name (the 20-byte field keeps a NUL).
pub const MAX_COMMUNITY_NAME: usize = 19;
/// Longest user name (the 16-byte description field keeps a NUL).
pub const MAX_USER_NAME: usize = 15;
/// Length of a public key in n2n's 6-bit ASCII.
pub const PUBLIC_KEY_CHARS: usize = auth::KEY_TEXT_LEN;
/// Longest line C reads in one piece (its buffer is 4096 bytes).
pub const MAX_LINE: usize = 4095;

/// A user of a user/password community.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name (≤ 15 bytes), as given to the edge's `-I`.
    pub name: String,
    /// The user's X25519 public key (pub_u), decoded from its
    /// 43-character form.
    pub public_key: PublicKey,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A fixed-name community.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedCommunity {
    /// Community name (1..=19 bytes).
    pub name: String,
    /// Auto-IP subnet given on the line, if any.
    pub subnet: Option<Subnet>,
    /// Users (non-empty switches the community to user/password mode with
    /// mandatory header encryption).
    pub users: Vec<User>,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A regular expression for community names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The compiled expression.
    pub regex: Regex,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A parsed community list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityList {
    /// Fixed-name communities in file order.
    pub fixed: Vec<FixedCommunity>,
    /// Regular expressions in file order.
    pub patterns: Vec<Pattern>,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// Longer than C's line buffer.
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    /// Community name over 19 bytes.
    #[error("community name '{0}' is longer than {MAX_COMMUNITY_NAME} bytes")]
    NameTooLong(String),
    /// The subnet after a fixed name is invalid.
    #[error("bad subnet '{0}' for community '{1}': {2}")]
    BadSubnet(String, String, AutoIpError),
    /// The regular expression does not compile.
    #[error("bad regular expression '{0}': {1}")]
    BadRegex(String, RegexError),
    /// Something after the expected tokens.
    #[error("unexpected '{0}' after {1}")]
    Unexpected(String, &'static str),
    /// A community listed twice.
    #[error("community '{0}' already listed on line {1}")]
    Duplicate(String, usize),
    /// A user line without a preceding fixed-name community.
    #[error("user line '* {0} …' does not follow a fixed-name community line")]
    UserWithoutCommunity(String),
    /// A user line without user name or key.
    #[error("user line needs '* <user> <public key>'")]
    UserLineFormat,
    /// User name too long.
    #[error("user name '{0}' is longer than {MAX_USER_NAME} bytes")]
    UserNameTooLong(String),
    /// Public key malformed.
    #[error("public key of user '{0}': {1}")]
    BadKey(String, KeyTextError),
    /// Same public key twice in one community.
    #[error("user '{0}' has the same public key as user '{1}' (line {2})")]
    DuplicateKey(String, String, usize),
}

/// A broken community list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommunityListError {
    /// A line is malformed.
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
    /// No fixed name and no expression in the whole file.
    #[error("no community name or regular expression found")]
    Empty,
}

/// C's `isspace`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Tokens of a line, stopping at a token that starts a `#` comment.
fn tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(is_space)
        .filter(|t| !t.is_empty())
        .take_while(|t| !t.starts_with('#'))
}

impl CommunityList {
    /// Parse the text of a community list file.
    pub fn parse(text: &str) -> Result<Self, CommunityListError> {
        let mut list = CommunityList {
            fixed: Vec::new(),
            patterns: Vec::new(),
        };
        // Index into `fixed` of the community that user lines belong to.
        let mut current: Option<usize> = None;
        for (i, raw) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let err = |problem| CommunityListError::Line {
                line: line_no,
                problem,
            };
            if raw.len() > MAX_LINE {
                return Err(err(LineProblem::TooLong));
            }
            let line = raw.trim_end_matches(['\r', '\n']);
            let trimmed = line.trim_start_matches(is_space);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('*') {
                let mut t = tokens(rest);
                let (Some(user), Some(key)) = (t.next(), t.next()) else {
                    return Err(err(LineProblem::UserLineFormat));
                };
                if let Some(extra) = t.next() {
                    return Err(err(LineProblem::Unexpected(
                        extra.to_owned(),
                        "'* <user> <public key>'",
                    )));
                }
                let Some(comm) = current.and_then(|c| list.fixed.get_mut(c)) else {
                    return Err(err(LineProblem::UserWithoutCommunity(user.to_owned())));
                };
                if user.len() > MAX_USER_NAME {
                    return Err(err(LineProblem::UserNameTooLong(user.to_owned())));
                }
                let public_key = PublicKey::from_text(key.as_bytes())
                    .map_err(|e| err(LineProblem::BadKey(user.to_owned(), e)))?;
                if let Some(other) = comm.users.iter().find(|u| u.public_key == public_key) {
                    return Err(err(LineProblem::DuplicateKey(
                        user.to_owned(),
                        other.name.clone(),
                        other.line,
                    )));
                }
                comm.users.push(User {
                    name: user.to_owned(),
                    public_key,
                    line: line_no,
                });
                continue;
            }
            let mut t = tokens(line);
            let Some(first) = t.next() else { continue };
            let second = t.next();
            if is_regex(first) {
                let regex = Regex::new(first)
                    .map_err(|e| err(LineProblem::BadRegex(first.to_owned(), e)))?;
                if let Some(extra) = second {
                    return Err(err(LineProblem::Unexpected(
                        extra.to_owned(),
                        "a regular expression",
                    )));
                }
                list.patterns.push(Pattern {
                    regex,
                    line: line_no,
                });
                current = None;
                continue;
            }
            if first.len() > MAX_COMMUNITY_NAME {
                return Err(err(LineProblem::NameTooLong(first.to_owned())));
            }
            if let Some(prev) = list.fixed.iter().find(|c| c.name == first) {
                return Err(err(LineProblem::Duplicate(first.to_owned(), prev.line)));
            }
            let subnet =
                match second {
                    None => None,
                    Some(s) => Some(s.parse::<Subnet>().map_err(|e| {
                        err(LineProblem::BadSubnet(s.to_owned(), first.to_owned(), e))
                    })?),
                };
            if let Some(extra) = t.next() {
                return Err(err(LineProblem::Unexpected(
                    extra.to_owned(),
                    "the community name and subnet",
                )));
            }
            list.fixed.push(FixedCommunity {
                name: first.to_owned(),
                subnet,
                users: Vec::new(),
                line: line_no,
            });
            current = Some(list.fixed.len() - 1);
        }
        if list.fixed.is_empty() && list.patterns.is_empty() {
            return Err(CommunityListError::Empty);
        }
        Ok(list)
    }

    /// The fixed community of this name (bytes up to the first NUL).
    pub fn fixed(&self, name: &[u8]) -> Option<&FixedCommunity> {
        let name = until_nul(name);
        self.fixed.iter().find(|c| c.name.as_bytes() == name)
    }

    /// Is a community of this name allowed: a fixed name, or a full match
    /// of one of the expressions?
    pub fn allows(&self, name: &[u8]) -> bool {
        self.fixed(name).is_some() || self.patterns.iter().any(|p| p.regex.is_full_match(name))
    }

    /// Fixed communities that have users (user/password authentication).
    pub fn user_communities(&self) -> impl Iterator<Item = &FixedCommunity> {
        self.fixed.iter().filter(|c| !c.users.is_empty())
    }
}

fn until_nul(name: &[u8]) -> &[u8] {
    let n = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    &name[..n]
}

impl fmt::Display for CommunityList {
    /// One line summary: "N fixed-name communities, M regular expressions".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fixed-name communities, {} regular expressions",
            self.fixed.len(),
            self.patterns.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const EXAMPLE: &str = "# fixed names\nmynetwork\nhome 192.168.168.0/24\nnetleo\n\
        * logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG\n\
        # regular expression: ntop00 … ntop19\nntop[0-1][0-9]\n";

    fn line_err(text: &str) -> (usize, LineProblem) {
        match CommunityList::parse(text) {
            Err(CommunityListError::Line { line, problem }) => (line, problem),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_spec_example() {
        let l = CommunityList::parse(EXAMPLE).unwrap();
        let names: Vec<&str> = l.fixed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["mynetwork", "home", "netleo"]);
        assert_eq!(
            l.fixed[1].subnet,
            Some(Subnet {
                net: Ipv4Addr::new(192, 168, 168, 0),
                bits: 24
            })
        );
        assert_eq!(l.fixed[0].subnet, None);
        assert_eq!(l.fixed[2].users.len(), 1);
        let u = &l.fixed[2].users[0];
        assert_eq!(u.name, "logan");
        assert_eq!(u.line, 5);
        assert_eq!(
            hex(u.public_key.as_bytes()),
            "c51838c3ed440ae0743619d2a11fe03d4a3cbd415ef157376fdef2a5b5caab34"
        );
        assert_eq!(l.patterns.len(), 1);
        assert_eq!(l.patterns[0].line, 7);
        assert_eq!(l.user_communities().count(), 1);
        assert!(l.allows(b"mynetwork"));
        assert!(l.allows(b"home"));
        assert!(l.allows(b"ntop07"));
        assert!(l.allows(b"home\0\0\0"));
        assert!(!l.allows(b"ntop27"));
        assert!(!l.allows(b"homes"));
        assert!(!l.allows(b""));
    }

    #[test]
    fn user_keys_are_n2n_key_text() {
        let l = CommunityList::parse("net\n* fed i0IuBFO0RC22m2Ya32uUUFUA2yfQSwsxVZ3-S5F2k7O\n")
            .unwrap();
        assert_eq!(
            hex(l.fixed[0].users[0].public_key.as_bytes()),
            "b004b82cf6006cc082c028a40c2e1e78f78a0bca5a73adbb7e30ff7053c2b876"
        );
        assert_eq!(
            line_err("net\n* a nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgp/\n"),
            (
                2,
                LineProblem::BadKey(
                    "a".into(),
                    KeyTextError::BadChar {
                        pos: 42,
                        byte: b'/'
                    }
                )
            )
        );
        let msg = CommunityList::parse("net\n* a abc\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "line 2: public key of user 'a': key text is 3 characters long, 43 expected"
        );
    }

    #[test]
    fn comments_blank_lines_crlf_and_trailing_comments() {
        let l = CommunityList::parse(
            "#c\r\n\r\n   \n  # indented comment\nalpha # the first\r\n\
             beta 10.0.0.0/8 # second\n.*\n",
        )
        .unwrap();
        assert_eq!(l.fixed.len(), 2);
        assert_eq!(
            l.fixed[1].subnet.map(|s| s.to_string()).as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(l.patterns[0].line, 7);
        assert!(l.allows(b"anything"));
    }

    #[test]
    fn errors_name_line_and_problem() {
        let (line, p) = line_err("ok\nhome 192.168.168.1/24\n");
        assert_eq!(line, 2);
        assert!(matches!(p, LineProblem::BadSubnet(..)));
        let msg = CommunityList::parse("ok\nhome 192.168.168.1/24\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("line 2: bad subnet '192.168.168.1/24'"),
            "{msg}"
        );

        assert!(matches!(
            line_err("a 10.0.0.0/31").1,
            LineProblem::BadSubnet(..)
        ));
        assert!(matches!(
            line_err("a 10.0.0.0/0").1,
            LineProblem::BadSubnet(..)
        ));
        assert!(matches!(
            line_err("a 10.0.0/8").1,
            LineProblem::BadSubnet(..)
        ));
        assert_eq!(
            line_err("x\nabcdefghijklmnopqrst\n"),
            (2, LineProblem::NameTooLong("abcdefghijklmnopqrst".into()))
        );
        assert!(CommunityList::parse("abcdefghijklmnopqrs\n").is_ok());
        assert_eq!(
            line_err("a\n\nb\na\n"),
            (4, LineProblem::Duplicate("a".into(), 1))
        );
        assert!(matches!(line_err("a[b\n"), (1, LineProblem::BadRegex(..))));
        assert!(matches!(
            line_err("a.* 10.0.0.0/8\n"),
            (1, LineProblem::Unexpected(..))
        ));
        assert!(matches!(
            line_err("a 10.0.0.0/8 more\n"),
            (1, LineProblem::Unexpected(..))
        ));
        assert_eq!(
            line_err(&format!("{}\n", "a".repeat(5000))),
            (1, LineProblem::TooLong)
        );
    }

    #[test]
    fn user_line_errors() {
        const KEY: &str = "nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG";
        assert_eq!(
            line_err(&format!("* logan {KEY}\nnet\n")),
            (1, LineProblem::UserWithoutCommunity("logan".into()))
        );
        // After an expression there is no current community (C would read
        // the line as the expression "*").
        assert_eq!(
            line_err(&format!("net\nn.*\n* logan {KEY}\n")),
            (3, LineProblem::UserWithoutCommunity("logan".into()))
        );
        assert_eq!(line_err("net\n* logan\n"), (2, LineProblem::UserLineFormat));
        assert!(matches!(
            line_err("net\n* logan abc\n"),
            (2, LineProblem::BadKey(_, KeyTextError::BadLength(3)))
        ));
        assert!(matches!(
            line_err(&format!("net\n* abcdefghijklmnop {KEY}\n")),
            (2, LineProblem::UserNameTooLong(_))
        ));
        assert!(matches!(
            line_err(&format!("net\n* a {KEY}\n* b {KEY}\n")),
            (3, LineProblem::DuplicateKey(..))
        ));
        // C's sscanf format "* %15s %43s" accepts no space after '*'.
        let l = CommunityList::parse(&format!("net\n*bob {KEY}\n")).unwrap();
        assert_eq!(l.fixed[0].users[0].name, "bob");
    }

    #[test]
    fn empty_file_is_an_error() {
        for text in ["", "# only comments\n\n", "\n\n\n"] {
            assert_eq!(CommunityList::parse(text), Err(CommunityListError::Empty));
        }
        assert_eq!(
            CommunityList::parse("").unwrap_err().to_string(),
            "no community name or regular expression found"
        );
    }
}
