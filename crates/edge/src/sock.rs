//! The edge's main UDP socket (behaviour.md §1): bound per `-p`, `IP_TOS`
//! per `-T`, and `IP_MTU_DISCOVER` = "don't" (DF clear, the kernel fragments
//! datagrams larger than the path MTU) unless `-D` asks for "do".
//!
//! DF off is what lets the default 1500-byte TAP MTU work: a full 1514-byte
//! frame becomes a ~1600-byte datagram that the kernel sends as two IP
//! fragments and the receiver reassembles.
//!
//! NOTE: a shared UDP socket builder is being written in `n2n-sys`; switch to
//! it once it lands (this module then becomes a thin call).

use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd};

/// How the main socket is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainSocketConfig {
    /// Local address (`-p`; `0.0.0.0:0` = any address, OS-chosen port).
    pub bind: SocketAddrV4,
    /// `IP_TOS` (`-T`), `None` = leave the default.
    pub tos: Option<u8>,
    /// `-D`: set DF (`IP_MTU_DISCOVER` = do). Default false = don't.
    pub pmtu_discovery: bool,
}

fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `fd` is a live socket for the duration of the call; the option
    // value is a valid `c_int` whose size is passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a live socket; `value`/`len` point to writable locals
    // of the advertised size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bind and configure the main socket (non-blocking, ready for
/// `tokio::net::UdpSocket::from_std`).
pub fn bind_main_socket(cfg: &MainSocketConfig) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(SocketAddr::V4(cfg.bind)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot bind UDP socket to {}: {e}", cfg.bind),
        )
    })?;
    let fd = {
        use std::os::fd::AsFd;
        sock.as_fd()
    };
    let pmtu = if cfg.pmtu_discovery {
        libc::IP_PMTUDISC_DO
    } else {
        libc::IP_PMTUDISC_DONT
    };
    setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, pmtu)
        .map_err(|e| io::Error::new(e.kind(), format!("setting IP_MTU_DISCOVER: {e}")))?;
    if let Some(tos) = cfg.tos {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, i32::from(tos))
            .map_err(|e| io::Error::new(e.kind(), format!("setting IP_TOS: {e}")))?;
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Current `IP_MTU_DISCOVER` mode of a socket (`libc::IP_PMTUDISC_*`).
pub fn mtu_discover_mode(sock: &UdpSocket) -> io::Result<i32> {
    use std::os::fd::AsFd;
    getsockopt_int(sock.as_fd(), libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
}

/// Current `IP_TOS` of a socket.
pub fn tos(sock: &UdpSocket) -> io::Result<u8> {
    use std::os::fd::AsFd;
    let v = getsockopt_int(sock.as_fd(), libc::IPPROTO_IP, libc::IP_TOS)?;
    u8::try_from(v).map_err(|_| io::Error::other(format!("IP_TOS out of range: {v}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn df_off_by_default_on_with_d() {
        let mut cfg = MainSocketConfig {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            tos: None,
            pmtu_discovery: false,
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
}
