//! The local options both daemons have, parsed once: `-f`, `-t`,
//! `--management-password`, `-v`/`-V`, `-u`/`-g`.
//!
//! A binary's option enum carries them as one variant
//! (`Opt::Common(CommonOpt::Verbose)`), its table lists them under the
//! binary's own names and help (the edge has no `--foreground`, the
//! supernode's `-V` is something else), and its `apply` hands them to
//! [`Common::apply`].

use crate::{CliError, required, values};

/// Log level without `-v`/`-V` (C `TRACE_NORMAL`).
pub const DEFAULT_VERBOSITY: u32 = 2;

/// A local option shared by the edge and the supernode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommonOpt {
    /// `-f`: stay in the foreground.
    Foreground,
    /// `-t <port>`: management UDP port on 127.0.0.1.
    MgmtPort,
    /// `--management-password <pw>`.
    MgmtPassword,
    /// `-v`: more logging (repeatable).
    Verbose,
    /// `-V` (edge): less logging (repeatable).
    Quiet,
    /// `-u <uid>`: user id to drop privileges to.
    Uid,
    /// `-g <gid>`: group id to drop privileges to.
    Gid,
}

/// The common options as given (later wins; `-v`/`-V` count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Common {
    /// `-f`.
    pub foreground: bool,
    /// `-t` (`None`: the binary's default).
    pub mgmt_port: Option<u16>,
    /// `--management-password` (`None`: the default `n2n`).
    pub mgmt_password: Option<String>,
    /// Number of `-v`.
    pub verbose: u32,
    /// Number of `-V`.
    pub quiet: u32,
    /// `-u`.
    pub uid: Option<u32>,
    /// `-g`.
    pub gid: Option<u32>,
}

impl Common {
    /// Apply one option (`name` as written, for messages).
    pub fn apply(
        &mut self,
        opt: CommonOpt,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), CliError> {
        match opt {
            CommonOpt::Foreground => self.foreground = true,
            CommonOpt::MgmtPort => {
                self.mgmt_port = Some(values::port(name, required(name, value)?)?)
            }
            CommonOpt::MgmtPassword => {
                self.mgmt_password = Some(required(name, value)?.to_owned());
            }
            CommonOpt::Verbose => self.verbose += 1,
            CommonOpt::Quiet => self.quiet += 1,
            CommonOpt::Uid => self.uid = Some(values::id(name, required(name, value)?)?),
            CommonOpt::Gid => self.gid = Some(values::id(name, required(name, value)?)?),
        }
        Ok(())
    }

    /// C trace level: [`DEFAULT_VERBOSITY`] plus the `-v`s minus the `-V`s
    /// (0 = errors only, 1 warnings, 2 normal, 3 info, 4+ debug).
    pub fn verbosity(&self) -> u32 {
        (DEFAULT_VERBOSITY + self.verbose).saturating_sub(self.quiet)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn later_wins_and_counts() {
        let mut c = Common::default();
        for (opt, name, v) in [
            (CommonOpt::Foreground, "-f", None),
            (CommonOpt::MgmtPort, "-t", Some("6000")),
            (CommonOpt::MgmtPort, "--mgmt-port", Some("6001")),
            (CommonOpt::MgmtPassword, "--management-password", Some("pw")),
            (CommonOpt::Verbose, "-v", None),
            (CommonOpt::Verbose, "-v", None),
            (CommonOpt::Quiet, "-V", None),
            (CommonOpt::Uid, "-u", Some("100")),
            (CommonOpt::Gid, "--egid", Some("0")),
        ] {
            c.apply(opt, name, v).unwrap();
        }
        assert_eq!(
            c,
            Common {
                foreground: true,
                mgmt_port: Some(6001),
                mgmt_password: Some("pw".into()),
                verbose: 2,
                quiet: 1,
                uid: Some(100),
                gid: Some(0),
            }
        );
        assert_eq!(c.verbosity(), 3);
        c.quiet = 9;
        assert_eq!(c.verbosity(), 0);
        assert_eq!(Common::default().verbosity(), DEFAULT_VERBOSITY);
    }

    #[test]
    fn errors_name_the_option_as_written() {
        let mut c = Common::default();
        let e = |c: &mut Common, opt, name, v| c.apply(opt, name, v).unwrap_err().to_string();
        assert_eq!(
            e(&mut c, CommonOpt::MgmtPort, "--mgmt-port", Some("0")),
            "option --mgmt-port: '0' is not a port 1..65535"
        );
        assert_eq!(
            e(&mut c, CommonOpt::Uid, "-u", Some("abc")),
            "option -u: 'abc' is not a numeric id"
        );
        assert_eq!(
            e(&mut c, CommonOpt::Gid, "-g", None),
            "option -g requires an argument"
        );
        assert_eq!(c, Common::default());
    }
}
