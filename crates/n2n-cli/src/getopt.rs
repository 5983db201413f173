//! A small `getopt_long`-compatible command-line scanner over a [`Table`].
//!
//! Behaves like glibc's `getopt_long` for the forms C n2n accepts:
//!
//! * short options, clustered (`-fv`); a required argument is the rest of the
//!   cluster or the next word, even when that word starts with `-`
//!   (`-cmynet`, `-c mynet`, `-fc mynet`);
//! * short options with an *optional* argument take it only when attached
//!   (`-A3`, `-z1`, `-S1`); a separate word is not their argument;
//! * long options `--name=value` and `--name value`, and unambiguous
//!   abbreviations (`--comm x`);
//! * `--` ends the options.
//!
//! Unlike glibc, words that are not options are *not* silently skipped: they
//! are reported to the caller, which refuses them (a separate word after an
//! optional-argument option, `-A 3`, is the classic mistake).

use crate::table::{OptDef, Table};

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// A flag.
    No,
    /// Always takes an argument (attached or the next word).
    Required,
    /// Takes an argument only when attached (`-A3`).
    Optional,
}

/// One option found on the command line (or in the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt<K> {
    /// The table's identifier of the option.
    pub key: K,
    /// The option as the user wrote it (`-c`, `--community`, or the name of
    /// the environment variable that stands for it), for messages.
    pub name: String,
    /// Its argument, if any.
    pub value: Option<String>,
}

/// One scanned item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<K> {
    /// An option.
    Opt(Opt<K>),
    /// A word that is not an option.
    Positional {
        /// The word.
        word: String,
        /// `Some("-A")` when the word directly follows a bare
        /// optional-argument option (`-A 3`).
        after_optional: Option<String>,
    },
}

/// A scanning error (one line, names the option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// `-q` or `--frobnicate`.
    #[error("unknown option '{0}'")]
    Unknown(String),
    /// `--se` matches several long options.
    #[error("option {given} is ambiguous (could be {candidates})")]
    Ambiguous {
        /// What was written.
        given: String,
        /// The matching long options.
        candidates: String,
    },
    /// A required argument is missing.
    #[error("option {0} requires an argument")]
    MissingArgument(String),
    /// `--select-rtt=x`.
    #[error("option {0} does not take an argument")]
    UnexpectedArgument(String),
}

/// Scan `args` (without the program name) against `table`.
pub fn scan<K: Copy + PartialEq>(
    table: &Table<K>,
    args: &[String],
) -> Result<Vec<Item<K>>, ScanError> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut prev_optional: Option<String> = None;
    let next_word = |i: &mut usize, name: &str| -> Result<String, ScanError> {
        let v = args
            .get(*i)
            .ok_or_else(|| ScanError::MissingArgument(name.to_owned()))?;
        *i += 1;
        Ok(v.clone())
    };
    while let Some(word) = args.get(i) {
        i += 1;
        let after_optional = prev_optional.take();
        if word == "--" {
            for w in args.get(i..).unwrap_or_default() {
                out.push(Item::Positional {
                    word: w.clone(),
                    after_optional: None,
                });
            }
            break;
        }
        if let Some(body) = word.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let def = find_long(table, name)?;
            let display = format!("--{}", def.long.unwrap_or(name));
            let value = match def.arg {
                HasArg::No if inline.is_some() => {
                    return Err(ScanError::UnexpectedArgument(display));
                }
                HasArg::No => None,
                HasArg::Optional => inline,
                HasArg::Required => match inline {
                    Some(v) => Some(v),
                    None => Some(next_word(&mut i, &display)?),
                },
            };
            out.push(Item::Opt(Opt {
                key: def.key,
                name: display,
                value,
            }));
            continue;
        }
        let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) else {
            out.push(Item::Positional {
                word: word.clone(),
                after_optional,
            });
            continue;
        };
        for (pos, c) in cluster.char_indices() {
            let name = format!("-{c}");
            let def = table
                .options()
                .find(|d| d.short == Some(c))
                .ok_or_else(|| ScanError::Unknown(name.clone()))?;
            let rest = &cluster[pos + c.len_utf8()..];
            let value = match def.arg {
                HasArg::No => {
                    out.push(Item::Opt(Opt {
                        key: def.key,
                        name,
                        value: None,
                    }));
                    continue;
                }
                HasArg::Optional if rest.is_empty() => {
                    prev_optional = Some(name.clone());
                    None
                }
                HasArg::Optional => Some(rest.to_owned()),
                HasArg::Required if rest.is_empty() => Some(next_word(&mut i, &name)?),
                HasArg::Required => Some(
                    match rest.strip_prefix('=').filter(|_| table.equals_after_short) {
                        Some(v) => v.to_owned(),
                        None => rest.to_owned(),
                    },
                ),
            };
            out.push(Item::Opt(Opt {
                key: def.key,
                name,
                value,
            }));
            break;
        }
    }
    Ok(out)
}

