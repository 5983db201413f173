//! The site file (TOML) and its validation.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::Deserialize;

/// A validation or parse error, with the place it was found.
#[derive(Debug)]
pub struct SiteError(pub String);

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn default_cipher() -> u8 {
    4
}
fn default_true() -> bool {
    true
}
fn default_sn_port() -> u16 {
    7654
}
fn default_sn_mgmt() -> u16 {
    5645
}
fn default_edge_mgmt() -> u16 {
    5644
}
fn default_mtu() -> u16 {
    1500
}
fn default_federation() -> String {
    "Federation".into()
}

/// The whole site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Community of the virtual cluster (≤ 19 bytes).
    pub community: String,
    /// Cipher number (`-A`): 2..=7; with user/password 4 or 5.
    #[serde(default = "default_cipher")]
    pub cipher: u8,
    /// Header encryption (`-H`; forced on by user/password).
    #[serde(default = "default_true")]
    pub header_encryption: bool,
    /// One user/password credential per vm-container.
    #[serde(default = "default_true")]
    pub user_password: bool,
    /// Overlay subnet `a.b.c.d/bits`; every cluster's subnet lies inside.
    pub overlay: String,
    /// Bridge on every vm-container the TAP and the VMs join.
    pub bridge: String,
    /// TAP MTU (`-M`).
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Federation name (`-F`).
    #[serde(default = "default_federation")]
    pub federation: String,
    /// Supernode management port (`-t`).
    #[serde(default = "default_sn_mgmt")]
    pub supernode_mgmt_port: u16,
    /// Edge management port (`-t`).
    #[serde(default = "default_edge_mgmt")]
    pub edge_mgmt_port: u16,
    /// The overlay carries DHCP from a frontend: edges get no static address.
    pub dhcp: Option<Dhcp>,
    /// The physical clusters.
    #[serde(rename = "cluster")]
    pub clusters: Vec<Cluster>,
}

/// The frontend that serves DHCP over the overlay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp {
    /// Frontend MAC.
    pub frontend_mac: String,
    /// Frontend overlay IP.
    pub frontend_ip: Ipv4Addr,
}

/// One physical cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Name (letters, digits, `-`).
    pub name: String,
    /// Its supernode.
    pub supernode: SupernodeHost,
    /// Part of the overlay the cluster's containers get addresses from.
    pub subnet: String,
    /// The selected vm-containers.
    #[serde(rename = "container")]
    pub containers: Vec<Container>,
}

/// A cluster's supernode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupernodeHost {
    /// Host name.
    pub host: String,
    /// Public address (name or IP) edges and other supernodes use.
    pub address: String,
    /// UDP port.
    #[serde(default = "default_sn_port")]
    pub port: u16,
}

/// A vm-container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// Host name (also the user name and `-I`; ≤ 15 bytes).
    pub host: String,
    /// Optional public address (documentation in the README; NATed otherwise).
    pub address: Option<String>,
}

/// `a.b.c.d/bits` → (network, bits).
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    if !(1..=30).contains(&bits) {
        return None;
    }
    let mask = u32::MAX << (32 - bits);
    let n = u32::from(ip);
    (n & mask == n).then_some((n, bits))
}

fn cidr_range((n, bits): (u32, u8)) -> (u32, u32) {
    (n, n | (u32::MAX >> bits))
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('-')
}

impl Site {
    /// Parse and validate the text of a site file (`path` for messages).
    pub fn parse(path: &str, text: &str) -> Result<Site, SiteError> {
        let site: Site = toml::from_str(text)
            .map_err(|e| SiteError(format!("{path}: {}", e.to_string().trim_end())))?;
        site.validate(path)?;
        Ok(site)
    }

