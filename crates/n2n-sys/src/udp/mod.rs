//! UDP sockets with the options n2n uses (built with socket2), the
//! mapping of IPv4 addresses on IPv6 sockets, and, in the submodules, the
//! batched calls ([`batch`]) and the tokio socket the drivers use
//! ([`socket`]).

mod batch;
mod socket;

pub use batch::{
    Datagrams, GRO_BUF, GSO_MAX_SEGMENT, MAX_SEGMENTS, MMSG_BATCH, RecvBatch, gso_unsupported,
    recv_many, send_many, send_many_segmented, send_segments,
};
#[cfg(target_os = "linux")]
pub use batch::{UDP_GRO, UDP_SEGMENT};
pub use socket::{SYNC_SEND_WAIT, Socket, SyncSocket};

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd as _;

use socket2::{Domain, Protocol, Type};

/// Path-MTU discovery setting (`IP_MTU_DISCOVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pmtud {
    /// `IP_PMTUDISC_DONT`: DF clear, the kernel may fragment (n2n default).
    Dont,
    /// `IP_PMTUDISC_DO`: DF set (edge `-D`).
    Do,
}

/// How to build a UDP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// Local address and port (port 0: chosen by the OS).
    pub bind: SocketAddr,
    /// For IPv6 binds: `Some(false)` accepts IPv4 too (dual stack),
    /// `Some(true)` IPv6 only, `None` the system default.
    pub only_v6: Option<bool>,
    /// `SO_RCVBUF` in bytes.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` in bytes.
    pub send_buffer: Option<usize>,
    /// `IP_MTU_DISCOVER` (IPv4) / `IPV6_MTU_DISCOVER` (IPv6).
    pub pmtud: Option<Pmtud>,
    /// `IP_TOS` (IPv4) / `IPV6_TCLASS` (IPv6).
    pub tos: Option<u32>,
    /// `SO_REUSEADDR`.
    pub reuse_address: bool,
    /// `SO_REUSEPORT`: more sockets of this user may bind the same
    /// address; the kernel spreads incoming datagrams over them by their
    /// 4-tuple (the edge's data-path threads).
    pub reuse_port: bool,
    /// Also `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE` with the sizes above, past
    /// `net.core.[rw]mem_max` (needs CAP_NET_ADMIN; without it the capped
    /// sizes stay, silently).
    pub force_buffers: bool,
}

impl UdpConfig {
    /// Defaults: only `bind` set.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            only_v6: None,
            recv_buffer: None,
            send_buffer: None,
            pmtud: None,
            tos: None,
            reuse_address: false,
            reuse_port: false,
            force_buffers: false,
        }
    }
}

/// Errors building a UDP socket; each names the step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UdpError {
    /// A socket call failed.
    #[error("UDP socket {addr}: {step} failed: {err}")]
    Io {
        /// The bind address.
        addr: SocketAddr,
        /// The failing step.
        step: &'static str,
        /// The error.
        err: io::Error,
    },
}

/// A bad `[ip:]port` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not [ip:]port, port or ip (port 0..65535, ip a dotted quad or [IPv6])")]
pub struct BindAddrError(pub String);

/// Parse C n2n's `-p` forms: `port` (bound to `default_ip`), `ip` alone
/// (a dotted quad without `:`, bound with `default_port`), `ip:port`, or
/// `[ipv6]:port`.
pub fn parse_bind_addr(
    s: &str,
    default_ip: IpAddr,
    default_port: u16,
) -> Result<SocketAddr, BindAddrError> {
    let err = || BindAddrError(s.to_owned());
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(default_ip, port));
    }
    if s.contains('.') && !s.contains(':') {
        let ip: Ipv4Addr = s.parse().map_err(|_| err())?;
        return Ok(SocketAddr::new(IpAddr::V4(ip), default_port));
    }
    s.parse::<SocketAddr>().map_err(|_| err())
}

