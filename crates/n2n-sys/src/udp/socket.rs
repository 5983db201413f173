//! The drivers' view of a UDP socket: a tokio socket that knows how its
//! addresses are written, with the sends and batched receives the edge
//! and supernode loops use.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::Interest;

use super::batch::{RecvBatch, gso_unsupported, send_many_mapped, send_segments};
use super::{restore_ttl, set_ttl, to_socket};

/// Errors of a segmented send that a send without segmentation may not
/// have: no offload (`EIO`), a segment larger than the path allows
/// (`EINVAL`, `EMSGSIZE`).
fn refused_segmentation(e: &io::Error) -> bool {
    gso_unsupported(e) || e.raw_os_error() == Some(libc::EMSGSIZE)
}

/// A non-blocking UDP socket registered with tokio. On an IPv6 socket,
/// IPv4 destinations are written IPv4-mapped; received sources come back
/// unmapped ([`super::from_socket`]), so callers only see plain addresses.
#[derive(Debug)]
pub struct Socket {
    io: tokio::net::UdpSocket,
    v6: bool,
    /// Whether [`Self::send_many`] segments runs (cleared for good when
    /// the kernel has no segmentation offload, `EIO`).
    gso: AtomicBool,
}

impl Socket {
    /// Register a bound, non-blocking std socket (inside a tokio runtime).
    pub fn new(sock: std::net::UdpSocket) -> io::Result<Self> {
        let v6 = sock.local_addr()?.is_ipv6();
        Ok(Self {
            io: tokio::net::UdpSocket::from_std(sock)?,
            v6,
            gso: AtomicBool::new(true),
        })
    }

    /// The tokio socket (multicast membership, management-style calls).
    pub fn get_ref(&self) -> &tokio::net::UdpSocket {
        &self.io
    }

    /// Whether this is an IPv6 socket (IPv4 destinations are mapped).
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// The bound address, as the kernel reports it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Wait until a datagram can be read (cancel safe).
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Read what is queued into `batch` with one `recvmmsg`, without
    /// waiting; `WouldBlock` (readiness cleared) if nothing is.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.io
            .try_io(Interest::READABLE, || batch.recv(self.io.as_fd()))
    }

    /// [`Self::try_recv_batch`] for a loop that was told the socket is
    /// readable: the number of datagrams, 0 if there were none after all
    /// or the call failed (logged at debug level: e.g. an ICMP error
    /// reported for an earlier send).
    pub fn recv_ready(&self, batch: &mut RecvBatch) -> usize {
        ready_count(self.try_recv_batch(batch))
    }

    /// Send one datagram; waits only if the socket buffer is full.
    pub async fn send_to(&self, data: &[u8], dst: SocketAddr) -> io::Result<usize> {
        let to = to_socket(dst, self.v6);
        match self.io.try_send_to(data, to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.send_to(data, to).await,
            r => r,
        }
    }

    /// [`Self::send_to`] with the IP TTL (IPv6 hop limit) set to `ttl` for
    /// this datagram only (the edge's `-L` REGISTER spray, like C's
    /// `setsockopt(IP_TTL)` around it). If the TTL cannot be set the
    /// datagram goes out with the default.
    pub async fn send_to_ttl(
        &self,
        data: &[u8],
        dst: SocketAddr,
        ttl: Option<u8>,
    ) -> io::Result<usize> {
        let _ttl = TtlGuard::set(self.io.as_fd(), self.v6, ttl);
        self.send_to(data, dst).await
    }

    /// Send `data` as datagrams of `segment` bytes (the last may be
    /// shorter) to `dst` with one `sendmsg` and `UDP_SEGMENT`; waits while
    /// the socket buffer is full. [`super::gso_unsupported`] tells whether
    /// an error means "send them one by one".
    pub async fn send_segments(
        &self,
        data: &[u8],
        segment: u16,
        dst: SocketAddr,
    ) -> io::Result<usize> {
        let to = to_socket(dst, self.v6);
        loop {
            match self.io.try_io(Interest::WRITABLE, || {
                send_segments(self.io.as_fd(), data, segment, to)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.writable().await?,
                r => return r,
            }
        }
    }

    /// Send `msgs` in order with one `sendmmsg` (see
    /// [`super::send_many`]: the count sent, an error concerns the first);
    /// waits while the socket buffer is full. Runs of equal-sized
    /// datagrams for one destination go out as one `UDP_SEGMENT` message
    /// each ([`super::send_many_segmented`]; datagrams over
    /// [`super::GSO_MAX_SEGMENT`] bytes go alone, so they can still be
    /// fragmented). A run the path refuses is sent again one message per
    /// datagram; without offload (`EIO`) segmentation stays off.
    pub async fn send_many(&self, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        loop {
            match self.io.try_io(Interest::WRITABLE, || {
                send_many_attempt(self.io.as_fd(), msgs, self.v6, &self.gso)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.writable().await?,
                r => return r,
            }
        }
    }

    /// Turn on `UDP_GRO` ([`super::enable_gro`]); read with a
    /// [`RecvBatch::with_gro`] batch then.
    pub fn enable_gro(&self) -> io::Result<()> {
        super::enable_gro(&self.io)
    }
}

/// The datagram count of a receive on a socket said to be readable: 0 if
/// there were none after all or the call failed (logged at debug level:
/// e.g. an ICMP error reported for an earlier send).
fn ready_count(r: io::Result<usize>) -> usize {
    match r {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => {
            tracing::debug!("receive failed: {e}");
            0
        }
    }
}

/// One `sendmmsg` of `msgs` (runs segmented while `gso` says so), retried
/// without segmentation when the kernel refuses it: `EIO` (no offload at
/// all) clears `gso` for good; `EINVAL` / `EMSGSIZE` (this run does not
/// fit the path, e.g. a smaller MTU) sends this batch one message per
/// datagram (fragmented if need be). `WouldBlock` is returned as is.
fn send_many_attempt(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
    v6: bool,
    gso: &AtomicBool,
) -> io::Result<usize> {
    let mut seg = gso.load(Ordering::Relaxed);
    loop {
        match send_many_mapped(fd, msgs, v6, seg) {
            Err(e) if seg && refused_segmentation(&e) => {
                if e.raw_os_error() == Some(libc::EIO) {
                    tracing::debug!("UDP segmentation refused ({e}): one message per datagram");
                    gso.store(false, Ordering::Relaxed);
                }
                seg = false;
            }
            r => return r,
        }
    }
}

/// The TTL (IPv6 hop limit) of a socket set for one send (the edge's `-L`
/// REGISTER spray, like C's `setsockopt(IP_TTL)` around it) and put back
/// when dropped. If it cannot be set the datagram goes out with the
/// default.
struct TtlGuard<'a> {
    fd: std::os::fd::BorrowedFd<'a>,
    saved: Option<super::SavedTtl>,
}

