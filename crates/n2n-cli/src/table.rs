//! Option tables: every option of a binary, once, with what the scanner
//! needs (names, argument kind, the binary's key) and what the help needs
//! (argument name, description). The `--help` text is rendered from the
//! table, so an option cannot be accepted without being documented (or
//! deliberately [`Doc::Hidden`]).
//!
//! Layout of the rendered help (80 columns): the option forms from column 1,
//! the description from column [`HELP_COLUMN`] (on the next line when the
//! forms are too wide). Descriptions are written pre-wrapped: their lines are
//! separated by `\n` and each continuation line is indented to the column.

use std::fmt::Write as _;

use crate::getopt::HasArg;

/// Column (0-based) where descriptions start in the help.
pub const HELP_COLUMN: usize = 28;

/// How an option appears in the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// One entry: the option's names and [`OptDef::value`], then this
    /// description.
    Text(&'static str),
    /// One entry per accepted form, e.g. `("-A1", "no encryption")`,
    /// `("-A2", "Twofish")`; an empty form continues the description of the
    /// entry before it.
    Forms(&'static [(&'static str, &'static str)]),
    /// Accepted but not listed.
    Hidden,
}

/// One option: a row of a [`Table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptDef<K> {
    /// Short name (`'c'` for `-c`), if any.
    pub short: Option<char>,
    /// Long name (`"community"` for `--community`), if any.
    pub long: Option<&'static str>,
    /// Argument kind.
    pub arg: HasArg,
    /// The binary's identifier for the option.
    pub key: K,
    /// The argument as the help shows it (`<name>`, `[ip:]port | ip`);
    /// empty for flags.
    pub value: &'static str,
    /// Help entry.
    pub doc: Doc,
}

impl<K: Copy> OptDef<K> {
    /// A short-only option (`-D`).
    pub const fn short(short: char, arg: HasArg, key: K) -> Self {
        Self {
            short: Some(short),
            long: None,
            arg,
            key,
            value: "",
            doc: Doc::Hidden,
        }
    }

    /// A long-only option (`--select-rtt`).
    pub const fn long(long: &'static str, arg: HasArg, key: K) -> Self {
        Self {
            short: None,
            long: Some(long),
            arg,
            key,
            value: "",
            doc: Doc::Hidden,
        }
    }

    /// An option with both names (`-c`, `--community`).
    pub const fn both(short: char, long: &'static str, arg: HasArg, key: K) -> Self {
        Self {
            short: Some(short),
            long: Some(long),
            arg,
            key,
            value: "",
            doc: Doc::Hidden,
        }
    }

    /// The argument's name in the help.
    pub const fn value(self, value: &'static str) -> Self {
        Self { value, ..self }
    }

    /// One help entry with this description.
    pub const fn help(self, text: &'static str) -> Self {
        Self {
            doc: Doc::Text(text),
            ..self
        }
    }

    /// One help entry per form.
    pub const fn forms(self, forms: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            doc: Doc::Forms(forms),
            ..self
        }
    }

    /// The option's names as written in the help (`-c, --community`).
    pub fn names(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.short {
            s.push('-');
            s.push(c);
        }
        if let Some(l) = self.long {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str("--");
            s.push_str(l);
        }
        s
    }

    /// The shortest name (`-c`, else `--select-rtt`).
    pub fn name(&self) -> String {
        match (self.short, self.long) {
            (Some(c), _) => format!("-{c}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => String::new(),
        }
    }
}

/// A titled group of options in the help.
#[derive(Debug, Clone, Copy)]
pub struct Section<K: 'static> {
    /// Title line (`UNDERLYING CONNECTION`).
    pub title: &'static str,
    /// The options, in help order.
    pub options: &'static [OptDef<K>],
}

/// An environment variable standing for an option when the option is not
/// given (its value is applied before the configuration file and the
/// command line, so those win). Empty values count as unset.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar<K> {
    /// Variable name (`N2N_KEY`).
    pub name: &'static str,
    /// The option it stands for.
    pub key: K,
}

/// Every option of one binary, and the text around them in the help.
#[derive(Debug, Clone, Copy)]
pub struct Table<K: 'static> {
    /// Program name (`edge`).
    pub program: &'static str,
    /// One-line description, after `program: `.
    pub about: &'static str,
    /// Usage lines, without the program's `usage: ` prefix.
    pub usage: &'static [&'static str],
    /// Paragraphs between the usage and the options ("" = none).
    pub intro: &'static str,
    /// The options, grouped.
    pub sections: &'static [Section<K>],
    /// Environment variables.
    pub env: &'static [EnvVar<K>],
    /// Text after the options and environment (e.g. `EXIT STATUS`).
    pub epilogue: &'static str,
    /// Body of the short help (after the usage), "" = none.
    pub brief: &'static str,
    /// Whether `-p=7654` means `-p 7654` on the command line (the
    /// supernode's earlier parser accepted it; glibc passes `=7654`).
    pub equals_after_short: bool,
}