/// The unspecified IPv4 address, the usual `default_ip`.
pub const ANY_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn set_int(
    sock: &socket2::Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed; the fd
    // is owned by `sock` and open.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turn on UDP receive offload (`UDP_GRO`, Linux ≥ 5.0) on a bound socket:
/// datagrams of one source that arrive together (GRO of the NIC, or a
/// `UDP_SEGMENT` send that crossed a veth unsegmented) are read as one
/// buffer with their segment size ([`RecvBatch::with_gro`]). An error
/// means the kernel does not offer it: keep reading one datagram per slot.
#[cfg(target_os = "linux")]
pub fn enable_gro(sock: &impl std::os::fd::AsFd) -> io::Result<()> {
    set_int(&socket2::SockRef::from(sock), libc::SOL_UDP, UDP_GRO, 1)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_pmtud(sock: &socket2::Socket, v6: bool, p: Pmtud) -> io::Result<()> {
    if v6 {
        let v = match p {
            Pmtud::Dont => libc::IPV6_PMTUDISC_DONT,
            Pmtud::Do => libc::IPV6_PMTUDISC_DO,
        };
        set_int(sock, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, v)
    } else {
        let v = match p {
            Pmtud::Dont => libc::IP_PMTUDISC_DONT,
            Pmtud::Do => libc::IP_PMTUDISC_DO,
        };
        set_int(sock, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_pmtud(_sock: &socket2::Socket, _v6: bool, _p: Pmtud) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "IP_MTU_DISCOVER needs Linux",
    ))
}

/// Read back `IP_MTU_DISCOVER` of an IPv4 socket (for tests and logs).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn pmtud_of(sock: &std::net::UdpSocket) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = -1;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: `v` and `len` are valid for writes during the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(v)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Build, configure and bind a non-blocking UDP socket (ready for
/// `tokio::net::UdpSocket::from_std`).
pub fn bind_udp(cfg: &UdpConfig) -> Result<std::net::UdpSocket, UdpError> {
    let addr = cfg.bind;
    let fail = |step, err| UdpError::Io { addr, step, err };
    let v6 = addr.is_ipv6();
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let sock = socket2::Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail("socket", e))?;
    if let (true, Some(only)) = (v6, cfg.only_v6) {
        sock.set_only_v6(only).map_err(|e| fail("IPV6_V6ONLY", e))?;
    }
    if cfg.reuse_address {
        sock.set_reuse_address(true)
            .map_err(|e| fail("SO_REUSEADDR", e))?;
    }
    if cfg.reuse_port {
        sock.set_reuse_port(true)
            .map_err(|e| fail("SO_REUSEPORT", e))?;
    }
    if let Some(n) = cfg.recv_buffer {
        sock.set_recv_buffer_size(n)
            .map_err(|e| fail("SO_RCVBUF", e))?;
    }
    if let Some(n) = cfg.send_buffer {
        sock.set_send_buffer_size(n)
            .map_err(|e| fail("SO_SNDBUF", e))?;
    }
    if let Some(p) = cfg.pmtud {
        set_pmtud(&sock, v6, p).map_err(|e| fail("IP_MTU_DISCOVER", e))?;
    }
    if let Some(tos) = cfg.tos {
        if v6 {
            sock.set_tclass_v6(tos)
                .map_err(|e| fail("IPV6_TCLASS", e))?;
        } else {
            sock.set_tos_v4(tos).map_err(|e| fail("IP_TOS", e))?;
        }
    }
    sock.set_nonblocking(true)
        .map_err(|e| fail("O_NONBLOCK", e))?;
    sock.bind(&addr.into()).map_err(|e| fail("bind", e))?;
    if v6 && cfg.only_v6 == Some(false) {
        // Dual stack: IPv4-mapped destinations use the IPv4-level options.
        if let Some(p) = cfg.pmtud {
            set_pmtud(&sock, false, p).map_err(|e| fail("IP_MTU_DISCOVER (IPv4)", e))?;
        }
        if let Some(tos) = cfg.tos {
            let tos = libc::c_int::try_from(tos).unwrap_or(0);
            set_int(&sock, libc::IPPROTO_IP, libc::IP_TOS, tos)
                .map_err(|e| fail("IP_TOS (IPv4)", e))?;
        }
    }
    if cfg.force_buffers {
        let force = |n: Option<usize>, name| {
            if let Some(n) = n {
                let _ = set_int(
                    &sock,
                    libc::SOL_SOCKET,
                    name,
                    i32::try_from(n).unwrap_or(i32::MAX),
                );
            }
        };
        force(cfg.recv_buffer, libc::SO_RCVBUFFORCE);
        force(cfg.send_buffer, libc::SO_SNDBUFFORCE);
    }
    Ok(sock.into())
}

/// `SO_RCVBUF` / `SO_SNDBUF` the binaries ask for on their main sockets.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// The destination to give a socket: on an IPv6 socket (`v6_socket`) an
/// IPv4 address is written IPv4-mapped (`::ffff:a.b.c.d`).
#[inline]
pub fn to_socket(dst: SocketAddr, v6_socket: bool) -> SocketAddr {
    match dst {
        SocketAddr::V4(a) if v6_socket => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        other => other,
    }
}

/// A source address as the cores expect it: IPv4-mapped IPv6 addresses
/// (from a dual-stack socket) become IPv4 ("unmap").
#[inline]
pub fn from_socket(src: SocketAddr) -> SocketAddr {
    match src {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
            None => src,
        },
        v4 => v4,
    }
}

