//! Traffic filter rules (`-R`, cli.md §4): the rule type, its one parser
//! (`FromStr`, strict) and printer (`Display`), and the matching of frames.
//!
//! ```text
//! src_ip[/bits][:port | :[start,end]] , dst_ip[/bits][:port | :[start,end]]
//!     [,TCP+|TCP-] [,UDP+|UDP-] [,ICMP+|ICMP-]
//! ```
//!
//! Missing `/bits` = /32, missing ports = 0..=65535. No spaces; each
//! protocol at most once; anything else is refused with a [`RuleError`]
//! saying what is wrong. A rule applies only to
//! the protocols it names (`+` accept, `-` drop). Frames that are not IPv4
//! TCP/UDP/ICMP and frames matching no rule are accepted. When several
//! rules match, the one with the largest `src bits + dst bits` wins (the
//! first one on a tie). Addresses are taken as they appear in the frame, for
//! frames read from the TAP and frames received from peers alike.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

/// One side (source or destination) of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleEndpoint {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub bits: u8,
    /// First port (inclusive).
    pub port_lo: u16,
    /// Last port (inclusive).
    pub port_hi: u16,
}

impl RuleEndpoint {
    fn mask(&self) -> u32 {
        if self.bits == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.bits.min(32)))
        }
    }

    fn matches(&self, ip: Ipv4Addr, port: Option<u16>) -> bool {
        let m = self.mask();
        if u32::from(ip) & m != u32::from(self.addr) & m {
            return false;
        }
        match port {
            Some(p) => (self.port_lo..=self.port_hi).contains(&p),
            None => true,
        }
    }
}

/// A parsed `-R` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficRule {
    /// Source side.
    pub src: RuleEndpoint,
    /// Destination side.
    pub dst: RuleEndpoint,
    /// `TCP+` = Some(true), `TCP-` = Some(false), absent = None.
    pub tcp: Option<bool>,
    /// UDP verdict.
    pub udp: Option<bool>,
    /// ICMP verdict.
    pub icmp: Option<bool>,
}

/// Why a `-R` rule was refused: the rule as given and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad rule '{rule}': {reason}")]
pub struct RuleError {
    /// The rule text as given.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

const PROTOCOLS: &str = "TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-";

impl FromStr for TrafficRule {
    type Err = RuleError;

