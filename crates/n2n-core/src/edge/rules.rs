//! Traffic filter rules (`-R`, cli.md §4).
//!
//! ```text
//! src_ip[/bits][:port | :[start,end]] , dst_ip[/bits][:port | :[start,end]]
//!     [,TCP+|TCP-] [,UDP+|UDP-] [,ICMP+|ICMP-]
//! ```
//!
//! Missing `/bits` = /32, missing ports = 0..=65535. A rule applies only to
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

/// Why a `-R` rule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad traffic rule: {0}")]
pub struct RuleError(pub String);

fn err(s: &str) -> RuleError {
    RuleError(s.to_owned())
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

fn parse_endpoint(s: &str) -> Result<RuleEndpoint, RuleError> {
    let (addr_part, port_part) = match s.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let (ip, bits) = match addr_part.split_once('/') {
        Some((ip, b)) => (
            ip,
            b.parse::<u8>()
                .ok()
                .filter(|b| *b <= 32)
                .ok_or_else(|| err(s))?,
        ),
        None => (addr_part, 32),
    };
    let addr: Ipv4Addr = ip.parse().map_err(|_| err(s))?;
    let (port_lo, port_hi) = match port_part {
        None => (0, u16::MAX),
        Some(p) => {
            if let Some(inner) = p.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                let (a, b) = inner.split_once(',').ok_or_else(|| err(s))?;
                let a: u16 = a.trim().parse().map_err(|_| err(s))?;
                let b: u16 = b.trim().parse().map_err(|_| err(s))?;
                if a > b {
                    return Err(err(s));
                }
                (a, b)
            } else {
                let v: u16 = p.parse().map_err(|_| err(s))?;
                (v, v)
            }
        }
    };
    Ok(RuleEndpoint {
        addr,
        bits,
        port_lo,
        port_hi,
    })
}

impl FromStr for TrafficRule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        let parts = split_top(s.trim());
        let mut it = parts.into_iter();
        let src = parse_endpoint(it.next().ok_or_else(|| err(s))?.trim())?;
        let dst = parse_endpoint(it.next().ok_or_else(|| err(s))?.trim())?;
        let mut r = TrafficRule {
            src,
            dst,
            tcp: None,
            udp: None,
            icmp: None,
        };
        for p in it {
            let p = p.trim();
            let (name, verdict) = if let Some(n) = p.strip_suffix('+') {
                (n, true)
            } else if let Some(n) = p.strip_suffix('-') {
                (n, false)
            } else {
                return Err(err(s));
            };
            match name.to_ascii_uppercase().as_str() {
                "TCP" => r.tcp = Some(verdict),
                "UDP" => r.udp = Some(verdict),
                "ICMP" => r.icmp = Some(verdict),
                _ => return Err(err(s)),
            }
        }
        Ok(r)
    }
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

    #[test]
    fn parse_and_display() {
        let r: TrafficRule = "192.168.1.0/24:[100,200],10.0.0.1:53,TCP+,UDP-"
            .parse()
            .unwrap();
        assert_eq!(r.src.bits, 24);
        assert_eq!((r.src.port_lo, r.src.port_hi), (100, 200));
        assert_eq!((r.dst.port_lo, r.dst.port_hi, r.dst.bits), (53, 53, 32));
        assert_eq!((r.tcp, r.udp, r.icmp), (Some(true), Some(false), None));
        assert_eq!(
            r.to_string(),
            "192.168.1.0/24:[100,200],10.0.0.1/32:53,TCP+,UDP-"
        );
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4,1.2.3.x",
            "1.2.3.4/33,0.0.0.0/0",
            "1.2.3.4,5.6.7.8,FOO+",
            "1.2.3.4,5.6.7.8,TCP",
            "1.2.3.4:[5,1],5.6.7.8",
        ] {
            assert!(bad.parse::<TrafficRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_example_only_icmp_inside() {
        let rules: Vec<TrafficRule> = [
            "0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-",
            "192.168.100.0/24,192.168.100.0/24,ICMP+",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
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