/// `IP_TOS` of a socket (also of the IPv4 side of a dual-stack one).
pub fn tos_of(sock: &std::net::UdpSocket) -> io::Result<u32> {
    socket2::SockRef::from(sock).tos_v4()
}

/// `SO_RCVBUF` of a socket (what the kernel reports: twice the size set).
pub fn recv_buffer_of(sock: &std::net::UdpSocket) -> io::Result<usize> {
    socket2::SockRef::from(sock).recv_buffer_size()
}

/// The socket's unicast TTL and, for an IPv6 socket, its hop limit; what
/// [`set_ttl`] returns and [`restore_ttl`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedTtl {
    v4: u32,
    v6: Option<u32>,
}

/// Set the unicast IP TTL (`IP_TTL`, also used for IPv4 destinations of a
/// dual-stack socket) and, when `v6`, the IPv6 hop limit, to `ttl`; returns
/// the previous values. For the edge's `-L` REGISTER spray, like C's
/// `setsockopt(IP_TTL)` around it.
pub fn set_ttl(fd: std::os::fd::BorrowedFd<'_>, v6: bool, ttl: u8) -> io::Result<SavedTtl> {
    let s = socket2::SockRef::from(&fd);
    let saved = SavedTtl {
        v4: s.ttl_v4()?,
        v6: if v6 { Some(s.unicast_hops_v6()?) } else { None },
    };
    s.set_ttl_v4(u32::from(ttl))?;
    if v6 {
        s.set_unicast_hops_v6(u32::from(ttl))?;
    }
    Ok(saved)
}

