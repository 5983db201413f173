//! Supernode auto-IP (behaviour.md §9.6): the `-a min-max/bits` pool, the
//! choice of a community's subnet and of an edge's address in it.
//!
//! Both choices are deterministic (Pearson hash of the 20-byte community
//! field or the 16-byte description), so every supernode of a federation
//! hands out the same subnet and address for the same name.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

use n2n_proto::crypto::pearson;

/// Size of the community name field hashed for the subnet choice.
pub const COMMUNITY_FIELD: usize = 20;
/// Size of the description field hashed for the host choice.
pub const DESC_FIELD: usize = 16;

/// An IPv4 subnet: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// Network address (host part zero when built by this module).
    pub net: Ipv4Addr,
    /// Prefix length.
    pub bits: u8,
}

impl Subnet {
    /// Netmask as an integer (`bits` ≥ 32 gives all ones).
    pub fn mask(self) -> u32 {
        match self.bits {
            0 => 0,
            b if b >= 32 => u32::MAX,
            b => u32::MAX << (32 - u32::from(b)),
        }
    }

    /// First and last address of the subnet, as integers.
    fn range(self) -> (u64, u64) {
        let lo = u64::from(u32::from(self.net) & self.mask());
        (lo, lo + u64::from(!self.mask()))
    }

    /// Does this subnet share at least one address with `other`?
    pub fn overlaps(self, other: Subnet) -> bool {
        let (a0, a1) = self.range();
        let (b0, b1) = other.range();
        a0 <= b1 && b0 <= a1
    }

    /// Is `addr` inside this subnet?
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.net) & self.mask()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// Why a subnet or pool text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AutoIpError {
    /// Not of the form `a.b.c.d/bits` (or `min-max/bits`).
    #[error("'{0}' is not in the form {1}")]
    Format(String, &'static str),
    /// An address does not parse as a dotted quad.
    #[error("'{0}' is not an IPv4 address")]
    Address(String),
    /// Prefix length outside 1..=30.
    #[error("prefix length {0} is outside 1..30")]
    Bits(String),
    /// 0.0.0.0 or 255.255.255.255.
    #[error("{0} cannot be used as a network address")]
    Reserved(Ipv4Addr),
    /// Bits set in the host part.
    #[error("{0}/{1} has host bits set (network address would be {2})")]
    HostBits(Ipv4Addr, u8, Ipv4Addr),
    /// `min` is above `max`.
    #[error("range start {0} is above range end {1}")]
    Order(Ipv4Addr, Ipv4Addr),
}

fn parse_bits(s: &str) -> Result<u8, AutoIpError> {
    match s.parse::<u8>() {
        Ok(b) if (1..=30).contains(&b) => Ok(b),
        _ => Err(AutoIpError::Bits(s.to_owned())),
    }
}

fn parse_net(s: &str, bits: u8) -> Result<Ipv4Addr, AutoIpError> {
    let addr: Ipv4Addr = s.parse().map_err(|_| AutoIpError::Address(s.to_owned()))?;
    if addr.is_unspecified() || addr.is_broadcast() {
        return Err(AutoIpError::Reserved(addr));
    }
    let sn = Subnet { net: addr, bits };
    let net = Ipv4Addr::from(u32::from(addr) & sn.mask());
    if net != addr {
        return Err(AutoIpError::HostBits(addr, bits, net));
    }
    Ok(addr)
}

impl FromStr for Subnet {
    type Err = AutoIpError;

    /// `a.b.c.d/bits` with bits 1..=30, host part zero, not 0.0.0.0 or
    /// 255.255.255.255 (the community-file rule, cli.md §3.2).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, bits) = s
            .split_once('/')
            .ok_or_else(|| AutoIpError::Format(s.to_owned(), "a.b.c.d/bits"))?;
        let bits = parse_bits(bits)?;
        Ok(Subnet {
            net: parse_net(addr, bits)?,
            bits,
        })
    }
}

/// The auto-IP pool: subnets of `bits` from `min` to `max` (both network
/// addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoIpPool {
    min: Ipv4Addr,
    max: Ipv4Addr,
    bits: u8,
}