    /// The strict grammar of cli.md §4: no spaces, each protocol named at
    /// most once, nothing after the last item; protocol names are
    /// case-insensitive.
    fn from_str(s: &str) -> Result<Self, RuleError> {
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
            let (proto, verdict) = match (upper.strip_suffix('+'), upper.strip_suffix('-')) {
                (Some(p), _) => (p, true),
                (None, Some(p)) => (p, false),
                (None, None) => return Err(err(format!("'{item}' is not {PROTOCOLS}"))),
            };
            let slot = match proto {
                "TCP" => &mut rule.tcp,
                "UDP" => &mut rule.udp,
                "ICMP" => &mut rule.icmp,
                _ => return Err(err(format!("'{item}' is not {PROTOCOLS}"))),
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
    let (addr_text, mut rest) = s.split_at(addr_end);
    let addr: Ipv4Addr = addr_text
        .parse()
        .map_err(|_| format!("{what} address '{addr_text}' is not an IPv4 address"))?;
    let mut bits = 32u8;
    if let Some(r) = rest.strip_prefix('/') {
        let (text, r) = r.split_at(r.find([':', ',']).unwrap_or(r.len()));
        bits = text
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= 32)
            .ok_or_else(|| format!("{what} prefix '/{text}' is not 0..32"))?;
        rest = r;
    }
    let (mut port_lo, mut port_hi) = (0u16, u16::MAX);
    if let Some(r) = rest.strip_prefix(':') {
        if let Some(r) = r.strip_prefix('[') {
            let (range, r) = r
                .split_once(']')
                .ok_or_else(|| format!("{what} port range is missing ']'"))?;
            let (a, b) = range
                .split_once(',')
                .ok_or_else(|| format!("{what} port range '[{range}]' must be [start,end]"))?;
            (port_lo, port_hi) = (parse_port(a, what)?, parse_port(b, what)?);
            if port_lo > port_hi {
                return Err(format!("{what} port range '[{range}]' has start > end"));
            }
            rest = r;
        } else {
            let (text, r) = r.split_at(r.find(',').unwrap_or(r.len()));
            let p = parse_port(text, what)?;
            (port_lo, port_hi) = (p, p);
            rest = r;
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

impl fmt::Display for RuleEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)?;
        if (self.port_lo, self.port_hi) != (0, u16::MAX) {
            if self.port_lo == self.port_hi {
                write!(f, ":{}", self.port_lo)?;
            } else {
                write!(f, ":[{},{}]", self.port_lo, self.port_hi)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for TrafficRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.src, self.dst)?;
        for (n, v) in [("TCP", self.tcp), ("UDP", self.udp), ("ICMP", self.icmp)] {
            if let Some(v) = v {
                write!(f, ",{}{}", n, if v { '+' } else { '-' })?;
            }
        }
        Ok(())
    }
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// The IPv4 5-tuple-ish view of a frame the rules look at.
struct Flow {
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: Option<u16>,
    dport: Option<u16>,
}

fn flow_of(frame: &[u8]) -> Option<Flow> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let vihl = *ip.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let proto = *ip.get(9)?;
    let a = ip.get(12..20)?;
    let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
    let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
    let (sport, dport) = if proto == PROTO_TCP || proto == PROTO_UDP {
        match ip.get(ihl..ihl + 4) {
            Some(p) => (
                Some(u16::from_be_bytes([p[0], p[1]])),
                Some(u16::from_be_bytes([p[2], p[3]])),
            ),
            None => (None, None),
        }
    } else {
        (None, None)
    };
    Some(Flow {
        proto,
        src,
        dst,
        sport,
        dport,
    })
}

/// Applies `rules` to an Ethernet frame: `true` = pass, `false` = drop.
pub fn allows(rules: &[TrafficRule], frame: &[u8]) -> bool {
    if rules.is_empty() {
        return true;
    }
    let Some(flow) = flow_of(frame) else {
        return true;
    };
    let mut best: Option<(u8, bool)> = None;
    for r in rules {
        let verdict = match flow.proto {
            PROTO_TCP => r.tcp,
            PROTO_UDP => r.udp,
            PROTO_ICMP => r.icmp,
            _ => return true,
        };
        let Some(v) = verdict else { continue };
        if !r.src.matches(flow.src, flow.sport) || !r.dst.matches(flow.dst, flow.dport) {
            continue;
        }
        let prec = r.src.bits + r.dst.bits;
        if best.is_none_or(|(b, _)| prec > b) {
            best = Some((prec, v));
        }
    }
    best.is_none_or(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ipv4_frame(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn ep(a: [u8; 4], bits: u8, lo: u16, hi: u16) -> RuleEndpoint {
        RuleEndpoint {
            addr: Ipv4Addr::from(a),
            bits,
            port_lo: lo,
            port_hi: hi,
        }
    }

    fn rule(s: &str) -> TrafficRule {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        let r = rule("192.168.1.0/24:[100,200],10.0.0.1:53,TCP+,UDP-");
        assert_eq!(r.src, ep([192, 168, 1, 0], 24, 100, 200));
        assert_eq!(r.dst, ep([10, 0, 0, 1], 32, 53, 53));
        assert_eq!((r.tcp, r.udp, r.icmp), (Some(true), Some(false), None));
        assert_eq!(
            r.to_string(),
            "192.168.1.0/24:[100,200],10.0.0.1/32:53,TCP+,UDP-"
        );
        assert_eq!(rule(&r.to_string()), r);
    }

    #[test]
    fn spec_examples() {
        let r = rule("0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-");
        assert_eq!(r.src, ep([0, 0, 0, 0], 0, 0, 65535));
        assert_eq!(r.dst, ep([0, 0, 0, 0], 0, 0, 65535));
        assert_eq!(
            (r.tcp, r.udp, r.icmp),
            (Some(false), Some(false), Some(false))
        );
        let r = rule("192.168.100.0/24,192.168.100.0/24,ICMP+");
        assert_eq!(r.src, ep([192, 168, 100, 0], 24, 0, 65535));
        assert_eq!((r.tcp, r.udp, r.icmp), (None, None, Some(true)));
    }

    #[test]
    fn ports_prefixes_and_flags() {
        let r = rule("10.0.0.1:22,10.0.0.0/8:[1000,2000],tcp+");
        assert_eq!(r.src, ep([10, 0, 0, 1], 32, 22, 22));
        assert_eq!(r.dst, ep([10, 0, 0, 0], 8, 1000, 2000));
        assert_eq!(r.tcp, Some(true));
        let r = rule("1.2.3.4/16:[5,6],5.6.7.8");
        assert_eq!(r.src, ep([1, 2, 3, 4], 16, 5, 6));
        assert_eq!(r.dst, ep([5, 6, 7, 8], 32, 0, 65535));
        assert_eq!(rule(&r.to_string()), r);
        // Edges of the ranges: /0 and /32, port 0 and 65535, a one-port range.
        let r = rule("0.0.0.0/0:0,255.255.255.255/32:[65535,65535],Icmp-,uDp+");
        assert_eq!(r.src, ep([0, 0, 0, 0], 0, 0, 0));
        assert_eq!(r.dst, ep([255; 4], 32, 65535, 65535));
        assert_eq!((r.tcp, r.udp, r.icmp), (None, Some(true), Some(false)));
        let r = rule("1.1.1.1:[0,65535],2.2.2.2:7,UDP-,TCP+,ICMP+");
        assert_eq!((r.src.port_lo, r.src.port_hi), (0, 65535));
        assert_eq!(
            (r.tcp, r.udp, r.icmp),
            (Some(true), Some(false), Some(true))
        );
        // Display omits the full port range and round-trips.
        assert_eq!(r.to_string(), "1.1.1.1/32,2.2.2.2/32:7,TCP+,UDP-,ICMP+");
        assert_eq!(rule(&r.to_string()), r);
    }

    #[test]
    fn refused_with_the_reason() {
        for (bad, reason) in [
            ("", "source address '' is not an IPv4 address"),
            ("1.2.3.4", "expected ',' and a destination after the source"),
            ("1.2.3.4,", "destination address '' is not an IPv4 address"),
            (
                "1.2.3,4.5.6.7",
                "source address '1.2.3' is not an IPv4 address",
            ),
            (
                "1.2.3.4,_5.6.7.8",
                "destination address '_5.6.7.8' is not an IPv4 address",
            ),
            ("::1,5.6.7.8", "source address '' is not an IPv4 address"),
            ("1.2.3.4/33,5.6.7.8", "source prefix '/33' is not 0..32"),
            ("1.2.3.4/x,5.6.7.8", "source prefix '/x' is not 0..32"),
            ("1.2.3.4/,5.6.7.8", "source prefix '/' is not 0..32"),
            (
                "1.2.3.4,5.6.7.8/-1",
                "destination prefix '/-1' is not 0..32",
            ),
            (
                "1.2.3.4:70000,5.6.7.8",
                "source port '70000' is not 0..65535",
            ),
            ("1.2.3.4:,5.6.7.8", "source port '' is not 0..65535"),
            ("1.2.3.4,5.6.7.8:x", "destination port 'x' is not 0..65535"),
            (
                "1.2.3.4:[5,1],5.6.7.8",
                "source port range '[5,1]' has start > end",
            ),
            ("1.2.3.4:[5,6,5.6.7.8", "source port range is missing ']'"),
            (
                "1.2.3.4:[5],5.6.7.8",
                "source port range '[5]' must be [start,end]",
            ),
            ("1.2.3.4:[5,x],5.6.7.8", "source port 'x' is not 0..65535"),
            (
                "1.2.3.4:[5,6]x,5.6.7.8",
                "expected ',' and a destination after the source",
            ),
            (
                "1.2.3.4,5.6.7.8,TCP",
                "'TCP' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-",
            ),
            (
                "1.2.3.4,5.6.7.8,SCTP+",
                "'SCTP+' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-",
            ),
            (
                "1.2.3.4,5.6.7.8,+",
                "'+' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-",
            ),
            ("1.2.3.4,5.6.7.8,TCP+,TCP-", "TCP is named twice"),
            ("1.2.3.4,5.6.7.8,udp+,UDP+", "UDP is named twice"),
            (
                "1.2.3.4,5.6.7.8,",
                "'' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-",
            ),
            (
                "1.2.3.4,5.6.7.8,TCP+,",
                "'' is not TCP+, TCP-, UDP+, UDP-, ICMP+ or ICMP-",
            ),
            ("1.2.3.4, 5.6.7.8", "rules must not contain spaces"),
            (" 1.2.3.4,5.6.7.8", "rules must not contain spaces"),
            (
                "1.2.3.4,5.6.7.8x",
                "destination address '5.6.7.8x' is not an IPv4 address",
            ),
            (
                "1.2.3.4,5.6.7.8:1:2",
                "destination port '1:2' is not 0..65535",
            ),
            (
                "1.2.3.4,5.6.7.8/8/8",
                "destination prefix '/8/8' is not 0..32",
            ),
        ] {
            let e = bad.parse::<TrafficRule>().unwrap_err();
            assert_eq!((e.rule.as_str(), e.reason.as_str()), (bad, reason));
            assert_eq!(e.to_string(), format!("bad rule '{bad}': {reason}"));
        }
    }

    #[test]
    fn cli_example_only_icmp_inside() {
        let rules: Vec<TrafficRule> = [
            "0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-",
            "192.168.100.0/24,192.168.100.0/24,ICMP+",
        ]
        .iter()
        .map(|s| rule(s))
        .collect();
        let inside = [192, 168, 100, 1];
        let inside2 = [192, 168, 100, 2];
        assert!(allows(&rules, &ipv4_frame(1, inside, inside2, 0, 0)));
        assert!(!allows(&rules, &ipv4_frame(6, inside, inside2, 1, 22)));
        assert!(!allows(&rules, &ipv4_frame(17, inside, inside2, 1, 53)));
        assert!(!allows(&rules, &ipv4_frame(1, inside, [8, 8, 8, 8], 0, 0)));
        // IGMP and ARP pass.
        assert!(allows(&rules, &ipv4_frame(2, inside, inside2, 0, 0)));
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert!(allows(&rules, &arp));
    }

    #[test]
    fn ports_and_unnamed_protocols() {
        let rules: Vec<TrafficRule> = ["0.0.0.0/0,10.0.0.0/8:[1000,2000],UDP-"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(!allows(
            &rules,
            &ipv4_frame(17, [1; 4], [10, 1, 1, 1], 5, 1500)
        ));
        assert!(allows(
            &rules,
            &ipv4_frame(17, [1; 4], [10, 1, 1, 1], 5, 2001)
        ));
        // The rule does not name TCP: TCP passes.
        assert!(allows(
            &rules,
            &ipv4_frame(6, [1; 4], [10, 1, 1, 1], 5, 1500)
        ));
        // Truncated frames never panic.
        for n in 0..42 {
            let f = ipv4_frame(17, [1; 4], [10, 1, 1, 1], 5, 1500);
            let _ = allows(&rules, &f[..n]);
        }
    }
}
