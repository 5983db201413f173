//! Traffic filter rules (`-R`, cli.md §4), parsed into typed values.
//!
//! ```text
//! src_ip[/bits][:port | :[start,end]] , dst_ip[/bits][:port | :[start,end]] [,TCP+|TCP-] [,UDP+|UDP-] [,ICMP+|ICMP-]
//! ```
//!
//! Missing `/bits` = /32, missing ports = 0..=65535. No spaces are allowed.
//! A rule only applies to the protocols it names (`+` accept, `-` drop).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// What a rule does with a matching frame of one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `+`: let the frame through.
    Accept,
    /// `-`: drop the frame.
    Drop,
}

/// One side (source or destination) of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleEndpoint {
    /// Network address as written (host bits are ignored when matching).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32 (default 32).
    pub prefix: u8,
    /// First port of the range (default 0).
    pub port_min: u16,
    /// Last port of the range, inclusive (default 65535).
    pub port_max: u16,
}

impl RuleEndpoint {
    /// Netmask of [`Self::prefix`] as a host-order integer.
    pub fn mask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }

    /// Whether `ip` lies inside this endpoint's network.
    pub fn contains_addr(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }

    /// Whether `port` lies inside this endpoint's port range.
    pub fn contains_port(&self, port: u16) -> bool {
        (self.port_min..=self.port_max).contains(&port)
    }
}

/// One `-R` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficRule {
    /// Source side.
    pub src: RuleEndpoint,
    /// Destination side.
    pub dst: RuleEndpoint,
    /// `TCP+` / `TCP-`, or `None` when the rule does not name TCP.
    pub tcp: Option<Verdict>,
    /// `UDP+` / `UDP-`.
    pub udp: Option<Verdict>,
    /// `ICMP+` / `ICMP-`.
    pub icmp: Option<Verdict>,
}

impl TrafficRule {
    /// Specificity used to pick among several matching rules: the rule with
    /// the largest `src bits + dst bits` wins.
    pub fn specificity(&self) -> u8 {
        self.src.prefix + self.dst.prefix
    }
}

/// Why a `-R` rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad rule '{rule}': {reason}")]
pub struct RuleError {
    /// The rule text as given.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for TrafficRule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| RuleError {
            rule: s.to_owned(),
            reason,
        };
        if s.chars().any(char::is_whitespace) {
            return Err(err("rules must not contain spaces".into()));
        }
        let (src, rest) = parse_endpoint(s, "source").map_err(err)?;
        let rest = rest
            .strip_prefix(',')
            .ok_or_else(|| err("expected ',' and a destination after the source".into()))?;
        let (dst, rest) = parse_endpoint(rest, "destination").map_err(err)?;
        let mut rule = TrafficRule {
            src,
            dst,
            tcp: None,
            udp: None,
            icmp: None,
        };
        if rest.is_empty() {
            return Ok(rule);
        }
        let rest = rest
            .strip_prefix(',')
            .ok_or_else(|| err(format!("unexpected '{rest}' after the destination")))?;
        for item in rest.split(',') {
            let upper = item.to_ascii_uppercase();
            let (proto, verdict) = if let Some(p) = upper.strip_suffix('+') {
                (p, Verdict::Accept)
            } else if let Some(p) = upper.strip_suffix('-') {
                (p, Verdict::Drop)
            } else {
                return Err(err(format!(
                    "'{item}' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-"
                )));
            };
            let slot = match proto {
                "TCP" => &mut rule.tcp,
                "UDP" => &mut rule.udp,
                "ICMP" => &mut rule.icmp,
                _ => {
                    return Err(err(format!(
                        "'{item}' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-"
                    )));
                }
            };
            if slot.is_some() {
                return Err(err(format!("{proto} is named twice")));
            }
            *slot = Some(verdict);
        }
        Ok(rule)
    }
}