impl Default for AutoIpPool {
    /// 10.128.0.0-10.255.255.0/24 (C's default; its help text wrongly
    /// prints 10.128.255.0).
    fn default() -> Self {
        Self {
            min: Ipv4Addr::new(10, 128, 0, 0),
            max: Ipv4Addr::new(10, 255, 255, 0),
            bits: 24,
        }
    }
}

impl AutoIpPool {
    /// A validated pool.
    pub fn new(min: Ipv4Addr, max: Ipv4Addr, bits: u8) -> Result<Self, AutoIpError> {
        if !(1..=30).contains(&bits) {
            return Err(AutoIpError::Bits(bits.to_string()));
        }
        parse_net(&min.to_string(), bits)?;
        parse_net(&max.to_string(), bits)?;
        if u32::from(min) > u32::from(max) {
            return Err(AutoIpError::Order(min, max));
        }
        Ok(Self { min, max, bits })
    }

    /// First subnet's network address.
    pub fn min(&self) -> Ipv4Addr {
        self.min
    }
    /// Last subnet's network address.
    pub fn max(&self) -> Ipv4Addr {
        self.max
    }
    /// Prefix length of every subnet.
    pub fn bits(&self) -> u8 {
        self.bits
    }
    /// Number of subnets in the pool.
    pub fn count(&self) -> u64 {
        (u64::from(u32::from(self.max)) - u64::from(u32::from(self.min))) / self.step() + 1
    }
    fn step(&self) -> u64 {
        1u64 << (32 - u32::from(self.bits))
    }
    fn subnet_at(&self, base: u64) -> Subnet {
        Subnet {
            // base <= max <= u32::MAX by construction of the callers.
            net: Ipv4Addr::from(u32::try_from(base).unwrap_or(u32::MAX)),
            bits: self.bits,
        }
    }

    /// The subnet C n2n would first propose for a community (before looking
    /// at subnets in use): `min + (pearson32(community20) mod count) · step`.
    pub fn proposal(&self, community20: &[u8; COMMUNITY_FIELD]) -> Subnet {
        let idx = u64::from(pearson::hash32(community20)) % self.count();
        self.subnet_at(u64::from(u32::from(self.min)) + idx * self.step())
    }

    /// Choose a community's subnet: the proposal, else the nearest free one
    /// below it (down to `min`), else the nearest free one above it (up to
    /// `max`). `in_use` are the subnets of the other (non-federation)
    /// communities; a candidate is free when it overlaps none of them.
    /// `None` when the pool is exhausted.
    ///
    /// (C quirk not reproduced: a C community whose own assignment failed
    /// keeps "0.0.0.0/0", which then overlaps everything. Callers should
    /// simply not pass communities without a subnet.)
    pub fn choose_subnet(
        &self,
        community20: &[u8; COMMUNITY_FIELD],
        in_use: &[Subnet],
    ) -> Option<Subnet> {
        let step = self.step();
        let min = u64::from(u32::from(self.min));
        let max = u64::from(u32::from(self.max));
        let start = u64::from(u32::from(self.proposal(community20).net));
        let free = |base: u64| {
            let cand = self.subnet_at(base);
            !in_use.iter().any(|u| cand.overlaps(*u))
        };
        let mut base = start;
        loop {
            if free(base) {
                return Some(self.subnet_at(base));
            }
            if base < min + step {
                break;
            }
            base -= step;
        }
        let mut base = start + step;
        while base <= max {
            if free(base) {
                return Some(self.subnet_at(base));
            }
            base += step;
        }
        None
    }
}

impl FromStr for AutoIpPool {
    type Err = AutoIpError;

    /// `min-max/bits` as given to `-a`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "min-max/bits (e.g. 10.128.0.0-10.255.255.0/24)";
        let (range, bits) = s
            .split_once('/')
            .ok_or_else(|| AutoIpError::Format(s.to_owned(), FORM))?;
        let (min, max) = range
            .split_once('-')
            .ok_or_else(|| AutoIpError::Format(s.to_owned(), FORM))?;
        let bits = parse_bits(bits)?;
        let min = parse_net(min, bits)?;
        let max = parse_net(max, bits)?;
        if u32::from(min) > u32::from(max) {
            return Err(AutoIpError::Order(min, max));
        }
        Ok(Self { min, max, bits })
    }
}

