//! `n2n-keygen`: the key lines of n2n's user/password authentication
//! (cli.md §3.3, crypto.md §5.2), byte-identical to C n2n 3.1.1's tool.
//!
//! * `n2n-keygen <username> <password>` prints `* <username> <public key>`,
//!   a user line for the supernode's community file;
//! * `n2n-keygen -F <federation name>` prints `-P <federation public key>`,
//!   the edge option.
//!
//! Exactly two arguments, as in C: anything else prints C's usage text to
//! stderr and exits with status 1 (`-h`, `--help` included). Arguments are
//! taken as raw bytes. The password is never printed; the program's copy
//! of it is zeroed after use.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use n2n_proto::auth::{PrivateKey, PublicKey};
use zeroize::Zeroize;

/// C's usage text (tools/n2n-keygen.c of n2n 3.1.1), to stderr.
const USAGE: &str = "\n\
n2n-keygen tool\n\
\n\
\x20 usage:  n2n-keygen <username> <password>\n\
\n\
\x20    or   n2n-keygen -F <federation name>\n\
\n\
\x20         outputs a line to insert at supernode's community file for user-and-\n\
\x20         password authentication or a command line parameter with the public\n\
\x20         federation key for use at edge's command line, please refer to the\n\
\x20         doc/Authentication.md document or the man pages for more details\n\
\n";

#[cfg(unix)]
fn bytes(s: OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    s.into_vec()
}

#[cfg(not(unix))]
fn bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

/// The line to print for the two arguments.
fn line(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + first.len());
    if first == b"-F" {
        let fed = PublicKey::federation(second);
        out.extend_from_slice(b"-P ");
        out.extend_from_slice(fed.to_text().as_bytes());
    } else {
        let public = PrivateKey::user(first, second).public_key();
        out.extend_from_slice(b"* ");
        out.extend_from_slice(first);
        out.push(b' ');
        out.extend_from_slice(public.to_text().as_bytes());
    }
    out.push(b'\n');
    out
}

fn main() -> ExitCode {
    let mut args: Vec<Vec<u8>> = std::env::args_os().skip(1).map(bytes).collect();
    let code = if let [first, second] = &args[..] {
        let out = line(first, second);
        match std::io::stdout().lock().write_all(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "n2n-keygen: cannot write the key: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        // Error text to stderr so as not to interfere with batch usage (C).
        let _ = std::io::stderr().write_all(USAGE.as_bytes());
        ExitCode::FAILURE
    };
    for a in &mut args {
        a.zeroize();
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            line(b"logan", b"007"),
            b"* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG\n"
        );
        assert_eq!(
            line(b"-F", b"rocksFed"),
            b"-P RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm\n"
        );
    }
}
