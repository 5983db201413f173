//! Before the loop: binding the supernode's sockets, its random MAC.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4};

use n2n_proto::types::Mac;
use n2n_sys::udp::{SOCKET_BUFFER, UdpConfig, UdpError, bind_udp};

use crate::options::SupernodeOptions;

/// The bound (std, non-blocking) sockets; bound before daemonizing and
/// dropping privileges so that errors reach the terminal.
#[derive(Debug)]
pub struct Sockets {
    /// Main UDP socket (`-p`).
    pub udp: std::net::UdpSocket,
    /// Extra IPv6-only socket on `[::]:port` for a bare `-p port`.
    pub udp6: Option<std::net::UdpSocket>,
    /// Why the extra IPv6 socket could not be bound (logged at start).
    pub udp6_error: Option<UdpError>,
    /// Management socket, 127.0.0.1:`-t`.
    pub mgmt: std::net::UdpSocket,
    /// TCP listener on the main address (`-S2` edges).
    pub tcp: std::net::TcpListener,
    /// TCP listener on `[::]:port` beside the extra IPv6 UDP socket.
    pub tcp6: Option<std::net::TcpListener>,
}

/// Bind a main socket with big buffers, retrying without them if the
/// system refuses the size.
fn bind_main(addr: SocketAddr, only_v6: Option<bool>) -> Result<std::net::UdpSocket, UdpError> {
    let mut cfg = UdpConfig::new(addr);
    cfg.only_v6 = only_v6;
    cfg.recv_buffer = Some(SOCKET_BUFFER);
    cfg.send_buffer = Some(SOCKET_BUFFER);
    match bind_udp(&cfg) {
        Err(UdpError::Io {
            step: "SO_RCVBUF" | "SO_SNDBUF",
            ..
        }) => {
            cfg.recv_buffer = None;
            cfg.send_buffer = None;
            bind_udp(&cfg)
        }
        r => r,
    }
}

/// Bind the main socket(s) and the management socket.
///
/// `-p port` binds `0.0.0.0:port` (like C) and additionally `[::]:port`
/// as an IPv6-only socket; failing to bind the IPv6 one is not fatal
/// (reported in [`Sockets::udp6_error`]). `-p ip:port` / `-p [ip6]:port`
/// binds exactly that address (an IPv6 wildcard then uses the system's
/// dual-stack default; IPv4-mapped sources are handed to the core as
/// IPv4).
pub fn bind_sockets(opts: &SupernodeOptions) -> Result<Sockets, UdpError> {
    let udp = bind_main(opts.bind, None)?;
    let (udp6, udp6_error) = if opts.also_ipv6 {
        let a6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), opts.bind.port());
        match bind_main(a6, Some(true)) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let mgmt_addr = SocketAddr::V4(SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        opts.mgmt_port,
    ));
    let mgmt = bind_udp(&UdpConfig::new(mgmt_addr))?;
    let tcp = n2n_sys::tcp::bind_listener(opts.bind, None).map_err(|err| UdpError::Io {
        addr: opts.bind,
        step: "TCP listen",
        err,
    })?;
    let tcp6 = match (&udp6, opts.also_ipv6) {
        (Some(_), true) => {
            let a6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), opts.bind.port());
            n2n_sys::tcp::bind_listener(a6, Some(true)).ok()
        }
        _ => None,
    };
    Ok(Sockets {
        udp,
        udp6,
        udp6_error,
        mgmt,
        tcp,
        tcp6,
    })
}

/// Random bytes from the OS.
pub fn os_random<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("OS random generator: {e}")))?;
    Ok(b)
}

/// Turn 6 random bytes into a unicast, locally-administered MAC (what C
/// does for a supernode without `-m`).
pub fn local_mac(mut b: [u8; 6]) -> Mac {
    b[0] &= !0x01;
    b[0] |= 0x02;
    Mac(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_mac_is_local_unicast() {
        for b in [[0xff; 6], [0x00; 6], [0x01, 2, 3, 4, 5, 6]] {
            let m = local_mac(b);
            assert_eq!(m.0[0] & 0x01, 0, "{m}");
            assert_eq!(m.0[0] & 0x02, 0x02, "{m}");
            assert_eq!(m.0[1..], b[1..]);
        }
        let a: [u8; 6] = os_random().unwrap();
        let b: [u8; 6] = os_random().unwrap();
        let c: [u8; 32] = os_random().unwrap();
        assert!(a != b || c != [0; 32]);
    }
}
