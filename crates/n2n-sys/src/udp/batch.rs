//! The batched socket calls: `sendmsg` with `UDP_SEGMENT`, `sendmmsg`,
//! `recvmmsg`, and [`RecvBatch`], the receive buffers of one `recvmmsg`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd as _;

use super::from_socket;

/// `UDP_SEGMENT` (`linux/udp.h`): UDP segmentation offload.
#[cfg(target_os = "linux")]
pub const UDP_SEGMENT: libc::c_int = 103;

/// Largest number of segments one [`send_segments`] call may carry
/// (`UDP_MAX_SEGMENTS` of older kernels; newer ones allow 128).
pub const MAX_SEGMENTS: usize = 64;

/// Whether a [`send_segments`] error means that the kernel or the path
/// cannot segment (`EIO`, `EINVAL`): send the datagrams one by one then.
pub fn gso_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL))
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
    send_many_mapped(fd, msgs, false)
}

/// [`send_many`], with IPv4 destinations written IPv4-mapped when
/// `v6_socket` ([`super::to_socket`]).
#[cfg(target_os = "linux")]
pub(super) fn send_many_mapped(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
    v6_socket: bool,
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
        h.msg_hdr.msg_namelen = encode_addr(super::to_socket(*dst, v6_socket), ss);
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
    recv_into(fd, bufs.iter_mut().map(AsMut::as_mut), meta)
}

/// [`recv_many`] into the buffers `slots` yields (at most `meta.len()`
/// and [`MMSG_BATCH`] of them are used).
#[cfg(target_os = "linux")]
fn recv_into<'a>(
    fd: std::os::fd::BorrowedFd<'_>,
    slots: impl Iterator<Item = &'a mut [u8]>,
    meta: &mut [(usize, Option<SocketAddr>)],
) -> io::Result<usize> {
    // SAFETY: as in `send_many`.
    let mut iov: [libc::iovec; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut names: [libc::sockaddr_storage; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    let mut count = 0;
    for (b, (v, (ss, h))) in slots
        .zip(iov.iter_mut().zip(names.iter_mut().zip(hdrs.iter_mut())))
        .take(meta.len())
    {
        v.iov_base = b.as_mut_ptr().cast();
        v.iov_len = b.len();
        h.msg_hdr.msg_name = (&raw mut *ss).cast();
        h.msg_hdr.msg_namelen =
            libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_storage>()).unwrap_or(0);
        h.msg_hdr.msg_iov = &raw mut *v;
        h.msg_hdr.msg_iovlen = 1;
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    let n = libc::c_uint::try_from(count).unwrap_or(0);
    // SAFETY: the first `n` headers point at live entries of `iov` and
    // `names` and at the caller's buffers (exclusively borrowed for 'a,
    // beyond this call), all valid for writes during the call; no timeout
    // pointer.
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

/// The receive buffers of one `recvmmsg`: `count` (at most
/// [`MMSG_BATCH`]) slots of `size` bytes in one allocation, allocated once
/// and reused. Sources are handed out unmapped ([`super::from_socket`]).
pub struct RecvBatch {
    buf: Box<[u8]>,
    /// Distance between slots: `size` rounded up to a cache line, plus
    /// one, so that slots of a power-of-two size do not all fall into the
    /// same cache sets.
    stride: usize,
    size: usize,
    meta: Box<[(usize, Option<SocketAddr>)]>,
    got: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.meta.len())
            .field("size", &self.size)
            .field("got", &self.got)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// `count` slots (1 to [`MMSG_BATCH`]) of `size` bytes each.
    pub fn new(count: usize, size: usize) -> Self {
        let count = count.clamp(1, MMSG_BATCH);
        let stride = size.next_multiple_of(64) + 64;
        Self {
            buf: vec![0u8; stride * count].into_boxed_slice(),
            stride,
            size,
            meta: vec![(0, None); count].into_boxed_slice(),
            got: 0,
        }
    }

    /// Fill the slots with one non-blocking `recvmmsg`; returns how many
    /// datagrams arrived (`WouldBlock` if none).
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<usize> {
        self.got = 0;
        let size = self.size;
        let slots = self
            .buf
            .chunks_exact_mut(self.stride)
            .map(|c| c.get_mut(..size).unwrap_or_default());
        let n = recv_into(fd, slots, &mut self.meta)?;
        for m in self.meta.iter_mut().take(n) {
            m.1 = m.1.map(from_socket);
        }
        self.got = n;
        Ok(n)
    }

    /// Datagrams of the last [`Self::recv`].
    pub fn len(&self) -> usize {
        self.got
    }

    /// Whether the last [`Self::recv`] got nothing.
    pub fn is_empty(&self) -> bool {
        self.got == 0
    }

    /// Datagram `i` of the last [`Self::recv`] and its (unmapped) source;
    /// `None` past the end or for a source of an unknown family.
    pub fn get_mut(&mut self, i: usize) -> Option<(&mut [u8], SocketAddr)> {
        if i >= self.got {
            return None;
        }
        let (len, from) = *self.meta.get(i)?;
        let at = i.checked_mul(self.stride)?;
        Some((self.buf.get_mut(at..at + len)?, from?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{UdpConfig, bind_udp};
    use super::*;
    use std::net::UdpSocket;

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
    fn recv_batch_keeps_datagrams_apart_and_unmaps_sources() {
        use std::os::fd::AsFd as _;
        let mut cfg = UdpConfig::new("[::]:0".parse().unwrap());
        cfg.only_v6 = Some(false);
        let (rx, v6) = match bind_udp(&cfg) {
            Ok(s) => (s, true),
            // No IPv6 here: an IPv4 socket still checks the batch.
            Err(_) => (
                bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap(),
                false,
            ),
        };
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = RecvBatch::new(4, 100);
        assert_eq!(
            b.recv(rx.as_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(b.is_empty() && b.get_mut(0).is_none());
        for i in 0..6u8 {
            // The fourth is longer than a slot: cut to it.
            let len = if i == 3 { 300 } else { 10 + usize::from(i) };
            tx.send_to(&vec![i; len], ("127.0.0.1", port)).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(b.recv(rx.as_fd()).unwrap(), 4);
        assert_eq!(b.len(), 4);
        for i in 0..4u8 {
            let (d, from) = b.get_mut(usize::from(i)).unwrap();
            let want = if i == 3 { 100 } else { 10 + usize::from(i) };
            assert_eq!(d.len(), want, "datagram {i}");
            assert!(d.iter().all(|&x| x == i));
            assert_eq!(from, tx.local_addr().unwrap(), "v6 socket: {v6}");
        }
        assert!(b.get_mut(4).is_none());
        assert_eq!(b.recv(rx.as_fd()).unwrap(), 2);
        assert_eq!(b.get_mut(1).unwrap().0, &[5u8; 15][..]);
    }
}