impl<K: Copy + PartialEq + 'static> Table<K> {
    /// A table with these sections and no help text around them.
    pub const fn new(program: &'static str, sections: &'static [Section<K>]) -> Self {
        Self {
            program,
            about: "",
            usage: &[],
            intro: "",
            sections,
            env: &[],
            epilogue: "",
            brief: "",
            equals_after_short: false,
        }
    }

    /// Every option, in table order.
    pub fn options(&self) -> impl Iterator<Item = &OptDef<K>> {
        self.sections.iter().flat_map(|s| s.options.iter())
    }

    /// The option with this key.
    pub fn find(&self, key: K) -> Option<&OptDef<K>> {
        self.options().find(|d| d.key == key)
    }

    fn header(&self, out: &mut String) {
        let _ = writeln!(out, "{}: {}", self.program, self.about);
        for (i, u) in self.usage.iter().enumerate() {
            let lead = if i == 0 { "\nusage: " } else { "       " };
            let _ = writeln!(out, "{lead}{u}");
        }
    }

    /// The short help (`-h` of the edge): header and [`Table::brief`].
    pub fn short_help(&self) -> String {
        let mut out = String::new();
        self.header(&mut out);
        if !self.brief.is_empty() {
            let _ = writeln!(out, "\n{}", self.brief);
        }
        out
    }

    /// The full help: header, intro, every documented option by section,
    /// the environment variables, the epilogue.
    pub fn help(&self) -> String {
        let mut out = String::new();
        self.header(&mut out);
        if !self.intro.is_empty() {
            let _ = writeln!(out, "\n{}", self.intro);
        }
        for section in self.sections {
            let _ = writeln!(out, "\n{}", section.title);
            for def in section.options {
                match def.doc {
                    Doc::Text(text) => {
                        let mut form = def.names();
                        if !def.value.is_empty() {
                            form.push(' ');
                            form.push_str(def.value);
                        }
                        entry(&mut out, &form, text);
                    }
                    Doc::Forms(forms) => {
                        for (form, text) in forms {
                            entry(&mut out, form, text);
                        }
                    }
                    Doc::Hidden => {}
                }
            }
        }
        if !self.env.is_empty() {
            let names: Vec<&str> = self.env.iter().map(|e| e.name).collect();
            let opts: Vec<String> = self
                .env
                .iter()
                .map(|e| self.find(e.key).map(OptDef::name).unwrap_or_default())
                .collect();
            let verb = if opts.len() == 1 { "is" } else { "are" };
            let line = format!(
                " {}   used when {} {verb} not given",
                names.join(", "),
                opts.join(", ")
            );
            // Too wide for a terminal: the names on a line of their own.
            let line = if line.len() > 80 {
                format!(
                    " {}\n   used when {} {verb} not given",
                    names.join(", "),
                    opts.join(", ")
                )
            } else {
                line
            };
            let _ = writeln!(out, "\nENVIRONMENT\n{line}");
        }
        if !self.epilogue.is_empty() {
            let _ = writeln!(out, "\n{}", self.epilogue);
        }
        out
    }
}

/// One help entry: ` form` padded to the column, then the description.
fn entry(out: &mut String, form: &str, text: &str) {
    let pad = " ".repeat(HELP_COLUMN);
    let left = format!(" {form}");
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    if left.len() < HELP_COLUMN {
        let _ = writeln!(out, "{left:<HELP_COLUMN$}{first}");
    } else {
        let _ = writeln!(out, "{left}\n{pad}{first}");
    }
    for l in lines {
        let _ = writeln!(out, "{pad}{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HasArg::{No, Optional, Required};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum K {
        Name,
        Level,
        Verbose,
        Secret,
        Help,
    }

    const A: &[OptDef<K>] = &[
        OptDef::both('n', "name", Required, K::Name)
            .value("<name>")
            .help("the name\n(required)"),
        OptDef::short('z', Optional, K::Level).forms(&[
            ("-z1", "level one"),
            ("-z2", "level two"),
            ("", "bare -z = -z1"),
        ]),
    ];
    const B: &[OptDef<K>] = &[
        OptDef::both('v', "verbose", No, K::Verbose).help("more"),
        OptDef::long("a-rather-long-option-name", Required, K::Secret)
            .value("<value>")
            .help("wide"),
        OptDef::short('s', No, K::Help),
    ];
    const SECTIONS: &[Section<K>] = &[
        Section {
            title: "FIRST",
            options: A,
        },
        Section {
            title: "SECOND",
            options: B,
        },
    ];
    const TABLE: Table<K> = Table {
        about: "a test",
        usage: &["prog [options]", "prog --help"],
        intro: "Intro.",
        env: &[EnvVar {
            name: "PROG_NAME",
            key: K::Name,
        }],
        epilogue: "EXIT STATUS\n 0 fine",
        brief: " -n <name>   the name",
        ..Table::new("prog", SECTIONS)
    };

    #[test]
    fn help_layout() {
        let expected = "\
prog: a test

usage: prog [options]
       prog --help

Intro.

FIRST
 -n, --name <name>          the name
                            (required)
 -z1                        level one
 -z2                        level two
                            bare -z = -z1

SECOND
 -v, --verbose              more
 --a-rather-long-option-name <value>
                            wide

ENVIRONMENT
 PROG_NAME   used when -n is not given

EXIT STATUS
 0 fine
";
        assert_eq!(TABLE.help(), expected);
        assert_eq!(
            TABLE.short_help(),
            "prog: a test\n\nusage: prog [options]\n       prog --help\n\n -n <name>   the name\n"
        );
    }

    #[test]
    fn names_and_lookup() {
        let v = TABLE.find(K::Verbose).unwrap();
        assert_eq!((v.names(), v.name()), ("-v, --verbose".into(), "-v".into()));
        let l = TABLE.find(K::Secret).unwrap();
        assert_eq!(l.name(), "--a-rather-long-option-name");
        assert_eq!(TABLE.options().count(), 5);
        // Hidden options are accepted but not listed.
        assert_eq!(TABLE.find(K::Help).unwrap().doc, Doc::Hidden);
        assert!(!TABLE.help().contains("-s"));
    }
}