impl<'a> TtlGuard<'a> {
    fn set(fd: std::os::fd::BorrowedFd<'a>, v6: bool, ttl: Option<u8>) -> Self {
        let saved = ttl.and_then(|ttl| {
            set_ttl(fd, v6, ttl)
                .inspect_err(|e| {
                    tracing::debug!(
                        "cannot set TTL {ttl} for the -L spray ({e}): sent with the default"
                    );
                })
                .ok()
        });
        Self { fd, saved }
    }
}

impl Drop for TtlGuard<'_> {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take()
            && let Err(e) = restore_ttl(self.fd, saved)
        {
            tracing::warn!("cannot restore the socket TTL after the -L spray: {e}");
        }
    }
}

/// How long a [`SyncSocket`] send waits for room in a full socket buffer
/// before it reports `WouldBlock` (the caller counts the datagram lost).
pub const SYNC_SEND_WAIT: Duration = Duration::from_secs(1);

/// A non-blocking UDP socket for a loop on its own thread that blocks in
/// [`crate::poll::wait`] (not registered with any runtime): the same
/// calls as [`Socket`], synchronous. A send that finds the buffer full
/// waits for room (at most [`SYNC_SEND_WAIT`]).
#[derive(Debug)]
pub struct SyncSocket {
    io: std::net::UdpSocket,
    v6: bool,
    /// As [`Socket`]'s.
    gso: AtomicBool,
}

impl SyncSocket {
    /// Take a bound std socket (made non-blocking here).
    pub fn new(sock: std::net::UdpSocket) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        let v6 = sock.local_addr()?.is_ipv6();
        Ok(Self {
            io: sock,
            v6,
            gso: AtomicBool::new(true),
        })
    }

    /// The std socket (multicast membership).
    pub fn get_ref(&self) -> &std::net::UdpSocket {
        &self.io
    }

    /// Whether this is an IPv6 socket (IPv4 destinations are mapped).
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// The bound address, as the kernel reports it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Read what is queued into `batch` with one `recvmmsg`, without
    /// waiting (`WouldBlock` if nothing is).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.recv(self.io.as_fd())
    }

    /// As [`Socket::recv_ready`].
    pub fn recv_ready(&self, batch: &mut RecvBatch) -> usize {
        ready_count(self.try_recv_batch(batch))
    }

    /// Run `f` until it does not say `WouldBlock`, waiting for room in
    /// between (at most [`SYNC_SEND_WAIT`] each time).
    fn sending<R>(&self, mut f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        loop {
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !crate::poll::wait_writable(self.io.as_fd(), SYNC_SEND_WAIT)? {
                        return Err(e);
                    }
                }
                r => return r,
            }
        }
    }

    /// Send one datagram.
    pub fn send_to(&self, data: &[u8], dst: SocketAddr) -> io::Result<usize> {
        let to = to_socket(dst, self.v6);
        self.sending(|| self.io.send_to(data, to))
    }

    /// As [`Socket::send_to_ttl`].
    pub fn send_to_ttl(&self, data: &[u8], dst: SocketAddr, ttl: Option<u8>) -> io::Result<usize> {
        let _ttl = TtlGuard::set(self.io.as_fd(), self.v6, ttl);
        self.send_to(data, dst)
    }

    /// As [`Socket::send_segments`].
    pub fn send_segments(&self, data: &[u8], segment: u16, dst: SocketAddr) -> io::Result<usize> {
        let to = to_socket(dst, self.v6);
        self.sending(|| send_segments(self.io.as_fd(), data, segment, to))
    }

    /// As [`Socket::send_many`].
    pub fn send_many(&self, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        self.sending(|| send_many_attempt(self.io.as_fd(), msgs, self.v6, &self.gso))
    }

    /// Turn on `UDP_GRO` ([`super::enable_gro`]).
    pub fn enable_gro(&self) -> io::Result<()> {
        super::enable_gro(&self.io)
    }
}

