//! UDP sockets with the options n2n uses, built with socket2.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd as _;

use socket2::{Domain, Protocol, Socket, Type};

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
    sock: &Socket,
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

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_pmtud(sock: &Socket, v6: bool, p: Pmtud) -> io::Result<()> {
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
fn set_pmtud(_sock: &Socket, _v6: bool, _p: Pmtud) -> io::Result<()> {
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
    let sock =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| fail("socket", e))?;
    if let (true, Some(only)) = (v6, cfg.only_v6) {
        sock.set_only_v6(only).map_err(|e| fail("IPV6_V6ONLY", e))?;
    }
    if cfg.reuse_address {
        sock.set_reuse_address(true)
            .map_err(|e| fail("SO_REUSEADDR", e))?;
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
    Ok(sock.into())
}

/// `UDP_SEGMENT` (`linux/udp.h`): UDP segmentation offload.
#[cfg(target_os = "linux")]
pub const UDP_SEGMENT: libc::c_int = 103;

/// Largest number of segments one [`send_segments`] call may carry
/// (`UDP_MAX_SEGMENTS` of older kernels; newer ones allow 128).
pub const MAX_SEGMENTS: usize = 64;

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

/// Send `data` to `dst` as consecutive datagrams of `seg` bytes (the last
/// one may be shorter) with a single `sendmsg` and UDP segmentation offload
/// (`UDP_SEGMENT`, Linux ≥ 4.18): the receiver sees ordinary datagrams.
/// `data` must hold at most [`MAX_SEGMENTS`] segments and 65 507 bytes.
/// Returns the bytes sent; `WouldBlock` on a full non-blocking socket;
/// `EIO`/`EINVAL` where the kernel or path cannot segment (send one by one
/// then).
#[cfg(target_os = "linux")]
pub fn send_segments(
    fd: std::os::fd::BorrowedFd<'_>,
    data: &[u8],
    seg: u16,
    dst: SocketAddr,
) -> io::Result<usize> {
    let addr = socket2::SockAddr::from(dst);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // 8-byte aligned room for one cmsghdr carrying a u16.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(2) } as usize;
    if space > std::mem::size_of_val(&control) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_ptr().cast_mut().cast();
    msg.msg_namelen = addr.len();
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: `msg` points at `control`, which is large enough for one
    // header and its data (checked above); the header is written through
    // the pointer CMSG_FIRSTHDR returns (non-null since msg_controllen >=
    // sizeof(cmsghdr)), the u16 unaligned into its data area.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        if cmsg.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
    }
    // SAFETY: every pointer in `msg` refers to live locals or `data`, valid
    // for the duration of the call; the fd is borrowed, hence open.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Largest number of datagrams one [`send_many`] / [`recv_many`] call
/// handles (the arrays of headers live on the stack).
pub const MMSG_BATCH: usize = 64;

/// Write `addr` into `ss`; returns the length to pass to the kernel.
#[cfg(target_os = "linux")]
fn encode_addr(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let a = socket2::SockAddr::from(addr);
    let len = usize::try_from(a.len())
        .unwrap_or(0)
        .min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `a` holds `a.len()` initialized bytes of a socket address,
    // `ss` is large enough for any of them (min above); the regions are
    // distinct objects.
    unsafe {
        std::ptr::copy_nonoverlapping(a.as_ptr().cast::<u8>(), (&raw mut *ss).cast::<u8>(), len);
    }
    libc::socklen_t::try_from(len).unwrap_or(0)
}

/// Read a source address the kernel wrote into `ss` (`None` for a
/// family other than IPv4/IPv6 or a short length).
#[cfg(target_os = "linux")]
fn decode_addr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = usize::try_from(len).ok()?;
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in;
            // sockaddr_storage is aligned for every address type.
            let sin = unsafe { &*(&raw const *ss).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(std::net::SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(&raw const *ss).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Send the datagrams `msgs` (payload, destination) in order with one
/// `sendmmsg`; at most [`MMSG_BATCH`] are looked at. Returns how many
/// were sent (≥ 1 unless `msgs` is empty). An error (`WouldBlock` on a
/// full non-blocking socket included) concerns the first datagram: the
/// kernel reports an error on a later one as a short count, and the next
/// call, starting there, gets it.
#[cfg(target_os = "linux")]
pub fn send_many(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
) -> io::Result<usize> {
    let msgs = msgs.get(..msgs.len().min(MMSG_BATCH)).unwrap_or(&[]);
    if msgs.is_empty() {
        return Ok(0);
    }
    // SAFETY: all-zero iovec, sockaddr_storage and mmsghdr are valid
    // (null pointers, zero lengths).
    let mut iov: [libc::iovec; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut names: [libc::sockaddr_storage; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    for ((data, dst), ((v, ss), h)) in msgs
        .iter()
        .zip(iov.iter_mut().zip(names.iter_mut()).zip(hdrs.iter_mut()))
    {
        v.iov_base = data.as_ptr().cast_mut().cast();
        v.iov_len = data.len();
        h.msg_hdr.msg_namelen = encode_addr(*dst, ss);
        h.msg_hdr.msg_name = (&raw mut *ss).cast();
        h.msg_hdr.msg_iov = &raw mut *v;
        h.msg_hdr.msg_iovlen = 1;
    }
    let n = libc::c_uint::try_from(msgs.len()).unwrap_or(0);
    // SAFETY: the first `n` headers point at live entries of `iov` and
    // `names` and at the payloads borrowed in `msgs`, all valid for the
    // call; the fd is borrowed, hence open.
    let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), n, 0) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Receive up to `bufs.len()` (at most [`MMSG_BATCH`]) datagrams with one
/// non-blocking `recvmmsg`; datagram `i` lands in `bufs[i]`, its length
/// and source in `meta[i]` (length cut to the buffer, source `None` for
/// an unknown family). Returns how many arrived; `WouldBlock` if none.
#[cfg(target_os = "linux")]
pub fn recv_many<B: AsMut<[u8]>>(
    fd: std::os::fd::BorrowedFd<'_>,
    bufs: &mut [B],
    meta: &mut [(usize, Option<SocketAddr>)],
) -> io::Result<usize> {
    let count = bufs.len().min(meta.len()).min(MMSG_BATCH);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: as in `send_many`.
    let mut iov: [libc::iovec; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut names: [libc::sockaddr_storage; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    for ((b, v), (ss, h)) in bufs
        .iter_mut()
        .zip(iov.iter_mut())
        .zip(names.iter_mut().zip(hdrs.iter_mut()))
        .take(count)
    {
        let b = b.as_mut();
        v.iov_base = b.as_mut_ptr().cast();
        v.iov_len = b.len();
        h.msg_hdr.msg_name = (&raw mut *ss).cast();
        h.msg_hdr.msg_namelen =
            libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_storage>()).unwrap_or(0);
        h.msg_hdr.msg_iov = &raw mut *v;
        h.msg_hdr.msg_iovlen = 1;
    }
    let n = libc::c_uint::try_from(count).unwrap_or(0);
    // SAFETY: the first `n` headers point at live entries of `iov` and
    // `names` and at the caller's buffers (exclusively borrowed), all
    // valid for writes during the call; no timeout pointer.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let got = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
    for ((m, (ss, h)), v) in meta
        .iter_mut()
        .zip(names.iter().zip(hdrs.iter()))
        .zip(iov.iter())
        .take(got.min(count))
    {
        *m = (
            usize::try_from(h.msg_len).unwrap_or(0).min(v.iov_len),
            decode_addr(ss, h.msg_hdr.msg_namelen),
        );
    }
    Ok(got.min(count))
}

#[cfg(test)]
mod tests {
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

    use super::*;
    use std::net::{Ipv6Addr, UdpSocket};

    #[test]
    fn segments_arrive_as_separate_datagrams() -> io::Result<()> {
        use std::os::fd::AsFd as _;
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        match send_segments(tx.as_fd(), &data, 300, rx.local_addr().unwrap()) {
            Ok(n) => assert_eq!(n, 1000),
            // Kernel without UDP GSO: nothing to check.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut got = Vec::new();
        let mut b = [0u8; 2000];
        for want in [300, 300, 300, 100] {
            let (n, from) = rx.recv_from(&mut b).unwrap();
            assert_eq!(n, want);
            assert_eq!(from, tx.local_addr().unwrap());
            got.extend_from_slice(&b[..n]);
        }
        assert_eq!(got, data);
        Ok(())
    }

    #[test]
    fn many_round_trip_in_order() {
        use std::os::fd::AsFd as _;
        let rx = bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let rx2 = bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (rx.local_addr().unwrap(), rx2.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i; 1 + usize::from(i)]).collect();
        let msgs: Vec<(&[u8], SocketAddr)> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_slice(), if i % 3 == 0 { b } else { a }))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            let n = send_many(tx.as_fd(), &msgs[sent..]).unwrap();
            assert!((1..=MMSG_BATCH).contains(&n), "{n}");
            sent += n;
        }
        assert_eq!(send_many(tx.as_fd(), &[]).unwrap(), 0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        for (sock, want_b) in [(&rx, false), (&rx2, true)] {
            let want: Vec<&(&[u8], SocketAddr)> = msgs
                .iter()
                .enumerate()
                .filter(|(i, _)| (i % 3 == 0) == want_b)
                .map(|(_, m)| m)
                .collect();
            // Small buffers: a longer datagram is cut to the buffer.
            let mut bufs = vec![[0u8; 40]; 16];
            let mut meta = [(0usize, None); 16];
            let mut got = Vec::new();
            loop {
                match recv_many(sock.as_fd(), &mut bufs, &mut meta) {
                    Ok(n) => {
                        assert!((1..=16).contains(&n));
                        for (buf, (len, from)) in bufs.iter().zip(meta.iter()).take(n) {
                            assert_eq!(*from, Some(tx.local_addr().unwrap()));
                            got.push(buf[..*len].to_vec());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got.len(), want.len());
            for (g, (w, _)) in got.iter().zip(want) {
                assert_eq!(g.as_slice(), &w[..w.len().min(40)]);
            }
        }
    }

    #[test]
    fn send_many_reports_an_error_on_the_first() {
        use std::os::fd::AsFd as _;
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let good: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        // An IPv6 destination on an IPv4 socket fails (EAFNOSUPPORT/EINVAL).
        let e = send_many(tx.as_fd(), &[(b"x", v6), (b"y", good)]).unwrap_err();
        assert!(e.raw_os_error().is_some(), "{e}");
        // Failing later: a short count, then the error.
        assert_eq!(
            send_many(tx.as_fd(), &[(b"x", good), (b"y", v6)]).unwrap(),
            1
        );
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
}
