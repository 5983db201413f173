//! `n2n-site check`: ask management ports who is registered and who is
//! direct (cli.md §5: `r <tag> edges`, rows until `end`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::site::Site;

/// The rows of one JSON management request, or why there are none.
pub fn query(addr: SocketAddr, cmd: &str, timeout: Duration) -> Result<Vec<Value>, String> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .or_else(|_| UdpSocket::bind("0.0.0.0:0"))
        .map_err(|e| e.to_string())?;
    sock.send_to(format!("r 7 {cmd}\n").as_bytes(), addr)
        .map_err(|e| format!("{addr}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut rows = Vec::new();
    let mut buf = vec![0u8; 65536];
    // Bounded: at most 100000 datagrams and `timeout`.
    for _ in 0..100_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{addr}: no complete answer to '{cmd}' within {timeout:?}"
            ));
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => return Err(format!("{addr}: no answer to '{cmd}' within {timeout:?}")),
        };
        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
        let Ok(v) = serde_json::from_str::<Value>(text.trim()) else {
            continue;
        };
        match v.get("_type").and_then(Value::as_str) {
            Some("row") => rows.push(v),
            Some("end") => return Ok(rows),
            Some("error") => {
                return Err(format!(
                    "{addr}: error {}",
                    v.get("error").unwrap_or(&Value::Null)
                ));
            }
            _ => {}
        }
    }
    Err(format!("{addr}: too many replies"))
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// One planned container as seen.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Host.
    pub host: String,
    /// Cluster.
    pub cluster: String,
    /// Planned overlay address.
    pub planned_ip: String,
    /// Registered somewhere queried.
    pub registered: bool,
    /// Where (management endpoint of the supernode).
    pub at: String,
    /// Reported overlay address.
    pub ip: String,
    /// MAC.
    pub mac: String,
    /// Seconds since the supernode last heard from it.
    pub last_seen_s: Option<i64>,
}

/// The whole report.
#[derive(Debug)]
pub struct Report {
    /// Every planned container.
    pub containers: Vec<Seen>,
    /// viewer host → (peer host → `p2p` | `relay`).
    pub p2p: BTreeMap<String, BTreeMap<String, String>>,
    /// Endpoints that did not answer.
    pub errors: Vec<String>,
}

impl Report {
    /// Planned containers not registered.
    pub fn missing(&self) -> usize {
        self.containers.iter().filter(|c| !c.registered).count()
    }

    /// `--json`.
    pub fn to_json(&self) -> Value {
        json!({
            "containers": self.containers.iter().map(|c| json!({
                "host": c.host, "cluster": c.cluster, "planned_ip": c.planned_ip,
                "status": if c.registered { "registered" } else { "missing" },
                "supernode": c.at, "ip4addr": c.ip, "macaddr": c.mac,
                "last_seen_s": c.last_seen_s,
            })).collect::<Vec<_>>(),
            "p2p": self.p2p,
            "missing": self.missing(),
            "errors": self.errors,
        })
    }

    /// The tables.
    pub fn text(&self, site: &Site, only: &[String]) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        for c in site
            .clusters
            .iter()
            .filter(|c| only.is_empty() || only.contains(&c.name))
        {
            let _ = writeln!(
                o,
                "cluster {} (supernode {} {}:{})",
                c.name, c.supernode.host, c.supernode.address, c.supernode.port
            );
            let _ = writeln!(
                o,
                "  {:<15} {:<10} {:<18} {:<17} {:>9}  supernode",
                "host", "status", "overlay ip", "mac", "last seen"
            );
            for v in self.containers.iter().filter(|v| v.cluster == c.name) {
                let _ = writeln!(
                    o,
                    "  {:<15} {:<10} {:<18} {:<17} {:>9}  {}",
                    v.host,
                    if v.registered {
                        "registered"
                    } else {
                        "MISSING"
                    },
                    if v.ip.is_empty() {
                        &v.planned_ip
                    } else {
                        &v.ip
                    },
                    if v.mac.is_empty() { "-" } else { &v.mac },
                    v.last_seen_s
                        .map_or("-".to_owned(), |x| format!("{x} s ago")),
                    if v.at.is_empty() { "-" } else { &v.at },
                );
            }
        }
        if !self.p2p.is_empty() {
            let hosts: Vec<&String> = self.containers.iter().map(|c| &c.host).collect();
            let _ = writeln!(
                o,
                "P2P (row: the edge asked; p2p direct, relay via supernode, - unknown)"
            );
            let _ = write!(o, "  {:<15}", "");
            for h in &hosts {
                let _ = write!(o, " {h:>8}");
            }
            let _ = writeln!(o);
            for (viewer, row) in &self.p2p {
                let _ = write!(o, "  {viewer:<15}");
                for h in &hosts {
                    let cell = if *h == viewer {
                        "."
                    } else {
                        row.get(*h).map_or("-", String::as_str)
                    };
                    let _ = write!(o, " {cell:>8}");
                }
                let _ = writeln!(o);
            }
        }
        for e in &self.errors {
            let _ = writeln!(o, "warning: {e}");
        }
        let _ = writeln!(
            o,
            "{} of {} planned containers registered",
            self.containers.len() - self.missing(),
            self.containers.len()
        );
        o
    }
}

