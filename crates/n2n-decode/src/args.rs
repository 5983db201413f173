//! Command-line parsing (no dependencies; accepts `-A3` and `-A 3` like C n2n).

use std::ffi::OsString;
use std::path::PathBuf;

/// The usage text (`-h`).
pub const USAGE: &str = "\
usage: n2n-decode [options] FILE.pcap

Prints one JSON object per UDP datagram of FILE.pcap on stdout, one per line.

options:
  -c COMMUNITY          community name (needed by -H and --dynamic-key)
  -k KEY                payload key: decrypt PACKET payloads (AES unless -A)
  -A N                  payload transform: 1 null, 2 Twofish, 3 AES,
                        4 ChaCha20, 5 Speck, 6 ChaCha20-Poly1305, 7 AES-256-GCM
  -H                    remove header encryption with COMMUNITY's static keys
  --dynamic-key HEX     user/password community: 16-byte dynamic key D (hex)
  --federation NAME     remove supernode-to-supernode header encryption of the
                        federation NAME (keys from *Federation, name field
                        '*NAME' written over '*Federation' as C does)
  --time-from-capture   check header-encryption time stamps against the
                        capture time (window ±16 s; replay check per source
                        socket, 160 ms jitter for PACKET/QUERY_PEER/PEER_INFO)
  -h, --help            this text

exit status: 0 when the file was read, 2 on a bad file or bad arguments.
";

/// Parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-c`.
    pub community: Option<String>,
    /// `-k`.
    pub key: Option<String>,
    /// `-A`.
    pub transform: Option<u8>,
    /// `-H`.
    pub header_encryption: bool,
    /// `--dynamic-key`.
    pub dynamic_key: Option<[u8; 16]>,
    /// `--federation` (without the leading `*`).
    pub federation: Option<String>,
    /// `--time-from-capture`.
    pub time_from_capture: bool,
    /// The capture file.
    pub file: PathBuf,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Decode a file.
    Decode(Options),
    /// Print the usage and exit 0.
    Help,
}

