//! A minimal DHCPv4 client (RFC 2131: DISCOVER → OFFER → REQUEST → ACK) for end-to-end tests.
//!
//! Debian's test machines have no DHCP client installed (no busybox `udhcpc`, no `dhclient`),
//! so the tests bring their own. It runs inside a namespace on a UDP socket bound to
//! `0.0.0.0:68` and to the interface (`SO_BINDTODEVICE`), with the BOOTP broadcast flag set so
//! that the server answers to 255.255.255.255 (the interface has no address yet). Every
//! exchange is retransmitted and bounded in time. It does not renew (tests are short).

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};

use crate::{Error, Netns, Result, io_err};

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;

/// A lease obtained by [`dhcp_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    /// The address handed out (`yiaddr`).
    pub ip: Ipv4Addr,
    /// Prefix length from the subnet-mask option (24 when absent).
    pub prefix: u8,
    /// Router option, if any.
    pub router: Option<Ipv4Addr>,
    /// Server identifier.
    pub server: Ipv4Addr,
    /// Lease time in seconds (option 51), if given.
    pub lease_secs: Option<u32>,
    /// How long DISCOVER → ACK took.
    pub took: Duration,
}

impl DhcpLease {
    /// `ip/prefix`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.ip, self.prefix)
    }
}

/// A parsed DHCP message (server → client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpReply {
    /// Transaction id.
    pub xid: u32,
    /// Client hardware address.
    pub chaddr: [u8; 6],
    /// Offered/acknowledged address.
    pub yiaddr: Ipv4Addr,
    /// Option 53.
    pub msg_type: u8,
    /// Option 54.
    pub server: Option<Ipv4Addr>,
    /// Option 1.
    pub mask: Option<Ipv4Addr>,
    /// Option 3 (first router).
    pub router: Option<Ipv4Addr>,
    /// Option 51.
    pub lease_secs: Option<u32>,
}

fn ip_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(s))
}

/// Builds a client message (BOOTREQUEST, broadcast flag, options 53/61/55 and, for REQUEST,
/// 50/54), padded to the 300-byte BOOTP minimum.
pub fn build_request(
    msg_type: u8,
    xid: u32,
    mac: [u8; 6],
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 1; // BOOTREQUEST
    m[1] = 1; // Ethernet
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[10] = 0x80; // broadcast flag: we cannot receive unicast yet
    m[28..34].copy_from_slice(&mac);
    m.extend_from_slice(&MAGIC);
    m.extend_from_slice(&[53, 1, msg_type]);
    m.extend_from_slice(&[61, 7, 1]);
    m.extend_from_slice(&mac);
    m.extend_from_slice(&[55, 4, 1, 3, 6, 51]);
    if let Some(ip) = requested {
        m.extend_from_slice(&[50, 4]);
        m.extend_from_slice(&ip.octets());
    }
    if let Some(ip) = server {
        m.extend_from_slice(&[54, 4]);
        m.extend_from_slice(&ip.octets());
    }
    m.push(255);
    if m.len() < 300 {
        m.resize(300, 0);
    }
    m
}

/// Parses a BOOTREPLY; `None` for anything else (wrong op, short, no magic cookie, bad
/// options).
pub fn parse_reply(b: &[u8]) -> Option<DhcpReply> {
    if b.len() < 240 || b.first() != Some(&2) || b.get(236..240) != Some(&MAGIC[..]) {
        return None;
    }
    let xid = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
    let chaddr: [u8; 6] = b.get(28..34)?.try_into().ok()?;
    let mut r = DhcpReply {
        xid,
        chaddr,
        yiaddr: ip_at(b, 16)?,
        msg_type: 0,
        server: None,
        mask: None,
        router: None,
        lease_secs: None,
    };
    let mut i = 240;
    while let Some(&code) = b.get(i) {
        match code {
            0 => {
                i += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(*b.get(i + 1)?);
        let val = b.get(i + 2..i + 2 + len)?;
        match (code, len) {
            (53, 1) => r.msg_type = val[0],
            (54, 4) => r.server = ip_at(val, 0),
            (1, 4) => r.mask = ip_at(val, 0),
            (3, l) if l >= 4 => r.router = ip_at(val, 0),
            (51, 4) => r.lease_secs = Some(u32::from_be_bytes(val.try_into().ok()?)),
            _ => {}
        }
        i += 2 + len;
    }
    (r.msg_type != 0).then_some(r)
}

fn prefix_of(mask: Ipv4Addr) -> u8 {
    u32::from(mask).leading_ones() as u8
}

/// MAC address of `ifname` in `ns`.
pub fn link_mac(ns: &Netns, ifname: &str) -> Result<[u8; 6]> {
    let out = ns.ip(&["-o", "link", "show", "dev", ifname])?;
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "link/ether"
            && let Some(m) = words.next()
        {
            let bytes: Vec<u8> = m
                .split(':')
                .filter_map(|h| u8::from_str_radix(h, 16).ok())
                .collect();
            if let Ok(mac) = <[u8; 6]>::try_from(bytes.as_slice()) {
                return Ok(mac);
            }
        }
    }
    Err(Error::Parse {
        what: format!("MAC of {ifname}"),
        detail: out,
    })
}

fn client_socket(ifname: &str) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 68)))?;
    setsockopt(&sock, sockopt::BindToDevice, &OsString::from(ifname))
        .map_err(std::io::Error::from)?;
    sock.set_broadcast(true)?;
    Ok(sock)
}