/// Parse `ip[/bits][:port | :[start,end]]` at the start of `s`; return the
/// endpoint and the unparsed rest (starting at the `,` that ends it, if any).
fn parse_endpoint<'a>(s: &'a str, what: &str) -> Result<(RuleEndpoint, &'a str), String> {
    let addr_end = s.find([':', ',', '/']).unwrap_or(s.len());
    let addr_text = &s[..addr_end];
    let addr: Ipv4Addr = addr_text
        .parse()
        .map_err(|_| format!("{what} address '{addr_text}' is not an IPv4 address"))?;
    let mut rest = &s[addr_end..];
    let mut prefix = 32u8;
    if let Some(r) = rest.strip_prefix('/') {
        let end = r.find([':', ',']).unwrap_or(r.len());
        let bits = &r[..end];
        prefix = bits
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= 32)
            .ok_or_else(|| format!("{what} prefix '/{bits}' is not 0..32"))?;
        rest = &r[end..];
    }
    let (mut port_min, mut port_max) = (0u16, u16::MAX);
    if let Some(r) = rest.strip_prefix(':') {
        if let Some(r) = r.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| format!("{what} port range is missing ']'"))?;
            let range = &r[..close];
            let (a, b) = range
                .split_once(',')
                .ok_or_else(|| format!("{what} port range '[{range}]' must be [start,end]"))?;
            port_min = parse_port(a, what)?;
            port_max = parse_port(b, what)?;
            if port_min > port_max {
                return Err(format!("{what} port range '[{range}]' has start > end"));
            }
            rest = &r[close + 1..];
        } else {
            let end = r.find(',').unwrap_or(r.len());
            let p = parse_port(&r[..end], what)?;
            (port_min, port_max) = (p, p);
            rest = &r[end..];
        }
    }
    Ok((
        RuleEndpoint {
            addr,
            prefix,
            port_min,
            port_max,
        },
        rest,
    ))
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("{what} port '{s}' is not 0..65535"))
}

impl fmt::Display for RuleEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if self.port_min == self.port_max {
            write!(f, ":{}", self.port_min)
        } else if (self.port_min, self.port_max) != (0, u16::MAX) {
            write!(f, ":[{},{}]", self.port_min, self.port_max)
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for TrafficRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.src, self.dst)?;
        for (name, v) in [("TCP", self.tcp), ("UDP", self.udp), ("ICMP", self.icmp)] {
            match v {
                Some(Verdict::Accept) => write!(f, ",{name}+")?,
                Some(Verdict::Drop) => write!(f, ",{name}-")?,
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ep(a: [u8; 4], prefix: u8, lo: u16, hi: u16) -> RuleEndpoint {
        RuleEndpoint {
            addr: Ipv4Addr::from(a),
            prefix,
            port_min: lo,
            port_max: hi,
        }
    }

    #[test]
    fn spec_examples() {
        let r: TrafficRule = "0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-".parse().unwrap();
        assert_eq!(r.src, ep([0, 0, 0, 0], 0, 0, 65535));
        assert_eq!(r.dst, ep([0, 0, 0, 0], 0, 0, 65535));
        assert_eq!(
            (r.tcp, r.udp, r.icmp),
            (
                Some(Verdict::Drop),
                Some(Verdict::Drop),
                Some(Verdict::Drop)
            )
        );
        let r: TrafficRule = "192.168.100.0/24,192.168.100.0/24,ICMP+".parse().unwrap();
        assert_eq!(r.src, ep([192, 168, 100, 0], 24, 0, 65535));
        assert_eq!((r.tcp, r.udp, r.icmp), (None, None, Some(Verdict::Accept)));
        assert_eq!(r.specificity(), 48);
    }

    #[test]
    fn ports_and_ranges() {
        let r: TrafficRule = "10.0.0.1:22,10.0.0.0/8:[1000,2000],tcp+".parse().unwrap();
        assert_eq!(r.src, ep([10, 0, 0, 1], 32, 22, 22));
        assert_eq!(r.dst, ep([10, 0, 0, 0], 8, 1000, 2000));
        assert_eq!(r.tcp, Some(Verdict::Accept));
        let r: TrafficRule = "1.2.3.4/16:[5,6],5.6.7.8".parse().unwrap();
        assert_eq!(r.src, ep([1, 2, 3, 4], 16, 5, 6));
        assert_eq!(r.dst, ep([5, 6, 7, 8], 32, 0, 65535));
        assert!(r.src.contains_addr(Ipv4Addr::new(1, 2, 200, 1)));
        assert!(!r.src.contains_addr(Ipv4Addr::new(1, 3, 0, 1)));
        assert!(r.src.contains_port(6) && !r.src.contains_port(7));
        // Display round trip.
        let again: TrafficRule = r.to_string().parse().unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4,",
            "1.2.3,4.5.6.7",
            "1.2.3.4/33,5.6.7.8",
            "1.2.3.4/x,5.6.7.8",
            "1.2.3.4:70000,5.6.7.8",
            "1.2.3.4:[5,1],5.6.7.8",
            "1.2.3.4:[5,6,5.6.7.8",
            "1.2.3.4:[5],5.6.7.8",
            "1.2.3.4,5.6.7.8,TCP",
            "1.2.3.4,5.6.7.8,SCTP+",
            "1.2.3.4,5.6.7.8,TCP+,TCP-",
            "1.2.3.4,5.6.7.8,",
            "1.2.3.4, 5.6.7.8",
            "1.2.3.4,5.6.7.8x",
            "1.2.3.4/,5.6.7.8",
        ] {
            let e = bad.parse::<TrafficRule>().unwrap_err();
            assert_eq!(e.rule, bad);
            assert!(!e.reason.is_empty(), "{bad}");
        }
    }
}