impl std::os::fd::AsFd for SyncSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.io.as_fd()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{UdpConfig, bind_udp};
    use super::*;

    fn dual_stack_or_v4() -> std::net::UdpSocket {
        let mut cfg = UdpConfig::new("[::]:0".parse().unwrap());
        cfg.only_v6 = Some(false);
        bind_udp(&cfg)
            .or_else(|_| bind_udp(&UdpConfig::new("0.0.0.0:0".parse().unwrap())))
            .unwrap()
    }

    /// A plain IPv4 loopback socket that waits at most 2 s for a datagram.
    fn loopback_peer() -> (std::net::UdpSocket, SocketAddr) {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let addr = peer.local_addr().unwrap();
        (peer, addr)
    }

    /// Receives at `peer`, each from `port`, what both tests send: "one",
    /// "ttl", 25 bytes in segments of 10 (when `segments` did not find GSO
    /// missing), "m1", "m2".
    fn receive_all(peer: &std::net::UdpSocket, port: u16, segments: io::Result<usize>) {
        let mut want: Vec<Vec<u8>> = vec![b"one".to_vec(), b"ttl".to_vec()];
        match segments {
            Ok(n) => {
                assert_eq!(n, 25);
                want.extend([vec![7u8; 10], vec![7u8; 10], vec![7u8; 5]]);
            }
            Err(e) => assert!(gso_unsupported(&e), "{e}"),
        }
        want.extend([b"m1".to_vec(), b"m2".to_vec()]);
        let mut buf = [0u8; 64];
        for w in &want {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &w[..]);
            assert_eq!(from.port(), port);
        }
    }

    #[tokio::test]
    async fn ipv4_peers_through_a_dual_stack_socket_see_plain_addresses() {
        let a = Socket::new(dual_stack_or_v4()).unwrap();
        let port = a.local_addr().unwrap().port();
        let (peer, peer_addr) = loopback_peer();

        // Out: one datagram, one with a TTL, one segmented run, one batch.
        a.send_to(b"one", peer_addr).await.unwrap();
        a.send_to_ttl(b"ttl", peer_addr, Some(3)).await.unwrap();
        let segments = a.send_segments(&[7u8; 25], 10, peer_addr).await;
        let msgs: [(&[u8], SocketAddr); 2] = [(b"m1", peer_addr), (b"m2", peer_addr)];
        assert_eq!(a.send_many(&msgs).await.unwrap(), 2);
        receive_all(&peer, port, segments);

        // In: the source is the peer's plain IPv4 address.
        peer.send_to(b"back", ("127.0.0.1", port)).unwrap();
        let mut batch = RecvBatch::new(8, 64);
        let n = loop {
            a.readable().await.unwrap();
            match a.try_recv_batch(&mut batch) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 1);
        let (d, from) = batch.get_mut(0).unwrap();
        assert_eq!(d, b"back");
        assert_eq!(from, peer_addr);
    }

    #[test]
    fn the_sync_socket_sends_and_receives_like_the_tokio_one() {
        let a = SyncSocket::new(dual_stack_or_v4()).unwrap();
        let port = a.local_addr().unwrap().port();
        let (peer, peer_addr) = loopback_peer();

        a.send_to(b"one", peer_addr).unwrap();
        a.send_to_ttl(b"ttl", peer_addr, Some(3)).unwrap();
        let segments = a.send_segments(&[7u8; 25], 10, peer_addr);
        let msgs: [(&[u8], SocketAddr); 2] = [(b"m1", peer_addr), (b"m2", peer_addr)];
        assert_eq!(a.send_many(&msgs).unwrap(), 2);
        receive_all(&peer, port, segments);

        // Nothing queued: no wait, WouldBlock.
        let mut batch = RecvBatch::new(8, 64);
        let e = a.try_recv_batch(&mut batch).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(a.recv_ready(&mut batch), 0);
        peer.send_to(b"back", ("127.0.0.1", port)).unwrap();
        let r = crate::poll::wait(
            &[std::os::fd::AsFd::as_fd(&a)],
            Some(Duration::from_secs(2)),
        );
        assert!(r.unwrap().is_set(0));
        assert_eq!(a.recv_ready(&mut batch), 1);
        let (d, from) = batch.get_mut(0).unwrap();
        assert_eq!(d, b"back");
        assert_eq!(from, peer_addr);
    }
}
