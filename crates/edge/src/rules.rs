//! Traffic filter rules (`-R`, cli.md §4): a strict parser producing the
//! core's [`TrafficRule`] (`n2n_core::edge::TrafficRule`), which the edge
//! state machine applies to every frame.
//!
//! ```text
//! src_ip[/bits][:port | :[start,end]] , dst_ip[/bits][:port | :[start,end]] [,TCP+|TCP-] [,UDP+|UDP-] [,ICMP+|ICMP-]
//! ```
//!
//! Missing `/bits` = /32, missing ports = 0..=65535. No spaces are allowed.
//! A rule only applies to the protocols it names (`+` accept, `-` drop).
//! Unlike the core's lenient `FromStr`, this parser refuses spaces, a
//! protocol named twice and trailing garbage, and says what is wrong.

use std::net::Ipv4Addr;

pub use n2n_core::edge::TrafficRule;
pub use n2n_core::edge::rules::RuleEndpoint;

/// Specificity used to pick among several matching rules: the rule with
/// the largest `src bits + dst bits` wins.
pub fn specificity(rule: &TrafficRule) -> u8 {
    rule.src.bits + rule.dst.bits
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

/// Parse one `-R` rule.
pub fn parse_rule(s: &str) -> Result<TrafficRule, RuleError> {
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
            (p, true)
        } else if let Some(p) = upper.strip_suffix('-') {
            (p, false)
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

/// Parse `ip[/bits][:port | :[start,end]]` at the start of `s`; return the
/// endpoint and the unparsed rest (starting at the `,` that ends it, if any).
fn parse_endpoint<'a>(s: &'a str, what: &str) -> Result<(RuleEndpoint, &'a str), String> {
    let addr_end = s.find([':', ',', '/']).unwrap_or(s.len());
    let addr_text = &s[..addr_end];
    let addr: Ipv4Addr = addr_text
        .parse()
        .map_err(|_| format!("{what} address '{addr_text}' is not an IPv4 address"))?;
    let mut rest = &s[addr_end..];
    let mut bits = 32u8;
    if let Some(r) = rest.strip_prefix('/') {
        let end = r.find([':', ',']).unwrap_or(r.len());
        let text = &r[..end];
        bits = text
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= 32)
            .ok_or_else(|| format!("{what} prefix '/{text}' is not 0..32"))?;
        rest = &r[end..];
    }
    let (mut port_lo, mut port_hi) = (0u16, u16::MAX);
    if let Some(r) = rest.strip_prefix(':') {
        if let Some(r) = r.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| format!("{what} port range is missing ']'"))?;
            let range = &r[..close];
            let (a, b) = range
                .split_once(',')
                .ok_or_else(|| format!("{what} port range '[{range}]' must be [start,end]"))?;
            port_lo = parse_port(a, what)?;
            port_hi = parse_port(b, what)?;
            if port_lo > port_hi {
                return Err(format!("{what} port range '[{range}]' has start > end"));
            }
            rest = &r[close + 1..];
        } else {
            let end = r.find(',').unwrap_or(r.len());
            let p = parse_port(&r[..end], what)?;
            (port_lo, port_hi) = (p, p);
            rest = &r[end..];
        }
    }
    Ok((
        RuleEndpoint {
            addr,
            bits,
            port_lo,
            port_hi,
        },
        rest,
    ))
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("{what} port '{s}' is not 0..65535"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ep(a: [u8; 4], bits: u8, lo: u16, hi: u16) -> RuleEndpoint {
        RuleEndpoint {
            addr: Ipv4Addr::from(a),
            bits,
            port_lo: lo,
            port_hi: hi,
        }
    }

    #[test]
    fn spec_examples() {
        let r = parse_rule("0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-").unwrap();
        assert_eq!(r.src, ep([0, 0, 0, 0], 0, 0, 65535));
        assert_eq!(r.dst, ep([0, 0, 0, 0], 0, 0, 65535));
        assert_eq!(
            (r.tcp, r.udp, r.icmp),
            (Some(false), Some(false), Some(false))
        );
        let r = parse_rule("192.168.100.0/24,192.168.100.0/24,ICMP+").unwrap();
        assert_eq!(r.src, ep([192, 168, 100, 0], 24, 0, 65535));
        assert_eq!((r.tcp, r.udp, r.icmp), (None, None, Some(true)));
        assert_eq!(specificity(&r), 48);
    }

    #[test]
    fn ports_and_ranges() {
        let r = parse_rule("10.0.0.1:22,10.0.0.0/8:[1000,2000],tcp+").unwrap();
        assert_eq!(r.src, ep([10, 0, 0, 1], 32, 22, 22));
        assert_eq!(r.dst, ep([10, 0, 0, 0], 8, 1000, 2000));
        assert_eq!(r.tcp, Some(true));
        let r = parse_rule("1.2.3.4/16:[5,6],5.6.7.8").unwrap();
        assert_eq!(r.src, ep([1, 2, 3, 4], 16, 5, 6));
        assert_eq!(r.dst, ep([5, 6, 7, 8], 32, 0, 65535));
        // Display (the core's) round trip through both parsers.
        let again = parse_rule(&r.to_string()).unwrap();
        assert_eq!(again, r);
        assert_eq!(r.to_string().parse::<TrafficRule>().unwrap(), r);
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
            let e = parse_rule(bad).unwrap_err();
            assert_eq!(e.rule, bad);
            assert!(!e.reason.is_empty(), "{bad}");
        }
    }

    #[test]
    fn parsed_rules_filter_frames_in_the_core() {
        // A frame from 10.0.0.1 to 10.0.0.2, TCP port 22.
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[36..38].copy_from_slice(&22u16.to_be_bytes());
        let deny = [parse_rule("0.0.0.0/0,0.0.0.0/0,TCP-").unwrap()];
        assert!(!n2n_core::edge::rules::allows(&deny, &f));
        let allow_ssh = [deny[0], parse_rule("10.0.0.0/24,10.0.0.2:22,TCP+").unwrap()];
        assert!(n2n_core::edge::rules::allows(&allow_ssh, &f));
    }
}
