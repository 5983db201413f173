//! TCP listening sockets (the supernode's listener for `-S2` edges, on the
//! UDP port number).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog.
pub const BACKLOG: i32 = 128;

/// A non-blocking TCP listener on `addr` (`SO_REUSEADDR`, so that a
/// restarted supernode binds again at once; `only_v6` sets `IPV6_V6ONLY`
/// on an IPv6 address).
pub fn bind_listener(addr: SocketAddr, only_v6: Option<bool>) -> io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if let (true, Some(only)) = (addr.is_ipv6(), only_v6) {
        sock.set_only_v6(only)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(sock.into())
}

/// A non-blocking TCP socket connecting to `dst`, bound to `local` first
/// when given (the edge's `-p` address with `-S2`); the connection is
/// finished by the caller (tokio's `TcpSocket`/`TcpStream`).
pub fn connect_socket(dst: SocketAddr, local: Option<SocketAddr>) -> io::Result<Socket> {
    let domain = if dst.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_tcp_nodelay(true)?;
    if let Some(l) = local {
        sock.bind(&l.into())?;
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_accepts() {
        let l = bind_listener("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let a = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(a).unwrap();
        l.set_nonblocking(false).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert!(peer.ip().is_loopback());
    }
}