fn utf8(a: OsString, what: &str) -> Result<String, String> {
    a.into_string()
        .map_err(|_| format!("{what}: argument is not valid UTF-8"))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut o = Options::default();
    let mut file: Option<PathBuf> = None;
    let mut it = args.into_iter();
    let mut only_files = false;
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy().into_owned();
        if only_files || s == "-" || !s.starts_with('-') {
            if file.replace(PathBuf::from(arg)).is_some() {
                return Err("more than one capture file given".into());
            }
            continue;
        }
        if s == "--" {
            only_files = true;
            continue;
        }
        // Long options: `--name VALUE` or `--name=VALUE`.
        if let Some(long) = s.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let mut value = |inline: Option<String>| -> Result<String, String> {
                match inline {
                    Some(v) => Ok(v),
                    None => it
                        .next()
                        .ok_or_else(|| format!("--{name} needs a value"))
                        .and_then(|v| utf8(v, name)),
                }
            };
            match name {
                "help" => return Ok(Command::Help),
                "time-from-capture" if inline.is_none() => o.time_from_capture = true,
                "federation" => {
                    let v = value(inline)?;
                    let v = v.strip_prefix('*').unwrap_or(&v).to_owned();
                    if v.is_empty() || v.contains('\0') {
                        return Err("--federation: empty or invalid name".into());
                    }
                    o.federation = Some(v);
                }
                "dynamic-key" => {
                    let v = value(inline)?;
                    let bytes = hex::decode(v.trim())
                        .map_err(|e| format!("--dynamic-key: bad hex ({e})"))?;
                    let d: [u8; 16] = bytes
                        .try_into()
                        .map_err(|_| "--dynamic-key: need exactly 16 bytes (32 hex digits)")?;
                    o.dynamic_key = Some(d);
                }
                _ => return Err(format!("unknown option --{name}")),
            }
            continue;
        }
        // Short options: `-X`, `-XVALUE`, `-X VALUE`.
        let mut chars = s.chars();
        chars.next(); // '-'
        let Some(flag) = chars.next() else {
            return Err("empty option".into());
        };
        let rest: String = chars.collect();
        let mut value = |rest: String| -> Result<String, String> {
            if rest.is_empty() {
                it.next()
                    .ok_or_else(|| format!("-{flag} needs a value"))
                    .and_then(|v| utf8(v, &format!("-{flag}")))
            } else {
                Ok(rest)
            }
        };
        match flag {
            'h' if rest.is_empty() => return Ok(Command::Help),
            'H' if rest.is_empty() => o.header_encryption = true,
            'c' => o.community = Some(value(rest)?),
            'k' => o.key = Some(value(rest)?),
            'A' => {
                let v = value(rest)?;
                let n: u8 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("-A: bad transform number {v:?}"))?;
                o.transform = Some(n);
            }
            _ => return Err(format!("unknown option {s}")),
        }
    }
    o.file = file.ok_or("no capture file given")?;
    if (o.header_encryption || o.dynamic_key.is_some()) && o.community.is_none() {
        return Err("-H and --dynamic-key need -c COMMUNITY".into());
    }
    if let Some(c) = &o.community {
        n2n_proto::types::Community::new(c).map_err(|e| format!("-c: {e}"))?;
    }
    if o.key.as_deref() == Some("") {
        return Err("-k: empty key".into());
    }
    if o.dynamic_key.is_some() && !o.header_encryption {
        // A dynamic key only makes sense with header encryption: imply -H.
        o.header_encryption = true;
    }
    Ok(Command::Decode(o))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    fn opts(args: &[&str]) -> Options {
        match p(args).unwrap() {
            Command::Decode(o) => o,
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn short_forms() {
        let o = opts(&["-c", "rocks", "-A3", "-k", "s3cret", "-H", "f.pcap"]);
        assert_eq!(o.community.as_deref(), Some("rocks"));
        assert_eq!(o.transform, Some(3));
        assert_eq!(o.key.as_deref(), Some("s3cret"));
        assert!(o.header_encryption);
        assert_eq!(o.file, PathBuf::from("f.pcap"));
        let o = opts(&["-crocks", "-A", "4", "-ks3cret", "f.pcap"]);
        assert_eq!(o.community.as_deref(), Some("rocks"));
        assert_eq!(o.transform, Some(4));
        assert_eq!(o.key.as_deref(), Some("s3cret"));
        assert!(!o.header_encryption);
    }

    #[test]
    fn long_forms() {
        let o = opts(&[
            "--federation=*rocksFed",
            "--dynamic-key",
            "f052801e1d42d4809db60be35e0da259",
            "-c",
            "rocks",
            "--time-from-capture",
            "--",
            "-weird.pcap",
        ]);
        assert_eq!(o.federation.as_deref(), Some("rocksFed"));
        assert_eq!(o.dynamic_key.unwrap()[0], 0xf0);
        assert!(o.header_encryption, "--dynamic-key implies -H");
        assert!(o.time_from_capture);
        assert_eq!(o.file, PathBuf::from("-weird.pcap"));
        assert_eq!(p(&["--help"]).unwrap(), Command::Help);
        assert_eq!(p(&["-h", "x"]).unwrap(), Command::Help);
    }

    #[test]
    fn errors() {
        for bad in [
            &[][..],
            &["-H", "f.pcap"],
            &["-c"],
            &["-A", "x", "f"],
            &["-A"],
            &["--federation"],
            &["--dynamic-key", "00", "-c", "r", "f"],
            &["--dynamic-key", "zz", "-c", "r", "f"],
            &["-q", "f"],
            &["--bogus", "f"],
            &["a", "b"],
            &["-c", "", "f"],
            &["-c", "01234567890123456789", "f"],
            &["-k", "", "f"],
            &["--time-from-capture=1", "f"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
    }
}