impl fmt::Display for AutoIpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}/{}", self.min, self.max, self.bits)
    }
}

/// The zero-padded 20-byte community field of `name` (longer names are cut
/// to 19 bytes, like C's `comm_init`).
pub fn community_field(name: &[u8]) -> [u8; COMMUNITY_FIELD] {
    let mut f = [0u8; COMMUNITY_FIELD];
    let n = name.len().min(COMMUNITY_FIELD - 1);
    f[..n].copy_from_slice(&name[..n]);
    f
}

/// The zero-padded 16-byte description field of `desc` (cut to 16 bytes).
pub fn desc_field(desc: &[u8]) -> [u8; DESC_FIELD] {
    let mut f = [0u8; DESC_FIELD];
    let n = desc.len().min(DESC_FIELD);
    f[..n].copy_from_slice(&desc[..n]);
    f
}

/// Choose an edge's address in its community's `subnet`: host
/// `h = pearson32(desc16) & host_mask` (0 → 1, all-ones → all-ones − 1),
/// then the nearest address not in `in_use` going down to `net + 1`, then
/// up to the last address below broadcast. `in_use` are the TAP addresses
/// of the community's edges. `None` when the subnet is full. The caller
/// announces the result with the subnet's prefix length.
pub fn choose_host(
    subnet: Subnet,
    desc16: &[u8; DESC_FIELD],
    in_use: &[Ipv4Addr],
) -> Option<Ipv4Addr> {
    choose_host_with(subnet, desc16, |a| in_use.contains(&a))
}