/// Sends `msg` (re-sending every second) until a reply of one of `want` types for `xid`/`mac`
/// arrives, or `deadline` passes.
fn exchange(
    sock: &UdpSocket,
    msg: &[u8],
    xid: u32,
    mac: [u8; 6],
    want: &[u8],
    deadline: Instant,
) -> Result<DhcpReply> {
    let dst = SocketAddr::from((Ipv4Addr::BROADCAST, 67));
    let mut buf = vec![0u8; 2048];
    let mut next_send = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: format!("DHCP reply of type {want:?}"),
                after: Duration::ZERO,
            });
        }
        if now >= next_send {
            sock.send_to(msg, dst)
                .map_err(io_err("sending DHCP request"))?;
            next_send = now + Duration::from_secs(1);
        }
        let wait = next_send.min(deadline).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(io_err("set_read_timeout"))?;
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(r) = parse_reply(buf.get(..n).unwrap_or_default())
                    && r.xid == xid
                    && r.chaddr == mac
                    && want.contains(&r.msg_type)
                {
                    return Ok(r);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(io_err("receiving DHCP reply")(e)),
        }
    }
}

/// Obtains a lease for `ifname` in `ns` (DISCOVER/OFFER/REQUEST/ACK, retransmitting every
/// second, all within `timeout`). Does not configure the address (see [`dhcp_configure`]).
pub fn dhcp_lease(ns: &Netns, ifname: &str, timeout: Duration) -> Result<DhcpLease> {
    let mac = link_mac(ns, ifname)?;
    let started = Instant::now();
    let deadline = started + timeout;
    let xid = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]])
        ^ (std::process::id() << 8)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    let ifname = ifname.to_string();
    ns.run_in(move || -> Result<DhcpLease> {
        let sock = client_socket(&ifname).map_err(io_err(format!("DHCP socket on {ifname}")))?;
        let discover = build_request(DISCOVER, xid, mac, None, None);
        let offer = exchange(&sock, &discover, xid, mac, &[OFFER], deadline)?;
        let server = offer.server.ok_or_else(|| Error::Parse {
            what: "DHCP OFFER".into(),
            detail: "no server identifier".into(),
        })?;
        let request = build_request(REQUEST, xid, mac, Some(offer.yiaddr), Some(server));
        let ack = exchange(&sock, &request, xid, mac, &[ACK, NAK], deadline)?;
        if ack.msg_type == NAK {
            return Err(Error::Other(format!(
                "DHCP NAK from {server} for {}",
                offer.yiaddr
            )));
        }
        Ok(DhcpLease {
            ip: ack.yiaddr,
            prefix: ack.mask.map_or(24, prefix_of),
            router: ack.router,
            server,
            lease_secs: ack.lease_secs,
            took: started.elapsed(),
        })
    })?
}

/// [`dhcp_lease`], then puts the address on `ifname`.
pub fn dhcp_configure(ns: &Netns, ifname: &str, timeout: Duration) -> Result<DhcpLease> {
    let lease = dhcp_lease(ns, ifname, timeout)?;
    ns.addr_add(ifname, &lease.cidr())?;
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let mac = [2, 0, 0, 0, 0, 9];
        let m = build_request(
            REQUEST,
            0x0102_0304,
            mac,
            Some(Ipv4Addr::new(10, 0, 0, 5)),
            Some(Ipv4Addr::new(10, 0, 0, 1)),
        );
        assert_eq!(m.len(), 300);
        assert_eq!(&m[..3], &[1, 1, 6]);
        assert_eq!(&m[4..8], &[1, 2, 3, 4]);
        assert_eq!(m[10], 0x80);
        assert_eq!(&m[28..34], &mac);
        assert_eq!(&m[236..240], &MAGIC);
        assert_eq!(&m[240..243], &[53, 1, REQUEST]);
        let opts = &m[240..];
        assert!(opts.windows(6).any(|w| w == [50, 4, 10, 0, 0, 5]));
        assert!(opts.windows(6).any(|w| w == [54, 4, 10, 0, 0, 1]));
    }

    #[test]
    fn reply_parsing() {
        let mac = [2, 0, 0, 0, 0, 9];
        let mut r = build_request(OFFER, 7, mac, None, None);
        r[0] = 2;
        r[16..20].copy_from_slice(&[10, 0, 0, 50]);
        // replace the options
        r.truncate(240);
        r.extend_from_slice(&[53, 1, OFFER, 0, 54, 4, 10, 0, 0, 1, 1, 4, 255, 255, 254, 0]);
        r.extend_from_slice(&[3, 8, 10, 0, 0, 1, 10, 0, 0, 2, 51, 4, 0, 0, 0x0e, 0x10, 255]);
        let p = parse_reply(&r).unwrap();
        assert_eq!(p.xid, 7);
        assert_eq!(p.chaddr, mac);
        assert_eq!(p.yiaddr, Ipv4Addr::new(10, 0, 0, 50));
        assert_eq!(p.msg_type, OFFER);
        assert_eq!(p.server, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(p.mask.map(prefix_of), Some(23));
        assert_eq!(p.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(p.lease_secs, Some(3600));
        // hostile variants never panic and are rejected when malformed
        assert!(parse_reply(&r[..239]).is_none());
        let mut bad = r.clone();
        bad[0] = 1;
        assert!(parse_reply(&bad).is_none());
        let mut trunc = r.clone();
        trunc.truncate(243);
        trunc.extend_from_slice(&[54, 40, 1]);
        assert!(parse_reply(&trunc).is_none());
        for cut in 240..r.len() {
            let _ = parse_reply(&r[..cut]);
        }
    }
}
