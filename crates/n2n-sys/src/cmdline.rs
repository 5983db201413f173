//! Hiding a secret given on the command line from `ps` and
//! `/proc/PID/cmdline` (Linux).
//!
//! The kernel shows a process's arguments from its own memory, the
//! argument area at the top of the initial stack (`arg_start..arg_end` in
//! `/proc/self/stat`). Overwriting the secret's bytes there hides it. This
//! is done through `/proc/self/mem` (a process may always write its own
//! memory that way), so no `unsafe` code is involved, and only after the
//! arguments were parsed: `std::env::args` reads that memory afresh on every
//! call and nothing holds a reference into it.
//!
//! Limits (documented for users, e.g. in `edge --help` for `-J`): the
//! secret is visible between `exec` and the overwrite (a few milliseconds),
//! and shells, process accounting or audit logs may have recorded the
//! command line anyway. `N2N_PASSWORD` (or a configuration file readable
//! only by root) never puts it on the command line at all. C n2n does not
//! hide its arguments.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The replacement byte.
const MASK: u8 = b'*';

/// `arg_start` and `arg_end` of `/proc/self/stat` (fields 48 and 49).
fn arg_area() -> io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: the first one after ')' is field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("unexpected /proc/self/stat format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("/proc/self/stat has no field {n}")))
    };
    let (start, end) = (field(48)?, field(49)?);
    if end < start || end - start > 1 << 24 {
        return Err(io::Error::other(
            "implausible argument area in /proc/self/stat",
        ));
    }
    Ok((start, end))
}

/// Which byte ranges of the NUL-separated argument area `area` hold
/// `secret`: arguments equal to it, and the part after a prefix from
/// `attached` (e.g. `-J` for `-Jsecret`).
fn secret_ranges(area: &[u8], secret: &[u8], attached: &[&[u8]]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if secret.is_empty() {
        return out;
    }
    let mut pos = 0;
    for arg in area.split(|&b| b == 0) {
        if arg == secret {
            out.push((pos, arg.len()));
        } else if let Some(p) = attached.iter().find(|p| {
            arg.len() == p.len() + secret.len() && arg.starts_with(p) && arg.ends_with(secret)
        }) {
            out.push((pos + p.len(), secret.len()));
        }
        pos += arg.len() + 1;
    }
    out
}

/// Overwrites every occurrence of `secret` among this process's arguments
/// (whole arguments, or after one of the `attached` option prefixes) with
/// `*`, so that `ps` and `/proc/PID/cmdline` no longer show it. Returns the
/// number of arguments changed. Call it while only one thread runs.
pub fn hide_argument(secret: &[u8], attached: &[&[u8]]) -> io::Result<usize> {
    let (start, end) = arg_area()?;
    let mut mem = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/proc/self/mem")?;
    let len = usize::try_from(end - start).map_err(io::Error::other)?;
    let mut area = vec![0u8; len];
    mem.seek(SeekFrom::Start(start))?;
    mem.read_exact(&mut area)?;
    let ranges = secret_ranges(&area, secret, attached);
    for &(off, n) in &ranges {
        mem.seek(SeekFrom::Start(start + off as u64))?;
        mem.write_all(&vec![MASK; n])?;
    }
    Ok(ranges.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_and_attached_arguments() {
        let area = b"edge\0-J\0pw1\0-c\0x\0-Jpw1\0pw12\0--J\0";
        let r = secret_ranges(area, b"pw1", &[b"-J"]);
        assert_eq!(r, vec![(8, 3), (19, 3)]);
        assert!(secret_ranges(area, b"", &[b"-J"]).is_empty());
    }

    #[test]
    fn overwrites_own_cmdline() {
        // Our own last argument (the test binary path when no filter is
        // given): hidden in /proc/self/cmdline, same length.
        let before = std::fs::read("/proc/self/cmdline").unwrap();
        let last = before
            .split(|&b| b == 0)
            .rfind(|a| !a.is_empty())
            .unwrap()
            .to_vec();
        let n = hide_argument(&last, &[]).unwrap();
        assert!(n >= 1);
        let after = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(after.len(), before.len());
        let args: Vec<&[u8]> = after.split(|&b| b == 0).collect();
        assert!(!args.contains(&last.as_slice()), "{after:?}");
        assert!(
            args.iter()
                .any(|a| a.len() == last.len() && a.iter().all(|&b| b == MASK))
        );
    }
}