/// Put back what [`set_ttl`] changed.
pub fn restore_ttl(fd: std::os::fd::BorrowedFd<'_>, saved: SavedTtl) -> io::Result<()> {
    let s = socket2::SockRef::from(&fd);
    s.set_ttl_v4(saved.v4)?;
    if let Some(h) = saved.v6 {
        s.set_unicast_hops_v6(h)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, UdpSocket};

    #[test]
    fn ttl_is_set_and_restored() {
        use std::os::fd::AsFd as _;
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(sock) = std::net::UdpSocket::bind(bind) else {
                continue; // no IPv6 on this host
            };
            let v6 = bind.starts_with('[');
            let r = socket2::SockRef::from(&sock);
            let before = r.ttl_v4().expect("ttl");
            let saved = set_ttl(sock.as_fd(), v6, 3).expect("set");
            assert_eq!(r.ttl_v4().expect("ttl"), 3);
            if v6 {
                assert_eq!(r.unicast_hops_v6().expect("hops"), 3);
            }
            restore_ttl(sock.as_fd(), saved).expect("restore");
            assert_eq!(r.ttl_v4().expect("ttl"), before);
        }
    }

    #[test]
    fn bind_addr_forms() {
        let v4 = |s: &str| parse_bind_addr(s, ANY_V4, 7654);
        assert_eq!(v4("7000").unwrap(), "0.0.0.0:7000".parse().unwrap());
        assert_eq!(v4("10.1.2.3").unwrap(), "10.1.2.3:7654".parse().unwrap());
        assert_eq!(v4("127.0.0.1:99").unwrap(), "127.0.0.1:99".parse().unwrap());
        assert_eq!(v4("[::1]:5").unwrap(), "[::1]:5".parse().unwrap());
        for bad in [
            "", "70000", "1.2.3", "host:1", "1.2.3.4:", ":7654", "-1", "::1",
        ] {
            assert!(v4(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_are_applied() {
        let mut cfg = UdpConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.recv_buffer = Some(256 * 1024);
        cfg.send_buffer = Some(256 * 1024);
        cfg.pmtud = Some(Pmtud::Do);
        cfg.tos = Some(0x10);
        let s = bind_udp(&cfg).unwrap();
        let sock = socket2::SockRef::from(&s);
        assert!(sock.recv_buffer_size().unwrap() >= 256 * 1024);
        assert_eq!(sock.tos_v4().unwrap(), 0x10);
        assert_eq!(pmtud_of(&s).unwrap(), libc::IP_PMTUDISC_DO);
        cfg.pmtud = Some(Pmtud::Dont);
        assert_eq!(
            pmtud_of(&bind_udp(&cfg).unwrap()).unwrap(),
            libc::IP_PMTUDISC_DONT
        );
        // Non-blocking: recv without data must not block.
        let mut b = [0u8; 4];
        assert_eq!(
            s.recv_from(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn bind_conflict_names_the_step() {
        let a = bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let e = bind_udp(&UdpConfig::new(a.local_addr().unwrap())).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("bind failed"), "{msg}");
        assert!(msg.contains(&a.local_addr().unwrap().to_string()), "{msg}");
    }

    #[test]
    fn dual_stack_receives_ipv4() {
        let mut cfg = UdpConfig::new(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0));
        cfg.only_v6 = Some(false);
        let Ok(s) = bind_udp(&cfg) else {
            return; // no IPv6 in this environment
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let port = s.local_addr().unwrap().port();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"hi", ("127.0.0.1", port)).unwrap();
        let mut b = [0u8; 4];
        let (n, from) = s.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"hi");
        assert!(matches!(from.ip(), IpAddr::V6(a) if a.to_ipv4_mapped().is_some()));
    }

    #[test]
    fn address_mapping() {
        let v4: SocketAddr = "198.18.0.1:7654".parse().unwrap();
        let mapped = to_socket(v4, true);
        assert_eq!(mapped.to_string(), "[::ffff:198.18.0.1]:7654");
        assert_eq!(from_socket(mapped), v4);
        assert_eq!(to_socket(v4, false), v4);
        let v6: SocketAddr = "[2001:db8::1]:7654".parse().unwrap();
        assert_eq!(to_socket(v6, true), v6);
        assert_eq!(from_socket(v6), v6);
    }

    #[test]
    fn mapped_sources_become_ipv4() {
        let m: SocketAddr = "[::ffff:198.18.0.1]:50001".parse().unwrap();
        assert_eq!(from_socket(m), "198.18.0.1:50001".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:7".parse().unwrap();
        assert_eq!(from_socket(v6), v6);
        let v4: SocketAddr = "10.0.0.1:7".parse().unwrap();
        assert_eq!(from_socket(v4), v4);
    }

    #[test]
    fn dual_stack_sets_the_ipv4_options_and_forces_buffers() {
        let mut cfg = UdpConfig::new(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0));
        cfg.only_v6 = Some(false);
        cfg.pmtud = Some(Pmtud::Dont);
        cfg.tos = Some(0x20);
        cfg.recv_buffer = Some(SOCKET_BUFFER);
        cfg.force_buffers = true;
        let Ok(s) = bind_udp(&cfg) else {
            return; // no IPv6 in this environment
        };
        assert_eq!(pmtud_of(&s).unwrap(), libc::IP_PMTUDISC_DONT);
        assert_eq!(tos_of(&s).unwrap(), 0x20);
        // At least the kernel's cap (rmem_max), doubled by the kernel.
        assert!(recv_buffer_of(&s).unwrap() >= 2 * 200_000);
    }
}
