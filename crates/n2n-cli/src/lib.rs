//! `n2n-cli`: the command-line stack of the `edge` and `supernode` binaries
//! (cli.md §1–§3), one for both.
//!
//! * [`table`]: each binary declares its options once, in a [`Table`] of
//!   [`OptDef`] rows (names, argument kind, key, argument name, help); the
//!   `--help` text is rendered from it ([`Table::help`]).
//! * [`getopt`]: a `getopt_long`-compatible scanner over a table (clusters,
//!   attached optional arguments `-A3`, `--name=value`, abbreviations);
//!   words that are not options are refused, not skipped.
//! * [`conffile`]: C n2n's configuration files, expanded in front of the
//!   command line.
//! * [`options`]: environment variables, the configuration file's options
//!   and the command line's, in the order they apply (later wins).
//! * [`common`]: the local options both daemons have (`-f`, `-t`,
//!   `--management-password`, `-v`/`-V`, `-u`/`-g`); [`values`]: value
//!   parsers both use (ports, ids, MACs, `-l` addresses); [`daemon`]: what
//!   `-f` means at start (daemon or not, log to syslog or stderr).
//!
//! Every error is one [`CliError`] line naming the option or the file; the
//! binaries print it and exit with [`EXIT_USAGE`].
//!
//! # Adding an option
//!
//! 1. a variant in the binary's option enum (`Opt::Metrics`);
//! 2. a row in its table, in the help section it belongs to:
//!    `OptDef::long("metrics", Required, Opt::Metrics).value("<addr:port>")
//!    .help("serve Prometheus metrics on this address")`;
//! 3. its use: an arm in the binary's `apply` storing the parsed value, and
//!    the field in its options struct.
//!
//! The scanner, the configuration file, the help text and the error
//! messages follow from the row. An option that is accepted for
//! compatibility but not implemented is refused in `apply` with
//! [`CliError::Unsupported`] naming it.

pub mod common;
pub mod conffile;
pub mod daemon;
pub mod getopt;
pub mod table;
pub mod values;

pub use common::{Common, CommonOpt};
pub use conffile::{ConfigError, Flavor};
pub use getopt::{HasArg, Item, Opt, ScanError};
pub use table::{Doc, EnvVar, OptDef, Section, Table};

/// Exit status for a bad command line or configuration file (both daemons).
pub const EXIT_USAGE: u8 = 2;