/// Ask `supernodes` (management endpoints) for their edges and `edges`
/// (edge management endpoints) for their peers; match by description
/// (= host name, `-I`) and MAC.
pub fn run(
    site: &Site,
    supernodes: &[SocketAddr],
    edges: &[SocketAddr],
    timeout: Duration,
    now_unix: i64,
) -> Report {
    let mut errors = Vec::new();
    let mut rows: Vec<(SocketAddr, Value)> = Vec::new();
    for a in supernodes {
        match query(*a, "edges", timeout) {
            Ok(r) => rows.extend(r.into_iter().map(|v| (*a, v))),
            Err(e) => errors.push(format!("supernode {e}")),
        }
    }
    let mut containers = Vec::new();
    let mut mac_host = BTreeMap::new();
    let mut ip_host = BTreeMap::new();
    for c in &site.clusters {
        for (i, v) in c.containers.iter().enumerate() {
            let planned = site.container_ip(c, i).to_string();
            ip_host.insert(planned.clone(), v.host.clone());
            let hit = rows
                .iter()
                .find(|(_, r)| s(r, "desc") == v.host && s(r, "community") == site.community);
            let mut seen = Seen {
                host: v.host.clone(),
                cluster: c.name.clone(),
                planned_ip: planned,
                registered: hit.is_some(),
                at: String::new(),
                ip: String::new(),
                mac: String::new(),
                last_seen_s: None,
            };
            if let Some((a, r)) = hit {
                seen.at = a.to_string();
                seen.ip = s(r, "ip4addr");
                seen.mac = s(r, "macaddr").to_lowercase();
                seen.last_seen_s = s(r, "last_seen")
                    .parse::<i64>()
                    .ok()
                    .map(|t| (now_unix - t).max(0));
                mac_host.insert(seen.mac.clone(), v.host.clone());
            }
            containers.push(seen);
        }
    }
    let mut p2p = BTreeMap::new();
    for a in edges {
        let info = match query(*a, "info", timeout) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("edge {e}"));
                continue;
            }
        };
        let own_mac = info.first().map(|r| s(r, "macaddr").to_lowercase());
        let own_ip = info.first().map(|r| s(r, "ip4addr"));
        let viewer = own_mac
            .as_ref()
            .and_then(|m| mac_host.get(m))
            .or_else(|| own_ip.as_ref().and_then(|ip| ip_host.get(ip)))
            .cloned()
            .unwrap_or_else(|| a.to_string());
        let peers = match query(*a, "edges", timeout) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("edge {e}"));
                continue;
            }
        };
        let mut row = BTreeMap::new();
        for p in peers {
            let mac = s(&p, "macaddr").to_lowercase();
            let host = mac_host.get(&mac).cloned().or_else(|| {
                let ip = s(&p, "ip4addr");
                ip_host
                    .get(ip.split('/').next().unwrap_or_default())
                    .cloned()
            });
            if let Some(h) = host {
                let mode = if s(&p, "mode") == "p2p" {
                    "p2p"
                } else {
                    "relay"
                };
                row.insert(h, mode.to_owned());
            }
        }
        p2p.insert(viewer, row);
    }
    Report {
        containers,
        p2p,
        errors,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::site::tests::SAMPLE;

    /// A fake supernode management port answering `edges` with one row.
    fn fake_supernode() -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..4 {
                let Ok((_, from)) = s.recv_from(&mut buf) else {
                    return;
                };
                for line in [
                    r#"{"_tag":"7","_type":"begin","cmd":"edges"}"#,
                    r#"{"_tag":"7","_type":"row","community":"vc1","ip4addr":"10.200.1.1/16","purgeable":1,"macaddr":"02:00:00:00:00:01","sockaddr":"198.18.0.1:5000","proto":"UDP","desc":"a-01","last_seen":1000}"#,
                    r#"{"_tag":"7","_type":"end"}"#,
                ] {
                    let _ = s.send_to(line.as_bytes(), from);
                }
            }
        });
        a
    }

    #[test]
    fn registered_and_missing() {
        let site = Site::parse("site.toml", SAMPLE).unwrap();
        let sn = fake_supernode();
        let r = run(&site, &[sn], &[], Duration::from_secs(2), 1003);
        assert_eq!(r.missing(), 2, "{r:?}");
        let a01 = r.containers.iter().find(|c| c.host == "a-01").unwrap();
        assert!(a01.registered && a01.last_seen_s == Some(3));
        assert_eq!(a01.mac, "02:00:00:00:00:01");
        let t = r.text(&site, &["a".to_owned()]);
        assert!(t.contains("a-02            MISSING"), "{t}");
        assert!(!t.contains("b-01"), "{t}");
        assert_eq!(r.to_json()["missing"], 2);
        // Nobody listening: an error, not a hang.
        let dead = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let r = run(&site, &[dead], &[], Duration::from_millis(300), 0);
        assert_eq!(r.missing(), 3);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    }
}