/// [`choose_host`] with the addresses in use given as a predicate (the
/// supernode asks its address index).
pub fn choose_host_with(
    subnet: Subnet,
    desc16: &[u8; DESC_FIELD],
    in_use: impl Fn(Ipv4Addr) -> bool,
) -> Option<Ipv4Addr> {
    let mask = subnet.mask();
    let net = u32::from(subnet.net) & mask;
    let host_max = !mask;
    if host_max < 2 {
        return None; // /31, /32: no host addresses
    }
    let mut h = pearson::hash32(desc16) & host_max;
    if h == 0 {
        h = 1;
    }
    if h == host_max {
        h -= 1;
    }
    let free = |a: u32| !in_use(Ipv4Addr::from(a));
    let start = net | h;
    let down = (net + 1..=start).rev();
    let up = start + 1..net + host_max;
    down.chain(up).find(|&a| free(a)).map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn kat_testcomm_and_host_a() {
        let pool = AutoIpPool::default();
        assert_eq!(pool.count(), 32768);
        let c = community_field(b"testcomm");
        assert_eq!(pearson::hash32(&c) % 32768, 0x166c);
        let s = pool.choose_subnet(&c, &[]).unwrap();
        assert_eq!(s, sn("10.150.108.0/24"));
        let host = choose_host(s, &desc_field(b"hostA"), &[]).unwrap();
        assert_eq!(host, Ipv4Addr::new(10, 150, 108, 174));
    }

    #[test]
    fn kat_rocks_from_aes_capture() {
        // vectors/n2n-3.1.1/aes/mgmt/supernode.txt: community rocks got 10.185.191.0/24.
        let s = AutoIpPool::default()
            .choose_subnet(&community_field(b"rocks"), &[])
            .unwrap();
        assert_eq!(s.to_string(), "10.185.191.0/24");
    }

    #[test]
    fn subnet_search_goes_down_then_up() {
        let pool = AutoIpPool::default();
        let c = community_field(b"testcomm");
        let p = sn("10.150.108.0/24");
        let below = sn("10.150.107.0/24");
        assert_eq!(pool.choose_subnet(&c, &[p]), Some(below));
        // A wide fixed subnet covering the proposal and everything below it.
        let wide = sn("10.128.0.0/9");
        assert_eq!(pool.choose_subnet(&c, &[wide]), None);
        let low = sn("10.128.0.0/10"); // 10.128.0.0 - 10.191.255.255
        assert_eq!(
            pool.choose_subnet(&c, &[low]),
            Some(sn("10.192.0.0/24")),
            "first free above the proposal"
        );
    }

    #[test]
    fn small_pool_exhaustion_and_edges() {
        let pool: AutoIpPool = "10.0.0.0-10.0.3.0/24".parse().unwrap();
        assert_eq!(pool.count(), 4);
        let all: Vec<Subnet> = (0..4).map(|i| sn(&format!("10.0.{i}.0/24"))).collect();
        let c = community_field(b"x");
        let got = pool.choose_subnet(&c, &all[..3]).unwrap();
        assert_eq!(got, all[3]);
        assert_eq!(pool.choose_subnet(&c, &all), None);
        // One-subnet pool at the top of the address space must not wrap.
        let top: AutoIpPool = "255.255.254.0-255.255.254.0/24".parse().unwrap();
        assert_eq!(top.choose_subnet(&c, &[sn("255.255.254.0/24")]), None);
        assert_eq!(
            top.choose_subnet(&c, &[]).map(|s| s.to_string()).as_deref(),
            Some("255.255.254.0/24")
        );
    }

    #[test]
    fn host_search_goes_down_then_up() {
        let s = sn("10.150.108.0/24");
        let d = desc_field(b"hostA");
        let a = |h: u8| Ipv4Addr::new(10, 150, 108, h);
        assert_eq!(choose_host(s, &d, &[a(174)]), Some(a(173)));
        let below: Vec<Ipv4Addr> = (1..=174).map(a).collect();
        assert_eq!(choose_host(s, &d, &below), Some(a(175)));
        let all: Vec<Ipv4Addr> = (1..=254).map(a).collect();
        assert_eq!(choose_host(s, &d, &all), None);
        // /30: two hosts only, never network or broadcast.
        let s30 = sn("192.168.0.4/30");
        for name in [&b"a"[..], b"b", b"c", b"hostA", b""] {
            let h = choose_host(s30, &desc_field(name), &[]).unwrap();
            assert!(h == Ipv4Addr::new(192, 168, 0, 5) || h == Ipv4Addr::new(192, 168, 0, 6));
        }
    }

    #[test]
    fn pool_parsing() {
        let p: AutoIpPool = "10.128.0.0-10.255.255.0/24".parse().unwrap();
        assert_eq!(p, AutoIpPool::default());
        assert_eq!(p.to_string(), "10.128.0.0-10.255.255.0/24");
        for bad in [
            "10.128.0.0-10.255.255.0",
            "10.128.0.0/24",
            "10.128.0.0-10.255.255.0/31",
            "10.128.0.0-10.255.255.0/0",
            "10.128.0.0-10.255.255.0/x",
            "10.255.0.0-10.128.0.0/24",
            "10.128.0.1-10.255.255.0/24",
            "0.0.0.0-10.255.255.0/24",
            "10.128.0.0-10.255.256.0/24",
        ] {
            assert!(bad.parse::<AutoIpPool>().is_err(), "{bad}");
        }
        assert!(
            AutoIpPool::new(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(10, 0, 0, 0), 30).is_ok()
        );
    }

    #[test]
    fn subnet_parsing_and_overlap() {
        assert_eq!(sn("192.168.168.0/24").to_string(), "192.168.168.0/24");
        assert!(matches!(
            "192.168.168.1/24".parse::<Subnet>(),
            Err(AutoIpError::HostBits(..))
        ));
        assert!("192.168.168.0/31".parse::<Subnet>().is_err());
        assert!("192.168.168.0".parse::<Subnet>().is_err());
        assert!("0.0.0.0/8".parse::<Subnet>().is_err());
        assert!(sn("10.0.0.0/8").overlaps(sn("10.1.2.0/24")));
        assert!(!sn("10.0.0.0/24").overlaps(sn("10.0.1.0/24")));
        assert!(sn("10.0.0.0/24").contains(Ipv4Addr::new(10, 0, 0, 9)));
    }
}
