//! The edge's sockets (behaviour.md §1): the main UDP socket, the
//! local-discovery multicast socket and the management socket, all built
//! with `n2n_sys::udp` (which holds the socket calls).
//!
//! Main socket: bound per `-p`, `IP_TOS` per `-T`, `IP_MTU_DISCOVER` =
//! "don't" (DF clear, the kernel fragments datagrams larger than the path
//! MTU) unless `-D` asks for "do", and 4 MiB `SO_RCVBUF`/`SO_SNDBUF`
//! (forced past `net.core.[rw]mem_max` when running as root, else capped
//! by the kernel).
//!
//! DF off is what lets the default 1500-byte TAP MTU work: a full 1514-byte
//! frame becomes a ~1600-byte datagram that the kernel sends as two IP
//! fragments and the receiver reassembles.
//!
//! When `-p` names no address (the default `0.0.0.0`) the socket is a
//! dual-stack IPv6 socket (`[::]:port`, `IPV6_V6ONLY` off) so that IPv6
//! supernodes and peers can be reached too; IPv4 traffic then uses
//! IPv4-mapped addresses (`n2n_sys::udp::{to_socket, from_socket}`
//! translate them), and the IPv4-level options (DF, TOS) are set as well as
//! the IPv6 ones. If IPv6 is unavailable the socket falls back to plain
//! IPv4. With an explicit IPv4 address in `-p` the socket is IPv4 only, as
//! in C n2n.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};

use n2n_sys::udp::{Pmtud, UdpConfig, UdpError, bind_udp, from_socket};

/// Socket buffer size asked for on the main socket (both directions).
pub use n2n_sys::udp::SOCKET_BUFFER;

/// How the main socket is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainSocketConfig {
    /// Local address (`-p`; `0.0.0.0:0` = any address, OS-chosen port).
    pub bind: SocketAddrV4,
    /// `IP_TOS` (`-T`), `None` = leave the default.
    pub tos: Option<u8>,
    /// `-D`: set DF (`IP_MTU_DISCOVER` = do). Default false = don't.
    pub pmtu_discovery: bool,
    /// `--threads` > 1: `SO_REUSEPORT`, so that [`bind_lane`] can add
    /// sockets on the same address and port.
    pub reuse_port: bool,
}

/// The bound main socket (std, non-blocking: ready for
/// `n2n_sys::udp::Socket::new`).
#[derive(Debug)]
pub struct MainSocket {
    /// The socket.
    pub sock: UdpSocket,
    /// Dual-stack IPv6 socket: IPv4 destinations must be mapped
    /// (`n2n_sys::udp::to_socket`).
    pub dual_stack: bool,
}

impl MainSocket {
    /// The local address as the core and management see it (`0.0.0.0:port`
    /// for a dual-stack socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let a = self.sock.local_addr()?;
        Ok(if self.dual_stack && a.ip().is_unspecified() {
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, a.port()))
        } else {
            from_socket(a)
        })
    }
}

/// Buffers forced past `net.core.[rw]mem_max` when permitted, DF per
/// `-D`, TOS per `-T`; on a dual-stack socket for IPv4 too.
fn udp_config(bind: SocketAddr, cfg: &MainSocketConfig) -> UdpConfig {
    let mut u = UdpConfig::new(bind);
    u.only_v6 = Some(false);
    u.recv_buffer = Some(SOCKET_BUFFER);
    u.send_buffer = Some(SOCKET_BUFFER);
    u.force_buffers = true;
    u.pmtud = Some(if cfg.pmtu_discovery {
        Pmtud::Do
    } else {
        Pmtud::Dont
    });
    u.tos = cfg.tos.map(u32::from);
    u.reuse_port = cfg.reuse_port;
    u
}

/// One more socket on the main socket's bound address and port `local`
/// (`SO_REUSEPORT`: the main socket must have been bound with
/// [`MainSocketConfig::reuse_port`]), with its options: a data-path
/// thread's. The peers see one address.
pub fn bind_lane(local: SocketAddr, cfg: &MainSocketConfig) -> Result<UdpSocket, UdpError> {
    let mut cfg = *cfg;
    cfg.reuse_port = true;
    bind_udp(&udp_config(local, &cfg))
}

/// Bind and configure the main socket: dual stack when `-p` names no
/// address (falling back to IPv4 when IPv6 is unavailable), else IPv4.
pub fn bind_main(cfg: &MainSocketConfig) -> Result<MainSocket, UdpError> {
    if cfg.bind.ip().is_unspecified() {
        let v6 = SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            cfg.bind.port(),
            0,
            0,
        ));
        if let Ok(sock) = bind_udp(&udp_config(v6, cfg)) {
            return Ok(MainSocket {
                sock,
                dual_stack: true,
            });
        }
    }
    Ok(MainSocket {
        sock: bind_udp(&udp_config(SocketAddr::V4(cfg.bind), cfg))?,
        dual_stack: false,
    })
}

/// Bind an IPv4-only main socket (kept for callers that want exactly C's
/// socket; the daemon uses [`bind_main`]).
pub fn bind_main_socket(cfg: &MainSocketConfig) -> io::Result<UdpSocket> {
    bind_udp(&udp_config(SocketAddr::V4(cfg.bind), cfg))
        .map_err(|e| io::Error::other(format!("cannot bind UDP socket to {}: {e}", cfg.bind)))
}

