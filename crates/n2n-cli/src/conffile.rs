//! Configuration files in C n2n's format (cli.md §3.1), turned into an
//! argument vector that the binaries parse like their command line.
//!
//! ```text
//! # edge.conf
//! -c=mynetwork
//! -a 192.168.100.1/24
//! -A3
//! ```
//!
//! One option per line; white space and `"`/`'` around a line are stripped;
//! lines shorter than 2 bytes or starting with `#` are skipped; at most
//! [`MAX_LINE`] bytes. The line splits at the first space, tab or `=`: the
//! option, then its argument — the *whole rest of the line* for the edge,
//! only the next token for the supernode ([`Flavor`]). A file is recognised
//! only as the first command-line argument, and only when it does not start
//! with `-` ([`config_file_arg`]); [`expand`] puts its options before the
//! remaining command-line arguments, so those win.

use crate::CliError;

/// Longest line C n2n reads.
pub const MAX_LINE: usize = 4096;

/// Which program reads the file: the edge takes the whole rest of a line as
/// the argument, the supernode only the next token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `edge`.
    Edge,
    /// `supernode`.
    Supernode,
}

/// A broken configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A line is longer than [`MAX_LINE`] bytes.
    #[error("line {line}: longer than {MAX_LINE} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// A line does not start with an option.
    #[error("line {line}: '{text}' is not an option (options start with '-')")]
    NotAnOption {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
}

fn strip(line: &str) -> &str {
    line.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
}

/// Convert the text of a configuration file into arguments.
pub fn file_to_args(text: &str, flavor: Flavor) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if raw.len() > MAX_LINE {
            return Err(ConfigError::LineTooLong { line: line_no });
        }
        let line = strip(raw);
        if line.len() < 2 || line.starts_with('#') {
            continue;
        }
        if !line.starts_with('-') {
            return Err(ConfigError::NotAnOption {
                line: line_no,
                text: line.to_owned(),
            });
        }
        match line.find([' ', '\t', '=']) {
            None => out.push(line.to_owned()),
            Some(pos) => {
                let opt = &line[..pos];
                let rest = line[pos + 1..].trim_start_matches([' ', '\t']);
                out.push(opt.to_owned());
                let arg = match flavor {
                    Flavor::Edge => rest.trim_end(),
                    Flavor::Supernode => rest.split([' ', '\t']).next().unwrap_or(""),
                };
                if !arg.is_empty() {
                    out.push(arg.to_owned());
                }
            }
        }
    }
    Ok(out)
}

/// If the first argument (after the program name) names a configuration
/// file (it does not start with `-`), return its path.
pub fn config_file_arg(args: &[String]) -> Option<&str> {
    args.get(1)
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
}

/// The arguments to scan (without the program name): those of the
/// configuration file named by `argv[1]`, if any (read with `read_file`),
/// followed by the rest of `argv`.
pub fn expand(
    argv: &[String],
    flavor: Flavor,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<Vec<String>, CliError> {
    let Some(path) = config_file_arg(argv) else {
        return Ok(argv.get(1..).unwrap_or_default().to_vec());
    };
    let text = read_file(path).map_err(|e| CliError::ConfigRead {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut args = file_to_args(&text, flavor).map_err(|source| CliError::ConfigSyntax {
        path: path.to_owned(),
        source,
    })?;
    args.extend(argv.get(2..).unwrap_or_default().iter().cloned());
    Ok(args)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn edge_file() {
        let text = "# edge.conf\n-c=mynetwork\n-k=my secret pass \n-a 192.168.100.1/24\n\
                    -l supernode.example.net:7654\n-A3\n-f\n\n  \"-v\"  \n-c = x\n";
        let args = file_to_args(text, Flavor::Edge).unwrap();
        assert_eq!(
            args,
            [
                "-c",
                "mynetwork",
                "-k",
                "my secret pass",
                "-a",
                "192.168.100.1/24",
                "-l",
                "supernode.example.net:7654",
                "-A3",
                "-f",
                "-v",
                "-c",
                "= x"
            ]
        );
    }

    #[test]
    fn supernode_takes_one_token() {
        let args = file_to_args(
            "-p=7654\n-c community.list trailing\n--management-password\tpw x\n",
            Flavor::Supernode,
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "-p",
                "7654",
                "-c",
                "community.list",
                "--management-password",
                "pw"
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = file_to_args("-f\ncommunity rocks\n", Flavor::Edge).unwrap_err();
        assert_eq!(
            e,
            ConfigError::NotAnOption {
                line: 2,
                text: "community rocks".into()
            }
        );
        assert!(e.to_string().contains("line 2"));
        let long = format!("-c {}\n", "x".repeat(5000));
        assert_eq!(
            file_to_args(&long, Flavor::Edge),
            Err(ConfigError::LineTooLong { line: 1 })
        );
    }

    #[test]
    fn config_file_only_first() {
        let a: Vec<String> = ["edge", "/etc/n2n/edge.conf", "-f"]
            .map(String::from)
            .into();
        assert_eq!(config_file_arg(&a), Some("/etc/n2n/edge.conf"));
        let a: Vec<String> = ["edge", "-f", "x.conf"].map(String::from).into();
        assert_eq!(config_file_arg(&a), None);
    }

    #[test]
    fn expand_puts_the_file_first() {
        let argv: Vec<String> = ["edge", "/x/edge.conf", "-c", "late"]
            .map(String::from)
            .into();
        let read = |p: &str| {
            assert_eq!(p, "/x/edge.conf");
            Ok("-c=rocks\n-k my key\n".to_owned())
        };
        assert_eq!(
            expand(&argv, Flavor::Edge, &read).unwrap(),
            ["-c", "rocks", "-k", "my key", "-c", "late"]
        );
        let fail = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let e = expand(&argv, Flavor::Edge, &fail).unwrap_err().to_string();
        assert!(e.starts_with("config file /x/edge.conf: "), "{e}");
        let bad = |_: &str| Ok("community rocks\n".to_owned());
        let e = expand(&argv, Flavor::Supernode, &bad)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config file /x/edge.conf: line 1: 'community rocks' is not an option \
             (options start with '-')"
        );
        // No file: the arguments as they are; the file is never read.
        let argv: Vec<String> = ["edge", "-f", "x.conf"].map(String::from).into();
        assert_eq!(
            expand(&argv, Flavor::Edge, &fail).unwrap(),
            ["-f", "x.conf"]
        );
        assert!(expand(&argv[..1], Flavor::Edge, &fail).unwrap().is_empty());
    }
}
