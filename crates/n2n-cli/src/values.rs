//! Value parsers both binaries use. Each returns the error of the option it
//! was given for (`option -t: 'x' is not a port 1..65535`).

use crate::CliError;

/// Longest supernode address (`-l`, characters) C n2n accepts.
pub const SUPERNODE_MAX: usize = 47;

/// A port 1..=65535.
pub fn port(option: &str, v: &str) -> Result<u16, CliError> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| CliError::bad(option, format!("'{v}' is not a port 1..65535")))
}

/// A numeric user or group id (`-u`, `-g`).
pub fn id(option: &str, v: &str) -> Result<u32, CliError> {
    v.parse()
        .map_err(|_| CliError::bad(option, format!("'{v}' is not a numeric id")))
}

/// A supernode address `host:port` (`-l`): at most [`SUPERNODE_MAX`]
/// characters, a host without spaces, a port 1..=65535. The host is not
/// resolved here.
pub fn supernode(option: &str, v: &str) -> Result<(), CliError> {
    if v.chars().count() > SUPERNODE_MAX {
        return Err(CliError::bad(
            option,
            format!("supernode '{v}' is longer than {SUPERNODE_MAX} characters"),
        ));
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(|| {
        CliError::bad(
            option,
            format!("supernode '{v}' has no ':port': use host:port"),
        )
    })?;
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(CliError::bad(
            option,
            format!("supernode '{v}' has no valid host name"),
        ));
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            CliError::bad(
                option,
                format!("supernode '{v}': '{port}' is not a port 1..65535"),
            )
        })?;
    Ok(())
}

/// Six groups of one or two hex digits separated by one of `separators`
/// (`xx:xx:xx:xx:xx:xx`).
pub fn mac(v: &str, separators: &[char]) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = v.split(separators);
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `strtol(s, NULL, 0)` for non-negative values: `0x..` hex, `0..` octal,
/// else decimal; the whole string must be consumed.
pub fn c_integer(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(s.get(1..)?, 8).ok()
    } else {
        s.parse().ok()
    }
}

/// The longest prefix of `s` of at most `max` bytes, or `None` when the cut
/// would split a character.
pub fn truncate_bytes(s: &str, max: usize) -> Option<&str> {
    if s.len() <= max {
        Some(s)
    } else {
        s.get(..max)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ports_and_ids() {
        assert_eq!(port("-t", "5644").unwrap(), 5644);
        for bad in ["0", "65536", "x", "", "-1", " 1"] {
            let e = port("-t", bad).unwrap_err().to_string();
            assert_eq!(e, format!("option -t: '{bad}' is not a port 1..65535"));
        }
        assert_eq!(id("-u", "0").unwrap(), 0);
        assert_eq!(id("--euid", "4294967295").unwrap(), u32::MAX);
        let e = id("--euid", "-1").unwrap_err().to_string();
        assert_eq!(e, "option --euid: '-1' is not a numeric id");
    }

    #[test]
    fn supernode_addresses() {
        for ok in [
            "h:1",
            "sn.example.net:7654",
            "198.18.0.1:7654",
            "[::1]:7654",
        ] {
            supernode("-l", ok).unwrap();
        }
        for (bad, needle) in [
            ("nohost", "no ':port'"),
            (":5", "no valid host name"),
            ("a b:5", "no valid host name"),
            ("h:0", "'0' is not a port"),
            ("h:x", "'x' is not a port"),
            ("h:70000", "'70000' is not a port"),
            (
                "a-very-long-supernode-name.example.invalid.net:7654",
                "longer than 47",
            ),
        ] {
            let e = supernode("-l", bad).unwrap_err().to_string();
            assert!(e.starts_with("option -l: ") && e.contains(needle), "{e}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(mac("2:0:0:a:b:C", &[':']), Some([2, 0, 0, 0xa, 0xb, 0xc]));
        assert_eq!(mac("0-1-2-3-4-5", &[':', '-']), Some([0, 1, 2, 3, 4, 5]));
        assert_eq!(mac("0-1-2-3-4-5", &[':']), None);
        for bad in [
            "",
            "1:2:3:4:5",
            "1:2:3:4:5:6:7",
            "100:2:3:4:5:6",
            "gg:0:0:0:0:0",
            "1::3:4:5:6",
        ] {
            assert_eq!(mac(bad, &[':']), None, "{bad}");
        }
    }

    #[test]
    fn c_integers_and_truncation() {
        assert_eq!(c_integer("16"), Some(16));
        assert_eq!(c_integer("0x10"), Some(16));
        assert_eq!(c_integer("0X1f"), Some(31));
        assert_eq!(c_integer("010"), Some(8));
        assert_eq!(c_integer("0"), Some(0));
        assert_eq!(c_integer("08"), None);
        assert_eq!(c_integer("x"), None);
        assert_eq!(truncate_bytes("abcdef", 4), Some("abcd"));
        assert_eq!(truncate_bytes("abc", 4), Some("abc"));
        assert_eq!(truncate_bytes("aé", 2), None);
    }
}
