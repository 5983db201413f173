//! `--metrics [IP:]PORT`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// IP the metrics server binds to when `--metrics` names only a port.
pub const DEFAULT_METRICS_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Why a `--metrics` value was refused. The messages quote the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsAddrError {
    /// Nothing given.
    #[error("--metrics needs [IP:]PORT, e.g. 9645 or 0.0.0.0:9645")]
    Empty,
    /// The port part is not a number in 1..=65535.
    #[error("--metrics '{value}': port '{port}' is not a number from 1 to 65535")]
    BadPort {
        /// The whole value.
        value: String,
        /// The port part.
        port: String,
    },
    /// The address part is not an IPv4 or bracketed IPv6 address.
    #[error(
        "--metrics '{value}': '{ip}' is not an IP address (IPv4 like 127.0.0.1 or IPv6 in brackets like [::1]; host names are not resolved)"
    )]
    BadIp {
        /// The whole value.
        value: String,
        /// The address part.
        ip: String,
    },
    /// An IPv6 address without brackets (`::1:9645` is ambiguous).
    #[error("--metrics '{value}': write an IPv6 address in brackets, e.g. [::1]:9645")]
    Ipv6NeedsBrackets {
        /// The whole value.
        value: String,
    },
}

/// Parses `--metrics [IP:]PORT`: `9645` → 127.0.0.1:9645, `0.0.0.0:9645`, `[::1]:9645`.
/// Port 0 (a random port) is refused: the scrape config must know the port.
///
/// # Errors
/// [`MetricsAddrError`] naming the part that is wrong.
pub fn parse_metrics_addr(value: &str) -> Result<SocketAddr, MetricsAddrError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(MetricsAddrError::Empty);
    }
    let (ip, port) = match v.rsplit_once(':') {
        None => (None, v),
        Some((ip, port)) => {
            if let Some(inner) = ip.strip_prefix('[') {
                let inner = inner.strip_suffix(']').unwrap_or(inner);
                (Some((ip, inner, true)), port)
            } else if ip.contains(':') {
                return Err(MetricsAddrError::Ipv6NeedsBrackets {
                    value: value.into(),
                });
            } else {
                (Some((ip, ip, false)), port)
            }
        }
    };
    let port_num = match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            return Err(MetricsAddrError::BadPort {
                value: value.into(),
                port: port.into(),
            });
        }
    };
    let addr = match ip {
        None => IpAddr::V4(DEFAULT_METRICS_IP),
        Some((raw, inner, bracketed)) => {
            let parsed = if bracketed && raw.ends_with(']') {
                inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
            } else if bracketed {
                None
            } else {
                inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
            };
            parsed.ok_or_else(|| MetricsAddrError::BadIp {
                value: value.into(),
                ip: raw.into(),
            })?
        }
    };
    Ok(SocketAddr::new(addr, port_num))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        match parse_metrics_addr(s) {
            Ok(a) => a.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(ok("9645"), "127.0.0.1:9645");
        assert_eq!(ok(" 9645 "), "127.0.0.1:9645");
        assert_eq!(ok("0.0.0.0:9645"), "0.0.0.0:9645");
        assert_eq!(ok("198.18.0.1:1"), "198.18.0.1:1");
        assert_eq!(ok("[::1]:9645"), "[::1]:9645");
        assert_eq!(ok("[::]:65535"), "[::]:65535");
    }

    #[test]
    fn refused_forms_name_the_problem() {
        assert_eq!(parse_metrics_addr(""), Err(MetricsAddrError::Empty));
        assert_eq!(parse_metrics_addr("  "), Err(MetricsAddrError::Empty));
        for (v, port) in [
            ("0", "0"),
            ("65536", "65536"),
            ("abc", "abc"),
            ("+80", "+80"),
            ("127.0.0.1:", ""),
            ("127.0.0.1:http", "http"),
            ("[::1]:0", "0"),
        ] {
            assert_eq!(
                parse_metrics_addr(v),
                Err(MetricsAddrError::BadPort {
                    value: v.into(),
                    port: port.into()
                }),
                "{v}"
            );
        }
        for (v, ip) in [
            ("localhost:9645", "localhost"),
            ("1.2.3:9645", "1.2.3"),
            ("[1.2.3.4]:9645", "[1.2.3.4]"),
            ("[::1:9645", "[::1"),
            (":9645", ""),
        ] {
            assert_eq!(
                parse_metrics_addr(v),
                Err(MetricsAddrError::BadIp {
                    value: v.into(),
                    ip: ip.into()
                }),
                "{v}"
            );
        }
        assert_eq!(
            parse_metrics_addr("::1:9645"),
            Err(MetricsAddrError::Ipv6NeedsBrackets {
                value: "::1:9645".into()
            })
        );
        let msg = ok("localhost:9645");
        assert!(msg.contains("'localhost' is not an IP address"), "{msg}");
        let msg = ok("99999");
        assert!(
            msg.contains("port '99999' is not a number from 1 to 65535"),
            "{msg}"
        );
    }
}
