//! A small `getopt_long`-compatible command-line scanner.
//!
//! Behaves like glibc's `getopt_long` for the forms C n2n's edge accepts:
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

/// One option the scanner knows.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec<K> {
    /// Short name (`'c'` for `-c`), if any.
    pub short: Option<char>,
    /// Long name (`"community"` for `--community`), if any.
    pub long: Option<&'static str>,
    /// Argument kind.
    pub arg: HasArg,
    /// Caller's identifier for the option.
    pub key: K,
}

/// One scanned item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<K> {
    /// An option, with the name as written (`-c` or `--community`) and its
    /// argument.
    Opt {
        /// Caller's identifier.
        key: K,
        /// The option as the user wrote it (for messages).
        name: String,
        /// Its argument, if any.
        value: Option<String>,
    },
    /// A word that is not an option. `after_optional` names the preceding
    /// optional-argument option when the word directly follows one.
    Positional {
        /// The word.
        word: String,
        /// `Some("-A")` when the word directly follows a bare `-A`.
        after_optional: Option<String>,
    },
}

/// A scanning error (one line, names the option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// `-q` or `--frobnicate`.
    #[error("unknown option {0}")]
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

/// Scan `args` (without the program name).
pub fn scan<K: Copy>(specs: &[OptSpec<K>], args: &[String]) -> Result<Vec<Item<K>>, ScanError> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut prev_optional: Option<String> = None;
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
            let spec = find_long(specs, name)?;
            let display = format!("--{}", spec.long.unwrap_or(name));
            let value = match spec.arg {
                HasArg::No => {
                    if inline.is_some() {
                        return Err(ScanError::UnexpectedArgument(display));
                    }
                    None
                }
                HasArg::Optional => inline,
                HasArg::Required => match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args
                            .get(i)
                            .ok_or_else(|| ScanError::MissingArgument(display.clone()))?;
                        i += 1;
                        Some(v.clone())
                    }
                },
            };
            out.push(Item::Opt {
                key: spec.key,
                name: display,
                value,
            });
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
            let spec = specs
                .iter()
                .find(|s| s.short == Some(c))
                .ok_or_else(|| ScanError::Unknown(name.clone()))?;
            let rest = &cluster[pos + c.len_utf8()..];
            match spec.arg {
                HasArg::No => out.push(Item::Opt {
                    key: spec.key,
                    name,
                    value: None,
                }),
                HasArg::Optional => {
                    if rest.is_empty() {
                        prev_optional = Some(name.clone());
                    }
                    out.push(Item::Opt {
                        key: spec.key,
                        name,
                        value: (!rest.is_empty()).then(|| rest.to_owned()),
                    });
                    break;
                }
                HasArg::Required => {
                    let value = if rest.is_empty() {
                        let v = args
                            .get(i)
                            .ok_or_else(|| ScanError::MissingArgument(name.clone()))?;
                        i += 1;
                        v.clone()
                    } else {
                        rest.to_owned()
                    };
                    out.push(Item::Opt {
                        key: spec.key,
                        name,
                        value: Some(value),
                    });
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn find_long<'a, K>(specs: &'a [OptSpec<K>], name: &str) -> Result<&'a OptSpec<K>, ScanError> {
    if let Some(exact) = specs.iter().find(|s| s.long == Some(name)) {
        return Ok(exact);
    }
    let matches: Vec<&OptSpec<K>> = if name.is_empty() {
        Vec::new()
    } else {
        specs
            .iter()
            .filter(|s| s.long.is_some_and(|l| l.starts_with(name)))
            .collect()
    };
    match matches.as_slice() {
        [] => Err(ScanError::Unknown(format!("--{name}"))),
        [one] => Ok(one),
        many => Err(ScanError::Ambiguous {
            given: format!("--{name}"),
            candidates: many
                .iter()
                .filter_map(|s| s.long.map(|l| format!("--{l}")))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SPECS: &[OptSpec<char>] = &[
        OptSpec {
            short: Some('c'),
            long: Some("community"),
            arg: HasArg::Required,
            key: 'c',
        },
        OptSpec {
            short: Some('f'),
            long: None,
            arg: HasArg::No,
            key: 'f',
        },
        OptSpec {
            short: Some('v'),
            long: Some("verbose"),
            arg: HasArg::No,
            key: 'v',
        },
        OptSpec {
            short: Some('A'),
            long: None,
            arg: HasArg::Optional,
            key: 'A',
        },
        OptSpec {
            short: None,
            long: Some("select-rtt"),
            arg: HasArg::No,
            key: '[',
        },
        OptSpec {
            short: None,
            long: Some("select-mac"),
            arg: HasArg::No,
            key: ']',
        },
    ];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn keys(items: &[Item<char>]) -> Vec<(char, Option<String>)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Opt { key, value, .. } => Some((*key, value.clone())),
                Item::Positional { .. } => None,
            })
            .collect()
    }

    #[test]
    fn getopt_forms() {
        let items = scan(
            SPECS,
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
            ]
        );
    }

    #[test]
    fn optional_argument_must_be_attached() {
        let items = scan(SPECS, &s(&["-A", "3"])).unwrap();
        assert_eq!(
            items[1],
            Item::Positional {
                word: "3".into(),
                after_optional: Some("-A".into())
            }
        );
        let items = scan(SPECS, &s(&["x", "--", "-f"])).unwrap();
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Item::Positional { word, .. } if word == "-f"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            scan(SPECS, &s(&["-q"])),
            Err(ScanError::Unknown("-q".into()))
        );
        assert_eq!(
            scan(SPECS, &s(&["-fq"])),
            Err(ScanError::Unknown("-q".into()))
        );
        assert_eq!(
            scan(SPECS, &s(&["--nope"])),
            Err(ScanError::Unknown("--nope".into()))
        );
        assert_eq!(
            scan(SPECS, &s(&["-c"])),
            Err(ScanError::MissingArgument("-c".into()))
        );
        assert_eq!(
            scan(SPECS, &s(&["--community"])),
            Err(ScanError::MissingArgument("--community".into()))
        );
        assert_eq!(
            scan(SPECS, &s(&["--select-rtt=1"])),
            Err(ScanError::UnexpectedArgument("--select-rtt".into()))
        );
        assert!(matches!(
            scan(SPECS, &s(&["--select"])),
            Err(ScanError::Ambiguous { .. })
        ));
        assert!(matches!(scan(SPECS, &s(&["--"])).as_deref(), Ok([])));
        assert_eq!(
            scan(SPECS, &s(&["--="])),
            Err(ScanError::Unknown("--".into()))
        );
    }
}