    fn validate(&self, path: &str) -> Result<(), SiteError> {
        let err = |field: &str, msg: String| Err(SiteError(format!("{path}: {field}: {msg}")));
        if !valid_name(&self.community, 19) {
            return err(
                "community",
                format!(
                    "'{}' is not 1..19 letters, digits, '-', '_', '.'",
                    self.community
                ),
            );
        }
        if !(2..=7).contains(&self.cipher) {
            return err(
                "cipher",
                format!("{} is not a cipher 2..7 (-A2 .. -A7)", self.cipher),
            );
        }
        if self.user_password && !matches!(self.cipher, 4 | 5) {
            return err(
                "cipher",
                "user_password needs ChaCha20 (4) or Speck (5)".to_owned(),
            );
        }
        if !(68..=1950).contains(&self.mtu) {
            return err("mtu", format!("{} is not in 68..1950", self.mtu));
        }
        if !valid_name(&self.bridge, 15) {
            return err(
                "bridge",
                format!("'{}' is not a valid interface name", self.bridge),
            );
        }
        if self.federation.is_empty() || self.federation.len() > 17 {
            return err("federation", "must be 1..17 bytes".to_owned());
        }
        let Some(overlay) = parse_cidr(&self.overlay) else {
            return err(
                "overlay",
                format!(
                    "'{}' is not a network a.b.c.d/bits (bits 1..30)",
                    self.overlay
                ),
            );
        };
        let (olo, ohi) = cidr_range(overlay);
        if self.clusters.is_empty() {
            return err("cluster", "no [[cluster]] given".to_owned());
        }
        let mut hosts = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut ranges: Vec<(String, u32, u32)> = Vec::new();
        for c in &self.clusters {
            let here = format!("cluster '{}'", c.name);
            if !valid_name(&c.name, 32) {
                return err("cluster.name", format!("'{}' is not a valid name", c.name));
            }
            if !names.insert(c.name.clone()) {
                return err("cluster.name", format!("duplicate cluster '{}'", c.name));
            }
            let Some(sub) = parse_cidr(&c.subnet) else {
                return err(
                    &format!("{here}: subnet"),
                    format!("'{}' is not a network a.b.c.d/bits", c.subnet),
                );
            };
            let (lo, hi) = cidr_range(sub);
            if lo < olo || hi > ohi {
                return err(
                    &format!("{here}: subnet"),
                    format!("{} is not inside the overlay {}", c.subnet, self.overlay),
                );
            }
            for (other, olo2, ohi2) in &ranges {
                if lo <= *ohi2 && *olo2 <= hi {
                    return err(
                        &format!("{here}: subnet"),
                        format!("{} overlaps the subnet of cluster '{other}'", c.subnet),
                    );
                }
            }
            ranges.push((c.name.clone(), lo, hi));
            // Host addresses: .1 .. broadcast-1 of the cluster subnet.
            let capacity = u64::from(hi - lo).saturating_sub(1);
            if c.containers.len() as u64 > capacity {
                return err(
                    &format!("{here}: container"),
                    format!(
                        "{} containers but subnet {} holds {capacity} addresses",
                        c.containers.len(),
                        c.subnet
                    ),
                );
            }
            if c.supernode.address.is_empty() || c.supernode.port == 0 {
                return err(
                    &format!("{here}: supernode"),
                    "needs an address and a port 1..65535".to_owned(),
                );
            }
            if !valid_name(&c.supernode.host, 64) {
                return err(
                    &format!("{here}: supernode.host"),
                    format!("'{}' is not a host name", c.supernode.host),
                );
            }
            for v in &c.containers {
                if !valid_name(&v.host, 15) {
                    return err(
                        &format!("{here}: container.host"),
                        format!(
                            "'{}' is not a host name of 1..15 bytes (it is the edge's -I and user name)",
                            v.host
                        ),
                    );
                }
                if !hosts.insert(v.host.clone()) {
                    return err(
                        &format!("{here}: container.host"),
                        format!("duplicate host '{}'", v.host),
                    );
                }
            }
        }
        let overlay_hosts = u64::from(ohi - olo).saturating_sub(1);
        let total: u64 = self
            .clusters
            .iter()
            .map(|c| c.containers.len() as u64)
            .sum();
        if total > overlay_hosts {
            return err(
                "overlay",
                format!(
                    "{total} containers but {} holds {overlay_hosts}",
                    self.overlay
                ),
            );
        }
        Ok(())
    }

    /// Overlay prefix length.
    pub fn overlay_bits(&self) -> u8 {
        parse_cidr(&self.overlay).map_or(24, |(_, b)| b)
    }

    /// The planned overlay address of container `i` of `cluster`.
    pub fn container_ip(&self, cluster: &Cluster, i: usize) -> Ipv4Addr {
        let (n, _) = parse_cidr(&cluster.subnet).unwrap_or((0, 24));
        Ipv4Addr::from(
            n.wrapping_add(u32::try_from(i).unwrap_or(0))
                .wrapping_add(1),
        )
    }

    /// TAP name of the site's edges.
    pub fn tap_name(&self) -> String {
        let mut t = format!("n2n-{}", self.community);
        t.truncate(15);
        t
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) const SAMPLE: &str = r#"
community = "vc1"
overlay = "10.200.0.0/16"
bridge = "br-vc1"

[[cluster]]
name = "a"
subnet = "10.200.1.0/24"
supernode = { host = "a-sn", address = "198.18.0.10" }
container = [{ host = "a-01" }, { host = "a-02" }]

[[cluster]]
name = "b"
subnet = "10.200.2.0/24"
supernode = { host = "b-sn", address = "198.18.0.20", port = 7655 }
container = [{ host = "b-01" }]
"#;

    fn bad(text: &str) -> String {
        Site::parse("site.toml", text).unwrap_err().0
    }

    #[test]
    fn sample_is_valid() {
        let s = Site::parse("site.toml", SAMPLE).unwrap();
        assert_eq!(s.clusters.len(), 2);
        assert_eq!(s.cipher, 4);
        assert_eq!(s.container_ip(&s.clusters[1], 0).to_string(), "10.200.2.1");
        assert_eq!(s.tap_name(), "n2n-vc1");
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = bad(&SAMPLE.replace("bridge = ", "bridgee = "));
        assert!(e.contains("line 4") && e.contains("bridgee"), "{e}");
        let e = bad(&SAMPLE.replace("port = 7655", "port = \"x\""));
        assert!(e.contains("line 15") && e.contains("port"), "{e}");
        let e = bad(&SAMPLE.replace("b-01", "a-01"));
        assert!(e.contains("duplicate host 'a-01'"), "{e}");
        let e = bad(&SAMPLE.replace("10.200.2.0/24", "10.200.1.128/25"));
        assert!(e.contains("overlaps the subnet of cluster 'a'"), "{e}");
        let e2 = bad(&SAMPLE
            .replace(
                "container = [{ host = \"b-01\" }]",
                "container = [{ host = \"b-01\" }, { host = \"b-02\" }, { host = \"b-03\" }]",
            )
            .replace("10.200.2.0/24", "10.200.2.0/30"));
        assert!(
            e2.contains("3 containers but subnet 10.200.2.0/30 holds 2"),
            "{e2}"
        );
        let e = bad(&SAMPLE.replace("10.200.2.0/24", "10.201.2.0/24"));
        assert!(e.contains("not inside the overlay"), "{e}");
        let e = bad(&SAMPLE.replace("community = \"vc1\"", "community = \"vc1\"\ncipher = 3"));
        assert!(e.contains("cipher"), "{e}");
    }
}