/// A bad command line, configuration file or option value: one line naming
/// the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// getopt-level error (unknown option, missing argument…).
    #[error("{0}")]
    Scan(#[from] ScanError),
    /// A word that is not an option.
    #[error("unexpected argument '{word}'{hint}")]
    Positional {
        /// The word.
        word: String,
        /// Extra hint (e.g. about `-A 3`).
        hint: String,
    },
    /// A process argument is not UTF-8.
    #[error("argument {index} {text} is not valid UTF-8")]
    NotUtf8 {
        /// Position (1 = first after the program name).
        index: usize,
        /// The argument, escaped.
        text: String,
    },
    /// The configuration file could not be read.
    #[error("config file {path}: {reason}")]
    ConfigRead {
        /// Path given.
        path: String,
        /// OS error text.
        reason: String,
    },
    /// The configuration file is malformed.
    #[error("config file {path}: {source}")]
    ConfigSyntax {
        /// Path given.
        path: String,
        /// What is wrong (names the line).
        source: ConfigError,
    },
    /// An option's argument is invalid.
    #[error("option {option}: {reason}")]
    BadValue {
        /// The option as written.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// An option this binary refuses (not supported, removed, meaningless).
    #[error("option {option} is not supported: {reason}")]
    Unsupported {
        /// The option.
        option: String,
        /// Why / what to do instead.
        reason: String,
    },
    /// A missing or inconsistent setting.
    #[error("{0}")]
    Invalid(String),
}

impl CliError {
    /// [`CliError::BadValue`].
    pub fn bad(option: &str, reason: impl Into<String>) -> Self {
        Self::BadValue {
            option: option.to_owned(),
            reason: reason.into(),
        }
    }

    /// [`CliError::Unsupported`].
    pub fn unsupported(option: &str, reason: impl Into<String>) -> Self {
        Self::Unsupported {
            option: option.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The argument of an option that requires one (the scanner guarantees it;
/// this keeps `apply` free of `unwrap`).
pub fn required<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, CliError> {
    value.ok_or_else(|| CliError::Scan(ScanError::MissingArgument(name.to_owned())))
}

/// The process arguments (program name first) as strings.
pub fn utf8_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Vec<String>, CliError> {
    args.into_iter()
        .enumerate()
        .map(|(index, a)| {
            a.into_string().map_err(|bad| CliError::NotUtf8 {
                index,
                text: format!("{bad:?}"),
            })
        })
        .collect()
}

/// The options to apply, in order: those of the environment variables of
/// `table` (non-empty ones), then those of `args` (the configuration file's
/// and the command line's, see [`conffile::expand`]). A word that is not an
/// option is an error (with a hint when it follows a bare `-A`).
pub fn options<K: Copy + PartialEq>(
    table: &Table<K>,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Opt<K>>, CliError> {
    let items = getopt::scan(table, args)?;
    let mut out: Vec<Opt<K>> = table
        .env
        .iter()
        .filter_map(|e| {
            let value = env(e.name).filter(|v| !v.is_empty())?;
            Some(Opt {
                key: e.key,
                name: e.name.to_owned(),
                value: Some(value),
            })
        })
        .collect();
    for item in items {
        match item {
            Item::Opt(o) => out.push(o),
            Item::Positional {
                word,
                after_optional,
            } => {
                let hint = match after_optional {
                    Some(opt) => {
                        format!(" (the argument of {opt} must be attached, e.g. {opt}{word})")
                    }
                    None => String::new(),
                };
                return Err(CliError::Positional { word, hint });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use HasArg::{Optional, Required};

    const OPTS: &[OptDef<char>] = &[
        OptDef::short('k', Required, 'k'),
        OptDef::short('A', Optional, 'A'),
    ];
    const SECTIONS: &[Section<char>] = &[Section {
        title: "",
        options: OPTS,
    }];
    const TABLE: Table<char> = Table {
        env: &[EnvVar {
            name: "N2N_KEY",
            key: 'k',
        }],
        ..Table::new("t", SECTIONS)
    };

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn environment_comes_first() {
        let env = |k: &str| (k == "N2N_KEY").then(|| "envkey".to_owned());
        let o = options(&TABLE, &s(&["-k", "cli"]), &env).unwrap();
        let v: Vec<(&str, Option<&str>)> = o
            .iter()
            .map(|o| (o.name.as_str(), o.value.as_deref()))
            .collect();
        assert_eq!(v, [("N2N_KEY", Some("envkey")), ("-k", Some("cli"))]);
        let empty = |_: &str| Some(String::new());
        assert!(options(&TABLE, &[], &empty).unwrap().is_empty());
    }

    #[test]
    fn stray_words_are_refused() {
        let none = |_: &str| None;
        let e = options(&TABLE, &s(&["-A", "3"]), &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected argument '3' (the argument of -A must be attached, e.g. -A3)"
        );
        let e = options(&TABLE, &s(&["x"]), &none).unwrap_err();
        assert_eq!(e.to_string(), "unexpected argument 'x'");
        let e = options(&TABLE, &s(&["-q"]), &none).unwrap_err();
        assert_eq!(e.to_string(), "unknown option '-q'");
    }

    #[test]
    fn non_utf8_arguments() {
        use std::os::unix::ffi::OsStringExt as _;
        let args = [
            std::ffi::OsString::from("edge"),
            std::ffi::OsString::from_vec(vec![0xff]),
        ];
        let e = utf8_args(args).unwrap_err();
        assert_eq!(e.to_string(), "argument 1 \"\\xFF\" is not valid UTF-8");
        assert_eq!(utf8_args([std::ffi::OsString::from("a")]).unwrap(), ["a"]);
    }
}