/// Local-discovery socket: `0.0.0.0:1968` with address reuse (several
/// edges on one host). Joining the group is up to the caller (it may fail
/// without a multicast route, which is not an error).
pub fn bind_multicast(port: u16) -> Result<UdpSocket, UdpError> {
    let mut u = UdpConfig::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    u.reuse_address = true;
    bind_udp(&u)
}

/// Management socket `127.0.0.1:port`.
pub fn bind_management(port: u16) -> Result<UdpSocket, UdpError> {
    bind_udp(&UdpConfig::new(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
    )))
}

/// Current `IP_MTU_DISCOVER` mode of a socket (`libc::IP_PMTUDISC_*`).
pub fn mtu_discover_mode(sock: &UdpSocket) -> io::Result<i32> {
    n2n_sys::udp::pmtud_of(sock)
}

/// Current `IP_TOS` of a socket.
pub fn tos(sock: &UdpSocket) -> io::Result<u8> {
    let v = n2n_sys::udp::tos_of(sock)?;
    u8::try_from(v).map_err(|_| io::Error::other(format!("IP_TOS out of range: {v}")))
}

/// Current `SO_RCVBUF` (what the kernel reports: twice the size set).
pub fn recv_buffer(sock: &UdpSocket) -> io::Result<usize> {
    n2n_sys::udp::recv_buffer_of(sock)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use n2n_sys::udp::to_socket;

    #[test]
    fn df_off_by_default_on_with_d() {
        let mut cfg = MainSocketConfig {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            tos: None,
            pmtu_discovery: false,
            reuse_port: false,
        };
        let s = bind_main_socket(&cfg).unwrap();
        assert_eq!(mtu_discover_mode(&s).unwrap(), libc::IP_PMTUDISC_DONT);
        assert_eq!(tos(&s).unwrap(), 0);
        cfg.pmtu_discovery = true;
        cfg.tos = Some(0x10);
        let s = bind_main_socket(&cfg).unwrap();
        assert_eq!(mtu_discover_mode(&s).unwrap(), libc::IP_PMTUDISC_DO);
        assert_eq!(tos(&s).unwrap(), 0x10);
        // Binding to the same port again fails with a message naming it.
        cfg.bind = match s.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let e = bind_main_socket(&cfg).unwrap_err();
        assert!(e.to_string().contains(&cfg.bind.to_string()), "{e}");
    }

    #[test]
    fn dual_stack_main_socket_sets_ipv4_options_and_talks_ipv4() {
        let cfg = MainSocketConfig {
            bind: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            tos: Some(0x20),
            pmtu_discovery: false,
            reuse_port: false,
        };
        let m = bind_main(&cfg).unwrap();
        assert_eq!(mtu_discover_mode(&m.sock).unwrap(), libc::IP_PMTUDISC_DONT);
        assert_eq!(tos(&m.sock).unwrap(), 0x20);
        // At least the kernel's cap (rmem_max), doubled by the kernel.
        assert!(recv_buffer(&m.sock).unwrap() >= 2 * 200_000);
        let local = m.local_addr().unwrap();
        assert!(local.is_ipv4() && local.port() != 0, "{local}");

        // IPv4 peer on loopback: mapped out, unmapped in.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dst = SocketAddr::from((Ipv4Addr::LOCALHOST, peer.local_addr().unwrap().port()));
        m.sock
            .send_to(b"ping", to_socket(dst, m.dual_stack))
            .unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut b = [0u8; 8];
        let (n, from) = peer.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"ping");
        assert_eq!(from.port(), local.port());
        peer.send_to(b"pong", from).unwrap();
        m.sock.set_nonblocking(false).unwrap();
        m.sock
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let (n, from) = m.sock.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"pong");
        assert_eq!(from_socket(from), dst);
    }

    #[test]
    fn multicast_port_can_be_shared() {
        let a = bind_multicast(0).unwrap();
        let port = a.local_addr().unwrap().port();
        let _b = bind_multicast(port).unwrap();
    }

    #[test]
    fn lane_sockets_share_the_main_socket_port() {
        let cfg = MainSocketConfig {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            tos: Some(0x10),
            pmtu_discovery: true,
            reuse_port: true,
        };
        let m = bind_main(&cfg).unwrap();
        let lane = bind_lane(m.sock.local_addr().unwrap(), &cfg).unwrap();
        assert_eq!(lane.local_addr().unwrap(), m.sock.local_addr().unwrap());
        assert_eq!(tos(&lane).unwrap(), 0x10);
        assert_eq!(mtu_discover_mode(&lane).unwrap(), libc::IP_PMTUDISC_DO);
        // The peer sees one address whichever socket sends.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let to = peer.local_addr().unwrap();
        m.sock.send_to(b"a", to).unwrap();
        lane.send_to(b"b", to).unwrap();
        let mut buf = [0u8; 4];
        let (_, f1) = peer.recv_from(&mut buf).unwrap();
        let (_, f2) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(f1, f2);
        // Without SO_REUSEPORT on the main socket a lane cannot bind.
        let single = MainSocketConfig {
            reuse_port: false,
            ..cfg
        };
        let m1 = bind_main(&single).unwrap();
        assert!(bind_lane(m1.sock.local_addr().unwrap(), &single).is_err());
    }
}