fn find_long<'a, K: Copy + PartialEq>(
    table: &'a Table<K>,
    name: &str,
) -> Result<&'a OptDef<K>, ScanError> {
    if let Some(exact) = table.options().find(|d| d.long == Some(name)) {
        return Ok(exact);
    }
    let matches: Vec<&OptDef<K>> = if name.is_empty() {
        Vec::new()
    } else {
        table
            .options()
            .filter(|d| d.long.is_some_and(|l| l.starts_with(name)))
            .collect()
    };
    match matches.as_slice() {
        [] => Err(ScanError::Unknown(format!("--{name}"))),
        [one] => Ok(one),
        many => Err(ScanError::Ambiguous {
            given: format!("--{name}"),
            candidates: many
                .iter()
                .filter_map(|d| d.long.map(|l| format!("--{l}")))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::table::{OptDef, Section};

    const OPTS: &[OptDef<char>] = &[
        OptDef::both('c', "community", HasArg::Required, 'c'),
        OptDef::short('f', HasArg::No, 'f'),
        OptDef::both('v', "verbose", HasArg::No, 'v'),
        OptDef::short('A', HasArg::Optional, 'A'),
        OptDef::long("select-rtt", HasArg::No, '['),
        OptDef::long("select-mac", HasArg::No, ']'),
    ];
    const SECTIONS: &[Section<char>] = &[Section {
        title: "OPTIONS",
        options: OPTS,
    }];
    const TABLE: Table<char> = Table::new("test", SECTIONS);

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn keys(items: &[Item<char>]) -> Vec<(char, Option<String>)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Opt(o) => Some((o.key, o.value.clone())),
                Item::Positional { .. } => None,
            })
            .collect()
    }

    #[test]
    fn getopt_forms() {
        let items = scan(
            &TABLE,
            &s(&[
                "-fv",
                "-cone",
                "-c",
                "-two",
                "--community=three",
                "--community",
                "four",
                "--comm",
                "five",
                "-A3",
                "-fA",
                "-fvc",
                "six",
                "-c=seven",
            ]),
        )
        .unwrap();
        assert_eq!(
            keys(&items),
            vec![
                ('f', None),
                ('v', None),
                ('c', Some("one".into())),
                ('c', Some("-two".into())),
                ('c', Some("three".into())),
                ('c', Some("four".into())),
                ('c', Some("five".into())),
                ('A', Some("3".into())),
                ('f', None),
                ('A', None),
                ('f', None),
                ('v', None),
                ('c', Some("six".into())),
                // As glibc: the '=' is part of a short option's argument…
                ('c', Some("=seven".into())),
            ]
        );
        // … unless the table says otherwise.
        let eq = Table {
            equals_after_short: true,
            ..TABLE
        };
        let items = scan(&eq, &s(&["-c=seven", "-c==x", "-A=3"])).unwrap();
        assert_eq!(
            keys(&items),
            vec![
                ('c', Some("seven".into())),
                ('c', Some("=x".into())),
                ('A', Some("=3".into())),
            ]
        );
        assert_eq!(
            items.first(),
            Some(&Item::Opt(Opt {
                key: 'c',
                name: "-c".into(),
                value: Some("seven".into())
            }))
        );
        // The name as written, long names completed.
        let items = scan(&TABLE, &s(&["--comm", "x"])).unwrap();
        assert!(matches!(&items[0], Item::Opt(o) if o.name == "--community"));
    }

    #[test]
    fn optional_argument_must_be_attached() {
        let items = scan(&TABLE, &s(&["-A", "3"])).unwrap();
        assert_eq!(
            items[1],
            Item::Positional {
                word: "3".into(),
                after_optional: Some("-A".into())
            }
        );
        let items = scan(&TABLE, &s(&["-A", "-f", "3"])).unwrap();
        assert_eq!(
            items[2],
            Item::Positional {
                word: "3".into(),
                after_optional: None
            }
        );
        let items = scan(&TABLE, &s(&["x", "--", "-f"])).unwrap();
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Item::Positional { word, .. } if word == "-f"));
    }

    #[test]
    fn errors() {
        let e = |v: &[&str]| scan(&TABLE, &s(v)).unwrap_err();
        assert_eq!(e(&["-q"]), ScanError::Unknown("-q".into()));
        assert_eq!(e(&["-q"]).to_string(), "unknown option '-q'");
        assert_eq!(e(&["-fq"]), ScanError::Unknown("-q".into()));
        assert_eq!(e(&["--nope"]), ScanError::Unknown("--nope".into()));
        assert_eq!(e(&["-c"]), ScanError::MissingArgument("-c".into()));
        assert_eq!(e(&["-c"]).to_string(), "option -c requires an argument");
        assert_eq!(
            e(&["--community"]),
            ScanError::MissingArgument("--community".into())
        );
        assert_eq!(
            e(&["--select-rtt=1"]),
            ScanError::UnexpectedArgument("--select-rtt".into())
        );
        assert_eq!(
            e(&["--select"]).to_string(),
            "option --select is ambiguous (could be --select-rtt, --select-mac)"
        );
        assert!(matches!(scan(&TABLE, &s(&["--"])).as_deref(), Ok([])));
        assert_eq!(e(&["--="]), ScanError::Unknown("--".into()));
        assert_eq!(e(&["-é"]), ScanError::Unknown("-é".into()));
    }
}
